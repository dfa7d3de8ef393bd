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

use rayon::prelude::*;

use super::cluster::{Preference, UnionFind};
use super::lsh::Buckets;
use super::minhash::{jaccard, jaccard_at_least, signatures, MinHashParams};
use super::shingle::{ShingleParams, Shingler};
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

/// Shingle sets of the records in buckets, folded to 32 bits (as the signatures are: two
/// distinct shingles of a pair collide with probability ~2^-32, far below what moves a Jaccard
/// across a threshold), sorted and deduplicated, in flat chunks: 4 bytes a shingle, no
/// allocation per record.
pub(super) struct SetStore {
    chunks: Vec<(Vec<u32>, Vec<u32>)>,
}

const SET_CHUNK: usize = 4096;

impl SetStore {
    pub(super) fn build(texts: &[&str], members: &[u32], params: &ShingleParams) -> Self {
        let chunks = members
            .par_chunks(SET_CHUNK)
            .map_init(
                || (Shingler::new(*params), Vec::new(), Vec::new()),
                |(sh, hashes, set), chunk| {
                    let mut flat = Vec::new();
                    let mut ends = Vec::with_capacity(chunk.len());
                    for &i in chunk {
                        sh.shingle_unsorted(texts[i as usize], hashes);
                        set.clear();
                        set.extend(hashes.iter().map(|&h| h as u32));
                        set.sort_unstable();
                        set.dedup();
                        flat.extend_from_slice(set);
                        ends.push(flat.len() as u32);
                    }
                    flat.shrink_to_fit();
                    (flat, ends)
                },
            )
            .collect();
        Self { chunks }
    }

    /// The set of `members[k]`.
    pub(super) fn get(&self, k: usize) -> &[u32] {
        let (flat, ends) = &self.chunks[k / SET_CHUNK];
        let j = k % SET_CHUNK;
        let start = if j == 0 { 0 } else { ends[j - 1] as usize };
        &flat[start..ends[j] as usize]
    }
}

/// Sorted, deduplicated members of all buckets.
fn involved(buckets: &Buckets) -> Vec<u32> {
    let mut all: Vec<u32> = buckets.iter().flatten().copied().collect();
    all.par_sort_unstable();
    all.dedup();
    all
}

/// Linking by the signature estimate (signatures recomputed for the records in buckets only).
pub(super) fn link_estimated(
    texts: &[&str],
    buckets: &Buckets,
    params: &MinHashParams,
    threshold: f64,
    pref: &Preference<'_>,
) -> Result<(Vec<Link>, LinkStats)> {
    let members = involved(buckets);
    let member_texts: Vec<&str> = members.iter().map(|&i| texts[i as usize]).collect();
    let sigs = signatures(&member_texts, params)?;
    let slot = |i: u32| members.binary_search(&i).expect("member of a bucket");
    let sim = |a: u32, b: u32| sigs.estimate(slot(a), slot(b));
    let similar = |a: u32, b: u32| sim(a, b) >= threshold;
    Ok(link(&members, buckets, pref, similar, sim))
}

/// Linking by true Jaccard on the shingle sets.
pub(super) fn link_verified(
    texts: &[&str],
    buckets: &Buckets,
    shingle: &ShingleParams,
    threshold: f64,
    pref: &Preference<'_>,
) -> (Vec<Link>, LinkStats) {
    let members = involved(buckets);
    let sets = SetStore::build(texts, &members, shingle);
    let set = |i: u32| sets.get(members.binary_search(&i).expect("member of a bucket"));
    let sim = |a: u32, b: u32| jaccard(set(a), set(b));
    // most candidates fall short: decided with an early exit, the value taken for links only
    let similar = |a: u32, b: u32| jaccard_at_least(set(a), set(b), threshold);
    link(&members, buckets, pref, similar, sim)
}

/// Leaders, then centers (see the module comment); `members` are all records in `buckets`.
/// `similar(a, b)`: similarity at least the threshold, as `sim(a, b) >= threshold` decides it.
fn link(
    members: &[u32],
    buckets: &Buckets,
    pref: &Preference<'_>,
    similar: impl Fn(u32, u32) -> bool + Sync,
    sim: impl Fn(u32, u32) -> f64 + Sync,
) -> (Vec<Link>, LinkStats) {
    // 1. Linking by bucket leaders.
    let per_bucket: Vec<(Vec<(u32, u32)>, usize)> = (0..buckets.len())
        .into_par_iter()
        .map(|b| {
            let bucket = buckets.get(b);
            let (mut edges, mut checks) = (Vec::new(), 0usize);
            let mut leaders: Vec<u32> = vec![bucket[0]];
            for &m in &bucket[1..] {
                let mut linked = false;
                for &l in &leaders {
                    checks += 1;
                    if similar(m, l) {
                        edges.push((l, m));
                        linked = true;
                        break;
                    }
                }
                if !linked && leaders.len() < MAX_LEADERS {
                    leaders.push(m);
                }
            }
            (edges, checks)
        })
        .collect();
    let mut stats = LinkStats::default();
    let mut edges = Vec::new();
    for (e, c) in per_bucket {
        edges.extend(e);
        stats.jaccard_checks += c;
    }
    edges.par_sort_unstable();
    edges.dedup();
    stats.edges = edges.len();

    let n = members.last().map_or(0, |&m| m as usize + 1);
    let mut uf = UnionFind::new(n);
    for &(a, b) in &edges {
        uf.union(a, b);
    }
    let comps = components(&mut uf, members);

    // 2. Greedy split of each component around centers.
    let per_comp: Vec<(Vec<Link>, usize)> = comps
        .into_par_iter()
        .map(|mut comp| {
            pref.sort(&mut comp);
            let (mut links, mut checks) = (Vec::new(), 0usize);
            let mut centers: Vec<u32> = Vec::new();
            for &m in &comp {
                let mut joined = false;
                for &c in centers.iter().take(MAX_CENTERS) {
                    checks += 1;
                    if similar(m, c) {
                        links.push((m, c, sim(m, c)));
                        joined = true;
                        break;
                    }
                }
                if !joined {
                    centers.push(m);
                }
            }
            (links, checks)
        })
        .collect();
    let mut links = Vec::new();
    for (l, c) in per_comp {
        links.extend(l);
        stats.jaccard_checks += c;
    }
    (links, stats)
}
