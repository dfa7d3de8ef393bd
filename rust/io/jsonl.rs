//! JSON Lines: one JSON object per line.
//!
//! Lines are split on raw `\n` bytes with `memchr` (safe for UTF-8 and GBK/GB18030); a trailing
//! `\r` is tolerated and blank (whitespace-only) lines are skipped. A batch of lines is cut out
//! as spans of the shared buffer, without copying, then decoded and parsed in parallel. A line
//! that is not valid JSON, or not a JSON object, is a `Json` error at that line. A last line
//! without a newline is a record, unless the stream ended with a read error (a truncated
//! compressed file): then that partial line is dropped and the error follows the records.

use memchr::memchr;

use crate::error::Result;
use crate::record::RecordBatch;

use super::input::TextInput;
use super::parse::{parse_spans_into, raw_spans_into, Ctx, Span};

pub(crate) struct JsonlReader {
    input: TextInput,
    /// Start of the next unread line in `input.buf`.
    pos: usize,
    /// Where the search for the next `\n` resumes (bytes before it hold none).
    search_from: usize,
    /// Number of the line that starts at `pos`.
    line: u64,
    index: u64,
    spans: Vec<Span>,
    done: bool,
}

impl JsonlReader {
    /// A reader over `input`, which may already have been started (BOM skipped) by a sniffer:
    /// `pos` is where the data begins and `line` its line number.
    pub(crate) fn new(input: TextInput, pos: usize, line: u64) -> Self {
        Self {
            input,
            pos,
            search_from: pos,
            line,
            index: 0,
            spans: Vec::new(),
            done: false,
        }
    }

    pub(crate) fn input(&self) -> &TextInput {
        &self.input
    }

    /// Adds the line `buf[start..end]` (without its `\n`) to the spans, unless it is blank.
    fn take_line(&mut self, start: usize, end: usize) {
        let data = self.input.buf.data();
        let mut end = end;
        if end > start && data[end - 1] == b'\r' {
            end -= 1;
        }
        let Some(first) = data[start..end]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
        else {
            return;
        };
        let start = start + first;
        if self.input.undecided() {
            if let Some(non_ascii) = data[start..end].iter().position(|b| !b.is_ascii()) {
                self.input.decide_at(start + non_ascii);
            }
        }
        self.spans.push(Span {
            start,
            end,
            key: None,
            line: self.line,
            index: self.index,
            one_line: true,
        });
        self.index += 1;
    }

    /// Parses the collected spans into `batch` (or keeps their text in raw mode).
    fn emit(&self, batch: &mut RecordBatch, ctx: &Ctx) -> Result<()> {
        let data = self.input.buf.data();
        if ctx.raw_lines {
            raw_spans_into(batch, data, &self.spans, self.input.encoding);
            return Ok(());
        }
        parse_spans_into(batch, data, &self.spans, self.input.encoding, ctx)
    }

    /// Reads up to `batch_size` records into `batch`.
    pub(crate) fn fill(
        &mut self,
        batch: &mut RecordBatch,
        ctx: &Ctx,
        batch_size: usize,
    ) -> Result<()> {
        if self.done {
            return Ok(());
        }
        if !self.input.started() {
            self.pos = self.input.start()?;
            self.search_from = self.pos;
        }
        self.input.buf.discard(self.pos);
        self.search_from -= self.pos;
        self.pos = 0;
        self.spans.clear();
        let mut ended = false;
        while self.spans.len() < batch_size {
            let found = memchr(b'\n', &self.input.buf.data()[self.search_from..]);
            match found {
                Some(i) => {
                    let nl = self.search_from + i;
                    self.take_line(self.pos, nl);
                    self.pos = nl + 1;
                    self.search_from = self.pos;
                    self.line += 1;
                }
                None => {
                    self.search_from = self.input.buf.len();
                    if !self.input.buf.fill() {
                        ended = true;
                        break;
                    }
                }
            }
        }
        self.emit(batch, ctx)?;
        if ended {
            self.done = true;
            if let Some(err) = self.input.end_error(self.line) {
                return Err(err);
            }
            // A last line without a newline.
            let len = self.input.buf.len();
            if self.pos < len {
                self.spans.clear();
                self.take_line(self.pos, len);
                self.pos = len;
                self.emit(batch, ctx)?;
            }
        }
        Ok(())
    }
}
