//! ROUGE-L (Lin 2004) between predictions and references, with a tokenization for Chinese.
//!
//! Tokens: every CJK character (Han ideographs and their extensions and compatibility forms,
//! kana, Hangul, Bopomofo) is a token on its own, so Chinese is compared character by character
//! without word segmentation (the usual practice for Chinese ROUGE, and what SF-Med's medical
//! dialogue tables need). Any other run of letters or digits (Unicode alphanumerics: Latin,
//! Greek, digits, ...) is one token, lowercased, so `CT`, `ct` and `Ct` match and `37.5`
//! gives `37`, `5`. Whitespace, punctuation and symbols (full-width `，。、：` as well as ASCII)
//! separate tokens and are not tokens themselves, as in `rouge-score`'s default tokenizer,
//! which keeps only `[a-z0-9]` runs. No stemming and no stop words.
//!
//! Score: the longest common subsequence (LCS) of the two token sequences gives precision
//! `LCS / len(prediction)`, recall `LCS / len(reference)` and the F-measure with β = 1,
//! `2PR / (P + R)` (the `rouge-score` `rougeL` default; the sentence-level form, not the
//! summary-level `rougeLsum`). When either side has no token, all three are 0, as in
//! `rouge-score`. Tokens are compared through a 64-bit hash of their text (xxh3), which makes
//! the O(n·m) LCS loop compare integers; a collision between two different tokens in one pair
//! has a probability near 2⁻⁶⁴ per comparison.
//!
//! Batches run in parallel (rayon), one pair per task.

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, Result};

/// ROUGE-L of one prediction against one reference.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RougeL {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
    /// Length of the longest common subsequence, in tokens.
    pub lcs: u32,
    pub prediction_tokens: u32,
    pub reference_tokens: u32,
}

/// Whether `c` is tokenized alone (see the module comment).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF       // Hiragana, Katakana
        | 0x3100..=0x312F     // Bopomofo
        | 0x31A0..=0x31BF     // Bopomofo extended
        | 0x31F0..=0x31FF     // Katakana phonetic extensions
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified ideographs
        | 0xAC00..=0xD7AF     // Hangul syllables
        | 0xF900..=0xFAFF     // CJK compatibility ideographs
        | 0x20000..=0x323AF   // CJK extensions B–H
    )
}

/// The tokens of `text` as strings (see the module comment); for inspection and tests.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            out.push(c.to_string());
        } else if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The tokens of `text` as hashes, the form the LCS compares.
fn token_hashes(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut buf = [0u8; 4];
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(xxh3_64(word.as_bytes()));
                word.clear();
            }
            out.push(xxh3_64(c.encode_utf8(&mut buf).as_bytes()));
        } else if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            out.push(xxh3_64(word.as_bytes()));
            word.clear();
        }
    }
    if !word.is_empty() {
        out.push(xxh3_64(word.as_bytes()));
    }
    out
}

/// Length of the longest common subsequence of `a` and `b` (two-row dynamic programme, memory
/// O(min(n, m))).
pub fn lcs_len<T: PartialEq>(a: &[T], b: &[T]) -> u32 {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return 0;
    }
    let mut prev = vec![0u32; short.len() + 1];
    let mut cur = vec![0u32; short.len() + 1];
    for x in long {
        for (j, y) in short.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[short.len()]
}

fn score_tokens(pred: &[u64], reference: &[u64]) -> RougeL {
    let lcs = lcs_len(pred, reference);
    let (np, nr) = (pred.len() as u32, reference.len() as u32);
    if np == 0 || nr == 0 {
        return RougeL {
            prediction_tokens: np,
            reference_tokens: nr,
            ..RougeL::default()
        };
    }
    let precision = f64::from(lcs) / f64::from(np);
    let recall = f64::from(lcs) / f64::from(nr);
    let fmeasure = if lcs == 0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    RougeL {
        precision,
        recall,
        fmeasure,
        lcs,
        prediction_tokens: np,
        reference_tokens: nr,
    }
}

/// ROUGE-L of `prediction` against `reference`.
pub fn rouge_l(prediction: &str, reference: &str) -> RougeL {
    score_tokens(&token_hashes(prediction), &token_hashes(reference))
}

/// ROUGE-L of each prediction against the reference at the same index, in parallel.
///
/// # Errors
/// [`Error::Config`] when the two lists differ in length.
pub fn rouge_l_batch<S: AsRef<str> + Sync>(
    predictions: &[S],
    references: &[S],
) -> Result<Vec<RougeL>> {
    if predictions.len() != references.len() {
        return Err(Error::config(format!(
            "rouge_l needs as many references as predictions, got {} predictions and {} \
             references",
            predictions.len(),
            references.len()
        )));
    }
    Ok(predictions
        .par_iter()
        .zip(references.par_iter())
        .map(|(p, r)| rouge_l(p.as_ref(), r.as_ref()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn lcs_of_known_pairs() {
        let s = |t: &str| t.chars().collect::<Vec<_>>();
        assert_eq!(lcs_len(&s("ABCBDAB"), &s("BDCABA")), 4);
        assert_eq!(lcs_len(&s("AGGTAB"), &s("GXTXAYB")), 4);
        assert_eq!(lcs_len(&s("abc"), &s("abc")), 3);
        assert_eq!(lcs_len(&s("abc"), &s("def")), 0);
        assert_eq!(lcs_len(&s(""), &s("abc")), 0);
        assert_eq!(lcs_len(&s("高血压患者"), &s("患者高血压")), 3);
    }

    #[test]
    fn chinese_is_character_level() {
        // pred 7 chars, ref 8 chars; LCS 建议低盐饮食 = 6 (控制 missing from pred, 多 extra).
        let r = rouge_l("建议多低盐饮食。", "建议低盐饮食控制");
        assert_eq!(r.prediction_tokens, 7);
        assert_eq!(r.reference_tokens, 8);
        assert_eq!(r.lcs, 6);
        assert!(close(r.precision, 6.0 / 7.0));
        assert!(close(r.recall, 6.0 / 8.0));
        assert!(close(r.fmeasure, 2.0 * 6.0 / (7.0 + 8.0)));
    }

    #[test]
    fn mixed_chinese_and_english() {
        assert_eq!(
            tokenize("建议做CT检查，血压140/90 mmHg。Take 2 pills"),
            [
                "建", "议", "做", "ct", "检", "查", "血", "压", "140", "90", "mmhg", "take", "2",
                "pills"
            ]
        );
        let r = rouge_l("建议做 CT 检查", "建议行ct检查");
        // pred: 建 议 做 ct 检 查 (6); ref: 建 议 行 ct 检 查 (6); LCS 5.
        assert_eq!((r.lcs, r.prediction_tokens, r.reference_tokens), (5, 6, 6));
        assert!(close(r.fmeasure, 5.0 / 6.0));
    }

    #[test]
    fn empty_strings_score_zero() {
        for (p, r) in [("", ""), ("", "高血压"), ("高血压", ""), ("。，", "高血压")] {
            let s = rouge_l(p, r);
            assert_eq!((s.precision, s.recall, s.fmeasure), (0.0, 0.0, 0.0));
        }
    }

    #[test]
    fn identical_is_one_and_disjoint_is_zero() {
        assert!(close(
            rouge_l("多饮水，注意休息", "多饮水注意休息").fmeasure,
            1.0
        ));
        assert!(close(rouge_l("头痛", "腹泻").fmeasure, 0.0));
    }

    #[test]
    fn batch_matches_single_and_checks_lengths() {
        let p = ["高血压", "糖尿病患者", ""];
        let r = ["高血脂", "糖尿病", "x"];
        let got = rouge_l_batch(&p, &r).unwrap();
        for i in 0..3 {
            assert_eq!(got[i], rouge_l(p[i], r[i]));
        }
        assert!(rouge_l_batch(&p, &r[..2]).is_err());
    }
}
