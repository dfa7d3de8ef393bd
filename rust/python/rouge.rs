//! Python side of ROUGE-L (`rust/rouge.rs`) and of generation prompts rendered with a built-in
//! chat template (`rust/lengths/render.rs`). `csft_data.rouge` and the evaluator wrap them.

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyBytes;

use super::errors::IntoPyResult;
use crate::lengths::Template;
use crate::rouge::{rouge_l_batch, tokenize};

fn f64_bytes<'py>(py: Python<'py>, values: impl Iterator<Item = f64>) -> Bound<'py, PyBytes> {
    let bytes: Vec<u8> = values.flat_map(f64::to_le_bytes).collect();
    PyBytes::new(py, &bytes)
}

/// ROUGE-L of each prediction against the reference at the same index, computed in parallel
/// with the GIL released: (precision, recall, fmeasure) as little-endian f64 bytes and the LCS
/// lengths as little-endian u32 bytes.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn rouge_l<'py>(
    py: Python<'py>,
    predictions: Vec<PyBackedStr>,
    references: Vec<PyBackedStr>,
) -> PyResult<(
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
)> {
    let scores = py
        .detach(|| {
            let p: Vec<&str> = predictions.iter().map(|t| &**t).collect();
            let r: Vec<&str> = references.iter().map(|t| &**t).collect();
            rouge_l_batch(&p, &r)
        })
        .py_err()?;
    let lcs: Vec<u8> = scores.iter().flat_map(|s| s.lcs.to_le_bytes()).collect();
    Ok((
        f64_bytes(py, scores.iter().map(|s| s.precision)),
        f64_bytes(py, scores.iter().map(|s| s.recall)),
        f64_bytes(py, scores.iter().map(|s| s.fmeasure)),
        PyBytes::new(py, &lcs),
    ))
}

/// The tokens ROUGE-L compares (CJK characters alone, other alphanumeric runs lowercased).
#[pyfunction]
pub fn rouge_tokens(text: &str) -> Vec<String> {
    tokenize(text)
}

/// The generation prompt of `messages` (user, assistant, ..., user) under a built-in chat
/// template, ending where the assistant's answer starts. `bos_token`: the tokenizer's BOS text
/// (`None`: the model has none and the element is dropped); `eos_token`: its EOS text (`None`:
/// the name the template's models usually give it).
#[pyfunction]
#[pyo3(signature = (template, messages, *, system=None, bos_token=None, eos_token=None))]
pub fn render_prompt(
    template: &str,
    messages: Vec<String>,
    system: Option<&str>,
    bos_token: Option<&str>,
    eos_token: Option<&str>,
) -> PyResult<String> {
    let t = Template::builtin(template).py_err()?;
    let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
    t.render_prompt(system, &refs, bos_token, eos_token.or(t.eos_token))
        .py_err()
}
