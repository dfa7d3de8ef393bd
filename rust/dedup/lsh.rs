//! MinHash-LSH banding: parameter choice, band keys, buckets and candidate pairs.
//!
//! `optimal_params` reproduces datasketch's `_optimal_param` (it picks the (bands, rows) with
//! bands·rows ≤ num_perm that minimizes the weighted false-positive / false-negative areas under
//! the S-curve); the integrals use adaptive Simpson quadrature to 1e-13, far below the smallest
//! gap between competing parameter pairs (~2e-7), so the choice matches scipy's `quad`.
//!
//! Each indexable text gets, per band, a 64-bit key: xxh3 of the band's `rows` signature values,
//! seeded with the band index. Texts are grouped by (label, band, key) with a sort (labels keep
//! scopes apart: texts with different labels never share a bucket). Buckets of one member are
//! dropped, and buckets with identical member lists (a near-duplicate pair usually collides in
//! most bands) are kept once. Candidate pairs come from buckets either as a star (each member
//! linked to the bucket's lowest index — enough for union-find, linear in bucket size) or as all
//! pairs (quadratic; for verification and tests).

use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::minhash::{signatures, MinHashParams, Signatures};
use super::shingle::TextKind;
use crate::error::{Error, Result};

/// Integral of `f` over [a, b] by adaptive Simpson quadrature with absolute tolerance `eps`.
fn integrate(f: &dyn Fn(f64) -> f64, a: f64, b: f64, eps: f64) -> f64 {
    fn step(
        f: &dyn Fn(f64) -> f64,
        (a, fa): (f64, f64),
        (m, fm): (f64, f64),
        (b, fb): (f64, f64),
        whole: f64,
        eps: f64,
        depth: u32,
    ) -> f64 {
        let (lm, rm) = ((a + m) / 2.0, (m + b) / 2.0);
        let (flm, frm) = (f(lm), f(rm));
        let left = (m - a) / 6.0 * (fa + 4.0 * flm + fm);
        let right = (b - m) / 6.0 * (fm + 4.0 * frm + fb);
        let delta = left + right - whole;
        if depth == 0 || delta.abs() <= 15.0 * eps {
            return left + right + delta / 15.0;
        }
        step(f, (a, fa), (lm, flm), (m, fm), left, eps / 2.0, depth - 1)
            + step(f, (m, fm), (rm, frm), (b, fb), right, eps / 2.0, depth - 1)
    }
    if b <= a {
        return 0.0;
    }
    // Start from 16 panels so that steep, nearly flat-looking integrands are not missed.
    let panels = 16;
    let h = (b - a) / panels as f64;
    (0..panels)
        .map(|k| {
            let (x0, x1) = (a + h * k as f64, a + h * (k + 1) as f64);
            let xm = (x0 + x1) / 2.0;
            let (f0, fm, f1) = (f(x0), f(xm), f(x1));
            let whole = (x1 - x0) / 6.0 * (f0 + 4.0 * fm + f1);
            step(
                f,
                (x0, f0),
                (xm, fm),
                (x1, f1),
                whole,
                eps / panels as f64,
                40,
            )
        })
        .sum()
}

const QUAD_EPS: f64 = 1e-13;

/// Bands and rows are small integers: `powi` (repeated squaring) is several times faster than
/// `powf` and as accurate here.
fn exponent(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Area under the S-curve over [0, threshold]: probability mass of false positives.
pub fn false_positive_probability(threshold: f64, bands: usize, rows: usize) -> f64 {
    let (b, r) = (exponent(bands), exponent(rows));
    let p = |s: f64| 1.0 - (1.0 - s.powi(r)).powi(b);
    integrate(&p, 0.0, threshold, QUAD_EPS)
}

/// Area above the S-curve over [threshold, 1]: probability mass of false negatives.
pub fn false_negative_probability(threshold: f64, bands: usize, rows: usize) -> f64 {
    let (b, r) = (exponent(bands), exponent(rows));
    let p = |s: f64| (1.0 - s.powi(r)).powi(b);
    integrate(&p, threshold, 1.0, QUAD_EPS)
}

/// datasketch's `_optimal_param`: the (bands, rows) with bands·rows ≤ `num_perm` minimizing
/// `fp_weight · FP + fn_weight · FN` (first minimum in (b, r) order on ties). The search takes
/// some milliseconds at 128 permutations; results are remembered for the life of the process.
pub fn optimal_params(
    threshold: f64,
    num_perm: usize,
    fp_weight: f64,
    fn_weight: f64,
) -> (usize, usize) {
    type Key = (u64, usize, u64, u64);
    static CACHE: Mutex<Vec<(Key, (usize, usize))>> = Mutex::new(Vec::new());
    let key = (
        threshold.to_bits(),
        num_perm,
        fp_weight.to_bits(),
        fn_weight.to_bits(),
    );
    let cached =
        |cache: &Vec<(Key, (usize, usize))>| cache.iter().find(|(k, _)| *k == key).map(|&(_, v)| v);
    if let Some(v) = cached(&CACHE.lock().unwrap_or_else(PoisonError::into_inner)) {
        return v;
    }
    let v = search_params(threshold, num_perm, fp_weight, fn_weight);
    CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((key, v));
    v
}

fn search_params(
    threshold: f64,
    num_perm: usize,
    fp_weight: f64,
    fn_weight: f64,
) -> (usize, usize) {
    // Errors of every (b, r) in parallel, then the first minimum in (b, r) order.
    let errors: Vec<(f64, (usize, usize))> = (1..=num_perm)
        .into_par_iter()
        .flat_map_iter(|b| {
            (1..=num_perm / b).map(move |r| {
                let fp = false_positive_probability(threshold, b, r);
                let fnp = false_negative_probability(threshold, b, r);
                (fp * fp_weight + fnp * fn_weight, (b, r))
            })
        })
        .collect();
    let mut best = (f64::INFINITY, (0, 0));
    for (err, br) in errors {
        if err < best.0 {
            best = (err, br);
        }
    }
    best.1
}

/// The share of pairs at exactly the threshold that the default banding of a verified run
/// makes candidates (at every higher similarity the share is higher: the S-curve rises).
pub const MIN_RECALL_AT_THRESHOLD: f64 = 0.995;

/// Probability that two texts of Jaccard similarity `s` share at least one band.
pub fn candidate_probability(s: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - s.powi(exponent(rows))).powi(exponent(bands))
}

/// The banding of a verified run: verification removes every false positive, so false
/// positives cost only time, and the choice aims at recall. Among (bands, rows) with
/// bands·rows ≤ `num_perm` whose candidate probability at `threshold` is at least `min_recall`,
/// the one with the least false-positive area below the threshold (the verification work);
/// on a tie, fewer bands (less memory). If none reaches `min_recall`, the one closest to it.
/// For each band count only the most rows that still reach `min_recall` can win (more rows
/// lower both the curve and the false-positive area), so about `num_perm` integrals are taken.
pub fn recall_params(threshold: f64, num_perm: usize, min_recall: f64) -> (usize, usize) {
    let mut best: Option<(f64, (usize, usize))> = None;
    let mut closest = (f64::NEG_INFINITY, (1, 1));
    for b in 1..=num_perm {
        let reaching = (1..=num_perm / b)
            .rev()
            .find(|&r| candidate_probability(threshold, b, r) >= min_recall);
        let Some(r) = reaching else {
            let p = candidate_probability(threshold, b, 1);
            if p > closest.0 {
                closest = (p, (b, 1));
            }
            continue;
        };
        let fp = false_positive_probability(threshold, b, r);
        if best.is_none_or(|(f, _)| fp < f) {
            best = Some((fp, (b, r)));
        }
    }
    best.map_or(closest.1, |(_, br)| br)
}

/// The (bands, rows) to use: explicit overrides when given (one of them alone fixes the other as
/// `num_perm / it`); else, for a verified run, `recall_params` at
/// [`MIN_RECALL_AT_THRESHOLD`], and without verification (where a false positive is a wrong
/// removal) `optimal_params` with the given false-positive / false-negative weights.
pub fn resolve_params(
    threshold: f64,
    num_perm: usize,
    bands: Option<usize>,
    rows: Option<usize>,
    verify: bool,
    weights: (f64, f64),
) -> Result<(usize, usize)> {
    if num_perm == 0 {
        return Err(Error::config("num_perm must be at least 1"));
    }
    let (b, r) = match (bands, rows) {
        (Some(b), Some(r)) => (b, r),
        (Some(b), None) => (b, num_perm.checked_div(b).unwrap_or(0)),
        (None, Some(r)) => (num_perm.checked_div(r).unwrap_or(0), r),
        (None, None) => {
            if !(threshold > 0.0 && threshold <= 1.0) {
                return Err(Error::config(format!(
                    "threshold must lie in (0, 1], got {threshold}"
                )));
            }
            let (fp, fnw) = weights;
            if !(fp >= 0.0 && fnw >= 0.0 && fp + fnw > 0.0) {
                return Err(Error::config(
                    "LSH weights must be non-negative, not both 0",
                ));
            }
            if verify {
                recall_params(threshold, num_perm, MIN_RECALL_AT_THRESHOLD)
            } else {
                optimal_params(threshold, num_perm, fp, fnw)
            }
        }
    };
    if b == 0 || r == 0 || b * r > num_perm {
        return Err(Error::config(format!(
            "need bands ≥ 1, rows ≥ 1 and bands·rows ≤ num_perm ({num_perm}), got {b}×{r}"
        )));
    }
    Ok((b, r))
}

/// Key of band `band` (signature positions `band·rows .. (band+1)·rows`) of one signature row.
pub fn band_key(row: &[u32], band: usize, rows: usize, scratch: &mut Vec<u8>) -> u64 {
    scratch.clear();
    for v in &row[band * rows..(band + 1) * rows] {
        scratch.extend_from_slice(&v.to_le_bytes());
    }
    xxh3_64_with_seed(scratch, band as u64)
}

/// Band keys of a batch: a row-major `len × bands` matrix of u64 and each text's kind. This is
/// all LSH needs (112 bytes a text at 14 bands, against 512 for a 128-permutation signature), so
/// dedup keeps these and lets the signatures go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandKeys {
    bands: usize,
    rows: usize,
    keys: Vec<u64>,
    kinds: Vec<TextKind>,
}

/// Texts signed at a time by [`BandKeys::compute`], bounding the signature memory.
const SIGN_CHUNK: usize = 1 << 16;

impl BandKeys {
    /// The keys of signatures already computed. Panics when `bands · rows` exceeds their
    /// `num_perm`.
    pub fn from_signatures(sigs: &Signatures, bands: usize, rows: usize) -> Self {
        assert!(
            bands * rows <= sigs.num_perm(),
            "bands·rows exceeds num_perm"
        );
        let mut keys = vec![0u64; sigs.len() * bands];
        if bands > 0 {
            keys.par_chunks_mut(bands).enumerate().for_each_init(
                || Vec::with_capacity(rows * 4),
                |scratch, (i, out)| {
                    let row = sigs.row(i);
                    for (b, k) in out.iter_mut().enumerate() {
                        *k = band_key(row, b, rows, scratch);
                    }
                },
            );
        }
        Self {
            bands,
            rows,
            keys,
            kinds: sigs.kinds().to_vec(),
        }
    }

    /// Signatures of `texts`, chunk by chunk, reduced to band keys: never more than
    /// `SIGN_CHUNK` signatures are held at once.
    pub fn compute(
        texts: &[&str],
        params: &MinHashParams,
        bands: usize,
        rows: usize,
    ) -> Result<Self> {
        params.validate()?;
        let mut out = Self {
            bands,
            rows,
            keys: Vec::with_capacity(texts.len() * bands),
            kinds: Vec::with_capacity(texts.len()),
        };
        for chunk in texts.chunks(SIGN_CHUNK) {
            let part = Self::from_signatures(&signatures(chunk, params)?, bands, rows);
            out.keys.extend_from_slice(&part.keys);
            out.kinds.extend_from_slice(&part.kinds);
        }
        Ok(out)
    }

    /// Keys computed elsewhere (a row-major `kinds.len() × bands` matrix), e.g. read back from a
    /// sketch file.
    pub fn from_parts(
        bands: usize,
        rows: usize,
        keys: Vec<u64>,
        kinds: Vec<TextKind>,
    ) -> Result<Self> {
        if keys.len() != kinds.len() * bands {
            return Err(Error::config(format!(
                "{} band keys for {} texts of {bands} bands",
                keys.len(),
                kinds.len()
            )));
        }
        Ok(Self {
            bands,
            rows,
            keys,
            kinds,
        })
    }

    /// The row-major `len × bands` key matrix.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    pub fn bands(&self) -> usize {
        self.bands
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The `bands` keys of text `i`.
    pub fn row(&self, i: usize) -> &[u64] {
        &self.keys[i * self.bands..(i + 1) * self.bands]
    }

    pub fn kinds(&self) -> &[TextKind] {
        &self.kinds
    }

    pub fn kind(&self, i: usize) -> TextKind {
        self.kinds[i]
    }

    /// Whether text `i` has shingles (may enter LSH).
    pub fn is_indexable(&self, i: usize) -> bool {
        self.kinds[i] == TextKind::Normal
    }
}

/// How candidate pairs are drawn from a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PairMode {
    /// Each member with the bucket's lowest index.
    #[default]
    Star,
    /// Every pair of members.
    All,
}

/// Buckets of two or more texts, each an ascending list of text indices; identical buckets are
/// kept once, and buckets are in ascending lexicographic order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buckets {
    offsets: Vec<usize>,
    members: Vec<u32>,
}

impl Buckets {
    /// Buckets from their flat members and offsets (`offsets[0] = 0`, ascending, last =
    /// `members.len()`), e.g. decoded from a link job.
    pub fn from_parts(offsets: Vec<usize>, members: Vec<u32>) -> Result<Self> {
        let ok = offsets.first() == Some(&0)
            && offsets.last() == Some(&members.len())
            && offsets.windows(2).all(|w| w[0] <= w[1]);
        if !ok {
            return Err(Error::config("bucket offsets out of order"));
        }
        Ok(Self { offsets, members })
    }

    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> &[u32] {
        &self.members[self.offsets[i]..self.offsets[i + 1]]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u32]> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Candidate pairs (i, j), i < j, sorted and deduplicated.
    pub fn pairs(&self, mode: PairMode) -> Vec<(u32, u32)> {
        let mut pairs = Vec::new();
        for bucket in self.iter() {
            match mode {
                PairMode::Star => pairs.extend(bucket[1..].iter().map(|&m| (bucket[0], m))),
                PairMode::All => {
                    for (k, &a) in bucket.iter().enumerate() {
                        pairs.extend(bucket[k + 1..].iter().map(|&b| (a, b)));
                    }
                }
            }
        }
        pairs.par_sort_unstable();
        pairs.dedup();
        pairs
    }
}

/// Buckets of the indexable texts among `subset` (all texts when `None`), grouped by band key
/// and, when `labels` is given, by `labels[i]` too.
pub fn buckets(keys: &BandKeys, subset: Option<&[u32]>, labels: Option<&[u32]>) -> Buckets {
    let all: Vec<u32>;
    let subset = match subset {
        Some(s) => s,
        None => {
            all = (0..keys.len() as u32).collect();
            &all
        }
    };
    let members: Vec<u32> = subset
        .iter()
        .copied()
        .filter(|&i| keys.is_indexable(i as usize))
        .collect();
    let column = |band| Ok(BandColumn::Strided { keys, band });
    buckets_by_band(keys.bands(), &members, labels, true, column).expect("in-memory band keys")
}

/// One band's key of every record: a column of a [`BandKeys`] matrix, or a column read on its
/// own (out-of-core runs keep one file per band).
pub enum BandColumn<'a> {
    Strided { keys: &'a BandKeys, band: usize },
    Owned(Vec<u64>),
}

impl BandColumn<'_> {
    pub fn get(&self, i: usize) -> u64 {
        match self {
            Self::Strided { keys, band } => keys.row(i)[*band],
            Self::Owned(v) => v[i],
        }
    }
}

/// Buckets of `members` (indexable, ascending) over `bands` band columns, grouped by band key
/// and label. `parallel`: bands side by side (memory grows with the thread count) or one at a
/// time, each sorted in parallel (memory of one band: the out-of-core path).
pub fn buckets_by_band<'a>(
    bands: usize,
    members: &[u32],
    labels: Option<&[u32]>,
    parallel: bool,
    column: impl Fn(usize) -> Result<BandColumn<'a>> + Sync,
) -> Result<Buckets> {
    let one_band = |band: usize| -> Result<(Vec<u32>, Vec<usize>)> {
        let col = column(band)?;
        let mut keyed: Vec<(u32, u64, u32)> = members
            .iter()
            .map(|&i| (labels.map_or(0, |l| l[i as usize]), col.get(i as usize), i))
            .collect();
        drop(col);
        if parallel {
            keyed.sort_unstable();
        } else {
            keyed.par_sort_unstable();
        }
        let (mut flat, mut ends) = (Vec::new(), Vec::new());
        for run in keyed.chunk_by(|x, y| x.0 == y.0 && x.1 == y.1) {
            if run.len() > 1 {
                flat.extend(run.iter().map(|x| x.2));
                ends.push(flat.len());
            }
        }
        Ok((flat, ends))
    };
    let per_band: Vec<(Vec<u32>, Vec<usize>)> = if parallel {
        (0..bands)
            .into_par_iter()
            .map(one_band)
            .collect::<Result<_>>()?
    } else {
        (0..bands).map(one_band).collect::<Result<_>>()?
    };
    let mut groups: Vec<&[u32]> = per_band
        .iter()
        .flat_map(|(flat, ends)| {
            let mut start = 0;
            ends.iter().map(move |&end| {
                let g = &flat[start..end];
                start = end;
                g
            })
        })
        .collect();
    groups.par_sort_unstable();
    groups.dedup();
    let mut offsets = Vec::with_capacity(groups.len() + 1);
    offsets.push(0);
    let mut flat = Vec::with_capacity(groups.iter().map(|g| g.len()).sum());
    for g in &groups {
        flat.extend_from_slice(g);
        offsets.push(flat.len());
    }
    Ok(Buckets {
        offsets,
        members: flat,
    })
}

/// Candidate pairs of all indexable texts of `sigs`.
pub fn candidate_pairs(
    sigs: &Signatures,
    bands: usize,
    rows: usize,
    mode: PairMode,
) -> Vec<(u32, u32)> {
    buckets(&BandKeys::from_signatures(sigs, bands, rows), None, None).pairs(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (threshold, num_perm, bands, rows) from datasketch 2.0.0's `_optimal_param(t, n, 0.5, 0.5)`
    /// (scipy 1.17.1), thresholds 0.05..0.95 step 0.05.
    #[rustfmt::skip]
    const DATASKETCH: &[(f64, usize, usize, usize)] = &[
        (0.05, 16, 16, 1), (0.1, 16, 15, 1), (0.15, 16, 9, 1), (0.2, 16, 7, 1),
        (0.25, 16, 8, 2), (0.3, 16, 8, 2), (0.35, 16, 8, 2), (0.4, 16, 6, 2),
        (0.45, 16, 5, 3), (0.5, 16, 5, 3), (0.55, 16, 5, 3), (0.6, 16, 4, 4),
        (0.65, 16, 4, 4), (0.7, 16, 3, 5), (0.75, 16, 2, 6), (0.8, 16, 2, 8),
        (0.85, 16, 2, 8), (0.9, 16, 1, 15), (0.95, 16, 1, 16),
        (0.05, 64, 32, 1), (0.1, 64, 15, 1), (0.15, 64, 32, 2), (0.2, 64, 28, 2),
        (0.25, 64, 18, 2), (0.3, 64, 21, 3), (0.35, 64, 21, 3), (0.4, 64, 16, 4),
        (0.45, 64, 16, 4), (0.5, 64, 14, 4), (0.55, 64, 12, 5), (0.6, 64, 10, 6),
        (0.65, 64, 9, 7), (0.7, 64, 8, 8), (0.75, 64, 7, 9), (0.8, 64, 5, 11),
        (0.85, 64, 4, 15), (0.9, 64, 3, 21), (0.95, 64, 2, 32),
        (0.05, 128, 32, 1), (0.1, 128, 64, 2), (0.15, 128, 51, 2), (0.2, 128, 28, 2),
        (0.25, 128, 42, 3), (0.3, 128, 37, 3), (0.35, 128, 32, 4), (0.4, 128, 32, 4),
        (0.45, 128, 25, 5), (0.5, 128, 25, 5), (0.55, 128, 21, 6), (0.6, 128, 18, 7),
        (0.65, 128, 16, 8), (0.7, 128, 14, 9), (0.75, 128, 11, 11), (0.8, 128, 9, 13),
        (0.85, 128, 8, 16), (0.9, 128, 5, 25), (0.95, 128, 3, 42),
        (0.05, 256, 32, 1), (0.1, 256, 117, 2), (0.15, 256, 51, 2), (0.2, 256, 85, 3),
        (0.25, 256, 64, 3), (0.3, 256, 64, 4), (0.35, 256, 61, 4), (0.4, 256, 51, 5),
        (0.45, 256, 47, 5), (0.5, 256, 42, 6), (0.55, 256, 36, 7), (0.6, 256, 32, 8),
        (0.65, 256, 28, 9), (0.7, 256, 25, 10), (0.75, 256, 21, 12), (0.8, 256, 17, 15),
        (0.85, 256, 13, 19), (0.9, 256, 9, 28), (0.95, 256, 5, 51),
    ];

    #[test]
    fn optimal_params_match_datasketch() {
        let mismatches: Vec<_> = DATASKETCH
            .par_iter()
            .filter_map(|&(t, n, b, r)| {
                let got = optimal_params(t, n, 0.5, 0.5);
                (got != (b, r)).then_some((t, n, (b, r), got))
            })
            .collect();
        assert!(
            mismatches.is_empty(),
            "(t, n, datasketch, ours): {mismatches:?}"
        );
    }

    #[test]
    fn quadrature_is_accurate() {
        // ∫0^t 1-(1-s)^b ds = t - (1 - (1-t)^(b+1)) / (b+1) for r = 1
        for &(t, b) in &[(0.3f64, 7usize), (0.8, 50), (0.95, 128)] {
            let want = t - (1.0 - (1.0 - t).powi(b as i32 + 1)) / (b as f64 + 1.0);
            assert!((false_positive_probability(t, b, 1) - want).abs() < 1e-12);
        }
        // ∫t^1 (1 - s^r) ds = 1 - t - (1 - t^(r+1)) / (r+1) for b = 1
        for &(t, r) in &[(0.5f64, 3usize), (0.9, 40), (0.2, 256)] {
            let want = 1.0 - t - (1.0 - t.powi(r as i32 + 1)) / (r as f64 + 1.0);
            assert!((false_negative_probability(t, 1, r) - want).abs() < 1e-12);
        }
    }

    #[test]
    fn explicit_params_and_validation() {
        let w = (0.5, 0.5);
        for verify in [false, true] {
            let got = |b, r| resolve_params(0.8, 128, b, r, verify, w).unwrap();
            assert_eq!(got(Some(16), Some(8)), (16, 8));
            assert_eq!(got(Some(10), None), (10, 12));
            assert_eq!(got(None, Some(5)), (25, 5));
            assert!(resolve_params(0.8, 128, Some(20), Some(8), verify, w).is_err());
            assert!(resolve_params(0.8, 128, Some(0), None, verify, w).is_err());
            assert!(resolve_params(1.5, 128, None, None, verify, w).is_err());
            assert!(resolve_params(0.8, 0, None, None, verify, w).is_err());
        }
        // without verification: datasketch's weighted choice; with it: recall at the threshold
        assert_eq!(
            resolve_params(0.8, 128, None, None, false, w).unwrap(),
            (9, 13)
        );
        assert_eq!(
            resolve_params(0.8, 128, None, None, true, w).unwrap(),
            recall_params(0.8, 128, MIN_RECALL_AT_THRESHOLD)
        );
    }

    #[test]
    fn recall_params_reach_the_recall_at_the_threshold_with_the_least_false_positives() {
        for &(t, n) in &[(0.5, 64), (0.7, 128), (0.8, 128), (0.85, 256), (0.9, 128)] {
            let (b, r) = recall_params(t, n, MIN_RECALL_AT_THRESHOLD);
            assert!(b * r <= n);
            assert!(
                candidate_probability(t, b, r) >= MIN_RECALL_AT_THRESHOLD,
                "{t} {n}"
            );
            let fp = false_positive_probability(t, b, r);
            // every other banding that reaches the recall has at least this false-positive area
            for b2 in 1..=n {
                for r2 in 1..=n / b2 {
                    if candidate_probability(t, b2, r2) >= MIN_RECALL_AT_THRESHOLD {
                        assert!(false_positive_probability(t, b2, r2) >= fp - 1e-12);
                    }
                }
            }
        }
        // 0.8 at 128 permutations: 18 bands of 6 rows (the datasketch choice, 9×13 or 14×9,
        // finds 0.38 / 0.87 of the pairs at exactly 0.8)
        assert_eq!(recall_params(0.8, 128, MIN_RECALL_AT_THRESHOLD), (18, 6));
        assert!(candidate_probability(0.8, 14, 9) < 0.9);
        // unreachable (1 permutation cannot find 0.995 of pairs at 0.5): the closest
        assert_eq!(recall_params(0.5, 1, MIN_RECALL_AT_THRESHOLD), (1, 1));
    }

    #[test]
    fn buckets_group_equal_bands_and_respect_labels() {
        let texts = [
            "患者头痛发热咳嗽三天，伴有咽痛流涕，请问应该吃什么药比较好",
            "患者头痛发热咳嗽三天，伴有咽痛流涕，请问应该吃什么药比较好",
            "糖尿病患者的饮食需要注意哪些方面，能不能吃水果和甜食呢",
            "短",
            "短",
        ];
        let sigs = signatures(&texts, &MinHashParams::default()).unwrap();
        let keys = BandKeys::from_signatures(&sigs, 16, 8);
        assert_eq!(
            keys,
            BandKeys::compute(&texts, &MinHashParams::default(), 16, 8).unwrap()
        );
        let b = buckets(&keys, None, None);
        assert_eq!(b.len(), 1, "identical buckets collapse");
        assert_eq!(b.get(0), &[0, 1]);
        assert_eq!(candidate_pairs(&sigs, 16, 8, PairMode::All), vec![(0, 1)]);
        let split = buckets(&keys, None, Some(&[0, 1, 0, 0, 0]));
        assert!(split.is_empty(), "different labels never share a bucket");
        let sub = buckets(&keys, Some(&[1, 2]), None);
        assert!(sub.is_empty());
    }

    #[test]
    fn star_and_all_pairs() {
        let b = Buckets {
            offsets: vec![0, 3, 5],
            members: vec![1, 4, 7, 4, 7],
        };
        assert_eq!(b.pairs(PairMode::Star), vec![(1, 4), (1, 7), (4, 7)]);
        assert_eq!(b.pairs(PairMode::All), vec![(1, 4), (1, 7), (4, 7)]);
        let c = Buckets {
            offsets: vec![0, 3],
            members: vec![1, 4, 7],
        };
        assert_eq!(c.pairs(PairMode::Star), vec![(1, 4), (1, 7)]);
    }
}
