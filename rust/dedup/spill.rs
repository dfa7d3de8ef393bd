//! The out-of-core corpus: a dedup run whose memory does not grow with the texts. While the
//! records stream in, [`SpillBuilder`] writes each dedup text to a text file and each band key
//! to that band's file (one file per band, 8 bytes a record), and keeps in memory only what is
//! a few bytes a record (exact-key hash, kind, text offset, length). The engine then reads one
//! band column at a time to form buckets, and the texts of bucket members only, by position, to
//! verify them (their rows go to a file too: `verify::RowStore`).
//!
//! Everything lives in one temporary folder, removed when the [`SpillCorpus`] is dropped, also
//! on error. Does not decide when to spill (see `files.rs`).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::corpus::{char_counts, Corpus};
use super::lsh::{BandColumn, BandKeys};
use super::minhash::{signatures, MinHashParams};
use super::remote::SketchTexts;
use super::shingle::TextKind;
use super::{exact, DedupConfig, KeepPolicy};
use crate::error::{Error, Result};

/// A file written once, front to back, then read at any position.
pub(super) struct RowFile {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    reader: Option<File>,
    len: u64,
}

impl RowFile {
    pub(super) fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            reader: None,
            len: 0,
        })
    }

    /// u32 values written so far.
    pub(super) fn len_u32(&self) -> u64 {
        self.len / 4
    }

    pub(super) fn append_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let w = self.writer.as_mut().expect("file still being written");
        w.write_all(bytes).map_err(|e| Error::io(&self.path, e))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    pub(super) fn append(&mut self, values: &[u32]) -> Result<()> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.append_bytes(&bytes)
    }

    /// Ends the writing; the file is read from then on.
    pub(super) fn finish(mut self) -> Result<Self> {
        let w = self.writer.take().expect("file still being written");
        // flushed and closed, then opened read-only (a created file is write-only)
        drop(
            w.into_inner()
                .map_err(|e| Error::io(&self.path, e.into_error()))?,
        );
        self.reader = Some(File::open(&self.path).map_err(|e| Error::io(&self.path, e))?);
        Ok(self)
    }

    /// Bytes `start..end`.
    pub(super) fn read_bytes(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; (end - start) as usize];
        let file = self.reader.as_ref().expect("file finished");
        read_exact_at(file, &mut buf, start).map_err(|e| Error::io(&self.path, e))?;
        Ok(buf)
    }

    /// u32 values `start..end` (in u32 units).
    pub(super) fn read(&self, start: u64, end: u64) -> Result<Vec<u32>> {
        let bytes = self.read_bytes(start * 4, end * 4)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

#[cfg(unix)]
pub(super) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
pub(super) fn read_exact_at(
    file: &File,
    mut buf: &mut [u8],
    mut offset: u64,
) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// The spill files of a builder: the texts file, then one file per band.
struct SpillFiles {
    texts: RowFile,
    bands: Vec<RowFile>,
}

/// Batches of bytes for the spill files queued to the writer thread at most (a few MB each).
const WRITE_QUEUE: usize = 4;

/// The thread that writes the spill files. Dropped unfinished (a run that failed while
/// reading), it is stopped and waited for, so the folder is never removed under it.
struct Writer {
    /// Per batch: the texts' bytes, then each band's keys (little-endian u64).
    queue: Option<std::sync::mpsc::SyncSender<Vec<Vec<u8>>>>,
    thread: Option<std::thread::JoinHandle<Result<SpillFiles>>>,
}

impl Writer {
    fn spawn(mut files: SpillFiles) -> Self {
        let (queue, jobs) = std::sync::mpsc::sync_channel::<Vec<Vec<u8>>>(WRITE_QUEUE);
        let thread = std::thread::spawn(move || -> Result<SpillFiles> {
            for parts in jobs {
                let mut parts = parts.into_iter();
                if let Some(texts) = parts.next() {
                    files.texts.append_bytes(&texts)?;
                }
                for (file, keys) in files.bands.iter_mut().zip(parts) {
                    file.append_bytes(&keys)?;
                }
            }
            Ok(files)
        });
        Self {
            queue: Some(queue),
            thread: Some(thread),
        }
    }

    /// Queues one batch; false when the thread has stopped on an error (see `join`).
    fn send(&self, parts: Vec<Vec<u8>>) -> bool {
        let queue = self.queue.as_ref().expect("writer not joined");
        queue.send(parts).is_ok()
    }

    /// Waits for the thread and returns its files, or its error.
    fn join(&mut self) -> Result<SpillFiles> {
        drop(self.queue.take());
        let thread = self.thread.take().expect("writer joined once");
        match thread.join() {
            Ok(files) => files,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

/// Collects a corpus batch by batch into a temporary folder under a given parent. The files
/// are written by a thread of their own, so writing overlaps the signing of the next batches.
pub struct SpillBuilder {
    // dropped before `dir`: the writer is stopped before its folder is removed
    writer: Writer,
    dir: tempfile::TempDir,
    written: u64,
    text_ends: Vec<u64>,
    key_hashes: Vec<u128>,
    kinds: Vec<TextKind>,
    lengths: Option<Vec<u32>>,
    params: MinHashParams,
    bands: usize,
    rows: usize,
}

impl SpillBuilder {
    /// A builder whose files go to a new folder inside `parent`.
    pub fn new(parent: &Path, cfg: &DedupConfig) -> Result<Self> {
        let (bands, rows) = cfg.validate()?;
        // `.csft-dedup-RANDOM.tmp-PID`: a later run removes it if this process was killed
        // (`csft_data.write.remove_stale_temps`)
        let dir = tempfile::Builder::new()
            .prefix(".csft-dedup-")
            .suffix(&format!(".tmp-{}", std::process::id()))
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        let files = SpillFiles {
            texts: RowFile::create(&dir.path().join("texts.bin"))?,
            bands: (0..bands)
                .map(|b| RowFile::create(&dir.path().join(format!("band-{b:03}.bin"))))
                .collect::<Result<_>>()?,
        };
        Ok(Self {
            writer: Writer::spawn(files),
            dir,
            written: 0,
            text_ends: Vec::new(),
            key_hashes: Vec::new(),
            kinds: Vec::new(),
            lengths: (cfg.keep == KeepPolicy::Longest).then(Vec::new),
            params: cfg.minhash_params(),
            bands,
            rows,
        })
    }

    /// Adds the texts of one batch (exact keys are the texts themselves).
    pub fn push(&mut self, texts: &[String]) -> Result<()> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let keys =
            BandKeys::from_signatures(&signatures(&refs, &self.params)?, self.bands, self.rows);
        let lengths = self.lengths.is_some().then(|| char_counts(&refs));
        self.push_signed(&refs, exact::key_hashes(&refs), &keys, lengths)
    }

    /// Adds the texts of one batch signed elsewhere: their exact-key hashes, band keys and (for
    /// the keep policy `longest`) lengths, as [`SpillBuilder::push`] computes them.
    pub fn push_signed(
        &mut self,
        refs: &[&str],
        key_hashes: Vec<u128>,
        keys: &BandKeys,
        lengths: Option<Vec<u32>>,
    ) -> Result<()> {
        self.push_parts(Some(refs), key_hashes, keys, lengths)
    }

    /// [`SpillBuilder::push_signed`] without the texts, which live elsewhere (sketch files): the
    /// corpus is then finished with [`SpillBuilder::finish_with_texts`].
    pub fn push_keys(
        &mut self,
        key_hashes: Vec<u128>,
        keys: &BandKeys,
        lengths: Option<Vec<u32>>,
    ) -> Result<()> {
        self.push_parts(None, key_hashes, keys, lengths)
    }

    fn push_parts(
        &mut self,
        refs: Option<&[&str]>,
        key_hashes: Vec<u128>,
        keys: &BandKeys,
        lengths: Option<Vec<u32>>,
    ) -> Result<()> {
        let n = keys.len();
        if refs.is_some_and(|r| r.len() != n) || key_hashes.len() != n || keys.bands() != self.bands
        {
            return Err(Error::config(format!(
                "a signed batch of {n} rows of {} bands ({} wanted) has {} key hashes",
                keys.bands(),
                self.bands,
                key_hashes.len(),
            )));
        }
        let mut parts = Vec::with_capacity(self.bands + 1);
        let mut text_bytes = Vec::new();
        for i in 0..n {
            if let Some(refs) = refs {
                text_bytes.extend_from_slice(refs[i].as_bytes());
            }
            self.text_ends.push(self.written + text_bytes.len() as u64);
        }
        self.written += text_bytes.len() as u64;
        parts.push(text_bytes);
        parts.extend((0..self.bands).map(|b| {
            (0..n)
                .flat_map(|i| keys.row(i)[b].to_le_bytes())
                .collect::<Vec<u8>>()
        }));
        self.kinds.extend_from_slice(keys.kinds());
        self.key_hashes.extend(key_hashes);
        match (self.lengths.as_mut(), lengths) {
            (Some(all), Some(lengths)) if lengths.len() == n => all.extend(lengths),
            (Some(_), _) => return Err(Error::config("a signed batch lacks its text lengths")),
            (None, _) => {}
        }
        if !self.writer.send(parts) {
            // the writer stopped on an error: report it
            return self.writer.join().map(|_| ());
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Bytes of the spill files (texts and band keys).
    pub fn disk_bytes(&self) -> u64 {
        self.written + (self.kinds.len() * self.bands * 8) as u64
    }

    pub fn finish(self) -> Result<SpillCorpus> {
        self.finish_reading(None)
    }

    /// The corpus of a builder fed by [`SpillBuilder::push_keys`]: its texts are read from
    /// `texts` (the run's sketches), never copied.
    pub fn finish_with_texts(self, texts: SketchTexts) -> Result<SpillCorpus> {
        if texts.len() != self.len() {
            return Err(Error::config(format!(
                "{} texts in the sketches for {} records",
                texts.len(),
                self.len()
            )));
        }
        self.finish_reading(Some(texts))
    }

    fn finish_reading(mut self, elsewhere: Option<SketchTexts>) -> Result<SpillCorpus> {
        let files = self.writer.join()?;
        Ok(SpillCorpus {
            elsewhere,
            texts: files.texts.finish()?,
            band_files: files
                .bands
                .into_iter()
                .map(RowFile::finish)
                .collect::<Result<_>>()?,
            dir: self.dir,
            text_ends: self.text_ends,
            key_hashes: self.key_hashes,
            kinds: self.kinds,
            lengths: self.lengths,
        })
    }
}

/// A corpus whose texts and band keys are in files (see the module comment).
pub struct SpillCorpus {
    /// Where the texts are when not in the texts file (a run from sketches).
    elsewhere: Option<SketchTexts>,
    dir: tempfile::TempDir,
    texts: RowFile,
    text_ends: Vec<u64>,
    band_files: Vec<RowFile>,
    key_hashes: Vec<u128>,
    kinds: Vec<TextKind>,
    lengths: Option<Vec<u32>>,
}

/// A run of ascending texts is read in one piece when the piece is at most this many times the
/// bytes wanted (the verification rows are built from such runs).
const SPAN_READ_WASTE: u64 = 4;

impl SpillCorpus {
    /// Bytes `start..end` of text `i` in the texts file.
    fn span(&self, i: u32) -> (u64, u64) {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.text_ends[i - 1] };
        (start, self.text_ends[i])
    }

    fn utf8(&self, i: u32, bytes: Vec<u8>) -> Result<String> {
        String::from_utf8(bytes).map_err(|_| {
            Error::config(format!(
                "spilled text {i} in {} is not UTF-8: the temporary folder was changed",
                self.dir.path().display()
            ))
        })
    }

    fn text(&self, i: u32) -> Result<String> {
        if let Some(texts) = &self.elsewhere {
            return texts.text(i);
        }
        let (start, end) = self.span(i);
        self.utf8(i, self.texts.read_bytes(start, end)?)
    }
}

impl Corpus for SpillCorpus {
    fn len(&self) -> usize {
        self.kinds.len()
    }
    fn kinds(&self) -> &[TextKind] {
        &self.kinds
    }
    fn key_hashes(&self) -> &[u128] {
        &self.key_hashes
    }
    fn lengths(&self) -> Option<&[u32]> {
        self.lengths.as_deref()
    }
    fn bands(&self) -> usize {
        self.band_files.len()
    }
    fn parallel_bands(&self) -> bool {
        false
    }
    fn band_column(&self, band: usize) -> Result<BandColumn<'_>> {
        let file = &self.band_files[band];
        let n = self.kinds.len();
        let mut column = vec![0u64; n];
        // read in slices of 1 MiB: no second copy of the column
        const SLICE: usize = 1 << 17;
        let reader = File::open(&file.path).map_err(|e| Error::io(&file.path, e))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, reader);
        let mut buf = vec![0u8; SLICE * 8];
        for out in column.chunks_mut(SLICE) {
            let bytes = &mut buf[..out.len() * 8];
            reader
                .read_exact(bytes)
                .map_err(|e| Error::io(&file.path, e))?;
            out.par_iter_mut()
                .zip(bytes.par_chunks_exact(8))
                .for_each(|(v, c)| *v = u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        Ok(BandColumn::Owned(column))
    }
    fn same_key(&self, a: u32, b: u32) -> Result<bool> {
        Ok(self.text(a)? == self.text(b)?)
    }
    fn texts(&self, ids: &[u32]) -> Result<Vec<Cow<'_, str>>> {
        if let Some(texts) = &self.elsewhere {
            return texts.texts(ids);
        }
        let ascending = ids.windows(2).all(|w| w[0] < w[1]);
        let (first, last) = match (ids.first(), ids.last()) {
            (Some(&f), Some(&l)) if ascending => (self.span(f).0, self.span(l).1),
            _ => return ids.iter().map(|&i| self.text(i).map(Cow::Owned)).collect(),
        };
        let wanted: u64 = ids.iter().map(|&i| self.span(i)).map(|(s, e)| e - s).sum();
        if last - first > wanted.max(1) * SPAN_READ_WASTE {
            return ids.iter().map(|&i| self.text(i).map(Cow::Owned)).collect();
        }
        let block = self.texts.read_bytes(first, last)?;
        ids.iter()
            .map(|&i| {
                let (s, e) = self.span(i);
                let bytes = block[(s - first) as usize..(e - first) as usize].to_vec();
                self.utf8(i, bytes).map(Cow::Owned)
            })
            .collect()
    }
    fn spill_dir(&self) -> Option<&Path> {
        Some(self.dir.path())
    }
}
