//! A growable read buffer over the decompressed byte stream, shared by the line-based and
//! JSON readers and fed into the CSV parser.
//!
//! Readers address the buffered bytes by offsets into [`ByteBuf::data`]; reading more only
//! appends (the vector may move, offsets stay valid), and bytes are dropped only when the
//! reader calls [`ByteBuf::discard`] at a record boundary. So a batch of records can be cut out
//! as offset spans and parsed later without copying. A read error is not returned at once: it
//! is kept, the stream counts as ended, and the reader reports it (located) after the records
//! that were complete before it. It knows nothing about encodings or formats.

use std::io::{self, Read};

/// Bytes asked from the stream per read.
const CHUNK: usize = 1024 * 1024;

pub(crate) struct ByteBuf {
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// `buf[..end]` holds data; the rest is scratch space for the next read.
    end: usize,
    eof: bool,
    error: Option<io::Error>,
}

impl ByteBuf {
    pub(crate) fn new(src: Box<dyn Read + Send>) -> Self {
        Self {
            src,
            buf: Vec::new(),
            end: 0,
            eof: false,
            error: None,
        }
    }

    /// The buffered bytes.
    #[inline]
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[..self.end]
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.end
    }

    /// True once the stream is exhausted (or failed): no more bytes will come.
    #[inline]
    pub(crate) fn at_eof(&self) -> bool {
        self.eof
    }

    /// The read error that ended the stream, if any (taken once).
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// Appends one read's worth of bytes. Returns false when nothing more will come.
    pub(crate) fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        if self.buf.len() - self.end < CHUNK {
            // Grow geometrically so that a huge record costs amortized O(n).
            let want = (self.end + CHUNK).max(self.buf.len() * 2);
            self.buf.resize(want, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                Ok(n) => {
                    self.end += n;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.eof = true;
                    self.error = Some(e);
                    return false;
                }
            }
        }
    }

    /// Reads until at least `upto` bytes are buffered or the stream ends; returns the number
    /// of bytes buffered.
    pub(crate) fn ensure(&mut self, upto: usize) -> usize {
        while self.end < upto && self.fill() {}
        self.end
    }

    /// Drops `buf[..upto]`; every offset held by the caller moves down by `upto`.
    pub(crate) fn discard(&mut self, upto: usize) {
        debug_assert!(upto <= self.end);
        if upto == 0 {
            return;
        }
        self.buf.copy_within(upto..self.end, 0);
        self.end -= upto;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per call, then fails if asked.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        fail_at_end: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                if self.fail_at_end {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"));
                }
                return Ok(0);
            }
            let n = self.step.min(buf.len()).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn ensure_discard_and_deferred_error() {
        let data: Vec<u8> = (0..100u8).collect();
        let src = Trickle {
            data: data.clone(),
            pos: 0,
            step: 7,
            fail_at_end: true,
        };
        let mut b = ByteBuf::new(Box::new(src));
        assert_eq!(b.ensure(20), 21);
        assert_eq!(&b.data()[..20], &data[..20]);
        b.discard(10);
        assert_eq!(b.data()[0], 10);
        assert_eq!(b.ensure(1000), 90);
        assert!(b.at_eof());
        assert_eq!(b.take_error().unwrap().kind(), io::ErrorKind::UnexpectedEof);
        assert!(b.take_error().is_none());
        assert!(!b.fill());
    }
}
