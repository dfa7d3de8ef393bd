//! Python functions over the dedup core's separable stages, batch-shaped so that a distributed
//! engine (Ray) can call the signature stage on its own batches: `minhash_signatures` (texts →
//! flat u32 signature matrix + text kinds), `band_keys` (signatures → one u64 key per band) and
//! `lsh_params` (threshold → bands, rows). Buffers cross as bytes; `csft_data.dedup` wraps them
//! as numpy arrays.

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyBytes;
use rayon::prelude::*;

use super::errors::{ConfigError, IntoPyResult};
use crate::dedup::lsh::{band_key, resolve_params};
use crate::dedup::minhash::{signatures, MinHashParams};
use crate::dedup::shingle::{ShingleMode, ShingleParams, TextKind};
use crate::dedup::DedupConfig;

fn kind_code(k: TextKind) -> u8 {
    match k {
        TextKind::Normal => 0,
        TextKind::Short => 1,
        TextKind::Empty => 2,
    }
}

/// MinHash signatures of `texts`: (row-major little-endian u32 values, n × num_perm; one kind
/// byte per text: 0 normal, 1 short (exact match only), 2 empty).
#[pyfunction]
#[pyo3(signature = (texts, *, num_perm=128, ngram=5, word_ngram=3, mode="auto", seed=1))]
#[allow(clippy::too_many_arguments)]
pub fn minhash_signatures<'py>(
    py: Python<'py>,
    texts: Vec<PyBackedStr>,
    num_perm: usize,
    ngram: usize,
    word_ngram: usize,
    mode: &str,
    seed: u64,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let defaults = DedupConfig::default();
    let params = MinHashParams {
        shingle: ShingleParams {
            mode: ShingleMode::parse(mode).py_err()?,
            char_ngram: ngram,
            word_ngram,
            cjk_share: defaults.cjk_share,
            seed,
        },
        num_perm,
        seed,
    };
    let (values, kinds) = py
        .detach(|| {
            let refs: Vec<&str> = texts.iter().map(|t| &**t).collect();
            signatures(&refs, &params).map(|s| {
                let (_, values, kinds) = s.into_parts();
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                let kinds: Vec<u8> = kinds.into_iter().map(kind_code).collect();
                (bytes, kinds)
            })
        })
        .py_err()?;
    Ok((PyBytes::new(py, &values), PyBytes::new(py, &kinds)))
}

/// One u64 key per (text, band) from a flat u32 signature buffer of `num_perm` columns.
#[pyfunction]
pub fn band_keys<'py>(
    py: Python<'py>,
    signatures: &[u8],
    num_perm: usize,
    bands: usize,
    rows: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    if num_perm == 0 || signatures.len() % (4 * num_perm) != 0 {
        return Err(ConfigError::new_err(format!(
            "signature buffer of {} bytes is not a whole number of rows of {num_perm} u32",
            signatures.len()
        )));
    }
    if bands == 0 || rows == 0 || bands * rows > num_perm {
        return Err(ConfigError::new_err(format!(
            "need bands ≥ 1, rows ≥ 1 and bands·rows ≤ num_perm ({num_perm}), got {bands}×{rows}"
        )));
    }
    let values: Vec<u32> = signatures
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let keys: Vec<u8> = py.detach(|| {
        values
            .par_chunks(num_perm)
            .flat_map_iter(|row| {
                let mut scratch = Vec::with_capacity(4 * rows);
                (0..bands)
                    .map(|b| band_key(row, b, rows, &mut scratch))
                    .collect::<Vec<u64>>()
            })
            .flat_map_iter(u64::to_le_bytes)
            .collect()
    });
    Ok(PyBytes::new(py, &keys))
}

/// (bands, rows) for a threshold, minimising weighted false-positive and false-negative
/// probability as datasketch's `_optimal_param` does; `bands`/`rows` override.
#[pyfunction]
#[pyo3(signature = (threshold=0.8, num_perm=128, *, bands=None, rows=None, fp_weight=None, fn_weight=None))]
pub fn lsh_params(
    threshold: f64,
    num_perm: usize,
    bands: Option<usize>,
    rows: Option<usize>,
    fp_weight: Option<f64>,
    fn_weight: Option<f64>,
) -> PyResult<(usize, usize)> {
    let d = DedupConfig::default();
    let weights = (
        fp_weight.unwrap_or(d.fp_weight),
        fn_weight.unwrap_or(d.fn_weight),
    );
    resolve_params(threshold, num_perm, bands, rows, weights).py_err()
}
