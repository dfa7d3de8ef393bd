//! Tokenizing documents and packing them into fixed-length token shards.
//!
//! [`tokenize_documents`] encodes the text field of every document (the `tokenizers` crate or
//! the exact fast BPE path, `add_special_tokens = false`, in parallel) into a *token store*:
//! one little-endian `u32` file holding every document's ids back to back; it returns the
//! count per document, from which offsets follow.
//!
//! [`pack_documents`] writes documents of the store in a given order (indices may repeat:
//! up-sampling) as one stream, each document followed by EOS, cut into shards of
//! `sequences_per_shard` rows of `seq_len` tokens:
//! - `shard-NNNNN.bin`: little-endian `u32` ids, `sequences × seq_len` of them;
//! - `shard-NNNNN.docs.bin`: little-endian `u64` offsets (in the shard's flat stream) where a
//!   document starts; a document that began in the previous shard continues at offset 0
//!   without an entry;
//! - the last row is filled with `pad_id` after the last EOS (`content_tokens` tells where).
//!
//! Every file is written atomically. Choosing and ordering documents is the caller's.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{DataError, DataErrorKind, Error, Progress, Result};
use crate::io::write::AtomicFile;
use crate::io::{OnError, ReaderOptions, RecordReader};
use crate::lengths::TokenCounter;

/// Shape of the packed output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackConfig {
    pub seq_len: usize,
    pub eos_id: u32,
    pub pad_id: u32,
    pub sequences_per_shard: usize,
}

/// One written shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub tokens: String,
    pub docs: String,
    pub sequences: u64,
    /// Flat positions below this hold documents; the rest is padding.
    pub content_tokens: u64,
    /// Documents starting in this shard.
    pub documents: u64,
}

/// What [`pack_documents`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackStats {
    pub shards: Vec<ShardInfo>,
    pub documents: u64,
    /// Document tokens written, their EOS included.
    pub tokens: u64,
    pub padding: u64,
}

/// Encodes `field` of every record of `inputs` (in order) into the token store `store` and
/// returns the tokens per document. A record whose field is missing or not a string is an
/// error naming the file, record and field.
pub fn tokenize_documents(
    inputs: &[PathBuf],
    field: &str,
    tokenizer: &TokenCounter,
    store: &Path,
    progress: Progress<'_>,
) -> Result<Vec<u32>> {
    let total: u64 = inputs
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let mut before = 0u64;
    let mut out = AtomicFile::create(store)?;
    let mut counts = Vec::new();
    let options = ReaderOptions {
        on_error: OnError::Raise,
        ..ReaderOptions::default()
    };
    let mut bytes = Vec::new();
    for input in inputs {
        let mut rd = RecordReader::open(input, options.clone())?;
        while let Some(batch) = rd.next_batch()? {
            let mut texts = Vec::with_capacity(batch.records.len());
            for (r, origin) in batch.records.iter().zip(&batch.origins) {
                match r.get(field) {
                    Some(Value::String(t)) => texts.push(t.as_str()),
                    other => {
                        let why = if other.is_none() {
                            "missing"
                        } else {
                            "not a string"
                        };
                        let mut e = DataError::new(
                            input,
                            DataErrorKind::FieldType,
                            format!("document text {why}"),
                        )
                        .at_record(origin.index)
                        .in_field(field);
                        if let Some(l) = origin.line {
                            e = e.at_line(l);
                        }
                        return Err(e.into());
                    }
                }
            }
            let ids = tokenizer.encode_batch(&texts)?;
            bytes.clear();
            for doc in &ids {
                counts.push(u32::try_from(doc.len()).map_err(|_| {
                    Error::config(format!(
                        "{}: a document of over 2^32 tokens",
                        input.display()
                    ))
                })?);
                bytes.extend(doc.iter().flat_map(|t| t.to_le_bytes()));
            }
            out.write_all(&bytes)?;
            progress("tokenize", before + rd.bytes_read(), total)?;
        }
        before += rd.bytes_read();
    }
    out.commit()?;
    Ok(counts)
}

/// Packs the documents `order` (indices into `counts`, the store's tokens per document) of
/// the token store `store` into shards in `out_dir` (see the module comment).
pub fn pack_documents(
    store: &Path,
    counts: &[u32],
    order: &[u64],
    cfg: &PackConfig,
    out_dir: &Path,
) -> Result<PackStats> {
    if cfg.seq_len == 0 || cfg.sequences_per_shard == 0 {
        return Err(Error::config(
            "seq_len and sequences_per_shard must be at least 1",
        ));
    }
    let mut offsets = Vec::with_capacity(counts.len() + 1);
    let mut at = 0u64;
    offsets.push(0);
    for &c in counts {
        at += u64::from(c);
        offsets.push(at);
    }
    let file = File::open(store).map_err(|e| Error::io(store, e))?;
    let have = file.metadata().map_err(|e| Error::io(store, e))?.len();
    if have != at * 4 {
        return Err(Error::config(format!(
            "{}: token store holds {have} bytes, the counts say {}",
            store.display(),
            at * 4
        )));
    }
    let mut w = ShardWriter::new(out_dir, cfg);
    let mut stats = PackStats::default();
    let mut bytes = Vec::new();
    let mut ids = Vec::new();
    for &doc in order {
        let d = usize::try_from(doc)
            .ok()
            .filter(|&d| d < counts.len())
            .ok_or_else(|| Error::config(format!("document {doc} is not in the token store")))?;
        let (start, end) = (offsets[d], offsets[d + 1]);
        bytes.resize(((end - start) * 4) as usize, 0);
        file.read_exact_at(&mut bytes, start * 4)
            .map_err(|e| Error::io(store, e))?;
        ids.clear();
        ids.extend(
            bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        ids.push(cfg.eos_id);
        w.document(&ids)?;
        stats.documents += 1;
        stats.tokens += ids.len() as u64;
    }
    stats.padding = w.finish()?;
    stats.shards = w.done;
    Ok(stats)
}

/// The shard being written and those already committed.
struct ShardWriter<'a> {
    dir: &'a Path,
    cfg: &'a PackConfig,
    capacity: u64,
    file: Option<AtomicFile>,
    starts: Vec<u64>,
    pos: u64,
    done: Vec<ShardInfo>,
    buf: Vec<u8>,
}

impl<'a> ShardWriter<'a> {
    fn new(dir: &'a Path, cfg: &'a PackConfig) -> Self {
        Self {
            dir,
            cfg,
            capacity: (cfg.seq_len * cfg.sequences_per_shard) as u64,
            file: None,
            starts: Vec::new(),
            pos: 0,
            done: Vec::new(),
            buf: Vec::new(),
        }
    }

    fn name(&self, ext: &str) -> String {
        format!("shard-{:05}{ext}", self.done.len())
    }

    fn open(&mut self) -> Result<&mut AtomicFile> {
        if self.file.is_none() {
            self.file = Some(AtomicFile::create(self.dir.join(self.name(".bin")))?);
        }
        Ok(self.file.as_mut().expect("just opened"))
    }

    /// Appends one document (its EOS included), across shard ends as needed.
    fn document(&mut self, mut ids: &[u32]) -> Result<()> {
        let mut first = true;
        while !ids.is_empty() {
            if first {
                self.starts.push(self.pos);
                first = false;
            }
            let room = (self.capacity - self.pos) as usize;
            let (now, rest) = ids.split_at(room.min(ids.len()));
            self.write(now)?;
            ids = rest;
            if self.pos == self.capacity {
                self.commit(self.pos)?;
            }
        }
        Ok(())
    }

    fn write(&mut self, ids: &[u32]) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend(ids.iter().flat_map(|t| t.to_le_bytes()));
        self.open()?.write_all(&buf)?;
        self.buf = buf;
        self.pos += ids.len() as u64;
        Ok(())
    }

    fn commit(&mut self, content: u64) -> Result<()> {
        let file = self.file.take().expect("a shard is open");
        let docs_name = self.name(".docs.bin");
        let mut docs = AtomicFile::create(self.dir.join(&docs_name))?;
        let bytes: Vec<u8> = self.starts.iter().flat_map(|s| s.to_le_bytes()).collect();
        docs.write_all(&bytes)?;
        file.commit()?;
        docs.commit()?;
        self.done.push(ShardInfo {
            tokens: self.name(".bin"),
            docs: docs_name,
            sequences: self.pos / self.cfg.seq_len as u64,
            content_tokens: content,
            documents: self.starts.len() as u64,
        });
        self.starts.clear();
        self.pos = 0;
        Ok(())
    }

    /// Pads the last row and commits the open shard; returns the padding written.
    fn finish(&mut self) -> Result<u64> {
        if self.file.is_none() {
            return Ok(0);
        }
        let content = self.pos;
        let seq = self.cfg.seq_len as u64;
        let pad = (seq - content % seq) % seq;
        let fill = vec![self.cfg.pad_id; pad as usize];
        self.write(&fill)?;
        self.commit(content)?;
        Ok(pad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_u32(p: &Path) -> Vec<u32> {
        std::fs::read(p)
            .unwrap()
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    fn read_u64(p: &Path) -> Vec<u64> {
        std::fs::read(p)
            .unwrap()
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn documents_pack_across_rows_and_shards_with_eos_and_padding() {
        let dir = std::env::temp_dir().join(format!("csft-pack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = dir.join("store.bin");
        // documents: [1,2,3], [4], [5,6,7,8,9]
        let all: Vec<u8> = (1u32..=9).flat_map(|t| t.to_le_bytes()).collect();
        std::fs::write(&store, all).unwrap();
        let cfg = PackConfig {
            seq_len: 4,
            eos_id: 0,
            pad_id: 99,
            sequences_per_shard: 2,
        };
        let out = dir.join("out");
        let stats = pack_documents(&store, &[3, 1, 5], &[2, 0, 1, 0], &cfg, &out).unwrap();
        // stream: 5 6 7 8 9 0 | 1 2 3 0 | 4 0 | 1 2 3 0  = 16 tokens → 8 per shard
        assert_eq!((stats.documents, stats.tokens, stats.padding), (4, 16, 0));
        assert_eq!(stats.shards.len(), 2);
        assert_eq!(
            read_u32(&out.join("shard-00000.bin")),
            [5, 6, 7, 8, 9, 0, 1, 2]
        );
        assert_eq!(read_u64(&out.join("shard-00000.docs.bin")), [0, 6]);
        assert_eq!(
            read_u32(&out.join("shard-00001.bin")),
            [3, 0, 4, 0, 1, 2, 3, 0]
        );
        assert_eq!(read_u64(&out.join("shard-00001.docs.bin")), [2, 4]);
        let stats = pack_documents(&store, &[3, 1, 5], &[1, 0], &cfg, &out).unwrap();
        assert_eq!((stats.tokens, stats.padding), (6, 2));
        assert_eq!(
            read_u32(&out.join("shard-00000.bin")),
            [4, 0, 1, 2, 3, 0, 99, 99]
        );
        assert_eq!(stats.shards[0].content_tokens, 6);
        assert!(pack_documents(&store, &[3, 1, 5], &[3], &cfg, &out).is_err());
        assert!(pack_documents(&store, &[3, 1], &[0], &cfg, &out).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
