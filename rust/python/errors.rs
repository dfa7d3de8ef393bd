//! Maps the core [`Error`] onto Python exceptions: `csft_data.CsftDataError` is the base,
//! `ParseError` carries `path`, `line`, `record`, `field`, `kind` and
//! `reason` attributes, `ConfigError` is for bad options, and file
//! problems become the built-in `OSError` subclasses (`FileNotFoundError`, …).

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{create_exception, PyErr};

use crate::error::Error;

create_exception!(
    csft_data._core,
    CsftDataError,
    PyException,
    "Base class of csft-data errors."
);
create_exception!(
    csft_data._core,
    ParseError,
    CsftDataError,
    "Bad input data; `path`, `line`, `record`, `field`, `kind`, `reason` say where and why."
);
create_exception!(
    csft_data._core,
    ConfigError,
    CsftDataError,
    "An invalid option or argument."
);

pub(crate) fn to_pyerr(err: Error) -> PyErr {
    match err {
        Error::Io { path, source } => {
            let err: PyErr = source.into();
            Python::attach(|py| {
                let value = err.value(py);
                let _ = value.setattr("filename", path.to_string_lossy().into_owned());
            });
            err
        }
        Error::Config(msg) => ConfigError::new_err(msg),
        Error::Data(d) => {
            let err = ParseError::new_err(d.to_string());
            Python::attach(|py| {
                let value = err.value(py);
                let _ = value.setattr("path", d.path.to_string_lossy().into_owned());
                let _ = value.setattr("line", d.line);
                let _ = value.setattr("record", d.record);
                let _ = value.setattr("field", d.field.clone());
                let _ = value.setattr("kind", d.kind.as_str());
                let _ = value.setattr("reason", d.reason.clone());
            });
            err
        }
    }
}

pub(crate) trait IntoPyResult<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_pyerr)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("CsftDataError", py.get_type::<CsftDataError>())?;
    m.add("ParseError", py.get_type::<ParseError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    Ok(())
}
