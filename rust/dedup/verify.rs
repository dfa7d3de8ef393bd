//! Linking LSH buckets into near-duplicate groups, with or without exact verification.
//!
//! Without verification, every bucket member is linked to the bucket's lowest index (a star:
//! the same connected components as all pairs, at linear cost), union-find makes clusters, the
//! preferred member of each cluster is kept and every other member is reported against it with
//! the signature-estimated Jaccard (which chaining can leave below the threshold).
//!
//! With verification, only pairs whose true Jaccard on shingle sets is ≥ threshold link, and the
//! guarantee is: *every removed record has true Jaccard ≥ threshold with the record it is
//! reported against, and that record is kept.* Two steps:
//!
//! 1. Linking (blocking). A star is no longer enough (a non-matching lowest member would cut the
//!    others apart), and all pairs are quadratic in giant buckets. So each bucket is scanned in
//!    index order keeping a list of *leaders*: a member is compared with the leaders in order and
//!    linked to the first it matches; one matching none becomes a new leader (at most
//!    `MAX_LEADERS`; past that it stays unlinked in that bucket). A true pair can thus miss its
//!    link in one bucket only when one of them matched an earlier leader instead (it is then in
//!    that leader's component, and the pair usually meets alone in another band: a pair at
//!    J ≥ 0.85 shares most of its bands), or when the bucket has more than `MAX_LEADERS`
//!    mutually dissimilar members.
//! 2. Grouping. Verified links make union-find components, which may chain (A~B, B~C, A≁C). Each
//!    component is split greedily: members best-first by keep policy; each joins the first
//!    *center* it matches (true Jaccard ≥ threshold, at most `MAX_CENTERS` centers tried),
//!    else becomes a center itself and is kept. Chained members too far from every center are
//!    kept — that is the recall given up for the guarantee above.

use rayon::prelude::*;

use super::cluster::{Preference, UnionFind};
use super::lsh::Buckets;
use super::minhash::{jaccard, Signatures};
use super::shingle::{ShingleParams, Shingler};

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

/// Sorted, deduplicated members of all buckets.
fn involved(buckets: &Buckets) -> Vec<u32> {
    let mut all: Vec<u32> = buckets.iter().flatten().copied().collect();
    all.par_sort_unstable();
    all.dedup();
    all
}

/// Unverified linking: star edges, union-find, keeper per cluster, estimated similarity.
pub(super) fn link_unverified(
    n: usize,
    buckets: &Buckets,
    sigs: &Signatures,
    pref: &Preference<'_>,
) -> (Vec<Link>, LinkStats) {
    let mut uf = UnionFind::new(n);
    let mut stats = LinkStats::default();
    for bucket in buckets.iter() {
        for &m in &bucket[1..] {
            stats.edges += usize::from(uf.union(bucket[0], m));
        }
    }
    let comps = components(&mut uf, &involved(buckets));
    let links = comps
        .par_iter()
        .flat_map_iter(|comp| {
            let keeper = pref.best(comp);
            comp.iter()
                .filter(move |&&m| m != keeper)
                .map(move |&m| (m, keeper, sigs.estimate(m as usize, keeper as usize)))
        })
        .collect();
    (links, stats)
}

/// Verified linking (see the module comment).
pub(super) fn link_verified(
    texts: &[&str],
    buckets: &Buckets,
    shingle: &ShingleParams,
    threshold: f64,
    pref: &Preference<'_>,
) -> (Vec<Link>, LinkStats) {
    let members = involved(buckets);
    // Shingle sets of the involved records only; `slot[i]` is i's position in `members`.
    let sets: Vec<Vec<u64>> = members
        .par_iter()
        .map_init(
            || Shingler::new(*shingle),
            |sh, &i| {
                let mut out = Vec::new();
                sh.shingle(texts[i as usize], &mut out);
                out
            },
        )
        .collect();
    let set = |i: u32| -> &[u64] {
        let k = members.binary_search(&i).expect("member of a bucket");
        &sets[k]
    };

    // 1. Linking by bucket leaders.
    let per_bucket: Vec<(Vec<(u32, u32)>, usize)> = (0..buckets.len())
        .into_par_iter()
        .map(|b| {
            let bucket = buckets.get(b);
            let (mut edges, mut checks) = (Vec::new(), 0usize);
            let mut leaders: Vec<(u32, &[u64])> = vec![(bucket[0], set(bucket[0]))];
            for &m in &bucket[1..] {
                let sm = set(m);
                let mut linked = false;
                for &(l, sl) in &leaders {
                    checks += 1;
                    if jaccard(sm, sl) >= threshold {
                        edges.push((l, m));
                        linked = true;
                        break;
                    }
                }
                if !linked && leaders.len() < MAX_LEADERS {
                    leaders.push((m, sm));
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
    let comps = components(&mut uf, &members);

    // 2. Greedy split of each component around centers.
    let per_comp: Vec<(Vec<Link>, usize)> = comps
        .into_par_iter()
        .map(|mut comp| {
            pref.sort(&mut comp);
            let (mut links, mut checks) = (Vec::new(), 0usize);
            let mut centers: Vec<(u32, &[u64])> = Vec::new();
            for &m in &comp {
                let sm = set(m);
                let mut joined = false;
                for &(c, sc) in centers.iter().take(MAX_CENTERS) {
                    checks += 1;
                    let j = jaccard(sm, sc);
                    if j >= threshold {
                        links.push((m, c, j));
                        joined = true;
                        break;
                    }
                }
                if !joined {
                    centers.push((m, sm));
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
