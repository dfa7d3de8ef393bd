//! `lengths` over files: streams the records of each input file (one source per file) through
//! `crate::io::RecordReader`, renders each with a chat template, counts its tokens in parallel
//! and gathers per source: token totals, mean, quantiles, a histogram, and for each cut-off the
//! records LLaMA-Factory would truncate and those whose final response it would cut. Optionally
//! writes one bucket line per counted record (for length-grouped batching) and a quarantine file
//! of the records that cannot be rendered, both atomically. Every input record is counted or
//! rejected with a reason.
//!
//! Quantiles are nearest-rank (the smallest total with at least q·n records at or below it;
//! numpy's `inverted_cdf`). Histogram bins are powers of two: bin k holds totals in
//! (2^(k+4), 2^(k+5)] (the first bin starts at 0), and a last bin holds totals above 65,536.
//! Does not modify or write the records themselves.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::count::{RecordTokens, TemplateCounter, TokenCounter};
use super::template::{conversation, Template};
use super::truncate::{truncate, Truncation};
use crate::error::{DataError, Error, Result};
use crate::io::write::JsonlWriter;
use crate::io::{ReaderOptions, RecordReader};
use crate::record::Rejection;

/// Upper edges (inclusive) of the histogram bins; one more bin holds everything above.
pub const HISTOGRAM_EDGES: [u64; 13] = [
    32,
    64,
    128,
    256,
    512,
    1024,
    2048,
    4096,
    8192,
    16384,
    32768,
    65536,
    u64::MAX,
];

/// The quantiles reported (p50, p90, p95, p99).
pub const QUANTILES: [f64; 4] = [0.50, 0.90, 0.95, 0.99];

/// How many rejections the report lists (all of them go to the quarantine file).
const REJECTION_SAMPLES: usize = 20;

/// One input file and the source name it stands for.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct LengthsConfig {
    pub template: Template,
    /// Override the template's BOS / EOS token names.
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// Cut-offs (tokens), ascending, distinct, ≥ 1.
    pub cutoffs: Vec<u64>,
    pub reader: ReaderOptions,
}

/// Per cut-off counts of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutoffCounts {
    pub cutoff: u64,
    /// Records with total ≤ cut-off whose total is above the previous cut-off (the bucket).
    pub bucket: u64,
    pub truncated: u64,
    pub response_cut: u64,
    pub response_dropped: u64,
    /// Tokens left after truncation, summed.
    pub kept_tokens: u64,
}

/// Token statistics of one source (or of all of them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceLengths {
    pub name: String,
    pub path: Option<PathBuf>,
    /// Input records: `records = counted + rejected`.
    pub records: u64,
    pub counted: u64,
    pub rejected: u64,
    pub prompt_tokens: u64,
    pub response_tokens: u64,
    pub history_tokens: u64,
    pub total_tokens: u64,
    pub mean: f64,
    /// Totals at [`QUANTILES`], then the maximum; zeros when nothing was counted.
    pub quantiles: [u64; 4],
    pub max: u64,
    /// Counts per [`HISTOGRAM_EDGES`] bin.
    pub histogram: Vec<u64>,
    pub cutoffs: Vec<CutoffCounts>,
    /// Records above the largest cut-off (bucket "over").
    pub over: u64,
}

#[derive(Debug, Clone, Default)]
pub struct LengthsReport {
    pub sources: Vec<SourceLengths>,
    pub total: SourceLengths,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    /// The BOS / EOS names used and where they came from.
    pub tokens: Option<super::BoundTokens>,
    /// The first rejections (all are in the quarantine file when one was asked for).
    pub rejections: Vec<DataError>,
    pub bucket_lines: u64,
    /// Per source, each record's total tokens by record index ([`NOT_COUNTED`]: rejected).
    pub record_totals: Vec<Vec<u32>>,
}

/// The total of a record that was not counted (rejected) in [`LengthsReport::record_totals`].
pub const NOT_COUNTED: u32 = u32::MAX;

/// Accumulates one source's numbers.
struct Acc {
    stats: SourceLengths,
    totals: Vec<u32>,
}

impl Acc {
    fn new(name: &str, path: Option<&Path>, cutoffs: &[u64]) -> Self {
        Self {
            stats: SourceLengths {
                name: name.into(),
                path: path.map(Path::to_path_buf),
                histogram: vec![0; HISTOGRAM_EDGES.len()],
                cutoffs: cutoffs
                    .iter()
                    .map(|&cutoff| CutoffCounts {
                        cutoff,
                        ..CutoffCounts::default()
                    })
                    .collect(),
                ..SourceLengths::default()
            },
            totals: Vec::new(),
        }
    }

    fn add(&mut self, t: &RecordTokens, cuts: &[Truncation], bucket: Option<usize>) {
        let s = &mut self.stats;
        let total = t.total();
        s.counted += 1;
        s.prompt_tokens += t.prompt;
        s.response_tokens += t.response;
        s.history_tokens += t.history;
        s.total_tokens += total;
        let bin = HISTOGRAM_EDGES.partition_point(|&edge| edge < total);
        s.histogram[bin] += 1;
        for (c, cut) in s.cutoffs.iter_mut().zip(cuts) {
            c.truncated += u64::from(cut.truncated);
            c.response_cut += u64::from(cut.response_cut);
            c.response_dropped += u64::from(cut.response_dropped);
            c.kept_tokens += cut.kept;
        }
        match bucket {
            Some(b) => s.cutoffs[b].bucket += 1,
            None => s.over += 1,
        }
        self.totals.push(u32::try_from(total).unwrap_or(u32::MAX));
    }

    fn merge(&mut self, other: &Acc) {
        let (s, o) = (&mut self.stats, &other.stats);
        s.records += o.records;
        s.counted += o.counted;
        s.rejected += o.rejected;
        s.prompt_tokens += o.prompt_tokens;
        s.response_tokens += o.response_tokens;
        s.history_tokens += o.history_tokens;
        s.total_tokens += o.total_tokens;
        s.over += o.over;
        for (a, b) in s.histogram.iter_mut().zip(&o.histogram) {
            *a += b;
        }
        for (a, b) in s.cutoffs.iter_mut().zip(&o.cutoffs) {
            a.bucket += b.bucket;
            a.truncated += b.truncated;
            a.response_cut += b.response_cut;
            a.response_dropped += b.response_dropped;
            a.kept_tokens += b.kept_tokens;
        }
        self.totals.extend_from_slice(&other.totals);
    }

    fn finish(mut self) -> SourceLengths {
        let s = &mut self.stats;
        if s.counted > 0 {
            s.mean = s.total_tokens as f64 / s.counted as f64;
            self.totals.sort_unstable();
            let n = self.totals.len();
            for (q, out) in QUANTILES.iter().zip(s.quantiles.iter_mut()) {
                *out = u64::from(self.totals[nearest_rank(*q, n)]);
            }
            s.max = u64::from(self.totals[n - 1]);
        }
        self.stats
    }
}

/// 0-based index of the nearest-rank q-quantile of n sorted values (n ≥ 1).
pub fn nearest_rank(q: f64, n: usize) -> usize {
    let rank = (q * n as f64).ceil() as usize;
    rank.clamp(1, n) - 1
}

/// The bucket of a total: index of the smallest cut-off ≥ total, `None` above them all.
pub fn bucket_of(total: u64, cutoffs: &[u64]) -> Option<usize> {
    let b = cutoffs.partition_point(|&c| c < total);
    (b < cutoffs.len()).then_some(b)
}

fn check_cutoffs(cutoffs: &[u64]) -> Result<()> {
    if cutoffs.is_empty() || cutoffs[0] == 0 || cutoffs.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::config(format!(
            "cut-offs must be ascending distinct positive token counts, got {cutoffs:?}"
        )));
    }
    Ok(())
}

pub use crate::error::Progress;

type Measured = (RecordTokens, Vec<Truncation>);

/// Counts token lengths of every record of `inputs`; see the module comment.
pub fn token_lengths(
    inputs: &[SourceFile],
    counter: &TokenCounter,
    cfg: &LengthsConfig,
    buckets: Option<&Path>,
    quarantine: Option<&Path>,
    progress: Progress<'_>,
) -> Result<LengthsReport> {
    check_cutoffs(&cfg.cutoffs)?;
    let bound = TemplateCounter::new(
        counter,
        cfg.template.clone(),
        cfg.bos_token.as_deref(),
        cfg.eos_token.as_deref(),
    )?;
    let efficient_eos = bound.template().efficient_eos;
    let mut bucket_writer = buckets.map(JsonlWriter::create).transpose()?;
    let mut q_writer = quarantine.map(JsonlWriter::create).transpose()?;
    let total_bytes: u64 = inputs
        .iter()
        .map(|s| std::fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0))
        .sum();
    let mut done = 0u64;
    let mut report = LengthsReport {
        bos_id: bound.bos_id(),
        eos_id: bound.eos_id(),
        tokens: Some(bound.tokens().clone()),
        ..LengthsReport::default()
    };
    let mut all = Acc::new("total", None, &cfg.cutoffs);
    let mut line = String::new();
    for src in inputs {
        let mut acc = Acc::new(&src.name, Some(&src.path), &cfg.cutoffs);
        let mut per_record: Vec<u32> = Vec::new();
        let source_json = serde_json::to_string(&src.name).expect("a string serializes");
        let mut reader = RecordReader::open(&src.path, cfg.reader.clone())?;
        let before = done;
        while let Some(batch) = reader.next_batch()? {
            let measured: Vec<Result<Measured, Rejection>> = batch
                .records
                .par_iter()
                .zip(&batch.origins)
                .map(|(record, origin)| {
                    let conv = match conversation(record) {
                        Ok(c) => c,
                        Err(u) => {
                            let mut e = DataError::new(&batch.path, u.kind, u.reason)
                                .at_record(origin.index)
                                .in_field(u.field);
                            e.line = origin.line;
                            let raw = serde_json::to_string(record).expect("a map serializes");
                            return Ok(Err(Rejection {
                                error: e,
                                raw,
                                raw_bytes: None,
                            }));
                        }
                    };
                    let tokens = bound.count(&conv)?;
                    let cuts = cfg
                        .cutoffs
                        .iter()
                        .map(|&c| truncate(&tokens.pairs, c, efficient_eos))
                        .collect();
                    Ok(Ok((tokens, cuts)))
                })
                .collect::<Result<_>>()?;
            let mut rejected: Vec<Rejection> = batch.rejections;
            line.clear();
            let mut lines = 0u64;
            for (m, origin) in measured.into_iter().zip(&batch.origins) {
                match m {
                    Ok((tokens, cuts)) => {
                        let total = tokens.total();
                        let at = origin.index as usize;
                        if per_record.len() <= at {
                            per_record.resize(at + 1, NOT_COUNTED);
                        }
                        per_record[at] = u32::try_from(total).unwrap_or(NOT_COUNTED - 1);
                        let bucket = bucket_of(total, &cfg.cutoffs);
                        acc.add(&tokens, &cuts, bucket);
                        if bucket_writer.is_some() {
                            lines += 1;
                            let _ = write!(
                                line,
                                "{{\"source\":{source_json},\"index\":{},\"prompt_tokens\":{},\
                                 \"response_tokens\":{},\"total_tokens\":{total},\"bucket\":",
                                origin.index, tokens.prompt, tokens.response
                            );
                            match bucket {
                                Some(b) => {
                                    let _ = writeln!(line, "{b}}}");
                                }
                                None => line.push_str("\"over\"}\n"),
                            }
                        }
                    }
                    Err(r) => rejected.push(r),
                }
            }
            if let Some(w) = bucket_writer.as_mut() {
                w.write_serialized(line.as_bytes(), lines)?;
            }
            rejected.sort_by_key(|r| r.error.record);
            for r in &rejected {
                if report.rejections.len() < REJECTION_SAMPLES {
                    report.rejections.push(r.error.clone());
                }
            }
            acc.stats.rejected += rejected.len() as u64;
            if let Some(q) = q_writer.as_mut() {
                q.write_rejections(&rejected)?;
            }
            done = before + reader.bytes_read();
            progress("count", done, total_bytes)?;
        }
        acc.stats.records = acc.stats.counted + acc.stats.rejected;
        per_record.resize(acc.stats.records as usize, NOT_COUNTED);
        report.record_totals.push(per_record);
        all.merge(&acc);
        report.sources.push(acc.finish());
    }
    report.total = all.finish();
    if let Some(w) = bucket_writer {
        report.bucket_lines = w.commit()?;
    }
    if let Some(q) = q_writer {
        q.commit()?;
    }
    Ok(report)
}
