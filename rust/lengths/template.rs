//! Chat templates as data, rendered the way LLaMA-Factory renders them for SFT, and the mapping
//! of a record (Alpaca or messages style) to a conversation.
//!
//! A template is a prefix, a system slot, a user slot, an assistant slot, an optional separator
//! (placed before every user turn but the first, as LLaMA-Factory 0.8.x did) and a default
//! system prompt. A slot is a list of elements: literal text in which `{{content}}` stands for
//! the message, or the BOS / EOS token. Each text element is tokenized on its own (so special
//! tokens such as `<|im_start|>` inside it are matched as added tokens), which is what
//! `Template._convert_elements_to_ids` does.
//!
//! The slots are those of `src/llamafactory/data/template.py` in hiyouga/LLaMA-Factory at commit
//! `00577a85775a2a78b14641ff8f68c58c6f46b027` (2025): `default`, `empty`, `alpaca`, `intern2`,
//! `qwen`, `chatml` and `llama3`. `intern2` there has no separator, the assistant slot ends in
//! `<|im_end|>\n` and it carries the InternLM default system prompt. Older releases differ:
//! `intern2_v08` is the mid-2024 (LLaMA-Factory 0.8.x) form that CollectiveSFT most likely used:
//! separator `<|im_end|>\n`, bare assistant content, `efficient_eos` (one EOS after the last
//! turn) and no default system prompt; some later 0.8/0.9 releases added the InternLM prompt back,
//! which `system` (an override of the default system prompt) reproduces.
//!
//! Not covered: tools/function/observation turns, multimodal placeholders, reasoning (`<think>`)
//! templates, and `Llama2Template`'s system-into-first-user fusion.

use serde_json::Value;

use crate::error::{DataErrorKind, Error, Result};
use crate::record::Record;

/// One element of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// Literal text; `{{content}}` is replaced by the message.
    Text(&'static str),
    Bos,
    Eos,
}

/// A chat template (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub name: &'static str,
    pub prefix: Vec<Element>,
    pub system: Vec<Element>,
    pub user: Vec<Element>,
    pub assistant: Vec<Element>,
    /// Placed before each user turn after the first (LLaMA-Factory ≤ 0.8 `format_separator`).
    pub separator: Vec<Element>,
    pub default_system: String,
    /// One EOS after the last turn (counted in the response), as `efficient_eos` does.
    pub efficient_eos: bool,
    /// Token names BOS / EOS usually have with this template's models: used only for a
    /// `tokenizer.json` without a `tokenizer_config.json` (see `special.rs`).
    pub bos_token: Option<&'static str>,
    pub eos_token: Option<&'static str>,
    /// LLaMA-Factory's `stop_words`: added to the tokenizer as special tokens.
    pub stop_words: &'static [&'static str],
    /// LLaMA-Factory's `replace_eos`: the first stop word is the EOS token.
    pub replace_eos: bool,
}

use Element::{Bos, Eos, Text};

const INTERNLM_SYSTEM: &str = "You are an AI assistant whose name is InternLM (书生·浦语).\n\
- InternLM (书生·浦语) is a conversational language model that is developed by Shanghai AI Laboratory \
(上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n\
- InternLM (书生·浦语) can understand and communicate fluently in the language \
chosen by the user such as English and 中文.";

const ALPACA_SYSTEM: &str = "Below is an instruction that describes a task. \
Write a response that appropriately completes the request.\n\n";

const QWEN_SYSTEM: &str = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

const IM_USER: &str = "<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n";
const IM_SYSTEM: &str = "<|im_start|>system\n{{content}}<|im_end|>\n";
const IM_ASSISTANT: &str = "{{content}}<|im_end|>\n";

/// The built-in template names.
pub const TEMPLATE_NAMES: &[&str] = &[
    "default",
    "empty",
    "alpaca",
    "intern2",
    "intern2_v08",
    "qwen",
    "chatml",
    "llama3",
];

impl Template {
    fn base(name: &'static str) -> Self {
        // register_template's defaults: user/system `{{content}}`, assistant `{{content}}` + EOS.
        Self {
            name,
            prefix: vec![],
            system: vec![Text("{{content}}")],
            user: vec![Text("{{content}}")],
            assistant: vec![Text("{{content}}"), Eos],
            separator: vec![],
            default_system: String::new(),
            efficient_eos: false,
            bos_token: Some("<s>"),
            eos_token: Some("</s>"),
            stop_words: &[],
            replace_eos: false,
        }
    }

    /// A built-in template by name (see [`TEMPLATE_NAMES`]).
    pub fn builtin(name: &str) -> Result<Self> {
        let t = match name {
            "default" => Self {
                user: vec![Text("Human: {{content}}"), Eos, Text("\nAssistant:")],
                assistant: vec![Text("{{content}}"), Eos, Text("\n")],
                system: vec![Text("System: {{content}}"), Eos, Text("\n")],
                ..Self::base("default")
            },
            "empty" => Self {
                assistant: vec![Text("{{content}}")],
                ..Self::base("empty")
            },
            "alpaca" => Self {
                user: vec![Text("### Instruction:\n{{content}}\n\n### Response:\n")],
                assistant: vec![Text("{{content}}"), Eos, Text("\n\n")],
                default_system: ALPACA_SYSTEM.into(),
                ..Self::base("alpaca")
            },
            "intern2" => Self {
                prefix: vec![Bos],
                user: vec![Text(IM_USER)],
                assistant: vec![Text(IM_ASSISTANT)],
                system: vec![Text(IM_SYSTEM)],
                default_system: INTERNLM_SYSTEM.into(),
                stop_words: &["<|im_end|>"],
                ..Self::base("intern2")
            },
            "intern2_v08" => Self {
                prefix: vec![Bos],
                user: vec![Text(IM_USER)],
                assistant: vec![Text("{{content}}")],
                system: vec![Text(IM_SYSTEM)],
                separator: vec![Text("<|im_end|>\n")],
                efficient_eos: true,
                stop_words: &["<|im_end|>"],
                ..Self::base("intern2_v08")
            },
            "qwen" | "chatml" => Self {
                user: vec![Text(IM_USER)],
                assistant: vec![Text(IM_ASSISTANT)],
                system: vec![Text(IM_SYSTEM)],
                default_system: if name == "qwen" {
                    QWEN_SYSTEM.into()
                } else {
                    String::new()
                },
                bos_token: None,
                eos_token: Some("<|im_end|>"),
                stop_words: if name == "qwen" {
                    &["<|im_end|>"]
                } else {
                    &["<|im_end|>", "<|im_start|>"]
                },
                replace_eos: true,
                ..Self::base(if name == "qwen" { "qwen" } else { "chatml" })
            },
            "llama3" => Self {
                prefix: vec![Bos],
                user: vec![Text(
                    "<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|>\
                     <|start_header_id|>assistant<|end_header_id|>\n\n",
                )],
                assistant: vec![Text("{{content}}<|eot_id|>")],
                system: vec![Text(
                    "<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>",
                )],
                bos_token: Some("<|begin_of_text|>"),
                eos_token: Some("<|eot_id|>"),
                stop_words: &["<|eot_id|>", "<|eom_id|>"],
                ..Self::base("llama3")
            },
            other => {
                return Err(Error::config(format!(
                    "unknown template '{other}': expected one of {}",
                    TEMPLATE_NAMES.join(", ")
                )))
            }
        };
        Ok(t)
    }

    /// Every element of every slot.
    fn elements(&self) -> impl Iterator<Item = &Element> {
        [
            &self.prefix,
            &self.system,
            &self.user,
            &self.assistant,
            &self.separator,
        ]
        .into_iter()
        .flatten()
    }

    /// Whether `word` appears in the literal text of a slot (so the template cannot be
    /// rendered faithfully by a tokenizer that lacks it as a token).
    pub fn writes(&self, word: &str) -> bool {
        self.elements()
            .any(|e| matches!(e, Text(t) if t.contains(word)))
    }

    /// Whether any slot uses BOS / EOS.
    pub fn uses(&self, which: &Element) -> bool {
        self.elements().any(|e| e == which) || (self.efficient_eos && *which == Eos)
    }

    /// The elements of message `i` (0-based; even = user, odd = assistant) of a conversation
    /// whose effective system prompt is `system` (empty = none), as `Template._encode` builds
    /// them: turn 0 gets the prefix and the system slot.
    pub fn message_elements<'a>(
        &'a self,
        i: usize,
        system: &str,
    ) -> impl Iterator<Item = (&'a Element, Slot)> + 'a {
        let first = i == 0;
        let has_system = first && !system.is_empty();
        let sep = i > 0 && i.is_multiple_of(2);
        let body = if i.is_multiple_of(2) {
            &self.user
        } else {
            &self.assistant
        };
        let prefix = if first { &self.prefix[..] } else { &[] };
        let system_slot = if has_system { &self.system[..] } else { &[] };
        let separator = if sep { &self.separator[..] } else { &[] };
        prefix
            .iter()
            .map(|e| (e, Slot::Fixed))
            .chain(system_slot.iter().map(|e| (e, Slot::System)))
            .chain(separator.iter().map(|e| (e, Slot::Fixed)))
            .chain(body.iter().map(|e| (e, Slot::Message)))
    }
}

/// What `{{content}}` stands for in an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// No content (prefix, separator).
    Fixed,
    /// The system prompt.
    System,
    /// The message itself.
    Message,
}

/// Fills `{{content}}` of a text element (all occurrences, as `str.replace` does).
pub fn fill(text: &str, content: &str) -> String {
    text.replace("{{content}}", content)
}

/// A conversation ready to render: `messages` alternate user, assistant, ..., ending with an
/// assistant turn. `system` is the record's own system prompt (`None` = the template's default).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conversation {
    pub system: Option<String>,
    pub messages: Vec<String>,
}

/// Why a record cannot be turned into a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrenderable {
    pub field: String,
    pub kind: DataErrorKind,
    pub reason: String,
}

fn bad(field: &str, kind: DataErrorKind, reason: impl Into<String>) -> Unrenderable {
    Unrenderable {
        field: field.into(),
        kind,
        reason: reason.into(),
    }
}

fn opt_str(record: &Record, field: &str) -> Result<Option<String>, Unrenderable> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(field, DataErrorKind::FieldType, "expected a string")),
    }
}

const MESSAGE_FIELDS: &[&str] = &["messages", "conversations", "conversation"];

/// The conversation of a record. Alpaca style (`instruction`, optional `input`, `output`,
/// optional `history` of [user, assistant] pairs and `system`): the user turn is
/// `instruction + "\n" + input` (just the non-empty one when the other is empty), as
/// LLaMA-Factory's `AlpacaDatasetConverter` joins them. Messages style (`messages`,
/// `conversations` or `conversation`: a list of `{role, content}` or `{from, value}`, roles
/// user/human, assistant/gpt, and an optional leading system message): turns must alternate
/// and end with the assistant.
pub fn conversation(record: &Record) -> Result<Conversation, Unrenderable> {
    if let Some(field) = MESSAGE_FIELDS.iter().find(|f| record.contains_key(**f)) {
        if !record.contains_key("output") {
            return messages_conversation(record, field);
        }
    }
    let output = match record.get("output") {
        None | Some(Value::Null) => {
            return Err(bad(
                "output",
                DataErrorKind::MissingField,
                "missing 'output' (and no messages/conversations field)",
            ))
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad("output", DataErrorKind::FieldType, "expected a string")),
    };
    let instruction = opt_str(record, "instruction")?.ok_or_else(|| {
        bad(
            "instruction",
            DataErrorKind::MissingField,
            "missing 'instruction'",
        )
    })?;
    let input = opt_str(record, "input")?.unwrap_or_default();
    let system = opt_str(record, "system")?;
    let mut messages = Vec::new();
    match record.get("history") {
        None | Some(Value::Null) => {}
        Some(Value::Array(pairs)) => {
            for pair in pairs {
                match pair.as_array().map(Vec::as_slice) {
                    Some([Value::String(q), Value::String(a)]) => {
                        messages.push(q.clone());
                        messages.push(a.clone());
                    }
                    _ => {
                        return Err(bad(
                            "history",
                            DataErrorKind::FieldType,
                            "expected a list of [user, assistant] string pairs",
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(bad(
                "history",
                DataErrorKind::FieldType,
                "expected a list of [user, assistant] string pairs",
            ))
        }
    }
    let query = match (instruction.is_empty(), input.is_empty()) {
        (false, false) => format!("{instruction}\n{input}"),
        (false, true) => instruction,
        (true, _) => input,
    };
    messages.push(query);
    messages.push(output);
    Ok(Conversation { system, messages })
}

fn messages_conversation(record: &Record, field: &str) -> Result<Conversation, Unrenderable> {
    let Some(list) = record.get(field).and_then(Value::as_array) else {
        return Err(bad(
            field,
            DataErrorKind::FieldType,
            "expected a list of messages",
        ));
    };
    let mut system = opt_str(record, "system")?;
    let mut messages = Vec::with_capacity(list.len());
    for (k, m) in list.iter().enumerate() {
        let role = m
            .get("role")
            .or_else(|| m.get("from"))
            .and_then(Value::as_str);
        let content = m.get("content").or_else(|| m.get("value"));
        let (Some(role), Some(Value::String(content))) = (role, content) else {
            return Err(bad(
                field,
                DataErrorKind::FieldType,
                format!("message {k}: expected role/content (or from/value) strings"),
            ));
        };
        let want_user = messages.len() % 2 == 0;
        match role {
            "system" if k == 0 => system = Some(content.clone()),
            "user" | "human" if want_user => messages.push(content.clone()),
            "assistant" | "gpt" if !want_user => messages.push(content.clone()),
            other => {
                return Err(bad(
                    field,
                    DataErrorKind::FieldType,
                    format!(
                        "message {k}: role '{other}' out of order (expected {})",
                        if want_user { "user" } else { "assistant" }
                    ),
                ))
            }
        }
    }
    if messages.is_empty() || messages.len() % 2 != 0 {
        return Err(bad(
            field,
            DataErrorKind::FieldType,
            "a conversation needs user/assistant turns ending with the assistant",
        ));
    }
    Ok(Conversation { system, messages })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Record {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn alpaca_joins_instruction_and_input_and_keeps_history() {
        let c = conversation(&rec(json!({
            "instruction": "头痛", "input": "三天了", "output": "多休息",
            "history": [["q1", "a1"]], "system": "你是医生"
        })))
        .unwrap();
        assert_eq!(c.messages, ["q1", "a1", "头痛\n三天了", "多休息"]);
        assert_eq!(c.system.as_deref(), Some("你是医生"));
        let c = conversation(&rec(
            json!({"instruction": "", "input": "x", "output": "y"}),
        ));
        assert_eq!(c.unwrap().messages, ["x", "y"]);
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let e = conversation(&rec(json!({"instruction": "a"}))).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.kind),
            ("output", DataErrorKind::MissingField)
        );
        let e = conversation(&rec(json!({"output": "a"}))).unwrap_err();
        assert_eq!(e.field, "instruction");
        let e = conversation(&rec(json!({"instruction": ["a"], "output": "b"}))).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.kind),
            ("instruction", DataErrorKind::FieldType)
        );
        let e = conversation(&rec(
            json!({"instruction": "a", "output": "b", "history": [["x"]]}),
        ))
        .unwrap_err();
        assert_eq!(e.field, "history");
    }

    #[test]
    fn messages_styles_alternate_and_end_with_assistant() {
        let c = conversation(&rec(json!({"conversation": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}
        ]})))
        .unwrap();
        assert_eq!((c.system.as_deref(), c.messages.len()), (Some("s"), 2));
        let c = conversation(&rec(json!({"conversations": [
            {"from": "human", "value": "u"}, {"from": "gpt", "value": "a"}
        ]})));
        assert_eq!(c.unwrap().messages, ["u", "a"]);
        let bad_order = json!({"messages": [{"role": "assistant", "content": "a"}]});
        assert!(conversation(&rec(bad_order)).is_err());
        let ends_user = json!({"messages": [{"role": "user", "content": "u"}]});
        assert!(conversation(&rec(ends_user)).is_err());
    }

    #[test]
    fn intern2_turn_zero_has_bos_and_system_later_turns_do_not() {
        let t = Template::builtin("intern2").unwrap();
        let first: Vec<_> = t.message_elements(0, "S").collect();
        assert_eq!(first[0], (&Bos, Slot::Fixed));
        assert_eq!(first[1], (&Text(IM_SYSTEM), Slot::System));
        assert_eq!(first[2], (&Text(IM_USER), Slot::Message));
        assert_eq!(t.message_elements(2, "S").count(), 1);
        assert_eq!(
            t.message_elements(0, "").count(),
            2,
            "no system slot when empty"
        );
        let v08 = Template::builtin("intern2_v08").unwrap();
        let third: Vec<_> = v08.message_elements(2, "").collect();
        assert_eq!(third[0], (&Text("<|im_end|>\n"), Slot::Fixed));
        assert!(v08.uses(&Eos) && v08.default_system.is_empty());
        assert!(Template::builtin("nope").is_err());
        for name in TEMPLATE_NAMES {
            assert_eq!(Template::builtin(name).unwrap().name, *name);
        }
    }

    #[test]
    fn fill_replaces_content() {
        assert_eq!(
            fill(IM_USER, "你好"),
            "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
