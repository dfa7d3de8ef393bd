"""csft-data: build medical SFT corpora fast and correctly.

The Rust core (``csft_data._core``) streams records out of JSONL/JSON/CSV/Parquet files (gzip or
zstd, UTF-8 or GBK), converts simplified/traditional Chinese exactly as OpenCC does and cleans
text; this package orchestrates it and hands results to polars.
"""

from csft_data._core import (
    ConfigError,
    CsftDataError,
    JsonlWriter,
    Normalizer,
    ParseError,
    RecordBatch,
    RecordReader,
    TokenCounter,
    __version__,
    convert,
    opencc_configs,
    render_prompt,
)
from csft_data.cmb import extract_choice, score_files
from csft_data.config_file import load_toml
from csft_data.decontam import decontaminate
from csft_data.dedup import MinHashSignatures, band_keys, dedup_files, lsh_params, minhash
from csft_data.diversifier import diversify
from csft_data.io import read, read_arrow, read_batches
from csft_data.lengths import (
    EncodedPairs,
    EncodedSupervised,
    count_tokens,
    encode_pairwise,
    encode_supervised,
    template_names,
    template_tokens,
    token_lengths,
)
from csft_data.normalize import NormalizeSummary, normalize_file
from csft_data.pipeline.outputs import alpaca_features
from csft_data.rouge import RougeScores, WinTieLoss, rouge_files, rouge_l, win_tie_loss

__all__ = [
    "ConfigError",
    "CsftDataError",
    "EncodedPairs",
    "EncodedSupervised",
    "JsonlWriter",
    "MinHashSignatures",
    "NormalizeSummary",
    "Normalizer",
    "ParseError",
    "RecordBatch",
    "RecordReader",
    "RougeScores",
    "TokenCounter",
    "WinTieLoss",
    "__version__",
    "alpaca_features",
    "band_keys",
    "convert",
    "count_tokens",
    "decontaminate",
    "dedup_files",
    "diversify",
    "encode_pairwise",
    "encode_supervised",
    "extract_choice",
    "load_toml",
    "lsh_params",
    "minhash",
    "normalize_file",
    "opencc_configs",
    "read",
    "read_arrow",
    "read_batches",
    "render_prompt",
    "rouge_files",
    "rouge_l",
    "score_files",
    "template_names",
    "template_tokens",
    "token_lengths",
    "win_tie_loss",
]
