//! Line parsers for the datasets that are not record files:
//!
//! - Toyhom `.txt` (Chinese-medical-dialogue-data, GBK): blocks of a `title,ask` line (split
//!   at the first ASCII comma), the answer line(s), and a blank line. One unit per block.
//! - MedDialog raw text (`id=N`, URL, `Description`, `Dialogue` with `病人：`/`医生：` or
//!   `Patient:`/`Doctor:` lines each followed by the utterance, optional `Diagnosis and
//!   suggestions`): one unit per `id=` block. Several `Dialogue` sections are read in order; a
//!   `Diagnosis and suggestions` section is the doctor's written reply, a doctor turn.
//!   Consecutive turns of one speaker are merged (newline); a consultation that opens with the
//!   doctor gets the `Description` as the patient's first turn; a trailing patient turn
//!   without reply is left out; a block without any doctor text is skipped. A carriage return
//!   inside a line becomes a newline. A repeated id (the English file has `id=18` twice) is
//!   kept, the later block getting `18#2`.
//! - webMedQA TSV (`department \t is_answer \t question_id \t question \t answer`, no
//!   header): rows with `is_answer` 1 are converted with timestamps (`dddd-dd-dddd:dd`)
//!   removed from the answer, rows with 0 are skipped, as CollectiveSFT does.
//!
//! Files may be `.gz`/`.zst`. The encoding is decided by the first non-ASCII line: UTF-8 if it
//! is valid UTF-8, else GB18030 (GBK); a line that does not decode rejects its unit (`decode`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::dialogue::expand;
use super::{bad, non_empty, Alpaca, Conv, Ctx, Outcome, Reader, Sink};
use crate::error::{DataErrorKind, Error, Result};

/// Decoded lines of a text file, with 1-based line numbers.
struct Lines {
    reader: Box<dyn BufRead>,
    path: std::path::PathBuf,
    /// `None` until the first non-ASCII line; `Some(true)` = UTF-8, `Some(false)` = GB18030.
    utf8: Option<bool>,
    line: u64,
    buf: Vec<u8>,
}

/// One line: its text (lossy when it did not decode) and whether it decoded.
struct Line {
    no: u64,
    text: String,
    ok: bool,
}

impl Lines {
    fn open(path: &Path) -> Result<Self> {
        let file = crate::io::open_file(path)?;
        let name = path.to_string_lossy().to_ascii_lowercase();
        let inner: Box<dyn Read> = if name.ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else if name.ends_with(".zst") {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(|e| Error::io(path, e))?)
        } else {
            Box::new(file)
        };
        Ok(Self {
            reader: Box::new(BufReader::with_capacity(1 << 20, inner)),
            path: path.to_path_buf(),
            utf8: None,
            line: 0,
            buf: Vec::new(),
        })
    }

    fn next(&mut self) -> Result<Option<Line>> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| Error::io(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let mut bytes = self.buf.as_slice();
        if self.line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        while let Some(b) = bytes
            .strip_suffix(b"\n")
            .or_else(|| bytes.strip_suffix(b"\r"))
        {
            bytes = b;
        }
        if self.utf8.is_none() && !bytes.is_ascii() {
            self.utf8 = Some(std::str::from_utf8(bytes).is_ok());
        }
        let (text, ok) = if self.utf8 == Some(false) {
            let (cow, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
            (cow.into_owned(), !had_errors)
        } else {
            match std::str::from_utf8(bytes) {
                Ok(s) => (s.to_string(), true),
                Err(_) => (String::from_utf8_lossy(bytes).into_owned(), false),
            }
        };
        Ok(Some(Line {
            no: self.line,
            text: text.replace('\r', "\n"),
            ok,
        }))
    }
}

/// A unit of lines: first line number and the lines.
struct Unit {
    index: u64,
    line: u64,
    lines: Vec<String>,
    ok: bool,
}

impl Unit {
    fn raw(&self) -> String {
        self.lines.join("\n")
    }
}

pub(super) fn convert_file<'a>(
    reader: Reader,
    path: &Path,
    ctx: &dyn Fn(u64) -> Ctx<'a>,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let mut lines = Lines::open(path)?;
    let mut index = 0u64;
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut emit = |unit: Unit, sink: &mut Sink<'_>| -> Result<()> {
        let c = ctx(unit.index);
        let conv = if !unit.ok {
            Err(bad(
                "",
                DataErrorKind::Decode,
                "a line does not decode in the file's encoding (UTF-8 or GBK/GB18030)",
            ))
        } else {
            match reader {
                Reader::ToyhomTxt => toyhom_block(&unit.lines, &c),
                Reader::MedDialog => meddialog_block(&unit.lines, &c, &mut seen),
                _ => webmedqa_row(&unit.lines[0], &c),
            }
        };
        sink.unit(path, unit.index, Some(unit.line), || unit.raw(), conv)
    };
    let mut cur: Option<Unit> = None;
    while let Some(line) = lines.next()? {
        let blank = line.text.trim().is_empty();
        let starts = match reader {
            Reader::ToyhomTxt => !blank && cur.is_none(),
            Reader::MedDialog => is_id_line(&line.text) || (cur.is_none() && !blank),
            _ => !blank,
        };
        if starts {
            if let Some(u) = cur.take() {
                emit(u, sink)?;
            }
            cur = Some(Unit {
                index,
                line: line.no,
                lines: Vec::new(),
                ok: true,
            });
            index += 1;
        }
        match (&mut cur, reader) {
            (Some(u), Reader::ToyhomTxt) if blank => {
                let u = std::mem::replace(u, empty_unit());
                cur = None;
                emit(u, sink)?;
            }
            (Some(u), _) => {
                u.ok &= line.ok;
                u.lines.push(line.text);
                if matches!(reader, Reader::WebMedQa) {
                    let u = cur.take().expect("just set");
                    emit(u, sink)?;
                }
            }
            (None, _) => {}
        }
    }
    if let Some(u) = cur.take() {
        emit(u, sink)?;
    }
    Ok(())
}

fn empty_unit() -> Unit {
    Unit {
        index: 0,
        line: 0,
        lines: Vec::new(),
        ok: true,
    }
}

fn is_id_line(s: &str) -> bool {
    s.trim_end()
        .strip_prefix("id=")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Toyhom block: `title,ask` then the answer line(s).
fn toyhom_block(lines: &[String], ctx: &Ctx<'_>) -> Conv {
    let Some((title, ask)) = lines[0].split_once(',') else {
        return Err(bad(
            "title",
            DataErrorKind::Value,
            "first line has no ',' between title and ask",
        ));
    };
    if lines.len() < 2 {
        return Err(bad(
            "answer",
            DataErrorKind::Value,
            "block has no answer line",
        ));
    }
    let answer = lines[1..].join("\n");
    non_empty("answer", &answer)?;
    let t = ctx.templates;
    let vars = [
        ("title", title),
        ("ask", ask),
        ("answer", answer.as_str()),
        ("department", ""),
    ];
    let instruction = t.render("instruction", &vars);
    if instruction.trim().is_empty() && ask.trim().is_empty() {
        return Err(bad("title", DataErrorKind::Value, "empty question"));
    }
    Ok(Outcome::Records(vec![Alpaca {
        instruction,
        input: t.render("input", &vars),
        output: t.render("output", &vars),
        id: ctx.fallback_id(),
        ..Alpaca::default()
    }]))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Head,
    Description,
    Dialogue,
    Diagnosis,
}

/// The speaker a role line names: `Some(true)` patient, `Some(false)` doctor.
fn role(line: &str) -> Option<bool> {
    match line.trim() {
        "病人：" | "病人:" | "Patient:" | "Patient：" => Some(true),
        "医生：" | "医生:" | "Doctor:" | "Doctor：" => Some(false),
        _ => None,
    }
}

/// MedDialog block (see the module comment).
fn meddialog_block(lines: &[String], ctx: &Ctx<'_>, seen: &mut HashMap<String, u32>) -> Conv {
    let Some(raw_id) = lines[0].trim_end().strip_prefix("id=") else {
        return Err(bad(
            "id",
            DataErrorKind::Value,
            "text before the first 'id=N' line",
        ));
    };
    let n = seen.entry(raw_id.to_string()).or_default();
    *n += 1;
    let id = if *n == 1 {
        raw_id.to_string()
    } else {
        format!("{raw_id}#{n}")
    };
    let mut section = Section::Head;
    let mut description: Vec<&str> = Vec::new();
    // (patient?, lines)
    let mut turns: Vec<(bool, Vec<&str>)> = Vec::new();
    for line in &lines[1..] {
        match line.trim_end() {
            "Description" => section = Section::Description,
            "Dialogue" => section = Section::Dialogue,
            "Diagnosis and suggestions" => {
                section = Section::Diagnosis;
                turns.push((false, Vec::new()));
            }
            _ => match section {
                Section::Head => {}
                Section::Description => description.push(line),
                Section::Dialogue => match role(line) {
                    Some(p) => turns.push((p, Vec::new())),
                    None => {
                        if let Some((_, t)) = turns.last_mut() {
                            t.push(line);
                        } else if !line.trim().is_empty() {
                            turns.push((true, vec![line]));
                        }
                    }
                },
                Section::Diagnosis => {
                    if let Some((_, t)) = turns.last_mut() {
                        t.push(line);
                    }
                }
            },
        }
    }
    let mut merged: Vec<(bool, String)> = Vec::new();
    for (p, t) in turns {
        let text = t.join("\n").trim().to_string();
        match merged.last_mut() {
            Some((q, prev)) if *q == p => {
                if !text.is_empty() {
                    if !prev.is_empty() {
                        prev.push('\n');
                    }
                    prev.push_str(&text);
                }
            }
            _ => merged.push((p, text)),
        }
    }
    merged.retain(|(p, t)| *p || !t.is_empty());
    if !merged.iter().any(|(p, _)| !p) {
        return Ok(Outcome::Skipped(
            "meddialog: consultation without a doctor reply",
        ));
    }
    if merged.first().is_some_and(|(p, _)| !p) {
        merged.insert(0, (true, description.join("\n").trim().to_string()));
    }
    let pairs: Vec<(String, String)> = merged
        .chunks_exact(2)
        .map(|c| (c[0].1.clone(), c[1].1.clone()))
        .collect();
    Ok(Outcome::Records(expand(
        pairs,
        String::new(),
        None,
        &id,
        ctx.per_conversation,
    )))
}

/// Removes `dddd-dd-dddd:dd` timestamps (CollectiveSFT's `\d{4}-\d{2}-\d{4}:\d{2}`).
pub fn strip_timestamps(s: &str) -> String {
    const PAT: &[u8] = b"dddd-dd-dddd:dd";
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hit = b.len() - i >= PAT.len()
            && PAT.iter().zip(&b[i..]).all(|(p, c)| {
                if *p == b'd' {
                    c.is_ascii_digit()
                } else {
                    p == c
                }
            });
        if hit {
            i += PAT.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII runs removed")
}

/// webMedQA row.
fn webmedqa_row(line: &str, ctx: &Ctx<'_>) -> Conv {
    let mut parts = line.splitn(5, '\t');
    let fields: Vec<&str> = parts.by_ref().collect();
    if fields.len() < 5 {
        return Err(bad(
            "",
            DataErrorKind::Value,
            format!(
                "expected 5 tab-separated fields (department, is_answer, question_id, question, \
                 answer), found {}",
                fields.len()
            ),
        ));
    }
    match fields[1].trim() {
        "1" => {}
        "0" => {
            return Ok(Outcome::Skipped(
                "webmedqa: not the accepted answer (is_answer=0)",
            ))
        }
        other => {
            return Err(bad(
                "is_answer",
                DataErrorKind::Value,
                format!("expected 0 or 1, found '{other}'"),
            ))
        }
    }
    let answer = strip_timestamps(fields[4]);
    non_empty("answer", &answer)?;
    non_empty("question", fields[3])?;
    let t = ctx.templates;
    let vars = [("question", fields[3]), ("answer", answer.as_str())];
    Ok(Outcome::Records(vec![Alpaca {
        instruction: t.render("instruction", &vars),
        input: t.render("input", &vars),
        output: t.render("output", &vars),
        id: fields[2].trim().to_string(),
        ..Alpaca::default()
    }]))
}
