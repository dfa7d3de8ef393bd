//! Routing the records of JSON Lines files to several outputs by one label per record: record
//! `i` (counting non-blank lines across the inputs, in order) goes to `outputs[labels[i]]`, or
//! nowhere when the label is [`DROP`] or names an output given as `None`. Lines are copied
//! verbatim (no parse, no re-serialization), outputs are written atomically, and the number of
//! records must equal the number of labels. This is how the build pipeline materializes its
//! selections (per-source files, length/mixture filters, train/val) without Python objects.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::write::JsonlWriter;
use crate::io::{Format, ReaderOptions, RecordReader};

/// The label of a record that goes to no output.
pub const DROP: u8 = u8::MAX;

/// Copies every record of `inputs` to the output its label names; returns the records written
/// per output (`None` outputs count what they were sent, for accounting).
pub fn partition_jsonl(
    inputs: &[PathBuf],
    labels: &[u8],
    outputs: &[Option<PathBuf>],
    batch_size: usize,
) -> Result<Vec<u64>> {
    if outputs.len() >= DROP as usize {
        return Err(Error::config(format!(
            "at most {} outputs, got {}",
            DROP as usize - 1,
            outputs.len()
        )));
    }
    if let Some((i, &l)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l != DROP && l as usize >= outputs.len())
    {
        return Err(Error::config(format!(
            "label {l} of record {i} names no output (there are {})",
            outputs.len()
        )));
    }
    let mut writers: Vec<Option<JsonlWriter>> = outputs
        .iter()
        .map(|o| o.as_deref().map(JsonlWriter::create).transpose())
        .collect::<Result<_>>()?;
    let mut counts = vec![0u64; outputs.len()];
    let mut next = 0usize;
    for input in inputs {
        let mut reader = open_raw(input, batch_size)?;
        while let Some(batch) = reader.next_batch()? {
            let end = next + batch.raw.len();
            if end > labels.len() {
                return Err(count_mismatch(inputs, labels.len(), None));
            }
            let mut routed: Vec<Vec<&str>> = vec![Vec::new(); outputs.len()];
            for (line, &label) in batch.raw.iter().zip(&labels[next..end]) {
                if label != DROP {
                    routed[label as usize].push(line);
                    counts[label as usize] += 1;
                }
            }
            for (w, lines) in writers.iter_mut().zip(&routed) {
                if let Some(w) = w {
                    w.write_raw_lines(lines)?;
                }
            }
            next = end;
        }
    }
    if next != labels.len() {
        return Err(count_mismatch(inputs, labels.len(), Some(next)));
    }
    for w in writers.into_iter().flatten() {
        w.commit()?;
    }
    Ok(counts)
}

fn open_raw(path: &Path, batch_size: usize) -> Result<RecordReader> {
    let options = ReaderOptions {
        format: Some(Format::Jsonl),
        batch_size: batch_size.max(1),
        raw_lines: true,
        ..ReaderOptions::default()
    };
    RecordReader::open(path, options)
}

fn count_mismatch(inputs: &[PathBuf], labels: usize, records: Option<usize>) -> Error {
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let held = match records {
        Some(n) => format!("{n}"),
        None => "more".to_string(),
    };
    Error::config(format!(
        "{labels} labels for the records of {names:?}, which hold {held} records"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn routes_lines_verbatim_across_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.jsonl", "{\"x\": 1}\n\n{\"x\":2}\r\n");
        let b = write(dir.path(), "b.jsonl", "{\"y\":\"中\"}\n");
        let (o0, o1) = (dir.path().join("o0.jsonl"), dir.path().join("o1.jsonl"));
        let counts = partition_jsonl(
            &[a, b],
            &[1, DROP, 0],
            &[Some(o0.clone()), Some(o1.clone())],
            1,
        )
        .unwrap();
        assert_eq!(counts, vec![1, 1]);
        assert_eq!(std::fs::read_to_string(&o0).unwrap(), "{\"y\":\"中\"}\n");
        assert_eq!(std::fs::read_to_string(&o1).unwrap(), "{\"x\": 1}\n");
    }

    #[test]
    fn label_count_must_match_and_nothing_is_written_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.jsonl", "{}\n{}\n");
        let o = dir.path().join("o.jsonl");
        let short =
            partition_jsonl(std::slice::from_ref(&a), &[0], &[Some(o.clone())], 8).unwrap_err();
        assert!(short.to_string().contains("hold more records"), "{short}");
        let long = partition_jsonl(std::slice::from_ref(&a), &[0, 0, 0], &[Some(o.clone())], 8)
            .unwrap_err();
        assert!(long.to_string().contains("hold 2 records"), "{long}");
        let bad = partition_jsonl(&[a], &[0, 3], &[Some(o.clone())], 8).unwrap_err();
        assert!(bad.to_string().contains("label 3 of record 1"), "{bad}");
        assert!(!o.exists());
    }
}
