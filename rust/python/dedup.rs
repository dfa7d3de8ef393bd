//! Python functions over the dedup core's separable stages, batch-shaped so that a distributed
//! engine (Ray) can call the signature stage on its own batches: `minhash_signatures` (texts →
//! flat u32 signature matrix + text kinds), `band_keys` (signatures → one u64 key per band) and
//! `lsh_params` (threshold → bands, rows). Buffers cross as bytes; `csft_data.dedup` wraps them
//! as numpy arrays.

use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::PyBytes;
use rayon::prelude::*;

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use super::errors::{ConfigError, IntoPyResult};
use super::io::{reader_options, value_to_py};
use super::progress::{run_detached, run_detached_on};
use crate::dedup::cluster::KeepPolicy;
use crate::dedup::files::{DedupFilesConfig, FromSketches, KeptOutput, ScopeMode, SourceFile};
use crate::dedup::lsh::Buckets;
use crate::dedup::lsh::{band_key, resolve_params};
use crate::dedup::minhash::{signatures, MinHashParams};
use crate::dedup::shingle::{ShingleMode, ShingleParams, TextKind};
use crate::dedup::{remote, BucketLinker};
use crate::dedup::{DedupConfig, DedupStats, Sketch};
use crate::error::{Error, Result};

/// MinHash signatures of `texts`: (row-major little-endian u32 values, n × num_perm; one kind
/// byte per text: 0 normal, 1 short (exact match only), 2 empty).
#[pyfunction]
#[pyo3(signature = (texts, *, num_perm=128, ngram=5, word_ngram=3, mode="auto", seed=1, sketch="minhash"))]
#[allow(clippy::too_many_arguments)]
pub fn minhash_signatures<'py>(
    py: Python<'py>,
    texts: Vec<PyBackedStr>,
    num_perm: usize,
    ngram: usize,
    word_ngram: usize,
    mode: &str,
    seed: u64,
    sketch: &str,
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
        sketch: Sketch::parse(sketch).py_err()?,
    };
    let (values, kinds) = py
        .detach(|| {
            let refs: Vec<&str> = texts.iter().map(|t| &**t).collect();
            signatures(&refs, &params).map(|s| {
                let (_, values, kinds) = s.into_parts();
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                let kinds: Vec<u8> = kinds.into_iter().map(TextKind::code).collect();
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
    if num_perm == 0 || !signatures.len().is_multiple_of(4 * num_perm) {
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
#[pyo3(signature = (threshold=0.8, num_perm=128, *, bands=None, rows=None, verify=true, fp_weight=None, fn_weight=None))]
pub fn lsh_params(
    threshold: f64,
    num_perm: usize,
    bands: Option<usize>,
    rows: Option<usize>,
    verify: bool,
    fp_weight: Option<f64>,
    fn_weight: Option<f64>,
) -> PyResult<(usize, usize)> {
    let d = DedupConfig::default();
    let weights = (
        fp_weight.unwrap_or(d.fp_weight),
        fn_weight.unwrap_or(d.fn_weight),
    );
    resolve_params(threshold, num_perm, bands, rows, verify, weights).py_err()
}

fn stats_json(s: &DedupStats) -> serde_json::Value {
    serde_json::json!({
        "records": s.records, "kept": s.kept, "exact_duplicates": s.exact_duplicates,
        "near_duplicates": s.near_duplicates, "short": s.short, "empty": s.empty,
        "clusters": s.clusters, "bands": s.bands, "rows": s.rows, "buckets": s.buckets,
        "links": s.links,
    })
}

/// Step 1 of the linking through a Python callable (the Ray engine's): called with a scope's
/// link jobs (a list of bytes), it returns their results (bytes each, in order). An exception
/// it raises stops the run and is raised as it is.
struct PyLinker {
    callback: Py<PyAny>,
    raised: Mutex<Option<PyErr>>,
}

impl BucketLinker for PyLinker {
    fn edges(&self, buckets: &Buckets, cfg: &DedupConfig) -> Result<(Vec<(u32, u32)>, usize)> {
        let jobs = remote::link_jobs(buckets, cfg, remote::MEMBERS_PER_JOB);
        let results = Python::attach(|py| -> PyResult<Vec<PyBackedBytes>> {
            let list: Vec<Bound<'_, PyBytes>> = jobs.iter().map(|j| PyBytes::new(py, j)).collect();
            self.callback.call1(py, (list,))?.extract(py)
        });
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                *self.raised.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                return Err(Error::Interrupted);
            }
        };
        if results.len() != jobs.len() {
            return Err(Error::config(format!(
                "the linker returned {} results for {} jobs",
                results.len(),
                jobs.len()
            )));
        }
        let owned: Vec<Vec<u8>> = results.iter().map(|r| r.to_vec()).collect();
        remote::merge_results(&owned)
    }
}

/// One link job of a run from sketches (a Ray task): the verified edges of its buckets, the
/// texts read from `sketches`; see `csft_data.ray_engine`.
#[pyfunction]
#[pyo3(signature = (sketches, job, *, num_threads=None))]
pub fn link_job<'py>(
    py: Python<'py>,
    sketches: Vec<PathBuf>,
    job: PyBackedBytes,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = run_detached_on(py, None, num_threads, |_| {
        let texts = remote::SketchTexts::open(&sketches)?;
        remote::run_link_job(&texts, &job)
    })?;
    Ok(PyBytes::new(py, &out))
}

/// Dedup files (each one source) into `output`; see `csft_data.dedup_files`.
#[pyfunction]
#[pyo3(signature = (
    inputs, output, *, clusters=None, quarantine=None, fields=None, scope="both",
    threshold=0.8, num_perm=128, ngram=5, word_ngram=3, mode="auto", seed=1, bands=None,
    rows=None, verify=true, keep="first", format=None, encoding="auto", on_error="raise",
    batch_size=4096, progress=None, source_rank=None, sketch="oph", memory_limit=None,
    tmp_dir=None, sketches=None, sketch_out=None, link=None, num_threads=None, outputs=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn dedup_files<'py>(
    py: Python<'py>,
    inputs: Vec<(PathBuf, String)>,
    output: Option<PathBuf>,
    clusters: Option<PathBuf>,
    quarantine: Option<PathBuf>,
    fields: Option<Vec<String>>,
    scope: &str,
    threshold: f64,
    num_perm: usize,
    ngram: usize,
    word_ngram: usize,
    mode: &str,
    seed: u64,
    bands: Option<usize>,
    rows: Option<usize>,
    verify: bool,
    keep: &str,
    format: Option<&str>,
    encoding: &str,
    on_error: &str,
    batch_size: usize,
    progress: Option<Py<PyAny>>,
    source_rank: Option<Vec<u32>>,
    sketch: &str,
    memory_limit: Option<u64>,
    tmp_dir: Option<PathBuf>,
    sketches: Option<Vec<PathBuf>>,
    sketch_out: Option<PathBuf>,
    link: Option<Py<PyAny>>,
    num_threads: Option<usize>,
    outputs: Option<Vec<PathBuf>>,
) -> PyResult<Bound<'py, PyAny>> {
    let kept = match (&output, &outputs) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new_err(
                "give output (one file) or outputs (one per input), not both",
            ))
        }
        (Some(one), None) => KeptOutput::One(one),
        (None, Some(per)) => KeptOutput::PerSource(per),
        (None, None) => KeptOutput::None,
    };
    let dedup = DedupConfig {
        sketch: Sketch::parse(sketch).py_err()?,
        mode: ShingleMode::parse(mode).py_err()?,
        ngram,
        word_ngram,
        num_perm,
        seed,
        threshold,
        bands,
        rows,
        verify,
        keep: KeepPolicy::parse(keep).py_err()?,
        ..DedupConfig::default()
    };
    let cfg = DedupFilesConfig {
        dedup,
        scope: ScopeMode::parse(scope).py_err()?,
        fields,
        source_rank,
        reader: reader_options(format, encoding, "auto", on_error, None, batch_size, None)?,
        memory_limit,
        tmp_dir,
    };
    let files: Vec<SourceFile> = inputs
        .into_iter()
        .map(|(path, name)| SourceFile { path, name })
        .collect();
    if let Some(out) = sketch_out {
        // one input's pass 1 only (a Ray task): its sketch, for a later run with `sketches`
        let [src] = files.as_slice() else {
            return Err(ConfigError::new_err("sketch_out takes exactly one input"));
        };
        let s = run_detached_on(py, progress.as_ref(), num_threads, |report| {
            crate::dedup::sketch::sketch_file(src, &out, &cfg, report)
        })?;
        let value = serde_json::json!({
            "records": s.records, "rejected": s.rejected, "bytes": s.bytes,
        });
        return value_to_py(py, &value);
    }
    let linker = link.map(|callback| PyLinker {
        callback,
        raised: Mutex::new(None),
    });
    let from = sketches.as_deref().map(|sketches| FromSketches {
        sketches,
        linker: linker.as_ref().map(|l| l as &dyn BucketLinker),
    });
    if from.is_none() && linker.is_some() {
        return Err(ConfigError::new_err("link takes sketches"));
    }
    let result = run_detached_on(py, progress.as_ref(), num_threads, |report| {
        crate::dedup::files::dedup_files(
            &files,
            from.as_ref(),
            kept,
            clusters.as_deref(),
            quarantine.as_deref(),
            &cfg,
            report,
        )
    });
    if let Some(err) = linker.and_then(|l| l.raised.into_inner().ok().flatten()) {
        return Err(err);
    }
    let stats = result?;
    let sources: Vec<serde_json::Value> = stats
        .sources
        .iter()
        .map(|c| {
            serde_json::json!({
                "source": c.name, "path": c.path.to_string_lossy(), "records": c.records,
                "kept": c.kept, "exact_duplicates": c.exact_duplicates,
                "near_duplicates": c.near_duplicates, "rejected": c.rejected,
                "within_source": c.within_source, "cross_source": c.cross_source,
            })
        })
        .collect();
    let value = serde_json::json!({
        "sources": sources,
        "per_source_scope": stats_json(&stats.within),
        "cross_source_scope": stats_json(&stats.cross),
        "clusters": stats.clusters,
        "out_of_core": stats.out_of_core,
        "spilled_bytes": stats.spilled_bytes,
    });
    value_to_py(py, &value)
}

/// Groups for a train/val split (`crate::dedup::groups`): the records of `inputs`
/// (concatenated) joined by near-duplicate pairs at `threshold` (transitively) and by
/// conversation (`id_field`); `threshold` None: conversations only. Returns (group id per
/// record as little-endian u32 bytes, stats).
#[pyfunction]
#[pyo3(signature = (
    inputs, *, fields, id_field=None, threshold=None, num_perm=128, ngram=5, word_ngram=3,
    mode="auto", seed=1, sketch="oph", format=None, encoding="auto", progress=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn group_files<'py>(
    py: Python<'py>,
    inputs: Vec<PathBuf>,
    fields: Vec<String>,
    id_field: Option<String>,
    threshold: Option<f64>,
    num_perm: usize,
    ngram: usize,
    word_ngram: usize,
    mode: &str,
    seed: u64,
    sketch: &str,
    format: Option<&str>,
    encoding: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyAny>)> {
    let cfg = DedupConfig {
        sketch: Sketch::parse(sketch).py_err()?,
        mode: ShingleMode::parse(mode).py_err()?,
        ngram,
        word_ngram,
        num_perm,
        seed,
        threshold: threshold.unwrap_or(1.0),
        ..DedupConfig::default()
    };
    let cfg = threshold.is_some().then_some(cfg);
    let reader = reader_options(format, encoding, "auto", "raise", None, 4096, None)?;
    let files: Vec<SourceFile> = inputs
        .into_iter()
        .map(|path| SourceFile {
            name: path.to_string_lossy().into_owned(),
            path,
        })
        .collect();
    let groups = run_detached(py, progress.as_ref(), |report| {
        crate::dedup::groups::group_files(
            &files,
            &fields,
            id_field.as_deref(),
            cfg.as_ref(),
            &reader,
            report,
        )
    })?;
    let ids: Vec<u8> = groups.group.iter().flat_map(|g| g.to_le_bytes()).collect();
    let stats = serde_json::json!({
        "records": groups.group.len(),
        "groups": groups.sizes.len(),
        "near_links": groups.near_links,
        "exact_links": groups.exact_links,
        "conversation_links": groups.conversation_links,
        "jaccard_checks": groups.jaccard_checks,
        "bands": groups.bands,
        "rows": groups.rows,
    });
    Ok((PyBytes::new(py, &ids), value_to_py(py, &stats)?))
}
