//! The one way the bindings run core work: with the GIL released, progress forwarded to an
//! optional Python callback `(stage, done, total)`, and the caller's signals honoured. At each
//! progress report the pending signals are checked (Ctrl-C raises `KeyboardInterrupt` there)
//! and the callback is called; an exception from either stops the work (the core returns
//! [`Error::Interrupted`] and publishes nothing) and is raised as it is.

use pyo3::prelude::*;

use super::errors::IntoPyResult;
use crate::error::{Error, Progress, Result};

/// Runs `work` without the GIL, giving it a [`Progress`] that reports to `callback`.
pub fn run_detached<T: Send>(
    py: Python<'_>,
    callback: Option<&Py<PyAny>>,
    work: impl FnOnce(Progress<'_>) -> Result<T> + Send,
) -> PyResult<T> {
    run_detached_on(py, callback, None, work)
}

/// [`run_detached`] on a thread pool of its own of `threads` threads (`None`: the global pool,
/// one thread per core). A worker of a distributed engine runs with the cores it was given.
pub fn run_detached_on<T: Send>(
    py: Python<'_>,
    callback: Option<&Py<PyAny>>,
    threads: Option<usize>,
    work: impl FnOnce(Progress<'_>) -> Result<T> + Send,
) -> PyResult<T> {
    let pool = match threads {
        None => None,
        Some(0) => return Err(Error::config("num_threads must be at least 1")).py_err(),
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| Error::config(format!("cannot start {n} threads: {e}")))
                .py_err()?,
        ),
    };
    let mut raised: Option<PyErr> = None;
    let result = py.detach(|| {
        let mut report = |stage: &str, done: u64, total: u64| -> Result<()> {
            Python::attach(|py| {
                let outcome = py.check_signals().and_then(|()| match callback {
                    Some(cb) => cb.call1(py, (stage, done, total)).map(drop),
                    None => Ok(()),
                });
                outcome.map_err(|e| {
                    raised = Some(e);
                    Error::Interrupted
                })
            })
        };
        match &pool {
            Some(pool) => pool.install(|| work(&mut report)),
            None => work(&mut report),
        }
    });
    match raised {
        Some(e) => Err(e),
        None => result.py_err(),
    }
}
