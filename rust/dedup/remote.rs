//! Linking LSH buckets elsewhere: step 1 of `verify.rs` (each bucket's leader scan, verified)
//! is independent per bucket, so a distributed engine cuts the buckets into *link jobs*, links
//! each on a worker and hands the edges back; the engine then forms components and splits them
//! as a local run does, so the result is the same.
//!
//! A job is self-contained bytes: the similarity options (shingling, signing, threshold,
//! verification) and its buckets. A worker reads the texts of the buckets' members straight
//! from the run's sketch files (`sketch.rs`) by global record index ([`SketchTexts`]). Does not
//! decide where jobs run (see `python/csft_data/ray_engine.py`).

use std::borrow::Cow;
use std::fs::File;
use std::path::PathBuf;

use serde_json::json;

use super::lsh::Buckets;
use super::oph::Sketch;
use super::shingle::ShingleMode;
use super::verify::{bucket_edges, RowStore, Rows};
use super::DedupConfig;
use crate::error::{Error, Result};

/// Where step 1 of the linking runs for a run that is not all local.
pub trait BucketLinker: Sync {
    /// The verified edges of `buckets` (sorted, deduplicated) and the checks made.
    fn edges(&self, buckets: &Buckets, cfg: &DedupConfig) -> Result<(Vec<(u32, u32)>, usize)>;
}

/// Bucket members per link job, about (a job holds whole buckets).
pub const MEMBERS_PER_JOB: usize = 1 << 18;

fn put(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Reads little-endian values front to back, refusing to read past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| Error::config("a truncated link job or result"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>> {
        let bytes = self.take(n.checked_mul(4).ok_or_else(|| Error::config("too long"))?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4")))
            .collect())
    }
}

/// The link jobs of `buckets` under `cfg`, each about `members_per_job` members.
pub fn link_jobs(buckets: &Buckets, cfg: &DedupConfig, members_per_job: usize) -> Vec<Vec<u8>> {
    let header = json!({
        "mode": cfg.mode.as_str(), "ngram": cfg.ngram, "word_ngram": cfg.word_ngram,
        "cjk_share": cfg.cjk_share, "num_perm": cfg.num_perm, "seed": cfg.seed,
        "sketch": cfg.sketch.as_str(), "verify": cfg.verify, "threshold": cfg.threshold,
    })
    .to_string();
    let mut jobs = Vec::new();
    let mut chunk: Vec<&[u32]> = Vec::new();
    let mut size = 0;
    let mut flush = |chunk: &mut Vec<&[u32]>| {
        let mut buf = Vec::new();
        put(&mut buf, header.len() as u64);
        buf.extend_from_slice(header.as_bytes());
        put(&mut buf, chunk.len() as u64);
        for b in chunk.iter() {
            put(&mut buf, b.len() as u64);
        }
        for b in chunk.iter() {
            buf.extend(b.iter().flat_map(|m| m.to_le_bytes()));
        }
        jobs.push(buf);
        chunk.clear();
    };
    for b in buckets.iter() {
        chunk.push(b);
        size += b.len();
        if size >= members_per_job {
            flush(&mut chunk);
            size = 0;
        }
    }
    if !chunk.is_empty() {
        flush(&mut chunk);
    }
    jobs
}

/// Runs one link job on the texts of `texts`; returns its result (see [`decode_edges`]).
pub fn run_link_job(texts: &SketchTexts, job: &[u8]) -> Result<Vec<u8>> {
    let mut r = Reader { bytes: job, pos: 0 };
    let header_len = r.u64()? as usize;
    let header: serde_json::Value = serde_json::from_slice(r.take(header_len)?)
        .map_err(|e| Error::config(format!("a link job's header is not JSON: {e}")))?;
    let field = |k: &str| {
        header
            .get(k)
            .ok_or_else(|| Error::config(format!("a link job's header lacks {k}")))
    };
    let num = |k: &str| field(k).and_then(|v| v.as_u64().ok_or_else(|| bad_field(k)));
    let float = |k: &str| field(k).and_then(|v| v.as_f64().ok_or_else(|| bad_field(k)));
    let text = |k: &str| field(k).and_then(|v| v.as_str().ok_or_else(|| bad_field(k)));
    let cfg = DedupConfig {
        mode: ShingleMode::parse(text("mode")?)?,
        ngram: num("ngram")? as usize,
        word_ngram: num("word_ngram")? as usize,
        cjk_share: float("cjk_share")?,
        num_perm: num("num_perm")? as usize,
        seed: num("seed")?,
        sketch: Sketch::parse(text("sketch")?)?,
        verify: field("verify")?
            .as_bool()
            .ok_or_else(|| bad_field("verify"))?,
        threshold: float("threshold")?,
        ..DedupConfig::default()
    };
    let n = r.u64()? as usize;
    let lens: Vec<u64> = (0..n).map(|_| r.u64()).collect::<Result<_>>()?;
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0usize);
    for len in &lens {
        offsets.push(offsets.last().expect("one") + *len as usize);
    }
    let members = r.u32s(*offsets.last().expect("one"))?;
    if r.pos != job.len() {
        return Err(Error::config("a link job has trailing bytes"));
    }
    let buckets = Buckets::from_parts(offsets, members)?;
    let (shingle, minhash) = (cfg.shingle_params(), cfg.minhash_params());
    let rows = if cfg.verify {
        Rows::Sets(&shingle)
    } else {
        Rows::Signatures(&minhash)
    };
    let store = RowStore::build(
        |ids| texts.texts(ids),
        None,
        super::verify::involved(&buckets),
        rows,
    )?;
    let (edges, checks) = bucket_edges(&store, &buckets, rows, cfg.threshold)?;
    let mut out = Vec::with_capacity(16 + edges.len() * 8);
    put(&mut out, checks as u64);
    put(&mut out, edges.len() as u64);
    for (a, b) in edges {
        out.extend_from_slice(&a.to_le_bytes());
        out.extend_from_slice(&b.to_le_bytes());
    }
    Ok(out)
}

fn bad_field(k: &str) -> Error {
    Error::config(format!("a link job's {k} has the wrong type"))
}

/// The edges and checks of a link job's result.
pub fn decode_edges(result: &[u8]) -> Result<(Vec<(u32, u32)>, usize)> {
    let mut r = Reader {
        bytes: result,
        pos: 0,
    };
    let checks = r.u64()? as usize;
    let n = r.u64()? as usize;
    let flat = r.u32s(n.checked_mul(2).ok_or_else(|| Error::config("too long"))?)?;
    if r.pos != result.len() {
        return Err(Error::config("a link result has trailing bytes"));
    }
    Ok((flat.chunks_exact(2).map(|p| (p[0], p[1])).collect(), checks))
}

/// The dedup texts of a run's sketches, read by global record index (the sketches' records in
/// order). Holds each sketch's text offsets (8 bytes a record); reads the texts on demand.
/// The sketches were checked by the driver before the jobs were made.
pub struct SketchTexts {
    files: Vec<(PathBuf, File, u64)>,
    /// Global index of each sketch's first record, then the total.
    starts: Vec<u64>,
    ends: Vec<Vec<u64>>,
}

impl SketchTexts {
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let (mut files, mut starts, mut ends) = (Vec::new(), vec![0u64], Vec::new());
        for path in paths {
            let (file, text_at, text_ends) = super::sketch::text_index(path)?;
            starts.push(starts.last().expect("one") + text_ends.len() as u64);
            files.push((path.clone(), file, text_at));
            ends.push(text_ends);
        }
        Ok(Self {
            files,
            starts,
            ends,
        })
    }

    /// Records over all the sketches.
    pub fn len(&self) -> usize {
        *self.starts.last().expect("one") as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn text(&self, id: u32) -> Result<String> {
        let id = id as u64;
        if id >= *self.starts.last().expect("one") {
            return Err(Error::config(format!(
                "record {id} is past the sketches' records"
            )));
        }
        let k = self.starts.partition_point(|&s| s <= id) - 1;
        let i = (id - self.starts[k]) as usize;
        let (path, file, text_at) = &self.files[k];
        let start = if i == 0 { 0 } else { self.ends[k][i - 1] };
        let end = self.ends[k][i];
        let mut buf = vec![0u8; (end - start) as usize];
        super::spill::read_exact_at(file, &mut buf, text_at + start)
            .map_err(|e| Error::io(path, e))?;
        String::from_utf8(buf).map_err(|_| {
            Error::config(format!(
                "{}: text of record {i} is not UTF-8: the sketch changed",
                path.display()
            ))
        })
    }

    pub fn texts(&self, ids: &[u32]) -> Result<Vec<Cow<'static, str>>> {
        ids.iter().map(|&i| self.text(i).map(Cow::Owned)).collect()
    }
}

/// A linker that runs the jobs here, one after the other (tests, and the reference).
pub struct LocalLinker<'a> {
    pub texts: &'a SketchTexts,
    pub members_per_job: usize,
}

impl BucketLinker for LocalLinker<'_> {
    fn edges(&self, buckets: &Buckets, cfg: &DedupConfig) -> Result<(Vec<(u32, u32)>, usize)> {
        let results: Vec<Vec<u8>> = link_jobs(buckets, cfg, self.members_per_job)
            .iter()
            .map(|job| run_link_job(self.texts, job))
            .collect::<Result<_>>()?;
        merge_results(&results)
    }
}

/// The edges of all jobs of a scope (sorted, deduplicated) and their checks.
pub fn merge_results(results: &[Vec<u8>]) -> Result<(Vec<(u32, u32)>, usize)> {
    let (mut edges, mut checks) = (Vec::new(), 0);
    for r in results {
        let (e, c) = decode_edges(r)?;
        edges.extend(e);
        checks += c;
    }
    edges.sort_unstable();
    edges.dedup();
    Ok((edges, checks))
}

/// The corpus of a run from sketches held in memory except its texts, which stay in the
/// sketch files and are read when the engine asks (exact-key checks, verification rows): the
/// driver of a distributed run never copies the dedup texts.
pub struct SketchCorpus {
    pub texts: SketchTexts,
    pub key_hashes: Vec<u128>,
    pub keys: super::lsh::BandKeys,
    pub lengths: Option<Vec<u32>>,
}

impl super::corpus::Corpus for SketchCorpus {
    fn len(&self) -> usize {
        self.keys.len()
    }
    fn kinds(&self) -> &[super::shingle::TextKind] {
        self.keys.kinds()
    }
    fn key_hashes(&self) -> &[u128] {
        &self.key_hashes
    }
    fn lengths(&self) -> Option<&[u32]> {
        self.lengths.as_deref()
    }
    fn bands(&self) -> usize {
        self.keys.bands()
    }
    fn parallel_bands(&self) -> bool {
        true
    }
    fn band_column(&self, band: usize) -> Result<super::lsh::BandColumn<'_>> {
        Ok(super::lsh::BandColumn::Strided {
            keys: &self.keys,
            band,
        })
    }
    fn same_key(&self, a: u32, b: u32) -> Result<bool> {
        Ok(self.texts.text(a)? == self.texts.text(b)?)
    }
    fn texts(&self, ids: &[u32]) -> Result<Vec<Cow<'_, str>>> {
        self.texts.texts(ids)
    }
}
