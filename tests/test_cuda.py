"""The CUDA paths of the trainer and the evaluators, on a tiny Qwen2 built from a config and a
tokenizer trained here: mixed bf16 training (fp32 master weights and fused AdamW on the GPU,
bf16 autocast, sdpa attention) with packing, packed rows equal to separate rows on the GPU's
attention kernels, ``final/`` saved in bf16 and evaluated through the CLI in both modes, and the
evaluators' answers on CUDA equal to those on the CPU. Skipped without CUDA (CI has none);
``make gpu-check`` runs this file on a GPU machine (``benches/gpu_check.py``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

from _train_common import cmexam_split, metrics, tiny_model, write_config  # noqa: E402
from csft_train import data as D  # noqa: E402
from csft_train import engine as E  # noqa: E402
from csft_train.config import parse_config  # noqa: E402
from csft_train.sft import train_sft  # noqa: E402

EVAL_DATA = Path(__file__).parent / "data" / "eval"


@pytest.fixture(scope="module")
def assets(
    shared_data: Path, tokenizer_json: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cuda")
    return {
        "model": tiny_model(tokenizer_json, root / "model"),
        "data": cmexam_split(shared_data, root / "cmexam.jsonl", n=480),
    }


def tables(a: dict[str, Path], out: Path, **train: Any) -> dict[str, dict[str, Any]]:
    t: dict[str, Any] = {
        "output_dir": str(out),
        "learning_rate": 1e-2,
        "per_device_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "warmup_ratio": 0.1,
        "logging_steps": 5,
        "device": "cuda",
        "save_final": True,
    }
    t.update(train)
    return {
        "model": {"path": str(a["model"]), "template": "qwen", "dtype": "bf16"},
        "data": {"train": [str(a["data"])], "cutoff_len": 256, "packing": True},
        "train": t,
    }


def test_bf16_packed_sft_on_cuda_trains_and_exports(
    assets: dict[str, Path], tmp_path: Path
) -> None:
    """Loss falls under mixed bf16 on the GPU; the optimizer is the fused AdamW over fp32
    master weights on the device; ``final/`` is bf16 safetensors that reload on CUDA."""
    from safetensors import safe_open

    cfg = parse_config(tables(assets, tmp_path / "run", max_steps=40))
    device = E.pick_device(cfg)
    prec = E.pick_precision(cfg, device)
    assert device.type == "cuda" and prec.describe() == "float32 master, bfloat16 autocast"
    model = E.load_policy(cfg, device, prec)
    opt = E.make_optimizer(cfg, model, 1e-3)
    assert opt.defaults["fused"] is True
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    del model, opt

    summary = train_sft(cfg)
    rows = metrics(tmp_path / "run")
    assert summary["steps"] == 40 and all(math.isfinite(r["loss"]) for r in rows)
    if E.peak_tflops(device) is not None:  # a GPU of known peak: MFU in every metrics row
        assert all(0 < r["mfu"] < 1 for r in rows)
    first, last = rows[0]["loss"], sum(r["loss"] for r in rows[-2:]) / 2
    assert last < first - 0.5, (first, last)
    final = Path(summary["final_model"])
    with safe_open(final / "model.safetensors", "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}  # noqa: SIM118
    from csft_train.evaluate.engine import load_model

    model, tok = load_model(final, device="cuda")
    assert next(model.parameters()).dtype == torch.bfloat16
    ids = torch.tensor([tok.encode("患者：头痛三天。")], device="cuda")
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=ids).logits.float()).all()


@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-4), (torch.bfloat16, 2e-2)])
def test_packed_rows_equal_separate_examples_on_cuda(
    assets: dict[str, Path], dtype: Any, rtol: float
) -> None:
    """No attention across packed examples on the GPU's sdpa kernels either."""
    cfg = parse_config(tables(assets, Path("unused")))
    sft = D.load_sft(cfg)
    model = E.load_model(cfg, cfg.model.path, torch.device("cuda"), dtype).eval()
    picks = [3, 17, 42, 99]

    def loss(batch: list[list[int]]) -> Any:
        b = {k: v.cuda() for k, v in D.collate_sft(sft, batch, pad_id=0).items()}
        labels = b.pop("labels")
        with torch.no_grad():
            return E.token_nll_sum(model(**b, use_cache=False).logits.float(), labels)

    separate = sum(loss([[i]]) for i in picks)
    assert torch.allclose(loss([[i] for i in picks]), separate, rtol=rtol)
    assert torch.allclose(loss([picks]), separate, rtol=rtol)
    assert torch.allclose(loss([picks[:3], picks[3:]]), separate, rtol=rtol)


def test_eval_answers_on_cuda_equal_cpu(assets: dict[str, Path]) -> None:
    """Both evaluation modes give the same answers on CUDA and on the CPU in fp32 (batched,
    left-padded): the device changes the speed, not the scores."""
    from csft_train.evaluate.engine import load_model
    from csft_train.evaluate.items import load_items
    from csft_train.evaluate.mcqa import McqaConfig, evaluate_mcqa
    from csft_train.evaluate.prompt import ChatRenderer

    items = load_items(EVAL_DATA / "cmb_test_questions.json")
    results: dict[str, dict[str, list[Any]]] = {}
    for device in ("cpu", "cuda"):
        model, tok = load_model(assets["model"], device=device, dtype="float32")
        renderer = ChatRenderer(tok, "qwen", None)
        for mode in ("loglik", "gen"):
            cfg = McqaConfig(mode=mode, batch_size=4, max_new_tokens=8)  # type: ignore[arg-type]
            r = evaluate_mcqa(items, model, tok, renderer, cfg)
            key = "output" if mode == "gen" else "model_answer"  # gen: the decoded text itself
            results.setdefault(mode, {})[device] = [x[key] for x in r.records]
    assert results["loglik"]["cuda"] == results["loglik"]["cpu"]
    same = sum(a == b for a, b in zip(results["gen"]["cuda"], results["gen"]["cpu"], strict=True))
    assert same >= 0.9 * len(items), results["gen"]


def test_cli_train_then_eval_on_cuda(assets: dict[str, Path], tmp_path: Path) -> None:
    """``csft-data train sft`` on CUDA, then ``csft-data eval cmb`` of its ``final/`` on CUDA in
    both modes: predictions, scores and a report naming the device."""
    from csft_data.cli import main

    cfg = write_config(tmp_path / "sft.toml", tables(assets, tmp_path / "run", max_steps=10))
    assert main(["train", "sft", str(cfg)]) == 0
    final = tmp_path / "run" / "final"
    for mode in ("loglik", "gen"):
        out = tmp_path / f"cmb-{mode}"
        args = ["eval", "cmb", "--model", str(final), "--mode", mode, "--device", "cuda"]
        args += ["--questions", str(EVAL_DATA / "cmb_test_questions.json"), "--output", str(out)]
        assert main([*args, "--answers", str(EVAL_DATA / "cmb_test_answers.json")]) == 0
        predictions = json.loads((out / "predictions.json").read_text("utf-8"))
        assert predictions and all("model_answer" in p for p in predictions)
        assert (out / "scores.json").is_file()
