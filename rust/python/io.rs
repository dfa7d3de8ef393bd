//! Python classes over the streaming readers and the atomic writer: `RecordReader` (an iterator
//! of `RecordBatch`), `RecordBatch` (records stay in Rust; `to_arrow()` hands them to
//! polars/pyarrow as Arrow, `arrow.rs`) and `JsonlWriter`. Every call that parses or serializes releases the GIL.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use rayon::prelude::*;
use serde_json::Value;

use super::errors::{ConfigError, IntoPyResult};
use crate::io::options::{parse_compression, parse_delimiter};
use crate::io::write::{rejection_to_json, JsonlWriter};
use crate::io::{OnError, ReaderOptions, RecordReader};
use crate::record::RecordBatch;

/// Reader options from the keyword arguments shared by every reading function.
pub(crate) fn reader_options(
    format: Option<&str>,
    encoding: &str,
    compression: &str,
    on_error: &str,
    required: Option<Vec<String>>,
    batch_size: usize,
    delimiter: Option<&str>,
) -> PyResult<ReaderOptions> {
    if batch_size == 0 {
        return Err(ConfigError::new_err("batch_size must be at least 1"));
    }
    Ok(ReaderOptions {
        format: format.map(str::parse).transpose().py_err()?,
        encoding: encoding.parse().py_err()?,
        compression: parse_compression(compression).py_err()?,
        on_error: on_error.parse::<OnError>().py_err()?,
        required: required.unwrap_or_default(),
        batch_size,
        delimiter: delimiter.map(parse_delimiter).transpose().py_err()?,
        raw_lines: false,
    })
}

/// Converts a JSON value into Python objects.
pub(crate) fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for x in items {
                list.append(value_to_py(py, x)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, x) in map {
                dict.set_item(k, value_to_py(py, x)?)?;
            }
            dict.into_any()
        }
    })
}

/// A batch of records held in Rust.
#[pyclass(name = "RecordBatch", module = "csft_data._core")]
pub struct PyRecordBatch {
    pub(crate) inner: RecordBatch,
}

#[pymethods]
impl PyRecordBatch {
    fn __len__(&self) -> usize {
        self.inner.records.len()
    }

    #[getter]
    fn path(&self) -> String {
        self.inner.path.to_string_lossy().into_owned()
    }

    #[getter]
    fn num_rejected(&self) -> usize {
        self.inner.rejections.len()
    }

    /// 1-based start line of each record (None for formats without lines).
    #[getter]
    fn lines(&self) -> Vec<Option<u64>> {
        self.inner.origins.iter().map(|o| o.line).collect()
    }

    /// 0-based record index of each record within its file.
    #[getter]
    fn indices(&self) -> Vec<u64> {
        self.inner.origins.iter().map(|o| o.index).collect()
    }

    /// The records as newline-delimited JSON (UTF-8), serialized in parallel.
    fn to_ndjson<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let records = &self.inner.records;
        let buf = py.detach(|| {
            let parts: Vec<Vec<u8>> = records
                .par_iter()
                .map(|r| {
                    let mut line = serde_json::to_vec(r).expect("JSON map serializes");
                    line.push(b'\n');
                    line
                })
                .collect();
            parts.concat()
        });
        PyBytes::new(py, &buf)
    }

    /// The records as Arrow (a schema inferred from this batch alone), zero-copy to
    /// pyarrow/polars through `__arrow_c_stream__`.
    fn to_arrow(&self, py: Python<'_>) -> PyResult<super::arrow::PyArrowStream> {
        super::arrow::batch_to_arrow(py, &self.inner.records)
    }

    /// The records as a list of dicts (for small batches; use `to_arrow` for volume).
    fn to_dicts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for r in &self.inner.records {
            let dict = PyDict::new(py);
            for (k, v) in r {
                dict.set_item(k, value_to_py(py, v)?)?;
            }
            list.append(dict)?;
        }
        Ok(list)
    }

    /// Rejected records of this batch as quarantine dicts (file, line, record, field, kind,
    /// reason, raw, and raw_hex for undecodable bytes).
    fn rejections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for r in &self.inner.rejections {
            list.append(value_to_py(py, &rejection_to_json(r))?)?;
        }
        Ok(list)
    }

    fn __repr__(&self) -> String {
        format!(
            "RecordBatch(path={:?}, records={}, rejected={})",
            self.inner.path.display().to_string(),
            self.inner.records.len(),
            self.inner.rejections.len()
        )
    }
}

/// Streams a file as `RecordBatch`es.
#[pyclass(name = "RecordReader", module = "csft_data._core")]
pub struct PyRecordReader {
    inner: Mutex<RecordReader>,
}

impl PyRecordReader {
    fn with<T>(&self, f: impl FnOnce(&mut RecordReader) -> T) -> T {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

#[pymethods]
impl PyRecordReader {
    #[new]
    #[pyo3(signature = (path, *, format=None, encoding="auto", compression="auto", on_error="raise", required=None, batch_size=4096, delimiter=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        format: Option<&str>,
        encoding: &str,
        compression: &str,
        on_error: &str,
        required: Option<Vec<String>>,
        batch_size: usize,
        delimiter: Option<&str>,
    ) -> PyResult<Self> {
        let options = reader_options(
            format,
            encoding,
            compression,
            on_error,
            required,
            batch_size,
            delimiter,
        )?;
        let reader = py.detach(|| RecordReader::open(&path, options)).py_err()?;
        Ok(Self {
            inner: Mutex::new(reader),
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyRecordBatch>> {
        let batch = py.detach(|| self.with(RecordReader::next_batch)).py_err()?;
        Ok(batch.map(|inner| PyRecordBatch { inner }))
    }

    #[getter]
    fn path(&self) -> String {
        self.with(|r| r.path().to_string_lossy().into_owned())
    }

    #[getter]
    fn format(&self) -> &'static str {
        self.with(|r| r.format()).as_str()
    }

    /// The text encoding in use ("auto" until the first non-ASCII byte decided it).
    #[getter]
    fn encoding(&self) -> &'static str {
        self.with(|r| r.encoding()).as_str()
    }

    #[getter]
    fn bytes_read(&self) -> u64 {
        self.with(|r| r.bytes_read())
    }

    #[getter]
    fn total_bytes(&self) -> u64 {
        self.with(|r| r.total_bytes())
    }

    /// Records read so far.
    #[getter]
    fn records(&self) -> u64 {
        self.with(|r| r.stats().records)
    }

    /// Records rejected so far (skip mode).
    #[getter]
    fn rejected(&self) -> u64 {
        self.with(|r| r.stats().rejected)
    }
}

/// Writes JSONL atomically: nothing appears at `path` until `commit()`.
#[pyclass(name = "JsonlWriter", module = "csft_data._core")]
pub struct PyJsonlWriter {
    inner: Mutex<Option<JsonlWriter>>,
    path: PathBuf,
}

impl PyJsonlWriter {
    fn with<T>(&self, f: impl FnOnce(&mut JsonlWriter) -> PyResult<T>) -> PyResult<T> {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match guard.as_mut() {
            Some(w) => f(w),
            None => Err(PyValueError::new_err(format!(
                "JsonlWriter for {} is already closed",
                self.path.display()
            ))),
        }
    }
}

#[pymethods]
impl PyJsonlWriter {
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        let w = JsonlWriter::create(&path).py_err()?;
        Ok(Self {
            inner: Mutex::new(Some(w)),
            path,
        })
    }

    #[getter]
    fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Lines written so far.
    #[getter]
    fn count(&self) -> PyResult<u64> {
        self.with(|w| Ok(w.count()))
    }

    /// Appends the batch's records.
    fn write(&self, py: Python<'_>, batch: PyRef<'_, PyRecordBatch>) -> PyResult<()> {
        let records = &batch.inner.records;
        self.with(|w| py.detach(|| w.write_records(records)).py_err())
    }

    /// Appends the batch's rejected records as quarantine lines.
    fn write_rejections(&self, py: Python<'_>, batch: PyRef<'_, PyRecordBatch>) -> PyResult<()> {
        let rejections = &batch.inner.rejections;
        self.with(|w| py.detach(|| w.write_rejections(rejections)).py_err())
    }

    /// Moves the file into place; returns the number of lines.
    fn commit(&self, py: Python<'_>) -> PyResult<u64> {
        let w = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| PyValueError::new_err("JsonlWriter is already closed"))?;
        py.detach(|| w.commit()).py_err()
    }

    /// Discards the output (the temporary file is removed).
    fn abort(&self) {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Commits on a clean exit, aborts when an exception is propagating.
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let open = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some();
        if exc_type.is_some() {
            self.abort();
        } else if open {
            self.commit(py)?;
        }
        Ok(false)
    }
}

/// Routes the records of JSONL files to outputs by one label byte per record (255: dropped);
/// see `crate::io::partition`. Returns the records sent to each output.
#[pyfunction]
#[pyo3(signature = (inputs, labels, outputs, *, batch_size=8192))]
pub fn partition_jsonl(
    py: Python<'_>,
    inputs: Vec<PathBuf>,
    labels: Vec<u8>,
    outputs: Vec<Option<PathBuf>>,
    batch_size: usize,
) -> PyResult<Vec<u64>> {
    py.detach(|| crate::io::partition::partition_jsonl(&inputs, &labels, &outputs, batch_size))
        .py_err()
}
