"""`csft-data normalize` / `demo` / `convert` end to end, on the real GBK CSV and corrupted
copies of it: counts, atomic outputs, quarantine, exit codes and error locations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import csft_data as cd
from csft_data.cli import main


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def single_line_record(src: Path, index: int) -> int:
    """The 1-based line of record `index`, checked to be a one-line record."""
    lines = [line for b in cd.RecordReader(src) for line in b.lines]
    assert lines[index + 1] == lines[index] + 1
    return int(lines[index])  # type: ignore[arg-type]


def corrupt(src: Path, dst: Path, line_no: int, how: str) -> bytes:
    """Copy `src` with line `line_no` (1-based) damaged; returns the damaged line."""
    lines = src.read_bytes().split(b"\n")
    bad = lines[line_no - 1]
    if how == "bytes":
        cut = bad.index(b",") + 1
        bad = bad[:cut] + b"\xff\xfe" + bad[cut:]
    elif how == "field":
        bad = bad + b",extra"
    lines[line_no - 1] = bad
    dst.write_bytes(b"\n".join(lines))
    return bad


def test_normalize_gbk_csv(
    toyhom_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    assert main(["normalize", str(toyhom_csv), "-o", str(out)]) == 0
    rows = read_jsonl(out)
    assert len(rows) == 7644
    assert rows[0]["title"] == "高血压患者能吃党参吗？"
    assert list(rows[0]) == ["department", "title", "ask", "answer"]
    assert "7,644 records" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


@pytest.mark.parametrize("how", ["bytes", "field"])
def test_corrupted_row_fails_with_file_and_line(
    toyhom_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    bad = tmp_path / "bad.csv"
    line = single_line_record(toyhom_csv, 150)
    corrupt(toyhom_csv, bad, line, how)
    out = tmp_path / "out.jsonl"
    assert main(["normalize", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:{line} (record 150" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"], "no partial output"


@pytest.mark.parametrize("how", ["bytes", "field"])
def test_skip_mode_quarantines_the_bad_row(toyhom_csv: Path, tmp_path: Path, how: str) -> None:
    bad = tmp_path / "bad.csv"
    line = single_line_record(toyhom_csv, 150)
    raw = corrupt(toyhom_csv, bad, line, how)
    out = tmp_path / "out.jsonl"
    code = main(["normalize", str(bad), "-o", str(out), "--on-error", "skip"])
    assert code == 1, "rejections are findings"
    assert len(read_jsonl(out)) == 7643
    q = read_jsonl(tmp_path / "out.quarantine.jsonl")
    assert len(q) == 1
    entry = q[0]
    assert entry["line"] == line and entry["record"] == 150 and entry["file"] == str(bad)
    if how == "bytes":
        assert entry["kind"] == "decode"
        assert bytes.fromhex(str(entry["raw_hex"])) == raw
    else:
        assert entry["kind"] == "csv"
        assert str(entry["raw"]).endswith(",extra")


def test_fields_are_required_and_limit_the_work(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"q": "頭髮 \r\n", "a": "鬍鬚", "id": "甲"}, ensure_ascii=False)
        + "\n"
        + json.dumps({"q": "x"})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    summary = cd.normalize_file(src, out, convert="t2s", fields=["q", "a"], on_error="skip")
    assert (summary.records_in, summary.written, summary.rejected) == (2, 1, 1)
    assert read_jsonl(out) == [{"q": "头发", "a": "胡须", "id": "甲"}]
    q = read_jsonl(Path(str(summary.quarantine)))
    assert q[0]["field"] == "a" and q[0]["kind"] == "missing_field" and q[0]["line"] == 2


def test_output_may_not_overwrite_input(toyhom_csv: Path) -> None:
    with pytest.raises(cd.ConfigError):
        cd.normalize_file(toyhom_csv, toyhom_csv)


def test_json_summary(toyhom_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.jsonl.zst"
    code = main(["normalize", str(toyhom_csv), "-o", str(out), "--output-format", "json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records_in"] == summary["written"] == 7644
    assert summary["encoding"] == "gb18030" and summary["format"] == "csv"
    assert cd.read(out).height == 7644


def test_demo_runs_on_the_embedded_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """adapt → normalize (t2s) → dedup, every record accounted for."""
    assert main(["demo", "-o", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["adapted", "clusters.jsonl", "dedup_stats.json", "kept.jsonl", "normalized"]
    toyhom = read_jsonl(tmp_path / "normalized" / "toyhom_cmdd_neike.jsonl")
    assert len(toyhom) == 1000
    assert toyhom[0]["instruction"] == "高血压患者能吃党参吗？"
    assert toyhom[0]["source"] == "cmd_toyhom"
    stats = json.loads((tmp_path / "dedup_stats.json").read_text(encoding="utf-8"))
    normalized = sum(len(read_jsonl(p)) for p in sorted((tmp_path / "normalized").iterdir()))
    kept = read_jsonl(tmp_path / "kept.jsonl")
    removed = sum(s["exact_duplicates"] + s["near_duplicates"] for s in stats["sources"])
    assert sum(s["records"] for s in stats["sources"]) == normalized
    assert len(kept) == normalized - removed
    assert stats["sources"][0]["exact_duplicates"] > 0  # the Toyhom excerpt repeats rows
    assert "demo:" in capsys.readouterr().out


def test_demo_is_deterministic(tmp_path: Path) -> None:
    main(["demo", "-o", str(tmp_path / "a")])
    main(["demo", "-o", str(tmp_path / "b")])
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.json*"))
    assert len(files) == 9
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_convert_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", "t2s", "頭髮和鬍鬚"]) == 0
    assert capsys.readouterr().out == "头发和胡须\n"
    assert main(["convert", "x2y", "a"]) == 2


def test_version_and_module_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "csft_data", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"csft-data {cd.__version__}"


def test_parquet_output_by_name(toyhom_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    assert main(["normalize", str(toyhom_csv), "-o", str(out), "--convert", "t2s"]) == 0
    frame = cd.read(out)
    assert frame.height == 7644
    assert frame.columns == ["department", "title", "ask", "answer"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]
