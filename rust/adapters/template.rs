//! Adapter templates as data: named strings with `{placeholder}`s, the defaults of each adapter
//! (CollectiveSFT's exact per-dataset strings where it has a converter) overridable per call.
//!
//! An override must name a template the adapter has and may only use that template's
//! placeholders, so a typo fails at configuration time rather than leaking `{typo}` into a
//! corpus. Text in braces that is not a known placeholder is kept as it is (`{` in medical text
//! is rare but legal). The `mapping` adapter's templates accept any placeholder: each names a
//! field of the input record.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// One default template: its name, text, and the placeholders it may use (`["*"]`: any).
#[derive(Debug, Clone, Copy)]
pub struct TemplateSpec {
    pub name: &'static str,
    pub text: &'static str,
    pub vars: &'static [&'static str],
}

/// Shorthand for the adapter tables.
pub const fn spec(
    name: &'static str,
    text: &'static str,
    vars: &'static [&'static str],
) -> TemplateSpec {
    TemplateSpec { name, text, vars }
}

/// The templates in force for one run: the adapter's defaults with the overrides applied.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    map: BTreeMap<String, String>,
}

/// The `{name}` placeholders of a template, in order.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_ident(&after[..close]) => {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
}

impl Templates {
    /// The defaults of `specs` with `overrides` (template name → text) applied.
    pub fn new(
        adapter: &str,
        specs: &[TemplateSpec],
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let mut map: BTreeMap<String, String> = specs
            .iter()
            .map(|s| (s.name.to_string(), s.text.to_string()))
            .collect();
        for (name, text) in overrides {
            let Some(spec) = specs.iter().find(|s| s.name == name) else {
                let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
                return Err(Error::config(format!(
                    "adapter '{adapter}' has no template '{name}'; its templates: {}",
                    names.join(", ")
                )));
            };
            if spec.vars != ["*"] {
                if let Some(bad) = placeholders(text)
                    .into_iter()
                    .find(|p| !spec.vars.contains(p))
                {
                    return Err(Error::config(format!(
                        "template '{name}' of adapter '{adapter}' uses {{{bad}}}; it may use: {}",
                        spec.vars
                            .iter()
                            .map(|v| format!("{{{v}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
            map.insert(name.clone(), text.clone());
        }
        Ok(Self { map })
    }

    /// The text of a template (empty when the adapter has none by that name).
    pub fn get(&self, name: &str) -> &str {
        self.map.get(name).map_or("", String::as_str)
    }

    /// Whether the run has a template of that name (the `mapping` adapter's optional ones).
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Renders a template with `vars`.
    pub fn render(&self, name: &str, vars: &[(&str, &str)]) -> String {
        render(self.get(name), |k| {
            vars.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
        })
    }
}

/// Replaces each `{name}` of `text` for which `lookup` has a value; keeps the rest as it is.
pub fn render<'a>(text: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_ident(&after[..close]) => {
                match lookup(&after[..close]) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[TemplateSpec] = &[spec("output", "答案是{answer}。", &["answer"])];

    #[test]
    fn render_fills_known_and_keeps_unknown() {
        assert_eq!(
            render("{a}+{b} {x y} {", |k| (k == "a").then_some("1")),
            "1+{b} {x y} {"
        );
        assert_eq!(placeholders("{a}{b}{ c}"), ["a", "b"]);
    }

    #[test]
    fn overrides_are_checked() {
        let none = BTreeMap::new();
        let t = Templates::new("cmb", SPECS, &none).unwrap();
        assert_eq!(t.render("output", &[("answer", "AB")]), "答案是AB。");
        let mut o = BTreeMap::new();
        o.insert("output".to_string(), "Answer: {answer}".to_string());
        let t = Templates::new("cmb", SPECS, &o).unwrap();
        assert_eq!(t.render("output", &[("answer", "C")]), "Answer: C");
        o.insert("output".to_string(), "{answr}".to_string());
        let e = Templates::new("cmb", SPECS, &o).unwrap_err().to_string();
        assert!(e.contains("{answr}") && e.contains("{answer}"), "{e}");
        let mut o = BTreeMap::new();
        o.insert("nope".to_string(), "x".to_string());
        assert!(Templates::new("cmb", SPECS, &o).is_err());
    }
}
