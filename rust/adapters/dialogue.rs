//! Dialogues (DISC-Med-SFT, CMtMedQA; MedDialog's text blocks come through `text`) and the
//! generic adapters for users' own data (`alpaca`, `sharegpt`, `mapping`).
//!
//! A dialogue becomes [user, assistant] pairs, then by default one record per assistant turn
//! with the earlier pairs in `history` (CollectiveSFT's expansion; `turn` is the 1-based turn),
//! or with `per_conversation` one record for the whole conversation: the last pair as
//! instruction/output and every earlier pair in `history`. Per-turn expansion trains turn k of
//! an n-turn dialogue n−k+1 times; per-conversation trains each once.

use std::collections::BTreeMap;

use serde_json::Value;

use super::template::{placeholders, render, spec, TemplateSpec, Templates};
use super::{
    bad, id_or, json_type, non_empty, opt_str, req_str, text_of, Alpaca, Bad, Conv, Ctx, Outcome,
};
use crate::error::{DataErrorKind, Error, Result};
use crate::lengths::template::conversation;
use crate::record::Record;

pub const DIALOGUE_TEMPLATES: &[TemplateSpec] = &[spec("system", "", &[])];

pub const MAPPING_FIELDS: &[&str] = &["instruction", "input", "output", "system", "history", "id"];

pub const MAPPING_TEMPLATES: &[TemplateSpec] = &[
    spec("instruction", "", &["*"]),
    spec("input", "", &["*"]),
    spec("output", "", &["*"]),
    spec("system", "", &["*"]),
];

/// Records of a conversation given as pairs; `last_input` is the `input` of the final pair.
pub fn expand(
    pairs: Vec<(String, String)>,
    last_input: String,
    system: Option<String>,
    id: &str,
    per_conversation: bool,
) -> Vec<Alpaca> {
    let n = pairs.len();
    if per_conversation {
        let mut history = pairs;
        let Some((q, a)) = history.pop() else {
            return Vec::new();
        };
        return vec![Alpaca {
            instruction: q,
            input: last_input,
            output: a,
            system,
            history: Some(history),
            id: id.to_string(),
            turn: None,
        }];
    }
    let mut out = Vec::with_capacity(n);
    let mut history = Vec::with_capacity(n);
    for (k, (q, a)) in pairs.into_iter().enumerate() {
        out.push(Alpaca {
            instruction: q.clone(),
            input: if k + 1 == n {
                last_input.clone()
            } else {
                String::new()
            },
            output: a.clone(),
            system: system.clone(),
            history: Some(history.clone()),
            id: id.to_string(),
            turn: Some(k + 1),
        });
        history.push((q, a));
    }
    out
}

/// DISC-Med-SFT (`_id`, `conversation` [{role, content}]): consecutive messages of one role
/// are merged with a space and trimmed; a dialogue that opens with the assistant gets an empty
/// user turn first; a trailing user turn without a reply is left out (CollectiveSFT's rules).
pub fn discmed(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let Some(Value::Array(msgs)) = r.get("conversation") else {
        return Err(match r.get("conversation") {
            None => bad(
                "conversation",
                DataErrorKind::MissingField,
                "missing 'conversation'",
            ),
            Some(_) => bad("conversation", DataErrorKind::FieldType, "expected a list"),
        });
    };
    let mut groups: Vec<(bool, Vec<String>)> = Vec::new();
    for (k, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        let content = m.get("content").and_then(text_of);
        let (Some(role), Some(content)) = (role, content) else {
            let got = match m.get("content") {
                Some(c) if !c.is_string() => format!(", got content as {}", json_type(c)),
                _ => String::new(),
            };
            return Err(bad(
                "conversation",
                DataErrorKind::FieldType,
                format!("message {k}: expected role and content text{got}"),
            ));
        };
        let user = match role {
            "user" | "human" => true,
            "assistant" | "gpt" => false,
            other => {
                return Err(bad(
                    "conversation",
                    DataErrorKind::Value,
                    format!("message {k}: unknown role '{other}'"),
                ))
            }
        };
        match groups.last_mut() {
            Some((u, texts)) if *u == user => texts.push(content),
            _ => groups.push((user, vec![content])),
        }
    }
    if groups.first().is_some_and(|(u, _)| !u) {
        groups.insert(0, (true, Vec::new()));
    }
    let pairs: Vec<(String, String)> = groups
        .chunks_exact(2)
        .map(|c| {
            (
                c[0].1.join(" ").trim().to_string(),
                c[1].1.join(" ").trim().to_string(),
            )
        })
        .collect();
    answered(
        pairs,
        &id_or(r, "_id", ctx),
        ctx,
        "dialogue without an assistant reply",
    )
}

/// The records of a conversation without a system prompt, or skipped (`why`) when no
/// question in it has an answer.
fn answered(pairs: Vec<(String, String)>, id: &str, ctx: &Ctx<'_>, why: &'static str) -> Conv {
    if pairs.is_empty() {
        return Ok(Outcome::Skipped(why));
    }
    Ok(Outcome::Records(expand(
        pairs,
        String::new(),
        None,
        id,
        ctx.per_conversation,
    )))
}

fn pairs_of(v: Option<&Value>, field: &str) -> std::result::Result<Vec<(String, String)>, Bad> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|p| match p.as_array().map(Vec::as_slice) {
                Some([q, a]) => match (text_of(q), text_of(a)) {
                    (Some(q), Some(a)) => Ok((q, a)),
                    _ => Err(()),
                },
                _ => Err(()),
            })
            .collect::<std::result::Result<_, ()>>()
            .map_err(|()| {
                bad(
                    field,
                    DataErrorKind::FieldType,
                    "expected a list of [user, assistant] pairs",
                )
            }),
        Some(_) => Err(bad(
            field,
            DataErrorKind::FieldType,
            "expected a list of [user, assistant] pairs",
        )),
    }
}

/// CMtMedQA: two schemas mixed in one file. `{id, cate1, cate2, instruction, input, output,
/// history}` (a multi-turn consultation: history + the final turn) and `{instruct, output}`
/// (single-turn safety prompts whose values start with a space, trimmed here).
pub fn cmtmedqa(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let id = id_or(r, "id", ctx);
    if r.contains_key("instruct") && !r.contains_key("instruction") {
        let q = req_str(r, "instruct")?.trim().to_string();
        let a = req_str(r, "output")?.trim().to_string();
        non_empty("instruct", &q)?;
        non_empty("output", &a)?;
        return Ok(Outcome::Records(expand(
            vec![(q, a)],
            String::new(),
            None,
            &id,
            ctx.per_conversation,
        )));
    }
    let mut pairs = pairs_of(r.get("history"), "history")?;
    let q = req_str(r, "instruction")?;
    let input = opt_str(r, "input")?.unwrap_or_default();
    let a = req_str(r, "output")?;
    non_empty("output", &a)?;
    pairs.push((q, a));
    Ok(Outcome::Records(expand(
        pairs,
        input,
        None,
        &id,
        ctx.per_conversation,
    )))
}

fn located(u: crate::lengths::template::Unrenderable) -> Bad {
    Bad {
        field: Some(u.field),
        kind: u.kind,
        reason: u.reason,
    }
}

/// Alpaca records (`instruction`, `input`, `output`, optional `system`, `history`, `id`), kept
/// as they are after the checks LLaMA-Factory's converter would make.
pub fn alpaca(r: &Record, ctx: &Ctx<'_>) -> Conv {
    conversation(r).map_err(located)?;
    if (r.contains_key("messages") || r.contains_key("conversations"))
        && !r.contains_key("instruction")
    {
        return Err(bad(
            "instruction",
            DataErrorKind::MissingField,
            "missing 'instruction' (use the sharegpt adapter for messages)",
        ));
    }
    let output = req_str(r, "output")?;
    Ok(Outcome::Records(vec![Alpaca {
        instruction: req_str(r, "instruction")?,
        input: opt_str(r, "input")?.unwrap_or_default(),
        output,
        system: opt_str(r, "system")?,
        history: r
            .get("history")
            .filter(|v| !v.is_null())
            .map(|v| pairs_of(Some(v), "history"))
            .transpose()?,
        id: id_or(r, "id", ctx),
        turn: None,
    }]))
}

/// ShareGPT (`conversations` [{from, value}]) or OpenAI messages (`messages` [{role,
/// content}]), with an optional leading system message or `system` field: turns must alternate
/// user/assistant and end with the assistant.
pub fn sharegpt(r: &Record, ctx: &Ctx<'_>) -> Conv {
    if !["messages", "conversations", "conversation"]
        .iter()
        .any(|f| r.contains_key(*f))
    {
        return Err(bad(
            "conversations",
            DataErrorKind::MissingField,
            "missing 'conversations' / 'messages'",
        ));
    }
    let mut plain = r.clone();
    plain.remove("output");
    let conv = conversation(&plain).map_err(located)?;
    let pairs = conv
        .messages
        .chunks_exact(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    let id = id_or(r, "id", ctx);
    Ok(Outcome::Records(expand(
        pairs,
        String::new(),
        conv.system,
        &id,
        ctx.per_conversation,
    )))
}

/// HuatuoGPT-sft-data (`data`: ["问：…", "答：…", …], optional `id`): the strings alternate
/// question and answer, each with its `问：`/`答：` prefix (full-width or ASCII colon) taken
/// off; a trailing question without an answer is left out, as in `discmed`.
pub fn huatuo_sft(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let Some(Value::Array(turns)) = r.get("data") else {
        return Err(match r.get("data") {
            None => bad("data", DataErrorKind::MissingField, "missing 'data'"),
            Some(_) => bad(
                "data",
                DataErrorKind::FieldType,
                "expected a list of strings",
            ),
        });
    };
    let mut texts = Vec::with_capacity(turns.len());
    for (k, t) in turns.iter().enumerate() {
        let Some(text) = text_of(t) else {
            return Err(bad(
                "data",
                DataErrorKind::FieldType,
                format!("turn {k}: expected text"),
            ));
        };
        let (want, other) = if k % 2 == 0 {
            ('问', '答')
        } else {
            ('答', '问')
        };
        let body = strip_speaker(&text, want);
        if body.is_none() && strip_speaker(&text, other).is_some() {
            return Err(bad(
                "data",
                DataErrorKind::Value,
                format!("turn {k}: expected a '{want}：' turn, got '{other}：'"),
            ));
        }
        texts.push(body.unwrap_or(text.trim()).to_string());
    }
    let pairs: Vec<(String, String)> = texts
        .chunks_exact(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    answered(
        pairs,
        &id_or(r, "id", ctx),
        ctx,
        "huatuo_sft: no answered question",
    )
}

/// The text after a `问：` / `答：` speaker prefix (either colon), trimmed; `None` without one.
fn strip_speaker(text: &str, speaker: char) -> Option<&str> {
    let rest = text.trim_start().strip_prefix(speaker)?;
    let rest = rest.strip_prefix('：').or_else(|| rest.strip_prefix(':'))?;
    Some(rest.trim())
}

/// Checks a field mapping (output field → input field).
pub fn check_mapping(mapping: &BTreeMap<String, String>, templates: &Templates) -> Result<()> {
    if let Some(k) = mapping
        .keys()
        .find(|k| !MAPPING_FIELDS.contains(&k.as_str()))
    {
        return Err(Error::config(format!(
            "mapping: unknown output field '{k}'; expected {}",
            MAPPING_FIELDS.join(", ")
        )));
    }
    let given = |f: &str| mapping.contains_key(f) || !templates.get(f).is_empty();
    if !given("output") || !(given("instruction") || given("input")) {
        return Err(Error::config(
            "mapping: map (or template) 'output' and at least one of 'instruction' / 'input', \
             e.g. instruction=question,output=answer",
        ));
    }
    Ok(())
}

/// A field by dotted path (`a.b` looks inside object `a`).
fn lookup<'r>(r: &'r Record, path: &str) -> Option<&'r Value> {
    let mut parts = path.split('.');
    let mut v = r.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

fn field_text(r: &Record, path: &str) -> std::result::Result<Option<String>, Bad> {
    match lookup(r, path) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Ok(Some(text_of(v).unwrap_or_else(|| v.to_string()))),
    }
}

/// The `mapping` adapter: each output field from its mapped input field, or from its template
/// (`{field}` placeholders name input fields, dotted paths allowed).
pub fn mapping(r: &Record, ctx: &Ctx<'_>) -> Conv {
    let get = |out: &str| -> std::result::Result<Option<String>, Bad> {
        let template = ctx.templates.get(out);
        if !template.is_empty() {
            let mut vals = Vec::new();
            for p in placeholders(template) {
                match field_text(r, p)? {
                    Some(v) => vals.push((p, v)),
                    None => {
                        return Err(bad(
                            p,
                            DataErrorKind::MissingField,
                            format!("missing '{p}' (used by the {out} template)"),
                        ))
                    }
                }
            }
            return Ok(Some(render(template, |k| {
                vals.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str())
            })));
        }
        match ctx.mapping.get(out) {
            None => Ok(None),
            Some(field) => match lookup(r, field) {
                None | Some(Value::Null) if out == "output" || out == "instruction" => Err(bad(
                    field,
                    DataErrorKind::MissingField,
                    format!("missing '{field}' (mapped to {out})"),
                )),
                None | Some(Value::Null) => Ok(None),
                Some(v) => text_of(v).map(Some).ok_or_else(|| {
                    bad(
                        field,
                        DataErrorKind::FieldType,
                        format!("expected text for {out}, got {}", json_type(v)),
                    )
                }),
            },
        }
    };
    let instruction = get("instruction")?.unwrap_or_default();
    let input = get("input")?.unwrap_or_default();
    let output = get("output")?.unwrap_or_default();
    let out_field = ctx.mapping.get("output").map_or("output", String::as_str);
    non_empty(out_field, &output)?;
    if instruction.trim().is_empty() && input.trim().is_empty() {
        return Err(bad("", DataErrorKind::Value, "empty instruction and input"));
    }
    let history = match ctx.mapping.get("history") {
        Some(f) => Some(pairs_of(lookup(r, f), f)?),
        None => None,
    };
    let id = match ctx.mapping.get("id") {
        Some(f) => field_text(r, f)?.unwrap_or_else(|| ctx.fallback_id()),
        None => ctx.fallback_id(),
    };
    Ok(Outcome::Records(vec![Alpaca {
        instruction,
        input,
        output,
        system: get("system")?,
        history,
        id,
        turn: None,
    }]))
}
