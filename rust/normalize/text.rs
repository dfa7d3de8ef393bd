//! Text clean-up for SFT data: line endings, control characters, blank-line and trailing-space
//! whitespace, and an optional Unicode form (NFC, NFKC, or full-width → half-width folding).
//!
//! Each step is a switch in [`TextOptions`]; the defaults change nothing a reader would call
//! content: they unify line endings, drop invisible control characters and trim whitespace at
//! line ends. The Unicode form is off by default because NFKC and width folding turn Chinese
//! full-width punctuation (，？：) into ASCII, which changes how text looks to a model.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

/// Which Unicode folding to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnicodeForm {
    #[default]
    None,
    Nfc,
    Nfkc,
    /// Full-width ASCII variants (U+FF01–U+FF5E) → ASCII, ideographic space (U+3000) → space.
    Width,
}

impl UnicodeForm {
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Self::None),
            "nfc" => Ok(Self::Nfc),
            "nfkc" => Ok(Self::Nfkc),
            "width" => Ok(Self::Width),
            other => Err(Error::config(format!(
                "unknown unicode form '{other}': expected one of none, nfc, nfkc, width"
            ))),
        }
    }
}

/// Switches of the text normalizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextOptions {
    /// `\r\n` and lone `\r` → `\n`.
    pub newlines: bool,
    /// Drop control characters other than `\t` and `\n` (and `\r` when `newlines` is off), plus
    /// zero-width space U+200B and stray byte-order marks U+FEFF.
    pub control: bool,
    /// Trim the text's ends and each line's trailing spaces; squeeze runs of blank lines to one.
    pub whitespace: bool,
    pub unicode: UnicodeForm,
}

impl Default for TextOptions {
    fn default() -> Self {
        Self {
            newlines: true,
            control: true,
            whitespace: true,
            unicode: UnicodeForm::None,
        }
    }
}

fn is_dropped_control(c: char, keep_cr: bool) -> bool {
    match c {
        '\t' | '\n' => false,
        '\r' => !keep_cr,
        '\u{200B}' | '\u{FEFF}' => true,
        c => c.is_control(),
    }
}

/// Full-width ASCII forms (U+FF01..FF5E) to ASCII and the ideographic space to a space.
pub fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
        '\u{3000}' => ' ',
        c => c,
    }
}

/// Line endings and control characters in one pass; borrows when nothing changes.
fn clean_chars<'a>(text: &'a str, opts: &TextOptions) -> Cow<'a, str> {
    let needs = text.chars().any(|c| {
        (opts.newlines && c == '\r') || (opts.control && is_dropped_control(c, !opts.newlines))
    });
    if !needs {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if opts.newlines && c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else if opts.control && is_dropped_control(c, !opts.newlines) {
            continue;
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn apply_unicode(text: &str, form: UnicodeForm) -> Cow<'_, str> {
    match form {
        UnicodeForm::None => Cow::Borrowed(text),
        UnicodeForm::Nfc => {
            if unicode_normalization::is_nfc_quick(text.chars())
                == unicode_normalization::IsNormalized::Yes
            {
                Cow::Borrowed(text)
            } else {
                Cow::Owned(text.nfc().collect())
            }
        }
        UnicodeForm::Nfkc => {
            if unicode_normalization::is_nfkc_quick(text.chars())
                == unicode_normalization::IsNormalized::Yes
            {
                Cow::Borrowed(text)
            } else {
                Cow::Owned(text.nfkc().collect())
            }
        }
        UnicodeForm::Width => {
            if text.chars().any(|c| fold_width(c) != c) {
                Cow::Owned(text.chars().map(fold_width).collect())
            } else {
                Cow::Borrowed(text)
            }
        }
    }
}

fn is_hspace(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\u{3000}' || c == '\u{00A0}'
}

/// Trims the ends, trailing spaces of every line, and squeezes blank-line runs to one.
fn tidy_whitespace(text: &str) -> Cow<'_, str> {
    let trimmed = text.trim();
    let needs = trimmed.len() != text.len()
        || memchr::memmem::find(trimmed.as_bytes(), b"\n\n\n").is_some()
        || trimmed.split('\n').any(|l| {
            l.ends_with(is_hspace) || (l.trim_matches(is_hspace).is_empty() && !l.is_empty())
        });
    if !needs {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(trimmed.len());
    let mut blank_run = 0usize;
    for line in trimmed.split('\n') {
        let line = line.trim_end_matches(is_hspace);
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.pop();
    Cow::Owned(out)
}

/// Applies line-ending, control-character and Unicode steps (everything but whitespace).
pub fn clean_text<'a>(text: &'a str, opts: &TextOptions) -> Cow<'a, str> {
    match clean_chars(text, opts) {
        Cow::Borrowed(t) => apply_unicode(t, opts.unicode),
        Cow::Owned(t) => Cow::Owned(apply_unicode(&t, opts.unicode).into_owned()),
    }
}

/// Applies the whitespace step alone.
pub fn tidy_text<'a>(text: &'a str, opts: &TextOptions) -> Cow<'a, str> {
    if opts.whitespace {
        tidy_whitespace(text)
    } else {
        Cow::Borrowed(text)
    }
}

/// Applies every enabled step.
pub fn normalize_text<'a>(text: &'a str, opts: &TextOptions) -> Cow<'a, str> {
    match clean_text(text, opts) {
        Cow::Borrowed(t) => tidy_text(t, opts),
        Cow::Owned(t) => Cow::Owned(tidy_text(&t, opts).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize_text(s, &TextOptions::default()).into_owned()
    }

    #[test]
    fn line_endings_unified() {
        assert_eq!(norm("a\r\nb\rc\n"), "a\nb\nc");
    }

    #[test]
    fn controls_dropped_tabs_kept() {
        assert_eq!(norm("a\u{0007}b\tc\u{200B}d\u{FEFF}"), "ab\tcd");
    }

    #[test]
    fn whitespace_trimmed_and_blank_runs_squeezed() {
        assert_eq!(norm("  问题：  \n\n\n\n回答 \u{3000}\n"), "问题：\n\n回答");
        assert_eq!(norm("a  b"), "a  b", "inner spaces are content");
    }

    #[test]
    fn clean_text_borrows_when_unchanged() {
        assert!(matches!(
            normalize_text("高血压患者能吃党参吗？", &TextOptions::default()),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn unicode_forms() {
        let mut o = TextOptions::default();
        assert_eq!(
            normalize_text("ＡＢ，１２", &o),
            "ＡＢ，１２",
            "off by default"
        );
        o.unicode = UnicodeForm::Width;
        assert_eq!(normalize_text("ＡＢ，１２\u{3000}x", &o), "AB,12 x");
        o.unicode = UnicodeForm::Nfkc;
        assert_eq!(normalize_text("ﬁ①ＡＢ", &o), "fi1AB");
        o.unicode = UnicodeForm::Nfc;
        assert_eq!(normalize_text("e\u{0301}", &o), "é");
        assert!(UnicodeForm::parse("nfkd").is_err());
    }

    #[test]
    fn switches_off_change_nothing() {
        let o = TextOptions {
            newlines: false,
            control: false,
            whitespace: false,
            unicode: UnicodeForm::None,
        };
        let s = " a\r\n\u{0007}\n\n\n";
        assert_eq!(normalize_text(s, &o), s);
    }
}
