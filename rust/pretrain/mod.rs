//! The continued-pretraining corpus: raw documents → quality-filtered → tokenized → packed
//! fixed-length token sequences (SF-Med §3.1).
//!
//! `documents` turns plain-text files (one document per file, per blank-line block, per line or
//! per separator line) and adapted SFT records (rendered as text: dialogues as 患者/医生 turns,
//! exam questions with their answer) into JSON Lines documents; `paragraphs` removes
//! paragraphs seen earlier in the corpus (CCNet's line dedup); `quality` labels documents
//! that fail Gopher/FineWeb-style heuristics, one reason code each; `pack` tokenizes documents
//! into a token store and packs a chosen order of them, each followed by EOS, into shards of
//! `seq_len`-token rows with their document boundaries. Deduplication, normalization and
//! decontamination are the SFT stages' kernels; choosing which documents (the mixture) and in
//! which order is the caller's (`csft_data.pretrain`). Nothing here knows about Python.

pub mod documents;
pub mod pack;
pub mod paragraphs;
pub mod quality;

pub use documents::{
    render_documents, text_documents, DocumentStats, RenderStyle, SplitRule, TextSource,
};
pub use pack::{pack_documents, tokenize_documents, PackConfig, PackStats, ShardInfo};
pub use paragraphs::{dedup_paragraphs, ParagraphSplit, ParagraphStats};
pub use quality::{quality_labels, QualityConfig, Reason};
