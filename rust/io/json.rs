//! A whole-file JSON document, streamed: a top-level array of objects, or a top-level object
//! whose values are objects (each value is a record; its key becomes the first field `_key`).
//!
//! The file is never loaded whole. A small scanner walks the bytes, tracking strings, escapes
//! and bracket depth, to cut out each top-level element as a span of the shared buffer; a batch
//! of spans is then decoded and parsed with `serde_json` in parallel. Each record's line is the
//! line where its element (or key) starts. In UTF-8 the scanner jumps through strings with
//! `memchr`; in GB18030 it steps character by character, since the second byte of a character
//! can look like `\` (0x5c), `[`, `]`, `{` or `}`.
//!
//! Errors: an element that is not valid JSON or not an object is a per-record `Json` error
//! (rejected in `Skip` mode). A file cut off inside an element is a `Json` error for that
//! element (in `Skip` mode, a rejection with the partial text). Damage to the top-level
//! structure itself (a missing `,` between elements, a missing closing `]`/`}`, content after
//! the end, a top level that is neither array nor object) cannot be skipped and ends the read.
//! A trailing comma before the closing bracket is tolerated. The scanner does not validate
//! what it skips; `serde_json` does, per element.

use memchr::memchr3;

use crate::error::{DataError, DataErrorKind, Error, Result};
use crate::record::{Origin, RecordBatch};

use super::decode::gb18030_char_len;
use super::input::TextInput;
use super::parse::{parse_spans_into, Ctx, Failure, Span};
use super::Encoding;

/// Where the scanner is in the top-level structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Top {
    Start,
    Array,
    Object,
    /// The top-level value is closed; only whitespace may follow.
    After,
    End,
}

/// How a batch stopped short.
enum Stop {
    /// Damage to the top-level structure: this error, after the batch's records.
    Fatal(Error),
    /// The data ended inside the element starting at `start` (line, index).
    Truncated { start: usize, line: u64, index: u64 },
}

/// The data ended (or the stream failed) in the middle of something.
struct Eof;

pub(crate) struct JsonReader {
    input: TextInput,
    pos: usize,
    /// Line number at `pos`.
    line: u64,
    index: u64,
    top: Top,
    /// An element was just read: a separator or the closing bracket must follow.
    need_sep: bool,
    spans: Vec<Span>,
}

impl JsonReader {
    /// A reader over a started `input`, whose data begins at `pos` on line `line`.
    pub(crate) fn new(input: TextInput, pos: usize, line: u64) -> Self {
        Self {
            input,
            pos,
            line,
            index: 0,
            top: Top::Start,
            need_sep: false,
            spans: Vec::new(),
        }
    }

    pub(crate) fn input(&self) -> &TextInput {
        &self.input
    }

    /// The byte at `pos`, reading more when needed; `None` at the end of the data.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        if self.pos >= self.input.buf.len() && !self.input.buf.fill() {
            return None;
        }
        Some(self.input.buf.data()[self.pos])
    }

    /// Skips whitespace; returns the next byte.
    fn skip_ws(&mut self) -> Option<u8> {
        loop {
            match self.peek()? {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                }
                b => return Some(b),
            }
        }
    }

    /// Steps over the non-ASCII character at `pos` (deciding the encoding on the first one).
    fn step_non_ascii(&mut self) {
        if self.input.undecided() {
            self.input.decide_at(self.pos);
        }
        if self.input.encoding == Encoding::Gb18030 {
            let end = self.input.buf.ensure(self.pos + 4).min(self.pos + 4);
            self.pos += gb18030_char_len(&self.input.buf.data()[self.pos..end]);
        } else {
            self.pos += 1;
        }
    }

    /// Scans one JSON value starting at `pos` (not whitespace), leaving `pos` just after it.
    /// Only strings and bracket depth are tracked; the content is checked later by serde_json.
    fn scan_value(&mut self) -> Result<(), Eof> {
        let mut depth: u32 = 0;
        loop {
            let b = self.peek().ok_or(Eof)?;
            match b {
                b'"' => {
                    self.pos += 1;
                    self.scan_string()?;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.pos += 1;
                }
                b'}' | b']' => {
                    if depth == 0 {
                        return Ok(());
                    }
                    depth -= 1;
                    self.pos += 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                b',' | b' ' | b'\t' | b'\r' | b'\n' if depth == 0 => return Ok(()),
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                0x80..=0xff => self.step_non_ascii(),
                _ => self.pos += 1,
            }
        }
    }

    /// Scans the rest of a string whose opening quote is just before `pos`.
    fn scan_string(&mut self) -> Result<(), Eof> {
        loop {
            if self.input.encoding == Encoding::Gb18030 {
                return self.scan_string_gb18030();
            }
            let data = self.input.buf.data();
            let hay = &data[self.pos..];
            let found = memchr3(b'"', b'\\', b'\n', hay);
            let scanned = found.unwrap_or(hay.len());
            if self.input.undecided() {
                if let Some(first) = hay[..scanned].iter().position(|b| !b.is_ascii()) {
                    self.pos += first;
                    self.input.decide_at(self.pos);
                    continue;
                }
            }
            match found {
                Some(i) => {
                    let at = self.pos + i;
                    match data[at] {
                        b'"' => {
                            self.pos = at + 1;
                            return Ok(());
                        }
                        b'\\' => {
                            self.pos = at;
                            if at + 1 >= data.len() && self.input.buf.ensure(at + 2) < at + 2 {
                                return Err(Eof);
                            }
                            if self.input.buf.data()[at + 1] == b'\n' {
                                self.line += 1;
                            }
                            self.pos = at + 2;
                        }
                        _ => {
                            self.pos = at + 1;
                            self.line += 1;
                        }
                    }
                }
                None => {
                    self.pos = data.len();
                    if !self.input.buf.fill() {
                        return Err(Eof);
                    }
                }
            }
        }
    }

    /// [`Self::scan_string`] for GB18030, character by character.
    fn scan_string_gb18030(&mut self) -> Result<(), Eof> {
        loop {
            // Keep 4 bytes of look-ahead for a whole character, except at the end of the data.
            let len = self.input.buf.ensure(self.pos + 4);
            if self.pos >= len {
                return Err(Eof);
            }
            let data = self.input.buf.data();
            let limit = if self.input.buf.at_eof() {
                len
            } else {
                len - 3
            };
            let mut p = self.pos;
            while p < limit {
                match data[p] {
                    b'"' => {
                        self.pos = p + 1;
                        return Ok(());
                    }
                    b'\\' => {
                        if p + 1 >= len {
                            self.pos = p;
                            return Err(Eof);
                        }
                        if data[p + 1] == b'\n' {
                            self.line += 1;
                        }
                        p += 2;
                    }
                    b'\n' => {
                        self.line += 1;
                        p += 1;
                    }
                    0x81..=0xfe => p += gb18030_char_len(&data[p..len.min(p + 4)]),
                    _ => p += 1,
                }
            }
            self.pos = p;
        }
    }

    fn fatal(&self, reason: String) -> Stop {
        Stop::Fatal(
            DataError::new(&self.input.info.path, DataErrorKind::Json, reason)
                .at_line(self.line)
                .into(),
        )
    }

    /// The end of the data inside the top-level structure: a read error, or a truncated file.
    fn unexpected_end(&mut self, what: &str) -> Stop {
        match self.input.end_error(self.line) {
            Some(err) => Stop::Fatal(err),
            None => self.fatal(format!("unexpected end of file: {what}")),
        }
    }

    /// Cuts out the next element (at `pos`, after whitespace) as a span.
    fn element(&mut self, key: Option<(usize, usize)>, line: u64) -> Result<(), Stop> {
        let start = self.pos;
        if self.scan_value().is_err() {
            return Err(Stop::Truncated {
                start: key.map_or(start, |k| k.0),
                line,
                index: self.index,
            });
        }
        self.spans.push(Span {
            start,
            end: self.pos,
            key,
            line,
            index: self.index,
            one_line: false,
        });
        self.index += 1;
        self.need_sep = true;
        Ok(())
    }

    /// After a record: `,` (another record follows) or `close`, the end of the top level.
    fn after_record(&mut self, b: u8, close: u8) -> Result<(), Stop> {
        if b == b',' {
            self.pos += 1;
            self.need_sep = false;
            Ok(())
        } else if b == close {
            self.pos += 1;
            self.top = Top::After;
            Ok(())
        } else {
            Err(self.fatal(format!(
                "expected ',' or '{}' after record {}, found {}",
                close as char,
                self.index - 1,
                describe(b)
            )))
        }
    }

    /// Advances the top-level state machine by one step.
    fn step(&mut self) -> Result<(), Stop> {
        match self.top {
            Top::Start => match self.skip_ws() {
                None => {
                    if let Some(err) = self.input.end_error(self.line) {
                        return Err(Stop::Fatal(err));
                    }
                    self.top = Top::End;
                }
                Some(b @ (b'[' | b'{')) => {
                    self.pos += 1;
                    self.top = if b == b'[' { Top::Array } else { Top::Object };
                }
                Some(b) => {
                    return Err(self.fatal(format!(
                        "expected a JSON array or object at the top level, found {}",
                        describe(b)
                    )))
                }
            },
            Top::Array => {
                let Some(b) = self.skip_ws() else {
                    return Err(
                        self.unexpected_end("the top-level array is not closed (missing ']')")
                    );
                };
                if self.need_sep {
                    return self.after_record(b, b']');
                }
                match b {
                    b']' => {
                        self.pos += 1;
                        self.top = Top::After;
                    }
                    b',' | b'}' | b':' => {
                        return Err(self.fatal(format!("expected a value, found {}", describe(b))))
                    }
                    _ => self.element(None, self.line)?,
                }
            }
            Top::Object => {
                let Some(b) = self.skip_ws() else {
                    return Err(
                        self.unexpected_end("the top-level object is not closed (missing '}')")
                    );
                };
                if self.need_sep {
                    return self.after_record(b, b'}');
                }
                match b {
                    b'}' => {
                        self.pos += 1;
                        self.top = Top::After;
                    }
                    b'"' => self.keyed_element()?,
                    _ => {
                        return Err(self.fatal(format!(
                            "expected a string key in the top-level object, found {}",
                            describe(b)
                        )))
                    }
                }
            }
            Top::After => match self.skip_ws() {
                None => {
                    if let Some(err) = self.input.end_error(self.line) {
                        return Err(Stop::Fatal(err));
                    }
                    self.top = Top::End;
                }
                Some(b) => {
                    return Err(self.fatal(format!(
                        "unexpected {} after the end of the top-level JSON value",
                        describe(b)
                    )))
                }
            },
            Top::End => {}
        }
        Ok(())
    }

    /// `"key": value` of the top-level object, `pos` at the key's quote.
    fn keyed_element(&mut self) -> Result<(), Stop> {
        let (key_start, line) = (self.pos, self.line);
        let truncated = Stop::Truncated {
            start: key_start,
            line,
            index: self.index,
        };
        self.pos += 1;
        if self.scan_string().is_err() {
            return Err(truncated);
        }
        let key = (key_start, self.pos);
        match self.skip_ws() {
            None => return Err(truncated),
            Some(b':') => self.pos += 1,
            Some(b) => {
                return Err(self.fatal(format!(
                    "expected ':' after a key of the top-level object, found {}",
                    describe(b)
                )))
            }
        }
        match self.skip_ws() {
            None => Err(truncated),
            Some(b @ (b',' | b'}' | b']' | b':')) => {
                Err(self.fatal(format!("expected a value, found {}", describe(b))))
            }
            Some(_) => self.element(Some(key), line),
        }
    }

    /// Reads up to `batch_size` records into `batch`.
    pub(crate) fn fill(
        &mut self,
        batch: &mut RecordBatch,
        ctx: &Ctx,
        batch_size: usize,
    ) -> Result<()> {
        if self.top == Top::End {
            return Ok(());
        }
        self.input.buf.discard(self.pos);
        self.pos = 0;
        self.spans.clear();
        let mut stop = None;
        while self.spans.len() < batch_size && self.top != Top::End {
            if let Err(s) = self.step() {
                stop = Some(s);
                break;
            }
        }
        parse_spans_into(
            batch,
            self.input.buf.data(),
            &self.spans,
            self.input.encoding,
            ctx,
        )?;
        match stop {
            None => Ok(()),
            Some(stop) => {
                self.top = Top::End;
                match stop {
                    Stop::Fatal(err) => Err(err),
                    Stop::Truncated { start, line, index } => {
                        if let Some(err) = self.input.end_error(self.line) {
                            return Err(err);
                        }
                        let failure = Failure::new(
                            DataErrorKind::Json,
                            format!(
                                "unexpected end of file inside record {index} (started at line \
                                 {line}); the file is truncated"
                            ),
                        );
                        let origin = Origin {
                            index,
                            line: Some(line),
                        };
                        let raw = &self.input.buf.data()[start..];
                        ctx.bad(batch, failure, origin, raw, self.input.encoding)
                    }
                }
            }
        }
    }
}

/// A byte for messages: `'x'` for printable ASCII, else hex.
fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// For a file named `.json`: true when it is really JSON Lines, i.e. its first line (from
/// `pos`, the first non-whitespace byte, a `{`) is a complete value and the next non-blank byte
/// starts another object. Looks at most `limit` bytes ahead.
pub(crate) fn looks_like_lines(input: &mut TextInput, pos: usize, limit: usize) -> bool {
    let mut depth: u32 = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut p = pos;
    let mut closed = false;
    loop {
        if p >= input.buf.len() && (p - pos >= limit || !input.buf.fill()) {
            return false;
        }
        let b = input.buf.data()[p];
        p += 1;
        if closed {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => continue,
                b'{' => return true,
                _ => return false,
            }
        }
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                (false, b'\n') => return false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    closed = true;
                }
            }
            b'\n' => return false,
            _ => {}
        }
    }
}
