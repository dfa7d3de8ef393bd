//! Record normalization: OpenCC script conversion plus the text clean-up of [`text`], applied to
//! the string values of chosen fields (recursing into lists and objects, e.g. `history` or a
//! `conversation` list), in parallel over a batch. Field names (keys) are never changed, and
//! non-string values (numbers, booleans, null) pass through.

pub mod text;

use rayon::prelude::*;
use serde_json::Value;

pub use text::{normalize_text, TextOptions, UnicodeForm};

use crate::error::Result;
use crate::opencc::Converter;
use crate::record::{Record, RecordBatch};

/// What to normalize and how.
#[derive(Debug, Clone, Default)]
pub struct NormalizeConfig {
    /// OpenCC config name (`t2s`, `s2t`, …), or `None` for no script conversion.
    pub convert: Option<String>,
    pub text: TextOptions,
    /// Top-level fields to touch; `None` = every field.
    pub fields: Option<Vec<String>>,
    /// Fields that get `text.unicode` folding; `None` = all touched fields. Lets a user keep
    /// full-width punctuation in, say, `output` while folding `input`.
    pub unicode_fields: Option<Vec<String>>,
}

/// A ready-to-run normalizer (the converter is looked up once).
pub struct Normalizer {
    converter: Option<&'static Converter>,
    config: NormalizeConfig,
    no_unicode: TextOptions,
}

impl Normalizer {
    pub fn new(config: NormalizeConfig) -> Result<Self> {
        let converter = match &config.convert {
            Some(name) => Some(Converter::get(name)?),
            None => None,
        };
        let no_unicode = TextOptions {
            unicode: UnicodeForm::None,
            ..config.text
        };
        Ok(Self {
            converter,
            config,
            no_unicode,
        })
    }

    pub fn config(&self) -> &NormalizeConfig {
        &self.config
    }

    /// Normalizes one string with the options of `field`.
    pub fn text(&self, s: &str, field: Option<&str>) -> String {
        let opts = self.options_for(field);
        let cleaned = text::clean_text(s, opts);
        match self.converter {
            Some(conv) => {
                let converted = conv.convert(&cleaned);
                text::tidy_text(&converted, opts).into_owned()
            }
            None => text::tidy_text(&cleaned, opts).into_owned(),
        }
    }

    fn options_for(&self, field: Option<&str>) -> &TextOptions {
        match (&self.config.unicode_fields, field) {
            (Some(list), Some(f)) if !list.iter().any(|x| x == f) => &self.no_unicode,
            _ => &self.config.text,
        }
    }

    fn value(&self, v: &mut Value, field: &str) {
        match v {
            Value::String(s) => {
                let new = self.text(s, Some(field));
                if new != *s {
                    *s = new;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|x| self.value(x, field)),
            Value::Object(map) => map.values_mut().for_each(|x| self.value(x, field)),
            _ => {}
        }
    }

    /// Normalizes a record in place. Fields listed in the config but absent from the record are
    /// skipped here; requiring them is the reader's job (`ReaderOptions::required`).
    pub fn record(&self, record: &mut Record) {
        match &self.config.fields {
            Some(fields) => {
                for f in fields {
                    if let Some(v) = record.get_mut(f) {
                        self.value(v, f);
                    }
                }
            }
            None => {
                for (k, v) in record.iter_mut() {
                    self.value(v, k);
                }
            }
        }
    }

    /// Normalizes every record of a batch in parallel, in place.
    pub fn batch(&self, batch: &mut RecordBatch) {
        batch.records.par_iter_mut().for_each(|r| self.record(r));
    }

    /// Normalizes many strings in parallel (same options for all).
    pub fn texts(&self, texts: &[String]) -> Vec<String> {
        texts.par_iter().map(|t| self.text(t, None)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Record {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn only_chosen_fields_and_nested_strings() {
        let n = Normalizer::new(NormalizeConfig {
            fields: Some(vec!["history".into(), "output".into()]),
            ..Default::default()
        })
        .unwrap();
        let mut r =
            rec(json!({"id": " x ", "output": " a\r\n", "history": [[" q ", "a "]], "n": 3}));
        n.record(&mut r);
        assert_eq!(
            Value::Object(r),
            json!({"id": " x ", "output": "a", "history": [["q", "a"]], "n": 3})
        );
    }

    #[test]
    fn unicode_only_on_listed_fields() {
        let n = Normalizer::new(NormalizeConfig {
            text: TextOptions {
                unicode: UnicodeForm::Width,
                ..Default::default()
            },
            unicode_fields: Some(vec!["input".into()]),
            ..Default::default()
        })
        .unwrap();
        let mut r = rec(json!({"input": "ＡＢ，", "output": "好，"}));
        n.record(&mut r);
        assert_eq!(Value::Object(r), json!({"input": "AB,", "output": "好，"}));
    }

    #[test]
    fn unknown_convert_config_is_a_config_error() {
        let e = Normalizer::new(NormalizeConfig {
            convert: Some("x2y".into()),
            ..Default::default()
        });
        assert!(matches!(e, Err(crate::Error::Config(_))));
    }
}
