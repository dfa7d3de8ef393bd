"""The GPU check (`make gpu-check`): everything the project claims about CUDA, run as one command
on a GPU machine, with one JSON of figures and one log.

Phases, each a subprocess with its own time limit (a phase that fails or runs out of time is
recorded and the next one runs; the JSON is rewritten after every phase, so a run cut short
still leaves what it measured):

- ``env``: torch, CUDA, the GPU, bf16 support, flash-attention, ``nvidia-smi``;
- ``tests``: ``tests/test_cuda.py`` (mixed-bf16 packed SFT with fused AdamW, packed rows equal
  separate ones on the GPU kernels, ``final/`` export and reload, the evaluators on CUDA equal to
  the CPU, and a ``csft-data train sft`` → ``csft-data eval cmb`` loop on a tiny model);
- ``train_0.5b``: ``benches/bench_train.py``, a Qwen2-0.5B-shaped full fine-tune (tokens/s, MFU);
- ``train_7b_lora``: the same for a LLaMA-7B-shaped model with LoRA and packed rows;
- ``eval_7b``: ``benches/bench_eval.py --shape 7b``: CMB-shaped items/s in ``loglik`` and ``gen``
  mode, projected to CMB's 11,200 test items.

Nothing is downloaded: models are built from configs, tokenizers trained on the real texts that
``make gpu-prep`` packed into ``.gpu/shared-data.tar`` (or ``../shared/data`` when present). MFU
uses the dense bf16 peak of the GPU found (``csft_train.engine.PEAK_TFLOPS``: 989 TFLOP/s for
H100 SXM/H200, 312 for A100; else ``--peak-tflops``, default 989).

    python benches/gpu_check.py --out OUT          # on the GPU machine (see the Makefile)
    python benches/gpu_check.py --cpu --out OUT    # the same phases, tiny shapes, on the CPU

Exit status 0 when every phase passed, 1 when one failed or ran out of time, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BUNDLE = REPO / ".gpu" / "shared-data.tar"


@dataclass(frozen=True)
class Phase:
    name: str
    argv: list[str]  # after the interpreter
    timeout_s: int
    json_result: bool  # its last stdout line is a JSON object of figures


ENV = Phase("env", [str(Path(__file__).resolve()), "--env-only"], 60, True)


def phases(cpu: bool, peak: float) -> list[Phase]:
    """The phases after ``env``, for the GPU or (``cpu``) tiny shapes on the CPU."""
    train = [str(REPO / "benches" / "bench_train.py"), "--peak-tflops", str(peak)]
    evaluate = [str(REPO / "benches" / "bench_eval.py")]
    # -W default: a warning the GPU machine's library versions raise is logged, not fatal there
    tests = ["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-W", "default"]
    tests.append("tests/test_cuda.py")
    if cpu:
        shapes = {
            "train_0.5b": "--shape tiny --steps 2",
            "train_7b_lora": "--shape tiny --lora --packing 2 --steps 2",
            "eval_7b": "--shape tiny --items 24 --gen-items 8 --batch-size 8 --max-new-tokens 4",
        }
    else:
        shapes = {
            "train_0.5b": "--shape 0.5b --batch 8 --cutoff 2048 --steps 10",
            "train_7b_lora": "--shape 7b --lora --batch 2 --cutoff 2048 --packing 4 --steps 6",
            "eval_7b": "--shape 7b --items 5600 --gen-items 640 --batch-size 64",
        }
    return [
        Phase("tests", tests, 120 if cpu else 180, False),
        Phase("train_0.5b", [*train, *shapes["train_0.5b"].split()], 150, True),
        Phase("train_7b_lora", [*train, *shapes["train_7b_lora"].split()], 180, True),
        Phase("eval_7b", [*evaluate, *shapes["eval_7b"].split()], 240, True),
    ]


def env_figures() -> dict[str, Any]:
    """What the machine is (the ``env`` phase, run in its own process)."""
    import torch
    import transformers

    out: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda_available": torch.cuda.is_available(),
    }
    try:
        import flash_attn

        out["flash_attn"] = flash_attn.__version__
    except ImportError:
        out["flash_attn"] = None
    try:
        import peft

        out["peft"] = peft.__version__
    except ImportError:
        out["peft"] = None
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out.update(
            gpu=torch.cuda.get_device_name(0),
            gpu_count=torch.cuda.device_count(),
            gpu_memory_gib=round(p.total_memory / 2**30, 1),
            sm_count=p.multi_processor_count,
            capability=f"{p.major}.{p.minor}",
            cuda=torch.version.cuda,
            bf16=torch.cuda.is_bf16_supported(),
        )
        from csft_train.engine import peak_tflops

        out["peak_tflops"] = peak_tflops("cuda")
        try:
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            out["nvidia_smi"] = smi.stdout.strip().splitlines()[-1] if smi.stdout else None
        except (OSError, subprocess.TimeoutExpired) as e:
            out["nvidia_smi"] = f"unavailable: {e}"
    return out


def shared_data(tmp: Path) -> Path | None:
    """``CSFT_SHARED_DATA``, else ``../shared/data``, else the bundle unpacked into ``tmp``."""
    if os.environ.get("CSFT_SHARED_DATA"):
        return Path(os.environ["CSFT_SHARED_DATA"])
    beside = REPO.parent / "shared" / "data"
    if beside.is_dir():
        return beside
    if BUNDLE.is_file():
        with tarfile.open(BUNDLE) as tar:
            tar.extractall(tmp, filter="data")
        return tmp / "data"
    return None


def run_phase(phase: Phase, env: dict[str, str], log: Any, deadline: float) -> dict[str, Any]:
    left = deadline - time.monotonic()
    if left < 20:
        return {"status": "skipped", "why": f"{left:.0f} s of the budget left"}
    limit = min(phase.timeout_s, int(left))
    argv = [sys.executable, *phase.argv]
    log.write(f"\n===== {phase.name}: {' '.join(argv)} (limit {limit} s)\n")
    log.flush()
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=limit, check=False
        )
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
        status = "ok" if rc == 0 else "failed"
    except subprocess.TimeoutExpired as e:
        stdout = _text(e.stdout)
        stderr = _text(e.stderr)
        rc, status = None, "timeout"
    seconds = round(time.monotonic() - t0, 1)
    log.write(stdout + stderr + f"\n===== {phase.name}: {status} in {seconds} s\n")
    log.flush()
    result: dict[str, Any] = {"status": status, "seconds": seconds, "rc": rc}
    if phase.json_result:
        figures = _last_json(stdout)
        if figures is None and status == "ok":
            result["status"] = "failed"
            result["why"] = "no JSON line of figures on stdout"
        result["figures"] = figures
    else:
        m = re.findall(r"(\d+) (passed|failed|skipped|error|errors)", stdout)
        result["pytest"] = {kind: int(n) for n, kind in m}
    if result["status"] != "ok":
        result["tail"] = (stdout + stderr)[-3000:]
    return result


def _text(b: bytes | str | None) -> str:
    if b is None:
        return ""
    return b if isinstance(b, str) else b.decode("utf-8", "replace")


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=False, help="folder for gpu_check.json and .log")
    ap.add_argument("--cpu", action="store_true", help="tiny shapes on the CPU (checks the check)")
    ap.add_argument("--only", help="comma-separated phases to run (default all)")
    ap.add_argument("--budget", type=int, default=540, help="seconds for all phases together")
    ap.add_argument("--peak-tflops", type=float, help="dense bf16 peak (default: by GPU name)")
    ap.add_argument("--env-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.env_only:
        print(json.dumps(env_figures()))
        return 0
    if args.out is None:
        ap.error("--out is required")
    deadline = time.monotonic() + args.budget
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    env["HF_HUB_OFFLINE"] = "1"
    if args.cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    # Installed packages win; on a bare GPU machine the sources (with the extension built by
    # `make gpu-prep`, carried beside them) are imported from the checkout.
    paths = [str(REPO / "tests")]
    for pkg, folder in (("csft_data", "python"), ("csft_train", "training")):
        if importlib.util.find_spec(pkg) is None:
            paths.append(str(REPO / folder))
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": "cpu" if args.cpu else "gpu",
        "phases": {},
    }
    json_path, log_path = args.out / "gpu_check.json", args.out / "gpu_check.log"
    with tempfile.TemporaryDirectory() as tmp, log_path.open("w", encoding="utf-8") as log:
        data = shared_data(Path(tmp))
        if data is None:
            print("gpu_check: no shared data (run `make gpu-prep` first)", file=sys.stderr)
            return 2
        env["CSFT_SHARED_DATA"] = str(data)
        env["CSFT_REQUIRE_SHARED_DATA"] = "1"
        only = set(args.only.split(",")) if args.only else None
        todo = [ENV]
        for phase in todo:
            result = run_phase(phase, env, log, deadline)
            if phase is ENV:
                known = (result.get("figures") or {}).get("peak_tflops")
                peak = args.peak_tflops or known or 989.0
                report["peak_tflops"] = peak
                todo += [p for p in phases(args.cpu, peak) if only is None or p.name in only]
            elif phase.name == "tests" and not args.cpu:
                counts = result["pytest"]
                if result["status"] == "ok" and (counts.get("skipped") or not counts.get("passed")):
                    result["status"] = "failed"
                    result["why"] = "CUDA tests skipped on the GPU machine"
            report["phases"][phase.name] = result
            print(f"gpu_check: {phase.name}: {result['status']} ({result.get('seconds', 0)} s)")
            sys.stdout.flush()
            json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", "utf-8")
    ok = all(r["status"] == "ok" for r in report["phases"].values())
    print(f"gpu_check: {'all phases passed' if ok else 'FAILED'}; figures in {json_path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
