//! csft-data's Rust core: streaming readers, Chinese script conversion and text normalization
//! for medical SFT corpora. It knows nothing of Python; `python` (behind the `python` feature)
//! is the one thin PyO3 layer over it.

pub mod adapters;
pub mod decontam;
pub mod dedup;
pub mod error;
pub mod io;
pub mod lengths;
pub mod normalize;
pub mod opencc;
pub mod pretrain;
pub mod record;
pub mod rouge;
pub mod sys;

#[cfg(feature = "python")]
mod python;

pub use error::{DataError, DataErrorKind, Error, Result};
pub use record::{Origin, Record, RecordBatch, Rejection};

/// The crate version, which is also the Python package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
