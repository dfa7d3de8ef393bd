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
//! joined there is checked, in the first band where the pair shares such a bucket only (see
//! [`Banded`]), so a pair that shares such a bucket is never missed and never compared twice
//! (larger buckets are linked through leaders, see [`link_bucket`]). Identical texts are joined
//! without LSH; texts too short to shingle match only identical ones; empty texts join nothing.
//!
//! Records are read once and kept as sketches (band keys, a text hash and the shingle set, see
//! [`Sketches`]), never as texts.
//!
//! Deterministic: the groups depend only on the pairs found, which depend only on the texts
//! and the parameters, never on the thread count; ids are numbered by lowest member.

use std::path::Path;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde_json::Value;

use super::cluster::UnionFind;
use super::exact;
use super::files::{record_texts, SourceFile};
use super::lsh::{BandKeys, Buckets};
use super::minhash::{jaccard_at_least, signatures_and_sets, MinHashParams};
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
    progress: Progress<'_>,
) -> Result<Groups> {
    let mut sketches = Sketches::new(cfg)?;
    sketches.push(texts)?;
    sketches.group(same_as, cfg, progress)
}

/// What grouping keeps of each record, computed batch by batch as the records are read, so that
/// no text is held for the run: its kind and band keys (the low 32 bits of each: a chance
/// collision only adds a pair to verify), a 128-bit hash of its text (identical
/// texts are those of equal hashes; xxh3-128, a chance collision has probability ~2^-128) and
/// its shingle set (hashes folded to 32 bits, sorted: as `dedup`'s verification compares them).
struct Sketches {
    minhash: MinHashParams,
    bands: usize,
    rows: usize,
    keys: Vec<u32>,
    kinds: Vec<TextKind>,
    hashes: Vec<u128>,
    sets: Vec<u32>,
    /// End of each record's set in `sets`.
    ends: Vec<u64>,
}

impl Sketches {
    fn new(cfg: &DedupConfig) -> Result<Self> {
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
        Ok(Self {
            minhash: cfg.minhash_params(),
            bands,
            rows,
            keys: Vec::new(),
            kinds: Vec::new(),
            hashes: Vec::new(),
            sets: Vec::new(),
            ends: Vec::new(),
        })
    }

    fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Adds the sketches of the next records' texts.
    fn push(&mut self, texts: &[&str]) -> Result<()> {
        if self.len() + texts.len() >= u32::MAX as usize {
            return Err(Error::config("at most 2^32 - 2 records per grouping"));
        }
        // One shingling per text gives both its signature and its set.
        let (sigs, sets) = signatures_and_sets(texts, &self.minhash, true)?;
        let part = BandKeys::from_signatures(&sigs, self.bands, self.rows);
        drop(sigs);
        self.keys.extend(part.keys().iter().map(|&k| k as u32));
        self.kinds.extend_from_slice(part.kinds());
        self.hashes.extend(exact::key_hashes(texts));
        for set in sets {
            self.sets.extend_from_slice(&set);
            self.ends.push(self.sets.len() as u64);
        }
        Ok(())
    }

    /// The groups of the records pushed.
    fn group(
        self,
        same_as: Option<&[u32]>,
        cfg: &DedupConfig,
        progress: Progress<'_>,
    ) -> Result<Groups> {
        let n = self.len();
        let (bands, rows) = (self.bands, self.rows);
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
        let nonempty: Vec<u32> = (0..n as u32)
            .filter(|&i| self.kinds[i as usize] != TextKind::Empty)
            .collect();
        let firsts = exact::exact_duplicates_by(&self.hashes, &nonempty, None, |_, _| Ok(true))?;
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
        let keys = KeyMatrix {
            bands,
            keys: self.keys,
            kinds: self.kinds,
        };
        let sets = SetStore {
            sets: self.sets,
            ends: self.ends,
        };
        progress("bucket", 0, bands as u64)?;
        let banded = Banded::new(&keys, &reps);
        let buckets = &banded.buckets;
        progress("bucket", bands as u64, bands as u64)?;
        let threshold = cfg.threshold;
        progress("verify", 0, buckets.len() as u64)?;
        let per_bucket: Vec<(Vec<(u32, u32)>, u64)> = (0..buckets.len())
            .into_par_iter()
            .map(|b| {
                let bucket = buckets.get(b);
                let band = banded.band[b] as usize;
                let local: Vec<&[u32]> = bucket.iter().map(|&i| sets.get(i)).collect();
                let (edges, checks) = link_bucket(
                    bucket.len(),
                    |x, y| banded.met_before(&keys, bucket[x], bucket[y], band),
                    |x, y| jaccard_at_least(local[x], local[y], threshold),
                );
                let edges = edges
                    .into_iter()
                    .map(|(x, y)| (bucket[x], bucket[y]))
                    .collect();
                (edges, checks)
            })
            .collect();
        progress("verify", buckets.len() as u64, buckets.len() as u64)?;
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
}

/// The shingle sets of [`Sketches`], flat.
struct SetStore {
    sets: Vec<u32>,
    ends: Vec<u64>,
}

impl SetStore {
    fn get(&self, i: u32) -> &[u32] {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.sets[start..self.ends[i] as usize]
    }
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
    let mut sketches = cfg.map(Sketches::new).transpose()?;
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
            if let Some(sketches) = sketches.as_mut() {
                let texts = record_texts(&batch.records, Some(fields));
                let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                sketches.push(&texts)?;
            }
            for record in &batch.records {
                let i = same_as.len() as u32;
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
    match (sketches, cfg) {
        (Some(sketches), Some(cfg)) => sketches.group(Some(&same_as), cfg, progress),
        _ => Ok(conversation_groups(&same_as)),
    }
}

/// The near-duplicate pairs (edges, as positions in the bucket) of a bucket of `len` members and
/// the similarity checks made: every pair not already joined (and not `checked_elsewhere`) when
/// the bucket has at most [`ALL_PAIRS_MAX`] members, else each member against the bucket's
/// [`LEADERS`] (a pair of two non-leaders in a large bucket is then found only in another bucket
/// it shares, or through a common neighbour).
fn link_bucket(
    len: usize,
    checked_elsewhere: impl Fn(usize, usize) -> bool,
    similar: impl Fn(usize, usize) -> bool,
) -> (Vec<(usize, usize)>, u64) {
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
            if all_pairs && checked_elsewhere(i, j) {
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

/// The band keys of a grouping: a row-major `records × bands` matrix, and each text's kind.
struct KeyMatrix {
    bands: usize,
    keys: Vec<u32>,
    kinds: Vec<TextKind>,
}

impl KeyMatrix {
    fn row(&self, i: usize) -> &[u32] {
        &self.keys[i * self.bands..(i + 1) * self.bands]
    }
}

/// The LSH buckets of a grouping, each with the band it was first found in, and for every
/// record the bands in which its bucket is small (all pairs linked, at most [`ALL_PAIRS_MAX`]
/// members). A pair of texts collides in many bands when it is similar, often at a Jaccard far
/// below the threshold when texts share passages; it is checked only in the first band whose
/// bucket links all pairs ([`Self::met_before`]), so each such pair is compared once. The
/// groups are the same as when every bucket checks it: in its first small bucket the pair is
/// compared or already joined through pairs compared there.
struct Banded {
    buckets: Buckets,
    /// The first band of each bucket (identical member lists are kept once).
    band: Vec<u32>,
    /// Per record, `words` words: bit `b` set when its bucket in band `b` is small.
    small: Vec<u64>,
    words: usize,
}

impl Banded {
    /// Buckets of the indexable texts among `members` (ascending), grouped by band key.
    fn new(keys: &KeyMatrix, members: &[u32]) -> Self {
        let members: Vec<u32> = members
            .iter()
            .copied()
            .filter(|&i| keys.kinds[i as usize] == TextKind::Normal)
            .collect();
        let per_band: Vec<(Vec<u32>, Vec<usize>)> = (0..keys.bands)
            .into_par_iter()
            .map(|band| {
                let mut keyed: Vec<(u32, u32)> = members
                    .iter()
                    .map(|&i| (keys.row(i as usize)[band], i))
                    .collect();
                keyed.sort_unstable();
                let (mut flat, mut ends) = (Vec::new(), Vec::new());
                for run in keyed.chunk_by(|x, y| x.0 == y.0) {
                    if run.len() > 1 {
                        flat.extend(run.iter().map(|x| x.1));
                        ends.push(flat.len());
                    }
                }
                (flat, ends)
            })
            .collect();
        let words = keys.bands.div_ceil(64).max(1);
        let mut small = vec![0u64; keys.kinds.len() * words];
        let mut all: Vec<(&[u32], u32)> = Vec::new();
        for (band, (flat, ends)) in per_band.iter().enumerate() {
            let mut start = 0;
            for &end in ends {
                let bucket = &flat[start..end];
                start = end;
                if bucket.len() <= ALL_PAIRS_MAX {
                    for &i in bucket {
                        small[i as usize * words + band / 64] |= 1 << (band % 64);
                    }
                }
                all.push((bucket, band as u32));
            }
        }
        // Identical member lists once, with their first band.
        all.par_sort_unstable();
        all.dedup_by(|later, first| later.0 == first.0);
        let mut offsets = Vec::with_capacity(all.len() + 1);
        offsets.push(0);
        let mut flat = Vec::with_capacity(all.iter().map(|g| g.0.len()).sum());
        for (g, _) in &all {
            flat.extend_from_slice(g);
            offsets.push(flat.len());
        }
        let band = all.iter().map(|g| g.1).collect();
        let buckets = Buckets::from_parts(offsets, flat).expect("offsets in order");
        Self {
            buckets,
            band,
            small,
            words,
        }
    }

    /// Whether texts `a` and `b` share a small bucket in a band before `band` (their pair is
    /// then checked there).
    fn met_before(&self, keys: &KeyMatrix, a: u32, b: u32, band: usize) -> bool {
        let (ka, kb) = (keys.row(a as usize), keys.row(b as usize));
        let (wa, wb) = (a as usize * self.words, b as usize * self.words);
        for w in 0..self.words.min(band.div_ceil(64)) {
            let mut both = self.small[wa + w] & self.small[wb + w];
            let below = band - w * 64;
            if below < 64 {
                both &= (1u64 << below) - 1;
            }
            while both != 0 {
                let bit = both.trailing_zeros() as usize;
                if ka[w * 64 + bit] == kb[w * 64 + bit] {
                    return true;
                }
                both &= both - 1;
            }
        }
        false
    }
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
        let g = near_duplicate_groups(&texts, None, &cfg(0.6), &mut |_, _, _| Ok(())).unwrap();
        assert_eq!(g.group, [0, 1, 0, 2, 0, 3, 0]);
        assert_eq!(g.sizes, [4, 1, 1, 1]);
        assert_eq!((g.near_links, g.exact_links), (2, 1));
        // Conversation links join what similarity does not.
        let same_as = [0, 1, 2, 1, 4, 5, 6];
        let g = near_duplicate_groups(&texts, Some(&same_as), &cfg(0.6), &mut |_, _, _| Ok(()))
            .unwrap();
        assert_eq!(g.group, [0, 1, 0, 1, 0, 2, 0]);
        assert_eq!(g.conversation_links, 1);
        // Above both similarities: only the identical copy joins.
        let g = near_duplicate_groups(&texts, None, &cfg(0.9), &mut |_, _, _| Ok(())).unwrap();
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
    fn similar_decides_as_jaccard_does_on_long_sets() {
        use crate::dedup::minhash::jaccard;
        // Sets of up to 300 values drawn from ranges of different widths, so that overlaps
        // span the whole range and blocks of four meet in every arrangement.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let sets: Vec<Vec<u32>> = (0..80)
            .map(|k| {
                let (len, range) = (1 + (k * 37) % 300, 50 + (k * 53) % 900);
                let mut v: Vec<u32> = (0..len).map(|_| (next() % range as u64) as u32).collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        for a in &sets {
            for b in &sets {
                for t in [0.05, 0.2, 0.5, 0.6, 0.8, 0.95] {
                    assert_eq!(jaccard_at_least(a, b, t), jaccard(a, b) >= t);
                }
            }
        }
    }

    #[test]
    fn large_buckets_link_through_leaders() {
        // 200 members: 0..100 all alike, 100..200 alike among themselves.
        let (edges, checks) = link_bucket(200, |_, _| false, |x, y| (x < 100) == (y < 100));
        let mut uf = UnionFind::new(200);
        for (a, b) in edges {
            uf.union(a as u32, b as u32);
        }
        assert_eq!(uf.clusters().len(), 2);
        assert!(checks < 200 * 3, "{checks} checks");
    }

    #[test]
    fn groups_are_the_closure_of_the_pairs_at_the_threshold() {
        use crate::dedup::minhash::jaccard;
        use crate::dedup::shingle::shingle_set;
        // Windows overlapping by every share: many pairs meet in several bands, most below
        // the threshold, so pairs are skipped where an earlier band checked them.
        let texts: Vec<String> = (0..300)
            .map(|i| window(i % 61 * 3, i % 61 * 3 + 24 + i % 7))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let c = cfg(0.6);
        let g = near_duplicate_groups(&refs, None, &c, &mut |_, _, _| Ok(())).unwrap();
        let params = c.shingle_params();
        let sets: Vec<Vec<u64>> = refs.iter().map(|t| shingle_set(t, &params).1).collect();
        let mut uf = UnionFind::new(refs.len());
        for i in 0..refs.len() {
            for j in i + 1..refs.len() {
                if jaccard(&sets[i], &sets[j]) >= 0.6 {
                    uf.union(i as u32, j as u32);
                }
            }
        }
        assert_eq!(g.group, uf.labels());
        assert!(g.sizes.len() < 300 && g.near_links > 0);
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
                .install(|| {
                    near_duplicate_groups(&refs, None, &cfg(0.5), &mut |_, _, _| Ok(())).unwrap()
                })
        };
        let one = run(1);
        assert!(one.sizes.len() < 400 && one.near_links > 0);
        assert_eq!(one, run(3));
    }
}
