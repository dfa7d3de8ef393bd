"""The first run shows the whole product: ``csft-data build --demo`` on the embedded recipe, where
every stage acts (dedup, decontamination of planted exam items, token lengths with a cut-off,
a mixture cap, the split) and the report shows it; the demo tokenizer is a real Qwen-style
tokenizer folder that ``transformers`` loads and that the shipped script regenerates."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from csft_data.cli import main
from csft_data.demo import DEMO_DIR, DEMO_RECIPE_FILES, DEMO_TOKENIZER
from csft_data.lengths import count_tokens, encode_supervised
from csft_data.pipeline import build, load_recipe
from csft_data.pipeline.runner import recipe_inputs

#: The exam items (0-based rows of exam_items.csv) planted into exam_practice.jsonl.
PLANTED = {1, 5, 9}
CUTOFF = 640


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


def stage(m: dict[str, Any], name: str) -> dict[str, Any]:
    st: dict[str, Any] = next(s for s in m["stages"] if s["stage"] == name)
    return st


def removed(m: dict[str, Any], name: str) -> int:
    return sum(sum(c["removed"].values()) for c in stage(m, name)["sources"].values())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    """The demo built through the CLI: (output folder, manifest, what it printed)."""
    out = tmp_path_factory.mktemp("demo") / "demo_out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["build", "--demo", "-o", str(out)]) == 0
    m = json.loads((out / "manifest.json").read_text("utf-8"))
    return out, m, printed.getvalue()


def exam_items() -> list[dict[str, str]]:
    with (DEMO_DIR / "exam_items.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_demo_every_stage_acts(demo: tuple[Path, dict[str, Any], str]) -> None:
    out, m, printed = demo
    assert set(m["sources"]) == {"toyhom", "cmtmedqa", "discmed", "exam_practice"}
    # The stage summary: each of these stages changes the record count.
    counts = {
        name: (int(a.replace(",", "")), int(b.replace(",", "")))
        for name, a, b in re.findall(r"^(\w+)\s+([\d,]+) → +([\d,]+)", printed, re.M)
    }
    for name in ("adapt", "dedup", "decontaminate", "lengths", "mixture"):
        assert counts[name][0] != counts[name][1], name
    assert removed(m, "dedup") > 0
    assert removed(m, "decontaminate") == len(PLANTED)
    # lengths: records over the cut-off are dropped, kept as evidence, all longer than it.
    ln = stage(m, "lengths")["sources"]
    key = f"longer than cutoff_len {CUTOFF}"
    n_over = sum(c["removed"].get(key, 0) for c in ln.values())
    assert n_over == removed(m, "lengths") > 0
    assert n_over < 0.05 * sum(c["in"] for c in ln.values())  # a small share
    over = [r for f in sorted((out / "removed" / "lengths").glob("*.over.jsonl")) for r in jsonl(f)]
    assert len(over) == n_over
    enc = encode_supervised(over, DEMO_TOKENIZER, template="qwen", cutoff_len=10**6)
    assert min(enc.lengths) > CUTOFF
    # mixture: the cap on the largest source.
    mx = stage(m, "mixture")["sources"]["toyhom"]
    assert mx["out"] == 800 and mx["removed"] == {"over the mixture quota": mx["in"] - 800} != {}
    assert len(jsonl(out / "removed" / "mixture" / "toyhom.unselected.jsonl")) == mx["in"] - 800
    # split: train + val are what the mixture kept, both non-empty.
    kept = sum(c["out"] for c in stage(m, "mixture")["sources"].values())
    assert m["split"]["train"] + m["split"]["val"] == kept
    assert len(jsonl(out / "val.jsonl")) == m["split"]["val"] > 0
    assert f"train {m['split']['train']:,}, val {m['split']['val']:,}" in printed


def test_demo_decontamination_hits_the_planted_items(
    demo: tuple[Path, dict[str, Any], str],
) -> None:
    out, m, _ = demo
    items = exam_items()
    unanswered = {i for i, row in enumerate(items) if not row["Answer"].strip()}
    assert len(items) == 12 and len(unanswered) == 2
    assert unanswered & PLANTED  # an item without an answer is still checked, and hit
    dec = m["decontamination"]
    assert dec["eval_items"] == len(items)  # items with empty answers count as items
    assert dec["eval_items_hit"] == len(PLANTED)
    assert not dec["eval_items_left_out"] and not dec["eval_items_unchecked"]
    assert [Path(e["file"]).name for e in dec["evals"]] == ["exam_items.csv"]
    hits = jsonl(out / "removed" / "decontaminate" / "hits.jsonl")
    assert {h["eval_index"] for h in hits} == PLANTED and len(hits) == len(PLANTED)
    assert {h["source"] for h in hits} == {"exam_practice"}
    assert all(Path(h["eval_file"]).name == "exam_items.csv" for h in hits)
    per = stage(m, "decontaminate")["sources"]["exam_practice"]
    assert per["removed"] == {"contains an evaluation item": len(PLANTED)}
    # No planted question reaches the outputs; the other practice records do.
    kept = jsonl(out / "train.jsonl") + jsonl(out / "val.jsonl")
    text = "\n".join(r["instruction"] + r["input"] for r in kept)
    for i in PLANTED:
        assert items[i]["Question"] not in text
    practice = [r for r in kept if r["id"].startswith("exam_practice.jsonl:")]
    assert len(practice) == per["out"] > 0


def test_demo_report_shows_lengths_and_decontamination(
    demo: tuple[Path, dict[str, Any], str],
) -> None:
    out, m, _ = demo
    report = (out / "report.html").read_text("utf-8")
    for plot in ("lengths.png", "decontamination.png", "clusters.png", "stages.png"):
        assert f"src='plots/{plot}'" in report, plot
        assert (out / "plots" / plot).stat().st_size > 1000, plot
    assert "Token lengths and the cut-off" in report
    dec = report[report.index("<h2>Decontamination</h2>") :]
    assert "<th>evaluation items</th>" in dec and "<td>exam_items.csv</td>" in dec
    assert "<td>exam_practice ← exam_items.csv</td><td>3</td>" in dec
    assert "No evaluation files" not in report
    assert f"longer than cutoff_len {CUTOFF}" in report and "over the mixture quota" in report
    card = (out / "README.md").read_text("utf-8")
    assert "`qwen` template" in card and f"cut-off {CUTOFF}" in card
    assert set(m["removed_files"]) == {"dedup", "decontaminate", "lengths", "mixture"}


def test_demo_lengths_come_back_as_arrays_in_recipe_order(
    demo: tuple[Path, dict[str, Any], str],
) -> None:
    """The lengths stage keeps one u32 total per record (``totals.bin``, sources in recipe
    order) and no per-record JSON; each source's slice matches its own statistics."""
    import numpy as np

    from csft_data.lengths import NOT_COUNTED

    out, m, _ = demo
    st = stage(m, "lengths")
    (folder,) = (out / ".cache").glob("lengths-*")
    assert not (folder / "tokens.jsonl").exists()
    totals = np.fromfile(folder / "totals.bin", dtype="<u4")
    order = [s["name"] for s in m["recipe"]["sources"]]
    assert json.loads((folder / "stage.json").read_text("utf-8"))["totals_order"] == order
    start = 0
    for n in order:
        c = st["sources"][n]
        part = totals[start : start + c["in"]]
        start += c["in"]
        part = part[part != NOT_COUNTED]
        assert int(part.max()) == c["tokens"]["quantiles"]["max"], n
        assert int(part.sum()) == c["tokens"]["total_tokens"], n
        assert int((part > CUTOFF).sum()) == c["over_cutoff"], n
    assert start == len(totals)


def test_demo_build_is_byte_identical(
    demo: tuple[Path, dict[str, Any], str], tmp_path: Path
) -> None:
    out, _, _ = demo
    build(load_recipe(DEMO_DIR / "recipe.toml", tmp_path / "again"))

    def files(d: Path) -> dict[Path, bytes]:
        return {
            p.relative_to(d): p.read_bytes()
            for p in d.rglob("*")
            if p.is_file() and ".cache" not in p.parts and p.name not in ("timings.json", ".lock")
        }

    first, again = files(out), files(tmp_path / "again")
    assert sorted(first) == sorted(again)
    assert [p for p in first if first[p] != again[p]] == []


def test_demo_recipe_files_are_what_the_recipe_reads() -> None:
    recipe = load_recipe(DEMO_DIR / "recipe.toml", "unused")
    read = {
        Path(p).resolve().relative_to(DEMO_DIR).as_posix()
        for _, p in recipe_inputs(recipe)
        if p is not None
    }
    read.add("tokenizer/tokenizer_config.json")  # read beside tokenizer.json
    read.add("recipe.toml")
    assert read == set(DEMO_RECIPE_FILES)
    assert all((DEMO_DIR / f).is_file() for f in DEMO_RECIPE_FILES)
    # Small enough to ship: the tokenizer folder and the project's own demo files.
    assert DEMO_TOKENIZER.stat().st_size < 300_000
    for name in ("exam_items.csv", "exam_practice.jsonl", "tokenizer/tokenizer_config.json"):
        assert (DEMO_DIR / name).stat().st_size < 10_000, name


def test_demo_tokenizer_loads_with_transformers() -> None:
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    raw = tokenizers.Tokenizer.from_file(str(DEMO_TOKENIZER))
    tok = transformers.AutoTokenizer.from_pretrained(str(DEMO_TOKENIZER.parent))
    assert tok.bos_token is None
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert [raw.token_to_id(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")] == [
        0,
        1,
        2,
    ]
    assert len(tok) == raw.get_vocab_size() == 3000
    texts = [
        "高血压患者能吃党参吗？",
        "醫生，我頭痛三天了，需要做CT嗎？",
        "Take 2 tablets (500 mg) every 8 hours.\n\n  indented line",
        "<|im_start|>user\n你好<|im_end|>\n",
        "",
        *(r["output"] for r in jsonl(DEMO_DIR / "exam_practice.jsonl")),
    ]
    for text in texts:
        want = raw.encode(text, add_special_tokens=False).ids
        assert tok.encode(text, add_special_tokens=False) == want, text
        assert tok.decode(want) == text
    # csft-data's counter (Rust) gives the same counts.
    counts = count_tokens(DEMO_TOKENIZER, texts).tolist()
    assert counts == [len(raw.encode(t, add_special_tokens=False).ids) for t in texts]


def test_demo_tokenizer_chat_template_is_the_qwen_template(
    demo: tuple[Path, dict[str, Any], str],
) -> None:
    """The folder's chat template renders records to the ids the build's ``qwen`` template
    gives (LLaMA-Factory's), so a model trained on the demo is prompted as it was trained."""
    transformers = pytest.importorskip("transformers")
    out, _, _ = demo
    tok = transformers.AutoTokenizer.from_pretrained(str(DEMO_TOKENIZER.parent))
    records = jsonl(out / "train.jsonl")
    records = [r for r in records if r["history"]][:5] + [r for r in records if r["input"]][:5]
    enc = encode_supervised(records, DEMO_TOKENIZER, template="qwen", cutoff_len=10**6)
    for k, r in enumerate(records):
        messages = []
        for q, a in r["history"]:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        query = r["instruction"] + ("\n" + r["input"] if r["input"] else "")
        messages += [
            {"role": "user", "content": query},
            {"role": "assistant", "content": r["output"]},
        ]
        ids = tok.apply_chat_template(messages, tokenize=True)
        ids = ids["input_ids"] if not isinstance(ids, list) else ids
        assert list(ids) == enc.example(k)[0].tolist(), r["id"]


def test_demo_tokenizer_is_regenerated_by_its_script(tmp_path: Path) -> None:
    """make_tokenizer.py gives the same bytes run after run, and the shipped folder (compared
    as JSON: another ``tokenizers`` release may lay the file out differently)."""
    pytest.importorskip("tokenizers")
    from csft_data.demo.make_tokenizer import make_tokenizer

    a, b = make_tokenizer(tmp_path / "a"), make_tokenizer(tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        made = json.loads((a.parent / name).read_text("utf-8"))
        shipped = json.loads((DEMO_TOKENIZER.parent / name).read_text("utf-8"))
        assert made == shipped, f"stale {name}: run python -m csft_data.demo.make_tokenizer"
