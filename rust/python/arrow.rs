//! Arrow data for Python: `ArrowStream` holds Arrow batches built in Rust (`io::arrow`) and
//! hands them over zero-copy through the Arrow PyCapsule interface (`__arrow_c_stream__`), so
//! `pyarrow.table(s)`, `polars.DataFrame(s)` and any other consumer of that interface take the
//! buffers without a copy or a parse.

use std::path::PathBuf;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchIterator};
use arrow_schema::SchemaRef;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use super::errors::IntoPyResult;
use super::io::reader_options;
use super::progress::run_detached;

/// Arrow batches of one schema, exported through `__arrow_c_stream__` (any number of times).
#[pyclass(name = "ArrowStream", module = "csft_data._core", frozen)]
pub struct PyArrowStream {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl PyArrowStream {
    pub(crate) fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Self { schema, batches }
    }
}

#[pymethods]
impl PyArrowStream {
    /// The Arrow PyCapsule interface: a capsule holding an `ArrowArrayStream` of the batches
    /// (their buffers are shared, not copied). A requested schema is not applied.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let batches = self.batches.clone().into_iter().map(Ok);
        let reader = RecordBatchIterator::new(batches, self.schema.clone());
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }

    /// Records in all batches.
    #[getter]
    fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    #[getter]
    fn num_batches(&self) -> usize {
        self.batches.len()
    }

    /// Column names, in first-seen order.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn __len__(&self) -> usize {
        self.num_rows()
    }

    fn __repr__(&self) -> String {
        format!(
            "ArrowStream(rows={}, batches={}, columns={:?})",
            self.num_rows(),
            self.batches.len(),
            self.columns()
        )
    }
}

/// Reads a whole file into Arrow batches of one schema (options as `RecordReader`).
#[pyfunction]
#[pyo3(signature = (path, *, format=None, encoding="auto", compression="auto", on_error="raise", required=None, batch_size=2048, delimiter=None))]
#[allow(clippy::too_many_arguments)]
pub fn read_arrow(
    py: Python<'_>,
    path: PathBuf,
    format: Option<&str>,
    encoding: &str,
    compression: &str,
    on_error: &str,
    required: Option<Vec<String>>,
    batch_size: usize,
    delimiter: Option<&str>,
) -> PyResult<PyArrowStream> {
    let options = reader_options(
        format,
        encoding,
        compression,
        on_error,
        required,
        batch_size,
        delimiter,
    )?;
    let (schema, batches) =
        run_detached(py, None, |_| crate::io::arrow::read_arrow(&path, options))?;
    Ok(PyArrowStream::new(schema, batches))
}

/// One reader batch as Arrow (its own schema).
pub(crate) fn batch_to_arrow(
    py: Python<'_>,
    records: &[crate::record::Record],
) -> PyResult<PyArrowStream> {
    let (schema, batch) = py
        .detach(|| {
            let columns = crate::io::arrow::infer(records);
            crate::io::arrow::to_arrow(records, &columns).map(|b| (b.schema(), b))
        })
        .py_err()?;
    Ok(PyArrowStream::new(schema, vec![batch]))
}
