//! Token counting with a Hugging Face `tokenizer.json` through the `tokenizers` crate: plain
//! texts in parallel ([`TokenCounter::count_batch`]) and conversations rendered with a chat
//! template, turn by turn, the way LLaMA-Factory's `encode_multiturn` encodes them
//! ([`TemplateCounter`]). Every text element is encoded with `add_special_tokens = false`;
//! BOS/EOS elements count one token each (or none, for a BOS the tokenizer does not have).
//! `encode_fast` gives the same ids as `encode` (it only skips the offsets); the tests check the
//! counts against the Python `tokenizers` package.
//!
//! Does not read files of records (see `report.rs`) and does not truncate (see `truncate.rs`).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tokenizers::Tokenizer;

use super::template::{fill, Conversation, Element, Slot, Template};
use crate::error::{Error, Result};

/// A loaded tokenizer.
pub struct TokenCounter {
    tokenizer: Tokenizer,
    path: PathBuf,
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
        let tokenizer = Tokenizer::from_file(path).map_err(|e| {
            Error::config(format!(
                "{}: not a Hugging Face tokenizer.json: {e}",
                path.display()
            ))
        })?;
        Ok(Self {
            tokenizer,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        let enc = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| Error::config(format!("{}: encoding failed: {e}", self.path.display())))?;
        Ok(enc.get_ids().to_vec())
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
    counter: &'a TokenCounter,
    template: Template,
    bos: Option<u32>,
    eos: Option<u32>,
    /// Tokens of the system slot filled with the default system prompt.
    default_system_tokens: u32,
    /// Tokens of the text elements without `{{content}}` (the same for every record).
    fixed_texts: Vec<(&'static str, u32)>,
}

impl<'a> TemplateCounter<'a> {
    /// Binds `template` to `counter`. `bos_token`/`eos_token` override the template's usual
    /// token names. A template that needs an EOS the tokenizer lacks is a config error; a
    /// missing BOS is skipped, as LLaMA-Factory skips a `None` `bos_token_id`.
    pub fn new(
        counter: &'a TokenCounter,
        template: Template,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> Result<Self> {
        let bos_name = bos_token.or(template.bos_token);
        let bos = bos_name.and_then(|n| counter.token_id(n));
        if let (Some(name), None) = (bos_token, bos) {
            return Err(Error::config(format!(
                "{}: has no BOS token '{name}'",
                counter.path().display()
            )));
        }
        let eos_name = eos_token.or(template.eos_token);
        let eos = eos_name.and_then(|n| counter.token_id(n));
        if eos.is_none() && template.uses(&Element::Eos) {
            return Err(Error::config(format!(
                "{}: template '{}' needs an EOS token, and the tokenizer has no '{}' \
                 (set the EOS token name)",
                counter.path().display(),
                template.name,
                eos_name.unwrap_or("")
            )));
        }
        let mut bound = Self {
            counter,
            template,
            bos,
            eos,
            default_system_tokens: 0,
            fixed_texts: Vec::new(),
        };
        let t = &bound.template;
        let mut fixed = Vec::new();
        for slot in [&t.prefix, &t.system, &t.user, &t.assistant, &t.separator] {
            for e in slot {
                if let Element::Text(text) = e {
                    if !text.contains("{{content}}") && !fixed.iter().any(|(f, _)| f == text) {
                        fixed.push((*text, counter.count(text)?));
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

    /// The tokenizer the template is bound to.
    pub fn counter(&self) -> &TokenCounter {
        self.counter
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
