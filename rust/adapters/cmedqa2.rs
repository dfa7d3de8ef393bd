//! cMedQA2: `question.csv` (`question_id,content`) joined with `answer.csv`
//! (`ans_id,question_id,content`), one record per (question, answer) as CollectiveSFT's
//! `cmedqa2_to_sft.py` does (so a question with several answers gives several records with the
//! same instruction). A candidates file (`train_candidates.txt`: `question_id,pos_ans_id,
//! neg_ans_id`; `dev/test_candidates.txt`: `question_id,ans_id,cnt,label`) restricts the output
//! to the questions it names, i.e. to that split. Files are told apart by their header, in any
//! order; outputs follow the answer file's order.
//!
//! Accounting: an answer is converted, skipped (its question is outside the candidate split)
//! or rejected (no question with its id); a question is converted when at least one record
//! uses it, else skipped; a candidate row is converted when its question is in the question
//! file, else skipped. The question file is held in memory (cMedQA2 has 120k questions).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{bad, non_empty, req_str, AdaptOptions, Alpaca, Conv, Outcome, Sink};
use crate::error::{DataErrorKind, Error, Result};
use crate::io::{Format, ReaderOptions, RecordReader};
use crate::record::{Record, Rejection};

use super::template::Templates;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Questions,
    Answers,
    Candidates,
}

fn role_of(r: &Record) -> Option<Role> {
    let has = |k: &str| r.contains_key(k);
    if !has("question_id") {
        None
    } else if has("ans_id") && has("content") {
        Some(Role::Answers)
    } else if has("content") {
        Some(Role::Questions)
    } else if has("pos_ans_id") || has("label") || has("ans_id") {
        Some(Role::Candidates)
    } else {
        None
    }
}

/// A read file: its role, records with (index, line), and reader rejections.
struct Read {
    path: PathBuf,
    role: Role,
    records: Vec<(Record, u64, Option<u64>)>,
    rejections: Vec<Rejection>,
}

fn read(path: &Path, opts: &AdaptOptions) -> Result<Read> {
    let ropts = ReaderOptions {
        format: Some(Format::Csv),
        on_error: opts.on_error,
        ..ReaderOptions::default()
    };
    let mut reader = RecordReader::open(path, ropts)?;
    let mut out = Read {
        path: path.to_path_buf(),
        role: Role::Questions,
        records: Vec::new(),
        rejections: Vec::new(),
    };
    let mut role = None;
    while let Some(batch) = reader.next_batch()? {
        for (r, o) in batch.records.into_iter().zip(batch.origins) {
            if role.is_none() {
                role = role_of(&r);
            }
            out.records.push((r, o.index, o.line));
        }
        out.rejections.extend(batch.rejections);
    }
    out.role = role.ok_or_else(|| {
        Error::config(format!(
            "{}: not a cMedQA2 file; expected the header question_id,content (questions), \
             ans_id,question_id,content (answers) or a candidates header",
            path.display()
        ))
    })?;
    Ok(out)
}

fn key(r: &Record, field: &str) -> std::result::Result<String, super::Bad> {
    Ok(req_str(r, field)?.trim().to_string())
}

fn account(sink: &mut Sink<'_>, f: &Read, convs: Vec<Conv>) -> Result<()> {
    sink.start_file(&f.path);
    for r in &f.rejections {
        sink.reject(r.clone())?;
    }
    for ((rec, index, line), conv) in f.records.iter().zip(convs) {
        sink.unit(&f.path, *index, *line, || super::raw_json(rec), conv)?;
    }
    sink.end_file();
    Ok(())
}

pub(super) fn convert(
    inputs: &[PathBuf],
    templates: &Templates,
    opts: &AdaptOptions,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let files: Vec<Read> = inputs
        .iter()
        .map(|p| read(p, opts))
        .collect::<Result<_>>()?;
    let of = |role| files.iter().filter(move |f| f.role == role);
    if of(Role::Questions).next().is_none() || of(Role::Answers).next().is_none() {
        return Err(Error::config(
            "cmedqa2 needs the question file (question_id,content) and the answer file \
             (ans_id,question_id,content); a candidates file is optional",
        ));
    }
    // Questions: id → (text, used).
    let mut questions: HashMap<String, (String, bool)> = HashMap::new();
    let mut question_convs: Vec<Vec<Conv>> = Vec::new();
    let mut question_ids: Vec<Vec<Option<String>>> = Vec::new();
    for f in of(Role::Questions) {
        let mut convs = Vec::new();
        let mut ids = Vec::new();
        for (r, _, _) in &f.records {
            let parsed = key(r, "question_id").and_then(|id| Ok((id, req_str(r, "content")?)));
            match parsed {
                Ok((id, _)) if questions.contains_key(&id) => {
                    convs.push(Err(bad(
                        "question_id",
                        DataErrorKind::Value,
                        format!("duplicate question_id {id}"),
                    )));
                    ids.push(None);
                }
                Ok((id, text)) => {
                    questions.insert(id.clone(), (text, false));
                    convs.push(Ok(Outcome::Records(Vec::new())));
                    ids.push(Some(id));
                }
                Err(b) => {
                    convs.push(Err(b));
                    ids.push(None);
                }
            }
        }
        question_convs.push(convs);
        question_ids.push(ids);
    }
    // Candidates: the split's questions.
    let mut selected: Option<HashSet<String>> = None;
    for f in of(Role::Candidates) {
        let set = selected.get_or_insert_with(HashSet::new);
        let convs: Vec<Conv> = f
            .records
            .iter()
            .map(|(r, _, _)| {
                let id = key(r, "question_id")?;
                let known = questions.contains_key(&id);
                set.insert(id);
                Ok(if known {
                    Outcome::Records(Vec::new())
                } else {
                    Outcome::Skipped(
                        "cmedqa2: candidate row's question is not in the question file",
                    )
                })
            })
            .collect();
        account(sink, f, convs)?;
    }
    for f in of(Role::Answers) {
        let convs: Vec<Conv> = f
            .records
            .iter()
            .map(|(r, _, _)| {
                let qid = key(r, "question_id")?;
                let answer = req_str(r, "content")?;
                let Some((question, used)) = questions.get_mut(&qid) else {
                    return Err(bad(
                        "question_id",
                        DataErrorKind::Value,
                        format!("no question with question_id {qid}"),
                    ));
                };
                if selected.as_ref().is_some_and(|s| !s.contains(&qid)) {
                    return Ok(Outcome::Skipped(
                        "cmedqa2: question not in the candidate split",
                    ));
                }
                non_empty("content", &answer)?;
                *used = true;
                let vars = [("question", question.as_str()), ("answer", answer.as_str())];
                Ok(Outcome::Records(vec![Alpaca {
                    instruction: templates.render("instruction", &vars),
                    input: templates.render("input", &vars),
                    output: templates.render("output", &vars),
                    id: key(r, "ans_id")?,
                    ..Alpaca::default()
                }]))
            })
            .collect();
        account(sink, f, convs)?;
    }
    for ((f, convs), ids) in of(Role::Questions).zip(question_convs).zip(question_ids) {
        let convs = convs
            .into_iter()
            .zip(ids)
            .map(|(c, id)| match (c, id) {
                (Ok(_), Some(id)) if !questions[&id].1 => Ok(Outcome::Skipped(
                    "cmedqa2: question without a (selected) answer",
                )),
                (c, _) => c,
            })
            .collect();
        account(sink, f, convs)?;
    }
    Ok(())
}
