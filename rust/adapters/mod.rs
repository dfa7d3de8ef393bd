//! Source adapters: one per public dataset (CollectiveSFT's Table 1 and SF-Med's SFT table),
//! reading the files as their authors ship them and converting them, by style, into Alpaca
//! records `{instruction, input, output, system, history, source, style, id, turn}`: every
//! record carries every key, with one type per key (`system` "" and `history` [] when it has
//! none; `turn` the 1-based assistant turn its `output` is), so columnar readers that infer a
//! schema (LLaMA-Factory's `example[column]`, `datasets`' JSON loader) see the same columns in
//! every record.
//!
//! An [`AdapterInfo`] names the dataset, its style and its default templates ([`template`]).
//! [`convert`] streams the input files (record formats through [`crate::io::RecordReader`];
//! the non-record text formats — Toyhom `.txt` blocks, MedDialog raw blocks, webMedQA TSV —
//! through the small parsers in `text`), converts each input unit, writes the outputs
//! atomically and accounts for every unit: converted (one or more outputs), skipped by a
//! documented rule of the adapter (e.g. webMedQA's `is_answer=0` rows, a consultation without a
//! doctor reply), or rejected with file/line/record/field and reason (raised in `Raise` mode,
//! quarantined in `Skip` mode). Output order follows input order, so runs are byte-identical.
//!
//! `mcqa`, `qa`, `dialogue` (with the generic `alpaca`/`sharegpt`/`mapping`), `text` and
//! `cmedqa2` hold the per-dataset conversions; `registry` the table of adapters.

mod cmedqa2;
mod dialogue;
mod mcqa;
mod qa;
mod registry;
pub mod template;
#[cfg(test)]
mod tests;
mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;

pub use registry::{adapter, ADAPTERS};
pub use template::{TemplateSpec, Templates};

use crate::error::{DataError, DataErrorKind, Error, Result};
use crate::io::write::JsonlWriter;
use crate::io::{Format, OnError, ReaderOptions, RecordReader};
use crate::record::{Record, Rejection};

/// How a dataset is laid out, which decides the conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Mcqa,
    Qa,
    Dialogue,
    NerIntent,
    Generic,
}

impl Style {
    pub fn as_str(self) -> &'static str {
        match self {
            Style::Mcqa => "mcqa",
            Style::Qa => "qa",
            Style::Dialogue => "dialogue",
            Style::NerIntent => "ner_intent",
            Style::Generic => "generic",
        }
    }
}

/// Converts one input record (`index`: its 0-based position in its file).
pub type RecordFn = fn(&Record, &Ctx<'_>) -> Conv;

/// How an adapter reads its files.
#[derive(Debug, Clone, Copy)]
pub enum Reader {
    /// Records through `RecordReader` (format forced when `Some`, else from the file name).
    Records(RecordFn, Option<Format>),
    /// HEAD-QA's nested `{exams: {name: {category, data: [...]}}}` JSON.
    HeadQa,
    /// Toyhom `.txt`: `title,ask` line, answer line(s), blank line.
    ToyhomTxt,
    /// MedDialog raw text blocks.
    MedDialog,
    /// webMedQA TSV lines.
    WebMedQa,
    /// cMedQA2 question/answer CSVs joined, optionally restricted by a candidates file.
    CMedQa2,
}

/// One adapter: what it reads and how.
#[derive(Debug, Clone, Copy)]
pub struct AdapterInfo {
    pub name: &'static str,
    pub style: Style,
    /// The dataset (and files) it reads, as published.
    pub dataset: &'static str,
    pub description: &'static str,
    pub templates: &'static [TemplateSpec],
    pub reader: Reader,
}

/// One output record before provenance is added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alpaca {
    pub instruction: String,
    pub input: String,
    pub output: String,
    pub system: Option<String>,
    /// `Some` for dialogue records (possibly empty): earlier [user, assistant] pairs.
    pub history: Option<Vec<(String, String)>>,
    pub id: String,
    /// 1-based assistant turn of a per-turn dialogue record (`None`: the last one, written as
    /// `history.len() + 1`).
    pub turn: Option<usize>,
}

/// What became of one input unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Records(Vec<Alpaca>),
    /// No output, by a documented rule of the adapter (the reason is counted in the stats).
    Skipped(&'static str),
}

/// Why an input unit cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub field: Option<String>,
    pub kind: DataErrorKind,
    pub reason: String,
}

pub type Conv = std::result::Result<Outcome, Bad>;

pub fn bad(field: &str, kind: DataErrorKind, reason: impl Into<String>) -> Bad {
    Bad {
        field: (!field.is_empty()).then(|| field.to_string()),
        kind,
        reason: reason.into(),
    }
}

/// What a conversion function may look at besides the record.
pub struct Ctx<'a> {
    pub templates: &'a Templates,
    pub per_conversation: bool,
    /// The file is an evaluation set, read for its questions (see [`AdaptOptions`]).
    pub questions_only: bool,
    pub mapping: &'a BTreeMap<String, String>,
    /// File name, for ids of datasets without their own.
    pub file: &'a str,
    pub index: u64,
}

impl Ctx<'_> {
    /// `file:index`, the id of a record whose dataset gives none.
    pub fn fallback_id(&self) -> String {
        format!("{}:{}", self.file, self.index)
    }
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct AdaptOptions {
    /// Template name → text, replacing the adapter's defaults.
    pub templates: BTreeMap<String, String>,
    /// Dialogue: one record per conversation instead of one per assistant turn.
    pub per_conversation: bool,
    pub on_error: OnError,
    /// `mapping` adapter: output field → input field (`instruction`, `input`, `output`,
    /// `system`, `history`, `id`).
    pub mapping: BTreeMap<String, String>,
    pub batch_size: usize,
    /// An evaluation set read for decontamination, which needs only each item's question and
    /// options: answer-side defects (an empty or missing answer, one naming no option, an
    /// empty response) do not reject the item; its output then holds what answer there is.
    /// An item without question text is still rejected.
    pub questions_only: bool,
}

/// Counts for one input file: `records = converted + skipped + rejected`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileStats {
    pub path: PathBuf,
    pub records: u64,
    pub converted: u64,
    pub skipped: u64,
    pub rejected: u64,
    /// Output records written from this file.
    pub written: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct AdaptStats {
    pub files: Vec<FileStats>,
    pub written: u64,
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// Keyed `kind (field)`.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// The first rejections (all go to the quarantine file when one is given).
    pub rejections: Vec<DataError>,
}

const REJECTION_SAMPLES: usize = 20;
const FLUSH: usize = 4096;

/// Writes outputs and accounts for units.
struct Sink<'a> {
    info: &'a AdapterInfo,
    system: String,
    out: JsonlWriter,
    quarantine: Option<JsonlWriter>,
    on_error: OnError,
    pending: Vec<Record>,
    stats: AdaptStats,
    file: FileStats,
}

impl Sink<'_> {
    fn to_record(&self, a: Alpaca) -> Record {
        let mut r = Record::new();
        r.insert("instruction".into(), Value::String(a.instruction));
        r.insert("input".into(), Value::String(a.input));
        r.insert("output".into(), Value::String(a.output));
        // Every record carries all five Alpaca columns, `system` ("" = the template's default)
        // and `history` ([] = none) included: LLaMA-Factory's converter reads
        // `example[column]` for each column `dataset_info.json` maps, so a key missing from
        // one JSONL record is a KeyError there.
        let system = a.system.unwrap_or_else(|| self.system.clone());
        r.insert("system".into(), Value::String(system));
        let history = a.history.unwrap_or_default();
        // The assistant turn the record's `output` is (1-based): a single-turn record is turn
        // 1, a whole conversation its last turn. Always present, so the column has one type.
        let turn = a.turn.unwrap_or(history.len() + 1);
        let pairs = history
            .into_iter()
            .map(|(q, a)| Value::Array(vec![Value::String(q), Value::String(a)]))
            .collect();
        r.insert("history".into(), Value::Array(pairs));
        r.insert("source".into(), Value::String(self.info.name.into()));
        r.insert(
            "style".into(),
            Value::String(self.info.style.as_str().into()),
        );
        r.insert("id".into(), Value::String(a.id));
        r.insert("turn".into(), Value::from(turn));
        r
    }

    /// Accounts for one unit.
    fn unit(
        &mut self,
        path: &Path,
        index: u64,
        line: Option<u64>,
        raw: impl FnOnce() -> String,
        conv: Conv,
    ) -> Result<()> {
        self.file.records += 1;
        match conv {
            Ok(Outcome::Records(recs)) => {
                self.file.converted += 1;
                self.file.written += recs.len() as u64;
                for a in recs {
                    let r = self.to_record(a);
                    self.pending.push(r);
                }
                if self.pending.len() >= FLUSH {
                    self.flush()?;
                }
            }
            Ok(Outcome::Skipped(why)) => {
                self.file.skipped += 1;
                *self.stats.skipped_by_reason.entry(why.into()).or_default() += 1;
            }
            Err(b) => {
                let mut e = DataError::new(path, b.kind, b.reason).at_record(index);
                e.line = line;
                e.field = b.field;
                if self.on_error == OnError::Raise {
                    return Err(e.into());
                }
                self.rejected(Rejection {
                    error: e,
                    raw: raw(),
                    raw_bytes: None,
                })?;
            }
        }
        Ok(())
    }

    /// A unit the reader rejected (skip mode).
    fn reject(&mut self, r: Rejection) -> Result<()> {
        self.file.records += 1;
        self.rejected(r)
    }

    fn rejected(&mut self, r: Rejection) -> Result<()> {
        self.file.rejected += 1;
        let key = match &r.error.field {
            Some(f) => format!("{} ({f})", r.error.kind.as_str()),
            None => r.error.kind.as_str().to_string(),
        };
        *self.stats.rejected_by_reason.entry(key).or_default() += 1;
        if self.stats.rejections.len() < REJECTION_SAMPLES {
            self.stats.rejections.push(r.error.clone());
        }
        if let Some(q) = self.quarantine.as_mut() {
            q.write_rejections(std::slice::from_ref(&r))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.write_records(&self.pending)?;
        self.pending.clear();
        Ok(())
    }

    fn start_file(&mut self, path: &Path) {
        self.file = FileStats {
            path: path.to_path_buf(),
            ..FileStats::default()
        };
    }

    fn end_file(&mut self) {
        self.stats.files.push(std::mem::take(&mut self.file));
    }
}

fn raw_json(r: &Record) -> String {
    serde_json::to_string(r).expect("a map serializes")
}

/// Converts `inputs` with `info` into `output` (JSONL, atomic); see the module comment.
pub fn convert(
    info: &AdapterInfo,
    inputs: &[PathBuf],
    output: &Path,
    quarantine: Option<&Path>,
    opts: &AdaptOptions,
) -> Result<AdaptStats> {
    if inputs.is_empty() {
        return Err(Error::config(format!(
            "adapter '{}' needs at least one input file",
            info.name
        )));
    }
    let templates = Templates::new(info.name, info.templates, &opts.templates)?;
    if info.name == "mapping" {
        dialogue::check_mapping(&opts.mapping, &templates)?;
    } else if !opts.mapping.is_empty() {
        return Err(Error::config(format!(
            "a field mapping is only for the 'mapping' adapter, not '{}'",
            info.name
        )));
    }
    let mut sink = Sink {
        info,
        system: templates.get("system").to_string(),
        out: JsonlWriter::create(output)?,
        quarantine: quarantine.map(JsonlWriter::create).transpose()?,
        on_error: opts.on_error,
        pending: Vec::new(),
        stats: AdaptStats::default(),
        file: FileStats::default(),
    };
    let batch_size = if opts.batch_size == 0 {
        4096
    } else {
        opts.batch_size
    };
    if let Reader::CMedQa2 = info.reader {
        cmedqa2::convert(inputs, &templates, opts, &mut sink)?;
    } else {
        for path in inputs {
            sink.start_file(path);
            let file = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let ctx = |index| Ctx {
                templates: &templates,
                per_conversation: opts.per_conversation,
                questions_only: opts.questions_only,
                mapping: &opts.mapping,
                file: &file,
                index,
            };
            match info.reader {
                Reader::Records(f, format) => {
                    let ropts = ReaderOptions {
                        format,
                        on_error: opts.on_error,
                        batch_size,
                        ..ReaderOptions::default()
                    };
                    let mut reader = RecordReader::open(path, ropts)?;
                    while let Some(batch) = reader.next_batch()? {
                        let convs: Vec<Conv> = batch
                            .records
                            .par_iter()
                            .zip(&batch.origins)
                            .map(|(r, o)| f(r, &ctx(o.index)))
                            .collect();
                        // Reader rejections and records, back in file order.
                        let mut rejections = batch.rejections.into_iter().peekable();
                        for ((record, origin), conv) in
                            batch.records.iter().zip(&batch.origins).zip(convs)
                        {
                            while let Some(r) =
                                rejections.next_if(|r| r.error.record < Some(origin.index))
                            {
                                sink.reject(r)?;
                            }
                            sink.unit(path, origin.index, origin.line, || raw_json(record), conv)?;
                        }
                        for r in rejections {
                            sink.reject(r)?;
                        }
                    }
                }
                Reader::HeadQa => mcqa::headqa_file(path, &ctx, &mut sink)?,
                Reader::ToyhomTxt | Reader::MedDialog | Reader::WebMedQa => {
                    text::convert_file(info.reader, path, &ctx, &mut sink)?;
                }
                Reader::CMedQa2 => unreachable!(),
            }
            sink.end_file();
        }
    }
    sink.flush()?;
    let Sink {
        out,
        quarantine,
        mut stats,
        ..
    } = sink;
    if let Some(q) = quarantine {
        q.commit()?;
    }
    stats.written = out.commit()?;
    Ok(stats)
}

// Helpers shared by the conversions.

/// A required text field: absent or `null` is a missing field, any other type (a number, a
/// list, an object) a rejection naming the field and the type found.
pub fn req_str(r: &Record, field: &str) -> std::result::Result<String, Bad> {
    match r.get(field) {
        None | Some(Value::Null) => Err(bad(
            field,
            DataErrorKind::MissingField,
            format!("missing '{field}'"),
        )),
        Some(v) => text_or_bad(v, field),
    }
}

/// An optional text field (absent or null → `None`; another type than text is a rejection).
pub fn opt_str(r: &Record, field: &str) -> std::result::Result<Option<String>, Bad> {
    match r.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => text_or_bad(v, field).map(Some),
    }
}

/// The text of a JSON string; `None` for any other type. Text fields never take a number's
/// text silently: `"content": 12345` is a type error, as `null` is a missing field.
pub fn text_of(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// `v` as text, or a field-type rejection saying what was found instead.
pub fn text_or_bad(v: &Value, field: &str) -> std::result::Result<String, Bad> {
    text_of(v).ok_or_else(|| {
        bad(
            field,
            DataErrorKind::FieldType,
            format!("expected text, got {}", json_type(v)),
        )
    })
}

/// The JSON type of `v`, for messages ("a number", "a list", ...).
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// An identifier: text, or a number's text (ids are often numeric; they are not content).
pub fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The answer-side text field `field`: required, except in an evaluation set
/// (`questions_only`), where a missing, null or non-text answer is read as "".
pub fn answer_str(r: &Record, field: &str, ctx: &Ctx<'_>) -> std::result::Result<String, Bad> {
    match req_str(r, field) {
        Err(_) if ctx.questions_only => Ok(String::new()),
        other => other,
    }
}

/// [`non_empty`] for an answer-side field: no check in an evaluation set.
pub fn answer_non_empty(ctx: &Ctx<'_>, field: &str, text: &str) -> std::result::Result<(), Bad> {
    if ctx.questions_only {
        Ok(())
    } else {
        non_empty(field, text)
    }
}

/// Fails when `text` is empty after trimming.
pub fn non_empty(field: &str, text: &str) -> std::result::Result<(), Bad> {
    if text.trim().is_empty() {
        Err(bad(field, DataErrorKind::Value, format!("empty '{field}'")))
    } else {
        Ok(())
    }
}

/// The record's own id field as text, or the fallback `file:index`.
pub fn id_or(r: &Record, field: &str, ctx: &Ctx<'_>) -> String {
    r.get(field)
        .and_then(id_text)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| ctx.fallback_id())
}
