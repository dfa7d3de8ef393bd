//! Parquet files through the `parquet` crate's row API (`SerializedFileReader` and its row
//! iterator, row group by row group), each row converted to a JSON object: strings, numbers,
//! booleans and nulls as such; lists → arrays; structs and maps → objects (map keys as text);
//! binary → a string when it is UTF-8, else a `FieldType` error; decimals, dates, times and
//! timestamps → their text form (e.g. `"12.50"`, `"2024-01-31"`); NaN/inf → null.
//!
//! Records have no line (`line = None`), only their index. The file is read with random
//! access, so a gzip/zstd-compressed Parquet file is refused (see `source::check_uncompressed`);
//! a file that is not Parquet, or a page that cannot be read, is a `Parquet` error and ends the
//! read (a panic inside the parquet crate is caught and reported the same way). Progress
//! (`bytes_read`) advances per finished row group. No column projection, no Arrow.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use ::parquet::file::reader::{FileReader, SerializedFileReader};
use ::parquet::record::reader::RowIter;
use ::parquet::record::{Field, Row};
use serde_json::{Map, Number, Value};

use crate::error::{DataError, DataErrorKind, Result};
use crate::record::{Origin, Record, RecordBatch};

use super::parse::{Ctx, Failure};
use super::Encoding;

pub(crate) struct ParquetReader {
    rows: RowIter<'static>,
    /// Cumulative row count and compressed size at the end of each row group.
    group_ends: Vec<(u64, u64)>,
    index: u64,
    bytes_read: u64,
    done: bool,
}

fn parquet_error(path: &Path, reason: impl std::fmt::Display) -> DataError {
    DataError::new(path, DataErrorKind::Parquet, reason.to_string())
}

impl ParquetReader {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = super::source::open_file(path)?;
        let reader = SerializedFileReader::new(file)
            .map_err(|e| parquet_error(path, format_args!("not a readable Parquet file: {e}")))?;
        let mut rows = 0u64;
        let mut bytes = 0u64;
        let group_ends = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| {
                rows += g.num_rows().max(0) as u64;
                bytes += g.compressed_size().max(0) as u64;
                (rows, bytes)
            })
            .collect();
        Ok(Self {
            rows: reader.into_iter(),
            group_ends,
            index: 0,
            bytes_read: 0,
            done: false,
        })
    }

    /// Compressed bytes of the row groups read so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    pub(crate) fn encoding(&self) -> Encoding {
        Encoding::Utf8
    }

    fn advance_progress(&mut self) {
        self.bytes_read = self
            .group_ends
            .iter()
            .take_while(|(rows, _)| *rows <= self.index)
            .last()
            .map_or(0, |(_, bytes)| *bytes);
    }

    pub(crate) fn fill(
        &mut self,
        batch: &mut RecordBatch,
        ctx: &Ctx,
        batch_size: usize,
    ) -> Result<()> {
        if self.done {
            return Ok(());
        }
        let result = catch_unwind(AssertUnwindSafe(|| self.fill_rows(batch, ctx, batch_size)))
            .unwrap_or_else(|panic| {
                let msg = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown error");
                Err(parquet_error(
                    ctx.path,
                    format_args!("the Parquet reader failed at record {}: {msg}", self.index),
                )
                .at_record(self.index)
                .into())
            });
        self.advance_progress();
        if result.is_err() {
            self.done = true;
        }
        result
    }

    fn fill_rows(&mut self, batch: &mut RecordBatch, ctx: &Ctx, batch_size: usize) -> Result<()> {
        for _ in 0..batch_size {
            let row = match self.rows.next() {
                None => {
                    self.done = true;
                    break;
                }
                Some(Ok(row)) => row,
                Some(Err(e)) => {
                    return Err(parquet_error(ctx.path, e).at_record(self.index).into());
                }
            };
            let origin = Origin {
                index: self.index,
                line: None,
            };
            self.index += 1;
            match row_to_record(row).and_then(|r| ctx.check_required(&r).map(|()| r)) {
                Ok(record) => batch.push(record, origin),
                Err(failure) => ctx.bad(batch, failure, origin, b"", Encoding::Utf8)?,
            }
        }
        Ok(())
    }
}

fn row_to_record(row: Row) -> Result<Record, Failure> {
    let columns = row.into_columns();
    let mut record = Map::with_capacity(columns.len());
    for (name, field) in columns {
        let value = field_to_json(field).map_err(|mut f| {
            f.reason = format!("column '{name}': {}", f.reason);
            f.field = Some(name.clone());
            f
        })?;
        record.insert(name, value);
    }
    Ok(record)
}

fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn field_to_json(field: Field) -> Result<Value, Failure> {
    Ok(match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(b),
        Field::Byte(n) => n.into(),
        Field::Short(n) => n.into(),
        Field::Int(n) => n.into(),
        Field::Long(n) => n.into(),
        Field::UByte(n) => n.into(),
        Field::UShort(n) => n.into(),
        Field::UInt(n) => n.into(),
        Field::ULong(n) => n.into(),
        Field::Float16(x) => float(f64::from(x)),
        Field::Float(x) => float(f64::from(x)),
        Field::Double(x) => float(x),
        Field::Str(s) => Value::String(s),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => {
                return Err(Failure::new(
                    DataErrorKind::FieldType,
                    "binary value is not UTF-8 text",
                ))
            }
        },
        f @ (Field::Decimal(_)
        | Field::Date(_)
        | Field::TimeMillis(_)
        | Field::TimeMicros(_)
        | Field::TimestampMillis(_)
        | Field::TimestampMicros(_)) => Value::String(f.to_string()),
        Field::Group(row) => Value::Object(row_to_record(row)?),
        Field::ListInternal(list) => Value::Array(
            list.elements()
                .iter()
                .cloned()
                .map(field_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Field::MapInternal(map) => {
            let mut out = Map::with_capacity(map.entries().len());
            for (k, v) in map.entries() {
                let key = match field_to_json(k.clone())? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, field_to_json(v.clone())?);
            }
            Value::Object(out)
        }
    })
}
