//! OpenCC-compatible simplified/traditional Chinese conversion with embedded dictionaries.
//!
//! Reproduces OpenCC (C++, the `opencc` Python package 1.4.2) output byte for byte for its 16
//! built-in configs: the normalization pre-pass, max-match segmentation and the conversion chain
//! with OpenCC's dictionary groups (`short_circuit` / `union` match policies). Dictionaries and
//! configs are OpenCC's own (Apache-2.0), compiled into the binary (see `dict/README.md`);
//! nothing is read from disk at run time. Does not do jieba segmentation, inline or user
//! dictionaries, or OpenCC's tofu-risk opt-out (tofu-risk dictionaries are always used, as the
//! Python package does by default).
//!
//! Pipeline, as in OpenCC's `ConfigBasedConverter` + `SingleStageConverter`:
//! 1. normalization: the `normalization` chain over the whole text;
//! 2. segmentation (when the config has one): max-match segments, each a matched key or a run
//!    of unmatched text. As in OpenCC, which passes segments on as C strings, a segment is cut
//!    at its first NUL character;
//! 3. each segment (or the whole text) goes through the conversion chain, each stage a
//!    longest-match replacement that never crosses the segment's ends.

mod config;
mod dict;
mod stage;
mod utf8;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use crate::error::Result;
use stage::Stage;

/// A loaded conversion config (e.g. `t2s`). Cheap to share; build once with [`Converter::get`].
pub struct Converter {
    name: &'static str,
    normalization: Vec<&'static Stage>,
    segmentation: Option<&'static Stage>,
    chain: Vec<&'static Stage>,
    /// Whether a segment matched by the segmentation dictionary is converted by the first chain
    /// stage to exactly the value the segmentation found: true when the segmentation is one
    /// dictionary that the first stage consults first (so it matches the whole key there).
    matched_segment_shortcut: bool,
}

static CONVERTERS: [OnceLock<Converter>; config::CONFIG_NAMES.len()] =
    [const { OnceLock::new() }; config::CONFIG_NAMES.len()];

impl Converter {
    /// The converter for a built-in config name (`t2s`, `s2t`, `tw2s`, `hk2s`, `s2tw`, `s2hk`,
    /// `s2twp`, `tw2sp`, …; a trailing `.json` is accepted). Built on first use and cached.
    pub fn get(config: &str) -> Result<&'static Converter> {
        let index = config::config_index(config)?;
        let cell = &CONVERTERS[index];
        if let Some(converter) = cell.get() {
            return Ok(converter);
        }
        // Racing first calls may each build; the dictionaries are shared, one result is kept.
        let built = Self::build(index)?;
        Ok(cell.get_or_init(|| built))
    }

    fn build(index: usize) -> Result<Converter> {
        let spec = config::load(index)?;
        let segmentation = spec.segmentation.as_ref().map(stage::stage);
        let chain: Vec<&'static Stage> = spec.chain.iter().map(stage::stage).collect();
        let matched_segment_shortcut =
            match (segmentation, chain.first().and_then(|s| s.first_leaf())) {
                (Some(seg), Some(first)) => {
                    seg.is_single_leaf() && seg.first_leaf().is_some_and(|l| std::ptr::eq(l, first))
                }
                _ => false,
            };
        Ok(Converter {
            name: spec.name,
            normalization: spec.normalization.iter().map(stage::stage).collect(),
            segmentation,
            chain,
            matched_segment_shortcut,
        })
    }

    /// The config name, e.g. `s2t` (without `.json`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Converts `text`, appending to `out`.
    pub fn convert_into(&self, text: &str, out: &mut String) {
        let mut bufs = Buffers::default();
        let normalized;
        let text = if self.normalization.is_empty() {
            text
        } else {
            let mut norm = String::with_capacity(text.len());
            run_chain(&self.normalization, text, &mut norm, &mut bufs);
            normalized = norm;
            normalized.as_str()
        };
        match &self.segmentation {
            None => run_chain(&self.chain, text, out, &mut bufs),
            Some(segmentation) => segmentation.segment(text, |segment, value| match value {
                Some(value) if self.matched_segment_shortcut => {
                    run_chain(&self.chain[1..], value, out, &mut bufs)
                }
                // Keys never contain NUL; unmatched runs are cut at the first one.
                Some(_) => run_chain(&self.chain, segment, out, &mut bufs),
                None => {
                    let end = memchr::memchr(0, segment.as_bytes()).unwrap_or(segment.len());
                    run_chain(&self.chain, &segment[..end], out, &mut bufs);
                }
            }),
        }
    }

    /// Converts `text` into a new string.
    pub fn convert(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        self.convert_into(text, &mut out);
        out
    }
}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Scratch strings for the intermediate results of multi-stage chains.
#[derive(Default)]
struct Buffers {
    a: String,
    b: String,
}

fn run_chain(stages: &[&Stage], text: &str, out: &mut String, bufs: &mut Buffers) {
    match stages {
        [] => out.push_str(text),
        [only] => only.convert(text, out),
        [first, middle @ .., last] => {
            bufs.a.clear();
            first.convert(text, &mut bufs.a);
            for stage in middle {
                bufs.b.clear();
                stage.convert(&bufs.a, &mut bufs.b);
                std::mem::swap(&mut bufs.a, &mut bufs.b);
            }
            last.convert(&bufs.a, out);
        }
    }
}

/// Names of all built-in configs.
pub fn config_names() -> &'static [&'static str] {
    config::CONFIG_NAMES
}
