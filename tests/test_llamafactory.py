"""Conformance with the real client: builds of real data load unchanged in LLaMA-Factory 0.9.5
and train there, and LLaMA-Factory's own supervised processor gives exactly the token ids and
labels of ``csft_data.encode_supervised``.

LLaMA-Factory's pins clash with ours (transformers <= 5.6, datasets <= 4.0, trl <= 0.24), so it
lives in its own virtualenv (``tests/llamafactory/make_venv.sh``), named by the environment
variable ``CSFT_LLAMAFACTORY_PYTHON``; ``tests/llamafactory/check.py`` runs there and writes what
LLaMA-Factory made of each build, and this module compares. CI makes that virtualenv and sets
``CSFT_REQUIRE_LLAMAFACTORY=1``, which turns a missing one into a failure instead of a skip.

The builds: the demo, the shared-data recipe, a QA-only one, a dialogue-only one and one with
system prompts (the last three capped at 1,500 records a source). The model folders share one
tokenizer trained here, under four configurations (Qwen-style without BOS, InternLM-style
``<s>``/``</s>``, Llama-3-style, and an EOS named ``<|endoftext|>``), and a tiny Qwen2 model
built from a config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import csft_data
from _tokenizer_common import VOCAB
from _train_common import tiny_model
from csft_data.cli import main
from csft_data.pipeline import build

REPO = Path(__file__).resolve().parent.parent
LF_PYTHON = os.environ.get("CSFT_LLAMAFACTORY_PYTHON")
REQUIRED = os.environ.get("CSFT_REQUIRE_LLAMAFACTORY") == "1"

pytestmark = [
    pytest.mark.skipif(
        not LF_PYTHON and not REQUIRED,
        reason="no LLaMA-Factory virtualenv: run tests/llamafactory/make_venv.sh .venv/bin/python "
        ".venv-lf and set CSFT_LLAMAFACTORY_PYTHON=.venv-lf/bin/python (CI does)",
    ),
    # Five full builds, then LLaMA-Factory over 51 jobs (two of them train) in its virtualenv:
    # the first test pays for all of it in its set-up.
    pytest.mark.slow,
    pytest.mark.timeout(2400),
]

#: Tokenizer configurations, as model folders ship them: name → tokenizer_config.json.
CONFIGS: dict[str, dict[str, Any]] = {
    "qwen": {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "intern": {"bos_token": "<s>", "eos_token": "</s>"},
    "llama": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "other_eos": {"bos_token": "<s>", "eos_token": "<|endoftext|>"},
}

#: (template, model folder) pairs checked on every build, at every cut-off.
TEMPLATES = [("intern2", "intern"), ("qwen", "qwen"), ("llama3", "llama"), ("default", "other_eos")]
CUTOFFS = (64, 1024)


def _recipe(shared: Path, name: str, sources: str, extra: str = "") -> str:
    return f"""
seed = 3
[output]
dir = "out"
name = "{name}"
{sources}
[normalize]
convert = "t2s"
[split]
val_ratio = 0.05
{extra}
"""


def _source(name: str, adapter: str, path: Path, extra: str = "") -> str:
    # At most 1,500 records a source: LLaMA-Factory's processor runs at ~1k records/s here.
    return (
        f'[[source]]\nname = "{name}"\nadapter = "{adapter}"\npath = "{path}"\n'
        f"max_records = 1500\n{extra}\n"
    )


def _recipes(shared: Path) -> dict[str, str]:
    d = shared
    return {
        "qa_only": _recipe(
            d,
            "qa_only",
            _source("toyhom", "cmd_toyhom", d / "toyhom_cmdd" / "样例_内科5000-6000.csv")
            + _source("huatuo", "huatuo26m", d / "huatuo26m" / "huatuo26M_test.json")
            + _source("pubmedqa", "pubmedqa", d / "pubmedqa" / "ori_pqal.json"),
        ),
        "dialogue_only": _recipe(
            d,
            "dialogue_only",
            _source("cmtmedqa", "cmtmedqa", d / "cmtmedqa" / "CMtMedQA_test.json")
            + _source("discmed", "discmed", d / "disc_med_sft" / "test_examples.jsonl")
            + _source(
                "meddialog",
                "meddialog",
                d / "meddialog_covid" / "COVID-Dialogue-Dataset-Chinese.txt",
            ),
        ),
        "with_system": _recipe(
            d,
            "with_system",
            _source(
                "cmexam",
                "cmexam",
                d / "cmexam" / "cmexam_val_part1.csv",
                'templates = { system = "你是一名医学考试辅导老师，请给出答案和解析。" }',
            )
            + _source(
                "cmtmedqa",
                "cmtmedqa",
                d / "cmtmedqa" / "CMtMedQA_test.json",
                'templates = { system = "你是一名耐心的全科医生。" }',
            )
            + _source("toyhom", "cmd_toyhom", d / "toyhom_cmdd" / "样例_内科5000-6000.csv"),
        ),
    }


def _dataset_name(build_dir: Path, split: str) -> tuple[str, Path]:
    info = json.loads((build_dir / "dataset_info.json").read_text("utf-8"))
    name = next(k for k in info if k.endswith(f"_{split}"))
    return name, build_dir / info[name]["file_name"]


@pytest.fixture(scope="module")
def builds(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lf-builds")
    out = {}
    assert main(["build", "--demo", "-o", str(root / "demo")]) == 0
    out["demo"] = root / "demo"
    recipe = REPO / "recipes" / "shared_data.toml"
    if not recipe.is_file():
        raise RuntimeError(f"{recipe} is missing")
    build(recipe, root / "shared")
    out["shared"] = root / "shared"
    for name, text in _recipes(shared_data).items():
        (root / f"{name}.toml").write_text(text, "utf-8")
        build(root / f"{name}.toml", root / name)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def models(tokenizer_json: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny model folder per ``CONFIGS`` entry, all with the session's ``tokenizer_json`` (whose
    special tokens include ``<|eom_id|>`` and ``<|endoftext|>``)."""
    root = tmp_path_factory.mktemp("lf-models")
    folders = {}
    for name, config in CONFIGS.items():
        folder = tiny_model(tokenizer_json, root / name)
        cfg = {"tokenizer_class": "PreTrainedTokenizerFast", **config}
        (folder / "tokenizer_config.json").write_text(json.dumps(cfg), "utf-8")
        folders[name] = folder
    return folders


def _job(
    build: str, d: Path, name: str, dataset: str, template: str, folder: Path, cutoff: int
) -> dict[str, Any]:
    return {
        "name": name,
        "build": build,
        "dataset_dir": str(d),
        "dataset": dataset,
        "model": str(folder),
        "folder": folder.name,
        "template": template,
        "cutoff_len": cutoff,
        "train_steps": 0,
    }


def _jobs(builds: dict[str, Path], models: dict[str, Path]) -> list[dict[str, Any]]:
    jobs = []
    for b, d in builds.items():
        train, _ = _dataset_name(d, "train")
        val, _ = _dataset_name(d, "val")
        for k, (template, folder) in enumerate(TEMPLATES):
            for j, cutoff in enumerate(CUTOFFS):
                # The shared-data build (19,600 records) at every template once, the others
                # at every template and cut-off.
                if b != "shared" or (k + j) % 2 == 0:
                    name = f"{b}-{template}-{cutoff}"
                    jobs.append(_job(b, d, name, train, template, models[folder], cutoff))
        jobs.append(_job(b, d, f"{b}-val", val, "qwen", models["qwen"], 1024))
        # intern2 writes a BOS, which a Qwen-style tokenizer does not have: none is written.
        jobs.append(_job(b, d, f"{b}-intern2-nobos", train, "intern2", models["qwen"], 1024))
        jobs.append(
            {**_job(b, d, f"{b}-train", train, "qwen", models["qwen"], 256), "train_steps": 2}
        )
    return jobs


@pytest.fixture(scope="module")
def lf(
    builds: dict[str, Path], models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[dict[str, Any]], Path, dict[str, Any]]:
    if not LF_PYTHON:
        pytest.fail("CSFT_REQUIRE_LLAMAFACTORY=1 but CSFT_LLAMAFACTORY_PYTHON is not set")
    root = tmp_path_factory.mktemp("lf-run")
    jobs = _jobs(builds, models)
    (root / "jobs.json").write_text(json.dumps(jobs), "utf-8")
    env = {
        **os.environ,
        "HF_HOME": str(root / "hf"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [LF_PYTHON, str(REPO / "tests" / "llamafactory" / "check.py"), "jobs.json", "out"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        pytest.fail(f"LLaMA-Factory failed (exit {proc.returncode}); its output is above")
    summary = json.loads((root / "out" / "summary.json").read_text("utf-8"))
    return jobs, root / "out", summary


def test_the_real_llamafactory_is_what_ran(lf: tuple[list[dict[str, Any]], Path, Any]) -> None:
    assert lf[2]["llamafactory"] == "0.9.5"


def test_every_build_loads_unchanged_with_every_record(
    builds: dict[str, Path], lf: tuple[list[dict[str, Any]], Path, dict[str, Any]]
) -> None:
    jobs, _, summary = lf
    for job in jobs:
        manifest = json.loads((Path(job["dataset_dir"]) / "manifest.json").read_text("utf-8"))
        split = "val" if job["dataset"].endswith("_val") else "train"
        got = summary["jobs"][job["name"]]["records"]
        assert got == manifest["split"][split] > 0, job["name"]
    # The builds cover what they are meant to: dialogue with history, system prompts.
    for b, want in (("dialogue_only", "history"), ("with_system", "system")):
        _, path = _dataset_name(builds[b], "train")
        assert any(r[want] for r in csft_data.read(path).to_dicts()), b


def _first_difference(a: np.ndarray, b: np.ndarray) -> str:
    n = min(len(a), len(b))
    k = next((i for i in range(n) if a[i] != b[i]), n)
    return (
        f"first difference at token {k}: ours {a[k : k + 8].tolist()}, LF {b[k : k + 8].tolist()}"
    )


def test_token_ids_and_labels_equal_llamafactorys_processor(
    models: dict[str, Path], lf: tuple[list[dict[str, Any]], Path, dict[str, Any]]
) -> None:
    jobs, out, _ = lf
    checked = 0
    for job in jobs:
        got = np.load(out / f"{job['name']}.npz")
        _, path = _dataset_name(
            Path(job["dataset_dir"]), "val" if "-val" in job["name"] else "train"
        )
        ours = csft_data.encode_supervised(
            path,
            models[job["folder"]] / "tokenizer.json",
            template=job["template"],
            cutoff_len=job["cutoff_len"],
        )
        assert len(ours) == len(got["offsets"]) - 1, job["name"]
        assert not ours.rejections, job["name"]
        offsets = ours.offsets.astype(np.int64)
        if not np.array_equal(offsets, got["offsets"]):
            k = int(np.argmax(offsets != got["offsets"])) - 1
            pytest.fail(f"{job['name']}: record {k} has another length than in LLaMA-Factory")
        for field, mine in (("input_ids", ours.input_ids), ("labels", ours.labels)):
            mine64 = mine.astype(np.int64)
            if not np.array_equal(mine64, got[field]):
                k = int(np.searchsorted(offsets, np.argmax(mine64 != got[field]), "right")) - 1
                a, b = int(offsets[k]), int(offsets[k + 1])
                diff = _first_difference(mine64[a:b], got[field][a:b])
                pytest.fail(f"{job['name']}: record {k}, {field}: {diff}")
        checked += len(ours)
    # Every template at both cut-offs on four builds and once on the fifth, the validation
    # splits, and a template with a BOS on a tokenizer without one.
    assert len(jobs) == 4 * 11 + 7 and checked > 100_000


def test_bos_and_eos_are_the_tokenizers_own(
    models: dict[str, Path], lf: tuple[list[dict[str, Any]], Path, dict[str, Any]]
) -> None:
    jobs, _, summary = lf
    for job in jobs:
        lf_job = summary["jobs"][job["name"]]
        counter = csft_data.TokenCounter(models[job["folder"]] / "tokenizer.json")
        cfg = CONFIGS[job["folder"]]
        bos = cfg["bos_token"] and counter.token_id(cfg["bos_token"])
        assert lf_job["bos_token_id"] == (bos if cfg["bos_token"] else None), job["name"]
        assert lf_job["vocab"] == VOCAB, "LLaMA-Factory added a token the model has no row for"


def test_llamafactory_trains_two_steps_on_every_build(
    lf: tuple[list[dict[str, Any]], Path, dict[str, Any]],
) -> None:
    jobs, _, summary = lf
    trained = [j for j in jobs if j["train_steps"]]
    assert len(trained) == 5
    for job in trained:
        losses = summary["jobs"][job["name"]]["losses"]
        assert len(losses) == 2 and all(np.isfinite(losses)), job["name"]


def test_datasets_loads_jsonl_and_parquet_of_every_build(
    builds: dict[str, Path], tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    for b, d in builds.items():
        manifest = json.loads((d / "manifest.json").read_text("utf-8"))
        by_folder = datasets.load_dataset(str(d), cache_dir=str(tmp_path / b))
        assert by_folder["train"].num_rows == manifest["split"]["train"], b
        js = datasets.load_dataset(
            "json",
            data_files={"train": str(d / "train.jsonl"), "val": str(d / "val.jsonl")},
            features=csft_data.alpaca_features(),
            cache_dir=str(tmp_path / b),
        )
        assert js["val"].num_rows == manifest["split"]["val"], b
        assert js["train"][-20:] == by_folder["train"][-20:], b
