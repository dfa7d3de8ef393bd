"""`csft-data dedup` end to end on the real Toyhom CSV plus planted near/exact copies in a
second source: accounting, scopes, cluster links, determinism, bad input."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pytest

import csft_data as cd
from csft_data.cli import main
from csft_data.dedup import parse_size


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def toyhom_rows(toyhom_csv: Path) -> list[dict[str, str]]:
    text = toyhom_csv.read_bytes().decode("gbk")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture()
def planted(toyhom_rows: list[dict[str, str]], tmp_path: Path) -> Path:
    """A second source: 30 exact copies and 30 one-character edits of long Toyhom answers,
    plus 40 unrelated records."""
    rng = random.Random(3)
    distinct = {r["answer"]: r for r in toyhom_rows}  # the CSV repeats some rows
    long_rows = [r for r in distinct.values() if len(r["answer"]) > 150]
    out = []
    for r in long_rows[:30]:
        out.append({"ask": r["ask"], "answer": r["answer"], "tag": "exact"})
    for r in long_rows[30:60]:
        a = list(r["answer"])
        a[rng.randrange(len(a))] = "某"
        out.append({"ask": r["ask"], "answer": "".join(a), "tag": "near"})
    for i in range(40):
        out.append(
            {
                "ask": f"问题{i}：" + "咳嗽发热" * (i + 3),
                "answer": f"回答编号{i}" * 30,
                "tag": "new",
            }
        )
    path = tmp_path / "planted.jsonl"
    path.write_text("\n".join(json.dumps(o, ensure_ascii=False) for o in out) + "\n", "utf-8")
    return path


def run(args: list[str]) -> int:
    return main(["dedup", *args, "--output-format", "json"])


def test_exact_duplicates_of_the_real_csv(
    toyhom_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, clusters = tmp_path / "out.jsonl", tmp_path / "clusters.jsonl"
    assert run([str(toyhom_csv), "-o", str(out), "--clusters", str(clusters)]) == 0
    stats = json.loads(capsys.readouterr().out)
    src = stats["sources"][0]
    assert src["records"] == 7644
    assert src["exact_duplicates"] == 378  # documented in shared/data/MANIFEST.md
    assert src["records"] == src["kept"] + src["exact_duplicates"] + src["near_duplicates"]
    assert len(read_jsonl(out)) == src["kept"]
    lines = read_jsonl(clusters)
    assert len(lines) == stats["clusters"]
    removed = sum(len(c["duplicates"]) for c in lines)  # type: ignore[arg-type]
    assert removed == src["exact_duplicates"] + src["near_duplicates"]


@pytest.mark.parametrize("sketch", ["oph", "minhash"])
def test_cross_source_duplicates_point_at_kept_records(
    toyhom_csv: Path,
    planted: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sketch: str,
) -> None:
    out, clusters = tmp_path / "out.jsonl", tmp_path / "c.jsonl"
    args = [str(toyhom_csv), str(planted), "-o", str(out), "--fields", "ask,answer"]
    args += ["--sketch", sketch]
    assert run([*args, "--clusters", str(clusters)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["config"]["sketch"] == sketch
    toy, plant = stats["sources"]
    assert plant["records"] == 100
    assert plant["cross_source"] == plant["exact_duplicates"] + plant["near_duplicates"]
    assert plant["exact_duplicates"] == 30
    assert plant["near_duplicates"] >= 29  # one-character edits of 150+ character answers
    assert plant["kept"] >= 40
    kept = read_jsonl(out)
    assert sum(r.get("tag") == "new" for r in kept) == 40
    assert len(kept) == toy["kept"] + plant["kept"]
    for c in read_jsonl(clusters):
        for d in c["duplicates"]:  # type: ignore[attr-defined]
            if d["scope"] == "cross-source":
                assert d["source"] == "planted"
                assert d["duplicate_of"]["source"] == "样例_内科5000-6000"
                assert d["similarity"] >= 0.8


def test_per_source_scope_never_crosses_sources(
    toyhom_csv: Path, planted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    args = [str(toyhom_csv), str(planted), "-o", str(out), "--fields", "ask,answer"]
    assert run([*args, "--scope", "per-source"]) == 0
    plant = json.loads(capsys.readouterr().out)["sources"][1]
    assert plant["kept"] == 100 and plant["cross_source"] == 0


def test_deterministic_outputs(toyhom_csv: Path, planted: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        d = tmp_path / name
        args = [str(toyhom_csv), str(planted), "-o", str(d / "out.jsonl")]
        assert run([*args, "--clusters", str(d / "c.jsonl"), "--fields", "ask,answer"]) == 0
    for f in ("out.jsonl", "c.jsonl"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_missing_field_fails_and_writes_nothing(
    planted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "kept.jsonl"
    code = main(["dedup", str(planted), "-o", str(out), "--fields", "ask,question"])
    assert code == 2
    assert "field 'question'" in capsys.readouterr().err
    assert not out.exists()


def test_skip_mode_accounts_for_rejected_records(planted: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = planted.read_text("utf-8").splitlines()
    lines[5] = lines[5][:-3]  # a truncated JSON line
    bad.write_text("\n".join(lines) + "\n", "utf-8")
    stats = cd.dedup_files([bad], tmp_path / "out.jsonl", on_error="skip")
    src = stats["sources"][0]
    assert src["records"] == 100 and src["rejected"] == 1
    assert src["records"] == src["kept"] + src["exact_duplicates"] + src["near_duplicates"] + 1
    q = read_jsonl(Path(stats["quarantine"]))
    assert len(q) == 1 and q[0]["line"] == 6


def test_priority_keeps_the_preferred_source(
    toyhom_csv: Path, planted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    args = [str(toyhom_csv), str(planted), "-o", str(out), "--fields", "ask,answer"]
    assert run([*args, "--keep", "priority", "--priority", "planted"]) == 0
    toy, plant = json.loads(capsys.readouterr().out)["sources"]
    assert plant["kept"] == 100, "every planted record wins its cluster"
    assert toy["cross_source"] >= 59
    assert run([*args, "--keep", "priority", "--priority", "nosuch"]) == 2


def test_identical_records_are_exact_duplicates(tmp_path: Path) -> None:
    src = tmp_path / "same.jsonl"
    row = json.dumps({"q": "高血压患者能吃党参吗？", "a": "可以。" * 20}, ensure_ascii=False)
    src.write_text(f"{row}\n{row}\n{row}\n", "utf-8")
    clusters = tmp_path / "c.jsonl"
    stats = cd.dedup_files([src], tmp_path / "out.jsonl", clusters=clusters)
    assert stats["sources"][0]["exact_duplicates"] == 2
    (cluster,) = read_jsonl(clusters)
    assert [d["kind"] for d in cluster["duplicates"]] == ["exact", "exact"]  # type: ignore[index]


def test_output_format_follows_the_output_name(
    toyhom_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same kept records as JSON Lines, a JSON array, CSV and Parquet."""
    base = tmp_path / "kept.jsonl"
    assert run([str(toyhom_csv), "-o", str(base)]) == 0
    want = read_jsonl(base)
    assert len(want) == json.loads(capsys.readouterr().out)["sources"][0]["kept"]
    for name in ("kept.json", "kept.csv", "kept.parquet"):
        out = tmp_path / name
        assert run([str(toyhom_csv), "-o", str(out)]) == 0
        capsys.readouterr()
        if name.endswith(".json"):
            got = json.loads(out.read_text(encoding="utf-8"))
        else:
            got = cd.read(out).to_dicts()
        assert got == want, name
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kept.csv",
        "kept.json",
        "kept.jsonl",
        "kept.parquet",
    ], "no staging files are left behind"


def test_nested_records_cannot_be_csv_and_nothing_is_written(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dialogues = shared_data / "disc_med_sft" / "test_examples.jsonl"
    out, clusters = tmp_path / "kept.csv", tmp_path / "clusters.jsonl"
    assert run([str(dialogues), "-o", str(out), "--clusters", str(clusters)]) == 2
    assert "CSV cannot hold the nested fields" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    parquet = tmp_path / "kept.parquet"
    assert run([str(dialogues), "-o", str(parquet)]) == 0
    assert cd.read(parquet).height == json.loads(capsys.readouterr().out)["sources"][0]["kept"]


def test_a_bad_option_leaves_earlier_side_files_alone(toyhom_csv: Path, tmp_path: Path) -> None:
    """Side files are taken back only when this run wrote them (a failed conversion), never
    when the run stopped before writing anything."""
    clusters = tmp_path / "clusters.jsonl"
    clusters.write_text("from an earlier run\n", encoding="utf-8")
    out = tmp_path / "kept.parquet"
    assert run([str(toyhom_csv), "-o", str(out), "--clusters", str(clusters), "--ngram", "0"]) == 2
    assert clusters.read_text(encoding="utf-8") == "from an earlier run\n"
    assert not out.exists()


def test_dedup_without_output_writes_only_the_clusters(tmp_path: Path) -> None:
    """``output=None``: the clusters and counts of a full run, and no copy of the records."""
    from csft_data import dedup_files

    src = tmp_path / "a.jsonl"
    rows = ["高血压患者能吃党参吗？我有高血压这两天想泡水喝", "完全不同的一条记录，讲糖尿病的饮食"]
    src.write_text("".join(json.dumps({"t": r}, ensure_ascii=False) + "\n" for r in rows * 2))
    full = dedup_files([src], tmp_path / "kept.jsonl", clusters=tmp_path / "c1.jsonl")
    only = dedup_files([src], None, clusters=tmp_path / "c2.jsonl")
    assert only["sources"][0]["kept"] == full["sources"][0]["kept"] == 2
    assert (tmp_path / "c1.jsonl").read_bytes() == (tmp_path / "c2.jsonl").read_bytes()
    assert only["output"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.jsonl",
        "c1.jsonl",
        "c2.jsonl",
        "kept.jsonl",
    ]


def test_out_of_core_run_writes_what_the_in_memory_run_writes(
    toyhom_csv: Path, planted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    outputs = {}
    for name, extra in (("mem", []), ("disk", ["--memory-limit", "0", "--tmp-dir", str(spill)])):
        d = tmp_path / name
        args = [str(toyhom_csv), str(planted), "-o", str(d / "out.jsonl"), "--fields", "ask,answer"]
        assert run([*args, "--clusters", str(d / "c.jsonl"), *extra]) == 0
        stats = json.loads(capsys.readouterr().out)
        assert stats["out_of_core"] is (name == "disk")
        assert (stats["spilled_bytes"] > 0) is (name == "disk")
        outputs[name] = [(d / f).read_bytes() for f in ("out.jsonl", "c.jsonl")]
        stats.pop("seconds")
        outputs[name].append(json.dumps([stats["sources"], stats["cross_source_scope"]]))
    assert outputs["mem"] == outputs["disk"]
    assert list(spill.iterdir()) == []  # the temporary folder is gone


def test_a_bad_memory_limit_is_an_error(
    toyhom_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    assert run([str(toyhom_csv), "-o", str(out), "--memory-limit", "lots"]) == 2
    assert "not a size: 'lots'" in capsys.readouterr().err
    assert not out.exists()
    assert parse_size("1.5GB") == 1_500_000_000 and parse_size("2GiB") == 2 * 1024**3


def test_per_source_outputs_cut_the_one_output_by_source(
    toyhom_csv: Path, planted: Path, tmp_path: Path
) -> None:
    """``outputs`` (one JSONL file per input) hold the kept records ``output`` holds, by source;
    a CSV input's kept records are written as JSON Lines either way."""
    kw = {"fields": ["ask", "answer"], "clusters": None}
    one = tmp_path / "one.jsonl"
    a = cd.dedup_files([toyhom_csv, planted], one, **kw)
    per = [tmp_path / "kept-toy.jsonl", tmp_path / "kept-planted.jsonl"]
    b = cd.dedup_files([toyhom_csv, planted], None, outputs=per, **kw)
    assert [s["kept"] for s in a["sources"]] == [s["kept"] for s in b["sources"]]
    assert b["sources"][1]["kept"] < b["sources"][1]["records"]  # cross-source duplicates
    assert one.read_bytes() == per[0].read_bytes() + per[1].read_bytes()
    with pytest.raises(cd.ConfigError, match="1 outputs for 2 inputs"):
        cd.dedup_files([toyhom_csv, planted], None, outputs=per[:1], **kw)
    with pytest.raises(cd.ConfigError, match="JSON Lines"):
        cd.dedup_files([toyhom_csv, planted], None, outputs=[per[0], tmp_path / "x.csv"], **kw)
    with pytest.raises(cd.ConfigError, match="overwrite an input"):
        cd.dedup_files([toyhom_csv, planted], None, outputs=[per[0], planted], **kw)
