//! Token-length bucketing: how long the records of an SFT corpus are in tokens of a real
//! Hugging Face tokenizer once rendered with a LLaMA-Factory chat template, and what a cut-off
//! length would do to them.
//!
//! `template` holds the chat templates and maps records (Alpaca or messages style) to
//! conversations, `special` reads the BOS/EOS a tokenizer folder configures, `count` loads a `tokenizer.json` (the `tokenizers` crate, pure Rust) and
//! counts texts and rendered turns in parallel, `truncate` is LLaMA-Factory's SFT truncation
//! (`infer_seqlen` and its turn loop), and `report` streams files into per-source statistics
//! and a per-record bucket file; `encode` turns records into the token ids and labels training
//! uses, with the same templates and truncation rule. Nothing here trains or packs.

pub mod bpe;
pub mod count;
pub mod encode;
pub mod render;
pub mod report;
pub mod special;
pub mod template;
pub mod truncate;

#[cfg(test)]
mod tests;

pub use count::{BoundTokens, RecordTokens, TemplateCounter, TokenCounter};
pub use encode::{EncodeOptions, Encoded, EncodedPair, IGNORE_INDEX};
pub use report::{token_lengths, LengthsConfig, LengthsReport, SourceFile, SourceLengths};
pub use template::{Conversation, Template, TEMPLATE_NAMES};
