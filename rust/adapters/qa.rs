//! Single-turn question answering (Toyhom Chinese-medical-dialogue-data CSV, PubMedQA,
//! Huatuo-26M, ChatMed-Consult) and CMID's NER + intent task → Alpaca. For QA the instruction is
//! the question and the input is empty, except where the dataset has a second prompt part
//! (Toyhom's `ask` under its `title`, PubMedQA's abstract). An empty answer, or an empty
//! question, is rejected (`value`).

use serde_json::Value;

use super::template::{spec, TemplateSpec};
use super::{
    answer_non_empty, answer_str, bad, id_or, non_empty, opt_str, req_str, text_or_bad, Alpaca,
    Bad, Conv, Ctx, Outcome,
};
use crate::error::DataErrorKind;
use crate::record::Record;

const SYSTEM: TemplateSpec = spec("system", "", &[]);

pub const TOYHOM_TEMPLATES: &[TemplateSpec] = &[
    spec("instruction", "{title}", &["title", "ask", "department"]),
    spec("input", "{ask}", &["title", "ask", "department"]),
    spec("output", "{answer}", &["answer", "department"]),
    SYSTEM,
];

pub const QA_TEMPLATES: &[TemplateSpec] = &[
    spec("instruction", "{question}", &["question"]),
    spec("input", "", &["question"]),
    spec("output", "{answer}", &["answer"]),
    SYSTEM,
];

pub const PUBMEDQA_TEMPLATES: &[TemplateSpec] = &[
    spec("instruction", "{question}", &["question", "context"]),
    spec("input", "{context}", &["question", "context"]),
    spec("context_line", "{label}: {text}", &["label", "text"]),
    spec(
        "output",
        "{long_answer}\nThe answer is {final_decision}.",
        &["long_answer", "final_decision"],
    ),
    SYSTEM,
];

pub const CMID_TEMPLATES: &[TemplateSpec] = &[
    spec(
        "instruction",
        "分析下列描述中提到的医学专有名词并分析其意图：\n\n",
        &[],
    ),
    spec("input", "{text}", &["text"]),
    SYSTEM,
];

fn one(ctx: &Ctx<'_>, vars: &[(&str, &str)], id: String) -> std::result::Result<Outcome, Bad> {
    let t = ctx.templates;
    let instruction = t.render("instruction", vars);
    let input = t.render("input", vars);
    let output = t.render("output", vars);
    if instruction.trim().is_empty() && input.trim().is_empty() {
        return Err(bad("", DataErrorKind::Value, "empty question"));
    }
    answer_non_empty(ctx, "output", &output)?;
    Ok(Outcome::Records(vec![Alpaca {
        instruction,
        input,
        output,
        id,
        ..Alpaca::default()
    }]))
}

/// Toyhom CSV row (`department,title,ask,answer`, GBK): instruction = title, input = ask,
/// output = answer, as CollectiveSFT's `cmeddialogue_to_sft.py`.
pub fn toyhom(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let title = req_str(r, "title")?;
    let ask = opt_str(r, "ask")?.unwrap_or_default();
    let answer = answer_str(r, "answer", ctx)?;
    answer_non_empty(ctx, "answer", &answer)?;
    let dep = opt_str(r, "department")?.unwrap_or_default();
    let vars = [
        ("title", title.as_str()),
        ("ask", &ask),
        ("answer", &answer),
        ("department", &dep),
    ];
    one(ctx, &vars, ctx.fallback_id())
}

/// A text field, or the single element of a one-element list (Zhongjing's Huatuo-26M form).
fn single_text(r: &Record, field: &str) -> std::result::Result<String, Bad> {
    match r.get(field) {
        Some(Value::Array(a)) if a.len() == 1 => text_or_bad(&a[0], field),
        Some(Value::Array(a)) => Err(bad(
            field,
            DataErrorKind::Value,
            format!("expected one element, found {}", a.len()),
        )),
        _ => req_str(r, field),
    }
}

/// Huatuo-26M (`instruction`/`output` as text or one-element lists, `id` often empty).
pub fn huatuo26m(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let q = single_text(r, "instruction")?;
    let a = single_text(r, "output")?;
    answer_non_empty(ctx, "output", &a)?;
    one(
        ctx,
        &[("question", &q), ("answer", &a)],
        id_or(r, "id", ctx),
    )
}

/// ChatMed-Consult (`query`, `response`).
pub fn chatmed(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let q = req_str(r, "query")?;
    let a = answer_str(r, "response", ctx)?;
    answer_non_empty(ctx, "response", &a)?;
    one(
        ctx,
        &[("question", &q), ("answer", &a)],
        id_or(r, "id", ctx),
    )
}

/// PubMedQA `ori_pqal.json` entry (keyed by PMID, read into `_key`): instruction = QUESTION,
/// input = the CONTEXTS paragraphs, one per line as `LABEL: text`, output = LONG_ANSWER then
/// the final decision (yes / no / maybe).
pub fn pubmedqa(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let t = ctx.templates;
    let question = req_str(r, "QUESTION")?;
    let list = |f: &str| -> std::result::Result<Vec<String>, Bad> {
        match r.get(f) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a.iter().map(|v| text_or_bad(v, f)).collect(),
            Some(_) => Err(bad(f, DataErrorKind::FieldType, "expected a list")),
        }
    };
    let contexts = list("CONTEXTS")?;
    let labels = list("LABELS")?;
    let context = contexts
        .iter()
        .enumerate()
        .map(|(i, text)| match labels.get(i) {
            Some(label) => t.render("context_line", &[("label", label), ("text", text)]),
            None => text.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let long_answer = req_str(r, "LONG_ANSWER")?;
    let decision = req_str(r, "final_decision")?;
    answer_non_empty(ctx, "LONG_ANSWER", &long_answer)?;
    let instruction = t.render(
        "instruction",
        &[("question", &question), ("context", &context)],
    );
    non_empty("QUESTION", &instruction)?;
    Ok(Outcome::Records(vec![Alpaca {
        input: t.render("input", &[("question", &question), ("context", &context)]),
        instruction,
        output: t.render(
            "output",
            &[("long_answer", &long_answer), ("final_decision", &decision)],
        ),
        id: id_or(r, "_key", ctx),
        ..Alpaca::default()
    }]))
}

/// Entity types CollectiveSFT names in the sentence; the last four get their type as prefix.
const PLAIN_TYPES: &[&str] = &["疾病和诊断", "解剖部位"];
const PREFIXED_TYPES: &[&str] = &["手术", "影像检查", "药物", "实验室检验"];

/// Labels as a list (text or list of text; CMID quotes them, `'病症'`), quotes stripped.
fn labels(r: &Record, field: &str) -> std::result::Result<Vec<String>, Bad> {
    let v = r
        .get(field)
        .or_else(|| r.get("dataset_info").and_then(|d| d.get(field)));
    let items: Vec<String> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| text_or_bad(x, field))
            .collect::<std::result::Result<_, _>>()?,
        Some(x) => {
            vec![text_or_bad(x, field)?]
        }
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().trim_matches('\'').to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// CMID (`originalText` or, in DISC's sample, `question`; `entities` [{label_type, start_pos,
/// end_pos}] when present; `label_4class`/`label_36class` at the top or under `dataset_info`):
/// the output sentence of CollectiveSFT's `cmid_to_sft.py`, e.g.
/// `该描述提到了高血压, 并期望知道该病症及其病因。`. Labels 其他 / 无法确定 / 多问 are dropped;
/// an item with nothing left (`该描述。`) is skipped, as CollectiveSFT skips it.
pub fn cmid(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let text = match opt_str(r, "originalText")? {
        Some(t) => t,
        None => req_str(r, "question")?,
    };
    non_empty("originalText", &text)?;
    let chars: Vec<char> = text.chars().collect();
    let mut entities = Vec::new();
    if let Some(list) = r.get("entities") {
        let Value::Array(list) = list else {
            return Err(bad("entities", DataErrorKind::FieldType, "expected a list"));
        };
        for (k, e) in list.iter().enumerate() {
            let ty = e.get("label_type").and_then(Value::as_str).unwrap_or("");
            let pos = |f: &str| e.get(f).and_then(Value::as_u64).map(|n| n as usize);
            let (Some(s), Some(end)) = (pos("start_pos"), pos("end_pos")) else {
                return Err(bad(
                    "entities",
                    DataErrorKind::FieldType,
                    format!("entity {k}: expected start_pos/end_pos numbers"),
                ));
            };
            if s > end || end > chars.len() {
                return Err(bad(
                    "entities",
                    DataErrorKind::Value,
                    format!("entity {k}: span {s}..{end} outside the text"),
                ));
            }
            let span: String = chars[s..end].iter().collect();
            if PLAIN_TYPES.contains(&ty) {
                entities.push(span);
            } else if PREFIXED_TYPES.contains(&ty) {
                entities.push(format!("{ty}{span}"));
            }
        }
    }
    let l4: Vec<String> = labels(r, "label_4class")?
        .into_iter()
        .filter(|l| l != "其他")
        .collect();
    let l36: Vec<String> = labels(r, "label_36class")?
        .into_iter()
        .filter(|l| l != "无法确定" && l != "多问")
        .collect();
    let (l4, l36, ents) = (l4.join("，"), l36.join("，"), entities.join("，"));
    let mut out = String::from("该描述");
    if !l4.is_empty() {
        if ents.is_empty() {
            out += &format!("期望知道该{l4}");
        } else {
            out += &format!("提到了{ents}, 并期望知道该{l4}");
        }
        out += &if l36.is_empty() {
            "。".to_string()
        } else {
            format!("及其{l36}。")
        };
    } else {
        if !ents.is_empty() {
            out += &format!("提到了{ents}");
        }
        out += &if l36.is_empty() {
            "。".to_string()
        } else {
            format!("期望知道{l36}。")
        };
    }
    if out == "该描述。" {
        return Ok(Outcome::Skipped(
            "cmid: no entity and no usable intent label",
        ));
    }
    let t = ctx.templates;
    Ok(Outcome::Records(vec![Alpaca {
        instruction: t.render("instruction", &[]),
        input: t.render("input", &[("text", &text)]),
        output: out,
        id: id_or(r, "id", ctx),
        ..Alpaca::default()
    }]))
}
