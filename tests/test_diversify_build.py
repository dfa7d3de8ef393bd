"""The ``[diversify]`` stage of ``csft-data build`` over the real shared data: instructions
generated through a local chat-completions server (``_diversify_common``'s writer) are given
to every question–answer and dialogue record by scenario, as the system prompt, counted in the
manifest; exam records keep theirs; a re-run is byte-identical, cached and sends nothing; an
instruction file instead of a generator, as the instruction; a recipe without the table builds
as before."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _chat_server import serve
from _diversify_common import Writer, writer_handler
from csft_data.cli import main
from csft_data.diversifier import scenario_of
from csft_data.pipeline import build

pytest.importorskip("csft_train")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def recipe(shared: Path, diversify: str) -> str:
    return f"""
seed = 3
[output]
dir = "out"
name = "div"

[[source]]
name = "toyhom"
adapter = "cmd_toyhom"
path = "{shared / "toyhom_cmdd" / "样例_内科5000-6000.csv"}"

[[source]]
name = "cmtmedqa"
adapter = "cmtmedqa"
path = "{shared / "cmtmedqa" / "CMtMedQA_test.json"}"

[[source]]
name = "cmexam"
adapter = "cmexam"
path = "{shared / "cmexam" / "cmexam_val_part1.csv"}"

[diversify]
{diversify}
"""


def records(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for part in ("train", "val")
        for line in (folder / f"{part}.jsonl").read_text("utf-8").splitlines()
    ]


def outputs(folder: Path) -> dict[Path, bytes]:
    return {
        p.relative_to(folder): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and ".cache" not in p.parts and p.name != "timings.json"
    }


@pytest.fixture
def writer() -> Iterator[tuple[str, Writer]]:
    w = Writer(key=None, flaky=False)
    with serve(writer_handler(w)) as url:
        yield url, w


@pytest.mark.slow
def test_a_build_with_generated_instructions(
    shared_data: Path, tmp_path: Path, writer: tuple[str, Writer]
) -> None:
    url, w = writer
    table = f'generator = "url:{url}"\nmodel = "gen-x"\ntarget = 12\nbatch = 4'
    (tmp_path / "r.toml").write_text(recipe(shared_data, table), "utf-8")
    m = build(tmp_path / "r.toml").manifest
    out = tmp_path / "out"
    stage = next(out.joinpath(".cache").glob("diversify-*"))
    accepted = [json.loads(x) for x in (stage / "instructions.jsonl").read_text().splitlines()]
    sets: dict[str, set[str]] = {"single": set(), "multi": set()}
    for r in accepted:
        sets[r["scenario"]].add(r["instruction"])
    assert {s: len(v) for s, v in sets.items()} == {"single": 18, "multi": 18}  # 6 seeds + 12
    given: Counter[str] = Counter()
    exams = 0
    for r in records(out):  # the mixture keeps every record here: the stage's counts hold
        if r["style"] == "mcqa":
            assert not r["system"]
            exams += 1
            continue
        assert r["system"] in sets[scenario_of(r)], r["id"]
        given[scenario_of(r)] += 1
    div = m["diversify"]
    assert div["assigned"] == dict(given) and set(given) == {"single", "multi"}
    assert div["untouched"] == {"style mcqa not diversified": exams} and exams > 0
    assert {s: sum(c) for s, c in div["per_instruction"].items()} == dict(given)
    assert div["source"]["generator"] == f"url:{url}#gen-x" and len(div["sha256"]) == 64
    assert [st["stage"] for st in m["stages"]][3:6] == ["decontaminate", "diversify", "lengths"]

    # A re-run: every stage cached, nothing sent, the same bytes; a fresh folder generates
    # again (its own cache) and gives the same bytes too.
    first, sent = outputs(out), len(w.bodies)
    seen: list[tuple[str, bool]] = []
    build(tmp_path / "r.toml", on_stage=lambda s, c: seen.append((s, c)))
    assert all(c for s, c in seen if s != "write") and len(w.bodies) == sent
    assert outputs(out) == first
    build(tmp_path / "r.toml", tmp_path / "fresh")
    assert len(w.bodies) > sent and outputs(tmp_path / "fresh") == first


@pytest.mark.slow
def test_a_build_with_an_instruction_file_as_instruction(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"instruction": "请像医生一样直接回答患者的问题。", "scenario": "single"},
        {"instruction": "请像医生一样回答，必要时追问病史。", "scenario": "multi"},
    ]
    f = tmp_path / "instructions.jsonl"
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    table = f'instructions = "{f}"\nplacement = "instruction"\nscenarios = ["single"]'
    (tmp_path / "r.toml").write_text(recipe(shared_data, table), "utf-8")
    assert main(["build", str(tmp_path / "r.toml"), "--dry-run"]) == 0
    assert f"diversify      single from {f} as instruction" in capsys.readouterr().out
    m = build(tmp_path / "r.toml").manifest
    n = 0
    for r in records(tmp_path / "out"):
        if r["style"] != "mcqa" and scenario_of(r) == "single":
            assert r["instruction"] == rows[0]["instruction"] and r["input"]
            n += 1
        else:
            assert r["instruction"] not in (rows[0]["instruction"], rows[1]["instruction"])
    assert m["diversify"]["assigned"] == {"single": n} and n > 0
    assert m["diversify"]["source"] == {"file": str(f)}
    assert m["recipe"]["diversify"]["placement"] == "instruction"
