//! Shingling: the set of hashed n-grams that stands for a text in MinHash and in exact Jaccard.
//!
//! Two units, chosen per record:
//! * `Char` — character n-grams over Unicode scalar values (default n = 5), with no word
//!   segmentation: right for Chinese (and other CJK) text. Every char counts, whitespace and
//!   punctuation included; callers normalize text first (`crate::normalize`).
//! * `Word` — word n-grams (default n = 3), a word being a maximal run of alphanumeric chars,
//!   lower-cased: right for English / Spanish. Separators between words do not matter.
//! * `Auto` picks `Char` when CJK chars make up at least `cjk_share` of the text's units (each CJK
//!   char is one unit, each run of other alphanumerics is one unit), else `Word`.
//!
//! A text with fewer than n units is *short* and a text with nothing but whitespace is *empty*:
//! neither gets shingles (they would all collide in LSH); callers match them exactly only.
//!
//! Char shingles of up to 6 chars are hashed from their code points packed into a u128 (two
//! seeded folded multiplies, one pass over the text); longer ones with seeded xxh3-64 of the
//! text slice. No allocation per shingle. A word shingle is the seeded xxh3-64 of its n word hashes. Each text's shingle
//! hashes are sorted and deduplicated, so they form a set (MinHash takes them unsorted, as the
//! minimum ignores repeats).

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::{Error, Result};

/// Default character n-gram size (CJK text).
pub const DEFAULT_CHAR_NGRAM: usize = 5;
/// Default word n-gram size (Latin-script text).
pub const DEFAULT_WORD_NGRAM: usize = 3;
/// Default share of CJK units at or above which `Auto` shingles by characters.
pub const DEFAULT_CJK_SHARE: f64 = 0.5;

/// Salts that keep word-token hashes and word-shingle hashes apart from char-shingle hashes.
const WORD_TOKEN_SALT: u64 = 0x9e37_79b9_7f4a_7c15;
const WORD_SHINGLE_SALT: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// How a text is cut into shingles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ShingleMode {
    Char,
    Word,
    /// `Char` or `Word` per record, by its share of CJK units.
    #[default]
    Auto,
}

impl ShingleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Char => "char",
            Self::Word => "word",
            Self::Auto => "auto",
        }
    }

    /// Parses `"char"`, `"word"` or `"auto"`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "char" => Ok(Self::Char),
            "word" => Ok(Self::Word),
            "auto" => Ok(Self::Auto),
            _ => Err(Error::config(format!(
                "unknown shingle mode '{name}' (expected 'char', 'word' or 'auto')"
            ))),
        }
    }
}

/// The unit a text was actually shingled by (`Auto` resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Char,
    Word,
}

/// What shingling made of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TextKind {
    /// At least n units: it has shingles and takes part in MinHash-LSH.
    #[default]
    Normal,
    /// Fewer than n units (but not blank): exact matching only.
    Short,
    /// Nothing but whitespace: exact matching only.
    Empty,
}

impl TextKind {
    /// One byte per kind (0 normal, 1 short, 2 empty), as the bindings and sketches store it.
    pub fn code(self) -> u8 {
        match self {
            Self::Normal => 0,
            Self::Short => 1,
            Self::Empty => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        [Self::Normal, Self::Short, Self::Empty]
            .get(code as usize)
            .copied()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Short => "short",
            Self::Empty => "empty",
        }
    }
}

/// Shingling parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShingleParams {
    pub mode: ShingleMode,
    /// n for character n-grams.
    pub char_ngram: usize,
    /// n for word n-grams.
    pub word_ngram: usize,
    /// `Auto`: CJK share of units at or above which a text is shingled by characters.
    pub cjk_share: f64,
    /// Seed of the shingle hash.
    pub seed: u64,
}

impl Default for ShingleParams {
    fn default() -> Self {
        Self {
            mode: ShingleMode::Auto,
            char_ngram: DEFAULT_CHAR_NGRAM,
            word_ngram: DEFAULT_WORD_NGRAM,
            cjk_share: DEFAULT_CJK_SHARE,
            seed: 0,
        }
    }
}

impl ShingleParams {
    pub fn validate(&self) -> Result<()> {
        if self.char_ngram == 0 || self.word_ngram == 0 {
            return Err(Error::config("n-gram sizes must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.cjk_share) {
            return Err(Error::config(format!(
                "cjk_share must lie in [0, 1], got {}",
                self.cjk_share
            )));
        }
        Ok(())
    }
}

/// Whether `c` is a CJK char: Han ideographs (with extensions and compatibility forms), kana,
/// Hangul syllables and jamo, bopomofo.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF        // CJK Extension A
        | 0x4E00..=0x9FFF      // CJK Unified Ideographs
        | 0xF900..=0xFAFF      // CJK Compatibility Ideographs
        | 0x20000..=0x323AF    // Extensions B..H
        | 0x3040..=0x30FF      // Hiragana, Katakana
        | 0x31F0..=0x31FF      // Katakana phonetic extensions
        | 0x3100..=0x312F      // Bopomofo
        | 0x1100..=0x11FF      // Hangul Jamo
        | 0xAC00..=0xD7AF      // Hangul syllables
    )
}

/// `char::is_alphanumeric` with fast paths for ASCII and CJK punctuation (the common non-CJK
/// chars of Chinese text), which otherwise go through Unicode table lookups.
#[inline]
fn is_word_char(c: char) -> bool {
    match c as u32 {
        0..=0x7f => c.is_ascii_alphanumeric(),
        0x3000..=0x303f => {
            c == '\u{3005}'
                || c == '\u{3006}'
                || c == '\u{3007}'
                || matches!(c as u32, 0x3021..=0x3029 | 0x3031..=0x3035 | 0x3038..=0x303c)
        }
        0xff01..=0xff0f | 0xff1a..=0xff20 | 0xff3b..=0xff40 | 0xff5b..=0xff65 => false,
        _ => c.is_alphanumeric(),
    }
}

/// The unit `text` is shingled by under `params` (resolves `Auto`).
pub fn resolve_unit(text: &str, params: &ShingleParams) -> Unit {
    match params.mode {
        ShingleMode::Char => Unit::Char,
        ShingleMode::Word => Unit::Word,
        ShingleMode::Auto => {
            let (mut cjk, mut words, mut in_word) = (0usize, 0usize, false);
            for c in text.chars() {
                if is_cjk(c) {
                    cjk += 1;
                    in_word = false;
                } else if is_word_char(c) {
                    if !in_word {
                        words += 1;
                        in_word = true;
                    }
                } else {
                    in_word = false;
                }
            }
            let total = cjk + words;
            if total == 0 || cjk as f64 >= params.cjk_share * total as f64 {
                Unit::Char
            } else {
                Unit::Word
            }
        }
    }
}

/// A reusable shingler: keeps its scratch buffers between texts (one per worker thread).
#[derive(Debug, Clone)]
pub struct Shingler {
    params: ShingleParams,
    offsets: Vec<usize>,
    words: Vec<u64>,
    lower: String,
    window: Vec<u8>,
}

impl Shingler {
    pub fn new(params: ShingleParams) -> Self {
        Self {
            params,
            offsets: Vec::new(),
            words: Vec::new(),
            lower: String::new(),
            window: Vec::new(),
        }
    }

    pub fn params(&self) -> &ShingleParams {
        &self.params
    }

    /// Replaces `out` with the sorted, deduplicated shingle hashes of `text`; `out` is left empty
    /// for short and empty texts.
    pub fn shingle(&mut self, text: &str, out: &mut Vec<u64>) -> TextKind {
        let kind = self.shingle_unsorted(text, out);
        out.sort_unstable();
        out.dedup();
        kind
    }

    /// Like [`Shingler::shingle`] but leaves the hashes in text order, repeats included: all
    /// MinHash needs (a minimum ignores repeats), without the cost of sorting.
    pub fn shingle_unsorted(&mut self, text: &str, out: &mut Vec<u64>) -> TextKind {
        out.clear();
        if text.chars().all(char::is_whitespace) {
            return TextKind::Empty;
        }
        match resolve_unit(text, &self.params) {
            Unit::Char => self.char_shingles(text, out),
            Unit::Word => self.word_shingles(text, out),
        }
    }

    fn char_shingles(&mut self, text: &str, out: &mut Vec<u64>) -> TextKind {
        let n = self.params.char_ngram;
        if n <= PACKED_MAX_CHARS {
            return packed_char_shingles(text, n, self.params.seed, out);
        }
        self.offsets.clear();
        self.offsets.extend(text.char_indices().map(|(i, _)| i));
        let chars = self.offsets.len();
        if chars < n {
            return TextKind::Short;
        }
        self.offsets.push(text.len());
        let bytes = text.as_bytes();
        let seed = self.params.seed;
        out.reserve(chars + 1 - n);
        out.extend(
            self.offsets
                .iter()
                .zip(&self.offsets[n..])
                .map(|(&start, &end)| xxh3_64_with_seed(&bytes[start..end], seed)),
        );
        TextKind::Normal
    }

    fn word_shingles(&mut self, text: &str, out: &mut Vec<u64>) -> TextKind {
        let n = self.params.word_ngram;
        let token_seed = self.params.seed ^ WORD_TOKEN_SALT;
        self.words.clear();
        let mut start = None;
        for (i, c) in text
            .char_indices()
            .chain(std::iter::once((text.len(), ' ')))
        {
            match (is_word_char(c), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    let word = &text[s..i];
                    let h = self.word_hash(word, token_seed);
                    self.words.push(h);
                    start = None;
                }
                _ => {}
            }
        }
        if self.words.len() < n {
            return TextKind::Short;
        }
        let seed = self.params.seed ^ WORD_SHINGLE_SALT;
        out.reserve(self.words.len() + 1 - n);
        for gram in self.words.windows(n) {
            self.window.clear();
            for h in gram {
                self.window.extend_from_slice(&h.to_le_bytes());
            }
            out.push(xxh3_64_with_seed(&self.window, seed));
        }
        TextKind::Normal
    }

    /// Hash of the lower-cased word, copying only when lower-casing changes it.
    fn word_hash(&mut self, word: &str, seed: u64) -> u64 {
        if word.is_ascii() {
            if !word.bytes().any(|b| b.is_ascii_uppercase()) {
                return xxh3_64_with_seed(word.as_bytes(), seed);
            }
            self.lower.clear();
            self.lower.push_str(word);
            self.lower.make_ascii_lowercase();
        } else {
            self.lower.clear();
            self.lower.extend(word.chars().flat_map(char::to_lowercase));
        }
        xxh3_64_with_seed(self.lower.as_bytes(), seed)
    }
}

/// Char n-grams up to this size are hashed from their packed code points.
const PACKED_MAX_CHARS: usize = 6;

const PACK_K0: u64 = 0xa076_1d64_78bd_642f;
const PACK_K1: u64 = 0xe703_7ed1_a0b4_28db;
const PACK_K2: u64 = 0x8ebc_6af0_9c88_c6e3;

/// 64x64 → 128-bit multiply folded to 64 bits by xor (the mixing step of wyhash and foldhash).
#[inline(always)]
fn folded_mul(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

/// Char n-grams (n ≤ 6) in one pass: the window's code points, 21 bits each, are packed into a
/// u128 (so distinct windows are distinct keys) and hashed with two seeded folded multiplies —
/// a fixed cost per shingle, where hashing the UTF-8 slice costs more and branches on its length.
fn packed_char_shingles(text: &str, n: usize, seed: u64, out: &mut Vec<u64>) -> TextKind {
    let mask: u128 = (1u128 << (21 * n)) - 1;
    let mut window: u128 = 0;
    let mut seen = 0usize;
    out.reserve(text.len() / 3);
    for c in text.chars() {
        window = ((window << 21) | u128::from(u32::from(c))) & mask;
        seen += 1;
        if seen >= n {
            let (lo, hi) = (window as u64, (window >> 64) as u64);
            let h = folded_mul(lo ^ seed ^ PACK_K0, hi ^ PACK_K1);
            out.push(folded_mul(h ^ seed, PACK_K2));
        }
    }
    if seen < n {
        out.clear();
        return TextKind::Short;
    }
    TextKind::Normal
}

/// The shingle set of one text.
pub fn shingle_set(text: &str, params: &ShingleParams) -> (TextKind, Vec<u64>) {
    let mut out = Vec::new();
    let kind = Shingler::new(*params).shingle(text, &mut out);
    (kind, out)
}

/// Shingle sets of a batch of texts, in parallel; `result[i]` belongs to `texts[i]`.
pub fn shingle_sets(texts: &[&str], params: &ShingleParams) -> Vec<(TextKind, Vec<u64>)> {
    texts
        .par_iter()
        .map_init(
            || Shingler::new(*params),
            |sh, text| {
                let mut out = Vec::new();
                let kind = sh.shingle(text, &mut out);
                (kind, out)
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_char_fast_paths_agree_with_unicode() {
        for c in (0..=0x10_ffffu32).filter_map(char::from_u32) {
            assert_eq!(is_word_char(c), c.is_alphanumeric(), "{c:?}");
        }
    }

    fn params(mode: ShingleMode) -> ShingleParams {
        ShingleParams {
            mode,
            ..ShingleParams::default()
        }
    }

    #[test]
    fn char_shingles_count_and_dedupe() {
        let (kind, set) = shingle_set("头痛发热咳嗽三天", &params(ShingleMode::Char));
        assert_eq!(kind, TextKind::Normal);
        assert_eq!(set.len(), 8 - 5 + 1);
        assert!(set.windows(2).all(|w| w[0] < w[1]));
        // a repeated n-gram counts once
        let (_, rep) = shingle_set("哈哈哈哈哈哈哈", &params(ShingleMode::Char));
        assert_eq!(rep.len(), 1);
        // exactly n chars: one shingle
        let (kind, one) = shingle_set("头痛发热咳", &params(ShingleMode::Char));
        assert_eq!((kind, one.len()), (TextKind::Normal, 1));
    }

    #[test]
    fn char_shingle_hashes_are_the_packed_window_hashes() {
        let p = params(ShingleMode::Char);
        let (_, set) = shingle_set("ab头痛发热", &p);
        let mut want: Vec<u64> = ["ab头痛发", "b头痛发热"]
            .iter()
            .map(|w| {
                let mut out = Vec::new();
                packed_char_shingles(w, 5, p.seed, &mut out);
                out[0]
            })
            .collect();
        want.sort_unstable();
        assert_eq!(set, want);
        // Windows longer than the packed limit hash their UTF-8 slice.
        let q = ShingleParams { char_ngram: 7, ..p };
        let (_, long) = shingle_set("ab头痛发热咳", &q);
        assert_eq!(
            long,
            vec![xxh3_64_with_seed("ab头痛发热咳".as_bytes(), q.seed)]
        );
    }

    /// No two distinct windows of a large real-text sample share a hash (the packing is
    /// injective, and the mixing must not merge what it gets).
    #[test]
    fn packed_hashes_do_not_collide_on_distinct_windows() {
        let text: String = (0..20_000u32)
            .map(|i| char::from_u32(0x4e00 + (i.wrapping_mul(2_654_435_761) >> 7) % 2_000).unwrap())
            .collect();
        let chars: Vec<char> = text.chars().collect();
        let mut windows: Vec<String> = chars.windows(5).map(|w| w.iter().collect()).collect();
        windows.sort_unstable();
        windows.dedup();
        let mut hashes = Vec::new();
        packed_char_shingles(&text, 5, 1, &mut hashes);
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), windows.len());
        let low: std::collections::HashSet<u32> = hashes.iter().map(|&h| h as u32).collect();
        assert!(low.len() + 2 >= hashes.len(), "low 32 bits stay distinct");
    }
    #[test]
    fn short_and_empty_texts_have_no_shingles() {
        let p = params(ShingleMode::Auto);
        assert_eq!(shingle_set("头痛发热", &p), (TextKind::Short, vec![]));
        assert_eq!(shingle_set("", &p), (TextKind::Empty, vec![]));
        assert_eq!(shingle_set(" \n\t　", &p), (TextKind::Empty, vec![]));
        assert_eq!(
            shingle_set("hello there", &params(ShingleMode::Word)),
            (TextKind::Short, vec![])
        );
        assert_eq!(
            shingle_set("!!! ??? ...", &params(ShingleMode::Word)).0,
            TextKind::Short
        );
    }

    #[test]
    fn words_are_lowercased_and_separators_ignored() {
        let p = params(ShingleMode::Word);
        let a = shingle_set("The patient has Fever, cough and HEADACHE.", &p);
        let b = shingle_set("the patient  has fever cough and headache", &p);
        assert_eq!(a, b);
        assert_eq!(a.1.len(), 7 - 3 + 1);
        let es1 = shingle_set("El PACIENTE tiene DOLOR de cabeza", &p);
        let es2 = shingle_set("el paciente tiene dolor de cabeza", &p);
        assert_eq!(es1, es2);
        let other = shingle_set("the patient has fever cough and nausea", &p);
        assert_ne!(a.1, other.1);
    }

    #[test]
    fn auto_mode_picks_the_unit_by_cjk_share() {
        let p = params(ShingleMode::Auto);
        assert_eq!(resolve_unit("患者CT检查显示肺部有阴影", &p), Unit::Char);
        assert_eq!(
            resolve_unit("The patient's CT scan shows 肺 shadows", &p),
            Unit::Word
        );
        assert_eq!(resolve_unit("El paciente tiene fiebre", &p), Unit::Word);
        assert_eq!(resolve_unit("？？？！！", &p), Unit::Char);
    }

    #[test]
    fn seed_changes_hashes_and_batch_matches_single() {
        let texts = [
            "头痛发热咳嗽三天了怎么办",
            "fever and cough for three days",
            "短",
        ];
        let p = ShingleParams::default();
        let q = ShingleParams { seed: 7, ..p };
        assert_ne!(shingle_set(texts[0], &p).1, shingle_set(texts[0], &q).1);
        let batch = shingle_sets(&texts, &p);
        for (t, got) in texts.iter().zip(&batch) {
            assert_eq!(&shingle_set(t, &p), got);
        }
        assert_eq!(batch[2].0, TextKind::Short);
    }

    #[test]
    fn bad_params_are_rejected() {
        let p = ShingleParams {
            char_ngram: 0,
            ..ShingleParams::default()
        };
        assert!(p.validate().is_err());
        assert!(ShingleMode::parse("bytes").is_err());
        assert_eq!(ShingleMode::parse("word").unwrap(), ShingleMode::Word);
    }
}
