"""Runs csft-data's outputs through the real LLaMA-Factory (0.9.5), in its own virtualenv
(`make_venv.sh`), and writes what LLaMA-Factory made of them, for `tests/test_llamafactory.py`
to compare with csft-data's own encoding.

    python check.py JOBS.json OUT_DIR

Each job names a build folder (`dataset_dir`, with its `dataset_info.json`), a dataset name in
it, a model folder (tokenizer files + `config.json`), a template and a cut-off. For each job the
script runs LLaMA-Factory's own argument parser, tokenizer loading, `get_template_and_fix_tokenizer`
and `get_dataset(stage="sft")` (its loader, its Alpaca converter and its supervised processor),
and writes `OUT_DIR/<job>.npz`: the record count and every record's `input_ids` and `labels`
(flattened, with offsets). With `train_steps > 0` it then trains the model for that many steps
with LLaMA-Factory's own `run_exp` on CPU (on the split's first 64 records) and reports the
logged losses in `summary.json`.
It compares nothing itself: it only reports what the real client did.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any


def lf_args(job: dict[str, Any], out: Path, steps: int) -> dict[str, Any]:
    return {
        "stage": "sft",
        "do_train": True,
        "model_name_or_path": job["model"],
        "dataset_dir": job["dataset_dir"],
        "dataset": job["dataset"],
        "template": job["template"],
        "cutoff_len": job["cutoff_len"],
        "finetuning_type": "full",
        "output_dir": str(out / f"{job['name']}-run"),
        "overwrite_cache": True,
        "preprocessing_num_workers": None,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "max_steps": max(steps, 1),
        # Training needs only a few batches: the first records of the split.
        **({"max_samples": 64} if steps else {}),
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "bf16": False,
        "fp16": False,
        "seed": 0,
        "dataloader_num_workers": 0,
    }


def encode(job: dict[str, Any], out: Path) -> dict[str, Any]:
    import numpy as np
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    model_args, data_args, training_args, _, _ = get_train_args(lf_args(job, out, 0))
    tokenizer_module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
    module = get_dataset(template, model_args, data_args, training_args, "sft", **tokenizer_module)
    ds = module["train_dataset"]
    ids = [list(x) for x in ds["input_ids"]]
    labels = [list(x) for x in ds["labels"]]
    offsets = np.cumsum([0] + [len(x) for x in ids]).astype(np.int64)
    flat = lambda rows: np.asarray([v for r in rows for v in r], dtype=np.int64)  # noqa: E731
    np.savez(out / f"{job['name']}.npz", input_ids=flat(ids), labels=flat(labels), offsets=offsets)
    tok = tokenizer_module["tokenizer"]
    return {
        "records": len(ds),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "vocab": len(tok),
    }


def train(job: dict[str, Any], out: Path) -> list[float]:
    from llamafactory.train.tuner import run_exp
    from transformers import TrainerCallback

    losses: list[float] = []

    class Record(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    run_exp(lf_args(job, out, job["train_steps"]), callbacks=[Record()])
    return losses


def main(argv: list[str]) -> int:
    jobs = json.loads(Path(argv[0]).read_text("utf-8"))
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DISABLE_VERSION_CHECK", "1")
    import llamafactory

    summary: dict[str, Any] = {"llamafactory": llamafactory.__version__, "jobs": {}}
    for job in jobs:
        result = encode(job, out)
        if job.get("train_steps", 0) > 0:
            result["losses"] = train(job, out)
        # datasets' Arrow caches of every job would add up to gigabytes.
        shutil.rmtree(Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "datasets", True)
        summary["jobs"][job["name"]] = result
        print(f"{job['name']}: {result}", flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
