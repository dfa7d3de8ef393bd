//! Multiple-choice exams (CMB-Exam, CMExam, MLEC-QA, NLPEC, MedMCQA, HEAD-QA) → Alpaca:
//! instruction = a header naming the exam/subject, input = question + one line per option,
//! output = the answer letter(s), after the explanation when the item has one. Multi-answer
//! items keep every correct letter in the order given. An answer letter that names no option is
//! rejected (`value`, field `answer`). The default templates are CollectiveSFT's exact strings
//! (`preprocess/*_to_sft.py`); CMExam, which CollectiveSFT does not convert, follows MLEC-QA's.

use std::io::BufReader;
use std::path::Path;

use serde_json::Value;

use super::template::{spec, TemplateSpec};
use super::{
    answer_str, bad, id_or, id_text, json_type, non_empty, opt_str, req_str, text_of, Alpaca, Bad,
    Conv, Ctx, Outcome,
};
use crate::error::{DataError, DataErrorKind, Error, Result};
use crate::record::Record;

const OPTION: TemplateSpec = spec("option", "{key}: {value}\n", &["key", "value"]);
const INPUT: TemplateSpec = spec("input", "{question}\n{options}", &["question", "options"]);
const SYSTEM: TemplateSpec = spec("system", "", &[]);
const ANSWER_VARS: &[&str] = &["answer", "explanation"];
const ZH_OUTPUT: TemplateSpec = spec("output", "答案是{answer}。", ANSWER_VARS);
const ZH_EXPLAINED: TemplateSpec = spec(
    "output_explained",
    "{explanation}\n答案是{answer}。",
    ANSWER_VARS,
);
const EN_OUTPUT: TemplateSpec = spec("output", "The answer is {answer} .", ANSWER_VARS);
const EN_EXPLAINED: TemplateSpec = spec(
    "output_explained",
    "{explanation}\nThe answer is {answer} .",
    ANSWER_VARS,
);

pub const CMB_TEMPLATES: &[TemplateSpec] = &[
    spec(
        "instruction",
        "该问题源自{exam_type}，面向{exam_class}中的{exam_subject}。\n\n",
        &["exam_type", "exam_class", "exam_subject", "question_type"],
    ),
    INPUT,
    OPTION,
    ZH_OUTPUT,
    ZH_EXPLAINED,
    SYSTEM,
];

pub const CMEXAM_TEMPLATES: &[TemplateSpec] = &[
    spec("instruction", "这是国家医师资格考试的题目。\n\n", &[]),
    INPUT,
    OPTION,
    ZH_OUTPUT,
    ZH_EXPLAINED,
    SYSTEM,
];

pub const MLECQA_TEMPLATES: &[TemplateSpec] = &[
    spec(
        "instruction",
        "这是国家医师资格考试的题目。\n\n",
        &["qtype"],
    ),
    INPUT,
    OPTION,
    ZH_OUTPUT,
    ZH_EXPLAINED,
    SYSTEM,
];

pub const NLPEC_TEMPLATES: &[TemplateSpec] = &[
    spec(
        "instruction",
        "这是国家药品监督管理局执业药师资格认证考试的题目。\n源自{subject}\n\n",
        &["subject", "question_type"],
    ),
    spec(
        "instruction_no_subject",
        "这是国家药品监督管理局执业药师资格认证考试的题目。\n\n",
        &["question_type"],
    ),
    INPUT,
    OPTION,
    spec(
        "context_line",
        "{option}：{context}",
        &["option", "context"],
    ),
    ZH_OUTPUT,
    ZH_EXPLAINED,
    SYSTEM,
];

pub const MEDMCQA_TEMPLATES: &[TemplateSpec] = &[
    spec(
        "instruction",
        "This is a question about {subject_name} from real-world medical entrance exam.\n{topic}\n",
        &["subject_name", "topic"],
    ),
    spec("topic", "The topic is {topic_name}.\n", &["topic_name"]),
    INPUT,
    OPTION,
    EN_OUTPUT,
    EN_EXPLAINED,
    SYSTEM,
];

pub const HEADQA_TEMPLATES: &[TemplateSpec] = &[
    spec(
        "instruction",
        "This is a question about {category} from exams to access a specialized position in \
         healthcare system.\n\n",
        &["category", "exam", "year"],
    ),
    INPUT,
    OPTION,
    EN_OUTPUT,
    EN_EXPLAINED,
    SYSTEM,
];

/// A parsed exam item.
struct Item {
    question: String,
    /// (letter, text) in display order.
    options: Vec<(String, String)>,
    answer: String,
    explanation: Option<String>,
    always_explained: bool,
}

fn letter(i: usize) -> String {
    char::from(b'A' + (i % 26) as u8).to_string()
}

/// Renders an item with `instruction` already rendered.
fn render(ctx: &Ctx<'_>, instruction: String, item: Item, id: String) -> Conv {
    non_empty("question", &item.question)?;
    if item.options.is_empty() && !ctx.questions_only {
        return Err(bad("options", DataErrorKind::Value, "no options"));
    }
    if item.answer.is_empty() && !ctx.questions_only {
        return Err(bad("answer", DataErrorKind::Value, "empty answer"));
    }
    for c in item.answer.chars().filter(|_| !ctx.questions_only) {
        if !item
            .options
            .iter()
            .any(|(k, _)| k.starts_with(c) && k.len() == c.len_utf8())
        {
            let keys: Vec<&str> = item.options.iter().map(|(k, _)| k.as_str()).collect();
            return Err(bad(
                "answer",
                DataErrorKind::Value,
                format!(
                    "answer '{}' names no option (options {})",
                    item.answer,
                    keys.join("")
                ),
            ));
        }
    }
    let t = ctx.templates;
    let options: String = item
        .options
        .iter()
        .map(|(k, v)| t.render("option", &[("key", k), ("value", v)]))
        .collect();
    let input = t.render(
        "input",
        &[("question", &item.question), ("options", &options)],
    );
    let explanation = item.explanation.unwrap_or_default();
    let which = if explanation.trim().is_empty() && !item.always_explained {
        "output"
    } else {
        "output_explained"
    };
    let output = t.render(
        which,
        &[("answer", &item.answer), ("explanation", &explanation)],
    );
    Ok(Outcome::Records(vec![Alpaca {
        instruction,
        input,
        output,
        id,
        ..Alpaca::default()
    }]))
}

/// Options given as an object `{"A": text}` (sorted by key, as CollectiveSFT sorts them), or
/// as a string holding such an object in JSON or Python-literal form (the HF CMB loader).
fn options_map(r: &Record, field: &str) -> std::result::Result<Vec<(String, String)>, Bad> {
    let v = r.get(field).ok_or_else(|| {
        bad(
            field,
            DataErrorKind::MissingField,
            format!("missing '{field}'"),
        )
    })?;
    let parsed;
    let obj = match v {
        Value::Object(o) => o,
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s)
                .ok()
                .or_else(|| python_dict(s))
                .ok_or_else(|| bad(field, DataErrorKind::FieldType, "options text is no dict"))?;
            parsed
                .as_object()
                .ok_or_else(|| bad(field, DataErrorKind::FieldType, "options text is no dict"))?
        }
        _ => {
            return Err(bad(
                field,
                DataErrorKind::FieldType,
                "expected an object of options",
            ))
        }
    };
    let mut out = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        let text = text_of(v).ok_or_else(|| {
            bad(
                field,
                DataErrorKind::FieldType,
                format!("option {k}: expected text, got {}", json_type(v)),
            )
        })?;
        out.push((k.clone(), text));
    }
    out.sort();
    Ok(out)
}

/// Parses a Python dict literal of string keys and values (`{'A': '...', "B": "..."}`).
fn python_dict(s: &str) -> Option<Value> {
    let mut chars = s.trim().chars().peekable();
    let mut map = serde_json::Map::new();
    let mut strings = Vec::new();
    if chars.next()? != '{' {
        return None;
    }
    loop {
        while chars
            .next_if(|c| c.is_whitespace() || *c == ',' || *c == ':')
            .is_some()
        {}
        match chars.next()? {
            '}' => break,
            q @ ('\'' | '"') => {
                let mut out = String::new();
                loop {
                    match chars.next()? {
                        '\\' => match chars.next()? {
                            'n' => out.push('\n'),
                            't' => out.push('\t'),
                            c => out.push(c),
                        },
                        c if c == q => break,
                        c => out.push(c),
                    }
                }
                strings.push(out);
                if strings.len() == 2 {
                    let v = strings.pop()?;
                    map.insert(strings.pop()?, Value::String(v));
                }
            }
            _ => return None,
        }
    }
    strings.is_empty().then_some(Value::Object(map))
}

/// CMB-Exam item: `exam_type`, `exam_class`, `exam_subject`, `question`, `answer`,
/// `question_type`, `option` (object or its text); val items add `explanation`, test `id`.
pub fn cmb(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let mut vars = Vec::new();
    for f in ["exam_type", "exam_class", "exam_subject"] {
        vars.push((f, req_str(r, f)?));
    }
    vars.push((
        "question_type",
        opt_str(r, "question_type")?.unwrap_or_default(),
    ));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let instruction = ctx.templates.render("instruction", &vars);
    let item = Item {
        question: req_str(r, "question")?,
        options: options_map(r, "option")?,
        answer: answer_str(r, "answer", ctx)?.trim().to_string(),
        explanation: opt_str(r, "explanation")?,
        always_explained: false,
    };
    render(ctx, instruction, item, id_or(r, "id", ctx))
}

/// CMExam CSV row: `Question`, `Options` (`A 文本\nB 文本`, with literal `\n` separators),
/// `Answer` (letters), `Explanation`.
pub fn cmexam(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let raw = req_str(r, "Options")?;
    let mut options = Vec::new();
    for part in raw.replace("\\n", "\n").split('\n') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let mut cs = part.chars();
        let key = cs.next().filter(char::is_ascii_uppercase).ok_or_else(|| {
            bad(
                "Options",
                DataErrorKind::Value,
                format!("option '{part}' does not start with a letter"),
            )
        })?;
        options.push((key.to_string(), cs.as_str().trim().to_string()));
    }
    let item = Item {
        question: req_str(r, "Question")?,
        options,
        answer: answer_str(r, "Answer", ctx)?.trim().to_string(),
        explanation: opt_str(r, "Explanation")?,
        always_explained: false,
    };
    let instruction = ctx.templates.render("instruction", &[]);
    render(ctx, instruction, item, ctx.fallback_id())
}

/// MLEC-QA item: `qid`, `qtype`, `qtext`, `options` object, `answer`.
pub fn mlecqa(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let qtype = opt_str(r, "qtype")?.unwrap_or_default();
    let instruction = ctx.templates.render("instruction", &[("qtype", &qtype)]);
    let item = Item {
        question: req_str(r, "qtext")?,
        options: options_map(r, "options")?,
        answer: answer_str(r, "answer", ctx)?.trim().to_string(),
        explanation: None,
        always_explained: false,
    };
    render(ctx, instruction, item, id_or(r, "qid", ctx))
}

fn str_list(r: &Record, field: &str) -> std::result::Result<Vec<String>, Bad> {
    match r.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                text_of(v)
                    .ok_or_else(|| bad(field, DataErrorKind::FieldType, "expected a list of text"))
            })
            .collect(),
        Some(_) => Err(bad(field, DataErrorKind::FieldType, "expected a list")),
    }
}

/// NLPEC item: `questionText`, `option` list, `answer` list of 1-based digit strings (several
/// for multi-answer items), `context` list (one passage per option), optional `subject`,
/// `questionId`. The explanation is the single shared context, or `option：context` lines.
pub fn nlpec(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let t = ctx.templates;
    let qtype = opt_str(r, "questionType")?.unwrap_or_default();
    let instruction = match opt_str(r, "subject")? {
        Some(s) => t.render("instruction", &[("subject", &s), ("question_type", &qtype)]),
        None => t.render("instruction_no_subject", &[("question_type", &qtype)]),
    };
    let opts = str_list(r, "option")?;
    let contexts = str_list(r, "context")?;
    if opts.len() != contexts.len() {
        return Err(bad(
            "context",
            DataErrorKind::Value,
            format!(
                "{} contexts for {} options (one per option expected)",
                contexts.len(),
                opts.len()
            ),
        ));
    }
    let mut answer = String::new();
    for a in str_list(r, "answer")? {
        match a.trim().parse::<usize>() {
            Ok(n) if (1..=opts.len()).contains(&n) => answer.push_str(&letter(n - 1)),
            _ => {
                return Err(bad(
                    "answer",
                    DataErrorKind::Value,
                    format!("answer '{a}' is no option number 1..{}", opts.len()),
                ))
            }
        }
    }
    let shared = contexts.windows(2).all(|w| w[0] == w[1]);
    let explanation = if shared {
        contexts.first().cloned().unwrap_or_default()
    } else {
        opts.iter()
            .zip(&contexts)
            .map(|(o, c)| t.render("context_line", &[("option", o), ("context", c)]))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let item = Item {
        question: req_str(r, "questionText")?,
        options: opts
            .into_iter()
            .enumerate()
            .map(|(i, o)| (letter(i), o))
            .collect(),
        answer,
        explanation: Some(explanation),
        // CollectiveSFT writes `{explain}\n答案是…` even when the explanation is empty.
        always_explained: true,
    };
    render(ctx, instruction, item, id_or(r, "questionId", ctx))
}

/// MedMCQA item: `question`, `opa`..`opd`, `cop` (0-based correct option), `exp`,
/// `subject_name`, `topic_name`, `id`.
pub fn medmcqa(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let t = ctx.templates;
    let topic = match opt_str(r, "topic_name")? {
        Some(name) => t.render("topic", &[("topic_name", &name)]),
        None => String::new(),
    };
    let subject = req_str(r, "subject_name")?;
    let instruction = t.render(
        "instruction",
        &[("subject_name", &subject), ("topic", &topic)],
    );
    let mut options = Vec::new();
    for (i, f) in ["opa", "opb", "opc", "opd"].iter().enumerate() {
        options.push((letter(i), req_str(r, f)?));
    }
    let cop = match r.get("cop") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        None | Some(Value::Null) if ctx.questions_only => None,
        None | Some(Value::Null) => {
            return Err(bad("cop", DataErrorKind::MissingField, "missing 'cop'"))
        }
        _ => None,
    };
    let answer = match cop {
        Some(c @ 0..=3) => letter(c as usize),
        _ if ctx.questions_only => String::new(),
        _ => {
            return Err(bad(
                "cop",
                DataErrorKind::Value,
                "expected the 0-based correct option 0..3",
            ))
        }
    };
    let item = Item {
        question: req_str(r, "question")?,
        options,
        answer,
        explanation: opt_str(r, "exp")?,
        always_explained: false,
    };
    render(ctx, instruction, item, id_or(r, "id", ctx))
}

/// One HEAD-QA question (`qid`, `qtext`, `ra` 1-based, `answers` [{aid, atext}]) of `exam`.
fn headqa_item(q: &Record, exam: &Record, exam_name: &str, ctx: &Ctx<'_>) -> Conv {
    let vars = [
        ("category", req_str(exam, "category")?),
        ("exam", exam_name.to_string()),
        ("year", opt_str(exam, "year")?.unwrap_or_default()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let instruction = ctx.templates.render("instruction", &vars);
    let Some(Value::Array(answers)) = q.get("answers") else {
        return Err(bad(
            "answers",
            DataErrorKind::FieldType,
            "expected a list of {aid, atext}",
        ));
    };
    let number = |v: Option<&Value>| match v {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let mut options = Vec::new();
    for a in answers {
        let aid = number(a.get("aid")).filter(|n| (1..=26).contains(n));
        let (Some(aid), Some(text)) = (aid, a.get("atext").and_then(text_of)) else {
            return Err(bad(
                "answers",
                DataErrorKind::FieldType,
                "expected {aid: 1.., atext: text}",
            ));
        };
        options.push((letter(aid as usize - 1), text));
    }
    let answer = match number(q.get("ra")) {
        Some(n @ 1..=26) if options.iter().any(|(k, _)| *k == letter(n as usize - 1)) => {
            letter(n as usize - 1)
        }
        _ if ctx.questions_only => String::new(),
        _ => {
            return Err(bad(
                "ra",
                DataErrorKind::Value,
                "expected the aid of one of the answers",
            ))
        }
    };
    let item = Item {
        question: req_str(q, "qtext")?,
        options,
        answer,
        explanation: None,
        always_explained: false,
    };
    let qid = q.get("qid").and_then(id_text).unwrap_or_default();
    render(ctx, instruction, item, format!("{exam_name}/{qid}"))
}

/// HEAD-QA's `HEAD.json` / `HEAD_EN.json`: `{version, language, exams: {name: {name,
/// category, year, data: [question]}}}`. Read whole (a few MB); one unit per question.
pub(super) fn headqa_file<'a>(
    path: &Path,
    ctx: &dyn Fn(u64) -> Ctx<'a>,
    sink: &mut super::Sink<'_>,
) -> Result<()> {
    let file = crate::io::open_file(path)?;
    let doc: Value = serde_json::from_reader(BufReader::new(file)).map_err(|e| {
        Error::from(
            DataError::new(path, DataErrorKind::Json, e.to_string()).at_line(e.line() as u64),
        )
    })?;
    let shape = || {
        Error::from(
            DataError::new(
                path,
                DataErrorKind::FieldType,
                "expected {exams: {name: {category, data: [questions]}}}",
            )
            .in_field("exams"),
        )
    };
    let exams = doc
        .get("exams")
        .and_then(Value::as_object)
        .ok_or_else(shape)?;
    let mut index = 0u64;
    for (name, exam) in exams {
        let exam = exam.as_object().ok_or_else(shape)?;
        let data = exam
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(shape)?;
        for q in data {
            let conv = match q.as_object() {
                Some(q) => headqa_item(q, exam, name, &ctx(index)),
                None => Err(bad("data", DataErrorKind::FieldType, "expected an object")),
            };
            sink.unit(path, index, None, || q.to_string(), conv)?;
            index += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_literal_options() {
        let v = python_dict("{'A': '小叶型肺炎', \"B\": 'it\\'s'}").unwrap();
        assert_eq!(v["A"], "小叶型肺炎");
        assert_eq!(v["B"], "it's");
        assert!(python_dict("{'A'}").is_none());
        assert!(python_dict("[1]").is_none());
    }
}
