//! Deduplication of text corpora: exact, then MinHash-LSH near-duplicates; in one scope, or per
//! source then across sources. Pure Rust, batch-shaped (whole slices per call, rayon inside) and
//! deterministic: the same inputs and seed give the same result whatever the thread count.
//!
//! Stages, each usable alone: [`shingle`] (char / word n-gram hash sets), [`minhash`]
//! (signatures), [`lsh`] (banding, buckets, candidate pairs), [`exact`] (exact keys),
//! [`cluster`] (union-find, keep policy). [`dedup()`] chains them:
//!
//! 1. exact groups on the keys (default: the texts); each group is represented by its preferred
//!    member (keep policy), the others are its exact duplicates;
//! 2. signatures (one-permutation hashing by default, or classic MinHash: [`Sketch`]) reduced
//!    to band keys; short and empty texts stay out of LSH (exact only);
//! 3. LSH buckets → links → clusters → keepers (see `verify.rs` for the verified and unverified
//!    linkage and what each guarantees);
//! 4. every record is kept or reported as a duplicate of a kept record.
//!
//! Default LSH weights are (fp 0.1, fn 0.9), not datasketch's (0.5, 0.5): with equal weights the
//! optimal banding at threshold 0.8 catches only ~40% of pairs at J = 0.8 and ~69% at 0.85,
//! whereas verification (on by default) removes false positives cheaply.

pub mod cluster;
pub mod corpus;
pub mod exact;
pub mod files;
pub mod groups;
pub mod lsh;
pub mod minhash;
pub mod oph;
pub mod remote;
pub mod shingle;
pub mod sketch;
pub mod spill;
mod verify;

#[cfg(test)]
mod tests;

use rustc_hash::FxHashMap;

pub use cluster::{KeepPolicy, Preference, UnionFind};
pub use corpus::{Corpus, MemoryCorpus};
pub use exact::exact_duplicates;
pub use lsh::{optimal_params, BandKeys, Buckets, PairMode};
pub use minhash::{estimate_jaccard, jaccard, signatures, MinHashParams, Signatures};
pub use oph::Sketch;
pub use remote::BucketLinker;
pub use shingle::{ShingleMode, ShingleParams, TextKind};
pub use verify::{MAX_CENTERS, MAX_LEADERS};

use crate::error::{Error, Result};

/// Configuration of a dedup run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DedupConfig {
    pub mode: ShingleMode,
    /// Character n-gram size (CJK text).
    pub ngram: usize,
    /// Word n-gram size (Latin-script text).
    pub word_ngram: usize,
    /// `Auto` mode: CJK share of units at or above which a text is shingled by characters.
    pub cjk_share: f64,
    pub num_perm: usize,
    /// Signature scheme: one-permutation hashing (default; the same estimate and banding, and
    /// several times cheaper to sign) or classic MinHash (better estimates for very short texts,
    /// which matters without verification).
    pub sketch: Sketch,
    /// Seed of shingle hashing and of the permutations.
    pub seed: u64,
    /// Jaccard similarity at or above which two texts are near-duplicates.
    pub threshold: f64,
    /// LSH bands / rows overrides (one alone fixes the other as `num_perm / it`).
    pub bands: Option<usize>,
    pub rows: Option<usize>,
    /// Weights of false positives / negatives when choosing (bands, rows) without verification
    /// (a verified run aims at recall: `lsh::recall_params`).
    pub fp_weight: f64,
    pub fn_weight: f64,
    /// Check candidates by true Jaccard on shingle sets (no false positives).
    pub verify: bool,
    pub keep: KeepPolicy,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            mode: ShingleMode::Auto,
            ngram: shingle::DEFAULT_CHAR_NGRAM,
            word_ngram: shingle::DEFAULT_WORD_NGRAM,
            cjk_share: shingle::DEFAULT_CJK_SHARE,
            num_perm: minhash::DEFAULT_NUM_PERM,
            sketch: Sketch::Oph,
            seed: 1,
            threshold: 0.8,
            bands: None,
            rows: None,
            fp_weight: 0.1,
            fn_weight: 0.9,
            verify: true,
            keep: KeepPolicy::First,
        }
    }
}

impl DedupConfig {
    pub fn shingle_params(&self) -> ShingleParams {
        ShingleParams {
            mode: self.mode,
            char_ngram: self.ngram,
            word_ngram: self.word_ngram,
            cjk_share: self.cjk_share,
            seed: self.seed,
        }
    }

    pub fn minhash_params(&self) -> MinHashParams {
        MinHashParams {
            shingle: self.shingle_params(),
            num_perm: self.num_perm,
            seed: self.seed,
            sketch: self.sketch,
        }
    }

    /// The (bands, rows) this config uses.
    pub fn lsh_params(&self) -> Result<(usize, usize)> {
        lsh::resolve_params(
            self.threshold,
            self.num_perm,
            self.bands,
            self.rows,
            self.verify,
            (self.fp_weight, self.fn_weight),
        )
    }

    /// Checks every parameter; returns the (bands, rows) to use.
    pub fn validate(&self) -> Result<(usize, usize)> {
        self.minhash_params().validate()?;
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(Error::config(format!(
                "threshold must lie in (0, 1], got {}",
                self.threshold
            )));
        }
        self.lsh_params()
    }
}

/// Optional per-record inputs of a dedup run.
#[derive(Debug, Clone, Copy, Default)]
pub struct DedupInputs<'a> {
    /// Exact-match keys, one per text (default: the texts themselves).
    pub exact_keys: Option<&'a [&'a str]>,
    /// Priority ranks for [`KeepPolicy::Priority`]; lower is preferred.
    pub priority: Option<&'a [u32]>,
}

/// How a duplicate relates to its keeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DupKind {
    /// Same exact key as the keeper.
    Exact,
    /// Near-duplicate (possibly through an exact copy of a near-duplicate).
    Near,
}

impl DupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Near => "near",
        }
    }
}

/// A removed record: the kept record it duplicates, how, and how similar they are (1.0 for
/// exact; true Jaccard when verified, else the signature estimate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Duplicate {
    pub of: u32,
    pub kind: DupKind,
    pub similarity: f64,
}

/// Counters of one dedup scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupStats {
    /// Records that took part.
    pub records: usize,
    pub kept: usize,
    pub exact_duplicates: usize,
    pub near_duplicates: usize,
    /// Participating records too short to shingle / blank (exact matching only).
    pub short: usize,
    pub empty: usize,
    /// Clusters of two or more records formed in this scope.
    pub clusters: usize,
    pub bands: usize,
    pub rows: usize,
    /// LSH buckets of two or more distinct member lists.
    pub buckets: usize,
    /// Pairs linked in buckets (similarity ≥ threshold).
    pub links: usize,
    /// Similarity computations (true Jaccard when verifying, else signature estimates).
    pub jaccard_checks: usize,
}

/// The outcome of [`dedup()`]: for each input, kept (`None`) or a [`Duplicate`].
#[derive(Debug, Clone, PartialEq)]
pub struct DedupResult {
    pub duplicate_of: Vec<Option<Duplicate>>,
    /// Cluster id per record (a keeper and its duplicates), numbered by lowest member index.
    pub cluster: Vec<u32>,
    /// Records per cluster id.
    pub cluster_sizes: Vec<u32>,
    pub kinds: Vec<TextKind>,
    pub stats: DedupStats,
}

impl DedupResult {
    pub fn is_kept(&self, i: usize) -> bool {
        self.duplicate_of[i].is_none()
    }

    /// The kept record standing for record `i` (itself when kept).
    pub fn keeper(&self, i: usize) -> u32 {
        self.duplicate_of[i].map_or(i as u32, |d| d.of)
    }

    pub fn kept_indices(&self) -> Vec<u32> {
        (0..self.duplicate_of.len() as u32)
            .filter(|&i| self.duplicate_of[i as usize].is_none())
            .collect()
    }
}

/// Where a record was removed in a two-scope run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Within its own source.
    Within,
    /// Across sources, among the survivors of the first scope.
    Cross,
}

/// The outcome of [`dedup_two_scope`].
#[derive(Debug, Clone, PartialEq)]
pub struct TwoScopeResult {
    /// `Some` for removed records; `of` is the record it duplicates in the scope it was removed
    /// in (a same-source record for `Within`, a survivor of scope 1 for `Cross`).
    pub duplicate_of: Vec<Option<Duplicate>>,
    pub scope: Vec<Option<Scope>>,
    /// The record kept at the end that stands for each record (itself when kept).
    pub final_keeper: Vec<u32>,
    /// Cluster id per record by final keeper, numbered by lowest member index.
    pub cluster: Vec<u32>,
    pub cluster_sizes: Vec<u32>,
    pub kinds: Vec<TextKind>,
    pub within: DedupStats,
    pub cross: DedupStats,
}

/// Exact, then near-duplicate dedup of `texts` (exact keys are the texts themselves).
pub fn near_duplicates(texts: &[&str], cfg: &DedupConfig) -> Result<DedupResult> {
    dedup(texts, &DedupInputs::default(), cfg)
}

/// Exact, then near-duplicate dedup of `texts` in one scope.
pub fn dedup(texts: &[&str], inputs: &DedupInputs<'_>, cfg: &DedupConfig) -> Result<DedupResult> {
    dedup_corpus(&memory_corpus(texts, inputs, cfg)?, inputs.priority, cfg)
}

/// [`dedup()`] of a corpus wherever it lives (see [`corpus`]).
pub fn dedup_corpus(
    corpus: &impl Corpus,
    priority: Option<&[u32]>,
    cfg: &DedupConfig,
) -> Result<DedupResult> {
    dedup_corpus_with(corpus, priority, cfg, None)
}

/// [`dedup_corpus`], the buckets linked by `linker` where given (see [`remote`]).
pub fn dedup_corpus_with(
    corpus: &impl Corpus,
    priority: Option<&[u32]>,
    cfg: &DedupConfig,
    linker: Option<&dyn BucketLinker>,
) -> Result<DedupResult> {
    let n = corpus.len();
    let prep = Prepared::new(corpus, priority, cfg, linker)?;
    let all: Vec<u32> = (0..n as u32).collect();
    let (dups, stats) = prep.run_scope(&all, None)?;
    let mut duplicate_of = vec![None; n];
    for (i, d) in dups {
        duplicate_of[i as usize] = Some(d);
    }
    let keeper: Vec<u32> = (0..n)
        .map(|i| duplicate_of[i].map_or(i as u32, |d: Duplicate| d.of))
        .collect();
    let (cluster, cluster_sizes) = cluster_ids(&keeper);
    Ok(DedupResult {
        duplicate_of,
        cluster,
        cluster_sizes,
        kinds: corpus.kinds().to_vec(),
        stats,
    })
}

/// Two-scope dedup: within each source first (`sources[i]` is text i's source; clusters never
/// cross sources), then across sources among the survivors.
pub fn dedup_two_scope(
    texts: &[&str],
    sources: &[u32],
    inputs: &DedupInputs<'_>,
    cfg: &DedupConfig,
) -> Result<TwoScopeResult> {
    let corpus = memory_corpus(texts, inputs, cfg)?;
    dedup_scopes(&corpus, sources, inputs.priority, cfg, true)
}

/// [`dedup_two_scope`] of a corpus wherever it lives (see [`corpus`]); without `cross`, the
/// first scope alone (per source).
pub fn dedup_scopes(
    corpus: &impl Corpus,
    sources: &[u32],
    priority: Option<&[u32]>,
    cfg: &DedupConfig,
    cross: bool,
) -> Result<TwoScopeResult> {
    dedup_scopes_with(corpus, sources, priority, cfg, cross, None)
}

/// [`dedup_scopes`], the buckets linked by `linker` where given (see [`remote`]).
pub fn dedup_scopes_with(
    corpus: &impl Corpus,
    sources: &[u32],
    priority: Option<&[u32]>,
    cfg: &DedupConfig,
    cross: bool,
    linker: Option<&dyn BucketLinker>,
) -> Result<TwoScopeResult> {
    let n = corpus.len();
    if sources.len() != n {
        return Err(Error::config(format!(
            "{} sources for {n} texts",
            sources.len()
        )));
    }
    let prep = Prepared::new(corpus, priority, cfg, linker)?;
    let all: Vec<u32> = (0..n as u32).collect();
    let (within_dups, within) = prep.run_scope(&all, Some(sources))?;
    let mut duplicate_of = vec![None; n];
    let mut scope = vec![None; n];
    for (i, d) in within_dups {
        duplicate_of[i as usize] = Some(d);
        scope[i as usize] = Some(Scope::Within);
    }
    let mut cross_stats = DedupStats::default();
    if cross {
        let survivors: Vec<u32> = all
            .iter()
            .copied()
            .filter(|&i| duplicate_of[i as usize].is_none())
            .collect();
        let (cross_dups, stats) = prep.run_scope(&survivors, None)?;
        for (i, d) in cross_dups {
            duplicate_of[i as usize] = Some(d);
            scope[i as usize] = Some(Scope::Cross);
        }
        cross_stats = stats;
    }
    // A scope-1 keeper is either kept or a scope-2 duplicate of a kept record: two hops at most.
    let step = |i: u32| duplicate_of[i as usize].map_or(i, |d: Duplicate| d.of);
    let final_keeper: Vec<u32> = (0..n as u32).map(|i| step(step(i))).collect();
    let (cluster, cluster_sizes) = cluster_ids(&final_keeper);
    Ok(TwoScopeResult {
        duplicate_of,
        scope,
        final_keeper,
        cluster,
        cluster_sizes,
        kinds: corpus.kinds().to_vec(),
        within,
        cross: cross_stats,
    })
}

/// Dense cluster ids from each record's keeper, numbered by lowest member index.
fn cluster_ids(keeper: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut id_of_keeper: FxHashMap<u32, u32> = FxHashMap::default();
    let mut sizes = Vec::new();
    let ids = keeper
        .iter()
        .map(|&k| {
            let id = *id_of_keeper.entry(k).or_insert_with(|| {
                sizes.push(0);
                sizes.len() as u32 - 1
            });
            sizes[id as usize] += 1;
            id
        })
        .collect();
    (ids, sizes)
}

/// What every scope of a run shares: the corpus (exact-key hashes, band keys, texts on demand),
/// priority ranks and the parameters.
struct Prepared<'a, C: Corpus> {
    corpus: &'a C,
    ranks: Option<&'a [u32]>,
    cfg: DedupConfig,
    bands: usize,
    rows: usize,
    /// Where the buckets are linked (step 1 of `verify.rs`) when not here.
    linker: Option<&'a dyn BucketLinker>,
}

/// Checks a run's inputs against its config; returns the (bands, rows) to use.
fn check_inputs(n: usize, priority: Option<&[u32]>, cfg: &DedupConfig) -> Result<(usize, usize)> {
    let (bands, rows) = cfg.validate()?;
    if n >= u32::MAX as usize {
        return Err(Error::config("at most 2^32 - 2 texts per dedup run"));
    }
    if let Some(p) = priority {
        if p.len() != n {
            return Err(Error::config(format!(
                "{} priorities for {n} texts",
                p.len()
            )));
        }
    }
    if cfg.keep == KeepPolicy::Priority && priority.is_none() {
        return Err(Error::config("keep policy 'priority' needs priority ranks"));
    }
    Ok((bands, rows))
}

/// The in-memory corpus of `texts` for `cfg` (priority ranks are checked by the run).
pub(crate) fn memory_corpus<'a>(
    texts: &'a [&'a str],
    inputs: &DedupInputs<'a>,
    cfg: &DedupConfig,
) -> Result<MemoryCorpus<'a>> {
    let (bands, rows) = check_inputs(
        texts.len(),
        None,
        &DedupConfig {
            keep: KeepPolicy::First,
            ..*cfg
        },
    )?;
    if let Some(keys) = inputs.exact_keys {
        if keys.len() != texts.len() {
            return Err(Error::config(format!(
                "{} exact keys for {} texts",
                keys.len(),
                texts.len()
            )));
        }
    }
    let with_lengths = cfg.keep == KeepPolicy::Longest;
    MemoryCorpus::new(
        texts,
        inputs.exact_keys,
        &cfg.minhash_params(),
        bands,
        rows,
        with_lengths,
    )
}

impl<'a, C: Corpus> Prepared<'a, C> {
    fn new(
        corpus: &'a C,
        priority: Option<&'a [u32]>,
        cfg: &DedupConfig,
        linker: Option<&'a dyn BucketLinker>,
    ) -> Result<Self> {
        let (bands, rows) = check_inputs(corpus.len(), priority, cfg)?;
        Ok(Self {
            corpus,
            ranks: priority,
            cfg: *cfg,
            bands,
            rows,
            linker,
        })
    }

    /// Dedups the records `active` (ascending); records with different `labels` are never
    /// matched. Returns the removed records with their duplicates.
    fn run_scope(
        &self,
        active: &[u32],
        labels: Option<&[u32]>,
    ) -> Result<(Vec<(u32, Duplicate)>, DedupStats)> {
        let pref = Preference::new(self.cfg.keep, self.corpus.lengths(), self.ranks)?;
        let kinds = self.corpus.kinds();
        let mut stats = DedupStats {
            records: active.len(),
            bands: self.bands,
            rows: self.rows,
            ..DedupStats::default()
        };
        for &i in active {
            match kinds[i as usize] {
                TextKind::Short => stats.short += 1,
                TextKind::Empty => stats.empty += 1,
                TextKind::Normal => {}
            }
        }

        // 1. Exact groups, each represented by its preferred member.
        let firsts =
            exact::exact_duplicates_by(self.corpus.key_hashes(), active, labels, |a, b| {
                self.corpus.same_key(a, b)
            })?;
        let mut grouped: Vec<(u32, u32)> = active
            .iter()
            .zip(&firsts)
            .map(|(&i, f)| (f.unwrap_or(i), i))
            .collect();
        drop(firsts);
        grouped.sort_unstable();
        let mut reps = Vec::new();
        let mut exact_members = Vec::new(); // (member, its group's representative)
        for run in grouped.chunk_by(|x, y| x.0 == y.0) {
            let members: Vec<u32> = run.iter().map(|x| x.1).collect();
            let rep = pref.best(&members);
            reps.push(rep);
            exact_members.extend(members.iter().filter(|&&m| m != rep).map(|&m| (m, rep)));
        }
        drop(grouped);
        reps.sort_unstable();

        // 2-3. Near-duplicates among the representatives.
        reps.retain(|&i| kinds[i as usize] == TextKind::Normal);
        let buckets = lsh::buckets_by_band(
            self.bands,
            &reps,
            labels,
            self.corpus.parallel_bands(),
            |band| self.corpus.band_column(band),
        )?;
        drop(reps);
        stats.buckets = buckets.len();
        let (shingle, minhash) = (self.cfg.shingle_params(), self.cfg.minhash_params());
        let rows = if self.cfg.verify {
            verify::Rows::Sets(&shingle)
        } else {
            verify::Rows::Signatures(&minhash)
        };
        let texts = |ids: &[u32]| self.corpus.texts(ids);
        let (links, link_stats) = match self.linker {
            None => {
                let involved = verify::involved(&buckets);
                let store =
                    verify::RowStore::build(texts, self.corpus.spill_dir(), involved, rows)?;
                let linked = verify::link(&store, &buckets, rows, self.cfg.threshold, &pref)?;
                drop(store);
                drop(buckets);
                linked
            }
            Some(linker) => {
                // step 1 elsewhere; components and their split here, on their members' rows
                let (edges, checks) = linker.edges(&buckets, &self.cfg)?;
                drop(buckets);
                let comps = verify::edge_components(&edges);
                let mut members: Vec<u32> = comps.iter().flatten().copied().collect();
                members.sort_unstable();
                let store = verify::RowStore::build(texts, self.corpus.spill_dir(), members, rows)?;
                let (links, split_checks) =
                    verify::split(&store, comps, rows, self.cfg.threshold, &pref)?;
                let stats = verify::LinkStats {
                    edges: edges.len(),
                    jaccard_checks: checks + split_checks,
                };
                (links, stats)
            }
        };
        stats.links = link_stats.edges;
        stats.jaccard_checks = link_stats.jaccard_checks;

        // 4. Every removed record against a kept one.
        let near_of: FxHashMap<u32, (u32, f64)> =
            links.iter().map(|&(m, k, s)| (m, (k, s))).collect();
        let mut dups: Vec<(u32, Duplicate)> = links
            .iter()
            .map(|&(m, k, s)| {
                let d = Duplicate {
                    of: k,
                    kind: DupKind::Near,
                    similarity: s,
                };
                (m, d)
            })
            .collect();
        for (m, rep) in exact_members {
            let d = match near_of.get(&rep) {
                Some(&(k, s)) => Duplicate {
                    of: k,
                    kind: DupKind::Near,
                    similarity: s,
                },
                None => Duplicate {
                    of: rep,
                    kind: DupKind::Exact,
                    similarity: 1.0,
                },
            };
            dups.push((m, d));
        }
        dups.sort_unstable_by_key(|x| x.0);
        stats.exact_duplicates = dups.iter().filter(|x| x.1.kind == DupKind::Exact).count();
        stats.near_duplicates = dups.len() - stats.exact_duplicates;
        stats.kept = active.len() - dups.len();
        let mut keepers: Vec<u32> = dups.iter().map(|x| x.1.of).collect();
        keepers.sort_unstable();
        keepers.dedup();
        stats.clusters = keepers.len();
        Ok((dups, stats))
    }
}
