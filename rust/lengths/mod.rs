//! Token-length bucketing: how long the records of an SFT corpus are in tokens of a real
//! Hugging Face tokenizer once rendered with a LLaMA-Factory chat template, and what a cut-off
//! length would do to them.
//!
//! `template` holds the chat templates and maps records (Alpaca or messages style) to
//! conversations, `count` loads a `tokenizer.json` (the `tokenizers` crate, pure Rust) and
//! counts texts and rendered turns in parallel, `truncate` is LLaMA-Factory's SFT truncation
//! (`infer_seqlen` and its turn loop), and `report` streams files into per-source statistics
//! and a per-record bucket file. Nothing here trains, packs or writes token ids.

pub mod count;
pub mod render;
pub mod report;
pub mod template;
pub mod truncate;

#[cfg(test)]
mod tests;

pub use count::{RecordTokens, TemplateCounter, TokenCounter};
pub use report::{token_lengths, LengthsConfig, LengthsReport, SourceFile, SourceLengths};
pub use template::{Conversation, Template, TEMPLATE_NAMES};
