//! A lean, exact BPE encoder for the `tokenizer.json` shapes chat models ship: byte-level BPE
//! (GPT-2, Qwen, Llama 3: a `Split` regex and/or `ByteLevel`, an optional NFC normalizer,
//! `ignore_merges`) and SentencePiece-style BPE (Llama 2, Mistral: `Metaspace`, or a
//! `Prepend`/`Replace` normalizer, byte fallback, `<unk>`).
//!
//! It gives the ids the `tokenizers` crate gives (`encode_fast(text, false)`), by the same
//! steps: the same regexes run by the same engine (`fancy-regex`), the same initial symbols
//! (characters, unknowns, byte fallback) and the same merge loop (lowest rank first, leftmost
//! on ties, stale queue entries skipped by the same test) — only without what counting does
//! not need: no offsets, alignments, token strings or `Encoding`. That overhead was about three
//! quarters of the time `tokenizers` spent on Chinese records.
//!
//! Added tokens (the chat templates' special tokens) are split out first as `tokenizers` does
//! (leftmost-longest matches on the raw text, each piece between them encoded on its own) when
//! every added token is plain: not normalized, no `lstrip`/`rstrip`/`single_word`.
//!
//! What it does not handle it declines, and the caller uses `tokenizers`: a tokenizer of
//! another shape ([`FastBpe::new`] returns `None`), and a text that holds an added token that
//! is not plain, that is not already NFC where the tokenizer normalizes to NFC/NFKC, or that
//! makes a regex fail ([`FastBpe::encode`] returns `false`). Tests compare both on every text
//! of the corpus.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use fancy_regex::Regex;
use rustc_hash::FxHashMap;
use serde_json::Value;
use unicode_normalization::{is_nfc_quick, is_nfkc_quick, IsNormalized};

/// The GPT-2 pattern `tokenizers`' `ByteLevel` pre-tokenizer splits with (`use_regex`).
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// The end all the chat models' byte-level patterns share; its lookahead is what makes them
/// need a backtracking engine.
const WS_TAIL: &str = r"|\s+(?!\S)|\s+";
/// Patterns (without [`WS_TAIL`]) run by the `regex` crate instead, with the tail's effect
/// applied by hand ([`split_plain`]), and whether they have the `\s*[\r\n]+` alternative
/// (GPT-2's, Qwen2's and Llama 3's; no other alternative of theirs matches only whitespace).
const PLAIN_HEADS: [(&str, bool); 3] = [
    (
        r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+",
        false,
    ),
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+",
        true,
    ),
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+",
        true,
    ),
];

/// A `Split` pattern, compiled for the engine that runs it fastest with the same pieces.
#[derive(Debug)]
enum Splitter {
    /// Any pattern, by `fancy-regex` as `tokenizers` runs it.
    Fancy(Regex),
    /// One of [`PLAIN_HEADS`] + `|\s+` by the `regex` crate (a DFA: no backtracking); the
    /// flag: the head has a newline alternative.
    Plain(regex::Regex, bool),
}

impl Splitter {
    fn new(pattern: &str) -> Option<Self> {
        if let Some(head) = pattern.strip_suffix(WS_TAIL) {
            if let Some(&(_, newline)) = PLAIN_HEADS.iter().find(|(h, _)| *h == head) {
                let re = regex::Regex::new(&format!("{head}|\\s+")).ok()?;
                return Some(Self::Plain(re, newline));
            }
        }
        Regex::new(pattern).ok().map(Self::Fancy)
    }
}

/// A normalizer step (applied to the whole text, in order).
#[derive(Debug)]
enum Norm {
    /// NFC / NFKC: the text must already be normalized (quick check), else declined.
    Nfc,
    Nfkc,
    /// Prepended to a non-empty text.
    Prepend(String),
    /// Every occurrence of a literal replaced.
    Replace(String, String),
}

/// How the normalized text becomes pieces.
#[derive(Debug)]
enum Pre {
    /// A `Split` with `Isolated` behaviour (matches and the gaps between them are pieces).
    Split(Splitter),
    /// `Metaspace` (the only pre-tokenizer step): spaces → `replacement`, the replacement
    /// prepended unless the text starts with it, then (with `split`) a piece before each one.
    Metaspace {
        replacement: char,
        prepend: Prepend,
        split: bool,
    },
}

/// `Metaspace`'s `prepend_scheme`: `First` prepends only to the piece at the text's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prepend {
    Always,
    First,
    Never,
}

/// The added tokens: split out (all plain) or a reason to decline a text holding one.
#[derive(Debug)]
enum Added {
    None,
    /// Every added token plain: leftmost-longest matches are split out, `ids[pattern]`.
    Split {
        ac: AhoCorasick,
        ids: Vec<u32>,
    },
    /// Some added token not plain: a text holding any added token is declined.
    Decline(AhoCorasick),
}

/// An exact encoder for one tokenizer (see the module comment).
#[derive(Debug)]
pub struct FastBpe {
    norms: Vec<Norm>,
    pre: Vec<Pre>,
    /// `ByteLevel` is the last pre-tokenizer step: bytes map to GPT-2's printable characters.
    byte_level: bool,
    /// `ByteLevel`'s `add_prefix_space` (only as the sole pre-tokenizer step).
    prefix_space: bool,
    /// Id of each single-character vocabulary entry.
    char_ids: FxHashMap<char, u32>,
    /// Byte-level: id of each byte's character (`None`: not in the vocabulary).
    byte_ids: Vec<Option<u32>>,
    /// `<0xXX>` ids when `byte_fallback` is on and the vocabulary has all 256.
    fallback: Option<Vec<u32>>,
    /// `byte_fallback` on but some `<0xXX>` missing: those characters fall back per byte only
    /// when all of theirs exist.
    fallback_partial: Option<FxHashMap<u8, u32>>,
    unk: Option<u32>,
    fuse_unk: bool,
    /// (left, right) → (rank, new id).
    merges: FxHashMap<u64, (u32, u32)>,
    /// `ignore_merges`: the whole vocabulary, a piece found there is one token.
    vocab: Option<FxHashMap<String, u32>>,
    added: Added,
    /// Identifies this encoder's entries in the per-thread piece cache ([`Scratch`]).
    id: u64,
}

/// Numbers the encoders, so that a thread's piece cache never serves one encoder's ids to
/// another.
static ENCODERS: AtomicU64 = AtomicU64::new(0);

fn pair(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

/// GPT-2's byte → printable character table (`bytes_to_unicode`).
pub(crate) fn bytes_char() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        out[b as usize] = if printable {
            char::from(b)
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    out
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn is_null_or_false(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null) | Some(Value::Bool(false)))
}

/// A `Split` pattern as `tokenizers` compiles it: a regex, or a literal escaped.
fn pattern(v: &Value) -> Option<Splitter> {
    if let Some(s) = str_of(v, "Regex") {
        return Splitter::new(s);
    }
    str_of(v, "String").and_then(|s| {
        Regex::new(&fancy_regex::escape(s))
            .ok()
            .map(Splitter::Fancy)
    })
}

fn norms(v: &Value, out: &mut Vec<Norm>) -> Option<()> {
    match str_of(v, "type")? {
        "Sequence" => {
            for n in v.get("normalizers")?.as_array()? {
                norms(n, out)?;
            }
        }
        "NFC" => out.push(Norm::Nfc),
        "NFKC" => out.push(Norm::Nfkc),
        "Prepend" => out.push(Norm::Prepend(str_of(v, "prepend")?.to_string())),
        "Replace" => {
            // Literal patterns only (a regex replace is declined).
            let lit = str_of(v.get("pattern")?, "String")?;
            if lit.is_empty() {
                return None;
            }
            out.push(Norm::Replace(
                lit.to_string(),
                str_of(v, "content")?.to_string(),
            ));
        }
        _ => return None,
    }
    Some(())
}

/// The pre-tokenizer's steps, flattened (`Sequence`s opened).
fn pre_steps(v: &Value, out: &mut Vec<Value>) -> Option<()> {
    if str_of(v, "type")? == "Sequence" {
        for p in v.get("pretokenizers")?.as_array()? {
            pre_steps(p, out)?;
        }
    } else {
        out.push(v.clone());
    }
    Some(())
}

/// The `added_tokens` of a serialized tokenizer (see [`Added`]).
fn added_tokens(tok: &Value) -> Option<Added> {
    let list = match tok.get("added_tokens") {
        None | Some(Value::Null) => return Some(Added::None),
        Some(v) => v.as_array()?,
    };
    let mut contents = Vec::with_capacity(list.len());
    let mut ids = Vec::with_capacity(list.len());
    let mut plain = true;
    for t in list {
        let content = str_of(t, "content")?;
        if content.is_empty() {
            return None;
        }
        contents.push(content);
        ids.push(u32::try_from(t.get("id")?.as_u64()?).ok()?);
        plain &= ["normalized", "lstrip", "rstrip", "single_word"]
            .iter()
            .all(|k| t.get(*k).and_then(Value::as_bool) == Some(false));
    }
    if contents.is_empty() {
        return Some(Added::None);
    }
    if !plain {
        return Some(Added::Decline(AhoCorasick::new(&contents).ok()?));
    }
    let ac = AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&contents)
        .ok()?;
    Some(Added::Split { ac, ids })
}

impl FastBpe {
    /// The encoder for a tokenizer serialized as `tokenizers` does (`serde_json::to_value`),
    /// or `None` when its shape is not one this module reproduces exactly.
    pub fn new(tok: &Value) -> Option<Self> {
        let model = tok.get("model")?;
        if str_of(model, "type")? != "BPE"
            || !model
                .get("dropout")
                .is_none_or(|d| d.is_null() || d.as_f64() == Some(0.0))
            || !model
                .get("continuing_subword_prefix")
                .is_none_or(|p| p.is_null())
            || !model.get("end_of_word_suffix").is_none_or(|p| p.is_null())
        {
            return None;
        }
        let mut norm_steps = Vec::new();
        if let Some(n) = tok.get("normalizer").filter(|n| !n.is_null()) {
            norms(n, &mut norm_steps)?;
        }
        let mut steps = Vec::new();
        if let Some(p) = tok.get("pre_tokenizer").filter(|p| !p.is_null()) {
            pre_steps(p, &mut steps)?;
        }
        let (mut pre, mut byte_level, mut prefix_space) = (Vec::new(), false, false);
        let last = steps.len().saturating_sub(1);
        for (i, s) in steps.iter().enumerate() {
            match str_of(s, "type")? {
                "Split" => {
                    let isolated = str_of(s, "behavior")? == "Isolated";
                    if !isolated || !is_null_or_false(s.get("invert")) || byte_level {
                        return None;
                    }
                    pre.push(Pre::Split(pattern(s.get("pattern")?)?));
                }
                "ByteLevel" if i == last => {
                    byte_level = true;
                    prefix_space = s.get("add_prefix_space").and_then(Value::as_bool)?;
                    if prefix_space && steps.len() > 1 {
                        return None;
                    }
                    if s.get("use_regex").and_then(Value::as_bool).unwrap_or(true) {
                        pre.push(Pre::Split(Splitter::new(GPT2_PATTERN)?));
                    }
                }
                "Metaspace" if steps.len() == 1 => {
                    let replacement = str_of(s, "replacement")?.chars().next()?;
                    let prepend = match str_of(s, "prepend_scheme").unwrap_or("always") {
                        "always" => Prepend::Always,
                        "first" => Prepend::First,
                        "never" => Prepend::Never,
                        _ => return None,
                    };
                    let split = s.get("split").and_then(Value::as_bool).unwrap_or(true);
                    pre.push(Pre::Metaspace {
                        replacement,
                        prepend,
                        split,
                    });
                }
                _ => return None,
            }
        }

        let vocab_json = model.get("vocab")?.as_object()?;
        let mut vocab: FxHashMap<String, u32> = FxHashMap::default();
        vocab.reserve(vocab_json.len());
        for (k, id) in vocab_json {
            vocab.insert(k.clone(), u32::try_from(id.as_u64()?).ok()?);
        }
        let mut merges = FxHashMap::default();
        for (rank, m) in model.get("merges")?.as_array()?.iter().enumerate() {
            let (a, b) = match m {
                Value::Array(ab) if ab.len() == 2 => (ab[0].as_str()?, ab[1].as_str()?),
                Value::String(s) => s.split_once(' ')?,
                _ => return None,
            };
            let new_id = *vocab.get(&format!("{a}{b}"))?;
            let key = pair(*vocab.get(a)?, *vocab.get(b)?);
            merges.insert(key, (u32::try_from(rank).ok()?, new_id));
        }
        let char_ids: FxHashMap<char, u32> = vocab
            .iter()
            .filter_map(|(k, &id)| {
                let mut cs = k.chars();
                match (cs.next(), cs.next()) {
                    (Some(c), None) => Some((c, id)),
                    _ => None,
                }
            })
            .collect();
        let byte_ids = if byte_level {
            bytes_char()
                .iter()
                .map(|c| char_ids.get(c).copied())
                .collect()
        } else {
            Vec::new()
        };
        let (mut fallback, mut fallback_partial) = (None, None);
        if model
            .get("byte_fallback")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            let ids: FxHashMap<u8, u32> = (0..=255u8)
                .filter_map(|b| vocab.get(&format!("<{b:#04X}>")).map(|&id| (b, id)))
                .collect();
            if ids.len() == 256 {
                fallback = Some((0..=255u8).map(|b| ids[&b]).collect());
            } else {
                fallback_partial = Some(ids);
            }
        }
        let unk = match model.get("unk_token").filter(|u| !u.is_null()) {
            Some(u) => Some(*vocab.get(u.as_str()?)?),
            None => None,
        };
        let added = added_tokens(tok)?;
        let ignore_merges = model.get("ignore_merges").and_then(Value::as_bool) == Some(true);
        Some(Self {
            norms: norm_steps,
            pre,
            byte_level,
            prefix_space,
            char_ids,
            byte_ids,
            fallback,
            fallback_partial,
            unk,
            fuse_unk: model
                .get("fuse_unk")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            merges,
            vocab: ignore_merges.then_some(vocab),
            added,
            id: ENCODERS.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Whether `text` holds an added token that is not plain (the text is then declined).
    fn has_added(&self, text: &str) -> bool {
        matches!(&self.added, Added::Decline(ac) if ac.is_match(text))
    }

    /// The normalized text, or `None` where this module declines it.
    fn normalize(&self, text: &str) -> Option<String> {
        let mut s = text.to_string();
        for n in &self.norms {
            match n {
                Norm::Nfc => {
                    if is_nfc_quick(s.chars()) != IsNormalized::Yes {
                        return None;
                    }
                }
                Norm::Nfkc => {
                    if is_nfkc_quick(s.chars()) != IsNormalized::Yes {
                        return None;
                    }
                }
                Norm::Prepend(p) => {
                    if !s.is_empty() {
                        s.insert_str(0, p);
                    }
                }
                Norm::Replace(from, to) => {
                    if s.contains(from.as_str()) {
                        s = s.replace(from.as_str(), to);
                    }
                }
            }
        }
        Some(s)
    }

    /// Appends the ids of `text` (no special tokens added) to `out`; `false` (and `out` as it
    /// was) when this module declines the text.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) -> bool {
        let start = out.len();
        let done = match &self.added {
            Added::Split { ac, ids } => {
                let mut prev = 0;
                let mut ok = true;
                for m in ac.find_iter(text) {
                    ok = ok && self.encode_section(&text[prev..m.start()], prev == 0, out);
                    out.push(ids[m.pattern().as_usize()]);
                    prev = m.end();
                }
                ok && self.encode_section(&text[prev..], prev == 0, out)
            }
            _ => self.encode_section(text, true, out),
        };
        if !done {
            out.truncate(start);
        }
        done
    }

    /// [`Self::encode`] of a text without plain added tokens; `at_start`: the section begins
    /// the text (for `Metaspace`'s `first` prepend scheme).
    fn encode_section(&self, text: &str, at_start: bool, out: &mut Vec<u32>) -> bool {
        if text.is_empty() {
            return true;
        }
        if self.has_added(text) {
            return false;
        }
        let Some(mut s) = self.normalize(text) else {
            return false;
        };
        if !self.norms.is_empty() && s != text && self.has_added(&s) {
            return false;
        }
        if self.prefix_space && !s.starts_with(' ') {
            s.insert(0, ' ');
        }
        let start = out.len();
        let mut pieces = vec![(0, s.len())];
        for p in &self.pre {
            match p {
                Pre::Split(re) => {
                    let mut next = Vec::with_capacity(pieces.len() * 4);
                    for &(a, b) in &pieces {
                        if !split_isolated(re, &s[a..b], a, &mut next) {
                            return false;
                        }
                    }
                    pieces = next;
                }
                Pre::Metaspace {
                    replacement,
                    prepend,
                    split,
                } => {
                    let mut buf = [0u8; 4];
                    let rep: &str = replacement.encode_utf8(&mut buf);
                    if s.contains(' ') {
                        s = s.replace(' ', rep);
                    }
                    let prepend = match prepend {
                        Prepend::Always => true,
                        Prepend::First => at_start,
                        Prepend::Never => false,
                    };
                    if prepend && !s.starts_with(*replacement) {
                        s.insert_str(0, rep);
                    }
                    pieces = if *split {
                        let mut v = Vec::new();
                        let mut begin = 0;
                        for (i, _) in s.match_indices(*replacement) {
                            if i > begin {
                                v.push((begin, i));
                            }
                            begin = i;
                        }
                        if begin < s.len() {
                            v.push((begin, s.len()));
                        }
                        v
                    } else {
                        vec![(0, s.len())]
                    };
                }
            }
        }
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            for &(a, b) in &pieces {
                if a < b {
                    self.piece(&s[a..b], out, &mut scratch);
                }
            }
        });
        debug_assert!(out.len() >= start);
        true
    }

    /// The initial symbol ids of one character, as `BPE::merge_word` makes them (vocabulary,
    /// else byte fallback, else the (possibly fused) unknown token, else nothing).
    fn push_char(&self, c: char, id: Option<u32>, syms: &mut Vec<u32>, unk: &mut bool) {
        if let Some(id) = id {
            if *unk {
                syms.extend(self.unk);
                *unk = false;
            }
            syms.push(id);
            return;
        }
        let mut buf = [0u8; 4];
        let bytes = c.encode_utf8(&mut buf).as_bytes();
        if let Some(fb) = &self.fallback {
            syms.extend(bytes.iter().map(|&b| fb[b as usize]));
            return;
        }
        if let Some(fb) = &self.fallback_partial {
            if bytes.iter().all(|b| fb.contains_key(b)) {
                syms.extend(bytes.iter().map(|b| fb[b]));
                return;
            }
        }
        if self.unk.is_some() {
            if *unk && !self.fuse_unk {
                syms.extend(self.unk);
            }
            *unk = true;
        }
    }

    /// The ids of one pre-tokenized piece (`BPE::tokenize`), from the thread's piece cache
    /// when this encoder met the piece before (texts of one corpus repeat words and phrases:
    /// `tokenizers` keeps such a cache too). The cache holds exact results, so counts do not
    /// depend on what it holds.
    fn piece(&self, piece: &str, out: &mut Vec<u32>, sc: &mut Scratch) {
        if sc.owner != Some(self.id) {
            sc.cache.clear();
            sc.cached.clear();
            sc.cache_bytes = 0;
            sc.owner = Some(self.id);
        }
        let cacheable = piece.len() <= CACHE_PIECE_BYTES;
        if cacheable {
            if let Some(&(start, len)) = sc.cache.get(piece) {
                out.extend_from_slice(&sc.cached[start as usize..(start + len) as usize]);
                return;
            }
        }
        let from = out.len();
        self.encode_piece(piece, out, sc);
        if cacheable {
            if sc.cache_bytes >= CACHE_BYTES || sc.cached.len() >= CACHE_IDS {
                sc.cache.clear();
                sc.cached.clear();
                sc.cache_bytes = 0;
            }
            sc.cache_bytes += piece.len();
            let ids = &out[from..];
            sc.cache
                .insert(piece.into(), (sc.cached.len() as u32, ids.len() as u32));
            sc.cached.extend_from_slice(ids);
        }
    }

    /// [`Self::piece`] without the cache.
    fn encode_piece(&self, piece: &str, out: &mut Vec<u32>, sc: &mut Scratch) {
        let syms = &mut sc.syms;
        syms.clear();
        let mut unk = false;
        if self.byte_level {
            let chars = BYTE_CHARS.with(|c| *c);
            if let Some(vocab) = &self.vocab {
                let mapped: String = piece.bytes().map(|b| chars[b as usize]).collect();
                if let Some(&id) = vocab.get(&mapped) {
                    out.push(id);
                    return;
                }
            }
            for b in piece.bytes() {
                self.push_char(chars[b as usize], self.byte_ids[b as usize], syms, &mut unk);
            }
        } else {
            if let Some(&id) = self.vocab.as_ref().and_then(|v| v.get(piece)) {
                out.push(id);
                return;
            }
            for c in piece.chars() {
                self.push_char(c, self.char_ids.get(&c).copied(), syms, &mut unk);
            }
        }
        if unk {
            syms.extend(self.unk);
        }
        self.merge_all(sc);
        out.extend(sc.nodes.iter().filter(|n| n.alive).map(|n| n.id));
    }

    /// `Word::merge_all` without dropout: repeatedly the lowest-ranked adjacent pair (the
    /// leftmost of equal ranks), skipping queue entries whose pair no longer gives their id.
    fn merge_all(&self, sc: &mut Scratch) {
        let Scratch {
            syms, nodes, heap, ..
        } = sc;
        nodes.clear();
        heap.clear();
        let n = syms.len();
        nodes.extend(syms.iter().enumerate().map(|(i, &id)| Node {
            id,
            prev: i as i64 - 1,
            next: if i + 1 < n { i as i64 + 1 } else { -1 },
            alive: true,
        }));
        for i in 1..n {
            if let Some(&(rank, new_id)) = self.merges.get(&pair(syms[i - 1], syms[i])) {
                heap.push(Reverse((rank, i - 1, new_id)));
            }
        }
        while let Some(Reverse((_, pos, new_id))) = heap.pop() {
            let cur = nodes[pos];
            if !cur.alive || cur.next < 0 {
                continue;
            }
            let next_pos = cur.next as usize;
            let right = nodes[next_pos];
            match self.merges.get(&pair(cur.id, right.id)) {
                Some(&(_, id)) if id == new_id => {}
                _ => continue,
            }
            nodes[pos].id = new_id;
            nodes[pos].next = right.next;
            nodes[next_pos].alive = false;
            if right.next >= 0 {
                nodes[right.next as usize].prev = pos as i64;
            }
            let cur = nodes[pos];
            if cur.prev >= 0 {
                let prev = cur.prev as usize;
                if let Some(&(rank, id)) = self.merges.get(&pair(nodes[prev].id, cur.id)) {
                    heap.push(Reverse((rank, prev, id)));
                }
            }
            if cur.next >= 0 {
                let next = cur.next as usize;
                if let Some(&(rank, id)) = self.merges.get(&pair(cur.id, nodes[next].id)) {
                    heap.push(Reverse((rank, pos, id)));
                }
            }
        }
    }
}

/// Matches and the gaps between them as pieces (`SplitDelimiterBehavior::Isolated`), offset
/// by `base`; `false` when the regex fails (backtracking limit), which `tokenizers` handles
/// by ending the split early: declined here.
fn split_isolated(re: &Splitter, s: &str, base: usize, out: &mut Vec<(usize, usize)>) -> bool {
    let re = match re {
        Splitter::Fancy(re) => re,
        Splitter::Plain(re, newline) => {
            split_plain(re, *newline, s, base, out);
            return true;
        }
    };
    let mut prev = 0;
    for m in re.find_iter(s) {
        let Ok(m) = m else {
            return false;
        };
        if prev != m.start() {
            out.push((base + prev, base + m.start()));
        }
        if m.start() != m.end() {
            out.push((base + m.start(), base + m.end()));
        }
        prev = m.end();
    }
    if prev != s.len() {
        out.push((base + prev, base + s.len()));
    }
    true
}

/// [`split_isolated`] for a [`Splitter::Plain`] pattern: what `head|\s+(?!\S)|\s+` gives.
/// Every character is matched by some alternative, so the matches tile the text. A match of
/// only whitespace that the last alternative made (with a newline alternative in the head:
/// one not ending in `\r`/`\n`, which that alternative would have taken first), of two
/// characters or more and followed by more text (a non-space, as `\s+` is greedy), is what
/// `\s+(?!\S)` matches one character shorter; the search resumes at that last character.
fn split_plain(
    re: &regex::Regex,
    newline: bool,
    s: &str,
    base: usize,
    out: &mut Vec<(usize, usize)>,
) {
    let mut pos = 0;
    while let Some(m) = re.find_at(s, pos) {
        let (start, mut end) = (m.start(), m.end());
        if start > pos {
            out.push((base + pos, base + start)); // a gap (none with these patterns)
        }
        if end < s.len() {
            let text = &s[start..end];
            let mut chars = text.chars();
            let last = chars.next_back();
            if let Some(last) = last {
                let from_last_alternative = !(newline && matches!(last, '\r' | '\n'));
                if from_last_alternative
                    && chars.clone().next().is_some()
                    && text.chars().all(char::is_whitespace)
                {
                    end -= last.len_utf8();
                }
            }
        }
        out.push((base + start, base + end));
        pos = end;
        if pos >= s.len() {
            break;
        }
    }
    if pos < s.len() {
        out.push((base + pos, base + s.len()));
    }
}

#[derive(Debug, Clone, Copy)]
struct Node {
    id: u32,
    prev: i64,
    next: i64,
    alive: bool,
}

/// Pieces longer than this (in bytes) are not cached (as `tokenizers`' word cache, which
/// skips words of 256 characters and more).
const CACHE_PIECE_BYTES: usize = 256;
/// A thread's piece cache starts over when its pieces hold this many bytes or it holds this
/// many ids (about 16 MB a thread in all).
const CACHE_BYTES: usize = 1 << 23;
const CACHE_IDS: usize = 1 << 21;

/// Buffers reused across pieces and the piece cache (one set per thread).
#[derive(Default)]
struct Scratch {
    syms: Vec<u32>,
    nodes: Vec<Node>,
    heap: BinaryHeap<Reverse<(u32, usize, u32)>>,
    /// The encoder whose pieces `cache` holds.
    owner: Option<u64>,
    /// Piece → (start, len) of its ids in `cached`.
    cache: FxHashMap<Box<str>, (u32, u32)>,
    cached: Vec<u32>,
    /// Bytes of the pieces in `cache`.
    cache_bytes: usize,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    static BYTE_CHARS: [char; 256] = bytes_char();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tokenizer(normalized: bool) -> FastBpe {
        let added = json!({"id": 3, "content": "<s>", "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": normalized, "special": true});
        FastBpe::new(&json!({
            "added_tokens": [added],
            "normalizer": null,
            "pre_tokenizer": null,
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "fuse_unk": false,
                "byte_fallback": false, "vocab": {"a": 0, "b": 1, "ab": 2, "<s>": 3},
                "merges": [["a", "b"]]},
        }))
        .expect("a supported shape")
    }

    #[test]
    fn plain_splitters_cut_where_the_lookahead_patterns_do() {
        let texts = [
            "",
            " ",
            "  ",
            "\n",
            " \n \n x",
            "a  b   c",
            "a \t\tb  \t c\t\t",
            "x\r\n\r\n  y\r\n",
            "  \u{3000} x\u{3000}\u{3000}y \u{a0}z\u{2028}w",
            "line.\n\n   - two\n\t\tthree   ",
            "Don't STOP, I'LL go. 1234567 ٣٤٥ ½",
            "头痛 3天，加重\n\n  1小时。",
            "\t\n \r\n",
        ];
        for (head, _) in PLAIN_HEADS {
            let pattern = format!("{head}{WS_TAIL}");
            let plain = Splitter::new(&pattern).unwrap();
            assert!(matches!(plain, Splitter::Plain(..)), "{pattern}");
            let fancy = Splitter::Fancy(Regex::new(&pattern).unwrap());
            for t in texts {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                assert!(split_isolated(&plain, t, 0, &mut a));
                assert!(split_isolated(&fancy, t, 0, &mut b));
                assert_eq!(a, b, "{pattern} on {t:?}");
            }
        }
    }

    #[test]
    fn plain_added_tokens_are_split_out_and_others_declined() {
        let mut ids = vec![7];
        assert!(tokenizer(false).encode("ab<s>aab<s>", &mut ids));
        assert_eq!(ids, [7, 2, 3, 0, 2, 3]);
        let mut ids = vec![7];
        assert!(!tokenizer(true).encode("ab<s>", &mut ids));
        assert_eq!(ids, [7]);
        assert!(tokenizer(true).encode("abab", &mut ids));
        assert_eq!(ids, [7, 2, 2]);
    }
}
