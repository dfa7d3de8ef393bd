"""``make gpu-check`` checked on the CPU (the issue's CI mode): ``benches/gpu_check.py --cpu``
runs every phase with tiny shapes (the CUDA tests are collected and skipped), and its JSON holds
each phase's status and figures in the shape the GPU run records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_runs_every_phase_on_the_cpu(shared_data: Path, tmp_path: Path) -> None:
    script = REPO / "benches" / "gpu_check.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--cpu", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text("utf-8"))
    phases = report["phases"]
    assert list(phases) == ["env", "tests", "train_0.5b", "train_7b_lora", "eval_7b"]
    assert {p["status"] for p in phases.values()} == {"ok"}, phases
    assert phases["env"]["figures"]["cuda_available"] is False
    assert phases["tests"]["pytest"] == {"skipped": 5}  # collected, skipped without CUDA
    assert phases["train_0.5b"]["figures"]["tokens_per_s"] > 0
    assert phases["train_7b_lora"]["figures"]["mode"] == "lora"
    assert phases["eval_7b"]["figures"]["loglik"]["items"] == 24
    assert "===== eval_7b: ok" in (tmp_path / "gpu_check.log").read_text("utf-8")


def test_gpu_check_refuses_without_out(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benches" / "gpu_check.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "--out" in proc.stderr
