"""Data-parallel training on the CPU with torch's gloo backend, two processes under torchrun,
on the tiny Qwen2 and the real CMExam split: FSDP2 and DDP runs with 2 ranks × B rows give the
losses and final weights of one process with 2·B rows (float tolerance), the ``--nproc``
launcher works, a rank killed mid-run fails the job and a rerun resumes from the last
checkpoint to the same weights as an uninterrupted run, and misconfigurations are refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from _train_common import cmexam_split, metrics, tiny_model, write_config  # noqa: E402
from csft_train.config import ConfigError, parse_config  # noqa: E402

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@pytest.fixture(scope="module")
def assets(
    shared_data: Path, tokenizer_json: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dist")
    return {
        "model": tiny_model(tokenizer_json, root / "model"),
        "data": cmexam_split(shared_data, root / "cmexam.jsonl", n=120),
    }


def tables(
    a: dict[str, Path], out: Path, batch: int, strategy: str = "auto", lora: bool = False
) -> dict[str, dict[str, Any]]:
    t: dict[str, dict[str, Any]] = {
        "model": {"path": str(a["model"]), "template": "qwen"},
        "data": {"train": [str(a["data"])], "cutoff_len": 128},
        "train": {
            "output_dir": str(out),
            "learning_rate": 5e-3,
            "max_steps": 6,
            "per_device_batch_size": batch,
            "gradient_accumulation_steps": 2,
            "warmup_steps": 1,
            "logging_steps": 1,
            "save_steps": 2,
            "save_total_limit": 0,
            "device": "cpu",
        },
        "dist": {"strategy": strategy},
    }
    if lora:
        t["lora"] = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}
    return t


def env() -> dict[str, str]:
    extra = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=extra, TOKENIZERS_PARALLELISM="false")


def torchrun(
    config: Path, *, module: str = "csft_data", extra: dict[str, str] | None = None
) -> Any:
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    argv += ["-m", module, "train", "sft", str(config)]
    return subprocess.run(
        argv, env={**env(), **(extra or {})}, capture_output=True, text=True, timeout=600
    )


def weights(run: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(run / "final" / "model.safetensors"))


def assert_same_run(one: Path, two: Path, rtol: float = 1e-4) -> None:
    l1 = [r["loss"] for r in metrics(one)]
    l2 = [r["loss"] for r in metrics(two)]
    assert l2 == pytest.approx(l1, rel=rtol), (l1, l2)
    g1 = [r["grad_norm"] for r in metrics(one)]
    g2 = [r["grad_norm"] for r in metrics(two)]
    assert g2 == pytest.approx(g1, rel=1e-3), (g1, g2)
    w1, w2 = weights(one), weights(two)
    assert sorted(w1) == sorted(w2)
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=1e-5, rtol=1e-4), k


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "lora"), [("fsdp", False), ("ddp", False), ("ddp", True)], ids=str
)
def test_two_ranks_equal_one_process_with_the_global_batch(
    assets: dict[str, Path], tmp_path: Path, strategy: str, lora: bool
) -> None:
    from csft_train.sft import train_sft

    one = tmp_path / "one"
    train_sft(parse_config(tables(assets, one, 8, lora=lora)))
    two = tmp_path / "two"
    cfg = write_config(tmp_path / "two.toml", tables(assets, two, 4, strategy, lora))
    proc = torchrun(cfg)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"× 2 ranks ({strategy})" in proc.stderr
    assert_same_run(one, two)
    # one set of metrics and checkpoints (rank 0), each rank's RNG state in every checkpoint
    assert len(metrics(two)) == 6
    ckpt = two / "checkpoint-6"
    assert {p.name for p in ckpt.iterdir()} >= {"model.pt", "rng-rank0.pt", "rng-rank1.pt"}


@pytest.mark.slow
def test_killed_rank_fails_the_job_and_the_rerun_resumes_exactly(
    assets: dict[str, Path], tmp_path: Path
) -> None:
    whole = tmp_path / "whole"
    proc = torchrun(write_config(tmp_path / "whole.toml", tables(assets, whole, 4, "fsdp")))
    assert proc.returncode == 0, proc.stderr[-4000:]

    broken = tmp_path / "broken"
    cfg = write_config(tmp_path / "broken.toml", tables(assets, broken, 4, "fsdp"))
    proc = torchrun(cfg, module="_dist_fault", extra={"CSFT_TEST_DIE_AFTER": "4"})
    assert proc.returncode != 0
    assert (broken / "checkpoint-4").is_dir() and not (broken / "checkpoint-6").exists()
    assert not (broken / "final").exists()
    # the launcher, as a user runs it, resumes from checkpoint-4
    from csft_data.cli import main

    rerun = subprocess.run(
        [sys.executable, "-m", "csft_data", "train", "sft", str(cfg), "--nproc", "2"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert "resumed from" in rerun.stderr and "checkpoint-4" in rerun.stderr
    assert_same_run(whole, broken, rtol=1e-6)
    assert main is not None


def test_misconfigurations_are_refused(
    assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from csft_train import dist

    with pytest.raises(ConfigError, match=r"strategy = 'fsdp'.*LoRA"):
        parse_config(tables(assets, tmp_path, 4, "fsdp", lora=True))
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = parse_config(tables(assets, tmp_path, 4, "none"))
    with pytest.raises(ConfigError, match=r"WORLD_SIZE=2 but \[dist\] strategy = 'none'"):
        dist.init(cfg, torch.device("cpu"))
    t = tables(assets, tmp_path, 4, "fsdp")
    t["merge"] = {"method": "ondare", "base_model": str(assets["model"])}
    with pytest.raises(ConfigError, match="online merging"):
        dist.init(parse_config(t), torch.device("cpu"))
    assert dist.Dist(world=2, rank=1).shard([[1], [2], [3]], 2) == ([[3]], 1.0)
    assert dist.Dist(world=2, rank=1).shard([[1], [2]], 2) == ([[1]], 0.0)


@pytest.mark.slow
def test_eval_cmb_on_two_ranks_equals_one_process(assets: dict[str, Path], tmp_path: Path) -> None:
    """``eval cmb --nproc 2``: each rank scores a consecutive block of the items (gloo), rank 0
    gathers them in item order and writes the same predictions and scores as one process."""
    import json

    from csft_data.cli import main

    data = TESTS / "data" / "eval"
    args = ["eval", "cmb", "--model", str(assets["model"]), "--template", "qwen"]
    args += ["--mode", "loglik", "--device", "cpu", "--batch-size", "3"]
    args += ["--questions", str(data / "cmb_test_questions.json")]
    args += ["--answers", str(data / "cmb_test_answers.json")]
    assert main([*args, "--output", str(tmp_path / "one")]) == 0
    two = [*args, "--output", str(tmp_path / "two"), "--nproc", "2"]
    proc = subprocess.run(
        [sys.executable, "-m", "csft_data", *two],
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name in ("predictions.json", "scores.json"):
        one = (tmp_path / "one" / name).read_text("utf-8")
        assert (tmp_path / "two" / name).read_text("utf-8") == one, name
    # per item the same record; the log-probs to float rounding (the ranks batch differently)
    rows = [
        [
            json.loads(x)
            for x in (tmp_path / run / "outputs.jsonl").read_text("utf-8").split("\n")
            if x
        ]
        for run in ("one", "two")
    ]
    assert len(rows[0]) == len(rows[1]) == 16
    for a, b in zip(*rows, strict=True):
        la, lb = a.pop("logprobs", {}), b.pop("logprobs", {})
        assert a == b
        assert la.keys() == lb.keys() and all(abs(la[k] - lb[k]) < 1e-4 for k in la)
    one = json.loads((tmp_path / "one" / "report.json").read_text("utf-8"))
    two = json.loads((tmp_path / "two" / "report.json").read_text("utf-8"))
    assert two["counts"] == one["counts"] and one["counts"]["generated"] > 0  # multi fallback
