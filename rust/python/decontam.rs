//! Binding of `crate::decontam`: `decontaminate_files`, GIL released for the work.

use std::path::PathBuf;

use pyo3::prelude::*;

use super::errors::{ConfigError, IntoPyResult};
use super::io::{reader_options, value_to_py};
use crate::decontam::{decontaminate_files as core_decontaminate, DecontamConfig, EvalFile};
use crate::dedup::files::{KeptOutput, SourceFile};

/// Decontaminates training files against evaluation files; see `csft_data.decontaminate`.
#[pyfunction]
#[pyo3(signature = (
    inputs, evals, output, *, report=None, quarantine=None, fields=None, ngram=8,
    threshold=0.5, format=None, encoding="auto", on_error="raise", batch_size=4096,
    eval_on_error="raise", outputs=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn decontaminate_files<'py>(
    py: Python<'py>,
    inputs: Vec<(PathBuf, String)>,
    evals: Vec<(PathBuf, Option<Vec<String>>)>,
    output: Option<PathBuf>,
    report: Option<PathBuf>,
    quarantine: Option<PathBuf>,
    fields: Option<Vec<String>>,
    ngram: usize,
    threshold: f64,
    format: Option<&str>,
    encoding: &str,
    on_error: &str,
    batch_size: usize,
    eval_on_error: &str,
    outputs: Option<Vec<PathBuf>>,
) -> PyResult<Bound<'py, PyAny>> {
    let kept = match (&output, &outputs) {
        (Some(one), None) => KeptOutput::One(one),
        (None, Some(per)) => KeptOutput::PerSource(per),
        _ => {
            return Err(ConfigError::new_err(
                "give output (one file) or outputs (one per training file)",
            ))
        }
    };
    let cfg = DecontamConfig {
        ngram,
        threshold,
        fields,
        reader: reader_options(format, encoding, "auto", on_error, None, batch_size, None)?,
        eval_on_error: reader_options(None, "auto", "auto", eval_on_error, None, 1, None)?.on_error,
    };
    let train: Vec<SourceFile> = inputs
        .into_iter()
        .map(|(path, name)| SourceFile { path, name })
        .collect();
    let eval: Vec<EvalFile> = evals
        .into_iter()
        .map(|(path, fields)| EvalFile { path, fields })
        .collect();
    let stats = py
        .detach(|| {
            core_decontaminate(
                &train,
                &eval,
                kept,
                report.as_deref(),
                quarantine.as_deref(),
                &cfg,
            )
        })
        .py_err()?;
    let sources: Vec<serde_json::Value> = stats
        .sources
        .iter()
        .map(|c| {
            serde_json::json!({
                "source": c.name, "records": c.records, "kept": c.kept,
                "removed": c.removed, "rejected": c.rejected,
            })
        })
        .collect();
    let value = serde_json::json!({
        "sources": sources,
        "eval_items": stats.eval_items,
        "eval_unchecked": stats.eval_unchecked,
        "eval_items_hit": stats.eval_items_hit,
        "eval_no_text": stats.eval_no_text,
        "eval_rejected": stats.eval_rejected,
        "eval_rejections": stats.eval_rejections.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
    });
    value_to_py(py, &value)
}
