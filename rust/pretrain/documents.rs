//! Raw documents for the pretraining corpus, written as JSON Lines `{"text", "origin"}`:
//!
//! - [`text_documents`]: plain-text files split by a [`SplitRule`] (the whole file, blocks
//!   separated by blank lines, single lines, or blocks separated by a separator line). Text is
//!   UTF-8 (a BOM is dropped) or, failing that, GB18030 when it decodes cleanly; `\r\n` becomes
//!   `\n`; each document is trimmed and empty ones are not documents. `origin` is `file:line`
//!   of the document's first line.
//! - [`render_documents`]: a text field of records (JSONL, Parquet, CSV …), or SFT records (Alpaca or messages style, as `adapt` writes them) as
//!   text: dialogues as `患者：…\n医生：…` turns, QA as `问：…\n答：…`, exam questions as the
//!   question (with its options) and `答案：…`. A record that is no conversation is rejected
//!   with its field and reason, never dropped silently.
//!
//! Reads and writes files; no filtering (see `quality`) and no tokenization (see `pack`).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{json, Value};

use crate::error::{DataError, DataErrorKind, Error, Result};
use crate::io::write::JsonlWriter;
use crate::io::{OnError, ReaderOptions, RecordReader};
use crate::lengths::template::{conversation, Unrenderable};
use crate::Rejection;

/// How a text file is cut into documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitRule {
    /// The whole file is one document.
    File,
    /// Blocks of lines separated by one or more blank (whitespace-only) lines.
    BlankLine,
    /// Every non-blank line is a document.
    Line,
    /// Blocks separated by lines equal (after trimming) to this text.
    Separator(String),
}

impl FromStr for SplitRule {
    type Err = Error;

    /// `file`, `blank-line`, `line`, or `separator:TEXT`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "file" => Ok(Self::File),
            "blank-line" => Ok(Self::BlankLine),
            "line" => Ok(Self::Line),
            _ => match s.strip_prefix("separator:") {
                Some(sep) if !sep.trim().is_empty() => Ok(Self::Separator(sep.trim().to_string())),
                _ => Err(Error::config(format!(
                    "split: expected file, blank-line, line or separator:TEXT, got {s:?}"
                ))),
            },
        }
    }
}

/// How SFT records are rendered as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderStyle {
    /// `患者：…\n医生：…` per turn.
    Dialogue,
    /// `问：…\n答：…` per turn.
    Qa,
    /// The question (with its options), then `答案：…`.
    Mcqa,
    /// User text and answer, one after the other.
    Plain,
}

impl FromStr for RenderStyle {
    type Err = Error;

    /// An adapter style (`dialogue`, `qa`, `mcqa`); any other style renders plain.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "dialogue" => Self::Dialogue,
            "qa" => Self::Qa,
            "mcqa" => Self::Mcqa,
            _ => Self::Plain,
        })
    }
}

/// What one call wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentStats {
    pub files: u64,
    pub documents: u64,
    /// Input records (render) or files (text) that could not be used; in the quarantine.
    pub rejected: u64,
    pub chars: u64,
}

/// The documents file and the quarantine being written, and what went where.
struct Sink {
    out: JsonlWriter,
    bad: Option<JsonlWriter>,
    on_error: OnError,
    stats: DocumentStats,
}

impl Sink {
    fn create(output: &Path, quarantine: Option<&Path>, on_error: OnError) -> Result<Self> {
        Ok(Self {
            out: JsonlWriter::create(output)?,
            bad: quarantine.map(JsonlWriter::create).transpose()?,
            on_error,
            stats: DocumentStats::default(),
        })
    }

    /// A file or record that gives no document: into the quarantine under
    /// [`OnError::Skip`], else the error that stops the run.
    /// `raw_bytes`: the exact bytes, where `raw` cannot hold them (undecodable text).
    fn reject(&mut self, error: DataError, raw: String, raw_bytes: Option<Vec<u8>>) -> Result<()> {
        match (self.on_error, self.bad.as_mut()) {
            (OnError::Skip, Some(q)) => {
                q.write_rejections(&[Rejection {
                    error,
                    raw,
                    raw_bytes,
                }])?;
                self.stats.rejected += 1;
                Ok(())
            }
            _ => Err(error.into()),
        }
    }

    fn write(&mut self, docs: Vec<(String, String)>) -> Result<()> {
        let values: Vec<Value> = docs
            .into_iter()
            .map(|(text, origin)| {
                self.stats.chars += text.chars().count() as u64;
                json!({"text": text, "origin": origin})
            })
            .collect();
        self.stats.documents += values.len() as u64;
        self.out.write_values(&values)
    }

    fn commit(self) -> Result<DocumentStats> {
        self.out.commit()?;
        if let Some(q) = self.bad {
            q.commit()?;
        }
        Ok(self.stats)
    }
}

/// Cuts `files` (in the given order) into documents by `rule` and writes them to `output`.
/// A file that is neither UTF-8 nor GB18030 is an error naming it, or with
/// [`OnError::Skip`] a quarantine entry in `quarantine`.
pub fn text_documents(
    files: &[PathBuf],
    rule: &SplitRule,
    output: &Path,
    quarantine: Option<&Path>,
    on_error: OnError,
) -> Result<DocumentStats> {
    let mut sink = Sink::create(output, quarantine, on_error)?;
    for path in files {
        sink.stats.files += 1;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let Some(text) = decode(&bytes) else {
            let e = DataError::new(
                path,
                DataErrorKind::Decode,
                "neither UTF-8 nor GB18030 text",
            );
            sink.reject(e, String::from_utf8_lossy(&bytes).into_owned(), Some(bytes))?;
            continue;
        };
        let name = path.display().to_string();
        let docs = split_text(&text, rule)
            .into_iter()
            .map(|(line, doc)| (doc, format!("{name}:{line}")))
            .collect();
        sink.write(docs)?;
    }
    sink.commit()
}

/// UTF-8 (BOM dropped), else GB18030 when it decodes without replacement.
fn decode(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Some(s.to_string());
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    (!had_errors).then(|| text.into_owned())
}

/// The documents of a text as (1-based first line, trimmed text), empty ones left out.
pub fn split_text(text: &str, rule: &SplitRule) -> Vec<(u64, String)> {
    let mut docs = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    let mut first = 0u64;
    let flush = |block: &mut Vec<&str>, first: u64, docs: &mut Vec<(u64, String)>| {
        let doc = block.join("\n");
        let trimmed = doc.trim();
        if !trimmed.is_empty() {
            // the first line that holds text
            let lead = doc[..doc.len() - doc.trim_start().len()]
                .matches('\n')
                .count() as u64;
            docs.push((first + lead, trimmed.to_string()));
        }
        block.clear();
    };
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let no = i as u64 + 1;
        let boundary = match rule {
            SplitRule::File => false,
            SplitRule::Line => {
                flush(&mut block, first, &mut docs);
                block.push(line);
                first = no;
                flush(&mut block, first, &mut docs);
                continue;
            }
            SplitRule::BlankLine => line.trim().is_empty(),
            SplitRule::Separator(sep) => line.trim() == sep,
        };
        if boundary {
            flush(&mut block, first, &mut docs);
            continue;
        }
        if block.is_empty() {
            first = no;
        }
        block.push(line);
    }
    flush(&mut block, first, &mut docs);
    docs
}

/// Where a document's text comes from in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextSource {
    /// A string field, as it is.
    Field(String),
    /// The record as a conversation (Alpaca or messages style), rendered in a style.
    Conversation(RenderStyle),
}

/// The records of `inputs` (any format the readers take, in order) as text documents in
/// `output` (`origin`: `file:line` or `file#record`). A record without a usable text (a
/// missing or non-string field, no conversation) goes to `quarantine` with its field and
/// reason under [`OnError::Skip`], else stops the run with a located error. `origin` names
/// the inputs in `origin` instead of their paths (e.g. an intermediate file).
pub fn render_documents(
    inputs: &[PathBuf],
    source: &TextSource,
    output: &Path,
    quarantine: Option<&Path>,
    reader: &ReaderOptions,
    origin: Option<&str>,
) -> Result<DocumentStats> {
    let mut sink = Sink::create(output, quarantine, reader.on_error)?;
    for input in inputs {
        sink.stats.files += 1;
        let mut rd = RecordReader::open(input, reader.clone())?;
        let name = origin.map_or_else(|| input.display().to_string(), str::to_string);
        while let Some(batch) = rd.next_batch()? {
            if let Some(q) = sink.bad.as_mut() {
                q.write_rejections(&batch.rejections)?;
            }
            sink.stats.rejected += batch.rejections.len() as u64;
            let mut docs = Vec::with_capacity(batch.records.len());
            for (record, at) in batch.records.iter().zip(&batch.origins) {
                match record_text(record, source) {
                    Ok(text) => docs.push((
                        text,
                        match at.line {
                            Some(l) => format!("{name}:{l}"),
                            None => format!("{name}#{}", at.index),
                        },
                    )),
                    Err(u) => {
                        let mut e = DataError::new(input, u.kind, u.reason)
                            .at_record(at.index)
                            .in_field(u.field);
                        e.line = at.line;
                        sink.reject(e, serde_json::to_string(record).unwrap_or_default(), None)?;
                    }
                }
            }
            sink.write(docs)?;
        }
    }
    sink.commit()
}

fn record_text(record: &crate::Record, source: &TextSource) -> Result<String, Unrenderable> {
    match source {
        TextSource::Conversation(style) => {
            let c = conversation(record)?;
            Ok(render(c.system.as_deref(), &c.messages, *style))
        }
        TextSource::Field(f) => match record.get(f) {
            Some(Value::String(s)) => Ok(s.clone()),
            None | Some(Value::Null) => Err(Unrenderable {
                field: f.clone(),
                kind: DataErrorKind::MissingField,
                reason: "missing text field".into(),
            }),
            Some(_) => Err(Unrenderable {
                field: f.clone(),
                kind: DataErrorKind::FieldType,
                reason: "expected a string".into(),
            }),
        },
    }
}

/// One conversation as text: the system prompt (if any), then each user/assistant turn.
pub fn render(system: Option<&str>, messages: &[String], style: RenderStyle) -> String {
    let (user, assistant) = match style {
        RenderStyle::Dialogue => ("患者：", "医生："),
        RenderStyle::Qa => ("问：", "答："),
        RenderStyle::Mcqa => ("", "答案："),
        RenderStyle::Plain => ("", ""),
    };
    let mut parts: Vec<String> = Vec::with_capacity(messages.len() + 1);
    if let Some(s) = system.filter(|s| !s.trim().is_empty()) {
        parts.push(s.trim().to_string());
    }
    for (i, m) in messages.iter().enumerate() {
        let m = m.trim();
        if m.is_empty() {
            continue;
        }
        let label = if i % 2 == 0 { user } else { assistant };
        parts.push(format!("{label}{m}"));
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rules_cut_where_they_say_and_name_the_first_line() {
        let text = "\u{feff}a\r\nb\n\n  \nc\n===\nd\n";
        let t = text.trim_start_matches('\u{feff}');
        assert_eq!(
            split_text(t, &SplitRule::File),
            vec![(1, "a\nb\n\n  \nc\n===\nd".to_string())]
        );
        assert_eq!(
            split_text(t, &SplitRule::BlankLine),
            vec![(1, "a\nb".into()), (5, "c\n===\nd".into())]
        );
        assert_eq!(
            split_text(t, &SplitRule::Line),
            vec![
                (1, "a".into()),
                (2, "b".into()),
                (5, "c".into()),
                (6, "===".into()),
                (7, "d".into())
            ]
        );
        assert_eq!(
            split_text(t, &"separator:===".parse().unwrap()),
            vec![(1, "a\nb\n\n  \nc".into()), (7, "d".into())]
        );
        assert_eq!(
            split_text("\n\n  x\n", &SplitRule::File),
            vec![(3, "x".into())]
        );
        assert!("separator:".parse::<SplitRule>().is_err());
        assert!("para".parse::<SplitRule>().is_err());
    }

    #[test]
    fn gb18030_files_decode_and_other_bytes_do_not() {
        let (gbk, _, _) = encoding_rs::GB18030.encode("头痛怎么办");
        assert_eq!(decode(&gbk).as_deref(), Some("头痛怎么办"));
        assert_eq!(decode("头痛".as_bytes()).as_deref(), Some("头痛"));
        assert_eq!(decode(b"\xff\xff\xff"), None);
    }

    #[test]
    fn conversations_render_with_role_labels() {
        let m = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            render(
                None,
                &m(&["头痛", "多休息", "还疼", "就医"]),
                RenderStyle::Dialogue
            ),
            "患者：头痛\n医生：多休息\n患者：还疼\n医生：就医"
        );
        assert_eq!(
            render(
                Some("你是医生"),
                &m(&["问题\nA. x\nB. y", "A"]),
                RenderStyle::Mcqa
            ),
            "你是医生\n问题\nA. x\nB. y\n答案：A"
        );
        assert_eq!(
            render(None, &m(&["q", "a"]), RenderStyle::Qa),
            "问：q\n答：a"
        );
    }
}
