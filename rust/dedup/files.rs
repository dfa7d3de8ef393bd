//! `dedup` over files: every input file is one source. Pass 1 streams the records and keeps only
//! their dedup text (chosen fields, cleaned, in one arena: no record objects are held), the
//! engine of this module's parent runs in the requested scope, and pass 2 streams the files again
//! and writes the kept records in input order. Writes the kept records (JSONL), a clusters file
//! and, in skip mode, a quarantine file, all atomically. Every input record ends up kept, a
//! duplicate of a named record, or rejected with a reason.
//!
//! Does not normalize the written records (run `normalize` first) and reads JSONL/JSON/CSV/
//! Parquet through `crate::io`.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{json, Value};

use super::corpus::Corpus;
use super::lsh::BandKeys;
use super::remote::{SketchCorpus, SketchTexts};
use super::sketch::{read_sketch, FileSketch};
use super::spill::SpillBuilder;
use super::{
    dedup_corpus_with, dedup_scopes_with, memory_corpus, BucketLinker, DedupConfig, DedupInputs,
    DedupStats, Duplicate, Scope,
};
use crate::error::{Error, Result};
use crate::io::write::JsonlWriter;
use crate::io::{Format, ReaderOptions, RecordReader};
use crate::normalize::{normalize_text, TextOptions};
use crate::record::Record;
use crate::record::RecordBatch;

/// Which dedup scopes to run (SF-Med runs both: per source, then across sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScopeMode {
    PerSource,
    CrossSource,
    #[default]
    Both,
}

impl ScopeMode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "per-source" => Ok(Self::PerSource),
            "cross-source" => Ok(Self::CrossSource),
            "both" => Ok(Self::Both),
            other => Err(Error::config(format!(
                "unknown scope '{other}': expected per-source, cross-source or both"
            ))),
        }
    }
}

/// One input file and the source name it stands for.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct DedupFilesConfig {
    pub dedup: DedupConfig,
    pub scope: ScopeMode,
    /// Fields whose values make the dedup text (joined by newlines); `None` = every field.
    pub fields: Option<Vec<String>>,
    /// Rank of each source (index into the inputs) for `KeepPolicy::Priority`; lower is
    /// preferred. `None` = input order.
    pub source_rank: Option<Vec<u32>>,
    pub reader: ReaderOptions,
    /// Memory the run may use, in bytes: past it (as estimated from the input size) the run
    /// goes out of core. `None`: half of the memory available when it starts; `Some(0)`: always
    /// out of core.
    pub memory_limit: Option<u64>,
    /// Where an out-of-core run puts its temporary folder (default: the output's folder, else
    /// the system's temporary folder).
    pub tmp_dir: Option<PathBuf>,
}

/// Per-source counts: `records = kept + exact + near + rejected`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceCounts {
    pub name: String,
    pub path: PathBuf,
    pub records: u64,
    pub kept: u64,
    pub exact_duplicates: u64,
    pub near_duplicates: u64,
    pub rejected: u64,
    /// Duplicates removed within the source / against other sources.
    pub within_source: u64,
    pub cross_source: u64,
}

#[derive(Debug, Clone, Default)]
pub struct DedupFilesStats {
    pub sources: Vec<SourceCounts>,
    pub within: DedupStats,
    pub cross: DedupStats,
    pub clusters: u64,
    /// Whether the run went out of core, and the bytes its temporary files took.
    pub out_of_core: bool,
    pub spilled_bytes: u64,
}

/// What happened to each record of pass 1 (indices are global over all sources, in order).
struct Outcome {
    duplicate_of: Vec<Option<Duplicate>>,
    scope: Vec<Option<Scope>>,
    keeper: Vec<u32>,
    cluster: Vec<u32>,
    cluster_sizes: Vec<u32>,
    within: DedupStats,
    cross: DedupStats,
}

/// The dedup text of a record: the chosen fields' values (strings as they are, other values as
/// JSON), joined by newlines and cleaned of line-ending, control and whitespace noise.
/// The dedup text of every record of a batch (see [`record_text`]), in parallel.
pub(crate) fn record_texts(records: &[Record], fields: Option<&[String]>) -> Vec<String> {
    records
        .par_iter()
        .map(|record| {
            let mut text = String::new();
            record_text(record, fields, &mut text);
            text
        })
        .collect()
}

pub(crate) fn record_text(record: &Record, fields: Option<&[String]>, out: &mut String) {
    let start = out.len();
    let mut push = |v: &Value| {
        if v.is_null() {
            return;
        }
        if out.len() > start {
            out.push('\n');
        }
        match v {
            Value::String(s) => out.push_str(&normalize_text(s, &TextOptions::default())),
            other => out.push_str(&other.to_string()),
        }
    };
    match fields {
        Some(fields) => fields
            .iter()
            .filter_map(|f| record.get(f))
            .for_each(&mut push),
        None => record.values().for_each(&mut push),
    }
}

/// Texts of all records in one arena: `text(i) = arena[ends[i-1]..ends[i]]`.
#[derive(Default)]
pub(crate) struct TextArena {
    arena: String,
    ends: Vec<usize>,
}

impl TextArena {
    /// Appends a text; returns its index.
    pub(crate) fn push(&mut self, text: &str) -> u32 {
        self.arena.push_str(text);
        self.ends.push(self.arena.len());
        (self.ends.len() - 1) as u32
    }

    pub(crate) fn texts(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let t = &self.arena[start..end];
                start = end;
                t
            })
            .collect()
    }
}

fn run_scopes(
    corpus: &impl Corpus,
    sources: &[u32],
    cfg: &DedupFilesConfig,
    linker: Option<&dyn BucketLinker>,
) -> Result<Outcome> {
    let priority: Vec<u32> = match &cfg.source_rank {
        Some(rank) => sources.iter().map(|&s| rank[s as usize]).collect(),
        None => sources.to_vec(),
    };
    match cfg.scope {
        ScopeMode::Both | ScopeMode::PerSource => {
            // per source: scope 1 of the two (clusters never cross sources), alone
            let cross = cfg.scope == ScopeMode::Both;
            let r = dedup_scopes_with(corpus, sources, Some(&priority), &cfg.dedup, cross, linker)?;
            Ok(Outcome {
                duplicate_of: r.duplicate_of,
                scope: r.scope,
                keeper: r.final_keeper,
                cluster: r.cluster,
                cluster_sizes: r.cluster_sizes,
                within: r.within,
                cross: r.cross,
            })
        }
        ScopeMode::CrossSource => {
            let r = dedup_corpus_with(corpus, Some(&priority), &cfg.dedup, linker)?;
            let keeper = (0..corpus.len()).map(|i| r.keeper(i)).collect();
            Ok(Outcome {
                scope: r
                    .duplicate_of
                    .iter()
                    .map(|d| d.map(|_| Scope::Cross))
                    .collect(),
                duplicate_of: r.duplicate_of,
                keeper,
                cluster: r.cluster,
                cluster_sizes: r.cluster_sizes,
                within: DedupStats::default(),
                cross: r.stats,
            })
        }
    }
}

pub use crate::error::Progress;

/// The reader options of a run: the chosen fields are required.
fn reader_options(cfg: &DedupFilesConfig) -> ReaderOptions {
    let mut opts = cfg.reader.clone();
    if let Some(f) = &cfg.fields {
        opts.required = f.clone();
    }
    opts
}

/// What reading one input file found.
pub(crate) struct ReadSummary {
    pub records: u64,
    pub rejected: u64,
    pub format: Format,
}

/// Streams `src` batch by batch; `each` gets the batch, its dedup texts and the bytes read so
/// far of the file's total. This is pass 1 of a local run and of a sketch (`sketch.rs`).
pub(crate) fn for_each_batch(
    src: &SourceFile,
    cfg: &DedupFilesConfig,
    mut each: impl FnMut(&RecordBatch, &[String], u64, u64) -> Result<()>,
) -> Result<ReadSummary> {
    let mut reader = RecordReader::open(&src.path, reader_options(cfg))?;
    let total = reader.total_bytes();
    while let Some(batch) = reader.next_batch()? {
        let texts = record_texts(&batch.records, cfg.fields.as_deref());
        each(&batch, &texts, reader.bytes_read(), total)?;
    }
    let stats = reader.stats();
    Ok(ReadSummary {
        records: stats.records,
        rejected: stats.rejected,
        format: reader.format(),
    })
}

/// Exact-key hashes, band keys and lengths computed with the texts elsewhere (sketches).
#[derive(Default)]
struct Signed {
    key_hashes: Vec<u128>,
    keys: Vec<u64>,
    kinds: Vec<super::TextKind>,
    lengths: Vec<u32>,
}

/// Where pass 1 puts the dedup texts.
enum Texts {
    Memory(TextArena),
    /// Signing done (from sketches), in memory; the texts stay in the sketches.
    Sketched(Signed),
    Spill(Box<SpillBuilder>),
}

/// Clusters serialized side by side before they are written.
const CLUSTER_LINES_PER_WRITE: usize = 16_384;

/// Peak memory of an in-memory run per byte of input, measured by `benches/bench_dedup.py`
/// (JSON Lines of ~230-character Chinese texts: 1.47 GB at 1M records, 0.70 GB of input).
const MEMORY_PER_INPUT_BYTE: f64 = 2.1;
/// Disk an out-of-core run needs per byte of input (texts and their verification rows) and per
/// record and band (band keys).
const DISK_PER_INPUT_BYTE: f64 = 2.5;
const DISK_PER_RECORD_BAND: u64 = 8;

/// The folder an out-of-core run should spill into, or `None` to run in memory; refuses a run
/// whose temporary files would not fit on that folder's disk.
fn spill_folder(
    inputs: &[SourceFile],
    output: KeptOutput<'_>,
    input_bytes: u64,
    cfg: &DedupFilesConfig,
) -> Result<Option<PathBuf>> {
    let limit = cfg
        .memory_limit
        .or_else(|| crate::sys::available_memory().map(|m| m / 2));
    let need = input_bytes as f64 * MEMORY_PER_INPUT_BYTE;
    match limit {
        Some(limit) if need > limit as f64 => {}
        _ => return Ok(None),
    }
    let folder = match (&cfg.tmp_dir, output.first().and_then(Path::parent)) {
        (Some(dir), _) => dir.clone(),
        (None, Some(parent)) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => std::env::temp_dir(),
    };
    let (bands, _) = cfg.dedup.validate()?;
    let records: u64 = inputs
        .iter()
        .map(|s| crate::sys::estimate_records(&s.path))
        .sum();
    let disk = (input_bytes as f64 * DISK_PER_INPUT_BYTE) as u64
        + records * bands as u64 * DISK_PER_RECORD_BAND;
    if let Some(free) = crate::sys::available_disk(&folder) {
        if disk > free {
            return Err(Error::config(format!(
                "an out-of-core dedup of these inputs needs about {} MB of temporary space in {}, \
                 which has {} MB free: pass a tmp_dir (--tmp-dir) on a larger disk, or a larger \
                 memory_limit (--memory-limit) to run in memory",
                disk / 1_000_000,
                folder.display(),
                free / 1_000_000
            )));
        }
    }
    Ok(Some(folder))
}

/// Adds a sketch's texts and signing to pass 1's texts.
fn push_sketch(texts: &mut Texts, sketch: &FileSketch) -> Result<()> {
    match texts {
        Texts::Memory(_) => unreachable!("a run from sketches keeps their signing"),
        Texts::Sketched(signed) => {
            signed.key_hashes.extend_from_slice(&sketch.key_hashes);
            signed.keys.extend_from_slice(sketch.keys.keys());
            signed.kinds.extend_from_slice(sketch.keys.kinds());
            if let Some(l) = &sketch.lengths {
                signed.lengths.extend_from_slice(l);
            }
            Ok(())
        }
        // the texts stay in the sketches
        Texts::Spill(builder) => builder.push_keys(
            sketch.key_hashes.clone(),
            &sketch.keys,
            sketch.lengths.clone(),
        ),
    }
}

/// A run whose pass 1 was done elsewhere, one sketch per input (see `sketch.rs`), and whose
/// buckets are linked elsewhere too where `linker` is given (see `remote.rs`).
pub struct FromSketches<'a> {
    pub sketches: &'a [PathBuf],
    pub linker: Option<&'a dyn BucketLinker>,
}

/// Where the second pass of [`dedup_files`] copies the kept records.
#[derive(Debug, Clone, Copy)]
pub enum KeptOutput<'a> {
    /// Nowhere: the second pass is skipped, only the clusters and the counts are produced.
    None,
    /// One file, the sources one after another.
    One(&'a Path),
    /// One file per input, in the inputs' order.
    PerSource(&'a [PathBuf]),
}

impl KeptOutput<'_> {
    fn first(&self) -> Option<&Path> {
        match self {
            Self::None => None,
            Self::One(p) => Some(p),
            Self::PerSource(ps) => ps.first().map(PathBuf::as_path),
        }
    }
}

/// Runs dedup over `inputs` and writes `output` (kept records), `clusters` (one line per
/// cluster of two or more) and, in skip mode, `quarantine`.
/// With `from` pass 1 reads the inputs' sketches instead of the inputs.
pub fn dedup_files(
    inputs: &[SourceFile],
    from: Option<&FromSketches<'_>>,
    output: KeptOutput<'_>,
    clusters: Option<&Path>,
    quarantine: Option<&Path>,
    cfg: &DedupFilesConfig,
    progress: Progress<'_>,
) -> Result<DedupFilesStats> {
    cfg.dedup.validate()?;
    if let Some(rank) = &cfg.source_rank {
        if rank.len() != inputs.len() {
            return Err(Error::config(format!(
                "source_rank has {} entries for {} inputs",
                rank.len(),
                inputs.len()
            )));
        }
    }
    if let KeptOutput::PerSource(outputs) = output {
        if outputs.len() != inputs.len() {
            return Err(Error::config(format!(
                "{} outputs for {} inputs",
                outputs.len(),
                inputs.len()
            )));
        }
    }
    let sketches = from.map(|f| f.sketches);
    let linker = from.and_then(|f| f.linker);
    if let Some(sk) = sketches {
        if sk.len() != inputs.len() {
            return Err(Error::config(format!(
                "{} sketches for {} inputs",
                sk.len(),
                inputs.len()
            )));
        }
    }
    let reader_opts = reader_options(cfg);
    // Pass 1: dedup texts (in memory or spilled), sources and record indices within each file.
    let total: u64 = inputs
        .iter()
        .map(|s| std::fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0))
        .sum();
    let mut texts = match (spill_folder(inputs, output, total, cfg)?, sketches) {
        (None, None) => Texts::Memory(TextArena::default()),
        (None, Some(_)) => Texts::Sketched(Signed::default()),
        (Some(parent), _) => Texts::Spill(Box::new(SpillBuilder::new(&parent, &cfg.dedup)?)),
    };
    let mut sources: Vec<u32> = Vec::new();
    let mut index_in_file: Vec<u64> = Vec::new();
    let mut counts: Vec<SourceCounts> = Vec::new();
    let mut formats: Vec<Format> = Vec::new();
    let mut q_writer = quarantine.map(JsonlWriter::create).transpose()?;
    let mut done = 0u64;
    for (sid, src) in inputs.iter().enumerate() {
        let before = done;
        let read = match sketches {
            Some(sk) => {
                let sketch = read_sketch(&sk[sid], src, cfg)?;
                push_sketch(&mut texts, &sketch)?;
                sources.extend(std::iter::repeat_n(sid as u32, sketch.index_in_file.len()));
                index_in_file.extend_from_slice(&sketch.index_in_file);
                if let Some(q) = q_writer.as_mut() {
                    let lines = sketch.quarantine.iter().filter(|&&b| b == b'\n').count();
                    q.write_serialized(&sketch.quarantine, lines as u64)?;
                }
                done = before + std::fs::metadata(&src.path).map_or(0, |m| m.len());
                progress("read", done, total)?;
                ReadSummary {
                    records: sketch.records,
                    rejected: sketch.rejected,
                    format: sketch.format,
                }
            }
            None => for_each_batch(src, cfg, |batch, batch_texts, read, _| {
                match &mut texts {
                    Texts::Memory(arena) => {
                        for text in batch_texts {
                            arena.push(text);
                        }
                    }
                    Texts::Sketched(..) => unreachable!("sketched runs read no inputs"),
                    Texts::Spill(builder) => builder.push(batch_texts)?,
                }
                for origin in &batch.origins {
                    sources.push(sid as u32);
                    index_in_file.push(origin.index);
                }
                if let Some(q) = q_writer.as_mut() {
                    q.write_rejections(&batch.rejections)?;
                }
                done = before + read;
                progress("read", done, total)
            })?,
        };
        formats.push(read.format);
        counts.push(SourceCounts {
            name: src.name.clone(),
            path: src.path.clone(),
            records: read.records + read.rejected,
            rejected: read.rejected,
            ..SourceCounts::default()
        });
    }
    progress("dedup", 0, sources.len() as u64)?;
    let (outcome, spilled_bytes) = match texts {
        Texts::Memory(arena) => {
            let texts = arena.texts();
            let corpus = memory_corpus(&texts, &DedupInputs::default(), &cfg.dedup)?;
            (run_scopes(&corpus, &sources, cfg, linker)?, 0)
        }
        Texts::Sketched(signed) => {
            let (bands, rows) = cfg.dedup.validate()?;
            let corpus = SketchCorpus {
                texts: SketchTexts::open(sketches.expect("a sketched run"))?,
                key_hashes: signed.key_hashes,
                keys: BandKeys::from_parts(bands, rows, signed.keys, signed.kinds)?,
                lengths: (cfg.dedup.keep == super::KeepPolicy::Longest).then_some(signed.lengths),
            };
            if corpus.texts.len() != sources.len() {
                return Err(Error::config("the sketches changed during the run"));
            }
            (run_scopes(&corpus, &sources, cfg, linker)?, 0)
        }
        Texts::Spill(builder) => {
            let bytes = builder.disk_bytes();
            let corpus = match sketches {
                None => builder.finish()?,
                Some(sk) => builder.finish_with_texts(SketchTexts::open(sk)?)?,
            };
            (run_scopes(&corpus, &sources, cfg, linker)?, bytes)
        }
    };
    progress("dedup", sources.len() as u64, sources.len() as u64)?;

    // Per-source counts.
    for (i, d) in outcome.duplicate_of.iter().enumerate() {
        let c = &mut counts[sources[i] as usize];
        match d {
            None => c.kept += 1,
            Some(d) => {
                match d.kind {
                    super::DupKind::Exact => c.exact_duplicates += 1,
                    super::DupKind::Near => c.near_duplicates += 1,
                }
                match outcome.scope[i] {
                    Some(Scope::Cross) => c.cross_source += 1,
                    _ => c.within_source += 1,
                }
            }
        }
    }

    // Pass 2: write the kept records in input order; JSON Lines are copied verbatim.
    let writers = match output {
        KeptOutput::None => None,
        KeptOutput::One(_) | KeptOutput::PerSource(_) => {
            let paths: Vec<&Path> = match output {
                KeptOutput::PerSource(ps) => ps.iter().map(PathBuf::as_path).collect(),
                KeptOutput::One(p) => vec![p],
                KeptOutput::None => unreachable!("matched above"),
            };
            let mut writers = paths
                .into_iter()
                .map(JsonlWriter::create)
                .collect::<Result<Vec<_>>>()?;
            let last = writers.len() - 1;
            let mut global = 0usize;
            let mut done = 0u64;
            for (sid, src) in inputs.iter().enumerate() {
                let writer = &mut writers[sid.min(last)];
                let mut opts = reader_opts.clone();
                opts.on_error = crate::io::OnError::Skip; // rejections were handled in pass 1
                opts.raw_lines = formats[sid] == Format::Jsonl;
                let mut reader = RecordReader::open(&src.path, opts)?;
                let before = done;
                // Pass-1 records of this source: global indices `global..end`, ascending in the file.
                let end = global + counts[sid].records as usize - counts[sid].rejected as usize;
                while let Some(batch) = reader.next_batch()? {
                    if batch.raw.is_empty() {
                        if global + batch.origins.len() > end {
                            return Err(Error::config(format!(
                                "{} changed between the two passes",
                                src.path.display()
                            )));
                        }
                        let kept: Vec<Record> = batch
                            .records
                            .into_iter()
                            .enumerate()
                            .filter(|(k, _)| outcome.duplicate_of[global + k].is_none())
                            .map(|(_, r)| r)
                            .collect();
                        global += batch.origins.len();
                        writer.write_records(&kept)?;
                    } else {
                        // Rejected lines are not among the pass-1 records: match by index in the file.
                        let mut kept = Vec::new();
                        for (text, origin) in batch.raw.iter().zip(&batch.origins) {
                            if global < end && index_in_file[global] == origin.index {
                                if outcome.duplicate_of[global].is_none() {
                                    kept.push(text.as_str());
                                }
                                global += 1;
                            }
                        }
                        writer.write_raw_lines(&kept)?;
                    }
                    done = before + reader.bytes_read();
                    progress("write", done, total)?;
                }
                if global != end {
                    return Err(Error::config(format!(
                        "{} changed between the two passes",
                        src.path.display()
                    )));
                }
            }
            if global != outcome.duplicate_of.len() {
                return Err(Error::config(format!(
                    "input files changed between the two passes ({} records, then {global})",
                    outcome.duplicate_of.len()
                )));
            }
            Some(writers)
        }
    };

    // Clusters of two or more: keeper first, then members with how they relate. Streamed in
    // chunks of clusters (serialized in parallel): no per-cluster object is held for the run.
    let n_clusters = outcome.cluster_sizes.iter().filter(|&&s| s > 1).count() as u64;
    let mut c_writer = clusters.map(JsonlWriter::create).transpose()?;
    if let Some(cw) = c_writer.as_mut() {
        let cluster_of = |i: u32| outcome.cluster[i as usize];
        // members of clusters of two or more, by cluster id, ascending within one (stable sort)
        let mut members: Vec<u32> = (0..outcome.cluster.len() as u32)
            .filter(|&i| outcome.cluster_sizes[cluster_of(i) as usize] > 1)
            .collect();
        members.par_sort_by_key(|&i| cluster_of(i));
        let describe = |i: u32| {
            let i = i as usize;
            let src = &inputs[sources[i] as usize];
            let mut v = json!({"source": src.name, "index": index_in_file[i]});
            if let Some(d) = outcome.duplicate_of[i] {
                let of = d.of as usize;
                v["duplicate_of"] = json!({
                    "source": inputs[sources[of] as usize].name,
                    "index": index_in_file[of],
                });
                v["kind"] = json!(d.kind.as_str());
                v["similarity"] = json!((d.similarity * 1e4).round() / 1e4);
                v["scope"] = json!(match outcome.scope[i] {
                    Some(Scope::Cross) => "cross-source",
                    _ => "per-source",
                });
            }
            v
        };
        let line = |m: &[u32]| {
            let keeper = outcome.keeper[m[0] as usize];
            let v = json!({
                "cluster": cluster_of(m[0]),
                "size": m.len(),
                "keeper": describe(keeper),
                "duplicates": m.iter().filter(|&&i| i != keeper).map(|&i| describe(i)).collect::<Vec<_>>(),
            });
            let mut bytes = serde_json::to_vec(&v).expect("a JSON value always serializes");
            bytes.push(b'\n');
            bytes
        };
        let groups: Vec<&[u32]> = members
            .chunk_by(|&a, &b| cluster_of(a) == cluster_of(b))
            .collect();
        for chunk in groups.chunks(CLUSTER_LINES_PER_WRITE) {
            let lines: Vec<Vec<u8>> = chunk.par_iter().map(|m| line(m)).collect();
            cw.write_serialized(&lines.concat(), lines.len() as u64)?;
        }
    }

    // Commit: side files first, the main output last.
    if let Some(q) = q_writer {
        q.commit()?;
    }
    if let Some(c) = c_writer {
        c.commit()?;
    }
    for w in writers.into_iter().flatten() {
        w.commit()?;
    }
    Ok(DedupFilesStats {
        sources: counts,
        within: outcome.within,
        cross: outcome.cross,
        clusters: n_clusters,
        out_of_core: spilled_bytes > 0,
        spilled_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_text_joins_fields_of_one_record_only() {
        let r = json!({"a": " x ", "b": 3, "c": null, "d": "y"});
        let mut arena = String::from("earlier record");
        let before = arena.len();
        record_text(r.as_object().unwrap(), None, &mut arena);
        assert_eq!(&arena[before..], "x\n3\ny");
        let fields = vec!["d".to_string(), "a".to_string()];
        let mut one = String::new();
        record_text(r.as_object().unwrap(), Some(&fields), &mut one);
        assert_eq!(one, "y\nx");
    }
}

#[cfg(test)]
mod pass_tests {
    use super::*;
    use crate::io::OnError;

    /// JSON Lines are copied verbatim (key order, spacing, escapes), blank and rejected lines do
    /// not shift which lines are kept, and a CR before the newline is dropped.
    #[test]
    fn jsonl_output_keeps_the_kept_lines_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("src.jsonl");
        let long = "患者头痛发热咳嗽三天，伴有咽痛流涕，请问应该吃什么药比较好呢";
        let lines = [
            format!("{{\"text\": \"{long}\",  \"id\": 1}}\r"),
            String::new(),
            "{\"text\": broken".to_string(),
            format!("{{\"id\":2,\"text\":\"{long}\"}}"),
            "{\"text\": \"\\u7cd6\\u5c3f\\u75c5\\u60a3\\u8005\\u996e\\u98df\", \"z\": null}"
                .to_string(),
            "   ".to_string(),
            "{\"text\": \"另一条完全不同的记录，讲的是高血压的用药\"}".to_string(),
        ];
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        let output = dir.path().join("out.jsonl");
        let quarantine = dir.path().join("q.jsonl");
        let cfg = DedupFilesConfig {
            fields: Some(vec!["text".to_string()]),
            reader: ReaderOptions {
                on_error: OnError::Skip,
                ..ReaderOptions::default()
            },
            ..DedupFilesConfig::default()
        };
        let src = SourceFile {
            path: input,
            name: "src".to_string(),
        };
        let stats = dedup_files(
            &[src],
            None,
            KeptOutput::One(&output),
            None,
            Some(&quarantine),
            &cfg,
            &mut |_, _, _| Ok(()),
        )
        .unwrap();
        let c = &stats.sources[0];
        assert_eq!(
            (c.records, c.kept, c.exact_duplicates, c.rejected),
            (5, 3, 1, 1)
        );
        let written = std::fs::read_to_string(&output).unwrap();
        let want = [
            lines[0].trim_end_matches('\r'),
            lines[4].as_str(),
            lines[6].as_str(),
        ];
        assert_eq!(written, want.join("\n") + "\n");
    }

    #[test]
    fn per_source_outputs_hold_what_one_output_holds() {
        let dir = tempfile::tempdir().unwrap();
        let texts = [
            [
                "头痛发热咳嗽三天了怎么办",
                "糖尿病患者饮食要注意什么",
                "高血压的用药原则是什么",
            ],
            [
                "糖尿病患者饮食要注意什么",
                "胃痛反酸应该做什么检查",
                "头痛发热咳嗽三天了怎么办",
            ],
        ];
        let inputs: Vec<SourceFile> = texts
            .iter()
            .enumerate()
            .map(|(k, lines)| {
                let path = dir.path().join(format!("in{k}.jsonl"));
                let body: String = lines
                    .iter()
                    .map(|t| format!("{{\"text\": \"{t}\", \"k\": {k}}}\n"))
                    .collect();
                std::fs::write(&path, body).unwrap();
                SourceFile {
                    path,
                    name: format!("s{k}"),
                }
            })
            .collect();
        let cfg = DedupFilesConfig {
            fields: Some(vec!["text".to_string()]),
            ..DedupFilesConfig::default()
        };
        let run = |output: KeptOutput<'_>| {
            dedup_files(&inputs, None, output, None, None, &cfg, &mut |_, _, _| {
                Ok(())
            })
            .unwrap()
        };
        let one = dir.path().join("one.jsonl");
        let per = [dir.path().join("s0.jsonl"), dir.path().join("s1.jsonl")];
        let a = run(KeptOutput::One(&one));
        let b = run(KeptOutput::PerSource(&per));
        assert_eq!(a.sources[1].kept, 1);
        assert_eq!(
            (a.sources[0].kept, a.sources[1].kept),
            (b.sources[0].kept, b.sources[1].kept)
        );
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&one), read(&per[0]) + &read(&per[1]));
        assert_eq!(read(&per[1]).lines().count(), 1);
        let wrong = run_err(&inputs, &cfg, &per[..1]);
        assert!(wrong.contains("1 outputs for 2 inputs"), "{wrong}");
    }

    fn run_err(inputs: &[SourceFile], cfg: &DedupFilesConfig, per: &[PathBuf]) -> String {
        dedup_files(
            inputs,
            None,
            KeptOutput::PerSource(per),
            None,
            None,
            cfg,
            &mut |_, _, _| Ok(()),
        )
        .unwrap_err()
        .to_string()
    }
}
