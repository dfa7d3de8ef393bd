//! Grouping records for a train/val split: the connected components of the near-duplicate graph
//! (pairs at Jaccard ≥ threshold) joined with the conversations (records of one file sharing an
//! id), so that a split that moves whole groups never puts two near-duplicates, or two turns of
//! one conversation, on different sides.
//!
//! Unlike [`super::dedup()`], which splits chained components around centres so that every
//! removed record is close to the record it is reported against, grouping takes the transitive
//! closure: A~B and B~C put A, B and C in one group. Candidates come from LSH banded for recall
//! at the threshold ([`recall_params`]: the fewest bands whose chance of missing a pair at
//! exactly the threshold is at most [`MAX_MISS`]) and are verified by true Jaccard on the
//! shingle sets; inside a bucket of up to [`ALL_PAIRS_MAX`] members every pair not already
//! joined there is checked, so a pair that shares such a bucket is never missed (larger buckets
//! are linked through leaders, see [`link_bucket`]). Identical texts are joined without LSH; texts too
//! short to shingle match only identical ones; empty texts join nothing.
//!
//! Deterministic: the groups depend only on the pairs found, which depend only on the texts
//! and the parameters, never on the thread count; ids are numbered by lowest member.

use std::borrow::Cow;
use std::path::Path;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde_json::Value;

use super::cluster::UnionFind;
use super::exact;
use super::files::{record_texts, SourceFile, TextArena};
use super::lsh::{self, BandKeys};
use super::minhash::jaccard_at_least;
use super::verify::{involved, RowStore, Rows};
use super::{DedupConfig, TextKind};
use crate::error::{Error, Progress, Result};
use crate::io::{OnError, ReaderOptions, RecordReader};

/// Largest chance, at exactly the threshold, that a pair shares no LSH bucket.
pub const MAX_MISS: f64 = 1e-4;

/// Buckets up to this size are linked pair by pair (every pair not already joined there);
/// larger ones, which hold mostly texts sharing common passages, by leaders (below).
pub const ALL_PAIRS_MAX: usize = 64;
/// Leaders of a large bucket: each member is compared with them and joined to every one it
/// matches; a member matching none becomes a leader while there are fewer than this.
pub const LEADERS: usize = 64;

/// (bands, rows) for recall at `threshold` with `num_perm` values per signature: the most rows
/// per band (fewest false candidates) whose miss probability `(1 - t^rows)^bands` at
/// `t = threshold` is at most [`MAX_MISS`]; one row per band when none is.
pub fn recall_params(threshold: f64, num_perm: usize) -> (usize, usize) {
    let mut best = (num_perm, 1);
    for rows in 2..=num_perm {
        let bands = num_perm / rows;
        let miss = (1.0 - threshold.powi(rows as i32)).powi(bands as i32);
        if miss > MAX_MISS {
            break;
        }
        best = (bands, rows);
    }
    best
}

/// The groups of a set of records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    /// Group id per record, numbered in order of each group's lowest member.
    pub group: Vec<u32>,
    /// Records per group id.
    pub sizes: Vec<u32>,
    /// Verified near-duplicate pairs found (each joins two records, whether or not they were
    /// already in one group).
    pub near_links: u64,
    /// Records joined to an earlier record of identical text.
    pub exact_links: u64,
    /// Records joined to an earlier record of the same conversation.
    pub conversation_links: u64,
    pub jaccard_checks: u64,
    pub bands: usize,
    pub rows: usize,
}

/// Groups of `texts`: near-duplicates at `cfg.threshold` (shingles, sketch and seed of `cfg`;
/// its keep policy and `verify` do not apply: pairs are always verified), joined with
/// `same_as[i]` (an earlier record `i` belongs with, e.g. the first turn of its conversation;
/// `None`: all their own). `cfg.bands`/`cfg.rows` override [`recall_params`].
pub fn near_duplicate_groups(
    texts: &[&str],
    same_as: Option<&[u32]>,
    cfg: &DedupConfig,
) -> Result<Groups> {
    cfg.minhash_params().validate()?;
    if !(cfg.threshold > 0.0 && cfg.threshold <= 1.0) {
        return Err(Error::config(format!(
            "threshold must lie in (0, 1], got {}",
            cfg.threshold
        )));
    }
    let (bands, rows) = match (cfg.bands, cfg.rows) {
        (None, None) => recall_params(cfg.threshold, cfg.num_perm),
        _ => cfg.lsh_params()?,
    };
    let n = texts.len();
    if n >= u32::MAX as usize {
        return Err(Error::config("at most 2^32 - 2 records per grouping"));
    }
    let mut uf = UnionFind::new(n);
    let mut out = Groups {
        bands,
        rows,
        ..Groups::default()
    };
    if let Some(same) = same_as {
        if same.len() != n {
            return Err(Error::config(format!(
                "{} links for {n} records",
                same.len()
            )));
        }
        for (i, &j) in same.iter().enumerate() {
            if j as usize != i && uf.union(i as u32, j) {
                out.conversation_links += 1;
            }
        }
    }

    let keys = BandKeys::compute(texts, &cfg.minhash_params(), bands, rows)?;
    let nonempty: Vec<u32> = (0..n as u32)
        .filter(|&i| keys.kind(i as usize) != TextKind::Empty)
        .collect();
    let hashes = exact::key_hashes(texts);
    let firsts = exact::exact_duplicates_among(texts, &hashes, &nonempty, None);
    let mut reps = Vec::with_capacity(nonempty.len());
    for (&i, first) in nonempty.iter().zip(&firsts) {
        match first {
            Some(f) => {
                uf.union(i, *f);
                out.exact_links += 1;
            }
            None => reps.push(i),
        }
    }

    let buckets = lsh::buckets(&keys, Some(&reps), None);
    let members = involved(&buckets);
    let params = cfg.shingle_params();
    let borrowed = |ids: &[u32]| {
        Ok(ids
            .iter()
            .map(|&i| Cow::Borrowed(texts[i as usize]))
            .collect())
    };
    let sets = RowStore::build(borrowed, None, members, Rows::Sets(&params))?;
    let threshold = cfg.threshold;
    let per_bucket: Vec<(Vec<(u32, u32)>, u64)> = (0..buckets.len())
        .into_par_iter()
        .map(|b| {
            let bucket = buckets.get(b);
            // Each member's set looked up once per bucket, not once per pair.
            let local = sets.gather(bucket).expect("rows held in memory");
            let (edges, checks) = link_bucket(bucket.len(), |x, y| {
                jaccard_at_least(&local[x], &local[y], threshold)
            });
            let edges = edges
                .into_iter()
                .map(|(x, y)| (bucket[x], bucket[y]))
                .collect();
            (edges, checks)
        })
        .collect();
    let mut edges = Vec::new();
    for (e, c) in per_bucket {
        edges.extend(e);
        out.jaccard_checks += c;
    }
    edges.par_sort_unstable();
    edges.dedup();
    out.near_links = edges.len() as u64;
    for &(a, b) in &edges {
        uf.union(a, b);
    }
    out.group = uf.labels();
    out.sizes = group_sizes(&out.group);
    Ok(out)
}

/// [`near_duplicate_groups`] over the records of `inputs` (concatenated in order): the text
/// of a record is its `fields` joined by newlines as `dedup` reads it (missing fields left
/// out); records of one file with the same `id_field` value (a string or number, not null)
/// are one conversation. `cfg` `None`: conversations only. Every record of every file is
/// grouped: a record that cannot be read is an error naming its file and line.
pub fn group_files(
    inputs: &[SourceFile],
    fields: &[String],
    id_field: Option<&str>,
    cfg: Option<&DedupConfig>,
    reader: &ReaderOptions,
    progress: Progress<'_>,
) -> Result<Groups> {
    let mut arena = TextArena::default();
    let mut same_as: Vec<u32> = Vec::new();
    let total: u64 = inputs.iter().map(|s| file_len(&s.path)).sum();
    let mut done = 0u64;
    let options = ReaderOptions {
        on_error: OnError::Raise,
        ..reader.clone()
    };
    for src in inputs {
        let mut reader = RecordReader::open(&src.path, options.clone())?;
        let mut first_of_id: FxHashMap<String, u32> = FxHashMap::default();
        let before = done;
        while let Some(batch) = reader.next_batch()? {
            let texts = record_texts(&batch.records, Some(fields));
            for (text, record) in texts.iter().zip(&batch.records) {
                let i = arena.push(text);
                let id = id_field.and_then(|f| match record.get(f) {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Null) | None => None,
                    Some(other) => Some(other.to_string()),
                });
                same_as.push(match id {
                    Some(id) => *first_of_id.entry(id).or_insert(i),
                    None => i,
                });
            }
            done = before + reader.bytes_read();
            progress("read", done, total)?;
        }
    }
    let texts = arena.texts();
    progress("group", 0, texts.len() as u64)?;
    let groups = match cfg {
        Some(cfg) => near_duplicate_groups(&texts, Some(&same_as), cfg)?,
        None => conversation_groups(&same_as),
    };
    progress("group", texts.len() as u64, texts.len() as u64)?;
    Ok(groups)
}

/// The near-duplicate pairs (edges, as positions in the bucket) of a bucket of `len` members and
/// the similarity checks made: every pair
/// not already joined when the bucket has at most [`ALL_PAIRS_MAX`] members, else each member
/// against the bucket's [`LEADERS`] (a pair of two non-leaders in a large bucket is then found
/// only in another bucket it shares, or through a common neighbour).
fn link_bucket(len: usize, similar: impl Fn(usize, usize) -> bool) -> (Vec<(usize, usize)>, u64) {
    let mut local = UnionFind::new(len);
    let (mut edges, mut checks) = (Vec::new(), 0u64);
    let mut leaders: Vec<usize> = Vec::new();
    let all_pairs = len <= ALL_PAIRS_MAX;
    for j in 0..len {
        let mut matched = false;
        let earlier: &mut dyn Iterator<Item = usize> = if all_pairs {
            &mut (0..j)
        } else {
            &mut leaders.iter().copied()
        };
        let mut joined = Vec::new();
        for i in earlier {
            if local.connected(i as u32, j as u32) {
                matched = true;
                continue;
            }
            checks += 1;
            if similar(i, j) {
                local.union(i as u32, j as u32);
                joined.push((i, j));
                matched = true;
            }
        }
        edges.extend(joined);
        if !all_pairs && !matched && leaders.len() < LEADERS {
            leaders.push(j);
        }
    }
    (edges, checks)
}

/// Groups by `same_as` links only (no near-duplicates).
fn conversation_groups(same_as: &[u32]) -> Groups {
    let mut uf = UnionFind::new(same_as.len());
    let mut out = Groups::default();
    for (i, &j) in same_as.iter().enumerate() {
        if j as usize != i && uf.union(i as u32, j) {
            out.conversation_links += 1;
        }
    }
    out.group = uf.labels();
    out.sizes = group_sizes(&out.group);
    out
}

fn group_sizes(group: &[u32]) -> Vec<u32> {
    let mut sizes = vec![0; group.iter().map(|&g| g as usize + 1).max().unwrap_or(0)];
    for &g in group {
        sizes[g as usize] += 1;
    }
    sizes
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 40 distinct CJK characters; windows of them overlap by a chosen share.
    fn window(from: usize, to: usize) -> String {
        (from..to)
            .map(|i| char::from_u32(0x4e00 + 37 * i as u32).unwrap())
            .collect()
    }

    fn cfg(threshold: f64) -> DedupConfig {
        DedupConfig {
            threshold,
            ..DedupConfig::default()
        }
    }

    #[test]
    fn recall_params_miss_at_most_max_miss_at_the_threshold() {
        assert_eq!(recall_params(0.6, 128), (42, 3));
        assert_eq!(recall_params(0.8, 128), (25, 5));
        for t in [0.3, 0.5, 0.7, 0.9] {
            let (b, r) = recall_params(t, 128);
            let miss = (1.0 - f64::powi(t, r as i32)).powi(b as i32);
            assert!(miss <= MAX_MISS || r == 1, "t {t}: {b}x{r} misses {miss}");
        }
    }

    #[test]
    fn chains_join_identical_texts_join_and_empty_texts_stay_alone() {
        // a~b (J 0.68), b~c, a≁c (J 0.44): one group by closure (dedup would split it).
        let (a, b, c) = (window(0, 30), window(5, 35), window(10, 40));
        let other = window(100, 140);
        let texts = [
            a.as_str(),
            "",
            b.as_str(),
            other.as_str(),
            c.as_str(),
            "",
            &a,
        ];
        let g = near_duplicate_groups(&texts, None, &cfg(0.6)).unwrap();
        assert_eq!(g.group, [0, 1, 0, 2, 0, 3, 0]);
        assert_eq!(g.sizes, [4, 1, 1, 1]);
        assert_eq!((g.near_links, g.exact_links), (2, 1));
        // Conversation links join what similarity does not.
        let same_as = [0, 1, 2, 1, 4, 5, 6];
        let g = near_duplicate_groups(&texts, Some(&same_as), &cfg(0.6)).unwrap();
        assert_eq!(g.group, [0, 1, 0, 1, 0, 2, 0]);
        assert_eq!(g.conversation_links, 1);
        // Above both similarities: only the identical copy joins.
        let g = near_duplicate_groups(&texts, None, &cfg(0.9)).unwrap();
        assert_eq!(g.group, [0, 1, 2, 3, 4, 5, 0]);
    }

    #[test]
    fn similar_decides_as_jaccard_does() {
        use crate::dedup::minhash::jaccard;
        let sets: Vec<Vec<u32>> = (0..60u32)
            .map(|k| {
                (0..40)
                    .map(|x| x * (k % 7 + 1) + k / 7)
                    .collect::<Vec<u32>>()
            })
            .map(|mut v| {
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        for a in &sets {
            for b in &sets {
                for t in [0.1, 0.2, 0.25, 0.5, 0.6, 2.0 / 3.0, 0.8, 1.0] {
                    assert_eq!(
                        jaccard_at_least(a, b, t),
                        jaccard(a, b) >= t,
                        "{a:?} {b:?} {t}"
                    );
                }
            }
        }
        assert!(!jaccard_at_least(&[], &[1], 0.5));
    }

    #[test]
    fn large_buckets_link_through_leaders() {
        // 200 members: 0..100 all alike, 100..200 alike among themselves.
        let (edges, checks) = link_bucket(200, |x, y| (x < 100) == (y < 100));
        let mut uf = UnionFind::new(200);
        for (a, b) in edges {
            uf.union(a as u32, b as u32);
        }
        assert_eq!(uf.clusters().len(), 2);
        assert!(checks < 200 * 3, "{checks} checks");
    }

    #[test]
    fn groups_do_not_depend_on_the_thread_count() {
        let texts: Vec<String> = (0..400)
            .map(|i| window(i % 97, i % 97 + 20 + i % 5))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| near_duplicate_groups(&refs, None, &cfg(0.5)).unwrap())
        };
        let one = run(1);
        assert!(one.sizes.len() < 400 && one.near_links > 0);
        assert_eq!(one, run(3));
    }
}
