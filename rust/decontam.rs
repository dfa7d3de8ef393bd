//! Decontamination: remove training records whose text overlaps an evaluation item (CMB,
//! CMExam, CMMLU questions, …) by character n-gram overlap on normalized text.
//!
//! Both sides are normalized for matching only: clean-up (`crate::normalize`), width folding,
//! lower case, and every char that is not alphanumeric dropped, so punctuation, spacing and
//! full-width forms do not hide a copy. An evaluation item is represented by the set of its
//! character `ngram`-grams (hashed); a training record *contains* item `e` when at least
//! `threshold` of `e`'s n-grams occur in the record's text. A record containing any item is
//! removed and reported against the item with the largest share. Items shorter than `ngram`
//! characters cannot be checked this way and are counted, not matched.
//!
//! Streaming: the evaluation index is built once, then training files are read batch by batch,
//! checked in parallel and written as they go (kept records, and one report line per removed
//! record), atomically. Every training record is kept, removed (with its evaluation item), or
//! rejected by the reader (quarantined in skip mode).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde_json::json;
use xxhash_rust::xxh3::xxh3_64;

use crate::dedup::files::{record_text, KeptOutput, SourceFile};
use crate::error::{DataError, DataErrorKind, Error, Result};
use crate::io::write::JsonlWriter;
use crate::io::{OnError, ReaderOptions, RecordReader};
use crate::normalize::text::fold_width;
use crate::record::{Origin, Record};

/// Defaults: 8-char n-grams, half of an item's n-grams.
pub const DEFAULT_NGRAM: usize = 8;
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// The text used for matching: alphanumeric chars only, width-folded and lower-cased.
pub fn match_text(text: &str) -> Vec<char> {
    text.chars()
        .map(fold_width)
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn gram_hash(gram: &[char]) -> u64 {
    let mut bytes = [0u8; 4 * 32];
    let mut len = 0;
    for &c in gram.iter().take(32) {
        bytes[len..len + 4].copy_from_slice(&u32::from(c).to_le_bytes());
        len += 4;
    }
    xxh3_64(&bytes[..len])
}

/// The distinct n-gram hashes of a matching text, sorted.
fn grams(chars: &[char], n: usize) -> Vec<u64> {
    let mut out: Vec<u64> = chars.windows(n).map(gram_hash).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// An evaluation item a training record overlaps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Index of the item in the evaluation set (in the order the items were given).
    pub item: u32,
    /// Share of the item's n-grams found in the training text.
    pub overlap: f64,
}

/// The n-gram index of an evaluation set.
#[derive(Debug, Clone)]
pub struct EvalIndex {
    ngram: usize,
    threshold: f64,
    /// n-gram hash → the items that have it.
    postings: FxHashMap<u64, Vec<u32>>,
    /// Distinct n-grams per item (0: too short to check).
    sizes: Vec<u32>,
}

impl EvalIndex {
    pub fn new(items: &[&str], ngram: usize, threshold: f64) -> Result<Self> {
        if ngram == 0 || ngram > 32 {
            return Err(Error::config(format!(
                "ngram must lie in 1..=32, got {ngram}"
            )));
        }
        if !(threshold > 0.0 && threshold <= 1.0) {
            return Err(Error::config(format!(
                "threshold must lie in (0, 1], got {threshold}"
            )));
        }
        let sets: Vec<Vec<u64>> = items
            .par_iter()
            .map(|t| grams(&match_text(t), ngram))
            .collect();
        let mut postings: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
        for (i, set) in sets.iter().enumerate() {
            for &g in set {
                postings.entry(g).or_default().push(i as u32);
            }
        }
        Ok(Self {
            ngram,
            threshold,
            postings,
            sizes: sets.iter().map(|s| s.len() as u32).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Items too short to hold one n-gram.
    pub fn unchecked(&self) -> usize {
        self.sizes.iter().filter(|&&s| s == 0).count()
    }

    /// The item `text` overlaps most, when any reaches the threshold.
    pub fn check(&self, text: &str) -> Option<Hit> {
        let mut hits: FxHashMap<u32, u32> = FxHashMap::default();
        for g in grams(&match_text(text), self.ngram) {
            if let Some(items) = self.postings.get(&g) {
                for &i in items {
                    *hits.entry(i).or_default() += 1;
                }
            }
        }
        hits.into_iter()
            .map(|(item, n)| Hit {
                item,
                overlap: f64::from(n) / f64::from(self.sizes[item as usize]),
            })
            .filter(|h| h.overlap >= self.threshold)
            // the largest share; the lowest item index on ties (deterministic)
            .max_by(|a, b| a.overlap.total_cmp(&b.overlap).then(b.item.cmp(&a.item)))
    }
}

/// One evaluation file and the fields that make its items' text.
#[derive(Debug, Clone)]
pub struct EvalFile {
    pub path: PathBuf,
    /// `None`: every field.
    pub fields: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct DecontamConfig {
    pub ngram: usize,
    pub threshold: f64,
    /// Training fields that make the text checked (`None`: every field).
    pub fields: Option<Vec<String>>,
    /// How the training files are read.
    pub reader: ReaderOptions,
    /// What a malformed evaluation row does (evaluation files are read with their format and
    /// encoding detected, whatever `reader` forces for the training files).
    pub eval_on_error: OnError,
}

impl Default for DecontamConfig {
    fn default() -> Self {
        Self {
            ngram: DEFAULT_NGRAM,
            threshold: DEFAULT_THRESHOLD,
            fields: None,
            reader: ReaderOptions::default(),
            eval_on_error: OnError::Raise,
        }
    }
}

/// Per training source: `records = kept + removed + rejected`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecontamCounts {
    pub name: String,
    pub records: u64,
    pub kept: u64,
    pub removed: u64,
    pub rejected: u64,
}

#[derive(Debug, Clone, Default)]
pub struct DecontamStats {
    pub sources: Vec<DecontamCounts>,
    pub eval_items: u64,
    /// Evaluation items too short to be checked.
    pub eval_unchecked: u64,
    /// Evaluation items that at least one training record contains.
    pub eval_items_hit: u64,
    /// Evaluation items without question text (left out).
    pub eval_no_text: u64,
    /// Malformed evaluation rows (`Skip` mode), and the first of them.
    pub eval_rejected: u64,
    pub eval_rejections: Vec<DataError>,
}

/// The evaluation items of `files` that have question text: (file index, index in file,
/// text). Checking needs the question side only, so an item is used whatever its answer
/// fields hold; an item whose checked fields are all missing or empty is counted in
/// `no_text` and left out. A malformed row (bad JSON/CSV, undecodable bytes) raises, or in
/// `Skip` mode is counted in `rejected`, with the first few in `rejections`.
fn read_eval(
    files: &[EvalFile],
    cfg: &DecontamConfig,
    stats: &mut DecontamStats,
) -> Result<Vec<(usize, u64, String)>> {
    let mut items = Vec::new();
    for (f, file) in files.iter().enumerate() {
        let opts = ReaderOptions {
            on_error: cfg.eval_on_error,
            batch_size: cfg.reader.batch_size,
            ..ReaderOptions::default()
        };
        let mut r = RecordReader::open(&file.path, opts)?;
        // A field name no record has is a mistake in the call, not an item without text.
        let mut first: Option<Origin> = None;
        let mut any_field = file.fields.is_none();
        while let Some(batch) = r.next_batch()? {
            for (rec, origin) in batch.records.iter().zip(&batch.origins) {
                first.get_or_insert(*origin);
                if let (false, Some(fields)) = (any_field, &file.fields) {
                    any_field = fields.iter().any(|k| rec.contains_key(k));
                }
                let mut text = String::new();
                record_text(rec, file.fields.as_deref(), &mut text);
                if text.trim().is_empty() {
                    stats.eval_no_text += 1;
                } else {
                    items.push((f, origin.index, text));
                }
            }
            for rej in &batch.rejections {
                if stats.eval_rejections.len() < 20 {
                    stats.eval_rejections.push(rej.error.clone());
                }
            }
        }
        stats.eval_rejected += r.stats().rejected;
        if let (Some(origin), false, Some(fields)) = (first, any_field, &file.fields) {
            let mut e = DataError::new(
                &file.path,
                DataErrorKind::MissingField,
                format!(
                    "no record of the evaluation file has the field(s) '{}'",
                    fields.join("', '")
                ),
            )
            .at_record(origin.index);
            e.line = origin.line;
            e.field = fields.first().cloned();
            return Err(e.into());
        }
    }
    Ok(items)
}

/// Removes from `train` every record that contains an item of `eval`; writes the kept records
/// to `output` (one file, or one per training file), one line per removed record to `report`,
/// rejected records to `quarantine`.
pub fn decontaminate_files(
    train: &[SourceFile],
    eval: &[EvalFile],
    output: KeptOutput<'_>,
    report: Option<&Path>,
    quarantine: Option<&Path>,
    cfg: &DecontamConfig,
) -> Result<DecontamStats> {
    if eval.is_empty() {
        return Err(Error::config(
            "decontamination needs at least one evaluation file",
        ));
    }
    let paths: Vec<&Path> = match output {
        KeptOutput::One(p) => vec![p],
        KeptOutput::PerSource(ps) if ps.len() == train.len() => {
            ps.iter().map(PathBuf::as_path).collect()
        }
        KeptOutput::PerSource(ps) => {
            return Err(Error::config(format!(
                "{} outputs for {} training files",
                ps.len(),
                train.len()
            )))
        }
        KeptOutput::None => return Err(Error::config("decontamination needs an output")),
    };
    let mut stats = DecontamStats::default();
    let items = read_eval(eval, cfg, &mut stats)?;
    let texts: Vec<&str> = items.iter().map(|(_, _, t)| t.as_str()).collect();
    let index = EvalIndex::new(&texts, cfg.ngram, cfg.threshold)?;
    let mut hit_items = vec![false; index.len()];
    let mut writers = paths
        .into_iter()
        .map(JsonlWriter::create)
        .collect::<Result<Vec<_>>>()?;
    let last = writers.len() - 1;
    let mut r_writer = report.map(JsonlWriter::create).transpose()?;
    let mut q_writer = quarantine.map(JsonlWriter::create).transpose()?;
    stats.eval_items = index.len() as u64;
    stats.eval_unchecked = index.unchecked() as u64;
    let mut opts = cfg.reader.clone();
    opts.required = cfg.fields.clone().unwrap_or_default();
    for (sid, src) in train.iter().enumerate() {
        let writer = &mut writers[sid.min(last)];
        let mut counts = DecontamCounts {
            name: src.name.clone(),
            ..DecontamCounts::default()
        };
        let mut reader = RecordReader::open(&src.path, opts.clone())?;
        while let Some(batch) = reader.next_batch()? {
            let hits: Vec<Option<Hit>> = batch
                .records
                .par_iter()
                .map(|rec| {
                    let mut text = String::new();
                    record_text(rec, cfg.fields.as_deref(), &mut text);
                    index.check(&text)
                })
                .collect();
            let mut kept: Vec<Record> = Vec::with_capacity(batch.records.len());
            let mut lines = Vec::new();
            for ((rec, origin), hit) in batch.records.into_iter().zip(&batch.origins).zip(hits) {
                match hit {
                    None => kept.push(rec),
                    Some(h) => {
                        hit_items[h.item as usize] = true;
                        counts.removed += 1;
                        let (f, at, text) = &items[h.item as usize];
                        lines.push(json!({
                            "source": src.name,
                            "index": origin.index,
                            "eval_file": eval[*f].path.to_string_lossy(),
                            "eval_index": at,
                            "overlap": (h.overlap * 1e4).round() / 1e4,
                            "eval_text": text,
                        }));
                    }
                }
            }
            counts.kept += kept.len() as u64;
            writer.write_records(&kept)?;
            if let Some(w) = r_writer.as_mut() {
                w.write_values(&lines)?;
            }
            if let Some(q) = q_writer.as_mut() {
                q.write_rejections(&batch.rejections)?;
            }
        }
        let rs = reader.stats();
        counts.rejected = rs.rejected;
        counts.records = rs.records + rs.rejected;
        debug_assert_eq!(counts.kept + counts.removed, rs.records);
        stats.sources.push(counts);
    }
    stats.eval_items_hit = hit_items.iter().filter(|&&h| h).count() as u64;
    if let Some(q) = q_writer {
        q.commit()?;
    }
    if let Some(w) = r_writer {
        w.commit()?;
    }
    for w in writers {
        w.commit()?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_text_ignores_punctuation_width_and_case() {
        let a: String = match_text("夜间阵发性呼吸困难，可见于（ＡＢＣ） Heart!")
            .into_iter()
            .collect();
        assert_eq!(a, "夜间阵发性呼吸困难可见于abcheart");
    }

    #[test]
    fn items_are_found_inside_longer_texts_and_unrelated_texts_are_not() {
        let eval = [
            "夜间阵发性呼吸困难，可见于",
            "上消化道出血可单纯表现为呕血或黑便，也可两者兼有，这取决于",
            "短题",
        ];
        let idx = EvalIndex::new(&eval, 8, 0.5).unwrap();
        assert_eq!(idx.unchecked(), 1);
        let copy =
            "请回答：上消化道出血可单纯表现为呕血或黑便, 也可两者兼有。这取决于什么？A 原发病";
        let h = idx.check(copy).unwrap();
        assert_eq!(h.item, 1);
        assert_eq!(h.overlap, 1.0);
        let edited = "上消化道出血可单纯表现为呕血或黑便，也可两者兼有，这决定于";
        let h = idx.check(edited).unwrap();
        assert_eq!(h.item, 1);
        assert!(h.overlap >= 0.5 && h.overlap < 1.0, "{}", h.overlap);
        // A heavier edit of a short item leaves too little of it.
        assert!(idx.check("夜间阵发性呼吸困难,常见于哪种情况").is_none());
        assert_eq!(
            idx.check("夜间阵发性呼吸困难可见于哪些疾病？")
                .unwrap()
                .item,
            0
        );
        assert!(idx.check("患者头痛发热咳嗽三天，伴有咽痛流涕").is_none());
        assert!(
            idx.check("短题").is_none(),
            "too-short items are not matched"
        );
    }

    #[test]
    fn bad_parameters_are_config_errors() {
        assert!(EvalIndex::new(&["x"], 0, 0.5).is_err());
        assert!(EvalIndex::new(&["x"], 8, 0.0).is_err());
        assert!(EvalIndex::new(&["x"], 8, 1.5).is_err());
    }
}
