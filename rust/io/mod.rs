//! Streaming record readers: JSONL, top-level JSON array/object, CSV with a header and Parquet,
//! each optionally gzip- or zstd-compressed, with per-file text-encoding detection (UTF-8 with or
//! without BOM, GBK/GB18030). Records come out in batches; nothing reads a whole file into
//! memory. Bad input is reported with file, line, record index and field, or — with
//! `OnError::Skip` — rejected into the batch's `rejections` with its raw text.
//!
//! Layout: `source` opens the file and its decompressor, `buffer` holds the decompressed bytes,
//! `decode` and `input` handle the text encoding, `jsonl`, `json` and `csv` cut records out of
//! the bytes, `parse` decodes/parses/validates them (in parallel) and applies [`OnError`], and
//! `parquet` reads Parquet rows. A `.json` file whose content is JSON Lines (or a `.jsonl` file
//! holding an array) is read as what it holds, unless the format was given explicitly.
//!
//! Writing lives in `write.rs` (atomic JSONL output and quarantine files).

pub mod arrow;
pub mod options;
pub mod partition;
pub mod write;

mod buffer;
mod csv;
mod decode;
mod input;
mod json;
mod jsonl;
#[cfg(feature = "parquet")]
mod parquet;
mod parse;
mod source;
pub use self::source::open_file;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::record::RecordBatch;

use self::buffer::ByteBuf;
use self::csv::CsvReader;
use self::input::TextInput;
use self::json::JsonReader;
use self::jsonl::JsonlReader;
use self::parse::Ctx;
use self::source::Counter;

/// Input file format. `None` in [`ReaderOptions`] means: detect from the file name
/// (`.jsonl`/`.ndjson`, `.json`, `.csv`/`.tsv`, `.parquet`, each optionally + `.gz`/`.zst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    /// A top-level JSON array of objects, or a top-level object whose values are objects
    /// (each value is a record; its key is stored in the field `_key`).
    Json,
    Csv,
    Parquet,
}

impl Format {
    /// The format a file name says, looking through a `.gz`/`.zst` suffix: `.jsonl`/`.ndjson`,
    /// `.json`, `.csv`/`.tsv`, `.parquet`/`.pq`; `None` for anything else.
    pub fn from_path(path: impl AsRef<Path>) -> Option<Format> {
        let ext = inner_extension(path.as_ref())?;
        match ext.as_str() {
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "json" => Some(Format::Json),
            "csv" | "tsv" => Some(Format::Csv),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// The lower-cased extension of a file name under any compression suffix (`a.CSV.gz` → `csv`).
fn inner_extension(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let mut parts = name.rsplit('.');
    let mut ext = parts.next()?;
    if matches!(ext, "gz" | "gzip" | "zst" | "zstd") {
        ext = parts.next()?;
    }
    // A name without any dot has no extension.
    (name.len() > ext.len()).then(|| ext.to_owned())
}

/// Text encoding of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Detect per file: BOM, then UTF-8 validity, else GB18030 (a superset of GBK).
    #[default]
    Auto,
    Utf8,
    /// GBK / GB18030 (decoded as GB18030, its superset).
    Gb18030,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Auto => "auto",
            Encoding::Utf8 => "utf-8",
            Encoding::Gb18030 => "gb18030",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// What to do with a bad record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Stop with a located error.
    #[default]
    Raise,
    /// Put the record into the batch's `rejections` (with reason and raw text) and go on.
    Skip,
}

#[derive(Debug, Clone)]
pub struct ReaderOptions {
    pub format: Option<Format>,
    pub encoding: Encoding,
    /// `None`: detect from the extension (and magic bytes).
    pub compression: Option<Compression>,
    pub on_error: OnError,
    /// Fields every record must have (missing → `DataErrorKind::MissingField`).
    pub required: Vec<String>,
    /// Records per batch.
    pub batch_size: usize,
    /// CSV field delimiter (default `,`; `\t` for `.tsv`).
    pub delimiter: Option<u8>,
    /// JSON Lines only: do not parse; each non-blank line's text goes to [`RecordBatch::raw`]
    /// (with its origin) instead of `records`, to copy records verbatim.
    pub raw_lines: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            format: None,
            encoding: Encoding::Auto,
            compression: None,
            on_error: OnError::Raise,
            required: Vec::new(),
            batch_size: 4096,
            delimiter: None,
            raw_lines: false,
        }
    }
}

/// Counts of what a reader has produced so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Records read successfully.
    pub records: u64,
    /// Records rejected (only non-zero in `Skip` mode).
    pub rejected: u64,
}

/// Streams one file as batches of records.
///
/// After an error has been returned (or the end reached), `next_batch` returns `Ok(None)`.
/// When an error stops the read after some records of a batch (a bad record in `Raise` mode,
/// a truncated compressed stream), those records come first as a batch and the error on the
/// next call.
pub struct RecordReader {
    path: PathBuf,
    format: Format,
    /// The format came from the file name, so the content may correct it (a `.json` file that
    /// holds JSON Lines, a `.jsonl` file that holds an array).
    sniff: bool,
    options: ReaderOptions,
    inner: Inner,
    compression: Compression,
    counter: Option<Arc<Counter>>,
    total_bytes: u64,
    stats: ReadStats,
    pending: Option<Error>,
    finished: bool,
}

enum Inner {
    /// JSON or JSONL before the first batch: the reader is picked once the start is seen.
    Start(Option<TextInput>),
    Jsonl(JsonlReader),
    Json(JsonReader),
    Csv(Box<CsvReader>),
    #[cfg(feature = "parquet")]
    Parquet(parquet::ParquetReader),
}

/// How far a `.json` file is read ahead to see whether it is really JSON Lines.
const SNIFF_LIMIT: usize = 64 * 1024 * 1024;

impl RecordReader {
    /// Opens `path` and detects format, compression and (lazily) encoding.
    pub fn open(path: impl AsRef<Path>, options: ReaderOptions) -> Result<Self> {
        let path = path.as_ref();
        if options.batch_size == 0 {
            return Err(Error::config("batch_size must be at least 1"));
        }
        source::check_file(path)?;
        let (format, sniff) = match options.format {
            Some(format) => (format, false),
            None => match Format::from_path(path) {
                Some(format) => (format, true),
                None => {
                    return Err(Error::config(format!(
                        "{}: cannot tell the format from the file name; expected .jsonl, \
                         .ndjson, .json, .csv, .tsv or .parquet (optionally .gz/.zst), or set \
                         the format explicitly",
                        path.display()
                    )))
                }
            },
        };
        let mut reader = Self {
            path: path.to_path_buf(),
            format,
            sniff,
            options,
            inner: Inner::Start(None),
            compression: Compression::None,
            counter: None,
            total_bytes: 0,
            stats: ReadStats::default(),
            pending: None,
            finished: false,
        };
        if format == Format::Parquet {
            reader.open_parquet()?;
            return Ok(reader);
        }
        let (stream, info) = source::open_stream(path, reader.options.compression)?;
        reader.compression = info.compression;
        reader.total_bytes = info.total_bytes;
        reader.counter = Some(Arc::clone(&info.counter));
        let input = TextInput::new(ByteBuf::new(stream), info, reader.options.encoding);
        reader.inner = if format == Format::Csv {
            let delimiter = reader.options.delimiter.unwrap_or_else(|| {
                if inner_extension(path).as_deref() == Some("tsv") {
                    b'\t'
                } else {
                    b','
                }
            });
            Inner::Csv(Box::new(CsvReader::new(input, delimiter)))
        } else {
            Inner::Start(Some(input))
        };
        Ok(reader)
    }

    #[cfg(feature = "parquet")]
    fn open_parquet(&mut self) -> Result<()> {
        self.total_bytes = source::check_uncompressed(&self.path, self.options.compression)?;
        self.inner = Inner::Parquet(parquet::ParquetReader::open(&self.path)?);
        Ok(())
    }

    #[cfg(not(feature = "parquet"))]
    fn open_parquet(&mut self) -> Result<()> {
        Err(Error::config(format!(
            "{}: this build has no Parquet support (the `parquet` feature is off)",
            self.path.display()
        )))
    }

    /// Picks the JSON or JSONL reader once the start of the data is seen.
    fn begin(&mut self) -> Result<()> {
        let Inner::Start(slot) = &mut self.inner else {
            return Ok(());
        };
        let Some(mut input) = slot.take() else {
            return Ok(());
        };
        let pos = input.start()?;
        if self.sniff {
            let mut first = pos;
            while input.buf.ensure(first + 1) > first
                && input.buf.data()[first].is_ascii_whitespace()
            {
                first += 1;
            }
            match (self.format, input.buf.data().get(first).copied()) {
                (Format::Jsonl, Some(b'[')) => self.format = Format::Json,
                (Format::Json, Some(b'{'))
                    if json::looks_like_lines(&mut input, first, SNIFF_LIMIT) =>
                {
                    self.format = Format::Jsonl;
                }
                _ => {}
            }
        }
        self.inner = if self.format == Format::Jsonl {
            Inner::Jsonl(JsonlReader::new(input, pos, 1))
        } else {
            Inner::Json(JsonReader::new(input, pos, 1))
        };
        Ok(())
    }

    fn fill(&mut self, batch: &mut RecordBatch) -> Result<()> {
        self.begin()?;
        let ctx = Ctx {
            path: &self.path,
            on_error: self.options.on_error,
            required: &self.options.required,
            raw_lines: self.options.raw_lines,
        };
        if ctx.raw_lines && !matches!(self.inner, Inner::Jsonl(_) | Inner::Start(_)) {
            return Err(Error::config(format!(
                "{}: raw lines can only be read from JSON Lines",
                self.path.display()
            )));
        }
        let size = self.options.batch_size;
        match &mut self.inner {
            Inner::Start(_) => Ok(()),
            Inner::Jsonl(r) => r.fill(batch, &ctx, size),
            Inner::Json(r) => r.fill(batch, &ctx, size),
            Inner::Csv(r) => r.fill(batch, &ctx, size),
            #[cfg(feature = "parquet")]
            Inner::Parquet(r) => r.fill(batch, &ctx, size),
        }
    }

    /// The next batch, or `None` at the end of the file. In `Raise` mode the first bad record
    /// is an `Err(Error::Data(..))`; in `Skip` mode it becomes a rejection in the batch.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(err) = self.pending.take() {
            return Err(err);
        }
        if self.finished {
            return Ok(None);
        }
        let mut batch = RecordBatch::new(self.path.clone());
        let result = self.fill(&mut batch);
        self.stats.records += batch.records.len() as u64;
        self.stats.rejected += batch.rejections.len() as u64;
        match result {
            Ok(()) if batch.is_empty() => {
                self.finished = true;
                Ok(None)
            }
            Ok(()) => Ok(Some(batch)),
            Err(err) => {
                self.finished = true;
                if batch.is_empty() {
                    Err(err)
                } else {
                    self.pending = Some(err);
                    Ok(Some(batch))
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format in use (for a file whose name says `.json` but which holds JSON Lines, or the
    /// other way round, this changes to what the content is once the first batch is read).
    pub fn format(&self) -> Format {
        self.format
    }

    /// The compression of the file (`None` for Parquet, which compresses internally).
    pub fn compression(&self) -> Compression {
        self.compression
    }

    fn input(&self) -> Option<&TextInput> {
        match &self.inner {
            Inner::Start(input) => input.as_ref(),
            Inner::Jsonl(r) => Some(r.input()),
            Inner::Json(r) => Some(r.input()),
            Inner::Csv(r) => Some(r.input()),
            #[cfg(feature = "parquet")]
            Inner::Parquet(_) => None,
        }
    }

    /// The encoding in use (after detection; `Auto` until the first non-ASCII byte decides).
    pub fn encoding(&self) -> Encoding {
        match &self.inner {
            #[cfg(feature = "parquet")]
            Inner::Parquet(r) => r.encoding(),
            _ => self.input().map_or(self.options.encoding, |i| i.encoding),
        }
    }

    /// Bytes of the (compressed) input file consumed so far, for progress reporting.
    pub fn bytes_read(&self) -> u64 {
        match &self.inner {
            #[cfg(feature = "parquet")]
            Inner::Parquet(r) => r.bytes_read(),
            _ => self.counter.as_ref().map_or(0, |c| c.bytes()),
        }
    }

    /// Size of the input file on disk.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    pub fn stats(&self) -> ReadStats {
        self.stats
    }
}

impl Iterator for RecordReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}
