"""Reading the real sample files through the Python API: counts, text, schemas, errors."""

from __future__ import annotations

import errno
import gzip
from pathlib import Path

import polars as pl
import pytest

import csft_data as cd


def test_gbk_csv_reads_every_row_with_correct_chinese(toyhom_csv: Path) -> None:
    df = cd.read(toyhom_csv)
    assert df.height == 7644
    assert df.columns == ["department", "title", "ask", "answer"]
    assert df["title"][0] == "高血压患者能吃党参吗？"
    assert df["department"][0] == "心血管科"
    reader = cd.RecordReader(toyhom_csv)
    assert sum(len(b) for b in reader) == 7644
    assert reader.encoding == "gb18030"


@pytest.mark.parametrize(
    ("rel", "count"),
    [
        ("cmtmedqa/CMtMedQA_test.json", 1144),
        ("huatuo26m/huatuo26M_test.json", 6000),
        ("disc_med_sft/test_examples.jsonl", 163),
        ("cmid/cmid_samples.json", 120),
        ("cmexam/cmexam_val_part1.csv", 3000),
        ("pubmedqa/ori_pqal.json", 1000),
    ],
)
def test_real_files_record_counts(shared_data: Path, rel: str, count: int) -> None:
    reader = cd.RecordReader(shared_data / rel, batch_size=500)
    sizes = [len(b) for b in reader]
    assert sum(sizes) == count
    assert max(sizes) <= 500
    assert reader.records == count and reader.rejected == 0


def test_mixed_schemas_are_combined(shared_data: Path) -> None:
    df = cd.read(shared_data / "cmtmedqa/CMtMedQA_test.json")
    assert {"id", "instruction", "history", "instruct", "output"} <= set(df.columns)
    assert df.filter(pl.col("instruct").is_not_null()).height == 144


def test_object_of_records_keeps_its_keys(shared_data: Path) -> None:
    df = cd.read(shared_data / "pubmedqa/ori_pqal.json")
    assert df.columns[0] == "_key"
    assert df["_key"].n_unique() == 1000
    assert set(df["final_decision"].unique()) == {"yes", "no", "maybe"}


def test_gzip_gives_the_same_records(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "disc_med_sft/test_examples.jsonl"
    gz = tmp_path / "x.jsonl.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    assert cd.read(gz).equals(cd.read(src))


def test_batches_stream_in_order(toyhom_csv: Path) -> None:
    frames = list(cd.read_batches(toyhom_csv, batch_size=1000))
    assert [f.height for f in frames] == [1000] * 7 + [644]
    assert pl.concat(frames).equals(cd.read(toyhom_csv))


def test_read_arrow(toyhom_csv: Path) -> None:
    table = cd.read_arrow(toyhom_csv)
    assert table.num_rows == 7644


def test_record_origins(toyhom_csv: Path) -> None:
    batch = next(iter(cd.RecordReader(toyhom_csv, batch_size=3)))
    assert batch.indices == [0, 1, 2]
    assert batch.lines == [2, 3, 4]  # line 1 is the header
    assert batch.to_dicts()[0]["title"] == "高血压患者能吃党参吗？"


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError) as info:
        cd.RecordReader(missing)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == str(missing)
    assert str(info.value) == f"[Errno 2] No such file or directory: '{missing}'"


def test_malformed_jsonl_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": "1"}\n{"a": "2"}\n{"a": \n{"a": "4"}\n', encoding="utf-8")
    with pytest.raises(cd.ParseError) as info:
        cd.read(p)
    err = info.value
    assert err.line == 3 and err.record == 2 and err.kind == "json"
    assert err.path == str(p)
    assert f"{p}:3" in str(err)


def test_missing_required_field_is_named(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text('{"q": "a", "a": "b"}\n{"q": "c"}\n', encoding="utf-8")
    with pytest.raises(cd.ParseError) as info:
        cd.read(p, required=["q", "a"])
    assert info.value.field == "a" and info.value.line == 2
    assert info.value.kind == "missing_field"


def test_bad_options_are_config_errors(toyhom_csv: Path) -> None:
    with pytest.raises(cd.ConfigError, match="encoding"):
        cd.RecordReader(toyhom_csv, encoding="latin-9")
    with pytest.raises(cd.ConfigError, match="format"):
        cd.RecordReader(toyhom_csv, format="xml")


def test_truncated_gzip_fails_naming_the_file(shared_data: Path, tmp_path: Path) -> None:
    data = gzip.compress((shared_data / "disc_med_sft/test_examples.jsonl").read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(cd.ParseError) as info:
        cd.read(cut)
    assert info.value.kind == "compression"
    assert str(cut) in str(info.value)


def test_parquet_fixture_reads_nested_values() -> None:
    path = Path(__file__).parent / "data" / "io" / "nested.parquet"
    expected = pl.read_parquet(path)
    got = cd.read(path)
    assert got.height == expected.height
    assert got.columns == expected.columns
