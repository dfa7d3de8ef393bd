//! CSV (and TSV) with a header row: the header gives the field names, every value is a string.
//!
//! Parsing uses the `csv` crate on the raw bytes (flexible, so that one bad row does not stop
//! `Skip` mode; quoted fields may span lines). That is safe for GBK/GB18030 as well as UTF-8:
//! no byte of a multi-byte character can be `"`, `,`, `\t`, `\r` or `\n`. Each row's fields are
//! then decoded with the file's encoding (detected lazily at the first non-ASCII row). The raw
//! bytes pass through the shared buffer, so a bad row is reported with its exact original text.
//!
//! Lines end at `\n`; a `\r` before it is dropped, a lone `\r` is data (so line numbers match
//! the JSONL reader and editors). Blank lines are skipped. Errors: a row whose field count
//! differs from the header's is a `Csv` error; undecodable bytes are a `Decode` error naming the
//! field. A GBK/GB18030 file cannot use a delimiter byte that can be part of a GB18030
//! character (0x40..0x7e, e.g. `|`): that is a configuration error. No type inference, no
//! comment lines, no header-less mode.

use std::io::{self, Read};

use ::csv::{ByteRecord, ReaderBuilder, Terminator};
use rayon::prelude::*;
use serde_json::Value;

use crate::error::{DataError, DataErrorKind, Error, Result};
use crate::record::{Origin, Record, RecordBatch};

use super::decode::decode;
use super::input::TextInput;
use super::parse::{Ctx, Failure, PARALLEL_MIN};
use super::Encoding;

/// Hands the shared buffer's bytes to the csv parser, keeping them for error reports.
struct Feed {
    input: TextInput,
    /// Next byte (index into the buffer) to hand out.
    served: usize,
    /// Stream offset (BOM included) of `buf[0]`.
    buf_base: u64,
    /// Stream offset of the csv parser's byte 0 (the length of a skipped BOM).
    csv_base: u64,
}

impl Feed {
    /// Buffer index of the csv parser's byte offset `off`.
    fn index(&self, off: u64) -> usize {
        (off + self.csv_base - self.buf_base) as usize
    }
}

impl Read for Feed {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.served >= self.input.buf.len() && !self.input.buf.fill() {
            return match self.input.buf.take_error() {
                Some(err) => Err(err),
                None => Ok(0),
            };
        }
        let avail = &self.input.buf.data()[self.served..];
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.served += n;
        Ok(n)
    }
}

pub(crate) struct CsvReader {
    rdr: ::csv::Reader<Feed>,
    delimiter: u8,
    header: Option<Vec<String>>,
    /// `a,b,c` for messages.
    header_list: String,
    /// The row being read.
    record: ByteRecord,
    /// Rows of the current batch (kept between batches for their allocations).
    rows: Vec<ByteRecord>,
    metas: Vec<Row>,
    index: u64,
    done: bool,
}

impl CsvReader {
    pub(crate) fn new(input: TextInput, delimiter: u8) -> Self {
        let feed = Feed {
            input,
            served: 0,
            buf_base: 0,
            csv_base: 0,
        };
        let rdr = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .terminator(Terminator::Any(b'\n'))
            .buffer_capacity(64 * 1024)
            .from_reader(feed);
        Self {
            rdr,
            delimiter,
            header: None,
            header_list: String::new(),
            record: ByteRecord::new(),
            rows: Vec::new(),
            metas: Vec::new(),
            index: 0,
            done: false,
        }
    }

    pub(crate) fn input(&self) -> &TextInput {
        &self.rdr.get_ref().input
    }

    fn path_error(&self, kind: DataErrorKind, reason: String, line: u64) -> Error {
        DataError::new(&self.input().info.path, kind, reason)
            .at_line(line)
            .into()
    }

    /// Checks that the delimiter cannot be mistaken for part of a GB18030 character.
    fn check_delimiter(&self) -> Result<()> {
        if self.input().encoding == Encoding::Gb18030 && !matches!(self.delimiter, 0x00..=0x3f) {
            return Err(Error::config(format!(
                "{}: the delimiter {:?} can be part of a GBK/GB18030 character; use ',', ';' or \
                 a tab, or convert the file to UTF-8",
                self.input().info.path.display(),
                self.delimiter as char
            )));
        }
        Ok(())
    }

    /// Skips a BOM (or fails on UTF-16) at the very start.
    fn start(&mut self) -> Result<()> {
        let feed = self.rdr.get_mut();
        let skip = feed.input.start()?;
        feed.served = skip;
        feed.csv_base = skip as u64;
        self.check_delimiter()
    }

    /// Drops the bytes before the next row from the buffer.
    fn discard_consumed(&mut self) {
        let next = self.rdr.position().byte();
        let feed = self.rdr.get_mut();
        let upto = feed.index(next);
        feed.input.buf.discard(upto);
        feed.served -= upto;
        feed.buf_base += upto as u64;
    }

    /// Reads the next row into `self.record` and says where it is (its index is left 0);
    /// `None` at the end. Blank lines are skipped.
    fn next_row(&mut self) -> Result<Option<Row>> {
        loop {
            let more = match self.rdr.read_byte_record(&mut self.record) {
                Ok(more) => more,
                Err(err) => return Err(self.csv_error(err)),
            };
            if !more {
                return Ok(None);
            }
            let pos = self
                .record
                .position()
                .cloned()
                .unwrap_or_else(::csv::Position::new);
            let end_off = self.rdr.position().byte();
            let feed = self.rdr.get_ref();
            let data = feed.input.buf.data();
            let (mut start, mut end) = (feed.index(pos.byte()), feed.index(end_off));
            // The parser counts the blank lines it skipped as part of this row.
            let blank = data[start..end].iter().take_while(|&&b| b == b'\n').count();
            start += blank;
            let line = pos.line() + blank as u64;
            if end > start && data[end - 1] == b'\n' {
                end -= 1;
            }
            let crlf = end > start && data[end - 1] == b'\r';
            if crlf {
                end -= 1;
            }
            if self.record.len() == 1 && end == start {
                continue; // a line holding only "\r"
            }
            return Ok(Some(Row {
                line,
                index: 0,
                start,
                end,
                crlf,
            }));
        }
    }

    /// Maps a csv error (only I/O errors occur with flexible byte records) to ours.
    fn csv_error(&mut self, err: ::csv::Error) -> Error {
        let line = self.rdr.position().line();
        let line = line.max(1);
        match err.into_kind() {
            ::csv::ErrorKind::Io(e) => self.input().info.read_error(e, line),
            other => self.path_error(DataErrorKind::Csv, format!("{other:?}"), line),
        }
    }

    /// Decides the encoding if this row is the first non-ASCII one.
    fn decide_for_row(&mut self, start: usize, end: usize) -> Result<()> {
        if !self.input().undecided() {
            return Ok(());
        }
        let first = self.input().buf.data()[start..end]
            .iter()
            .position(|b| !b.is_ascii());
        if let Some(first) = first {
            self.rdr.get_mut().input.decide_at(start + first);
            self.check_delimiter()?;
        }
        Ok(())
    }

    /// Reads the header row.
    fn read_header(&mut self) -> Result<bool> {
        let Some(Row {
            line,
            start,
            end,
            crlf,
            ..
        }) = self.next_row()?
        else {
            return Ok(false);
        };
        self.decide_for_row(start, end)?;
        let mut names: Vec<String> = Vec::with_capacity(self.record.len());
        for i in 0..self.record.len() {
            let encoding = self.input().encoding;
            let name = field(&self.record, i, crlf, encoding, &|| {
                format!("header column {}", i + 1)
            })
            .map_err(|f| self.path_error(DataErrorKind::Decode, f.reason, line))?;
            if names.contains(&name) {
                return Err(self.path_error(
                    DataErrorKind::Csv,
                    format!("the header names the column '{name}' twice"),
                    line,
                ));
            }
            names.push(name);
        }
        let mut list = names.join(&(self.delimiter as char).to_string());
        if list.len() > 200 {
            let cut = (0..=200)
                .rev()
                .find(|&i| list.is_char_boundary(i))
                .unwrap_or(0);
            list.truncate(cut);
            list.push('…');
        }
        self.header_list = list;
        self.header = Some(names);
        Ok(true)
    }

    /// Reads up to `batch_size` rows into `batch`.
    pub(crate) fn fill(
        &mut self,
        batch: &mut RecordBatch,
        ctx: &Ctx,
        batch_size: usize,
    ) -> Result<()> {
        if self.done {
            return Ok(());
        }
        if !self.input().started() {
            self.start()?;
        }
        let result = self.fill_rows(batch, ctx, batch_size);
        if result.is_err() {
            self.done = true;
        }
        result
    }

    fn fill_rows(&mut self, batch: &mut RecordBatch, ctx: &Ctx, batch_size: usize) -> Result<()> {
        if self.header.is_none() && !self.read_header()? {
            self.done = true;
            return Ok(());
        }
        self.discard_consumed();
        // Cut out the rows (serial), then decode and build them (in parallel).
        let mut rows = std::mem::take(&mut self.rows);
        let mut metas = std::mem::take(&mut self.metas);
        metas.clear();
        let mut stop = None;
        while metas.len() < batch_size {
            let row = match self.next_row() {
                Ok(Some(row)) => row,
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    stop = Some(e);
                    break;
                }
            };
            if let Err(e) = self.decide_for_row(row.start, row.end) {
                stop = Some(e);
                break;
            }
            let n = metas.len();
            if rows.len() == n {
                rows.push(ByteRecord::new());
            }
            std::mem::swap(&mut rows[n], &mut self.record);
            metas.push(Row {
                index: self.index,
                ..row
            });
            self.index += 1;
        }
        let result = self.deliver(batch, ctx, &rows[..metas.len()], &metas);
        self.rows = rows;
        self.metas = metas;
        result?;
        match stop {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Builds the cut-out rows into records (in parallel for larger batches) and hands them to
    /// `batch` in order.
    fn deliver(
        &self,
        batch: &mut RecordBatch,
        ctx: &Ctx,
        rows: &[ByteRecord],
        metas: &[Row],
    ) -> Result<()> {
        let names = self.header.as_deref().unwrap_or_default();
        let list = self.header_list.as_str();
        let encoding = self.input().encoding;
        let build = |(rec, meta): (&ByteRecord, &Row)| {
            build_row(rec, meta.crlf, names, list, encoding, ctx)
        };
        let built: Vec<Result<Record, Failure>> = if rows.len() < PARALLEL_MIN {
            rows.iter().zip(metas).map(build).collect()
        } else {
            rows.par_iter()
                .zip(metas)
                .with_min_len(16)
                .map(build)
                .collect()
        };
        batch.records.reserve(built.len());
        batch.origins.reserve(built.len());
        for (result, meta) in built.into_iter().zip(metas) {
            let origin = Origin {
                index: meta.index,
                line: Some(meta.line),
            };
            match result {
                Ok(record) => batch.push(record, origin),
                Err(failure) => {
                    let raw = &self.input().buf.data()[meta.start..meta.end];
                    ctx.bad(batch, failure, origin, raw, encoding)?;
                }
            }
        }
        Ok(())
    }
}

/// Where a cut-out row is: its line, record index, raw text (buffer indexes) and whether its
/// line ended with `\r\n`.
#[derive(Debug, Clone, Copy)]
struct Row {
    line: u64,
    index: u64,
    start: usize,
    end: usize,
    crlf: bool,
}

/// Field `i` of `rec`, decoded; the last field of a `\r\n` row loses the `\r`. `name` names
/// the field in an error.
fn field(
    rec: &ByteRecord,
    i: usize,
    crlf: bool,
    encoding: Encoding,
    name: &dyn Fn() -> String,
) -> Result<String, Failure> {
    let mut bytes = &rec[i];
    if crlf && i + 1 == rec.len() && bytes.last() == Some(&b'\r') {
        bytes = &bytes[..bytes.len() - 1];
    }
    decode(bytes, encoding)
        .map(|text| text.into_owned())
        .map_err(|m| Failure::undecodable(m.reason(encoding, &name())))
}

/// Builds the record of a row, or says why it is bad.
fn build_row(
    rec: &ByteRecord,
    crlf: bool,
    names: &[String],
    header_list: &str,
    encoding: Encoding,
    ctx: &Ctx,
) -> Result<Record, Failure> {
    if rec.len() != names.len() {
        return Err(Failure::new(
            DataErrorKind::Csv,
            format!(
                "expected {} fields ({header_list}), found {}",
                names.len(),
                rec.len()
            ),
        ));
    }
    let mut record = Record::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let value =
            field(rec, i, crlf, encoding, &|| format!("field '{name}'")).map_err(|mut f| {
                f.field = Some(name.clone());
                f
            })?;
        record.insert(name.clone(), Value::String(value));
    }
    ctx.check_required(&record)?;
    Ok(record)
}
