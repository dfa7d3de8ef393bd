//! Token counting with a Hugging Face `tokenizer.json` through the `tokenizers` crate: plain
//! texts in parallel ([`TokenCounter::count_batch`]) and conversations rendered with a chat
//! template, turn by turn, the way LLaMA-Factory's `encode_multiturn` encodes them
//! ([`TemplateCounter`]). Every text element is encoded with `add_special_tokens = false`;
//! BOS/EOS elements count one token each (or none, for a BOS the tokenizer does not have).
//! `encode_fast` gives the same ids as `encode` (it only skips the offsets); the tests check the
//! counts against the Python `tokenizers` package. BPE tokenizers of the usual shapes take the
//! exact fast path of `bpe.rs` instead, which gives the same ids.
//!
//! Does not read files of records (see `report.rs`) and does not truncate (see `truncate.rs`).

use std::path::{Path, PathBuf};

use std::borrow::Cow;

use std::cell::RefCell;
use std::sync::Arc;

use rayon::prelude::*;
use tokenizers::{AddedToken, Tokenizer};

use super::bpe::FastBpe;
use super::special::{self, SpecialTokens};
use super::template::{fill, Conversation, Element, Slot, Template};
use crate::error::{Error, Result};

/// A loaded tokenizer, with the BOS/EOS its folder configures (`special.rs`). Texts are
/// encoded by the exact fast BPE path (`bpe.rs`) where the tokenizer's shape and the text
/// allow it, else by `tokenizers`: the ids are the same either way.
#[derive(Clone)]
pub struct TokenCounter {
    tokenizer: Tokenizer,
    path: PathBuf,
    special: Option<SpecialTokens>,
    fast: Option<Arc<FastBpe>>,
}

thread_local! {
    /// The ids buffer of [`TokenCounter::count`] (one per thread).
    static IDS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

impl TokenCounter {
    /// Loads a `tokenizer.json`; a missing file is an I/O error naming it, a file that is not a
    /// tokenizer a config error naming it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::config(format!(
                "{}: not a tokenizer.json file",
                path.display()
            )));
        }
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| {
            Error::config(format!(
                "{}: not a Hugging Face tokenizer.json: {e}",
                path.display()
            ))
        })?;
        // transformers ignores the file's truncation and padding unless a call asks for them
        // (LLaMA-Factory's `encode` calls do not): so do we.
        tokenizer
            .with_truncation(None)
            .map_err(|e| Error::config(format!("{}: {e}", path.display())))?
            .with_padding(None);
        let fast = serde_json::to_value(&tokenizer)
            .ok()
            .and_then(|v| FastBpe::new(&v))
            .map(Arc::new);
        Ok(Self {
            tokenizer,
            path: path.to_path_buf(),
            special: special::configured(path)?,
            fast,
        })
    }

    /// Whether texts go through the fast BPE path (`bpe.rs`) when they can.
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// The same tokenizer without the fast path: every text through `tokenizers` (the
    /// reference the fast path is checked against).
    pub fn reference(&self) -> Self {
        Self {
            fast: None,
            ..self.clone()
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The BOS/EOS configured beside the `tokenizer.json`, if it has a configuration.
    pub fn special(&self) -> Option<&SpecialTokens> {
        self.special.as_ref()
    }

    /// Whether `token` is an added token (matched whole in any text, as special tokens are).
    fn is_added(&self, token: &str) -> bool {
        self.tokenizer
            .get_added_tokens_decoder()
            .values()
            .any(|t| t.content == token)
    }

    /// The id of a token (vocabulary or added token), if the tokenizer has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// Number of tokens of `text` without special tokens added (`add_special_tokens=False`).
    pub fn count(&self, text: &str) -> Result<u32> {
        if text.is_empty() {
            return Ok(0);
        }
        if let Some(fast) = &self.fast {
            let n = IDS.with(|ids| {
                let mut ids = ids.borrow_mut();
                ids.clear();
                fast.encode(text, &mut ids).then_some(ids.len())
            });
            if let Some(n) = n {
                return Ok(n as u32);
            }
        }
        let enc = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| Error::config(format!("{}: encoding failed: {e}", self.path.display())))?;
        Ok(enc.len() as u32)
    }

    /// Token ids of `text` without special tokens added (`add_special_tokens=False`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(fast) = &self.fast {
            let mut ids = Vec::new();
            if fast.encode(text, &mut ids) {
                return Ok(ids);
            }
        }
        let enc = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| Error::config(format!("{}: encoding failed: {e}", self.path.display())))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Ids of many texts, in parallel (rayon), in input order.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        texts
            .par_iter()
            .with_min_len(16)
            .map(|t| self.encode(t))
            .collect()
    }

    /// Counts of many texts, in parallel (rayon), in input order.
    pub fn count_batch(&self, texts: &[&str]) -> Result<Vec<u32>> {
        texts
            .par_iter()
            .with_min_len(16)
            .map(|t| self.count(t))
            .collect()
    }
}

/// Per-record token counts of a rendered conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordTokens {
    /// (source, target) tokens per turn, as `encode_multiturn` pairs them.
    pub pairs: Vec<(u32, u32)>,
    /// Everything before the final assistant turn: prefix, system, all user turns, history.
    pub prompt: u64,
    /// The final assistant turn (+ the EOS of an `efficient_eos` template).
    pub response: u64,
    /// Tokens of the turns before the final one (sources and targets).
    pub history: u64,
}

impl RecordTokens {
    pub fn total(&self) -> u64 {
        self.prompt + self.response
    }
}

/// A template bound to a tokenizer: counts conversations.
pub struct TemplateCounter<'a> {
    /// The tokenizer, or a copy of it with the template's stop words added as special tokens.
    counter: Cow<'a, TokenCounter>,
    template: Template,
    bos: Option<u32>,
    eos: Option<u32>,
    /// The BOS / EOS token names used and where they came from.
    tokens: BoundTokens,
    /// Tokens of the system slot filled with the default system prompt.
    default_system_tokens: u32,
    /// Tokens of the text elements without `{{content}}` (the same for every record).
    fixed_texts: Vec<(&'static str, u32)>,
}

/// The BOS / EOS names a template was bound with, and where each came from: given
/// explicitly, the tokenizer's configuration files, or the template's usual name (no
/// configuration beside `tokenizer.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundTokens {
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub bos_from: String,
    pub eos_from: String,
}

impl<'a> TemplateCounter<'a> {
    /// Binds `template` to `counter`, choosing BOS and EOS as LLaMA-Factory's
    /// `get_template_and_fix_tokenizer` does: `bos_token`/`eos_token` when given; else the
    /// tokenizer's configured tokens (`tokenizer_config.json` / `special_tokens_map.json`), the
    /// EOS replaced by the first stop word for a `replace_eos` template and `<|endoftext|>` when
    /// none is configured; a `tokenizer.json` without configuration falls back to the
    /// template's usual names. The stop words become special tokens, as LLaMA-Factory adds
    /// them (a stop word missing from the vocabulary gets the next id, as there), except that a
    /// token the template itself needs (a BOS or EOS its slots use, a stop word written in its
    /// text) must be in the vocabulary: a config error naming it otherwise, where
    /// LLaMA-Factory would add a token the model has no embedding for.
    pub fn new(
        counter: &'a TokenCounter,
        template: Template,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> Result<Self> {
        let tokens = bound_tokens(counter, &template, bos_token, eos_token);
        let path = counter.path().display().to_string();
        let missing = |what: &str, name: &str, from: &str| {
            Error::config(format!(
                "{path}: template '{}' needs the {what} token '{name}' ({from}), which the \
                 tokenizer's vocabulary lacks; give the token's name explicitly \
                 (bos_token/eos_token) or use the model's own tokenizer",
                template.name
            ))
        };
        let bos = match tokens.bos.as_deref() {
            Some(name) => match counter.token_id(name) {
                Some(id) => Some(id),
                // Only the template's usual name may be absent: LLaMA-Factory skips a `None`
                // bos_token_id, and without configuration there is no BOS to speak of.
                None if tokens.bos_from == FROM_TEMPLATE => None,
                None if template.uses(&Element::Bos) || tokens.bos_from == EXPLICIT => {
                    return Err(missing("BOS", name, &tokens.bos_from))
                }
                None => None,
            },
            None => None,
        };
        for word in template.stop_words {
            if counter.token_id(word).is_none() && template.writes(word) {
                return Err(missing("stop-word", word, "LLaMA-Factory's stop words"));
            }
        }
        let counter = if template.stop_words.iter().all(|w| counter.is_added(w)) {
            Cow::Borrowed(counter)
        } else {
            let mut owned = counter.clone();
            let words: Vec<AddedToken> = template
                .stop_words
                .iter()
                .map(|w| AddedToken::from(*w, true))
                .collect();
            owned.tokenizer.add_special_tokens(words).map_err(|e| {
                Error::config(format!("{path}: cannot add the stop words as tokens: {e}"))
            })?;
            Cow::Owned(owned)
        };
        let eos = tokens.eos.as_deref().and_then(|n| counter.token_id(n));
        if eos.is_none() && template.uses(&Element::Eos) {
            return Err(missing(
                "EOS",
                tokens.eos.as_deref().unwrap_or(""),
                &tokens.eos_from,
            ));
        }
        let mut bound = Self {
            counter,
            template,
            bos,
            eos,
            tokens,
            default_system_tokens: 0,
            fixed_texts: Vec::new(),
        };
        let t = &bound.template;
        let mut fixed = Vec::new();
        for slot in [&t.prefix, &t.system, &t.user, &t.assistant, &t.separator] {
            for e in slot {
                if let Element::Text(text) = e {
                    if !text.contains("{{content}}") && !fixed.iter().any(|(f, _)| f == text) {
                        fixed.push((*text, bound.counter.count(text)?));
                    }
                }
            }
        }
        bound.fixed_texts = fixed;
        let system = bound.template.default_system.clone();
        bound.default_system_tokens = bound.slot_tokens(&bound.template.system, &system)?;
        Ok(bound)
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The tokenizer the template is bound to (with the template's stop words added).
    pub fn counter(&self) -> &TokenCounter {
        &self.counter
    }

    /// The BOS / EOS names used and where they came from.
    pub fn tokens(&self) -> &BoundTokens {
        &self.tokens
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    fn element_tokens(&self, e: &Element, content: &str) -> Result<u32> {
        match e {
            Element::Bos => Ok(u32::from(self.bos.is_some())),
            Element::Eos => Ok(1),
            Element::Text(t) => match self.fixed_texts.iter().find(|(f, _)| f == t) {
                Some(&(_, n)) => Ok(n),
                None => self.counter.count(&fill(t, content)),
            },
        }
    }

    fn slot_tokens(&self, slot: &[Element], content: &str) -> Result<u32> {
        slot.iter()
            .map(|e| self.element_tokens(e, content))
            .sum::<Result<u32>>()
    }

    /// Tokens of message `i` of `conv` (user turns even, assistant turns odd).
    fn message_tokens(&self, i: usize, conv: &Conversation, system: &str) -> Result<u32> {
        let uses_default = !matches!(conv.system.as_deref(), Some(s) if !s.is_empty());
        let mut n = 0;
        let mut system_done = false;
        for (e, slot) in self.template.message_elements(i, system) {
            n += match slot {
                Slot::Fixed => self.element_tokens(e, "")?,
                Slot::System if uses_default => {
                    // The default system slot is the same for every record: counted once.
                    if !system_done {
                        system_done = true;
                        self.default_system_tokens
                    } else {
                        0
                    }
                }
                Slot::System => self.element_tokens(e, system)?,
                Slot::Message => self.element_tokens(e, &conv.messages[i])?,
            };
        }
        Ok(n)
    }

    /// Counts a conversation: per-turn (source, target) pairs and the prompt/response split.
    pub fn count(&self, conv: &Conversation) -> Result<RecordTokens> {
        // LLaMA-Factory: `system = system or self.default_system`.
        let system = match conv.system.as_deref() {
            Some(s) if !s.is_empty() => s,
            _ => self.template.default_system.as_str(),
        };
        let n = conv.messages.len();
        let mut pairs = Vec::with_capacity(n / 2);
        for turn in 0..n / 2 {
            let source = self.message_tokens(2 * turn, conv, system)?;
            let target = self.message_tokens(2 * turn + 1, conv, system)?;
            pairs.push((source, target));
        }
        let eos = u64::from(self.template.efficient_eos);
        let (last_source, last_target) = pairs.last().copied().unwrap_or((0, 0));
        let history: u64 = pairs[..pairs.len().saturating_sub(1)]
            .iter()
            .map(|&(s, t)| u64::from(s) + u64::from(t))
            .sum();
        Ok(RecordTokens {
            prompt: history + u64::from(last_source),
            response: u64::from(last_target) + eos,
            history,
            pairs,
        })
    }
}

const FROM_TEMPLATE: &str =
    "the template's usual name: no tokenizer_config.json beside tokenizer.json";
const EXPLICIT: &str = "given explicitly";

/// The BOS / EOS names for `template` with `counter` (see [`TemplateCounter::new`]).
fn bound_tokens(
    counter: &TokenCounter,
    template: &Template,
    bos_token: Option<&str>,
    eos_token: Option<&str>,
) -> BoundTokens {
    let replaced = template
        .replace_eos
        .then(|| template.stop_words.first().map(|w| (*w).to_string()))
        .flatten();
    let (bos, eos, from) = match counter.special() {
        Some(sp) => {
            let files: Vec<String> = sp
                .files
                .iter()
                .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            let eos = match (&replaced, &sp.eos) {
                (Some(r), _) => r.clone(),
                (None, Some(e)) => e.clone(),
                (None, None) => ENDOFTEXT.into(),
            };
            (sp.bos.clone(), Some(eos), files.join(" + "))
        }
        None => (
            template.bos_token.map(str::to_owned),
            replaced.or_else(|| template.eos_token.map(str::to_owned)),
            FROM_TEMPLATE.to_string(),
        ),
    };
    let pick = |given: Option<&str>, found: Option<String>| match given {
        Some(g) => (Some(g.to_owned()), EXPLICIT.to_string()),
        None => (found, from.clone()),
    };
    let (bos, bos_from) = pick(bos_token, bos);
    let (eos, eos_from) = pick(eos_token, eos);
    BoundTokens {
        bos,
        eos,
        bos_from,
        eos_from,
    }
}

/// The EOS LLaMA-Factory adds to a tokenizer that configures none.
const ENDOFTEXT: &str = "<|endoftext|>";
