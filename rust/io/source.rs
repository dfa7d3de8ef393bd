//! Opening an input file as a byte stream: detects gzip/zstd compression from the file name
//! and the magic bytes (gzip `1f 8b`, zstd `28 b5 2f fd`), wraps the file in the matching
//! decoder (`MultiGzDecoder`, so concatenated gzip members work; zstd reads all frames), and
//! counts the bytes taken from the file on disk for progress reporting.
//!
//! A compressed stream is decoded on a helper thread, a few chunks ahead of the reader, so that
//! decompression overlaps with parsing; the chunks are recycled, not reallocated.
//!
//! It also tells the two kinds of read failure apart: an error of the file itself becomes
//! [`Error::Io`], an error of the decoder (truncated or corrupt stream) becomes a located
//! `DataErrorKind::Compression` error. It knows nothing about text, lines or records.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread;

use crate::error::{DataError, DataErrorKind, Error, Result};

use super::Compression;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// Read buffer on the (compressed) file.
const FILE_BUFFER: usize = 256 * 1024;
/// Size of the decompressed chunks handed over by the read-ahead thread.
const AHEAD_CHUNK: usize = 1024 * 1024;
/// Chunks the read-ahead thread may hold ready.
const AHEAD_DEPTH: usize = 3;

/// Shared progress and failure state of the file under a decoder.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    bytes: AtomicU64,
    /// Set when reading the file itself failed (as opposed to the decoder).
    file_failed: AtomicBool,
}

impl Counter {
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// A reader that counts the bytes taken from the file and notes whether the file failed.
struct Counting {
    file: File,
    counter: Arc<Counter>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.file.read(buf) {
            Ok(n) => {
                self.counter.bytes.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.counter.file_failed.store(true, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }
}

/// Compression named by the file name's last extension, if any.
pub(crate) fn compression_from_name(path: &Path) -> Option<Compression> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "gz" | "gzip" => Some(Compression::Gzip),
        "zst" | "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

fn compression_from_magic(head: &[u8]) -> Compression {
    if head.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn name(c: Compression) -> &'static str {
    match c {
        Compression::None => "uncompressed",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    }
}

/// What [`open_file`] found out, beside the stream.
pub(crate) struct SourceInfo {
    pub path: PathBuf,
    pub compression: Compression,
    pub total_bytes: u64,
    pub counter: Arc<Counter>,
}

impl SourceInfo {
    /// Turns a read error of the decompressed stream into the crate's error: a failure of the
    /// file is `Error::Io`; a decoder failure is a `Compression` data error at `line` (the last
    /// line reached).
    pub(crate) fn read_error(&self, err: io::Error, line: u64) -> Error {
        if self.compression == Compression::None || self.counter.file_failed.load(Ordering::Relaxed)
        {
            return Error::io(&self.path, err);
        }
        let what = if err.kind() == io::ErrorKind::UnexpectedEof {
            "truncated"
        } else {
            "corrupt"
        };
        DataError::new(
            &self.path,
            DataErrorKind::Compression,
            format!(
                "{} {} stream: {err}; the data after line {} cannot be read",
                what,
                name(self.compression),
                line.saturating_sub(1)
            ),
        )
        .at_line(line)
        .into()
    }
}

/// Opens an input file for reading. A folder is refused as `[Errno 21] Is a directory`
/// (Linux lets `open` succeed on one and fails only at the first read, with no path); inputs
/// are files: give the files of a folder (e.g. `DIR/*.jsonl`), sorted as you want them read.
pub fn open_file(path: &Path) -> Result<File> {
    check_file(path)?;
    File::open(path).map_err(|e| Error::io(path, e))
}

/// Fails with the OS error for a path that does not exist or cannot be read, and with
/// `[Errno 21] Is a directory` for a folder.
pub fn check_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::io(path, std::io::Error::from_raw_os_error(EISDIR)));
    }
    Ok(())
}

/// `EISDIR`, the same number on Linux and macOS.
const EISDIR: i32 = 21;

/// Opens the raw file (no decompression) and peeks its first bytes. Returns the buffered file
/// and the compression its magic bytes show.
fn open_raw(path: &Path) -> Result<(BufReader<Counting>, Compression, Arc<Counter>, u64)> {
    let file = open_file(path)?;
    let total = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let counter = Arc::new(Counter::default());
    let mut raw = BufReader::with_capacity(
        FILE_BUFFER,
        Counting {
            file,
            counter: Arc::clone(&counter),
        },
    );
    let head = loop {
        match raw.fill_buf() {
            Ok(head) => break head,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        }
    };
    let magic = compression_from_magic(head);
    Ok((raw, magic, counter, total))
}

/// Decides the compression: a forced one wins; else the magic bytes; a name that promises
/// compression the content does not have is an error (unless the file is empty).
fn decide(
    path: &Path,
    forced: Option<Compression>,
    magic: Compression,
    empty: bool,
) -> Result<Compression> {
    if let Some(c) = forced {
        return Ok(c);
    }
    if magic != Compression::None || empty {
        return Ok(magic);
    }
    if let Some(named) = compression_from_name(path) {
        return Err(DataError::new(
            path,
            DataErrorKind::Compression,
            format!(
                "the file name says {} but the content is not {} data (wrong magic bytes)",
                name(named),
                name(named)
            ),
        )
        .into());
    }
    Ok(Compression::None)
}

/// Opens `path` as a stream of decompressed bytes.
pub(crate) fn open_stream(
    path: &Path,
    forced: Option<Compression>,
) -> Result<(Box<dyn Read + Send>, SourceInfo)> {
    let (raw, magic, counter, total_bytes) = open_raw(path)?;
    let compression = decide(path, forced, magic, total_bytes == 0)?;
    let stream: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => ReadAhead::spawn(Box::new(flate2::bufread::MultiGzDecoder::new(raw)))
            .map_err(|e| Error::io(path, e))?,
        Compression::Zstd => {
            let decoder = zstd::Decoder::with_buffer(raw).map_err(|e| {
                Error::from(DataError::new(
                    path,
                    DataErrorKind::Compression,
                    format!("cannot start the zstd decoder: {e}"),
                ))
            })?;
            ReadAhead::spawn(Box::new(decoder)).map_err(|e| Error::io(path, e))?
        }
    };
    let info = SourceInfo {
        path: path.to_path_buf(),
        compression,
        total_bytes,
        counter,
    };
    Ok((stream, info))
}

/// Reads a stream on a helper thread, `AHEAD_DEPTH` chunks ahead. The thread ends at the end
/// of the stream (sending an empty chunk as the mark), after passing on a read error, or when
/// the reader is dropped (its next send fails).
struct ReadAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Emptied chunks go back to the thread for reuse.
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    fn spawn(mut src: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
        let (chunk_tx, chunks) = sync_channel::<io::Result<Vec<u8>>>(AHEAD_DEPTH);
        let (recycle, recycled) = sync_channel::<Vec<u8>>(AHEAD_DEPTH + 2);
        let spawned = thread::Builder::new()
            .name("csft-read-ahead".into())
            .spawn(move || loop {
                let mut chunk = recycled.try_recv().unwrap_or_default();
                chunk.resize(AHEAD_CHUNK, 0);
                let mut filled = 0;
                let result = loop {
                    match src.read(&mut chunk[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == chunk.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                chunk.truncate(filled);
                // An empty chunk marks the clean end of the stream.
                let end = filled == 0;
                if (filled > 0 || result.is_ok()) && chunk_tx.send(Ok(chunk)).is_err() {
                    return;
                }
                if let Err(e) = result {
                    let _ = chunk_tx.send(Err(e));
                    return;
                }
                if end {
                    return;
                }
            });
        spawned?;
        Ok(Box::new(ReadAhead {
            chunks,
            recycle,
            current: Vec::new(),
            pos: 0,
            done: false,
        }))
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => {
                    self.done = true;
                    return Ok(0);
                }
                Ok(Ok(chunk)) => {
                    let old = std::mem::replace(&mut self.current, chunk);
                    let _ = self.recycle.try_send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    // The thread ended without the end mark: it panicked.
                    self.done = true;
                    return Err(io::Error::other("the decompression thread stopped"));
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// For formats that need random access (Parquet): checks that the file is not compressed
/// (by name or magic bytes) and returns its size.
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(crate) fn check_uncompressed(path: &Path, forced: Option<Compression>) -> Result<u64> {
    let (_, magic, _, total) = open_raw(path)?;
    let named = compression_from_name(path);
    let found = [forced, Some(magic), named]
        .into_iter()
        .flatten()
        .find(|c| *c != Compression::None);
    if let Some(c) = found {
        return Err(Error::config(format!(
            "{}: {} compressed Parquet files cannot be read; Parquet compresses its pages \
             itself, so decompress the file first",
            path.display(),
            name(c)
        )));
    }
    Ok(total)
}
