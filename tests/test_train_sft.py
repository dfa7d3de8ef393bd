"""SFT on CPU with a tiny Qwen2 (2 layers, hidden 64) and a tokenizer trained here, on the real
CMExam split made by the adapter: the loss falls, packed rows equal separate rows (no attention
across packed examples), the loss is normalised over the whole accumulated step, a resumed run
ends with the same weights as an uninterrupted one, LoRA trains only adapters, the CLI runs end
to end, and sweeps make one folder per grid point."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from _train_common import (  # noqa: E402
    cmexam_split,
    metrics,
    tiny_model,
    write_config,
)
from csft_train import data as D  # noqa: E402
from csft_train import engine as E  # noqa: E402
from csft_train.config import ConfigError, parse_config  # noqa: E402
from csft_train.sft import train_sft  # noqa: E402


@pytest.fixture(scope="module")
def assets(
    shared_data: Path, tokenizer_json: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sft")
    tok = tokenizer_json
    return {
        "tok": tok,
        "model": tiny_model(tok, root / "model", dropout=0.1),
        "data": cmexam_split(shared_data, root / "cmexam.jsonl", n=240),
    }


def tables(a: dict[str, Path], out: Path, **train: Any) -> dict[str, dict[str, Any]]:
    t: dict[str, Any] = {
        "output_dir": str(out),
        "learning_rate": 1e-2,
        "epochs": 1.0,
        "per_device_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "warmup_ratio": 0.1,
        "logging_steps": 2,
        "save_steps": 0,
        "device": "cpu",
        "save_final": False,
    }
    t.update(train)
    return {
        "model": {"path": str(a["model"]), "template": "qwen"},
        "data": {"train": [str(a["data"])], "cutoff_len": 128},
        "train": t,
    }


def test_loss_falls_on_a_real_split(assets: dict[str, Path], tmp_path: Path) -> None:
    cfg = parse_config(tables(assets, tmp_path / "run", max_steps=30))
    summary = train_sft(cfg)
    rows = metrics(tmp_path / "run")
    assert summary["steps"] == 30 and len(rows) == 15
    first, last = rows[0]["loss"], sum(r["loss"] for r in rows[-3:]) / 3
    assert last < first - 0.5, (first, last)
    lrs = [r["lr"] for r in rows]
    assert max(lrs) == pytest.approx(1e-2, rel=0.05) and lrs[-1] < 0.1 * max(lrs), "cosine"
    assert all(r["tokens_per_s"] > 0 for r in rows)
    # model FLOP/s per device is logged everywhere, MFU only for a GPU of known peak
    assert all(r["tflops_per_device"] > 0 and "mfu" not in r for r in rows)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 30


def test_packed_and_padded_rows_equal_separate_examples(assets: dict[str, Path]) -> None:
    cfg = parse_config(tables(assets, Path("unused")))
    sft = D.load_sft(cfg)
    model = E.load_model(cfg, cfg.model.path, torch.device("cpu"), torch.float32).eval()
    picks = [3, 17, 42]

    def loss(batch: list[list[int]]) -> Any:
        b = D.collate_sft(sft, batch, pad_id=0)
        labels = b.pop("labels")
        with torch.no_grad():
            return E.token_nll_sum(model(**b, use_cache=False).logits, labels)

    separate = sum(loss([[i]]) for i in picks)
    padded = loss([[i] for i in picks])
    packed = loss([picks])
    two_rows = loss([picks[:2], picks[2:]])  # packed rows of different widths (padding segment)
    assert torch.allclose(padded, separate, rtol=1e-4)
    assert torch.allclose(packed, separate, rtol=1e-4)
    assert torch.allclose(two_rows, separate, rtol=1e-4)
    assert D.trained_tokens(sft, [picks]) == sum(D.trained_tokens(sft, [[i]]) for i in picks)
    # rows from the packer never exceed the cut-off, and every example is in exactly one row
    rows = D.pack_rows(sft.lengths, 128)
    assert sorted(i for r in rows for i in r) == list(range(len(sft)))
    assert all(sum(int(sft.lengths[i]) for i in r) <= 128 for r in rows)


def test_plan_is_deterministic_and_length_grouped(assets: dict[str, Path]) -> None:
    t = tables(assets, Path("unused"))
    t["data"]["cutoff_len"] = 1024  # lengths vary (at 128 every example is cut to 128)
    cfg = parse_config(t)
    lengths = D.load_sft(cfg).lengths
    a = D.plan_batches(lengths, 8, seed=1, epoch=0, group_by_length=True)
    assert a == D.plan_batches(lengths, 8, seed=1, epoch=0, group_by_length=True)
    assert a != D.plan_batches(lengths, 8, seed=1, epoch=1, group_by_length=True)
    flat = sorted(r[0] for b in a for r in b)
    assert flat == list(range(len(lengths)))

    def spread(batches: list[list[list[int]]]) -> float:
        return sum(
            max(int(lengths[r[0]]) for r in b) - min(int(lengths[r[0]]) for r in b) for b in batches
        ) / len(batches)

    plain = D.plan_batches(lengths, 8, seed=1, epoch=0, group_by_length=False)
    assert spread(a) < 0.5 * spread(plain)


def test_accumulated_loss_is_normalised_per_token_over_the_step(
    assets: dict[str, Path], tmp_path: Path
) -> None:
    """Batch 8 × accumulation 1 and batch 4 × accumulation 2 (same 8 examples per step, plain
    order, no dropout) give the same gradients, hence the same weights after one step."""
    plain = tiny_model(assets["tok"], tmp_path / "m0", seed=3)
    states = []
    for bs, ga in ((8, 1), (4, 2)):
        t = tables(
            assets,
            tmp_path / f"run{bs}",
            max_steps=1,
            per_device_batch_size=bs,
            gradient_accumulation_steps=ga,
            warmup_ratio=0.0,
            lr_scheduler="constant_with_warmup",
            # a large eps makes the first Adam step ~linear in the gradient (with eps 1e-8 it is
            # sign(g), where float rounding of ~0 gradients flips signs)
            adam_eps=1.0,
        )
        t["model"]["path"] = str(plain)
        t["data"]["group_by_length"] = False
        train_sft(parse_config(t))
        states.append(torch.load(tmp_path / f"run{bs}" / "checkpoint-1" / "model.pt"))
    from transformers import AutoModelForCausalLM

    init = AutoModelForCausalLM.from_pretrained(str(plain)).state_dict()
    moved = 0.0
    for k in states[0]:
        d0, d1 = states[0][k] - init[k], states[1][k] - init[k]
        assert torch.allclose(d0, d1, rtol=1e-2, atol=2e-8), k
        moved = max(moved, float(d0.abs().max()))
    assert moved > 1e-6, "the step changed the weights"


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(
    assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = parse_config(tables(assets, tmp_path / "full", max_steps=8, save_steps=4))
    train_sft(full)
    orig_save = E.Loop.save

    def crash_after_first_checkpoint(self: E.Loop, step: int) -> Path:
        orig_save(self, step)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(E.Loop, "save", crash_after_first_checkpoint)
    cut = parse_config(tables(assets, tmp_path / "cut", max_steps=8, save_steps=4))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_sft(cut)
    assert (tmp_path / "cut" / "checkpoint-4").is_dir()
    monkeypatch.setattr(E.Loop, "save", orig_save)
    train_sft(parse_config(tables(assets, tmp_path / "cut", max_steps=8, save_steps=4)))
    a = torch.load(tmp_path / "full" / "checkpoint-8" / "model.pt")
    b = torch.load(tmp_path / "cut" / "checkpoint-8" / "model.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    la = [r["loss"] for r in metrics(tmp_path / "full")]
    lb = [r["loss"] for r in metrics(tmp_path / "cut")]
    assert la == lb


class _RunsCode:
    """Unpickling this calls ``os.mkdir(marker)``: what a planted checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("planted", ["optimizer.pt", "scheduler.pt", "rng.pt", "model.pt"])
def test_resume_refuses_a_checkpoint_file_that_would_run_code(
    assets: dict[str, Path], tmp_path: Path, planted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    train_sft(parse_config(tables(assets, run, max_steps=2, save_steps=2)))
    ckpt = run / "checkpoint-2"
    # What the trainer writes loads as tensors and plain values only.
    for f in ("model.pt", "optimizer.pt", "scheduler.pt", "rng.pt"):
        torch.load(ckpt / f, weights_only=True)
    marker = tmp_path / "code-ran"
    torch.save({"state": _RunsCode(marker)}, ckpt / planted)
    torch.load(ckpt / planted, weights_only=False)  # the payload works when trusted …
    assert marker.is_dir()
    marker.rmdir()
    with pytest.raises(E.CheckpointError) as err:  # … and is refused on resume
        train_sft(parse_config(tables(assets, run, max_steps=2, save_steps=2)))
    msg = str(err.value)
    assert str(ckpt / planted) in msg and "refused" in msg and "mkdir" in msg
    assert not marker.exists()

    from csft_data.cli import main

    config = write_config(tmp_path / "run.toml", tables(assets, run, max_steps=2, save_steps=2))
    assert main(["train", "sft", str(config)]) == 2
    assert f"{ckpt / planted}: refused" in capsys.readouterr().err
    assert not marker.exists()


def test_lora_trains_only_adapters_and_exports_merged(
    assets: dict[str, Path], tmp_path: Path
) -> None:
    t = tables(assets, tmp_path / "lora", max_steps=3, save_final=True)
    t["lora"] = {"enabled": True, "r": 4, "alpha": 8}
    summary = train_sft(parse_config(t))
    final = Path(summary["final_model"])
    assert (final / "config.json").is_file() and (final / "tokenizer.json").is_file()
    state = torch.load(tmp_path / "lora" / "checkpoint-3" / "model.pt")
    assert any("lora_A" in k for k in state)


@pytest.mark.slow
def test_compiled_model_trains_like_eager_and_keeps_checkpoint_names(
    assets: dict[str, Path], tmp_path: Path
) -> None:
    """``[model] compile``: the same losses as eager (to float tolerance: the fused kernels
    round differently) and checkpoints whose names load into an uncompiled model."""
    runs = {}
    for compile_ in (False, True):
        t = tables(assets, tmp_path / str(compile_), max_steps=4, logging_steps=1)
        t["model"]["compile"] = compile_
        train_sft(parse_config(t))
        runs[compile_] = [r["loss"] for r in metrics(tmp_path / str(compile_))]
    assert runs[True] == pytest.approx(runs[False], rel=1e-3), runs
    eager = torch.load(tmp_path / "False" / "checkpoint-4" / "model.pt")
    compiled = torch.load(tmp_path / "True" / "checkpoint-4" / "model.pt")
    assert list(compiled) == list(eager)


@pytest.mark.parametrize(
    ("dtype", "lora", "trained", "frozen"),
    [
        ("bf16", False, "float32", None),
        ("bf16", True, "float32", "bfloat16"),
        ("pure_bf16", False, "bfloat16", None),
        ("fp32", True, "float32", "float32"),
    ],
)
def test_precision_master_weights_and_export(
    assets: dict[str, Path],
    tmp_path: Path,
    dtype: str,
    lora: bool,
    trained: str,
    frozen: str | None,
) -> None:
    """Mixed bf16 (LLaMA-Factory's ``bf16: true``) keeps the trained weights and AdamW state in
    fp32 and a LoRA base in bf16; ``pure_bf16`` keeps everything in bf16; ``final/`` is saved
    in the frozen dtype (bf16 for both bf16 modes). Runs on CPU under bf16 autocast."""
    from safetensors import safe_open

    t = tables(assets, tmp_path / dtype, max_steps=4, save_final=True)
    t["model"]["dtype"] = dtype
    if lora:
        t["lora"] = {"enabled": True, "r": 4, "alpha": 8}
    summary = train_sft(parse_config(t))
    assert math.isfinite(summary["final"]["loss"])
    ckpt = tmp_path / dtype / "checkpoint-4"
    state = torch.load(ckpt / "model.pt")
    adapters = {k: v for k, v in state.items() if "lora_" in k}
    base = {k: v for k, v in state.items() if "lora_" not in k}
    if lora:
        assert adapters and {str(v.dtype) for v in adapters.values()} == {f"torch.{trained}"}
        assert {str(v.dtype) for v in base.values()} == {f"torch.{frozen}"}
    else:
        assert {str(v.dtype) for v in base.values()} == {f"torch.{trained}"}
    opt = torch.load(ckpt / "optimizer.pt", weights_only=False)
    moments = [s["exp_avg"] for s in opt["state"].values()]
    assert moments and {str(m.dtype) for m in moments} == {f"torch.{trained}"}
    export = "float32" if dtype == "fp32" else "bfloat16"
    with safe_open(Path(summary["final_model"]) / "model.safetensors", "pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()}  # noqa: SIM118
    assert dtypes == {f"torch.{export}"}


def test_cli_sft_end_to_end_and_config_errors(
    assets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from csft_data.cli import main

    cfg = write_config(
        tmp_path / "sft.toml", tables(assets, tmp_path / "cli", max_steps=4, save_final=True)
    )
    assert main(["train", "sft", str(cfg)]) == 0
    err = capsys.readouterr().err
    assert "loss" in err and "tok/s" in err and "lr" in err and "| eta " in err
    run = tmp_path / "cli"
    for name in ("metrics.jsonl", "metrics.json", "config.toml", "final/config.json"):
        assert (run / name).is_file(), name
    assert (run / "checkpoint-4" / "optimizer.pt").is_file()
    # final/ loads as it is, for csft-data eval: the tokenizer is exactly the model's vocabulary
    # (the model folder had no tokenizer_config.json, so transformers' Qwen2 class would add its
    # default <|endoftext|>), with the qwen template's EOS, which also pads.
    from csft_train.evaluate.engine import load_model

    model, tok = load_model(run / "final", device="cpu")
    assert len(tok) == model.config.vocab_size
    assert tok.eos_token == tok.pad_token == "<|im_end|>"
    # ... and is prompted as it was trained: `eval cmb` with the default --template auto
    # renders with the run's qwen template (the tokenizer itself has no chat_template).
    from csft_train.evaluate.prompt import chat_renderer

    assert chat_renderer(tok, run / "final").template == "qwen"
    data = Path(__file__).parent / "data" / "eval"
    out = tmp_path / "cmb"
    args = ["eval", "cmb", "--model", str(run / "final"), "--mode", "loglik", "--device", "cpu"]
    args += ["--questions", str(data / "cmb_test_questions.json"), "--output", str(out)]
    assert main([*args, "--answers", str(data / "cmb_test_answers.json")]) == 0
    assert (out / "predictions.json").is_file() and (out / "scores.json").is_file()
    bad = tables(assets, tmp_path / "bad")
    bad["train"]["learning_rte"] = 1e-5
    assert main(["train", "sft", str(write_config(tmp_path / "bad.toml", bad))]) == 2
    assert "learning_rte" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"\[data\] cutoff_len"):
        parse_config({"data": {"cutoff_len": "1024"}})


def test_sweep_makes_one_folder_per_run_and_skips_finished(
    assets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from csft_data.cli import main

    t = tables(assets, tmp_path / "sweep", max_steps=2)
    t["sweep"] = {"learning_rate": [1e-3, 3e-3], "cutoff_len": [128]}
    cfg = write_config(tmp_path / "sweep.toml", t)
    assert main(["train", "sweep", str(cfg)]) == 0
    names = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert names == ["lr0.001_ep1_cut128", "lr0.003_ep1_cut128"]
    for n in names:
        assert (tmp_path / "sweep" / n / "metrics.json").is_file()
        assert "cutoff_len = 128" in (tmp_path / "sweep" / n / "config.toml").read_text()
    capsys.readouterr()
    assert main(["train", "sweep", str(cfg)]) == 0
    assert capsys.readouterr().out.count("skipped") == 2
