//! The PyO3 binding layer, compiled only with the `python` feature: the module
//! `csft_data._core`. It copies inputs into Rust, releases the GIL for the work (long work
//! through `progress.rs`: progress callbacks, Ctrl-C and callback exceptions), and maps
//! [`crate::Error`] to Python exceptions (`errors.rs`). No logic lives here.

mod adapters;
mod arrow;
mod decontam;
mod dedup;
mod errors;
mod io;
mod lengths;
mod normalize;
mod pretrain;
mod progress;
mod rouge;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", crate::VERSION)?;
    errors::register(m)?;
    m.add_class::<io::PyRecordReader>()?;
    m.add_class::<io::PyRecordBatch>()?;
    m.add_class::<io::PyJsonlWriter>()?;
    m.add_class::<arrow::PyArrowStream>()?;
    m.add_function(wrap_pyfunction!(arrow::read_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(io::partition_jsonl, m)?)?;
    m.add_class::<normalize::PyNormalizer>()?;
    m.add_function(wrap_pyfunction!(normalize::convert, m)?)?;
    m.add_function(wrap_pyfunction!(normalize::opencc_configs, m)?)?;
    m.add_function(wrap_pyfunction!(dedup::minhash_signatures, m)?)?;
    m.add_function(wrap_pyfunction!(dedup::band_keys, m)?)?;
    m.add_function(wrap_pyfunction!(dedup::lsh_params, m)?)?;
    m.add_function(wrap_pyfunction!(dedup::dedup_files, m)?)?;
    m.add_function(wrap_pyfunction!(dedup::link_job, m)?)?;
    m.add_function(wrap_pyfunction!(dedup::group_files, m)?)?;
    m.add_function(wrap_pyfunction!(decontam::decontaminate_files, m)?)?;
    m.add_class::<lengths::PyTokenCounter>()?;
    m.add_function(wrap_pyfunction!(lengths::template_names, m)?)?;
    m.add_function(wrap_pyfunction!(lengths::template_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(lengths::token_lengths, m)?)?;
    m.add_function(wrap_pyfunction!(lengths::encode_supervised, m)?)?;
    m.add_function(wrap_pyfunction!(lengths::encode_pairwise, m)?)?;
    m.add_function(wrap_pyfunction!(adapters::adapters, m)?)?;
    m.add_function(wrap_pyfunction!(adapters::adapt, m)?)?;
    m.add_function(wrap_pyfunction!(pretrain::text_documents, m)?)?;
    m.add_function(wrap_pyfunction!(pretrain::render_documents, m)?)?;
    m.add_function(wrap_pyfunction!(pretrain::dedup_paragraphs, m)?)?;
    m.add_function(wrap_pyfunction!(pretrain::quality_labels, m)?)?;
    m.add_function(wrap_pyfunction!(pretrain::quality_reasons, m)?)?;
    m.add_function(wrap_pyfunction!(pretrain::tokenize_documents, m)?)?;
    m.add_function(wrap_pyfunction!(pretrain::pack_documents, m)?)?;
    m.add_function(wrap_pyfunction!(rouge::rouge_l, m)?)?;
    m.add_function(wrap_pyfunction!(rouge::rouge_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(rouge::render_prompt, m)?)?;
    Ok(())
}
