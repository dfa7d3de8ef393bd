//! Records as Arrow arrays: a schema inferred from the JSON values, and columns built straight
//! from the parsed records (no JSON text in between), ready to cross into Python zero-copy
//! through the Arrow C stream interface (the binding's `ArrowStream`).
//!
//! Types, as `polars.read_ndjson` infers them: null → Null; true/false → Boolean; integers that
//! fit i64 → Int64; other numbers → Float64 (integers mixed with floats widen to Float64);
//! strings → Utf8; arrays → List of the merged element type; objects → Struct of the union of
//! their keys, in first-seen order. Values that disagree (text and number, object and array,
//! boolean and number) or an integer beyond i64 make that column, field or element Utf8 holding
//! each value's JSON text (strings as they are), so nothing is lost. A missing key is a null.
//! Not done here: dates, decimals, dictionary encoding, reading Arrow back.

use std::sync::Arc;

use arrow_array::{
    builder::StringBuilder, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, NullArray,
    RecordBatch, RecordBatchOptions, StructArray,
};
use arrow_buffer::{BooleanBufferBuilder, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::record::Record;

/// The inferred type of a column, field or list element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
    /// Values of several kinds: Utf8, each value's JSON text (strings as they are).
    Json,
    List(Box<Kind>),
    Struct(Vec<(String, Kind)>),
}

/// The fields of a record schema, in first-seen order.
pub type Columns = Vec<(String, Kind)>;

impl Kind {
    /// Widens `self` so that it also holds `v`.
    fn absorb(&mut self, v: &Value) {
        match (&mut *self, v) {
            (_, Value::Null) | (Kind::Json, _) | (Kind::Bool, Value::Bool(_)) => {}
            (Kind::Str, Value::String(_)) => {}
            (Kind::Null, _) => {
                *self = match v {
                    Value::Bool(_) => Kind::Bool,
                    Value::Number(n) => number_kind(n),
                    Value::String(_) => Kind::Str,
                    Value::Array(_) => Kind::List(Box::new(Kind::Null)),
                    Value::Object(_) => Kind::Struct(Vec::new()),
                    Value::Null => unreachable!("null is absorbed above"),
                };
                self.absorb(v);
            }
            (Kind::Int | Kind::Float, Value::Number(n)) => {
                let merged = merge(std::mem::replace(self, Kind::Null), number_kind(n));
                *self = merged;
            }
            (Kind::List(inner), Value::Array(items)) => {
                for item in items {
                    inner.absorb(item);
                }
            }
            (Kind::Struct(fields), Value::Object(map)) => absorb_object(fields, map),
            _ => *self = Kind::Json,
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Kind::Null => DataType::Null,
            Kind::Bool => DataType::Boolean,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Str | Kind::Json => DataType::Utf8,
            Kind::List(inner) => {
                DataType::List(Arc::new(Field::new("item", inner.data_type(), true)))
            }
            Kind::Struct(fields) => DataType::Struct(fields_of(fields)),
        }
    }
}

fn number_kind(n: &serde_json::Number) -> Kind {
    if n.is_i64() {
        Kind::Int
    } else if n.is_u64() {
        Kind::Json // beyond i64: kept exactly as text
    } else {
        Kind::Float
    }
}

/// The narrowest kind that holds both.
fn merge(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Null, k) | (k, Kind::Null) => k,
        (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
        (Kind::List(x), Kind::List(y)) => Kind::List(Box::new(merge(*x, *y))),
        (Kind::Struct(mut x), Kind::Struct(y)) => {
            for (name, kind) in y {
                match x.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, k)) => *k = merge(std::mem::replace(k, Kind::Null), kind),
                    None => x.push((name, kind)),
                }
            }
            Kind::Struct(x)
        }
        (x, y) if x == y => x,
        _ => Kind::Json,
    }
}

/// Adds an object's keys and values to `fields`. The key at position `i` is looked for at
/// position `i` first (records usually keep one key order), then by a scan.
fn absorb_object(fields: &mut Columns, map: &Map<String, Value>) {
    for (i, (key, value)) in map.iter().enumerate() {
        let slot = match fields.get(i) {
            Some((name, _)) if name == key => i,
            _ => match fields.iter().position(|(name, _)| name == key) {
                Some(j) => j,
                None => {
                    fields.push((key.clone(), Kind::Null));
                    fields.len() - 1
                }
            },
        };
        fields[slot].1.absorb(value);
    }
}

/// The schema of `records`: the union of their fields, each with its merged kind.
pub fn infer<'a>(records: impl IntoIterator<Item = &'a Record>) -> Columns {
    let mut columns = Columns::new();
    for r in records {
        absorb_object(&mut columns, r);
    }
    columns
}

/// The schema that holds both (for schemas inferred from separate batches).
pub fn merge_columns(a: Columns, b: Columns) -> Columns {
    match merge(Kind::Struct(a), Kind::Struct(b)) {
        Kind::Struct(columns) => columns,
        _ => unreachable!("two structs merge into a struct"),
    }
}

fn fields_of(columns: &[(String, Kind)]) -> Fields {
    columns
        .iter()
        .map(|(name, kind)| Field::new(name, kind.data_type(), true))
        .collect()
}

/// The Arrow schema of `columns`.
pub fn schema(columns: &[(String, Kind)]) -> SchemaRef {
    Arc::new(Schema::new(fields_of(columns)))
}

/// One Arrow batch of `records` with the given schema (see [`infer`]).
pub fn to_arrow(records: &[Record], columns: &[(String, Kind)]) -> Result<RecordBatch> {
    let arrays = split_records(columns, records)
        .iter()
        .zip(columns)
        .map(|(values, (_, kind))| build(kind, values))
        .collect::<Result<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(records.len()));
    RecordBatch::try_new_with_options(schema(columns), arrays, &options)
        .map_err(|e| Error::config(format!("cannot build an Arrow batch: {e}")))
}

/// [`split_fields`] over records.
fn split_records<'a>(
    fields: &[(String, Kind)],
    records: &'a [Record],
) -> Vec<Vec<Option<&'a Value>>> {
    let mut columns = vec![Vec::with_capacity(records.len()); fields.len()];
    for r in records {
        push_fields(fields, r, &mut columns);
    }
    columns
}

/// The objects' values, one column per field (`None` where the object is null or lacks the
/// key), in one pass over each object.
fn split_fields<'a>(
    fields: &[(String, Kind)],
    values: &[Option<&'a Value>],
) -> Vec<Vec<Option<&'a Value>>> {
    let mut columns = vec![Vec::with_capacity(values.len()); fields.len()];
    for v in values {
        match v {
            Some(Value::Object(map)) => push_fields(fields, map, &mut columns),
            _ => columns.iter_mut().for_each(|column| column.push(None)),
        }
    }
    columns
}

/// Appends one row to `columns`: the object's value of each field, or `None`. The key at
/// position `i` is looked for at position `i` first (objects usually keep one key order).
fn push_fields<'a>(
    fields: &[(String, Kind)],
    map: &'a Map<String, Value>,
    columns: &mut [Vec<Option<&'a Value>>],
) {
    for column in columns.iter_mut() {
        column.push(None);
    }
    for (i, (key, value)) in map.iter().enumerate() {
        let slot = match fields.get(i) {
            Some((name, _)) if name == key => Some(i),
            _ => fields.iter().position(|(name, _)| name == key),
        };
        if let Some(slot) = slot {
            *columns[slot].last_mut().expect("pushed above") = present(Some(value));
        }
    }
}

fn too_large(what: &str) -> Error {
    Error::config(format!(
        "one Arrow batch would hold more than 2 GiB of {what}: read with a smaller batch_size"
    ))
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn nulls_of(values: &[Option<&Value>]) -> Option<arrow_buffer::NullBuffer> {
    let mut nulls = NullBufferBuilder::new(values.len());
    for v in values {
        nulls.append(v.is_some());
    }
    nulls.finish()
}

fn offsets(ends: Vec<i64>, what: &str) -> Result<OffsetBuffer<i32>> {
    let last = ends.last().copied().unwrap_or(0);
    if last > i64::from(i32::MAX) {
        return Err(too_large(what));
    }
    Ok(OffsetBuffer::new(ScalarBuffer::from(
        ends.into_iter().map(|e| e as i32).collect::<Vec<i32>>(),
    )))
}

/// The column of `kind` holding `values` (`None`: null or missing).
fn build(kind: &Kind, values: &[Option<&Value>]) -> Result<ArrayRef> {
    Ok(match kind {
        Kind::Null => Arc::new(NullArray::new(values.len())),
        Kind::Bool => {
            let mut bits = BooleanBufferBuilder::new(values.len());
            for v in values {
                bits.append(matches!(v, Some(Value::Bool(true))));
            }
            Arc::new(BooleanArray::new(bits.finish(), nulls_of(values)))
        }
        Kind::Int => {
            let data: Vec<i64> = values
                .iter()
                .map(|v| v.and_then(Value::as_i64).unwrap_or(0))
                .collect();
            Arc::new(Int64Array::new(data.into(), nulls_of(values)))
        }
        Kind::Float => {
            let data: Vec<f64> = values
                .iter()
                .map(|v| v.and_then(Value::as_f64).unwrap_or(0.0))
                .collect();
            Arc::new(Float64Array::new(data.into(), nulls_of(values)))
        }
        Kind::Str | Kind::Json => {
            // the builder takes `&str`s, so the values need no second UTF-8 check
            let capacity: usize = values
                .iter()
                .map(|v| match v {
                    Some(Value::String(s)) => s.len(),
                    _ => 0,
                })
                .sum();
            let mut column = StringBuilder::with_capacity(values.len(), capacity.min(1 << 30));
            let mut total = 0usize;
            for v in values {
                let text = match v {
                    Some(Value::String(s)) => std::borrow::Cow::Borrowed(s.as_str()),
                    Some(other) => std::borrow::Cow::Owned(other.to_string()),
                    None => {
                        column.append_null();
                        continue;
                    }
                };
                total += text.len();
                if total > i32::MAX as usize {
                    return Err(too_large("text"));
                }
                column.append_value(text);
            }
            Arc::new(column.finish())
        }
        Kind::List(inner) => {
            let mut items: Vec<Option<&Value>> = Vec::new();
            let mut ends = Vec::with_capacity(values.len() + 1);
            ends.push(0i64);
            for v in values {
                if let Some(Value::Array(xs)) = v {
                    items.extend(xs.iter().map(|x| present(Some(x))));
                }
                ends.push(items.len() as i64);
            }
            let child = build(inner, &items)?;
            let field = Arc::new(Field::new("item", inner.data_type(), true));
            let list =
                ListArray::try_new(field, offsets(ends, "list items")?, child, nulls_of(values))
                    .map_err(|e| Error::config(format!("cannot build an Arrow list: {e}")))?;
            Arc::new(list)
        }
        Kind::Struct(fields) => {
            let columns = split_fields(fields, values);
            let children = fields
                .iter()
                .zip(&columns)
                .map(|((_, kind), column)| build(kind, column))
                .collect::<Result<Vec<_>>>()?;
            let array = if fields.is_empty() {
                StructArray::new_empty_fields(values.len(), nulls_of(values))
            } else {
                StructArray::try_new(fields_of(fields), children, nulls_of(values))
                    .map_err(|e| Error::config(format!("cannot build an Arrow struct: {e}")))?
            };
            Arc::new(array)
        }
    })
}

/// Records as Arrow batches of one schema, `chunk` records each, inferred and built in parallel.
pub fn records_to_arrow(records: &[Record], chunk: usize) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use rayon::prelude::*;

    let chunk = chunk.max(1);
    let columns = records
        .par_chunks(chunk)
        .map(|part| infer(part.iter()))
        .reduce(Columns::new, merge_columns);
    let batches = records
        .par_chunks(chunk)
        .map(|part| to_arrow(part, &columns))
        .collect::<Result<Vec<_>>>()?;
    Ok((schema(&columns), batches))
}

/// A whole file as Arrow batches of one schema (the union of all its records'), one Arrow batch
/// per reader batch. Rejected records (skip mode) are left out. Inference and building run in
/// parallel; each batch's parsed records are dropped as soon as its columns are built.
pub fn read_arrow(
    path: &std::path::Path,
    options: super::ReaderOptions,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use rayon::prelude::*;

    let mut reader = super::RecordReader::open(path, options)?;
    let mut batches = Vec::new();
    while let Some(batch) = reader.next_batch()? {
        if !batch.records.is_empty() {
            batches.push(batch.records);
        }
    }
    let columns = batches
        .par_iter()
        .map(|records| infer(records.iter()))
        .reduce(Columns::new, merge_columns);
    let arrow = batches
        .into_par_iter()
        .map(|records| to_arrow(&records, &columns))
        .collect::<Result<Vec<_>>>()?;
    Ok((schema(&columns), arrow))
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, ListArray, StringArray, StructArray};
    use serde_json::json;

    use super::*;

    fn records(values: Vec<Value>) -> Vec<Record> {
        values
            .into_iter()
            .map(|v| v.as_object().expect("an object").clone())
            .collect()
    }

    #[test]
    fn kinds_are_inferred_widened_and_fall_back_to_text() {
        let rs = records(vec![
            json!({"i": 1, "f": 1, "s": "a", "m": 1, "l": [1], "o": {"x": 1}}),
            json!({"i": null, "f": 0.5, "s": null, "m": "b", "l": [2.5, null], "o": {"y": true}}),
            json!({"u": u64::MAX, "o": null}),
        ]);
        let columns = infer(&rs);
        let kinds: Vec<(&str, &Kind)> = columns.iter().map(|(n, k)| (n.as_str(), k)).collect();
        assert_eq!(
            kinds,
            vec![
                ("i", &Kind::Int),
                ("f", &Kind::Float),
                ("s", &Kind::Str),
                ("m", &Kind::Json),
                ("l", &Kind::List(Box::new(Kind::Float))),
                (
                    "o",
                    &Kind::Struct(vec![("x".into(), Kind::Int), ("y".into(), Kind::Bool)])
                ),
                ("u", &Kind::Json),
            ]
        );
        // per-chunk inference merged equals whole inference
        let merged = merge_columns(infer(&rs[..1]), infer(&rs[1..]));
        assert_eq!(merged, columns);
    }

    #[test]
    fn columns_hold_the_values_and_their_nulls() {
        let rs = records(vec![
            json!({"m": 1, "o": {"x": "甲"}, "l": [{"k": 1}]}),
            json!({"m": "二", "o": null, "l": []}),
            json!({"o": {"x": null}}),
        ]);
        let (schema, batches) = records_to_arrow(&rs, 2).expect("builds");
        assert_eq!(batches.len(), 2);
        assert_eq!(schema.fields().len(), 3);
        let first = &batches[0];
        let m = first
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("text");
        assert_eq!((m.value(0), m.value(1)), ("1", "二"));
        let o = first
            .column(1)
            .as_any()
            .downcast_ref::<StructArray>()
            .expect("struct");
        assert!(o.is_valid(0) && o.is_null(1));
        let l = first
            .column(2)
            .as_any()
            .downcast_ref::<ListArray>()
            .expect("list");
        assert_eq!((l.value_length(0), l.value_length(1)), (1, 0));
        let last = &batches[1];
        assert!(last.column(0).is_null(0) && last.column(2).is_null(0));
        let x = last
            .column(1)
            .as_any()
            .downcast_ref::<StructArray>()
            .expect("struct");
        assert!(x.is_valid(0) && x.column(0).is_null(0));
    }
}
