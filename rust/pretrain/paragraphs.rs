//! Paragraph-level exact deduplication across a corpus (CCNet's line dedup): documents are read
//! in order, each is cut into paragraphs (lines, or blocks between blank lines), and a
//! paragraph whose trimmed text was already seen anywhere earlier in the corpus is removed from
//! its document. Paragraphs shorter than `min_chars` are never removed (short lines such as a
//! greeting recur naturally). A document left with no paragraph is dropped. The result depends
//! only on the documents and their order, never on the thread count: hashing is parallel, the
//! first-seen decisions sequential.
//!
//! Rewrites the text field of JSONL documents; every other field is kept as it is.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustc_hash::FxHashSet;
use serde_json::Value;
use xxhash_rust::xxh3::xxh3_128;

use crate::error::{DataError, DataErrorKind, Result};
use crate::io::write::JsonlWriter;
use crate::io::{OnError, ReaderOptions, RecordReader};

/// A paragraph's text and its key (`None`: too short to be removed).
type Paragraph = (String, Option<u128>);

/// How documents are cut into paragraphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParagraphSplit {
    /// Every line.
    Line,
    /// Blocks of lines between blank lines.
    BlankLine,
}

/// What happened to one input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParagraphStats {
    pub documents: u64,
    /// Documents written (with at least one paragraph left).
    pub kept: u64,
    /// Documents all of whose paragraphs were duplicates.
    pub emptied: u64,
    pub paragraphs: u64,
    pub paragraphs_removed: u64,
    pub chars_removed: u64,
}

/// Paragraphs of a text as byte ranges (the separators are not part of them).
fn paragraphs(text: &str, split: ParagraphSplit) -> Vec<&str> {
    match split {
        ParagraphSplit::Line => text.split('\n').collect(),
        ParagraphSplit::BlankLine => {
            let mut out = Vec::new();
            let mut start: Option<usize> = None;
            let mut end = 0;
            let mut at = 0;
            for line in text.split('\n') {
                let next = at + line.len() + 1;
                if line.trim().is_empty() {
                    if let Some(s) = start.take() {
                        out.push(&text[s..end]);
                    }
                } else {
                    start.get_or_insert(at);
                    end = at + line.len();
                }
                at = next;
            }
            if let Some(s) = start {
                out.push(&text[s..end]);
            }
            out
        }
    }
}

/// Deduplicates the paragraphs of `inputs[i]` into `outputs[i]` (inputs in corpus order).
pub fn dedup_paragraphs(
    inputs: &[PathBuf],
    outputs: &[PathBuf],
    field: &str,
    split: ParagraphSplit,
    min_chars: usize,
) -> Result<Vec<ParagraphStats>> {
    let mut seen: FxHashSet<u128> = FxHashSet::default();
    let mut all = Vec::with_capacity(inputs.len());
    let options = ReaderOptions {
        on_error: OnError::Raise,
        ..ReaderOptions::default()
    };
    let sep = match split {
        ParagraphSplit::Line => "\n",
        ParagraphSplit::BlankLine => "\n\n",
    };
    for (input, output) in inputs.iter().zip(outputs) {
        let mut stats = ParagraphStats::default();
        let mut rd = RecordReader::open(input, options.clone())?;
        let mut out = JsonlWriter::create(output)?;
        while let Some(mut batch) = rd.next_batch()? {
            // (paragraph texts, hash or None when too short) per document, in parallel
            let cut: Vec<Result<Vec<Paragraph>>> = batch
                .records
                .par_iter()
                .zip(&batch.origins)
                .map(|(r, origin)| match r.get(field) {
                    Some(Value::String(t)) => Ok(paragraphs(t, split)
                        .into_iter()
                        .map(|p| {
                            let key = p.trim();
                            let h = (key.chars().count() >= min_chars.max(1))
                                .then(|| xxh3_128(key.as_bytes()));
                            (p.to_string(), h)
                        })
                        .collect()),
                    _ => Err(located(input, origin, field)),
                })
                .collect();
            let mut kept = Vec::with_capacity(batch.records.len());
            for (mut record, parts) in batch.records.drain(..).zip(cut) {
                let parts = parts?;
                stats.documents += 1;
                stats.paragraphs += parts.len() as u64;
                let mut left = Vec::with_capacity(parts.len());
                for (p, h) in parts {
                    match h {
                        Some(h) if !seen.insert(h) => {
                            stats.paragraphs_removed += 1;
                            stats.chars_removed += p.chars().count() as u64;
                        }
                        _ => left.push(p),
                    }
                }
                let text = left.join(sep);
                if text.trim().is_empty() {
                    stats.emptied += 1;
                    continue;
                }
                record.insert(field.to_string(), Value::String(text));
                kept.push(record);
            }
            stats.kept += kept.len() as u64;
            out.write_records(&kept)?;
        }
        out.commit()?;
        all.push(stats);
    }
    Ok(all)
}

fn located(input: &Path, origin: &crate::Origin, field: &str) -> crate::Error {
    let mut e = DataError::new(
        input,
        DataErrorKind::FieldType,
        "document text missing or not a string",
    )
    .at_record(origin.index)
    .in_field(field);
    if let Some(l) = origin.line {
        e = e.at_line(l);
    }
    e.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_cut_by_lines_or_blank_lines() {
        assert_eq!(
            paragraphs("a\nb\n\nc", ParagraphSplit::Line),
            ["a", "b", "", "c"]
        );
        assert_eq!(
            paragraphs("\na\nb\n \n\nc\n", ParagraphSplit::BlankLine),
            ["a\nb", "c"]
        );
    }

    #[test]
    fn repeated_paragraphs_go_from_later_documents_and_empty_documents_are_dropped() {
        let dir = std::env::temp_dir().join(format!("csft-para-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.jsonl");
        std::fs::write(
            &a,
            "{\"text\":\"高血压要低盐饮食\\n本站版权所有不得转载\",\"id\":1}\n\
             {\"text\":\"糖尿病要控制血糖\\n本站版权所有不得转载\\n好\",\"id\":2}\n\
             {\"text\":\"本站版权所有不得转载\",\"id\":3}\n",
        )
        .unwrap();
        let b = dir.join("b.jsonl");
        std::fs::write(&b, "{\"text\":\"好\\n高血压要低盐饮食\"}\n").unwrap();
        let outs = [dir.join("a.out.jsonl"), dir.join("b.out.jsonl")];
        let stats = dedup_paragraphs(&[a, b], &outs, "text", ParagraphSplit::Line, 4).unwrap();
        assert_eq!(
            std::fs::read_to_string(&outs[0]).unwrap(),
            "{\"text\":\"高血压要低盐饮食\\n本站版权所有不得转载\",\"id\":1}\n\
             {\"text\":\"糖尿病要控制血糖\\n好\",\"id\":2}\n"
        );
        assert_eq!(
            std::fs::read_to_string(&outs[1]).unwrap(),
            "{\"text\":\"好\"}\n"
        );
        assert_eq!(
            (stats[0].kept, stats[0].emptied, stats[0].paragraphs_removed),
            (2, 1, 2)
        );
        assert_eq!((stats[1].kept, stats[1].paragraphs_removed), (1, 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
