//! Python side of token-length bucketing: the `TokenCounter` class (a loaded `tokenizer.json`;
//! `count(texts)` gives one little-endian u32 count per text, computed in parallel) and
//! `token_lengths(inputs, tokenizer, ...)`, the whole report over files, and
//! `encode_supervised` / `encode_pairwise`, token ids and labels for training (flat
//! little-endian arrays plus offsets). Inputs are copied or
//! borrowed into Rust and the GIL is released for the work; `csft_data.lengths` wraps both.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyDict};
use serde_json::{json, Value};

use super::errors::IntoPyResult;
use super::io::{reader_options, value_to_py};
use super::progress::run_detached_on;
use crate::error::DataError;
use crate::lengths::encode::{encode_pairwise_input, encode_supervised_input, Input, Ragged};
use crate::lengths::report::{HISTOGRAM_EDGES, QUANTILES};
use crate::lengths::{
    token_lengths as run_token_lengths, EncodeOptions, LengthsConfig, SourceFile, SourceLengths,
    Template, TemplateCounter, TokenCounter, TEMPLATE_NAMES,
};

/// A Hugging Face `tokenizer.json`, loaded once.
#[pyclass(name = "TokenCounter", module = "csft_data._core", frozen)]
pub struct PyTokenCounter {
    pub(crate) inner: Arc<TokenCounter>,
}

#[pymethods]
impl PyTokenCounter {
    /// `fast=False` sends every text through `tokenizers` (the reference of the fast path).
    #[new]
    #[pyo3(signature = (path, *, fast = true))]
    fn new(py: Python<'_>, path: PathBuf, fast: bool) -> PyResult<Self> {
        let inner = py.detach(|| TokenCounter::from_file(&path)).py_err()?;
        let inner = if fast { inner } else { inner.reference() };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Whether the exact fast BPE path serves this tokenizer (else `tokenizers` does).
    #[getter]
    fn fast(&self) -> bool {
        self.inner.is_fast()
    }

    #[getter]
    fn path(&self) -> String {
        self.inner.path().to_string_lossy().into_owned()
    }

    /// The EOS token the tokenizer's folder configures (`tokenizer_config.json`,
    /// `generation_config.json`, ...), or None.
    #[getter]
    fn eos_token(&self) -> Option<String> {
        self.inner.special().and_then(|s| s.eos.clone())
    }

    /// The id of a token, or None.
    fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_id(token)
    }

    /// Token counts (no special tokens added) as little-endian u32 bytes, one per text.
    fn count<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<PyBackedStr>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let counts = py
            .detach(|| {
                let refs: Vec<&str> = texts.iter().map(|t| &**t).collect();
                self.inner.count_batch(&refs)
            })
            .py_err()?;
        let bytes: Vec<u8> = counts.iter().flat_map(|c| c.to_le_bytes()).collect();
        Ok(PyBytes::new(py, &bytes))
    }

    /// Token ids per text (no special tokens added), as `encode(t, add_special_tokens=False).ids`.
    fn encode(&self, py: Python<'_>, texts: Vec<PyBackedStr>) -> PyResult<Vec<Vec<u32>>> {
        py.detach(|| {
            let refs: Vec<&str> = texts.iter().map(|t| &**t).collect();
            self.inner.encode_batch(&refs)
        })
        .py_err()
    }
}

/// The built-in chat template names.
#[pyfunction]
pub fn template_names() -> Vec<&'static str> {
    TEMPLATE_NAMES.to_vec()
}

/// A built-in template's usual BOS / EOS token names and default system prompt:
/// `{"bos_token": str | None, "eos_token": str | None, "default_system": str}`.
#[pyfunction]
pub fn template_tokens(py: Python<'_>, name: &str) -> PyResult<Py<PyDict>> {
    let t = Template::builtin(name).py_err()?;
    let d = PyDict::new(py);
    d.set_item("bos_token", t.bos_token)?;
    d.set_item("eos_token", t.eos_token)?;
    d.set_item("default_system", t.default_system)?;
    Ok(d.unbind())
}

fn source_json(s: &SourceLengths) -> Value {
    let share = |n: u64| {
        if s.counted == 0 {
            0.0
        } else {
            n as f64 / s.counted as f64
        }
    };
    let quantiles: serde_json::Map<String, Value> = QUANTILES
        .iter()
        .zip(s.quantiles)
        .map(|(q, v)| (format!("p{}", (q * 100.0).round()), json!(v)))
        .chain([("max".to_string(), json!(s.max))])
        .collect();
    let histogram: Vec<Value> = HISTOGRAM_EDGES
        .iter()
        .zip(&s.histogram)
        .map(|(&edge, &count)| {
            let le = if edge == u64::MAX {
                Value::Null
            } else {
                json!(edge)
            };
            json!({"le": le, "count": count})
        })
        .collect();
    let cutoffs: Vec<Value> = s
        .cutoffs
        .iter()
        .map(|c| {
            json!({
                "cutoff": c.cutoff, "bucket": c.bucket, "truncated": c.truncated,
                "response_cut": c.response_cut, "response_dropped": c.response_dropped,
                "kept_tokens": c.kept_tokens, "truncated_share": share(c.truncated),
                "response_cut_share": share(c.response_cut),
                "response_dropped_share": share(c.response_dropped),
            })
        })
        .collect();
    json!({
        "source": s.name, "path": s.path.as_ref().map(|p| p.to_string_lossy().into_owned()),
        "records": s.records, "counted": s.counted, "rejected": s.rejected,
        "prompt_tokens": s.prompt_tokens, "response_tokens": s.response_tokens,
        "history_tokens": s.history_tokens, "total_tokens": s.total_tokens, "mean": s.mean,
        "quantiles": quantiles, "histogram": histogram, "cutoffs": cutoffs, "over": s.over,
    })
}

/// Token lengths of files (each one source); see `csft_data.token_lengths`.
#[pyfunction]
#[pyo3(signature = (
    inputs, tokenizer, *, template="intern2", cutoffs=None, system=None, bos_token=None,
    eos_token=None, buckets=None, quarantine=None, format=None, encoding="auto",
    on_error="raise", batch_size=4096, progress=None, num_threads=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn token_lengths<'py>(
    py: Python<'py>,
    inputs: Vec<(PathBuf, String)>,
    tokenizer: &PyTokenCounter,
    template: &str,
    cutoffs: Option<Vec<u64>>,
    system: Option<String>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    buckets: Option<PathBuf>,
    quarantine: Option<PathBuf>,
    format: Option<&str>,
    encoding: &str,
    on_error: &str,
    batch_size: usize,
    progress: Option<Py<PyAny>>,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut template = Template::builtin(template).py_err()?;
    if let Some(system) = system {
        template.default_system = system;
    }
    let cfg = LengthsConfig {
        template,
        bos_token,
        eos_token,
        cutoffs: cutoffs.unwrap_or_else(|| vec![512, 1024, 2048]),
        reader: reader_options(format, encoding, "auto", on_error, None, batch_size, None)?,
    };
    let files: Vec<SourceFile> = inputs
        .into_iter()
        .map(|(path, name)| SourceFile { path, name })
        .collect();
    let counter = Arc::clone(&tokenizer.inner);
    let report = run_detached_on(py, progress.as_ref(), num_threads, |report| {
        run_token_lengths(
            &files,
            &counter,
            &cfg,
            buckets.as_deref(),
            quarantine.as_deref(),
            report,
        )
    })?;
    let rejections: Vec<Value> = report
        .rejections
        .iter()
        .map(|e| {
            json!({
                "file": e.path.to_string_lossy(), "line": e.line, "record": e.record,
                "field": e.field, "kind": e.kind.as_str(), "reason": e.reason,
            })
        })
        .collect();
    let value = json!({
        "tokenizer": counter.path().to_string_lossy(),
        "template": cfg.template.name,
        "cutoffs": cfg.cutoffs,
        "bos_id": report.bos_id, "eos_id": report.eos_id,
        "bos_token": report.tokens.as_ref().and_then(|t| t.bos.clone()),
        "eos_token": report.tokens.as_ref().and_then(|t| t.eos.clone()),
        "bos_from": report.tokens.as_ref().map(|t| t.bos_from.clone()),
        "eos_from": report.tokens.as_ref().map(|t| t.eos_from.clone()),
        "sources": report.sources.iter().map(source_json).collect::<Vec<_>>(),
        "total": source_json(&report.total),
        "rejections": rejections,
        "buckets": buckets.map(|p| p.to_string_lossy().into_owned()),
        "bucket_lines": report.bucket_lines,
    });
    let out = value_to_py(py, &value)?;
    // per source: each record's total tokens (u32 LE, by record index; u32::MAX: rejected)
    let totals: Vec<Bound<'py, PyBytes>> = report
        .record_totals
        .iter()
        .map(|t| le_bytes(py, t, u32::to_le_bytes))
        .collect();
    out.set_item("record_totals", totals)?;
    Ok(out)
}

pub(crate) fn le_bytes<'py, T: Copy, const N: usize>(
    py: Python<'py>,
    values: &[T],
    to: impl Fn(T) -> [u8; N],
) -> Bound<'py, PyBytes> {
    let bytes: Vec<u8> = values.iter().flat_map(|&v| to(v)).collect();
    PyBytes::new(py, &bytes)
}

fn rejections_py<'py>(py: Python<'py>, rejections: &[DataError]) -> PyResult<Bound<'py, PyAny>> {
    let list: Vec<Value> = rejections
        .iter()
        .map(|e| {
            json!({
                "file": e.path.to_string_lossy(), "line": e.line, "record": e.record,
                "field": e.field, "kind": e.kind.as_str(), "reason": e.reason,
                "message": e.to_string(),
            })
        })
        .collect();
    value_to_py(py, &Value::Array(list))
}

fn put_ragged<'py>(
    py: Python<'py>,
    d: &Bound<'py, PyDict>,
    name: &str,
    r: &Ragged<u32>,
) -> PyResult<()> {
    d.set_item(
        format!("{name}_ids"),
        le_bytes(py, &r.values, u32::to_le_bytes),
    )?;
    d.set_item(
        format!("{name}_offsets"),
        le_bytes(py, &r.offsets, u64::to_le_bytes),
    )
}

/// Template, tokenizer binding and input of the two encoders.
struct EncodeArgs {
    template: Template,
    bos_token: Option<String>,
    eos_token: Option<String>,
    lines: Option<Vec<PyBackedStr>>,
    path: Option<PathBuf>,
    format: Option<String>,
    encoding: String,
    on_error: String,
}

impl EncodeArgs {
    #[allow(clippy::too_many_arguments)]
    fn new(
        template: &str,
        system: Option<String>,
        bos_token: Option<String>,
        eos_token: Option<String>,
        lines: Option<Vec<PyBackedStr>>,
        path: Option<PathBuf>,
        format: Option<&str>,
        encoding: &str,
        on_error: &str,
    ) -> PyResult<Self> {
        let mut template = Template::builtin(template).py_err()?;
        if let Some(system) = system {
            template.default_system = system;
        }
        if lines.is_some() == path.is_some() {
            return Err(super::errors::ConfigError::new_err(
                "give exactly one of `lines` (JSON strings) or `path` (a file)",
            ));
        }
        Ok(Self {
            template,
            bos_token,
            eos_token,
            lines,
            path,
            format: format.map(str::to_string),
            encoding: encoding.to_string(),
            on_error: on_error.to_string(),
        })
    }

    /// Runs `f` with the bound template and the input, GIL released.
    fn run<T: Send>(
        self,
        py: Python<'_>,
        counter: &TokenCounter,
        f: impl FnOnce(Input<'_>, &TemplateCounter<'_>, crate::io::OnError) -> crate::Result<T> + Send,
    ) -> PyResult<T> {
        let options = reader_options(
            self.format.as_deref(),
            &self.encoding,
            "auto",
            &self.on_error,
            None,
            4096,
            None,
        )?;
        let on_error = options.on_error;
        py.detach(|| {
            let bound = TemplateCounter::new(
                counter,
                self.template,
                self.bos_token.as_deref(),
                self.eos_token.as_deref(),
            )?;
            match (&self.lines, &self.path) {
                (Some(lines), _) => {
                    let refs: Vec<&str> = lines.iter().map(|t| &**t).collect();
                    f(Input::Lines(&refs), &bound, on_error)
                }
                (None, Some(path)) => f(Input::File(path, options), &bound, on_error),
                (None, None) => unreachable!("checked in new"),
            }
        })
        .py_err()
    }
}

/// Token ids and labels for SFT; see `csft_data.encode_supervised`.
#[pyfunction]
#[pyo3(signature = (
    tokenizer, *, lines=None, path=None, template="intern2", cutoff_len=1024, mask_history=false,
    train_on_prompt=false, system=None, bos_token=None, eos_token=None, format=None,
    encoding="auto", on_error="raise",
))]
#[allow(clippy::too_many_arguments)]
pub fn encode_supervised<'py>(
    py: Python<'py>,
    tokenizer: &PyTokenCounter,
    lines: Option<Vec<PyBackedStr>>,
    path: Option<PathBuf>,
    template: &str,
    cutoff_len: u64,
    mask_history: bool,
    train_on_prompt: bool,
    system: Option<String>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    format: Option<&str>,
    encoding: &str,
    on_error: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let args = EncodeArgs::new(
        template, system, bos_token, eos_token, lines, path, format, encoding, on_error,
    )?;
    let opts = EncodeOptions {
        cutoff_len,
        mask_history,
        train_on_prompt,
    };
    let counter = Arc::clone(&tokenizer.inner);
    let out = args.run(py, &counter, |input, bound, on_error| {
        encode_supervised_input(input, bound, opts, on_error)
    })?;
    let d = PyDict::new(py);
    put_ragged(py, &d, "input", &out.input_ids)?;
    d.set_item("labels", le_bytes(py, &out.labels, i32::to_le_bytes))?;
    d.set_item("indices", le_bytes(py, &out.indices, u64::to_le_bytes))?;
    d.set_item("rejections", rejections_py(py, &out.rejections)?)?;
    Ok(d)
}

/// Prompt, chosen and rejected ids for DPO; see `csft_data.encode_pairwise`.
#[pyfunction]
#[pyo3(signature = (
    tokenizer, *, lines=None, path=None, template="intern2", cutoff_len=1024, system=None,
    bos_token=None, eos_token=None, format=None, encoding="auto", on_error="raise",
))]
#[allow(clippy::too_many_arguments)]
pub fn encode_pairwise<'py>(
    py: Python<'py>,
    tokenizer: &PyTokenCounter,
    lines: Option<Vec<PyBackedStr>>,
    path: Option<PathBuf>,
    template: &str,
    cutoff_len: u64,
    system: Option<String>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    format: Option<&str>,
    encoding: &str,
    on_error: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let args = EncodeArgs::new(
        template, system, bos_token, eos_token, lines, path, format, encoding, on_error,
    )?;
    let counter = Arc::clone(&tokenizer.inner);
    let out = args.run(py, &counter, |input, bound, on_error| {
        encode_pairwise_input(input, bound, cutoff_len, on_error)
    })?;
    let d = PyDict::new(py);
    put_ragged(py, &d, "prompt", &out.prompt)?;
    put_ragged(py, &d, "chosen", &out.chosen)?;
    put_ragged(py, &d, "rejected", &out.rejected)?;
    d.set_item("indices", le_bytes(py, &out.indices, u64::to_le_bytes))?;
    d.set_item("rejections", rejections_py(py, &out.rejections)?)?;
    Ok(d)
}
