//! The record and batch types every stage shares.
//!
//! A record is a field map (`serde_json::Map`, insertion-ordered) exactly as the source file
//! holds it: readers do not rename or coerce fields. A batch carries, beside its records, where
//! each came from and the records that were rejected while reading it, so that every input record
//! is accounted for downstream (kept, or rejected with a reason).

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::error::DataError;

/// One record: field name → JSON value, in the order the source declared the fields.
pub type Record = Map<String, Value>;

/// Where a record came from inside its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// 0-based index among all records of the file, rejected ones included.
    pub index: u64,
    /// 1-based line where the record starts (line-based formats), else `None`.
    pub line: Option<u64>,
}

/// A record that could not be read, kept with its raw text so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub error: DataError,
    /// The raw record as found in the (decompressed) file, decoded lossily when the bytes are
    /// not valid in the file's encoding.
    pub raw: String,
    /// The exact raw bytes, only when `raw` could not represent them (undecodable input).
    pub raw_bytes: Option<Vec<u8>>,
}

/// A batch of records read from one file.
#[derive(Debug, Clone, Default)]
pub struct RecordBatch {
    pub path: PathBuf,
    pub records: Vec<Record>,
    /// `origins[i]` belongs to `records[i]` (to `raw[i]` when reading raw lines).
    pub origins: Vec<Origin>,
    /// Unparsed record texts, only when reading with `ReaderOptions::raw_lines`.
    pub raw: Vec<String>,
    /// Records rejected while reading this batch (only in `OnError::Skip` mode).
    pub rejections: Vec<Rejection>,
}

impl RecordBatch {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.raw.is_empty() && self.rejections.is_empty()
    }

    pub fn push(&mut self, record: Record, origin: Origin) {
        self.records.push(record);
        self.origins.push(origin);
    }
}
