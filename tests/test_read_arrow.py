"""Records built into Arrow in Rust, taken by the real clients (polars, pyarrow) zero-copy.

The reference is ``polars.read_ndjson`` wherever polars can read the same input; where values
of one field disagree, the documented fallback (the value's JSON text) is checked instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

import csft_data as cd
from csft_data import _core


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_every_shared_file_polars_reads_matches_polars(shared_data: Path) -> None:
    for path in sorted(shared_data.rglob("*.jsonl")):
        ours = cd.read(path)
        theirs = pl.read_ndjson(path, infer_schema_length=None)
        assert ours.schema == theirs.schema, path
        assert ours.equals(theirs), path


@pytest.mark.parametrize("batch_size", [1, 3, 2048])
def test_nested_and_sparse_records_match_polars(tmp_path: Path, batch_size: int) -> None:
    rows: list[dict[str, object]] = [
        {"id": 1, "q": "头痛怎么办", "tags": ["内科"], "meta": {"src": "a", "score": 0.5}},
        {"id": 2, "q": None, "tags": [], "meta": {"src": "b"}, "extra": True},
        {"id": 3, "tags": None, "meta": None, "turns": [{"role": "user", "content": "你好"}]},
        {"id": 4, "q": "发烧", "meta": {"src": "c", "score": 2}, "extra": False},
    ]
    path = _write_jsonl(tmp_path / "x.jsonl", rows)
    ours = cd.read(path, batch_size=batch_size)
    theirs = pl.read_ndjson(path, infer_schema_length=None)
    assert ours.columns == ["id", "q", "tags", "meta", "extra", "turns"]
    assert ours.schema == theirs.schema
    assert ours.equals(theirs)
    assert ours["meta"].struct.field("score").to_list() == [0.5, None, None, 2.0]


def test_struct_fields_keep_their_first_seen_order(tmp_path: Path) -> None:
    rows = [{"m": {"b": 1}}, {"m": {"a": "x", "b": 2}}, {"m": {"c": None, "a": "y"}}]
    df = cd.read(_write_jsonl(tmp_path / "o.jsonl", rows))
    assert df.schema["m"] == pl.Struct({"b": pl.Int64, "a": pl.String, "c": pl.Null})
    assert df["m"].to_list() == [
        {"b": 1, "a": None, "c": None},
        {"b": 2, "a": "x", "c": None},
        {"b": None, "a": "y", "c": None},
    ]


def test_disagreeing_values_become_their_json_text(tmp_path: Path) -> None:
    big = 2**64 - 1  # beyond i64: kept exactly, as text
    rows: list[dict[str, object]] = [
        {"a": 1, "b": [1, "x"], "c": {"k": 1}, "d": big, "e": True},
        {"a": "二", "b": [2.5, None], "c": [1, 2], "d": 1, "e": 1},
        {"a": None},
    ]
    path = _write_jsonl(tmp_path / "mixed.jsonl", rows)
    df = cd.read(path)
    assert df.schema == pl.Schema(
        {
            "a": pl.String,
            "b": pl.List(pl.String),
            "c": pl.String,
            "d": pl.String,
            "e": pl.String,
        }
    )
    assert df["a"].to_list() == ["1", "二", None]
    assert df["b"].to_list() == [["1", "x"], ["2.5", None], None]
    assert df["c"].to_list() == ['{"k":1}', "[1,2]", None]
    assert df["d"].to_list() == [str(big), "1", None]
    assert df["e"].to_list() == ["true", "1", None]


def test_ints_and_floats_widen_to_float(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "n.jsonl", [{"x": 1}, {"x": 2.5}, {"x": -3}])
    df = cd.read(path)
    assert df.schema["x"] == pl.Float64
    assert df["x"].to_list() == [1.0, 2.5, -3.0]
    assert df.equals(pl.read_ndjson(path))


def test_all_null_and_empty_shapes(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "n.jsonl", [{"n": None, "l": [], "o": {}}, {"n": None}])
    table = cd.read_arrow(path)
    assert table.schema.field("n").type == pa.null()
    assert table.schema.field("l").type == pa.list_(pa.null())
    assert table.schema.field("o").type == pa.struct([])
    assert table.num_rows == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", "utf-8")
    assert cd.read(empty).shape == (0, 0)
    assert cd.read_arrow(empty).num_rows == 0
    assert list(cd.read_batches(empty)) == []


def test_read_arrow_is_a_plain_pyarrow_table(shared_data: Path) -> None:
    path = shared_data / "disc_med_sft/test_examples.jsonl"
    table = cd.read_arrow(path)
    assert isinstance(table, pa.Table)
    assert table.schema.field("conversation").type == pa.list_(
        pa.struct([("role", pa.string()), ("content", pa.string())])
    )
    assert table.to_pylist() == [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_the_stream_shares_its_buffers(shared_data: Path) -> None:
    stream = _core.read_arrow(shared_data / "disc_med_sft/test_examples.jsonl")
    first = pa.RecordBatchReader.from_stream(stream).read_all()
    second = pa.RecordBatchReader.from_stream(stream).read_all()
    col = "_id"
    a = first.column(col).chunks[0].buffers()[2]
    b = second.column(col).chunks[0].buffers()[2]
    assert a is not None and b is not None
    assert a.address == b.address  # exported twice, one set of buffers: no copy
    assert stream.num_rows == first.num_rows == len(stream)
    assert stream.columns == first.column_names


def test_batches_have_their_own_schema_and_skip_mode_drops_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\nnot json\n{"b": "x"}\n', "utf-8")
    frames = list(cd.read_batches(path, batch_size=2, on_error="skip"))
    assert [f.columns for f in frames] == [["a"], ["b"]]
    assert cd.read(path, on_error="skip").to_dicts() == [
        {"a": 1, "b": None},
        {"a": 2, "b": None},
        {"a": None, "b": "x"},
    ]
    with pytest.raises(cd.ParseError, match=r"b\.jsonl:3"):
        cd.read(path)


def test_gbk_csv_and_json_array_read_as_before(shared_data: Path) -> None:
    csv_df = cd.read(shared_data / "toyhom_cmdd/样例_内科5000-6000.csv")
    columns = ["department", "title", "ask", "answer"]
    assert csv_df.schema == pl.Schema(dict.fromkeys(columns, pl.String))
    rows = json.loads((shared_data / "cmtmedqa/CMtMedQA_test.json").read_text("utf-8"))
    keys = list(dict.fromkeys(k for r in rows for k in r))  # some records add a field
    assert cd.read(shared_data / "cmtmedqa/CMtMedQA_test.json").to_dicts() == [
        {k: r.get(k) for k in keys} for r in rows
    ]
