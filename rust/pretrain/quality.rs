//! Document quality heuristics for the pretraining corpus, in the spirit of Gopher's and
//! FineWeb's filters but on characters (Chinese has no spaces to count words by). Each document
//! gets one label: 0 (kept) or the code of the first [`Reason`] it fails, checked in the
//! order of the enum, so the manifest can count removals by reason.
//!
//! - length in characters (`min_chars`, `max_chars`);
//! - CJK share: CJK ideographs among letters and digits (`min_cjk_share`, 0 disables it);
//! - repeated lines: the share of non-blank lines equal to an earlier line, and the share of
//!   characters in them (`max_repeated_lines`, `max_repeated_line_chars`);
//! - repeated n-grams: the share of characters covered by a character `ngram`-gram that occurs
//!   more than once in the document (`max_repeated_ngram_chars`; Gopher's duplicate n-gram
//!   fraction);
//! - boilerplate: the share of lines holding a boilerplate phrase (`max_boilerplate_lines`).
//!
//! Reads documents and returns labels; it removes nothing (the caller partitions the file).

use std::path::Path;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{DataError, DataErrorKind, Error, Result};
use crate::io::{OnError, ReaderOptions, RecordReader};

/// Why a document was removed; the discriminant is its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    TooShort = 1,
    TooLong = 2,
    LowCjkShare = 3,
    RepeatedLines = 4,
    RepeatedLineChars = 5,
    RepeatedNgrams = 6,
    Boilerplate = 7,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::TooShort,
        Reason::TooLong,
        Reason::LowCjkShare,
        Reason::RepeatedLines,
        Reason::RepeatedLineChars,
        Reason::RepeatedNgrams,
        Reason::Boilerplate,
    ];

    /// Stable name (manifest keys and file names).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TooShort => "too_short",
            Reason::TooLong => "too_long",
            Reason::LowCjkShare => "low_cjk_share",
            Reason::RepeatedLines => "repeated_lines",
            Reason::RepeatedLineChars => "repeated_line_chars",
            Reason::RepeatedNgrams => "repeated_ngrams",
            Reason::Boilerplate => "boilerplate",
        }
    }
}

/// Label of a record without a text field (or whose text is not a string).
pub const NO_TEXT: u8 = 255;

/// Thresholds; a share of 1.0 (or `min_cjk_share` 0) never removes anything.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    pub min_chars: u64,
    pub max_chars: u64,
    pub min_cjk_share: f64,
    pub max_repeated_lines: f64,
    pub max_repeated_line_chars: f64,
    pub ngram: usize,
    pub max_repeated_ngram_chars: f64,
    pub max_boilerplate_lines: f64,
    pub boilerplate: Vec<String>,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            min_chars: 20,
            max_chars: 1_000_000,
            min_cjk_share: 0.0,
            max_repeated_lines: 0.3,
            max_repeated_line_chars: 0.2,
            ngram: 10,
            max_repeated_ngram_chars: 0.6,
            max_boilerplate_lines: 0.5,
            boilerplate: Vec::new(),
        }
    }
}

impl QualityConfig {
    pub fn validate(&self) -> Result<()> {
        let shares = [
            ("min_cjk_share", self.min_cjk_share),
            ("max_repeated_lines", self.max_repeated_lines),
            ("max_repeated_line_chars", self.max_repeated_line_chars),
            ("max_repeated_ngram_chars", self.max_repeated_ngram_chars),
            ("max_boilerplate_lines", self.max_boilerplate_lines),
        ];
        for (name, v) in shares {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::config(format!("{name} must lie in [0, 1], got {v}")));
            }
        }
        if self.ngram < 2 {
            return Err(Error::config(format!(
                "ngram must be at least 2, got {}",
                self.ngram
            )));
        }
        if self.min_chars > self.max_chars {
            return Err(Error::config(format!(
                "min_chars {} is above max_chars {}",
                self.min_chars, self.max_chars
            )));
        }
        Ok(())
    }

    /// The first reason `text` fails, if any.
    pub fn check(&self, text: &str) -> Option<Reason> {
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len() as u64;
        if n < self.min_chars {
            return Some(Reason::TooShort);
        }
        if n > self.max_chars {
            return Some(Reason::TooLong);
        }
        if self.min_cjk_share > 0.0 && cjk_share(&chars) < self.min_cjk_share {
            return Some(Reason::LowCjkShare);
        }
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let (dup_lines, dup_chars, line_chars) = repeated_lines(&lines);
        if !lines.is_empty() && dup_lines as f64 / lines.len() as f64 > self.max_repeated_lines {
            return Some(Reason::RepeatedLines);
        }
        if line_chars > 0 && dup_chars as f64 / line_chars as f64 > self.max_repeated_line_chars {
            return Some(Reason::RepeatedLineChars);
        }
        if self.max_repeated_ngram_chars < 1.0
            && repeated_ngram_share(&chars, self.ngram) > self.max_repeated_ngram_chars
        {
            return Some(Reason::RepeatedNgrams);
        }
        if !self.boilerplate.is_empty() && !lines.is_empty() {
            let hits = lines
                .iter()
                .filter(|l| self.boilerplate.iter().any(|b| l.contains(b.as_str())))
                .count();
            if hits as f64 / lines.len() as f64 > self.max_boilerplate_lines {
                return Some(Reason::Boilerplate);
            }
        }
        None
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2EBEF | 0x30000..=0x3134F)
}

/// CJK ideographs among the letters and digits (0 when there are none).
fn cjk_share(chars: &[char]) -> f64 {
    let (mut cjk, mut alnum) = (0u64, 0u64);
    for &c in chars {
        if c.is_alphanumeric() {
            alnum += 1;
            cjk += u64::from(is_cjk(c));
        }
    }
    if alnum == 0 {
        0.0
    } else {
        cjk as f64 / alnum as f64
    }
}

/// (lines equal to an earlier line, characters in them, characters in all lines).
fn repeated_lines(lines: &[&str]) -> (usize, u64, u64) {
    let mut seen: FxHashSet<&str> = FxHashSet::default();
    let (mut dup, mut dup_chars, mut all) = (0usize, 0u64, 0u64);
    for l in lines {
        let c = l.chars().count() as u64;
        all += c;
        if !seen.insert(l) {
            dup += 1;
            dup_chars += c;
        }
    }
    (dup, dup_chars, all)
}

/// Share of non-whitespace characters covered by an `n`-gram of characters occurring more than
/// once.
fn repeated_ngram_share(chars: &[char], n: usize) -> f64 {
    let text: Vec<char> = chars
        .iter()
        .copied()
        .filter(|c| !c.is_whitespace())
        .collect();
    if text.len() < n + 1 {
        return 0.0;
    }
    let mut buf = String::new();
    let hashes: Vec<u64> = text
        .windows(n)
        .map(|w| {
            buf.clear();
            buf.extend(w);
            xxh3_64(buf.as_bytes())
        })
        .collect();
    let mut counts: FxHashMap<u64, u32> = FxHashMap::default();
    for &h in &hashes {
        *counts.entry(h).or_insert(0) += 1;
    }
    let mut covered = vec![false; text.len()];
    for (i, h) in hashes.iter().enumerate() {
        if counts[h] > 1 {
            covered[i..i + n].iter_mut().for_each(|c| *c = true);
        }
    }
    covered.iter().filter(|&&c| c).count() as f64 / text.len() as f64
}

/// One label per record of `input` (0 kept, a [`Reason`] code, or [`NO_TEXT`]): `field` must
/// be a string; a record without it is an error naming the record unless `reader.on_error` is
/// [`OnError::Skip`], which labels it [`NO_TEXT`]. Records the reader rejects are errors (the
/// documents are the pipeline's own files).
pub fn quality_labels(
    input: &Path,
    field: &str,
    cfg: &QualityConfig,
    reader: &ReaderOptions,
) -> Result<Vec<u8>> {
    cfg.validate()?;
    let options = ReaderOptions {
        on_error: OnError::Raise,
        ..reader.clone()
    };
    let mut rd = RecordReader::open(input, options)?;
    let mut labels = Vec::new();
    while let Some(batch) = rd.next_batch()? {
        let part: Vec<Result<u8>> = batch
            .records
            .par_iter()
            .zip(&batch.origins)
            .with_min_len(64)
            .map(|(r, origin)| match r.get(field) {
                Some(Value::String(t)) => Ok(cfg.check(t).map_or(0, |x| x as u8)),
                _ if reader.on_error == OnError::Skip => Ok(NO_TEXT),
                other => {
                    let (kind, why) = match other {
                        None => (
                            DataErrorKind::MissingField,
                            "missing text field".to_string(),
                        ),
                        Some(_) => (DataErrorKind::FieldType, "expected a string".to_string()),
                    };
                    let mut e = DataError::new(input, kind, why)
                        .at_record(origin.index)
                        .in_field(field);
                    if let Some(l) = origin.line {
                        e = e.at_line(l);
                    }
                    Err(e.into())
                }
            })
            .collect();
        for l in part {
            labels.push(l?);
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> QualityConfig {
        QualityConfig {
            min_chars: 5,
            ..QualityConfig::default()
        }
    }

    #[test]
    fn each_heuristic_names_its_reason() {
        let c = cfg();
        let good = "头痛可能由紧张、睡眠不足或感冒引起。\n多休息，多喝水，必要时就医检查。";
        assert_eq!(c.check(good), None);
        assert_eq!(c.check("头痛"), Some(Reason::TooShort));
        let long = QualityConfig {
            max_chars: 10,
            ..cfg()
        };
        assert_eq!(long.check(good), Some(Reason::TooLong));
        let cjk = QualityConfig {
            min_cjk_share: 0.5,
            ..cfg()
        };
        assert_eq!(
            cjk.check("This is an English document."),
            Some(Reason::LowCjkShare)
        );
        assert_eq!(cjk.check(good), None);
        let lines = "点击这里\n点击这里\n点击这里\n正文内容很有用";
        assert_eq!(c.check(lines), Some(Reason::RepeatedLines));
        let line_chars = "甲\n乙\n丙\n丁\n戊\n己\n庚\n辛\n壬\n一二三四五六七八九十一二三四五\n一二三四五六七八九十一二三四五";
        assert_eq!(
            QualityConfig {
                max_repeated_ngram_chars: 1.0,
                ..cfg()
            }
            .check(line_chars),
            Some(Reason::RepeatedLineChars)
        );
        let ngrams = "多喝热水多休息。".repeat(6);
        assert_eq!(c.check(&ngrams), Some(Reason::RepeatedNgrams));
        let boiler = QualityConfig {
            boilerplate: vec!["版权所有".into()],
            ..cfg()
        };
        assert_eq!(
            boiler.check("本站版权所有\n转载请注明版权所有\n高血压患者应低盐饮食"),
            Some(Reason::Boilerplate)
        );
    }

    #[test]
    fn repeated_ngram_share_counts_covered_characters() {
        let s: Vec<char> = "abcdefabcdef".chars().collect();
        assert_eq!(repeated_ngram_share(&s, 6), 1.0);
        let s: Vec<char> = "abcdefghijkl".chars().collect();
        assert_eq!(repeated_ngram_share(&s, 3), 0.0);
        let s: Vec<char> = "abcxyzabc".chars().collect();
        assert!((repeated_ngram_share(&s, 3) - 6.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn bad_thresholds_are_config_errors() {
        let c = QualityConfig {
            max_repeated_lines: 1.5,
            ..cfg()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_repeated_lines"));
    }
}
