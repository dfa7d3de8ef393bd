//! Where a dedup run's per-record data lives. The engine (`Prepared` in this module's parent, and
//! `verify.rs`) sees a corpus only through [`Corpus`]: exact-key hashes and kinds (small arrays,
//! always in memory), band keys one band column at a time, and texts fetched by index. Two
//! implementations: [`MemoryCorpus`] (texts given by the caller, band keys as one matrix) and
//! `spill::SpillCorpus` (texts and band columns in temporary files: out-of-core). The engine code
//! is the same for both, so both give the same result.
//!
//! Does not choose between them (see `files.rs`) and computes nothing the engine does not ask for.

use std::borrow::Cow;

use rayon::prelude::*;

use super::exact;
use super::lsh::{BandColumn, BandKeys};
use super::minhash::MinHashParams;
use super::shingle::TextKind;
use crate::error::Result;

/// The per-record data a dedup run needs.
pub trait Corpus: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn kinds(&self) -> &[TextKind];
    /// xxh3-128 of each record's exact key.
    fn key_hashes(&self) -> &[u128];
    /// Characters per text; computed when the keep policy is `Longest`.
    fn lengths(&self) -> Option<&[u32]>;
    fn bands(&self) -> usize;
    /// Whether band columns may be loaded side by side (in memory) or one at a time.
    fn parallel_bands(&self) -> bool;
    fn band_column(&self, band: usize) -> Result<BandColumn<'_>>;
    /// Whether records `a` and `b` have equal exact keys.
    fn same_key(&self, a: u32, b: u32) -> Result<bool>;
    /// The texts of `ids`, in that order.
    fn texts(&self, ids: &[u32]) -> Result<Vec<Cow<'_, str>>>;
    /// Where rows computed for verification may be written (`None`: keep them in memory).
    fn spill_dir(&self) -> Option<&std::path::Path> {
        None
    }
}

/// Texts held by the caller, band keys computed at once.
pub struct MemoryCorpus<'a> {
    texts: &'a [&'a str],
    exact_keys: &'a [&'a str],
    key_hashes: Vec<u128>,
    keys: BandKeys,
    lengths: Option<Vec<u32>>,
}

impl<'a> MemoryCorpus<'a> {
    /// `exact_keys` has one key per text (the texts themselves when `None`).
    pub fn new(
        texts: &'a [&'a str],
        exact_keys: Option<&'a [&'a str]>,
        params: &MinHashParams,
        bands: usize,
        rows: usize,
        with_lengths: bool,
    ) -> Result<Self> {
        let exact_keys = exact_keys.unwrap_or(texts);
        Ok(Self {
            texts,
            exact_keys,
            key_hashes: exact::key_hashes(exact_keys),
            keys: BandKeys::compute(texts, params, bands, rows)?,
            lengths: with_lengths.then(|| char_counts(texts)),
        })
    }
}

/// Characters per text, saturating at `u32::MAX`.
pub fn char_counts(texts: &[&str]) -> Vec<u32> {
    texts
        .par_iter()
        .map(|t| t.chars().count().min(u32::MAX as usize) as u32)
        .collect()
}

impl Corpus for MemoryCorpus<'_> {
    fn len(&self) -> usize {
        self.texts.len()
    }
    fn kinds(&self) -> &[TextKind] {
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
    fn band_column(&self, band: usize) -> Result<BandColumn<'_>> {
        Ok(BandColumn::Strided {
            keys: &self.keys,
            band,
        })
    }
    fn same_key(&self, a: u32, b: u32) -> Result<bool> {
        Ok(self.exact_keys[a as usize] == self.exact_keys[b as usize])
    }
    fn texts(&self, ids: &[u32]) -> Result<Vec<Cow<'_, str>>> {
        Ok(ids
            .iter()
            .map(|&i| Cow::Borrowed(self.texts[i as usize]))
            .collect())
    }
}
