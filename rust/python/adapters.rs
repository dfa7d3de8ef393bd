//! Python side of the source adapters: `adapters()` (the table, with default templates) and
//! `adapt(adapter, inputs, output, ...)`, the conversion over files with the GIL released;
//! `csft_data.adapters` wraps both.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::prelude::*;
use serde_json::{json, Value};

use super::errors::IntoPyResult;
use super::io::value_to_py;
use crate::adapters::{adapter, convert, AdaptOptions, ADAPTERS};
use crate::io::OnError;

/// The adapters: name, style, dataset, description and default templates.
#[pyfunction]
pub fn adapters(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let list: Vec<Value> = ADAPTERS
        .iter()
        .map(|a| {
            let templates: serde_json::Map<String, Value> = a
                .templates
                .iter()
                .map(|t| (t.name.to_string(), Value::String(t.text.to_string())))
                .collect();
            json!({
                "name": a.name, "style": a.style.as_str(), "dataset": a.dataset,
                "description": a.description, "templates": templates,
            })
        })
        .collect();
    value_to_py(py, &Value::Array(list))
}

/// Converts files with one adapter; see `csft_data.adapters.convert`.
#[pyfunction]
#[pyo3(signature = (
    adapter_name, inputs, output, *, templates=None, per_conversation=false, on_error="raise",
    quarantine=None, mapping=None, batch_size=4096, questions_only=false,
))]
#[allow(clippy::too_many_arguments)]
pub fn adapt<'py>(
    py: Python<'py>,
    adapter_name: &str,
    inputs: Vec<PathBuf>,
    output: PathBuf,
    templates: Option<BTreeMap<String, String>>,
    per_conversation: bool,
    on_error: &str,
    quarantine: Option<PathBuf>,
    mapping: Option<BTreeMap<String, String>>,
    batch_size: usize,
    questions_only: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let info = adapter(adapter_name).py_err()?;
    let on_error = match on_error {
        "raise" => OnError::Raise,
        "skip" => OnError::Skip,
        other => {
            return Err(super::errors::ConfigError::new_err(format!(
                "on_error must be 'raise' or 'skip', got '{other}'"
            )))
        }
    };
    let opts = AdaptOptions {
        templates: templates.unwrap_or_default(),
        per_conversation,
        on_error,
        mapping: mapping.unwrap_or_default(),
        batch_size,
        questions_only,
    };
    let stats = py
        .detach(|| convert(info, &inputs, &output, quarantine.as_deref(), &opts))
        .py_err()?;
    let files: Vec<Value> = stats
        .files
        .iter()
        .map(|f| {
            json!({
                "path": f.path.to_string_lossy(), "records": f.records,
                "converted": f.converted, "skipped": f.skipped, "rejected": f.rejected,
                "written": f.written,
            })
        })
        .collect();
    let sum = |g: fn(&crate::adapters::FileStats) -> u64| stats.files.iter().map(g).sum::<u64>();
    let rejections: Vec<Value> = stats
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
        "adapter": info.name, "style": info.style.as_str(),
        "output": output.to_string_lossy(),
        "quarantine": quarantine.map(|q| q.to_string_lossy().into_owned()),
        "records": sum(|f| f.records), "converted": sum(|f| f.converted),
        "skipped": sum(|f| f.skipped), "rejected": sum(|f| f.rejected),
        "written": stats.written, "files": files,
        "skipped_by_reason": stats.skipped_by_reason,
        "rejected_by_reason": stats.rejected_by_reason,
        "rejections": rejections,
    });
    value_to_py(py, &value)
}
