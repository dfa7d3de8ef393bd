//! Which BOS and EOS tokens a tokenizer folder configures, read the way `transformers` loads
//! them, so that templates put the same ids where LLaMA-Factory does: `bos_token`/`eos_token`
//! from `tokenizer_config.json`, overridden by `special_tokens_map.json`, a value being a token
//! string, an `AddedToken` object (`{"content": ...}`) or `null` (none); a key neither file has
//! takes the default of the `tokenizer_class` the config names (`Qwen2Tokenizer`: no BOS and
//! `<|endoftext|>`; `LlamaTokenizer`: `<s>` and `</s>`; ...) and else none.
//!
//! A `tokenizer.json` with neither file beside it has no configuration: the caller then falls
//! back to the template's usual token names (see `count.rs`). Nothing here decides what a
//! template does with these tokens.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// The configured BOS / EOS token names of a tokenizer folder (`None`: the tokenizer has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos: Option<String>,
    pub eos: Option<String>,
    /// The files they were read from (for messages and reports).
    pub files: Vec<PathBuf>,
}

const CONFIG: &str = "tokenizer_config.json";
const MAP: &str = "special_tokens_map.json";

/// `(class, default BOS, default EOS)` of the tokenizer classes model folders commonly name.
const CLASS_DEFAULTS: &[(&str, Option<&str>, Option<&str>)] = &[
    ("Qwen2Tokenizer", None, Some("<|endoftext|>")),
    ("LlamaTokenizer", Some("<s>"), Some("</s>")),
    ("CodeLlamaTokenizer", Some("<s>"), Some("</s>")),
    ("GemmaTokenizer", Some("<bos>"), Some("<eos>")),
    (
        "GPT2Tokenizer",
        Some("<|endoftext|>"),
        Some("<|endoftext|>"),
    ),
];

/// The special tokens configured next to `tokenizer_json`, or `None` when the folder has neither
/// `tokenizer_config.json` nor `special_tokens_map.json`. A file that is not a JSON object, or
/// a token value of another type, is a config error naming the file and key.
pub fn configured(tokenizer_json: &Path) -> Result<Option<SpecialTokens>> {
    let dir = tokenizer_json.parent().unwrap_or(Path::new("."));
    let config = read_object(&dir.join(CONFIG))?;
    let map = read_object(&dir.join(MAP))?;
    if config.is_none() && map.is_none() {
        return Ok(None);
    }
    let class = config
        .as_ref()
        .and_then(|(_, c)| c.get("tokenizer_class"))
        .and_then(Value::as_str)
        .map(|c| c.trim_end_matches("Fast"));
    let defaults = CLASS_DEFAULTS
        .iter()
        .find(|(name, ..)| Some(*name) == class);
    let token = |key: &str, default: Option<&str>| -> Result<Option<String>> {
        for (path, obj) in [&map, &config].into_iter().flatten() {
            if let Some(v) = obj.get(key) {
                return token_name(v).ok_or_else(|| {
                    Error::config(format!(
                        "{}: '{key}' must be a token string, {{\"content\": ...}} or null",
                        path.display()
                    ))
                });
            }
        }
        Ok(default.map(str::to_owned))
    };
    Ok(Some(SpecialTokens {
        bos: token("bos_token", defaults.and_then(|d| d.1))?,
        eos: token("eos_token", defaults.and_then(|d| d.2))?,
        files: [&config, &map]
            .into_iter()
            .flatten()
            .map(|(p, _)| p.clone())
            .collect(),
    }))
}

type JsonFile = (PathBuf, serde_json::Map<String, Value>);

fn read_object(path: &Path) -> Result<Option<JsonFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(obj)) => Ok(Some((path.to_path_buf(), obj))),
        Ok(_) => Err(Error::config(format!(
            "{}: expected a JSON object",
            path.display()
        ))),
        Err(e) => Err(Error::config(format!(
            "{}: invalid JSON: {e}",
            path.display()
        ))),
    }
}

/// `"<s>"` → `<s>`, `{"content": "<s>", ...}` → `<s>`, `null` → none; else `None` (invalid).
fn token_name(v: &Value) -> Option<Option<String>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        Value::Object(o) => match o.get("content") {
            Some(Value::String(s)) => Some(Some(s.clone())),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(config: Option<&str>, map: Option<&str>) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let tok = dir.path().join("tokenizer.json");
        std::fs::write(&tok, "{}").unwrap();
        if let Some(c) = config {
            std::fs::write(dir.path().join(CONFIG), c).unwrap();
        }
        if let Some(m) = map {
            std::fs::write(dir.path().join(MAP), m).unwrap();
        }
        (dir, tok)
    }

    fn names(config: Option<&str>, map: Option<&str>) -> Option<(Option<String>, Option<String>)> {
        let (_d, tok) = folder(config, map);
        configured(&tok).unwrap().map(|s| (s.bos, s.eos))
    }

    fn some(b: Option<&str>, e: Option<&str>) -> Option<(Option<String>, Option<String>)> {
        Some((b.map(Into::into), e.map(Into::into)))
    }

    #[test]
    fn read_as_transformers_loads_them() {
        // The cases were checked against AutoTokenizer (transformers 5.6 and 5.25).
        assert_eq!(names(None, None), None);
        let plain = r#"{"bos_token": "<s>", "eos_token": "</s>"}"#;
        assert_eq!(names(Some(plain), None), some(Some("<s>"), Some("</s>")));
        let qwen = r#"{"bos_token": null, "eos_token": "<|im_end|>"}"#;
        assert_eq!(names(Some(qwen), None), some(None, Some("<|im_end|>")));
        assert_eq!(
            names(Some("{}"), Some(plain)),
            some(Some("<s>"), Some("</s>"))
        );
        // special_tokens_map.json wins over tokenizer_config.json.
        assert_eq!(
            names(Some(plain), Some(r#"{"eos_token": "<|im_end|>"}"#)),
            some(Some("<s>"), Some("<|im_end|>"))
        );
        let added = r#"{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>"}"#;
        assert_eq!(names(Some(added), None), some(Some("<s>"), Some("</s>")));
        // Keys neither file has: the tokenizer class's defaults, else none.
        let q2 = r#"{"tokenizer_class": "Qwen2TokenizerFast"}"#;
        assert_eq!(names(Some(q2), None), some(None, Some("<|endoftext|>")));
        let fast = r#"{"tokenizer_class": "PreTrainedTokenizerFast"}"#;
        assert_eq!(names(Some(fast), None), some(None, None));
    }

    #[test]
    fn bad_files_name_the_file_and_key() {
        let (_d, tok) = folder(Some(r#"{"eos_token": 5}"#), None);
        let e = configured(&tok).unwrap_err().to_string();
        assert!(
            e.contains("tokenizer_config.json") && e.contains("'eos_token'"),
            "{e}"
        );
        let (_d, tok) = folder(Some("[1]"), None);
        let e = configured(&tok).unwrap_err().to_string();
        assert!(e.contains("expected a JSON object"), "{e}");
    }
}
