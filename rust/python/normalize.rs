//! Python functions over the converter and the normalizer: `convert(texts, config)` and the
//! `Normalizer` class, which normalizes a `RecordBatch` in place or a list of strings. Inputs are
//! copied into Rust, then the GIL is released for the parallel work.

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyList, PyString};

use super::errors::{ConfigError, IntoPyResult};
use super::io::PyRecordBatch;
use crate::normalize::{NormalizeConfig, Normalizer, TextOptions, UnicodeForm};
use crate::opencc::{config_names, Converter};
use rayon::prelude::*;

/// Converts a string or a list of strings with an OpenCC config (`t2s`, `s2t`, …).
#[pyfunction]
pub fn convert<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyAny>,
    config: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let conv = py.detach(|| Converter::get(config)).py_err()?;
    if let Ok(s) = texts.cast::<PyString>() {
        let s = s.to_str()?.to_owned();
        let out = py.detach(|| conv.convert(&s));
        return Ok(PyString::new(py, &out).into_any());
    }
    // Borrow the strings' UTF-8 buffers (no copy) while the GIL is released.
    let borrowed: Vec<PyBackedStr> = texts.extract().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err("convert() takes a str or a list of str")
    })?;
    let out: Vec<String> = py.detach(|| borrowed.par_iter().map(|t| conv.convert(t)).collect());
    Ok(PyList::new(py, out)?.into_any())
}

/// The names of the built-in OpenCC configs.
#[pyfunction]
pub fn opencc_configs() -> Vec<&'static str> {
    config_names().to_vec()
}

/// Script conversion plus text clean-up, applied to records or strings.
#[pyclass(name = "Normalizer", module = "csft_data._core", frozen)]
pub struct PyNormalizer {
    inner: Normalizer,
}

#[pymethods]
impl PyNormalizer {
    #[new]
    #[pyo3(signature = (*, convert=None, fields=None, unicode="none", unicode_fields=None, newlines=true, control=true, whitespace=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        convert: Option<String>,
        fields: Option<Vec<String>>,
        unicode: &str,
        unicode_fields: Option<Vec<String>>,
        newlines: bool,
        control: bool,
        whitespace: bool,
    ) -> PyResult<Self> {
        let unicode =
            UnicodeForm::parse(unicode).map_err(|e| ConfigError::new_err(e.to_string()))?;
        let config = NormalizeConfig {
            convert,
            text: TextOptions {
                newlines,
                control,
                whitespace,
                unicode,
            },
            fields,
            unicode_fields,
        };
        let inner = py.detach(|| Normalizer::new(config)).py_err()?;
        Ok(Self { inner })
    }

    /// Normalizes the batch's records in place.
    fn apply(&self, py: Python<'_>, mut batch: PyRefMut<'_, PyRecordBatch>) {
        let batch = &mut batch.inner;
        py.detach(|| self.inner.batch(batch));
    }

    /// Normalizes a list of strings.
    fn texts(&self, py: Python<'_>, texts: Vec<String>) -> Vec<String> {
        py.detach(|| self.inner.texts(&texts))
    }

    fn text(&self, text: &str) -> String {
        self.inner.text(text, None)
    }
}
