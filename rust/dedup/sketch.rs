//! The sketch of one input file: everything pass 1 of a files dedup (`files.rs`) computes from
//! it — the dedup texts, their exact-key hashes, kinds, band keys and (keep policy `longest`)
//! lengths, each record's index in the file, the rejected records' quarantine lines and the
//! counts — in one file. A distributed engine (Ray) computes sketches on its workers, one task
//! per input file, and the driver runs the rest of the dedup from them (`dedup_files` with
//! sketches): the same reader, text extraction and signing code as a local run, so the same
//! result.
//!
//! A sketch is written atomically and read back whole. It carries a checksum, the fingerprint of
//! the options that shape it and the size and modification time of its input, so a truncated or
//! changed sketch, one made with other options, or one of an input changed since is refused, not
//! trusted. Does not decide where sketches live or which worker makes them (see
//! `python/csft_data/ray_engine.py`). A sketch is built in memory: a very large single file is
//! best split into shards first.

use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

use super::files::{for_each_batch, DedupFilesConfig, SourceFile};
use super::lsh::BandKeys;
use super::minhash::signatures;
use super::shingle::TextKind;
use super::{corpus::char_counts, exact, KeepPolicy};
use crate::error::{Error, Progress, Result};
use crate::io::write::{rejection_to_json, AtomicFile};
use crate::io::Format;

const MAGIC: &[u8; 8] = b"CSFTSKT1";

/// What pass 1 computed from one input file.
pub struct FileSketch {
    pub format: Format,
    /// Records read (not rejected) and rejected.
    pub records: u64,
    pub rejected: u64,
    pub key_hashes: Vec<u128>,
    pub keys: BandKeys,
    pub lengths: Option<Vec<u32>>,
    pub index_in_file: Vec<u64>,
    /// Quarantine lines (JSON, each ending in a newline) of the rejected records.
    pub quarantine: Vec<u8>,
}

/// Counts of a sketch written by [`sketch_file`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SketchSummary {
    pub records: u64,
    pub rejected: u64,
    pub bytes: u64,
}

/// The fingerprint of the options that shape a sketch (signing, fields, reader).
fn fingerprint(cfg: &DedupFilesConfig) -> u64 {
    let r = &cfg.reader;
    let longest = cfg.dedup.keep == KeepPolicy::Longest;
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{longest}|{:?}",
        cfg.dedup.minhash_params(),
        cfg.dedup.validate().ok(),
        cfg.fields,
        r.format,
        r.encoding,
        r.compression,
        r.on_error,
        r.delimiter,
        cfg.dedup.cjk_share,
    );
    xxh3_64(text.as_bytes())
}

/// Size and modification time (ns since the epoch) of an input file.
fn input_stamp(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    Ok((meta.len(), mtime))
}

fn format_code(f: Format) -> u8 {
    match f {
        Format::Jsonl => 0,
        Format::Json => 1,
        Format::Csv => 2,
        Format::Parquet => 3,
    }
}

/// Reads `src` and writes its sketch to `out` (atomically).
pub fn sketch_file(
    src: &SourceFile,
    out: &Path,
    cfg: &DedupFilesConfig,
    progress: Progress<'_>,
) -> Result<SketchSummary> {
    let (bands, rows) = cfg.dedup.validate()?;
    let params = cfg.dedup.minhash_params();
    let longest = cfg.dedup.keep == KeepPolicy::Longest;
    let stamp = input_stamp(&src.path)?;
    let (mut text_bytes, mut text_ends) = (Vec::new(), Vec::new());
    let (mut key_hashes, mut keys, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
    let mut lengths = Vec::new();
    let (mut index_in_file, mut quarantine) = (Vec::new(), Vec::new());
    let read = for_each_batch(src, cfg, |batch, texts, done, total| {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let signed = BandKeys::from_signatures(&signatures(&refs, &params)?, bands, rows);
        for text in &refs {
            text_bytes.extend_from_slice(text.as_bytes());
            text_ends.push(text_bytes.len() as u64);
        }
        keys.extend_from_slice(signed.keys());
        kinds.extend_from_slice(signed.kinds());
        key_hashes.extend(exact::key_hashes(&refs));
        if longest {
            lengths.extend(char_counts(&refs));
        }
        index_in_file.extend(batch.origins.iter().map(|o| o.index));
        for r in &batch.rejections {
            serde_json::to_writer(&mut quarantine, &rejection_to_json(r))
                .expect("a JSON value always serializes");
            quarantine.push(b'\n');
        }
        progress("sketch", done, total)
    })?;

    let mut buf: Vec<u8> = Vec::with_capacity(text_bytes.len() + keys.len() * 8 + 64);
    let put = |buf: &mut Vec<u8>, v: u64| buf.extend_from_slice(&v.to_le_bytes());
    buf.extend_from_slice(MAGIC);
    put(&mut buf, fingerprint(cfg));
    put(&mut buf, stamp.0);
    put(&mut buf, stamp.1);
    buf.push(format_code(read.format));
    buf.push(u8::from(longest));
    put(&mut buf, read.records);
    put(&mut buf, read.rejected);
    put(&mut buf, bands as u64);
    put(&mut buf, text_ends.len() as u64);
    put(&mut buf, text_bytes.len() as u64);
    buf.extend_from_slice(&text_bytes);
    text_ends.iter().for_each(|&e| put(&mut buf, e));
    key_hashes
        .iter()
        .for_each(|h| buf.extend_from_slice(&h.to_le_bytes()));
    buf.extend(kinds.iter().map(|&k| k.code()));
    lengths
        .iter()
        .for_each(|l| buf.extend_from_slice(&l.to_le_bytes()));
    keys.iter().for_each(|&k| put(&mut buf, k));
    index_in_file.iter().for_each(|&i| put(&mut buf, i));
    put(&mut buf, quarantine.len() as u64);
    buf.extend_from_slice(&quarantine);
    let checksum = xxh3_64(&buf);
    put(&mut buf, checksum);
    let mut file = AtomicFile::create(out)?;
    file.write_all(&buf)?;
    file.commit()?;
    Ok(SketchSummary {
        records: read.records,
        rejected: read.rejected,
        bytes: buf.len() as u64,
    })
}

/// Reads the values of a sketch front to back; every read past the end is an error.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn bad(&self, what: &str) -> Error {
        Error::config(format!(
            "{}: not a valid dedup sketch ({what}); remove it and sketch the input again",
            self.path.display()
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| self.bad("truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn len(&mut self, size: usize) -> Result<usize> {
        let n = self.u64()?;
        let fits = (n as usize)
            .checked_mul(size)
            .is_some_and(|b| b <= self.bytes.len());
        if !fits {
            return Err(self.bad("a length past the end"));
        }
        Ok(n as usize)
    }

    fn u64s(&mut self, n: usize) -> Result<Vec<u64>> {
        Ok(self
            .take(n * 8)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
            .collect())
    }
}

/// Reads the sketch of `src` from `path`, refusing one that is damaged, was made with options
/// other than `cfg`'s, or whose input has changed since. The texts are covered by the checksum
/// but not kept: they are read from the file when needed (`remote::SketchTexts`, which checks
/// them as UTF-8).
pub fn read_sketch(path: &Path, src: &SourceFile, cfg: &DedupFilesConfig) -> Result<FileSketch> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut c = Cursor {
        bytes: &bytes,
        pos: 0,
        path,
    };
    if bytes.len() < MAGIC.len() + 8 || c.take(MAGIC.len())? != MAGIC {
        return Err(c.bad("no sketch header"));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 8);
    if xxh3_64(body) != u64::from_le_bytes(tail.try_into().expect("8")) {
        return Err(c.bad("checksum mismatch"));
    }
    if c.u64()? != fingerprint(cfg) {
        return Err(Error::config(format!(
            "{}: this sketch was made with other dedup options (signing, fields or reader) than \
             this run's",
            path.display()
        )));
    }
    let stamp = (c.u64()?, c.u64()?);
    if stamp != input_stamp(&src.path)? {
        return Err(Error::config(format!(
            "{}: its input {} changed after it was sketched",
            path.display(),
            src.path.display()
        )));
    }
    let format = match c.u8()? {
        0 => Format::Jsonl,
        1 => Format::Json,
        2 => Format::Csv,
        3 => Format::Parquet,
        _ => return Err(c.bad("unknown format code")),
    };
    let longest = c.u8()? == 1;
    let (records, rejected) = (c.u64()?, c.u64()?);
    let bands = c.u64()? as usize;
    let n = c.len(8)?;
    let text_len = c.len(1)?;
    c.take(text_len)?;
    let text_ends = c.u64s(n)?;
    let mut prev = 0u64;
    for &e in &text_ends {
        if e < prev || e as usize > text_len {
            return Err(c.bad("text offsets out of order"));
        }
        prev = e;
    }
    let key_hashes = c
        .take(n * 16)?
        .chunks_exact(16)
        .map(|h| u128::from_le_bytes(h.try_into().expect("16")))
        .collect();
    let kinds = c
        .take(n)?
        .iter()
        .map(|&k| TextKind::from_code(k).ok_or_else(|| c.bad("unknown text kind")))
        .collect::<Result<Vec<_>>>()?;
    let lengths = match longest {
        true => Some(
            c.take(n * 4)?
                .chunks_exact(4)
                .map(|l| u32::from_le_bytes(l.try_into().expect("4")))
                .collect(),
        ),
        false => None,
    };
    let (_, rows) = cfg.dedup.validate()?;
    let keys = BandKeys::from_parts(bands, rows, c.u64s(n * bands)?, kinds)?;
    let index_in_file = c.u64s(n)?;
    let q_len = c.len(1)?;
    let quarantine = c.take(q_len)?.to_vec();
    if c.pos + 8 != bytes.len() || records != n as u64 {
        return Err(c.bad("inconsistent lengths"));
    }
    Ok(FileSketch {
        format,
        records,
        rejected,
        key_hashes,
        keys,
        lengths,
        index_in_file,
        quarantine,
    })
}

/// Bytes before a sketch's texts: magic, fingerprint, input size and time, format, keep flag,
/// records, rejected, bands, text count, text length.
const TEXT_AT: u64 = 8 + 8 + 8 + 8 + 1 + 1 + 8 + 8 + 8 + 8 + 8;

/// A sketch opened for reading texts by position (`remote.rs`): the file, where its texts
/// start, and each text's end relative to that.
pub(super) fn text_index(path: &Path) -> Result<(std::fs::File, u64, Vec<u64>)> {
    use super::spill::read_exact_at;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = vec![0u8; TEXT_AT as usize];
    read_exact_at(&file, &mut head, 0).map_err(|e| Error::io(path, e))?;
    let mut c = Cursor {
        bytes: &head,
        pos: 0,
        path,
    };
    if c.take(MAGIC.len())? != MAGIC {
        return Err(c.bad("no sketch header"));
    }
    c.take((TEXT_AT - 16 - MAGIC.len() as u64) as usize)?;
    let (n, text_len) = (c.u64()?, c.u64()?);
    let mut raw = vec![
        0u8;
        (n as usize)
            .checked_mul(8)
            .ok_or_else(|| c.bad("too long"))?
    ];
    read_exact_at(&file, &mut raw, TEXT_AT + text_len).map_err(|e| Error::io(path, e))?;
    let ends = raw
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8")))
        .collect();
    Ok((file, TEXT_AT, ends))
}
