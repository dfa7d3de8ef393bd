//! Tests of the readers on the real sample files in `shared/data/` and on small hand-made
//! inputs: counts, decoding, compression, located errors, skip mode, batching, Parquet.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use encoding_rs::GB18030;
use serde_json::{json, Value};

use super::*;
use crate::error::{DataError, DataErrorKind, Error};
use crate::record::{Origin, Record, Rejection};

fn shared(rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")).join(rel)
}

const TOYHOM: &str = "toyhom_cmdd/样例_内科5000-6000.csv";

fn opts() -> ReaderOptions {
    ReaderOptions::default()
}

fn skip() -> ReaderOptions {
    ReaderOptions {
        on_error: OnError::Skip,
        ..ReaderOptions::default()
    }
}

/// Everything a read produced, and the error that ended it (if any).
#[derive(Default)]
struct Out {
    records: Vec<Record>,
    origins: Vec<Origin>,
    rejections: Vec<Rejection>,
    batch_sizes: Vec<usize>,
    error: Option<Error>,
}

fn read_with(path: &Path, options: ReaderOptions) -> Out {
    let mut out = Out::default();
    let mut reader = match RecordReader::open(path, options) {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    loop {
        match reader.next_batch() {
            Ok(Some(batch)) => {
                assert_eq!(batch.records.len(), batch.origins.len());
                assert!(!batch.is_empty());
                out.batch_sizes
                    .push(batch.records.len() + batch.rejections.len());
                out.records.extend(batch.records);
                out.origins.extend(batch.origins);
                out.rejections.extend(batch.rejections);
            }
            Ok(None) => break,
            Err(e) => {
                out.error = Some(e);
                // After an error the reader is finished.
                assert!(reader.next_batch().unwrap().is_none());
                break;
            }
        }
    }
    let stats = reader.stats();
    assert_eq!(stats.records, out.records.len() as u64);
    assert_eq!(stats.rejected, out.rejections.len() as u64);
    out
}

/// Reads the whole file, which must have no errors.
fn read_ok(path: &Path, options: ReaderOptions) -> Vec<Record> {
    let out = read_with(path, options);
    if let Some(e) = out.error {
        panic!("unexpected error: {e}");
    }
    assert!(out.rejections.is_empty());
    out.records
}

fn data_error(e: Option<Error>) -> DataError {
    match e {
        Some(Error::Data(d)) => *d,
        other => panic!("expected a data error, got {other:?}"),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn zstd_bytes(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

fn gbk(s: &str) -> Vec<u8> {
    GB18030.encode(s).0.into_owned()
}

fn s(record: &Record, field: &str) -> String {
    record[field].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Real files

#[test]
fn real_files_give_the_documented_counts() {
    let cases: &[(&str, usize, Option<Format>)] = &[
        (TOYHOM, 7644, None),
        ("cmtmedqa/CMtMedQA_test.json", 1144, None),
        ("huatuo26m/huatuo26M_test.json", 6000, None),
        ("cmid/cmid_samples.json", 120, None),
        ("disc_medllm_eval/cmd_samples.json", 120, None),
        ("disc_med_sft/test_examples.jsonl", 163, None),
        ("pubmedqa/ori_pqal.json", 1000, None),
        ("cmexam/cmexam_val_part1.csv", 3000, None),
        ("cmedqa2/dev_candidates.txt", 20000, Some(Format::Csv)),
    ];
    for &(rel, count, format) in cases {
        let out = read_with(
            &shared(rel),
            ReaderOptions {
                format,
                batch_size: 1000,
                ..opts()
            },
        );
        assert!(out.error.is_none(), "{rel}: {:?}", out.error);
        assert_eq!(out.records.len(), count, "{rel}");
        assert!(out.rejections.is_empty(), "{rel}");
        let indices: Vec<u64> = out.origins.iter().map(|o| o.index).collect();
        assert_eq!(indices, (0..count as u64).collect::<Vec<_>>(), "{rel}");
        assert!(out.batch_sizes.iter().all(|&n| n <= 1000), "{rel}");
    }
}

#[test]
fn gbk_csv_decodes_to_the_right_chinese() {
    let mut reader = RecordReader::open(shared(TOYHOM), opts()).unwrap();
    assert_eq!(reader.format(), Format::Csv);
    assert_eq!(reader.encoding(), Encoding::Auto);
    let batch = reader.next_batch().unwrap().unwrap();
    assert_eq!(reader.encoding(), Encoding::Gb18030);
    let first = &batch.records[0];
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(keys, ["department", "title", "ask", "answer"]);
    assert_eq!(s(first, "department"), "心血管科");
    assert_eq!(s(first, "title"), "高血压患者能吃党参吗？");
    assert!(s(first, "answer").starts_with("高血压病人可以口服党参的。"));
    assert_eq!(
        batch.origins[..3],
        [
            Origin {
                index: 0,
                line: Some(2)
            },
            Origin {
                index: 1,
                line: Some(3)
            },
            Origin {
                index: 2,
                line: Some(4)
            }
        ]
    );
    // Forcing the encoding gives the same records.
    let forced = read_ok(
        &shared(TOYHOM),
        ReaderOptions {
            encoding: Encoding::Gb18030,
            ..opts()
        },
    );
    let auto = read_ok(&shared(TOYHOM), opts());
    assert_eq!(forced, auto);
    // No replacement characters anywhere: every row decoded cleanly.
    assert!(auto.iter().all(|r| r
        .values()
        .all(|v| !v.as_str().unwrap().contains('\u{fffd}'))));
}

#[test]
fn csv_lines_follow_quoted_multiline_fields() {
    // The Toyhom file has quoted fields spanning lines: the line of each record must point at
    // the row's first line in the file.
    let bytes = fs::read(shared(TOYHOM)).unwrap();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let out = read_with(&shared(TOYHOM), opts());
    assert!(out.error.is_none());
    let last_line = out.origins.last().unwrap().line.unwrap();
    assert!(
        last_line > 7645,
        "multi-line rows push the last line to {last_line}"
    );
    for (record, origin) in out.records.iter().zip(&out.origins).step_by(97) {
        let start = line_starts[origin.line.unwrap() as usize - 1];
        let text = GB18030.decode_without_bom_handling(&bytes[start..]).0;
        assert!(
            text.starts_with(&s(record, "department")),
            "line {:?}",
            origin.line
        );
    }
}

#[test]
fn cmtmedqa_keeps_both_schemas() {
    let records = read_ok(&shared("cmtmedqa/CMtMedQA_test.json"), opts());
    let with_history = records.iter().filter(|r| r.contains_key("history")).count();
    let with_instruct = records
        .iter()
        .filter(|r| r.contains_key("instruct"))
        .count();
    assert_eq!((with_history, with_instruct), (1000, 144));
    let first = &records[0];
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "cate1",
            "cate2",
            "instruction",
            "input",
            "output",
            "history"
        ]
    );
    assert_eq!(s(first, "id"), "j4219");
    assert!(first["history"].is_array());
}

#[test]
fn keyed_object_gets_key_field_first() {
    let out = read_with(&shared("pubmedqa/ori_pqal.json"), opts());
    assert!(out.error.is_none());
    let first = &out.records[0];
    assert_eq!(first.keys().next().unwrap(), "_key");
    assert_eq!(s(first, "_key"), "21645374");
    assert!(s(first, "QUESTION").starts_with("Do mitochondria"));
    assert_eq!(out.origins[0].line, Some(2));
    let keys: std::collections::HashSet<String> =
        out.records.iter().map(|r| s(r, "_key")).collect();
    assert_eq!(keys.len(), 1000);
}

#[test]
fn format_can_be_forced_for_odd_names() {
    let path = shared("cmedqa2/dev_candidates.txt");
    let err = RecordReader::open(&path, opts()).err().unwrap();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("format"));
    let records = read_ok(
        &path,
        ReaderOptions {
            format: Some(Format::Csv),
            ..opts()
        },
    );
    assert_eq!(records.len(), 20000);
    assert_eq!(
        Value::Object(records[0].clone()),
        json!({"question_id": "51747753", "ans_id": "76843", "cnt": "0", "label": "1"})
    );
}

#[test]
fn progress_counters() {
    let path = shared("huatuo26m/huatuo26M_test.json");
    let mut reader = RecordReader::open(&path, opts()).unwrap();
    let size = fs::metadata(&path).unwrap().len();
    assert_eq!(reader.total_bytes(), size);
    while reader.next_batch().unwrap().is_some() {}
    assert_eq!(reader.bytes_read(), size);
    assert_eq!(reader.stats().records, 6000);
}

// ---------------------------------------------------------------------------------------------
// Compression

#[test]
fn gzip_and_zstd_give_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        TOYHOM,
        "cmtmedqa/CMtMedQA_test.json",
        "disc_med_sft/test_examples.jsonl",
        "pubmedqa/ori_pqal.json",
        "cmexam/cmexam_val_part1.csv",
    ] {
        let src = shared(rel);
        let plain = read_ok(&src, opts());
        let bytes = fs::read(&src).unwrap();
        let name = src.file_name().unwrap().to_str().unwrap();
        let gz = write(dir.path(), &format!("{name}.gz"), &gzip(&bytes));
        let zst = write(dir.path(), &format!("{name}.zst"), &zstd_bytes(&bytes));
        let mut reader = RecordReader::open(&gz, opts()).unwrap();
        assert_eq!(reader.compression(), Compression::Gzip);
        while reader.next_batch().unwrap().is_some() {}
        assert_eq!(reader.bytes_read(), reader.total_bytes());
        assert_eq!(read_ok(&gz, opts()), plain, "{rel} gzip");
        assert_eq!(read_ok(&zst, opts()), plain, "{rel} zstd");
    }
}

#[test]
fn compression_is_found_by_magic_bytes_and_members_concatenate() {
    let dir = tempfile::tempdir().unwrap();
    let src = fs::read(shared("disc_med_sft/test_examples.jsonl")).unwrap();
    // A gzip file without .gz in its name.
    let hidden = write(dir.path(), "x.jsonl", &gzip(&src));
    assert_eq!(read_ok(&hidden, opts()).len(), 163);
    // Two gzip members (as `cat a.gz b.gz` makes) read as one stream.
    let mut two = gzip(&src);
    two.extend(gzip(&src));
    let two = write(dir.path(), "two.jsonl.gz", &two);
    assert_eq!(read_ok(&two, opts()).len(), 326);
    // Two zstd frames too.
    let mut frames = zstd_bytes(&src);
    frames.extend(zstd_bytes(&src));
    let frames = write(dir.path(), "two.jsonl.zst", &frames);
    assert_eq!(read_ok(&frames, opts()).len(), 326);
    // A name that promises gzip over plain content is an error.
    let liar = write(dir.path(), "liar.jsonl.gz", &src);
    let e = data_error(read_with(&liar, opts()).error);
    assert_eq!(e.kind, DataErrorKind::Compression);
}

#[test]
fn truncated_compressed_files_deliver_what_precedes_then_fail() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "disc_med_sft/test_examples.jsonl",
        "cmtmedqa/CMtMedQA_test.json",
        TOYHOM,
    ] {
        let src = shared(rel);
        let total = read_ok(&src, opts()).len();
        let bytes = fs::read(&src).unwrap();
        let name = src.file_name().unwrap().to_str().unwrap().to_owned();
        for (ext, packed) in [("gz", gzip(&bytes)), ("zst", zstd_bytes(&bytes))] {
            // zstd decodes in blocks of up to 128 KiB: cut late enough that one is complete.
            let cut = &packed[..packed.len() * 9 / 10];
            let path = write(dir.path(), &format!("cut_{name}.{ext}"), cut);
            for options in [opts(), skip()] {
                let out = read_with(
                    &path,
                    ReaderOptions {
                        batch_size: 50,
                        ..options
                    },
                );
                let e = data_error(out.error);
                assert_eq!(e.kind, DataErrorKind::Compression, "{rel}.{ext}: {e}");
                assert_eq!(e.path, path);
                assert!(e.to_string().contains(&format!("cut_{name}.{ext}")));
                assert!(e.reason.contains("truncated"), "{e}");
                // Some records came out first, in order, and none was lost silently.
                let n = out.records.len();
                assert!(n > 0 && n < total, "{rel}.{ext}: {n} of {total}");
                assert!(out.rejections.is_empty());
                let last_line = out.origins.last().unwrap().line.unwrap();
                assert!(e.line.unwrap() > last_line, "{e} after line {last_line}");
            }
        }
    }
}

#[test]
fn corrupt_gzip_is_a_compression_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fs::read(shared("disc_med_sft/test_examples.jsonl")).unwrap();
    let mut gz = gzip(&bytes);
    let mid = gz.len() / 2;
    gz[mid] ^= 0xff;
    gz[mid + 1] ^= 0xff;
    let path = write(dir.path(), "corrupt.jsonl.gz", &gz);
    // Garbage may decode into bad records first (rejected in skip mode); the stream's checksum
    // fails at the end at the latest.
    let out = read_with(&path, skip());
    let e = data_error(out.error);
    assert_eq!(e.kind, DataErrorKind::Compression, "{e}");
    assert!(e.reason.contains("corrupt gzip stream"), "{e}");
    assert!(
        out.records.len() > 50,
        "the records before the damage come out"
    );
}

// ---------------------------------------------------------------------------------------------
// Corrupted Toyhom CSV

/// The Toyhom bytes and the byte range of the row with record index `index`.
fn toyhom_row(index: usize) -> (Vec<u8>, u64, std::ops::Range<usize>) {
    let bytes = fs::read(shared(TOYHOM)).unwrap();
    let out = read_with(&shared(TOYHOM), opts());
    let line = out.origins[index].line.unwrap();
    let next_line = out.origins[index + 1].line.unwrap();
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let range = starts[line as usize - 1]..starts[next_line as usize - 1] - 1;
    (bytes, line, range)
}

#[test]
fn csv_invalid_bytes_are_located_and_skippable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, line, row) = toyhom_row(1234);
    let comma = row.start + bytes[row.clone()].iter().position(|&b| b == b',').unwrap();
    bytes.splice(comma + 1..comma + 1, [0xff, 0xff]);
    let bad_row = bytes[row.start..row.end + 2].to_vec();
    let path = write(dir.path(), "toyhom_bad_bytes.csv", &bytes);

    let out = read_with(&path, opts());
    let e = data_error(out.error);
    assert_eq!(e.kind, DataErrorKind::Decode);
    assert_eq!(e.path, path);
    assert_eq!((e.line, e.record), (Some(line), Some(1234)));
    assert_eq!(e.field.as_deref(), Some("title"));
    assert!(e.reason.contains("ff"), "{e}");
    assert!(e
        .to_string()
        .starts_with(&format!("{}:{line} ", path.display())));
    assert_eq!(
        out.records.len(),
        1234,
        "the records before the bad one come first"
    );

    let out = read_with(&path, skip());
    assert!(out.error.is_none());
    assert_eq!(out.records.len(), 7643);
    assert_eq!(out.rejections.len(), 1);
    let r = &out.rejections[0];
    assert_eq!((r.error.line, r.error.record), (Some(line), Some(1234)));
    assert_eq!(r.raw_bytes.as_deref(), Some(&bad_row[..]));
    assert_eq!(r.raw, GB18030.decode_without_bom_handling(&bad_row).0);
    assert!(r.raw.contains(",\u{fffd}\u{fffd}"), "{}", r.raw);
    // The other records are intact and keep their indexes.
    assert_eq!(out.origins[1234].index, 1235);
    assert_eq!(out.records, {
        let mut all = read_ok(&shared(TOYHOM), opts());
        all.remove(1234);
        all
    });
}

#[test]
fn csv_extra_field_is_located_and_skippable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, line, row) = toyhom_row(4000);
    bytes.splice(row.end..row.end, *b",extra");
    let bad_row = bytes[row.start..row.end + 6].to_vec();
    let path = write(dir.path(), "toyhom_extra_field.csv", &bytes);

    let e = data_error(read_with(&path, opts()).error);
    assert_eq!(e.kind, DataErrorKind::Csv);
    assert_eq!((e.line, e.record), (Some(line), Some(4000)));
    assert_eq!(
        e.reason,
        "expected 4 fields (department,title,ask,answer), found 5"
    );

    let out = read_with(&path, skip());
    assert!(out.error.is_none());
    assert_eq!((out.records.len(), out.rejections.len()), (7643, 1));
    let r = &out.rejections[0];
    assert_eq!(r.error.line, Some(line));
    assert_eq!(r.raw, GB18030.decode_without_bom_handling(&bad_row).0);
    assert!(r.raw.ends_with(",extra"));
    assert_eq!(r.raw_bytes, None);
}

// ---------------------------------------------------------------------------------------------
// Hand-made inputs

#[test]
fn malformed_jsonl_line_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let text = "{\"a\": \"1\"}\n\n{\"a\": \"2\"}\r\n{\"a\": \n[1, 2]\n{\"a\": \"5\"}";
    let path = write(dir.path(), "bad.jsonl", text.as_bytes());
    let out = read_with(&path, opts());
    assert_eq!(out.records.len(), 2);
    let e = data_error(out.error);
    assert_eq!(
        (e.kind, e.line, e.record),
        (DataErrorKind::Json, Some(4), Some(2))
    );
    assert!(e.reason.contains("invalid JSON"), "{e}");

    let out = read_with(&path, skip());
    assert!(out.error.is_none());
    let lines: Vec<_> = out
        .origins
        .iter()
        .map(|o| (o.index, o.line.unwrap()))
        .collect();
    assert_eq!(lines, [(0, 1), (1, 3), (4, 6)]);
    assert_eq!(out.rejections.len(), 2);
    assert_eq!(out.rejections[0].raw, "{\"a\": ");
    let second = &out.rejections[1].error;
    assert_eq!((second.line, second.record), (Some(5), Some(3)));
    assert_eq!(
        second.reason,
        "record 3 is not a JSON object (found an array)"
    );
}

#[test]
fn json_array_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Truncated inside the third element.
    let text = "[\n  {\"a\": 1},\n  {\"a\": 2},\n  {\"a\": [3,\n";
    let path = write(dir.path(), "cut.json", text.as_bytes());
    let out = read_with(&path, opts());
    assert_eq!(out.records.len(), 2);
    let e = data_error(out.error);
    assert_eq!(
        (e.kind, e.line, e.record),
        (DataErrorKind::Json, Some(4), Some(2))
    );
    assert!(e.reason.contains("end of file"), "{e}");
    let out = read_with(&path, skip());
    assert!(out.error.is_none());
    assert_eq!(out.records.len(), 2);
    assert_eq!(out.rejections[0].raw, "{\"a\": [3,\n");

    // A non-object element and an invalid element are per-record errors.
    let text = "[{\"a\": 1}, 5,\n {\"a\": tru}, {\"a\": \"x\"}]";
    let path = write(dir.path(), "mixed.json", text.as_bytes());
    let e = data_error(read_with(&path, opts()).error);
    assert_eq!(e.reason, "record 1 is not a JSON object (found a number)");
    assert_eq!(e.line, Some(1));
    let out = read_with(&path, skip());
    assert!(out.error.is_none());
    assert_eq!(out.records.len(), 2);
    assert_eq!(
        out.origins[1],
        Origin {
            index: 3,
            line: Some(2)
        }
    );
    assert_eq!(out.rejections[1].raw, "{\"a\": tru}");
    assert_eq!(out.rejections[1].error.line, Some(2));

    // Damage to the top-level structure is fatal even in skip mode.
    for (text, reason) in [
        (
            "[{\"a\": 1} {\"a\": 2}]",
            "expected ',' or ']' after record 0",
        ),
        ("[{\"a\": 1},\n", "not closed"),
        ("[{\"a\": 1}] x", "after the end"),
        ("\"just a string\"", "expected a JSON array or object"),
    ] {
        let path = write(dir.path(), "top.json", text.as_bytes());
        let out = read_with(&path, skip());
        let e = data_error(out.error);
        assert!(e.reason.contains(reason), "{text}: {e}");
    }
    // Tolerated: an empty array, a trailing comma, an empty file.
    for text in ["[]", "[{\"a\": 1},]", "", " \n "] {
        let path = write(dir.path(), "ok.json", text.as_bytes());
        assert!(read_with(&path, opts()).error.is_none(), "{text}");
    }
}

#[test]
fn keyed_object_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "k.json",
        br#"{"x": {"a": 1}, "y": "no", "z": {"_key": 1}}"#,
    );
    let out = read_with(&path, skip());
    assert!(out.error.is_none());
    assert_eq!(
        Value::Object(out.records[0].clone()),
        json!({"_key": "x", "a": 1})
    );
    assert_eq!(out.rejections.len(), 2);
    assert_eq!(out.rejections[0].raw, r#""y": "no""#);
    assert!(out.rejections[0].error.reason.contains("not a JSON object"));
    assert_eq!(out.rejections[1].error.field.as_deref(), Some("_key"));
}

#[test]
fn json_scanner_handles_escapes_and_nesting() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"[{"a": "quote \" and \\", "b": "}]{[", "c": [[1], {"d": null}]}, {"e": "\\"}]"#;
    let path = write(dir.path(), "esc.json", text.as_bytes());
    let records = read_ok(&path, opts());
    assert_eq!(records.len(), 2);
    assert_eq!(s(&records[0], "a"), "quote \" and \\");
    assert_eq!(s(&records[0], "b"), "}]{[");
    assert_eq!(s(&records[1], "e"), "\\");
    // Elements split across many buffer refills (long strings).
    let long = "党".repeat(700_000);
    let text = format!("[{{\"t\": \"{long}\"}},\n{{\"t\": \"x\"}}]");
    let path = write(dir.path(), "long.json", text.as_bytes());
    let records = read_ok(&path, opts());
    assert_eq!(s(&records[0], "t"), long);
    assert_eq!(s(&records[1], "t"), "x");
}

#[test]
fn gbk_json_with_backslash_second_bytes() {
    // 乗 and 俓 are encoded in GBK with 0x5c (`\`) as their second byte, 乕 with 0x5b, 亄 with
    // 0x7b; right before a closing quote they would fool a byte-level scanner.
    let dir = tempfile::tempdir().unwrap();
    let text = "[\n{\"q\": \"乗\", \"a\": \"俓\"},\n{\"q\": \"乕亄}\", \"k\": [\"高血压\"]}\n]";
    let bytes = gbk(text);
    assert!(bytes.windows(2).any(|w| w == [0x5c, b'"']));
    let path = write(dir.path(), "gbk.json", &bytes);
    let mut reader = RecordReader::open(&path, opts()).unwrap();
    let batch = reader.next_batch().unwrap().unwrap();
    assert_eq!(reader.encoding(), Encoding::Gb18030);
    assert_eq!(batch.records.len(), 2);
    assert_eq!(s(&batch.records[0], "a"), "俓");
    assert_eq!(s(&batch.records[1], "q"), "乕亄}");
    assert_eq!(batch.origins[1].line, Some(3));
    // A GBK JSONL file too.
    let path = write(
        dir.path(),
        "gbk.jsonl",
        &gbk("{\"q\": \"乗\"}\n{\"q\": \"高血压\"}\n"),
    );
    let records = read_ok(&path, opts());
    assert_eq!(s(&records[1], "q"), "高血压");
}

#[test]
fn missing_required_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let required = vec!["q".to_owned(), "a".to_owned()];
    let jsonl = write(
        dir.path(),
        "r.jsonl",
        b"{\"q\": 1, \"a\": 2}\n{\"q\": 3}\n{\"q\": 4, \"a\": null}\n",
    );
    let options = || ReaderOptions {
        required: required.clone(),
        ..opts()
    };
    let e = data_error(read_with(&jsonl, options()).error);
    assert_eq!(e.kind, DataErrorKind::MissingField);
    assert_eq!(
        (e.field.as_deref(), e.line, e.record),
        (Some("a"), Some(2), Some(1))
    );
    assert!(e.to_string().contains("field 'a'"), "{e}");
    let out = read_with(
        &jsonl,
        ReaderOptions {
            on_error: OnError::Skip,
            ..options()
        },
    );
    assert_eq!((out.records.len(), out.rejections.len()), (1, 2));
    assert_eq!(out.rejections[1].error.reason, "required field is null");

    let csv = write(dir.path(), "r.csv", b"q,b\n1,2\n");
    let e = data_error(read_with(&csv, options()).error);
    assert_eq!((e.field.as_deref(), e.line), (Some("a"), Some(2)));
    let json = write(dir.path(), "r.json", b"[{\"a\": 1, \"q\": 2}, {\"a\": 1}]");
    let e = data_error(read_with(&json, options()).error);
    assert_eq!((e.field.as_deref(), e.record), (Some("q"), Some(1)));
}

#[test]
fn byte_order_marks() {
    let dir = tempfile::tempdir().unwrap();
    let bom = b"\xef\xbb\xbf";
    for (name, body) in [
        ("b.jsonl", &b"{\"id\": \"\xe5\x85\x9a\"}\n"[..]),
        ("b.json", &b"[{\"id\": \"\xe5\x85\x9a\"}]"[..]),
        ("b.csv", &b"id\n\xe5\x85\x9a\n"[..]),
    ] {
        let path = write(dir.path(), name, &[&bom[..], body].concat());
        let mut reader = RecordReader::open(&path, opts()).unwrap();
        let batch = reader.next_batch().unwrap().unwrap();
        assert_eq!(reader.encoding(), Encoding::Utf8, "{name}");
        assert_eq!(
            Value::Object(batch.records[0].clone()),
            json!({"id": "党"}),
            "{name}"
        );
        assert_eq!(
            batch.origins[0].line,
            Some(if name == "b.csv" { 2 } else { 1 })
        );
    }
    // UTF-16, with or without BOM, is refused with a clear message.
    for bytes in [&b"\xff\xfe{\x00}\x00"[..], &b"{\x00\"\x00a\x00"[..]] {
        let path = write(dir.path(), "u16.jsonl", bytes);
        let e = data_error(read_with(&path, skip()).error);
        assert_eq!(e.kind, DataErrorKind::Decode);
        assert!(
            e.reason
                .contains("UTF-16 is not supported, convert to UTF-8"),
            "{e}"
        );
    }
}

#[test]
fn gbk_after_two_mib_of_ascii_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let mut ascii_jsonl = String::new();
    let mut ascii_csv = String::from("title,answer\n");
    let mut n = 0;
    while ascii_jsonl.len() < 2 * 1024 * 1024 + 100 {
        ascii_jsonl.push_str(&format!(
            "{{\"title\": \"row {n}\", \"answer\": \"ascii only\"}}\n"
        ));
        ascii_csv.push_str(&format!("row {n},ascii only\n"));
        n += 1;
    }
    let tail_jsonl = "{\"title\": \"高血压患者能吃党参吗？\", \"answer\": \"可以。\"}\n".repeat(3);
    let tail_csv = "高血压患者能吃党参吗？,\"可以，\n适量。\"\n".repeat(3);
    for (name, ascii, tail) in [
        ("late.jsonl", &ascii_jsonl, tail_jsonl),
        ("late.csv", &ascii_csv, tail_csv),
    ] {
        let bytes = [ascii.as_bytes(), &gbk(&tail)].concat();
        let path = write(dir.path(), name, &bytes);
        let mut reader = RecordReader::open(
            &path,
            ReaderOptions {
                batch_size: 1000,
                ..opts()
            },
        )
        .unwrap();
        let first = reader.next_batch().unwrap().unwrap();
        assert_eq!(reader.encoding(), Encoding::Auto, "{name}: still undecided");
        drop(first);
        let mut records = Vec::new();
        while let Some(b) = reader.next_batch().unwrap() {
            records.extend(b.records);
        }
        assert_eq!(reader.encoding(), Encoding::Gb18030, "{name}");
        let last = records.last().unwrap();
        assert_eq!(s(last, "title"), "高血压患者能吃党参吗？", "{name}");
        assert_eq!(reader.stats().records, n + 3, "{name}");
        if name.ends_with("csv") {
            assert_eq!(s(last, "answer"), "可以，\n适量。");
        }
    }
}

#[test]
fn utf8_file_with_one_bad_line() {
    // Detection keeps UTF-8 when one line is broken; that line alone is rejected.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for i in 0..50 {
        if i == 7 {
            bytes.extend_from_slice(b"{\"t\": \"\xe9\xab\x98\xff\"}\n");
        } else {
            bytes.extend_from_slice("{\"t\": \"高血压，患者\"}\n".as_bytes());
        }
    }
    let path = write(dir.path(), "one_bad.jsonl", &bytes);
    let e = data_error(read_with(&path, opts()).error);
    assert_eq!((e.kind, e.line), (DataErrorKind::Decode, Some(8)));
    assert!(e.reason.contains("invalid UTF-8"), "{e}");
    let out = read_with(&path, skip());
    assert_eq!((out.records.len(), out.rejections.len()), (49, 1));
    let r = &out.rejections[0];
    assert_eq!(
        r.raw_bytes.as_deref(),
        Some(&b"{\"t\": \"\xe9\xab\x98\xff\"}"[..])
    );
    assert_eq!(r.raw, "{\"t\": \"高\u{fffd}\"}");
}

#[test]
fn batches_respect_size_and_order() {
    let all = read_ok(&shared(TOYHOM), opts());
    for (rel, size) in [
        (TOYHOM, 1000),
        ("huatuo26m/huatuo26M_test.json", 7),
        ("disc_med_sft/test_examples.jsonl", 1),
    ] {
        let out = read_with(
            &shared(rel),
            ReaderOptions {
                batch_size: size,
                ..opts()
            },
        );
        assert!(out.error.is_none());
        let n = out.records.len();
        let mut expected = vec![size; n / size];
        if !n.is_multiple_of(size) {
            expected.push(n % size);
        }
        assert_eq!(out.batch_sizes, expected, "{rel}");
        let indices: Vec<u64> = out.origins.iter().map(|o| o.index).collect();
        assert_eq!(indices, (0..n as u64).collect::<Vec<_>>());
        if rel == TOYHOM {
            assert_eq!(out.records, all);
        }
    }
    let e = RecordReader::open(
        shared(TOYHOM),
        ReaderOptions {
            batch_size: 0,
            ..opts()
        },
    );
    assert!(matches!(e, Err(Error::Config(_))));
}

#[test]
fn content_corrects_a_misleading_json_name() {
    let dir = tempfile::tempdir().unwrap();
    let lines = write(
        dir.path(),
        "lines.json",
        b"{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3}\n",
    );
    let mut reader = RecordReader::open(&lines, opts()).unwrap();
    assert_eq!(reader.next_batch().unwrap().unwrap().records.len(), 3);
    assert_eq!(reader.format(), Format::Jsonl);
    let array = write(
        dir.path(),
        "array.jsonl",
        b"[\n{\"a\": 1},\n{\"a\": 2}\n]\n",
    );
    let mut reader = RecordReader::open(&array, opts()).unwrap();
    let batch = reader.next_batch().unwrap().unwrap();
    assert_eq!(batch.records.len(), 2);
    assert_eq!(batch.origins[1].line, Some(3));
    assert_eq!(reader.format(), Format::Json);
    // An explicit format is not second-guessed.
    let forced = read_with(
        &lines,
        ReaderOptions {
            format: Some(Format::Json),
            ..opts()
        },
    );
    assert!(forced.error.is_some());
}

#[test]
fn csv_details() {
    let dir = tempfile::tempdir().unwrap();
    // CRLF, blank lines, a quoted field with a line break and quotes, an empty last field.
    let text = "a,b,c\r\n1,\"x\r\ny \"\"q\"\"\",3\r\n\r\n\n4,5,\r\n";
    let path = write(dir.path(), "d.csv", text.as_bytes());
    let out = read_with(&path, opts());
    assert!(out.error.is_none());
    assert_eq!(
        out.records
            .iter()
            .map(|r| Value::Object(r.clone()))
            .collect::<Vec<_>>(),
        [
            json!({"a": "1", "b": "x\r\ny \"q\"", "c": "3"}),
            json!({"a": "4", "b": "5", "c": ""})
        ]
    );
    let lines: Vec<_> = out.origins.iter().map(|o| o.line.unwrap()).collect();
    assert_eq!(lines, [2, 6]);
    // TSV by name; a forced delimiter.
    let tsv = write(
        dir.path(),
        "t.tsv",
        "问题\t答案\n你好,世界\t好\n".as_bytes(),
    );
    let records = read_ok(&tsv, opts());
    assert_eq!(
        Value::Object(records[0].clone()),
        json!({"问题": "你好,世界", "答案": "好"})
    );
    let semi = write(dir.path(), "s.csv", b"a;b\n1;2\n");
    let records = read_ok(
        &semi,
        ReaderOptions {
            delimiter: Some(b';'),
            ..opts()
        },
    );
    assert_eq!(
        Value::Object(records[0].clone()),
        json!({"a": "1", "b": "2"})
    );
    // Header only, empty file: no records. Duplicate column names: an error.
    for text in ["a,b\n", ""] {
        let path = write(dir.path(), "h.csv", text.as_bytes());
        assert!(read_ok(&path, opts()).is_empty());
    }
    let dup = write(dir.path(), "dup.csv", b"a,a\n1,2\n");
    let e = data_error(read_with(&dup, skip()).error);
    assert!(e.reason.contains("twice"), "{e}");
    // A short row.
    let short = write(dir.path(), "short.csv", b"a,b\n1\n2,3\n");
    let out = read_with(&short, skip());
    assert_eq!(out.records.len(), 1);
    assert_eq!(
        out.rejections[0].error.reason,
        "expected 2 fields (a,b), found 1"
    );
    assert_eq!(out.rejections[0].raw, "1");
    // A GBK file with a delimiter that can hide inside a GBK character.
    let pipe = write(dir.path(), "p.csv", &gbk("问题|答案\n乗|俓\n"));
    let out = read_with(
        &pipe,
        ReaderOptions {
            delimiter: Some(b'|'),
            ..opts()
        },
    );
    assert!(matches!(out.error, Some(Error::Config(_))));
}

#[test]
fn io_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    match RecordReader::open(&missing, opts()) {
        Err(Error::Io { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn reader_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<RecordReader>();
}

#[test]
fn format_from_path() {
    assert_eq!(Format::from_path("a/b.JSONL.gz"), Some(Format::Jsonl));
    assert_eq!(Format::from_path("x.ndjson.zst"), Some(Format::Jsonl));
    assert_eq!(Format::from_path("x.json"), Some(Format::Json));
    assert_eq!(Format::from_path("x.tsv"), Some(Format::Csv));
    assert_eq!(Format::from_path("x.parquet"), Some(Format::Parquet));
    assert_eq!(Format::from_path("x.txt"), None);
    assert_eq!(Format::from_path("json"), None);
    assert_eq!(Format::from_path("x.gz"), None);
}

// ---------------------------------------------------------------------------------------------
// Parquet

#[cfg(feature = "parquet")]
fn write_flat_parquet(path: &Path) {
    use std::sync::Arc;

    use ::parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
    use ::parquet::file::properties::WriterProperties;
    use ::parquet::file::writer::SerializedFileWriter;
    use ::parquet::schema::parser::parse_message_type;

    let schema = parse_message_type(
        "message m { REQUIRED INT64 id; REQUIRED BYTE_ARRAY title (UTF8); \
         OPTIONAL BYTE_ARRAY note (UTF8); REQUIRED DOUBLE score; REQUIRED BOOLEAN ok; }",
    )
    .unwrap();
    let props = Arc::new(WriterProperties::builder().build());
    let file = fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), props).unwrap();
    // Two row groups of two rows each.
    for group in 0..2i64 {
        let mut rg = writer.next_row_group().unwrap();
        let mut col = 0;
        while let Some(mut c) = rg.next_column().unwrap() {
            match col {
                0 => {
                    c.typed::<Int64Type>()
                        .write_batch(&[group * 2, group * 2 + 1], None, None)
                        .unwrap();
                }
                1 => {
                    let v = [ByteArray::from("高血压"), ByteArray::from("党参")];
                    c.typed::<ByteArrayType>()
                        .write_batch(&v, None, None)
                        .unwrap();
                }
                2 => {
                    let v = [ByteArray::from("note")];
                    c.typed::<ByteArrayType>()
                        .write_batch(&v, Some(&[1, 0]), None)
                        .unwrap();
                }
                3 => {
                    c.typed::<DoubleType>()
                        .write_batch(&[0.5, 1.0], None, None)
                        .unwrap();
                }
                _ => {
                    c.typed::<BoolType>()
                        .write_batch(&[true, false], None, None)
                        .unwrap();
                }
            }
            c.close().unwrap();
            col += 1;
        }
        rg.close().unwrap();
    }
    writer.close().unwrap();
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.parquet");
    write_flat_parquet(&path);
    let mut reader = RecordReader::open(
        &path,
        ReaderOptions {
            batch_size: 3,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(reader.format(), Format::Parquet);
    let first = reader.next_batch().unwrap().unwrap();
    let second = reader.next_batch().unwrap().unwrap();
    assert!(reader.next_batch().unwrap().is_none());
    assert_eq!((first.records.len(), second.records.len()), (3, 1));
    assert_eq!(
        reader.bytes_read(),
        reader.total_bytes().min(reader.bytes_read())
    );
    assert!(reader.bytes_read() > 0);
    assert_eq!(
        Value::Object(first.records[0].clone()),
        json!({"id": 0, "title": "高血压", "note": "note", "score": 0.5, "ok": true})
    );
    assert_eq!(
        Value::Object(second.records[0].clone()),
        json!({"id": 3, "title": "党参", "note": null, "score": 1.0, "ok": false})
    );
    assert_eq!(
        second.origins[0],
        Origin {
            index: 3,
            line: None
        }
    );

    // Required fields apply to Parquet rows too.
    let out = read_with(
        &path,
        ReaderOptions {
            required: vec!["note".into()],
            on_error: OnError::Skip,
            ..opts()
        },
    );
    assert_eq!((out.records.len(), out.rejections.len()), (2, 2));
    assert_eq!(out.rejections[0].error.record, Some(1));
    assert_eq!(out.rejections[0].error.line, None);

    // Compressed Parquet is a configuration error; garbage is a Parquet error.
    let gz = write(
        dir.path(),
        "flat.parquet.gz",
        &gzip(&fs::read(&path).unwrap()),
    );
    assert!(matches!(
        RecordReader::open(&gz, opts()),
        Err(Error::Config(_))
    ));
    let junk = write(dir.path(), "junk.parquet", b"not parquet at all");
    match RecordReader::open(&junk, opts()) {
        Err(Error::Data(e)) => assert_eq!(e.kind, DataErrorKind::Parquet),
        other => panic!("{:?}", other.err()),
    }
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_nested_types_from_polars() {
    // tests/data/io/nested.parquet was written by polars (zstd pages, two row groups):
    // i64, str, list[str], struct{dept: str, score: f64}, nullable str, bool, date.
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/io/nested.parquet"
    ));
    let records = read_ok(path, opts());
    let values: Vec<Value> = records.into_iter().map(Value::Object).collect();
    assert_eq!(
        values,
        [
            json!({"id": 1, "title": "高血压患者能吃党参吗？", "tags": ["心血管科", "内科"],
                   "meta": {"dept": "心血管科", "score": 0.5}, "maybe": "a", "flag": true,
                   "day": "2024-01-31"}),
            json!({"id": 2, "title": "plain ascii", "tags": [],
                   "meta": {"dept": null, "score": 2.0}, "maybe": null, "flag": false,
                   "day": "1970-01-01"}),
            json!({"id": 3, "title": "第三条", "tags": null,
                   "meta": {"dept": "x", "score": null}, "maybe": "c", "flag": null,
                   "day": null}),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Throughput, run by hand:
//   cargo test --release --lib io::tests::throughput -- --ignored --nocapture
// The real files are scaled up to about 200 MB each, in $IO_BENCH_DIR (kept, reused) or a
// temporary directory. Each file is read three times; the best time counts.

/// Repeats `body` (the part of `src` after `head` bytes) after `src` up to about 200 MB, with
/// `sep` between repeats, and `tail` at the end.
fn scaled(src: &[u8], head: usize, end: usize, sep: &[u8], tail: &[u8]) -> Vec<u8> {
    let reps = (200 << 20) / src.len() + 1;
    let mut out = Vec::with_capacity(src.len() * reps + tail.len());
    out.extend_from_slice(&src[..end]);
    for _ in 1..reps {
        out.extend_from_slice(sep);
        out.extend_from_slice(&src[head..end]);
    }
    out.extend_from_slice(tail);
    out
}

#[test]
#[ignore = "speed measurement: run with --release -- --ignored --nocapture (set IO_BENCH_DIR)"]
#[allow(clippy::print_stderr)]
fn throughput() {
    use std::time::Instant;

    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("IO_BENCH_DIR").map_or(tmp.path().to_path_buf(), PathBuf::from);
    fs::create_dir_all(&dir).unwrap();
    let make = |name: &str, build: &dyn Fn() -> Vec<u8>| -> PathBuf {
        let path = dir.join(name);
        if !path.exists() {
            fs::write(&path, build()).unwrap();
        }
        path
    };
    let json = make("big.json", &|| {
        // The huatuo array's elements repeated inside one array.
        let src = fs::read(shared("huatuo26m/huatuo26M_test.json")).unwrap();
        let open = src.iter().position(|&b| b == b'[').unwrap() + 1;
        let close = src.iter().rposition(|&b| b == b']').unwrap();
        scaled(&src, open, close, b",", b"]")
    });
    let jsonl = make("big.jsonl", &|| {
        let mut lines = Vec::new();
        for r in read_ok(&shared("huatuo26m/huatuo26M_test.json"), opts()) {
            lines.extend(serde_json::to_vec(&r).unwrap());
            lines.push(b'\n');
        }
        scaled(&lines, 0, lines.len(), b"", b"")
    });
    let gz = make("big.jsonl.gz", &|| gzip(&fs::read(&jsonl).unwrap()));
    let gbk_csv = make("big_gbk.csv", &|| {
        let src = fs::read(shared(TOYHOM)).unwrap();
        let header = src.iter().position(|&b| b == b'\n').unwrap() + 1;
        scaled(&src, header, src.len(), b"", b"")
    });
    let utf8_csv = make("big_utf8.csv", &|| {
        let src = fs::read(shared("cmexam/cmexam_val_part1.csv")).unwrap();
        let header = src.iter().position(|&b| b == b'\n').unwrap() + 1;
        scaled(&src, header, src.len(), b"", b"")
    });
    for path in [&json, &jsonl, &gz, &gbk_csv, &utf8_csv] {
        let size = fs::metadata(path).unwrap().len() as f64 / 1e6;
        let mut best = f64::MAX;
        let mut n = 0;
        for _ in 0..3 {
            let started = Instant::now();
            let mut reader = RecordReader::open(path, opts()).unwrap();
            n = 0;
            while let Some(b) = reader.next_batch().unwrap() {
                n += b.records.len();
            }
            best = best.min(started.elapsed().as_secs_f64());
        }
        eprintln!(
            "{}: {n} records, {size:.0} MB on disk, {best:.2} s = {:.0} MB/s ({} threads)",
            path.file_name().unwrap().to_string_lossy(),
            size / best,
            rayon::current_num_threads()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Messages that say what is wrong

#[test]
fn a_lone_surrogate_escape_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    for (text, esc) in [
        (r#"{"a": "\ud800"}"#, r"\ud800"),
        (r#"{"a": "x\uDC00y"}"#, r"\uDC00"),
        (r#"{"a": "\ud83d\u0041"}"#, r"\ud83d"),
    ] {
        let p = write(
            dir.path(),
            "s.jsonl",
            format!("{{\"ok\": 1}}\n{text}\n").as_bytes(),
        );
        let e = read_with(&p, opts()).error.expect("an error");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("lone surrogate escape '{esc}'")) && msg.contains(":2"),
            "{msg}"
        );
    }
    // A proper pair is a character.
    let p = write(dir.path(), "pair.jsonl", br#"{"a": "\ud83d\ude00"}"#);
    assert_eq!(read_ok(&p, opts())[0]["a"], "\u{1F600}");
}

#[test]
fn a_directory_or_a_missing_path_says_so_not_the_format() {
    let dir = tempfile::tempdir().unwrap();
    for p in [dir.path().to_path_buf(), dir.path().join("data.jsonl")] {
        fs::create_dir_all(dir.path().join("data.jsonl")).unwrap();
        let e = read_with(&p, opts()).error.expect("an error");
        assert!(matches!(&e, Error::Io { source, .. } if source.raw_os_error() == Some(21)));
        assert!(e.to_string().contains("Is a directory"), "{e}");
    }
    let e = read_with(&dir.path().join("missing"), opts())
        .error
        .unwrap();
    assert!(e.to_string().contains("No such file"), "{e}");
}
