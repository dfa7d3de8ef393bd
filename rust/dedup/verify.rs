//! Linking LSH buckets into near-duplicate groups by a pairwise similarity: the true Jaccard of
//! the shingle sets (verified, the default) or the signature estimate (`verify = false`, no
//! shingle sets held; its errors are the estimate's, ~0.035 at J = 0.8 with 128 permutations).
//!
//! Guarantee with verification: *every removed record has true Jaccard ≥ threshold with the
//! record it is reported against, and that record is kept* (with the estimate, the same holds
//! for the estimated similarity). Two steps, whichever the similarity:
//!
//! 1. Linking (blocking). Linking whole buckets would chain unrelated texts through shared bands,
//!    and all pairs are quadratic in giant buckets. So each bucket is scanned in index order
//!    keeping a list of *leaders*: a member is compared with the leaders in order and linked to
//!    the first it matches; one matching none becomes a new leader (at most `MAX_LEADERS`; past
//!    that it stays unlinked in that bucket). A true pair can thus miss its link in one bucket
//!    only when one of them matched an earlier leader instead (it is then in that leader's
//!    component, and the pair usually meets alone in another band: a pair at J ≥ 0.85 shares
//!    most of its bands), or when the bucket has more than `MAX_LEADERS` mutually dissimilar
//!    members.
//! 2. Grouping. Links make union-find components, which may chain (A~B, B~C, A≁C). Each
//!    component is split greedily: members best-first by keep policy; each joins the first
//!    *center* it matches (similarity ≥ threshold, at most `MAX_CENTERS` centers tried), else
//!    becomes a center itself and is kept. Chained members too far from every center are kept —
//!    that is the recall given up for the guarantee above.

use std::borrow::Cow;
use std::path::Path;

use rayon::prelude::*;

use super::cluster::{Preference, UnionFind};
use super::lsh::Buckets;
use super::minhash::{
    estimate_jaccard, jaccard, jaccard_at_least, signatures, sizes_may_reach, MinHashParams,
};
use super::shingle::{ShingleParams, Shingler};
use super::spill::RowFile;
use crate::error::Result;

/// Leaders kept per bucket when verifying.
pub const MAX_LEADERS: usize = 32;
/// Centers tried per member when splitting a verified component.
pub const MAX_CENTERS: usize = 64;

/// A removed record, the kept record it is reported against, and their similarity.
pub(super) type Link = (u32, u32, f64);

/// Counters of the linking work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct LinkStats {
    pub edges: usize,
    pub jaccard_checks: usize,
}

/// The records of `members` grouped by root of `uf`: components with at least two members, each
/// ascending, ordered by lowest member.
fn components(uf: &mut UnionFind, members: &[u32]) -> Vec<Vec<u32>> {
    let mut by_root: Vec<(u32, u32)> = members.iter().map(|&m| (uf.find(m), m)).collect();
    by_root.sort_unstable();
    let mut comps: Vec<Vec<u32>> = by_root
        .chunk_by(|x, y| x.0 == y.0)
        .filter(|run| run.len() > 1)
        .map(|run| run.iter().map(|x| x.1).collect())
        .collect();
    comps.sort_unstable_by_key(|c| c[0]);
    comps
}

/// What a row of a [`RowStore`] holds, and so which similarity links two records.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rows<'p> {
    /// Shingle sets folded to 32 bits (as the signatures are: two distinct shingles of a pair
    /// collide with probability ~2^-32, far below what moves a Jaccard across a threshold),
    /// sorted and deduplicated: true Jaccard.
    Sets(&'p ShingleParams),
    /// MinHash signatures: the estimate.
    Signatures(&'p MinHashParams),
}

impl Rows<'_> {
    /// The rows of `texts`, flat, with each row's end.
    fn compute(&self, texts: &[Cow<'_, str>]) -> Result<(Vec<u32>, Vec<u64>)> {
        match *self {
            Rows::Sets(params) => {
                let (mut sh, mut hashes, mut set) =
                    (Shingler::new(*params), Vec::new(), Vec::new());
                let (mut flat, mut ends) = (Vec::new(), Vec::with_capacity(texts.len()));
                for text in texts {
                    sh.shingle_unsorted(text, &mut hashes);
                    set.clear();
                    set.extend(hashes.iter().map(|&h| h as u32));
                    set.sort_unstable();
                    set.dedup();
                    flat.extend_from_slice(&set);
                    ends.push(flat.len() as u64);
                }
                Ok((flat, ends))
            }
            Rows::Signatures(params) => {
                let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
                let sigs = signatures(&refs, params)?;
                let k = sigs.num_perm() as u64;
                let ends = (1..=texts.len() as u64).map(|i| i * k).collect();
                Ok((sigs.into_parts().1, ends))
            }
        }
    }

    /// Whether rows of these lengths may reach `threshold` (false: `at_least` is false too, and
    /// the rows need not be read).
    fn may_reach(&self, a: usize, b: usize, threshold: f64) -> bool {
        match self {
            Rows::Sets(_) => sizes_may_reach(a, b, threshold),
            Rows::Signatures(_) => true,
        }
    }

    fn at_least(&self, a: &[u32], b: &[u32], threshold: f64) -> bool {
        match self {
            // most candidates fall short: decided with an early exit
            Rows::Sets(_) => jaccard_at_least(a, b, threshold),
            Rows::Signatures(_) => estimate_jaccard(a, b) >= threshold,
        }
    }

    fn similarity(&self, a: &[u32], b: &[u32]) -> f64 {
        match self {
            Rows::Sets(_) => jaccard(a, b),
            Rows::Signatures(_) => estimate_jaccard(a, b),
        }
    }
}

/// Rows of the records in buckets (`members`, ascending), in flat chunks (no allocation per
/// record), held in memory or written to a file and read back by position (out-of-core).
pub(super) struct RowStore {
    members: Vec<u32>,
    place: Place,
}

enum Place {
    Memory(Vec<(Vec<u32>, Vec<u64>)>),
    /// The rows file and each row's end, in u32 units.
    Disk(RowFile, Vec<u64>),
}

/// Records whose rows are computed at a time.
const ROW_CHUNK: usize = 4096;
/// Chunks computed side by side before an out-of-core store writes them.
const CHUNKS_PER_WRITE: usize = 16;

impl RowStore {
    /// Rows of `members` (ascending), their texts fetched by `texts`; written under `spill`
    /// when given, else held in memory.
    pub(super) fn build<'t>(
        texts: impl Fn(&[u32]) -> Result<Vec<Cow<'t, str>>> + Sync,
        spill: Option<&Path>,
        members: Vec<u32>,
        rows: Rows<'_>,
    ) -> Result<Self> {
        let compute = |chunk: &[u32]| rows.compute(&texts(chunk)?);
        let place = match spill {
            None => Place::Memory(
                members
                    .par_chunks(ROW_CHUNK)
                    .map(|c| {
                        let (mut flat, ends) = compute(c)?;
                        flat.shrink_to_fit();
                        Ok((flat, ends))
                    })
                    .collect::<Result<_>>()?,
            ),
            Some(dir) => {
                let mut file = RowFile::create(&dir.join("rows.bin"))?;
                let mut ends = Vec::with_capacity(members.len());
                for group in members.chunks(ROW_CHUNK * CHUNKS_PER_WRITE) {
                    let parts: Vec<(Vec<u32>, Vec<u64>)> = group
                        .par_chunks(ROW_CHUNK)
                        .map(compute)
                        .collect::<Result<_>>()?;
                    for (flat, part_ends) in parts {
                        let base = file.len_u32();
                        file.append(&flat)?;
                        ends.extend(part_ends.iter().map(|e| base + e));
                    }
                }
                Place::Disk(file.finish()?, ends)
            }
        };
        Ok(Self { members, place })
    }

    fn slot(&self, id: u32) -> usize {
        self.members.binary_search(&id).expect("member of a bucket")
    }

    /// The row of `id` (a member): borrowed from memory, or read from the file.
    fn row(&self, id: u32) -> Result<Cow<'_, [u32]>> {
        let k = self.slot(id);
        match &self.place {
            Place::Memory(chunks) => {
                let (flat, ends) = &chunks[k / ROW_CHUNK];
                let j = k % ROW_CHUNK;
                let start = if j == 0 { 0 } else { ends[j - 1] as usize };
                Ok(Cow::Borrowed(&flat[start..ends[j] as usize]))
            }
            Place::Disk(file, ends) => {
                let start = if k == 0 { 0 } else { ends[k - 1] };
                Ok(Cow::Owned(file.read(start, ends[k])?))
            }
        }
    }

    /// The length of the row of `id` (a member), without reading it.
    fn row_len(&self, id: u32) -> usize {
        let k = self.slot(id);
        let end_at = |ends: &[u64], j: usize| {
            let start = if j == 0 { 0 } else { ends[j - 1] };
            (ends[j] - start) as usize
        };
        match &self.place {
            Place::Memory(chunks) => end_at(&chunks[k / ROW_CHUNK].1, k % ROW_CHUNK),
            Place::Disk(_, ends) => end_at(ends, k),
        }
    }

    /// The rows of `ids` (members), each read when first asked for.
    fn lazy<'s>(&'s self, ids: &[u32]) -> LazyRows<'s> {
        LazyRows {
            store: self,
            ids: ids.to_vec(),
            lens: ids.iter().map(|&i| self.row_len(i)).collect(),
            rows: vec![None; ids.len()],
        }
    }
}

/// The rows of a bucket or component, read on demand: an out-of-core run reads only the rows
/// that a comparison needs (the sizes rule most candidates out first).
struct LazyRows<'s> {
    store: &'s RowStore,
    ids: Vec<u32>,
    lens: Vec<usize>,
    rows: Vec<Option<Cow<'s, [u32]>>>,
}

impl LazyRows<'_> {
    /// Whether positions `a` and `b` are similar at `threshold` (a check).
    fn similar(&mut self, rows: Rows<'_>, a: usize, b: usize, threshold: f64) -> Result<bool> {
        if !rows.may_reach(self.lens[a], self.lens[b], threshold) {
            return Ok(false);
        }
        self.load(a)?;
        self.load(b)?;
        let (ra, rb) = (self.rows[a].as_deref(), self.rows[b].as_deref());
        Ok(rows.at_least(ra.expect("loaded"), rb.expect("loaded"), threshold))
    }

    /// The similarity of positions `a` and `b` (both loaded by a `similar` that was true).
    fn similarity(&self, rows: Rows<'_>, a: usize, b: usize) -> f64 {
        let (ra, rb) = (self.rows[a].as_deref(), self.rows[b].as_deref());
        rows.similarity(ra.expect("loaded"), rb.expect("loaded"))
    }

    fn load(&mut self, k: usize) -> Result<()> {
        if self.rows[k].is_none() {
            self.rows[k] = Some(self.store.row(self.ids[k])?);
        }
        Ok(())
    }
}

/// Sorted, deduplicated members of all buckets.
pub(super) fn involved(buckets: &Buckets) -> Vec<u32> {
    let mut all: Vec<u32> = buckets.iter().flatten().copied().collect();
    all.par_sort_unstable();
    all.dedup();
    all
}

/// Leaders, then centers (see the module comment), on the rows of `store` (every record of
/// `buckets`) compared as `rows` says, at `threshold`.
pub(super) fn link(
    store: &RowStore,
    buckets: &Buckets,
    rows: Rows<'_>,
    threshold: f64,
    pref: &Preference<'_>,
) -> Result<(Vec<Link>, LinkStats)> {
    let (edges, checks) = bucket_edges(store, buckets, rows, threshold)?;
    let comps = edge_components(&edges);
    let (links, split_checks) = split(store, comps, rows, threshold, pref)?;
    let stats = LinkStats {
        edges: edges.len(),
        jaccard_checks: checks + split_checks,
    };
    Ok((links, stats))
}

/// Step 1: the verified edges of each bucket's leader scan (sorted, deduplicated) and the
/// checks made. Buckets are independent: any share of them can be linked anywhere (a Ray
/// worker) and the edges merged.
pub(super) fn bucket_edges(
    store: &RowStore,
    buckets: &Buckets,
    rows: Rows<'_>,
    threshold: f64,
) -> Result<(Vec<(u32, u32)>, usize)> {
    let per_bucket: Vec<(Vec<(u32, u32)>, usize)> = (0..buckets.len())
        .into_par_iter()
        .map(|b| {
            let bucket = buckets.get(b);
            let mut r = store.lazy(bucket);
            let (mut edges, mut checks) = (Vec::new(), 0usize);
            let mut leaders: Vec<usize> = vec![0];
            for m in 1..bucket.len() {
                let mut linked = false;
                for &l in &leaders {
                    checks += 1;
                    if r.similar(rows, m, l, threshold)? {
                        edges.push((bucket[l], bucket[m]));
                        linked = true;
                        break;
                    }
                }
                if !linked && leaders.len() < MAX_LEADERS {
                    leaders.push(m);
                }
            }
            Ok((edges, checks))
        })
        .collect::<Result<_>>()?;
    let mut checks = 0;
    let mut edges = Vec::new();
    for (e, c) in per_bucket {
        edges.extend(e);
        checks += c;
    }
    edges.par_sort_unstable();
    edges.dedup();
    Ok((edges, checks))
}

/// The union-find components of `edges` with two or more members, each ascending, ordered by
/// lowest member.
pub(super) fn edge_components(edges: &[(u32, u32)]) -> Vec<Vec<u32>> {
    let mut members: Vec<u32> = edges.iter().flat_map(|&(a, b)| [a, b]).collect();
    members.par_sort_unstable();
    members.dedup();
    let n = members.last().map_or(0, |&m| m as usize + 1);
    let mut uf = UnionFind::new(n);
    for &(a, b) in edges {
        uf.union(a, b);
    }
    components(&mut uf, &members)
}

/// Step 2: the greedy split of each component around centers (positions in the component
/// sorted by keep preference); `store` holds the rows of every component member. Returns the
/// links and the checks made.
pub(super) fn split(
    store: &RowStore,
    comps: Vec<Vec<u32>>,
    rows: Rows<'_>,
    threshold: f64,
    pref: &Preference<'_>,
) -> Result<(Vec<Link>, usize)> {
    let per_comp: Vec<(Vec<Link>, usize)> = comps
        .into_par_iter()
        .map(|mut comp| {
            pref.sort(&mut comp);
            let mut r = store.lazy(&comp);
            let (mut links, mut checks) = (Vec::new(), 0usize);
            let mut centers: Vec<usize> = Vec::new();
            for m in 0..comp.len() {
                let mut joined = false;
                for &c in centers.iter().take(MAX_CENTERS) {
                    checks += 1;
                    if r.similar(rows, m, c, threshold)? {
                        links.push((comp[m], comp[c], r.similarity(rows, m, c)));
                        joined = true;
                        break;
                    }
                }
                if !joined {
                    centers.push(m);
                }
            }
            Ok((links, checks))
        })
        .collect::<Result<_>>()?;
    let mut links = Vec::new();
    let mut checks = 0;
    for (l, c) in per_comp {
        links.extend(l);
        checks += c;
    }
    Ok((links, checks))
}
