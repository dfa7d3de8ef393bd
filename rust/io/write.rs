//! Atomic output files: JSONL records and quarantine (rejected-record) files.
//!
//! Output goes to a hidden temporary file beside the destination and is renamed into place only
//! by [`JsonlWriter::commit`]; a writer dropped without commit (an error, Ctrl-C) removes its
//! temporary file, so a run leaves complete outputs or none. `.gz` / `.zst` destinations are
//! compressed. Records are serialized in parallel (rayon) and written in input order, UTF-8
//! without ASCII escaping. This module does not read anything.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::record::{Record, Rejection};

enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
}

impl Sink {
    fn as_write(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w,
            Sink::Zstd(w) => w,
        }
    }

    fn finish(self) -> std::io::Result<File> {
        let buffered = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
            Sink::Zstd(w) => w.finish()?,
        };
        buffered
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)
    }
}

/// A file written under a temporary name and renamed into place on [`AtomicFile::commit`].
pub struct AtomicFile {
    dest: PathBuf,
    tmp: PathBuf,
    sink: Option<Sink>,
}

impl AtomicFile {
    /// Creates the temporary file (and the destination's parent folders).
    pub fn create(dest: impl AsRef<Path>) -> Result<Self> {
        let dest = dest.as_ref().to_path_buf();
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let name = dest
            .file_name()
            .ok_or_else(|| Error::config(format!("not a file path: {}", dest.display())))?;
        let tmp = parent.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let buffered = BufWriter::with_capacity(1 << 20, file);
        let lower = name.to_string_lossy().to_ascii_lowercase();
        let sink = if lower.ends_with(".gz") {
            Sink::Gzip(flate2::write::GzEncoder::new(
                buffered,
                flate2::Compression::default(),
            ))
        } else if lower.ends_with(".zst") {
            let enc =
                zstd::stream::write::Encoder::new(buffered, 3).map_err(|e| Error::io(&tmp, e))?;
            Sink::Zstd(enc)
        } else {
            Sink::Plain(buffered)
        };
        Ok(Self {
            dest,
            tmp,
            sink: Some(sink),
        })
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let sink = self.sink.as_mut().expect("write after commit");
        sink.as_write()
            .write_all(bytes)
            .map_err(|e| Error::io(&self.tmp, e))
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        let sink = self.sink.take().expect("commit twice");
        let file = sink.finish().map_err(|e| Error::io(&self.tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        drop(file);
        fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.sink.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes JSON objects one per line, atomically.
pub struct JsonlWriter {
    file: AtomicFile,
    count: u64,
}

impl JsonlWriter {
    pub fn create(dest: impl AsRef<Path>) -> Result<Self> {
        Ok(Self {
            file: AtomicFile::create(dest)?,
            count: 0,
        })
    }

    pub fn dest(&self) -> &Path {
        self.file.dest()
    }

    /// Lines written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes records in order; serialization runs in parallel.
    pub fn write_records(&mut self, records: &[Record]) -> Result<()> {
        let lines: Vec<Vec<u8>> = records
            .par_iter()
            .map(|r| {
                let mut line = serde_json::to_vec(r).expect("a JSON map always serializes");
                line.push(b'\n');
                line
            })
            .collect();
        for line in &lines {
            self.file.write_all(line)?;
        }
        self.count += lines.len() as u64;
        Ok(())
    }

    /// Writes lines of JSON text as they are (each must be one JSON value without a newline).
    pub fn write_raw_lines(&mut self, lines: &[&str]) -> Result<()> {
        for line in lines {
            self.file.write_all(line.as_bytes())?;
            self.file.write_all(b"\n")?;
        }
        self.count += lines.len() as u64;
        Ok(())
    }

    /// Writes any JSON values (one per line).
    pub fn write_values(&mut self, values: &[Value]) -> Result<()> {
        for v in values {
            let mut line = serde_json::to_vec(v).expect("a JSON value always serializes");
            line.push(b'\n');
            self.file.write_all(&line)?;
        }
        self.count += values.len() as u64;
        Ok(())
    }

    /// Writes `lines` lines already serialized as JSON (each ending in a newline) in `bytes`.
    pub fn write_serialized(&mut self, bytes: &[u8], lines: u64) -> Result<()> {
        self.file.write_all(bytes)?;
        self.count += lines;
        Ok(())
    }

    /// Writes rejected records as quarantine entries (see [`rejection_to_json`]).
    pub fn write_rejections(&mut self, rejections: &[Rejection]) -> Result<()> {
        let values: Vec<Value> = rejections.iter().map(rejection_to_json).collect();
        self.write_values(&values)
    }

    /// Renames the output into place and returns the number of lines written.
    pub fn commit(self) -> Result<u64> {
        let count = self.count;
        self.file.commit()?;
        Ok(count)
    }
}

/// One quarantine line: where the record was, why it was rejected, and its raw text
/// (`raw_hex` holds the exact bytes when they were not valid text).
pub fn rejection_to_json(r: &Rejection) -> Value {
    let e = &r.error;
    let mut v = json!({
        "file": e.path.to_string_lossy(),
        "line": e.line,
        "record": e.record,
        "field": e.field,
        "kind": e.kind.as_str(),
        "reason": e.reason,
        "raw": r.raw,
    });
    if let Some(bytes) = &r.raw_bytes {
        v["raw_hex"] = Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{DataError, DataErrorKind};

    fn record(k: &str, v: &str) -> Record {
        let mut r = Record::new();
        r.insert(k.to_string(), Value::String(v.to_string()));
        r
    }

    #[test]
    fn commit_renames_and_keeps_chinese_unescaped() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/out.jsonl");
        let mut w = JsonlWriter::create(&dest).unwrap();
        w.write_records(&[record("q", "高血压"), record("q", "b")])
            .unwrap();
        assert!(!dest.exists(), "nothing visible before commit");
        assert_eq!(w.commit().unwrap(), 2);
        let text = fs::read_to_string(&dest).unwrap();
        assert_eq!(text, "{\"q\":\"高血压\"}\n{\"q\":\"b\"}\n");
        assert_eq!(fs::read_dir(dest.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn drop_without_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.jsonl");
        {
            let mut w = JsonlWriter::create(&dest).unwrap();
            w.write_records(&[record("q", "a")]).unwrap();
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn gzip_output_round_trips() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.jsonl.gz");
        let mut w = JsonlWriter::create(&dest).unwrap();
        w.write_records(&[record("q", "头发")]).unwrap();
        w.commit().unwrap();
        let mut s = String::new();
        flate2::read::GzDecoder::new(File::open(&dest).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "{\"q\":\"头发\"}\n");
    }

    #[test]
    fn quarantine_entry_names_location_and_keeps_bytes() {
        let r = Rejection {
            error: DataError::new("x.csv", DataErrorKind::Decode, "invalid GBK")
                .at_line(3)
                .at_record(1),
            raw: "a\u{fffd}".into(),
            raw_bytes: Some(vec![b'a', 0xff]),
        };
        let v = rejection_to_json(&r);
        assert_eq!(v["line"], 3);
        assert_eq!(v["record"], 1);
        assert_eq!(v["kind"], "decode");
        assert_eq!(v["raw_hex"], "61ff");
    }
}
