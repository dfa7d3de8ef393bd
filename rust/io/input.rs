//! A text input: the decompressed byte stream of one file in a [`ByteBuf`], plus its encoding
//! state (BOM handling at the start, the lazy decision at the first non-ASCII byte) and the
//! conversion of a deferred read error into the crate's located error. The format readers
//! (JSONL, JSON, CSV) each own one. It does not split lines or records.

use crate::error::{DataError, DataErrorKind, Error, Result};

use super::buffer::ByteBuf;
use super::decode::{detect, sniff_bom, Bom, DETECT_WINDOW, UTF16_MESSAGE};
use super::source::SourceInfo;
use super::Encoding;

pub(crate) struct TextInput {
    pub buf: ByteBuf,
    pub info: SourceInfo,
    /// `Auto` while undecided (all bytes so far were ASCII).
    pub encoding: Encoding,
    started: bool,
}

impl TextInput {
    pub(crate) fn new(buf: ByteBuf, info: SourceInfo, encoding: Encoding) -> Self {
        Self {
            buf,
            info,
            encoding,
            started: false,
        }
    }

    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// Looks at the first bytes: returns how many bytes of BOM to skip, or the UTF-16 error.
    /// A BOM decides the encoding, even over a forced one (it cannot be wrong).
    pub(crate) fn start(&mut self) -> Result<usize> {
        self.started = true;
        self.buf.ensure(4);
        match sniff_bom(self.buf.data()) {
            Bom::None => Ok(0),
            Bom::Found(encoding, len) => {
                self.encoding = encoding;
                Ok(len)
            }
            Bom::Utf16 => {
                Err(
                    DataError::new(&self.info.path, DataErrorKind::Decode, UTF16_MESSAGE)
                        .at_line(1)
                        .into(),
                )
            }
        }
    }

    /// True while the encoding is undecided.
    #[inline]
    pub(crate) fn undecided(&self) -> bool {
        self.encoding == Encoding::Auto
    }

    /// Decides the encoding from the bytes at `pos` (the first non-ASCII byte) onwards, reading
    /// ahead up to [`DETECT_WINDOW`] bytes.
    pub(crate) fn decide_at(&mut self, pos: usize) {
        let end = self
            .buf
            .ensure(pos + DETECT_WINDOW)
            .min(pos + DETECT_WINDOW);
        let at_eof = self.buf.at_eof() && end == self.buf.len();
        self.encoding = detect(&self.buf.data()[pos..end], at_eof);
    }

    /// After the stream ended: the read error that ended it, located at `line` (the last line
    /// reached), if there was one.
    pub(crate) fn end_error(&mut self, line: u64) -> Option<Error> {
        let err = self.buf.take_error()?;
        Some(self.info.read_error(err, line))
    }
}
