//! What all readers share once a record's raw bytes are cut out: decoding and JSON parsing of
//! a batch of spans in parallel (rayon, order kept), the required-field check, and handing each
//! record to the batch, or — when it is bad — raising the located error or rejecting it with its
//! raw text, per [`OnError`]. It does not find record boundaries; the format readers do.

use std::borrow::Cow;
use std::path::Path;

use rayon::prelude::*;
use serde_json::Value;

use crate::error::{DataError, DataErrorKind, Error, Result};
use crate::record::{Origin, Record, RecordBatch, Rejection};

use super::decode::{decode, decode_lossy};
use super::{Encoding, OnError};

/// Below this many spans a batch is parsed on the calling thread.
pub(crate) const PARALLEL_MIN: usize = 64;

/// The per-file settings a reader needs to judge records.
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
    pub on_error: OnError,
    pub required: &'a [String],
    /// Keep each span's text instead of parsing it (see `ReaderOptions::raw_lines`).
    pub raw_lines: bool,
}

/// Why one record is bad (the location is added by [`Ctx::bad`]).
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: DataErrorKind,
    pub reason: String,
    pub field: Option<String>,
    /// The bytes are not valid text in the file's encoding: keep them in `raw_bytes`.
    pub undecodable: bool,
}

impl Failure {
    pub(crate) fn new(kind: DataErrorKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
            field: None,
            undecodable: false,
        }
    }

    pub(crate) fn undecodable(reason: String) -> Self {
        Self {
            undecodable: true,
            ..Self::new(DataErrorKind::Decode, reason)
        }
    }
}

impl Ctx<'_> {
    /// Handles a bad record: `Raise` → the error; `Skip` → a rejection in `batch`.
    pub(crate) fn bad(
        &self,
        batch: &mut RecordBatch,
        failure: Failure,
        origin: Origin,
        raw: &[u8],
        encoding: Encoding,
    ) -> Result<()> {
        let mut error = DataError::new(self.path, failure.kind, failure.reason);
        error.line = origin.line;
        error.record = Some(origin.index);
        error.field = failure.field;
        match self.on_error {
            OnError::Raise => Err(Error::Data(Box::new(error))),
            OnError::Skip => {
                batch.rejections.push(Rejection {
                    error,
                    raw: decode_lossy(raw, encoding),
                    raw_bytes: (failure.undecodable || decode(raw, encoding).is_err())
                        .then(|| raw.to_vec()),
                });
                Ok(())
            }
        }
    }

    /// Checks the required fields of a parsed record.
    pub(crate) fn check_required(&self, record: &Record) -> Result<(), Failure> {
        for name in self.required {
            let reason = match record.get(name) {
                Some(Value::Null) => "required field is null",
                Some(_) => continue,
                None => "missing required field",
            };
            let mut failure = Failure::new(DataErrorKind::MissingField, reason);
            failure.field = Some(name.clone());
            return Err(failure);
        }
        Ok(())
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A serde_json message without its own "at line L column C" suffix.
fn bare_message(e: &serde_json::Error) -> String {
    let mut msg = e.to_string();
    if let Some(at) = msg.rfind(" at line ") {
        msg.truncate(at);
    }
    msg
}

/// serde_json's message, except for a `\uXXXX` escape of half a UTF-16 surrogate pair, which it
/// reports as "unexpected end of hex escape" or "lone leading surrogate" (even for a trailing
/// half): that case is named for what it is.
fn json_message(e: &serde_json::Error, text: &str) -> String {
    let msg = bare_message(e);
    if msg.contains("hex escape") || msg.contains("surrogate") {
        if let Some(esc) = lone_surrogate(text) {
            return format!(
                "lone surrogate escape '{esc}': half of a UTF-16 pair, not a character \
                 (the text is not valid Unicode)"
            );
        }
    }
    msg
}

/// The first `\uD800`–`\uDFFF` escape in `text` that is not a leading half followed by a
/// trailing half.
fn lone_surrogate(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let unit = |i: usize| -> Option<u16> {
        let hex = b.get(i..i + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(u) = unit(i) {
                if (0xD800..0xDC00).contains(&u) {
                    match unit(i + 6) {
                        Some(v) if (0xDC00..0xE000).contains(&v) => i += 12,
                        _ => return text.get(i..i + 6),
                    }
                    continue;
                }
                if (0xDC00..0xE000).contains(&u) {
                    return text.get(i..i + 6);
                }
            }
            i += 2; // an escape: skip the escaped character (`\\` included)
            continue;
        }
        i += 1;
    }
    None
}

/// One record's raw JSON text, cut out of the buffer by a reader.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    /// The value's bytes: `data[start..end]`.
    pub start: usize,
    pub end: usize,
    /// For a record that is a value of a top-level object: its key (a JSON string with quotes).
    /// The raw text of the record then runs from the key to the value's end.
    pub key: Option<(usize, usize)>,
    /// 1-based line where the record starts.
    pub line: u64,
    /// 0-based record index in the file.
    pub index: u64,
    /// The record is one line (JSONL): report syntax errors by column.
    pub one_line: bool,
}

impl Span {
    pub(crate) fn origin(&self) -> Origin {
        Origin {
            index: self.index,
            line: Some(self.line),
        }
    }

    /// The record's raw bytes (key included) within `data`.
    pub(crate) fn raw<'d>(&self, data: &'d [u8]) -> &'d [u8] {
        let start = self.key.map_or(self.start, |(k, _)| k);
        &data[start..self.end]
    }
}

/// Decodes and parses one span into a record.
fn parse_span(data: &[u8], span: &Span, encoding: Encoding, ctx: &Ctx) -> Result<Record, Failure> {
    let bytes = &data[span.start..span.end];
    let text = decode(bytes, encoding)
        .map_err(|m| Failure::undecodable(m.reason(encoding, "the record")))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        let position = if span.one_line {
            format!("at column {}", e.column())
        } else if e.line() <= 1 {
            format!("at line {}", span.line)
        } else {
            format!(
                "at line {}, column {}",
                span.line + e.line() as u64 - 1,
                e.column()
            )
        };
        Failure::new(
            DataErrorKind::Json,
            format!("invalid JSON: {} {position}", json_message(&e, &text)),
        )
    })?;
    let mut record = match value {
        Value::Object(map) => map,
        other => {
            return Err(Failure::new(
                DataErrorKind::Json,
                format!(
                    "record {} is not a JSON object (found {})",
                    span.index,
                    type_name(&other)
                ),
            ))
        }
    };
    if let Some((k0, k1)) = span.key {
        let key_bytes = &data[k0..k1];
        let key_text = decode(key_bytes, encoding)
            .map_err(|m| Failure::undecodable(m.reason(encoding, "the key")))?;
        let key: String = serde_json::from_str(&key_text).map_err(|e| {
            Failure::new(
                DataErrorKind::Json,
                format!("invalid JSON object key: {}", json_message(&e, &key_text)),
            )
        })?;
        if record.contains_key("_key") {
            let mut failure = Failure::new(
                DataErrorKind::Json,
                format!("record '{key}' has its own field '_key', which would hide its key"),
            );
            failure.field = Some("_key".into());
            return Err(failure);
        }
        record.shift_insert(0, "_key".to_owned(), Value::String(key));
    }
    ctx.check_required(&record)?;
    Ok(record)
}

/// Parses `spans` of `data` (in parallel for larger batches) and hands the results to `batch`
/// in order. In `Raise` mode the first bad record is the error; the records before it are in
/// `batch`.
/// Decodes spans into `batch.raw` without parsing them (lossily: a line that cannot be decoded
/// was rejected when the file was parsed).
pub(crate) fn raw_spans_into(
    batch: &mut RecordBatch,
    data: &[u8],
    spans: &[Span],
    encoding: Encoding,
) {
    let texts: Vec<String> = spans
        .par_iter()
        .with_min_len(64)
        .map(|s| {
            let bytes = &data[s.start..s.end];
            decode(bytes, encoding).map_or_else(|_| decode_lossy(bytes, encoding), Cow::into_owned)
        })
        .collect();
    batch.raw.extend(texts);
    batch.origins.extend(spans.iter().map(Span::origin));
}

pub(crate) fn parse_spans_into(
    batch: &mut RecordBatch,
    data: &[u8],
    spans: &[Span],
    encoding: Encoding,
    ctx: &Ctx,
) -> Result<()> {
    let results: Vec<Result<Record, Failure>> = if spans.len() < PARALLEL_MIN {
        spans
            .iter()
            .map(|s| parse_span(data, s, encoding, ctx))
            .collect()
    } else {
        spans
            .par_iter()
            .with_min_len(16)
            .map(|s| parse_span(data, s, encoding, ctx))
            .collect()
    };
    batch.records.reserve(results.len());
    batch.origins.reserve(results.len());
    for (span, result) in spans.iter().zip(results) {
        match result {
            Ok(record) => batch.push(record, span.origin()),
            Err(failure) => ctx.bad(batch, failure, span.origin(), span.raw(data), encoding)?,
        }
    }
    Ok(())
}
