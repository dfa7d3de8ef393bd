"""``csft-data build`` end to end on the real shared data: outputs readable by datasets and
polars, exact accounting, decontamination of planted evaluation items, split by group,
byte-identical re-runs, stage caching, mixture caps and recipe errors."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import csft_data
from csft_data import ConfigError
from csft_data.cli import main
from csft_data.pipeline import (
    DedupConfig,
    LengthsConfig,
    MixtureConfig,
    SplitConfig,
    build,
    load_recipe,
    parse_recipe,
)
from csft_data.pipeline.mixture import _water_fill, mixture_targets

N_PLANTED = 40


@pytest.fixture(scope="module")
def eval_file(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first CMExam rows as an 'evaluation' file: the cmexam training source holds them."""
    text = (shared_data / "cmexam" / "cmexam_val_part1.csv").read_text("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows[: N_PLANTED + 1])
    path = tmp_path_factory.mktemp("eval") / "cmexam_test.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def recipe_text(shared: Path, tokenizer: Path, eval_file: Path, **extra: str) -> str:
    return f"""
seed = 7
[output]
dir = "out"
name = "medsft"

[[source]]
name = "toyhom"
adapter = "cmd_toyhom"
path = "{shared / "toyhom_cmdd" / "样例_内科5000-6000.csv"}"

[[source]]
name = "cmtmedqa"
adapter = "cmtmedqa"
path = "{shared / "cmtmedqa" / "CMtMedQA_test.json"}"

[[source]]
name = "discmed"
adapter = "discmed"
path = "{shared / "disc_med_sft" / "test_examples.jsonl"}"

[[source]]
name = "cmexam"
adapter = "cmexam"
path = "{shared / "cmexam" / "cmexam_val_part1.csv"}"
max_records = {extra.get("cmexam_max", "2000")}

[[source]]
name = "meddialog"
adapter = "meddialog"
path = "{shared / "meddialog_covid" / "COVID-Dialogue-Dataset-Chinese.txt"}"

[[source]]
name = "cmid"
adapter = "cmid"
path = "{shared / "cmid" / "cmid_samples.json"}"

[normalize]
convert = "t2s"

[dedup]
threshold = 0.8
scope = "both"

[decontaminate]
eval = [{{ path = "{eval_file}", adapter = "cmexam" }}]

[lengths]
tokenizer = "{tokenizer}"
template = "intern2"
cutoff_len = {extra.get("cutoff", "2048")}
policy = "drop"

[split]
val_ratio = {extra.get("val_ratio", "0.05")}
"""


@pytest.fixture(scope="module")
def built(
    shared_data: Path,
    tokenizer_json: Path,
    eval_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("build")
    (d / "recipe.toml").write_text(recipe_text(shared_data, tokenizer_json, eval_file), "utf-8")
    result = build(d / "recipe.toml")
    return d, result.manifest


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


@pytest.mark.slow
def test_outputs_load_with_datasets_and_polars(built: tuple[Path, dict[str, Any]]) -> None:
    datasets = pytest.importorskip("datasets")
    d, m = built
    out = d / "out"
    # The folder itself (its card names the Parquet splits), and the JSONL with the features.
    ds = datasets.load_dataset(str(out), cache_dir=str(d / "hf"))
    assert ds["train"].num_rows == m["split"]["train"] > 10_000
    assert ds["validation"].num_rows == m["split"]["val"] > 0
    js = datasets.load_dataset(
        "json",
        data_files={"train": str(out / "train.jsonl"), "val": str(out / "val.jsonl")},
        features=csft_data.alpaca_features(),
        cache_dir=str(d / "hf"),
    )
    assert js["train"].num_rows == m["split"]["train"]
    assert js["train"][:50] == ds["train"][:50]
    assert set(js["train"].column_names) == set(csft_data.alpaca_features())
    for part in ("train", "val"):
        frame = pl.read_parquet(out / f"{part}.parquet")
        assert frame.height == m["outputs"][f"{part}.jsonl"]["records"]
        assert frame.columns[:5] == ["instruction", "input", "output", "system", "history"]
        assert frame["output"].null_count() == 0
    info = json.loads((out / "dataset_info.json").read_text("utf-8"))
    assert info["medsft_train"] == {
        "file_name": "train.parquet",
        "formatting": "alpaca",
        "columns": {
            "prompt": "instruction",
            "query": "input",
            "response": "output",
            "system": "system",
            "history": "history",
        },
    }
    assert (out / "report.html").read_text("utf-8").count("<img") >= 4
    assert (out / "plots" / "lengths.png").stat().st_size > 1000
    assert "medsft_train" in (out / "README.md").read_text("utf-8")


@pytest.mark.slow
def test_every_record_is_accounted_for(built: tuple[Path, dict[str, Any]]) -> None:
    d, m = built
    out = d / "out"
    train, val = jsonl(out / "train.jsonl"), jsonl(out / "val.jsonl")
    assert len(train) + len(val) == sum(s["train"] + s["val"] for s in m["sources"].values())
    for name, s in m["sources"].items():
        adapt = next(st for st in m["stages"] if st["stage"] == "adapt")["sources"][name]
        unit_losses = sum(adapt["removed"].values())
        record_losses = sum(k for r, k in s["removed"].items() if not r.startswith("adapt:"))
        assert s["input_units"] == adapt["converted"] + unit_losses
        assert s["records"] == s["train"] + s["val"] + record_losses, name
    # Duplicates are on record in the clusters file, with the record they duplicate.
    dups = sum(len(c["duplicates"]) for c in jsonl(out / "removed" / "dedup" / "clusters.jsonl"))
    dedup = next(st for st in m["stages"] if st["stage"] == "dedup")["sources"]
    assert dups == sum(sum(c["removed"].values()) for c in dedup.values()) > 300
    # Length drops are kept as records.
    over = sum(len(jsonl(f)) for f in (out / "removed" / "lengths").glob("*.over.jsonl"))
    lengths = next(st for st in m["stages"] if st["stage"] == "lengths")["sources"]
    assert over == sum(c["removed"].get("longer than cutoff_len 2048", 0) for c in lengths.values())
    assert over > 0
    # The cmexam cap.
    assert m["sources"]["cmexam"]["train"] + m["sources"]["cmexam"]["val"] == 2000


@pytest.mark.slow
def test_planted_evaluation_items_are_removed_and_reported(
    built: tuple[Path, dict[str, Any]],
) -> None:
    d, m = built
    out = d / "out"
    planted = {f"cmexam_val_part1.csv:{i}" for i in range(N_PLANTED)}
    kept_ids = {r["id"] for r in jsonl(out / "train.jsonl") + jsonl(out / "val.jsonl")}
    assert not planted & kept_ids
    hits = jsonl(out / "removed" / "decontaminate" / "hits.jsonl")
    assert len(hits) >= N_PLANTED
    assert {h["eval_index"] for h in hits} == set(range(N_PLANTED))
    dec = next(st for st in m["stages"] if st["stage"] == "decontaminate")
    assert dec["sources"]["cmexam"]["removed"]["contains an evaluation item"] == len(hits)
    assert m["decontamination"]["eval_items_hit"] == N_PLANTED
    assert "cmexam_test.csv" in (out / "report.html").read_text("utf-8")


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_WORD = re.compile(r"[^\W_]+")


def shingles(text: str, ngram: int, word_ngram: int = 3) -> frozenset[str]:
    """The dedup's shingle set, written out again here (rust/dedup/shingle.rs, mode ``auto``):
    character ``ngram``-grams when CJK characters make at least half of the units (a CJK
    character is one unit, a run of other letters and digits one), else lower-cased word
    n-grams; a text with fewer units than that is matched whole (exactly), an empty one never."""
    if not text.strip():
        return frozenset()
    cjk = len(_CJK.findall(text))
    if cjk and cjk >= 0.5 * (cjk + len(_WORD.findall(_CJK.sub(" ", text)))):
        if len(text) < ngram:
            return frozenset([text])
        return frozenset(text[i : i + ngram] for i in range(len(text) - ngram + 1))
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < word_ngram:
        return frozenset([text])
    return frozenset(
        " ".join(words[i : i + word_ngram]) for i in range(len(words) - word_ngram + 1)
    )


def straddling_pairs(
    train: list[dict[str, Any]],
    val: list[dict[str, Any]],
    fields: list[str],
    threshold: float,
    ngram: int,
) -> list[tuple[float, dict[str, Any], dict[str, Any]]]:
    """Every (train record, val record) pair whose exact Jaccard similarity (of the shingles of
    ``fields`` joined by newlines, as the dedup reads a record) is at least ``threshold``; no
    MinHash, no LSH: an exact join by prefix filtering. In one global order of the shingles,
    two sets at Jaccard ≥ t share one of the first ``|s| - ⌈t·|s|⌉ + 1`` shingles of each; the
    order here puts the shingles no val record has first, then the rarest in val."""
    text = lambda r: "\n".join(str(r.get(f) or "") for f in fields)  # noqa: E731
    val_sets = [shingles(text(r), ngram) for r in val]
    df = Counter(x for s in val_sets for x in s)

    def prefix(s: frozenset[str]) -> list[str]:
        """The prefix's shingles that some val record has (the others match nothing)."""
        size = len(s) - math.ceil(threshold * len(s) - 1e-9) + 1
        in_val = [x for x in s if x in df]
        size -= len(s) - len(in_val)
        return sorted(sorted(in_val), key=df.__getitem__)[:size] if size > 0 else []

    index: defaultdict[str, list[int]] = defaultdict(list)
    for j, b in enumerate(val_sets):
        for x in prefix(b):
            index[x].append(j)
    found = []
    for rec in train:
        a = shingles(text(rec), ngram)
        for j in sorted({j for x in prefix(a) for j in index.get(x, ())}):
            b = val_sets[j]
            common = len(a & b)
            similarity = common / (len(a) + len(b) - common)
            if similarity >= threshold:
                found.append((similarity, rec, val[j]))
    return found


@pytest.mark.slow
def test_no_conversation_straddles_the_split(built: tuple[Path, dict[str, Any]]) -> None:
    d, m = built
    out = d / "out"
    train, val = jsonl(out / "train.jsonl"), jsonl(out / "val.jsonl")
    conv = lambda r: (r["source"], r["id"])  # noqa: E731
    assert not {conv(r) for r in train} & {conv(r) for r in val}
    assert any(r.get("turn", 0) > 1 for r in val)  # dialogue turns reached val, together
    assert m["split"]["near_duplicate_links"] > 0
    assert m["split"]["val"] == len(val)
    assert abs(len(val) - 0.05 * (len(train) + len(val))) < m["split"]["largest_group"] + 1


@pytest.mark.slow
def test_no_near_duplicate_pair_straddles_the_split(built: tuple[Path, dict[str, Any]]) -> None:
    """Independently of the build's grouping pass: every pair of a train and a val record at
    the split's ``group_threshold`` (exact Jaccard on the dedup's fields and shingles)."""
    d, m = built
    out = d / "out"
    train, val = jsonl(out / "train.jsonl"), jsonl(out / "val.jsonl")
    threshold = m["recipe"]["split"]["group_threshold"]
    dedup = m["recipe"]["dedup"]
    assert threshold > 0 and len(val) > 100
    crossing = straddling_pairs(train, val, dedup["fields"], threshold, dedup["ngram"])
    shown = [
        f"{s:.3f} train {a['source']}:{a['id']} / val {b['source']}:{b['id']}: "
        f"{a['instruction'][:30]!r} / {b['instruction'][:30]!r}"
        for s, a, b in sorted(crossing, key=lambda x: -x[0])[:10]
    ]
    assert not crossing, f"{len(crossing)} near-duplicate pairs straddle the split:\n" + "\n".join(
        shown
    )


@pytest.mark.slow
def test_rerun_is_byte_identical_and_cached(
    built: tuple[Path, dict[str, Any]], shared_data: Path, tokenizer_json: Path, eval_file: Path
) -> None:
    d, _ = built
    first = {
        p.relative_to(d / "out"): p.read_bytes()
        for p in (d / "out").rglob("*")
        if p.is_file() and ".cache" not in p.parts
    }
    seen: list[tuple[str, bool]] = []
    build(d / "recipe.toml", on_stage=lambda s, c: seen.append((s, c)))
    assert all(c for s, c in seen if s != "write")
    again = {
        p.relative_to(d / "out"): p.read_bytes()
        for p in (d / "out").rglob("*")
        if p.is_file() and ".cache" not in p.parts
    }
    assert again == first
    # A fresh folder gives the same bytes too.
    build(d / "recipe.toml", d / "fresh")
    fresh = {
        p.relative_to(d / "fresh"): p.read_bytes()
        for p in (d / "fresh").rglob("*")
        if p.is_file() and ".cache" not in p.parts
    }
    assert fresh == first
    # A change in a late stage re-runs only that stage.
    seen.clear()
    (d / "recipe2.toml").write_text(
        recipe_text(shared_data, tokenizer_json, eval_file, val_ratio="0.1"), "utf-8"
    )
    m2 = build(d / "recipe2.toml", d / "out", on_stage=lambda s, c: seen.append((s, c)))
    assert [s for s, c in seen if not c] == ["split", "write"]
    assert (
        m2.manifest["split"]["val"] > 1.5 * json.loads(first[Path("manifest.json")])["split"]["val"]
    )


def test_mixture_targets_water_fill_and_style_shares() -> None:
    assert _water_fill(10, [1, 1, 1], [2, 100, 100]) == [2, 4, 4]
    assert _water_fill(5, [1, 1], [1, 1]) == [1, 1]
    src = [
        {"available": 1000, "max_records": None, "weight": 1.0, "style": "qa"},
        {"available": 100, "max_records": None, "weight": 1.0, "style": "qa"},
        {"available": 300, "max_records": 50, "weight": 1.0, "style": "mcqa"},
    ]
    plain, _ = mixture_targets(src, MixtureConfig())
    assert plain == [1000, 100, 50]
    # Half qa, half mcqa, 100 records: mcqa is capped at 50, qa split 1000:100.
    shared, how = mixture_targets(src, MixtureConfig(total=100, style_shares={"qa": 1, "mcqa": 1}))
    assert shared == [45, 5, 50] and how["total"] == 100
    # A high temperature flattens the sizes: 1000 and 100 get close to equal shares.
    flat, _ = mixture_targets(src[:2], MixtureConfig(total=200, temperature=100.0))
    assert abs(flat[0] - flat[1]) < 10


def test_dry_run_and_recipe_errors(
    tmp_path: Path,
    shared_data: Path,
    tokenizer_json: Path,
    eval_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(recipe_text(shared_data, tokenizer_json, eval_file), "utf-8")
    assert main(["build", str(recipe), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "source toyhom" in printed and "decontaminate  against cmexam_test.csv" in printed
    assert not (tmp_path / "out").exists()

    recipe.write_text(recipe.read_text("utf-8").replace("threshold = 0.8", "treshold = 0.8"))
    with pytest.raises(ConfigError, match=r"r\.toml: \[dedup\] unknown keys: treshold"):
        load_recipe(recipe)
    assert main(["build", str(recipe)]) == 2
    assert "treshold" in capsys.readouterr().err

    with pytest.raises(ConfigError, match=r"\[source 'a'\] adapter: unknown adapter 'nope'"):
        parse_recipe(
            {"output": {"dir": "x"}, "source": [{"name": "a", "adapter": "nope", "path": "p"}]},
            base=tmp_path,
        )
    missing = tmp_path / "m.toml"
    missing.write_text(
        '[output]\ndir = "o"\n[[source]]\nname = "a"\nadapter = "alpaca"\npath = "gone.json"\n'
    )
    assert main(["build", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "source 'a'" in err and "gone.json" in err
    assert not (tmp_path / "o" / "train.jsonl").exists()


def test_demo_build_is_the_main_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--demo", "-o", str(tmp_path / "d")]) == 0
    m = json.loads((tmp_path / "d" / "manifest.json").read_text("utf-8"))
    assert set(m["sources"]) == {"toyhom", "cmtmedqa", "discmed", "exam_practice"}
    dedup = next(st for st in m["stages"] if st["stage"] == "dedup")["sources"]
    assert dedup["toyhom"]["removed"]["exact duplicate (per-source)"] > 0
    # Every later stage removes records too (see test_demo.py); the split keeps the rest.
    mixed = next(st for st in m["stages"] if st["stage"] == "mixture")["sources"]
    kept = sum(c["out"] for c in mixed.values())
    assert kept < sum(c["out"] for c in dedup.values())
    assert m["split"]["train"] + m["split"]["val"] == kept
    assert len(jsonl(tmp_path / "d" / "val.jsonl")) == m["split"]["val"] > 0
    assert "train" in capsys.readouterr().out
    assert main(["build"]) == 2  # neither a recipe nor --demo


def test_mixture_default_totals() -> None:
    src = [
        {"available": 1000, "max_records": None, "weight": 1.0, "style": "qa"},
        {"available": 2, "max_records": None, "weight": 1.0, "style": "qa"},
        {"available": 50, "max_records": None, "weight": 1.0, "style": "mcqa"},
    ]
    # The mcqa style (50 records) at half the mixture bounds it at 100; the tiny qa source
    # does not: the other qa source takes its part.
    t, how = mixture_targets(src, MixtureConfig(temperature=2.0, style_shares={"qa": 1, "mcqa": 1}))
    assert t[2] == 50 and t[0] + t[1] == 50 and t[1] <= 2 and how["total"] == 100
    # Weights alone, without a total, keep everything.
    src[0]["weight"] = 5.0
    t, _ = mixture_targets(src, MixtureConfig())
    assert t == [1000, 2, 50]


@pytest.mark.slow
def test_the_shared_data_recipe_builds(shared_data: Path, tmp_path: Path) -> None:
    """recipes/shared_data.toml: every real sample of ../shared/data through its adapter (the
    recipe names the files relative to itself; ``shared_data`` skips without them)."""
    recipe = Path(__file__).resolve().parent.parent / "recipes" / "shared_data.toml"
    m = build(recipe, tmp_path / "o").manifest
    assert len(m["sources"]) == 10
    assert m["split"]["train"] + m["split"]["val"] == 20_000
    for name, s in m["sources"].items():
        kept = s["train"] + s["val"]
        assert kept > 0, name
        lost = sum(k for r, k in s["removed"].items() if not r.startswith("adapt:"))
        assert s["records"] == kept + lost
    frame = pl.read_parquet(tmp_path / "o" / "train.parquet")
    assert set(frame["source"].unique()) >= {"headqa", "pubmedqa", "meddialog", "cmid"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: DedupConfig(threshold=5), r"DedupConfig: \[dedup\] threshold: must be between"),
        (lambda: DedupConfig(fields=()), r"fields: expected a non-empty list"),
        (lambda: SplitConfig(val_ratio=0.95), r"\[split\] val_ratio"),
        (lambda: MixtureConfig(style_shares={"chat": 1.0}), r"style_shares: chat = 1.0"),
        (lambda: LengthsConfig(tokenizer="t.json", policy="cut"), r"policy: expected one of"),
        (lambda: DedupConfig(threshold="0.8"), r"threshold: expected an integer or a number"),  # type: ignore[arg-type]
    ],
)
def test_stage_configs_built_in_python_are_checked_as_recipe_tables_are(
    make: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make()
    assert DedupConfig(threshold=0.7).to_json()["threshold"] == 0.7
