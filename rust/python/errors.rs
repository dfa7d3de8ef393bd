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
            // The built-in subclass for the error kind (FileNotFoundError, …), built as Python
            // builds its own: `str()` is "[Errno 2] No such file or directory: 'PATH'".
            let kind_err: PyErr = std::io::Error::from(source.kind()).into();
            let path = path.to_string_lossy().into_owned();
            let message = source.to_string();
            Python::attach(|py| {
                let ty = kind_err.get_type(py);
                let made = match source.raw_os_error() {
                    Some(errno) => {
                        let strerror = message
                            .rsplit_once(" (os error ")
                            .map_or(message.as_str(), |(m, _)| m);
                        ty.call1((errno, strerror, path))
                    }
                    None => ty.call1((format!("{path}: {message}"),)),
                };
                made.map_or_else(|e| e, PyErr::from_value)
            })
        }
        Error::Config(msg) => ConfigError::new_err(msg),
        // Only ever returned with the exception that caused it (see `progress.rs`).
        Error::Interrupted => CsftDataError::new_err("interrupted"),
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
