//! The one error type of the Rust core.
//!
//! Every data error carries where it happened: the file, the 1-based line (when the format has
//! lines), the 0-based record index, and the field when one is involved. The Python layer maps
//! the variants onto `csft_data.ParseError` / `ConfigError` / `OSError` in `rust/python/errors.rs`;
//! nothing here knows about Python.

use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of bad input a [`DataError`] reports. Stable names: they appear in quarantine
/// files and in `ParseError.kind` on the Python side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataErrorKind {
    /// A byte sequence that is not valid in the file's text encoding.
    Decode,
    /// A JSON value that does not parse, or a JSONL line that is not a JSON object.
    Json,
    /// A CSV row that does not parse, or has the wrong number of fields.
    Csv,
    /// A compressed stream that is truncated or corrupt.
    Compression,
    /// A Parquet file that cannot be read.
    Parquet,
    /// A record without a field that the caller declared required.
    MissingField,
    /// A field whose value has the wrong type (e.g. a number where text is needed).
    FieldType,
    /// A well-typed value that cannot be used (an answer letter naming no option, an empty
    /// required text, a block without its answer line).
    Value,
}

impl DataErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decode => "decode",
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Compression => "compression",
            Self::Parquet => "parquet",
            Self::MissingField => "missing_field",
            Self::FieldType => "field_type",
            Self::Value => "value",
        }
    }
}

/// A located data error: which file, line, record and field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    pub path: PathBuf,
    /// 1-based line where the record starts, when the format is line-based.
    pub line: Option<u64>,
    /// 0-based index of the record in the file (counting rejected records too).
    pub record: Option<u64>,
    pub field: Option<String>,
    pub kind: DataErrorKind,
    pub reason: String,
}

impl DataError {
    pub fn new(path: impl AsRef<Path>, kind: DataErrorKind, reason: impl Into<String>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            line: None,
            record: None,
            field: None,
            kind,
            reason: reason.into(),
        }
    }

    #[must_use]
    pub fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    #[must_use]
    pub fn at_record(mut self, record: u64) -> Self {
        self.record = Some(record);
        self
    }

    #[must_use]
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let mut parts = Vec::new();
        if let Some(record) = self.record {
            parts.push(format!("record {record}"));
        }
        if let Some(field) = &self.field {
            parts.push(format!("field '{field}'"));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        write!(f, ": {}", self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file itself cannot be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Bad input data, located.
    #[error("{0}")]
    Data(Box<DataError>),
    /// A bad option or argument (unknown config name, invalid parameter).
    #[error("{0}")]
    Config(String),
    /// The caller asked to stop (a progress report returned this); nothing was published.
    #[error("interrupted")]
    Interrupted,
}

/// A progress report: (stage name, units done, units total), after each batch. Returning an
/// error (e.g. [`Error::Interrupted`]) stops the work, which returns that error.
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, u64) -> Result<()>;

impl From<DataError> for Error {
    fn from(e: DataError) -> Self {
        Error::Data(Box::new(e))
    }
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_record_and_field() {
        let e = DataError::new(
            "a/b.csv",
            DataErrorKind::MissingField,
            "missing required field",
        )
        .at_line(12)
        .at_record(10)
        .in_field("answer");
        assert_eq!(
            e.to_string(),
            "a/b.csv:12 (record 10, field 'answer'): missing required field"
        );
    }
}
