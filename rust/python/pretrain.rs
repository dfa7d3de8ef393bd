//! Binding of `crate::pretrain`: documents from text files and SFT records, quality labels,
//! tokenization into a token store and packing into shards (`csft_data.pretrain` drives them).
//! Arrays cross as little-endian bytes; the GIL is released for the work.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde_json::json;

use super::errors::IntoPyResult;
use super::io::{reader_options, value_to_py};
use super::lengths::{le_bytes, PyTokenCounter};
use super::progress::run_detached_on;
use crate::error::Error;
use crate::io::OnError;
use crate::pretrain::{
    self, DocumentStats, PackConfig, ParagraphSplit, QualityConfig, RenderStyle, SplitRule,
    TextSource,
};

fn stats_py<'py>(py: Python<'py>, s: &DocumentStats) -> PyResult<Bound<'py, PyAny>> {
    value_to_py(
        py,
        &json!({"files": s.files, "documents": s.documents, "rejected": s.rejected,
                "chars": s.chars}),
    )
}

/// Plain-text files cut into documents (`split`: file, blank-line, line or separator:TEXT).
#[pyfunction]
#[pyo3(signature = (files, split, output, *, quarantine=None, on_error="raise"))]
pub fn text_documents<'py>(
    py: Python<'py>,
    files: Vec<PathBuf>,
    split: &str,
    output: PathBuf,
    quarantine: Option<PathBuf>,
    on_error: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let rule: SplitRule = split.parse().py_err()?;
    let on_error: OnError = on_error.parse().py_err()?;
    let stats = py
        .detach(|| {
            pretrain::text_documents(&files, &rule, &output, quarantine.as_deref(), on_error)
        })
        .py_err()?;
    stats_py(py, &stats)
}

/// Records as text documents: `text_field` as it is, or else the record as a conversation
/// rendered in `style` (an adapter style).
#[pyfunction]
#[pyo3(signature = (inputs, output, *, text_field=None, style="plain", quarantine=None,
    format=None, encoding="auto", on_error="raise", origin=None))]
#[allow(clippy::too_many_arguments)]
pub fn render_documents<'py>(
    py: Python<'py>,
    inputs: Vec<PathBuf>,
    output: PathBuf,
    text_field: Option<String>,
    style: &str,
    quarantine: Option<PathBuf>,
    format: Option<&str>,
    encoding: &str,
    on_error: &str,
    origin: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let source = match text_field {
        Some(f) => TextSource::Field(f),
        None => TextSource::Conversation(style.parse::<RenderStyle>().py_err()?),
    };
    let reader = reader_options(format, encoding, "auto", on_error, None, 4096, None)?;
    let stats = py
        .detach(|| {
            pretrain::render_documents(
                &inputs,
                &source,
                &output,
                quarantine.as_deref(),
                &reader,
                origin.as_deref(),
            )
        })
        .py_err()?;
    stats_py(py, &stats)
}

/// One quality label per document (0 kept, else a reason code; 255 no text).
#[pyfunction]
#[pyo3(signature = (input, *, field="text", min_chars=20, max_chars=1_000_000,
    min_cjk_share=0.0, max_repeated_lines=0.3, max_repeated_line_chars=0.2, ngram=10,
    max_repeated_ngram_chars=0.6, max_boilerplate_lines=0.5, boilerplate=None,
    on_error="raise"))]
#[allow(clippy::too_many_arguments)]
pub fn quality_labels<'py>(
    py: Python<'py>,
    input: PathBuf,
    field: &str,
    min_chars: u64,
    max_chars: u64,
    min_cjk_share: f64,
    max_repeated_lines: f64,
    max_repeated_line_chars: f64,
    ngram: usize,
    max_repeated_ngram_chars: f64,
    max_boilerplate_lines: f64,
    boilerplate: Option<Vec<String>>,
    on_error: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let cfg = QualityConfig {
        min_chars,
        max_chars,
        min_cjk_share,
        max_repeated_lines,
        max_repeated_line_chars,
        ngram,
        max_repeated_ngram_chars,
        max_boilerplate_lines,
        boilerplate: boilerplate.unwrap_or_default(),
    };
    let reader = reader_options(None, "auto", "auto", on_error, None, 4096, None)?;
    let labels = py
        .detach(|| pretrain::quality_labels(&input, field, &cfg, &reader))
        .py_err()?;
    Ok(PyBytes::new(py, &labels))
}

/// Paragraph-level exact dedup of `inputs[i]` into `outputs[i]` (corpus order); per input:
/// documents, kept, emptied, paragraphs, paragraphs_removed, chars_removed.
#[pyfunction]
#[pyo3(signature = (inputs, outputs, *, field="text", split="line", min_chars=10))]
pub fn dedup_paragraphs<'py>(
    py: Python<'py>,
    inputs: Vec<PathBuf>,
    outputs: Vec<PathBuf>,
    field: &str,
    split: &str,
    min_chars: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let split = match split {
        "line" => ParagraphSplit::Line,
        "blank-line" => ParagraphSplit::BlankLine,
        other => {
            return Err(Error::config(format!(
                "split: expected line or blank-line, got {other:?}"
            )))
            .py_err()
        }
    };
    if inputs.len() != outputs.len() {
        return Err(Error::config("one output per input")).py_err();
    }
    let stats = py
        .detach(|| pretrain::dedup_paragraphs(&inputs, &outputs, field, split, min_chars))
        .py_err()?;
    let values: Vec<_> = stats
        .iter()
        .map(|s| {
            json!({"documents": s.documents, "kept": s.kept, "emptied": s.emptied,
                   "paragraphs": s.paragraphs, "paragraphs_removed": s.paragraphs_removed,
                   "chars_removed": s.chars_removed})
        })
        .collect();
    value_to_py(py, &serde_json::Value::Array(values))
}

/// The names of the quality reasons by code.
#[pyfunction]
pub fn quality_reasons() -> Vec<(u8, &'static str)> {
    pretrain::Reason::ALL
        .iter()
        .map(|r| (*r as u8, r.as_str()))
        .collect()
}

/// Encodes the documents of `inputs` into the token store `store`; returns the tokens per
/// document as little-endian u32 bytes.
#[pyfunction]
#[pyo3(signature = (inputs, tokenizer, store, *, field="text", progress=None, num_threads=None))]
pub fn tokenize_documents<'py>(
    py: Python<'py>,
    inputs: Vec<PathBuf>,
    tokenizer: &PyTokenCounter,
    store: PathBuf,
    field: &str,
    progress: Option<Py<PyAny>>,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    let counter = Arc::clone(&tokenizer.inner);
    let counts = run_detached_on(py, progress.as_ref(), num_threads, |report| {
        pretrain::tokenize_documents(&inputs, field, &counter, &store, report)
    })?;
    Ok(le_bytes(py, &counts, u32::to_le_bytes))
}

/// Packs documents of a token store in `order` (little-endian u64 indices) into shards.
#[pyfunction]
#[pyo3(signature = (store, counts, order, output_dir, *, seq_len, eos_id, pad_id,
    sequences_per_shard))]
#[allow(clippy::too_many_arguments)]
pub fn pack_documents<'py>(
    py: Python<'py>,
    store: PathBuf,
    counts: Vec<u8>,
    order: Vec<u8>,
    output_dir: PathBuf,
    seq_len: usize,
    eos_id: u32,
    pad_id: u32,
    sequences_per_shard: usize,
) -> PyResult<Bound<'py, PyAny>> {
    if !counts.len().is_multiple_of(4) || !order.len().is_multiple_of(8) {
        return Err(Error::config(
            "counts must be u32 and order u64 little-endian bytes",
        ))
        .py_err();
    }
    let counts: Vec<u32> = counts
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let order: Vec<u64> = order
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let cfg = PackConfig {
        seq_len,
        eos_id,
        pad_id,
        sequences_per_shard,
    };
    let stats = py
        .detach(|| pretrain::pack_documents(&store, &counts, &order, &cfg, &output_dir))
        .py_err()?;
    let shards: Vec<_> = stats
        .shards
        .iter()
        .map(|s| {
            json!({"tokens": s.tokens, "docs": s.docs, "sequences": s.sequences,
                   "content_tokens": s.content_tokens, "documents": s.documents})
        })
        .collect();
    value_to_py(
        py,
        &json!({"shards": shards, "documents": stats.documents, "tokens": stats.tokens,
                "padding": stats.padding}),
    )
}
