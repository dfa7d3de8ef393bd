//! The reader options as users spell them (`"jsonl"`, `"gbk"`, `"zstd"`, `"skip"`, a one-
//! character delimiter): parsed here, in the core, into [`Format`], [`Encoding`],
//! [`Compression`] and [`OnError`], with a [`Error::Config`] naming the accepted values, so that
//! every front end (the Python binding, the CLI) reports the same message.

use std::str::FromStr;

use super::{Compression, Encoding, Format, OnError};
use crate::error::{Error, Result};

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "json" => Ok(Format::Json),
            "csv" | "tsv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            other => Err(Error::config(format!(
                "unknown format '{other}': expected jsonl, json, csv or parquet"
            ))),
        }
    }
}

impl FromStr for Encoding {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "auto" => Ok(Encoding::Auto),
            "utf8" | "utf8sig" => Ok(Encoding::Utf8),
            "gbk" | "gb2312" | "gb18030" | "cp936" => Ok(Encoding::Gb18030),
            other => Err(Error::config(format!(
                "unknown encoding '{other}': expected auto, utf-8 or gbk (gb18030)"
            ))),
        }
    }
}

/// `"auto"` is `None` (detected from the name and magic bytes).
pub fn parse_compression(s: &str) -> Result<Option<Compression>> {
    match s.to_ascii_lowercase().as_str() {
        "auto" => Ok(None),
        "none" => Ok(Some(Compression::None)),
        "gzip" | "gz" => Ok(Some(Compression::Gzip)),
        "zstd" | "zst" => Ok(Some(Compression::Zstd)),
        other => Err(Error::config(format!(
            "unknown compression '{other}': expected auto, none, gzip or zstd"
        ))),
    }
}

impl FromStr for OnError {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "raise" => Ok(OnError::Raise),
            "skip" => Ok(OnError::Skip),
            other => Err(Error::config(format!(
                "unknown on_error '{other}': expected 'raise' or 'skip'"
            ))),
        }
    }
}

/// A CSV delimiter: exactly one ASCII character.
pub fn parse_delimiter(s: &str) -> Result<u8> {
    match s.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(Error::config(format!(
            "delimiter must be one ASCII character, got {s:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_strings_parse_or_name_the_accepted_values() {
        assert_eq!("NDJSON".parse::<Format>().unwrap(), Format::Jsonl);
        assert_eq!("utf-8-sig".parse::<Encoding>().unwrap(), Encoding::Utf8);
        assert_eq!("GB2312".parse::<Encoding>().unwrap(), Encoding::Gb18030);
        assert_eq!(parse_compression("zst").unwrap(), Some(Compression::Zstd));
        assert_eq!(parse_compression("auto").unwrap(), None);
        assert_eq!("skip".parse::<OnError>().unwrap(), OnError::Skip);
        assert_eq!(parse_delimiter("\t").unwrap(), b'\t');
        let e = "xml".parse::<Format>().unwrap_err().to_string();
        assert!(e.contains("'xml'") && e.contains("parquet"), "{e}");
        assert!("Skip".parse::<OnError>().is_err());
        assert!(parse_delimiter("||").is_err() && parse_delimiter("é").is_err());
    }
}
