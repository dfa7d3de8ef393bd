"""Type stubs for the compiled module ``csft_data._core`` (the Rust core's Python binding)."""

from collections.abc import Callable, Sequence
from os import PathLike
from types import TracebackType
from typing import Any, Literal, final, overload

__version__: str
__all__ = [
    "ArrowStream",
    "ConfigError",
    "CsftDataError",
    "JsonlWriter",
    "Normalizer",
    "ParseError",
    "RecordBatch",
    "RecordReader",
    "TokenCounter",
    "__version__",
    "adapt",
    "adapters",
    "band_keys",
    "convert",
    "decontaminate_files",
    "dedup_files",
    "dedup_paragraphs",
    "encode_pairwise",
    "encode_supervised",
    "group_files",
    "link_job",
    "lsh_params",
    "minhash_signatures",
    "opencc_configs",
    "pack_documents",
    "partition_jsonl",
    "quality_labels",
    "quality_reasons",
    "read_arrow",
    "render_documents",
    "render_prompt",
    "rouge_l",
    "rouge_tokens",
    "template_names",
    "template_tokens",
    "text_documents",
    "token_lengths",
    "tokenize_documents",
]

class CsftDataError(Exception):
    """Base class of csft-data errors."""

class ParseError(CsftDataError):
    """Bad input data, located."""

    path: str
    line: int | None
    record: int | None
    field: str | None
    kind: str
    reason: str

class ConfigError(CsftDataError):
    """An invalid option or argument."""

@final
class RecordBatch:
    def __len__(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def num_rejected(self) -> int: ...
    @property
    def lines(self) -> list[int | None]: ...
    @property
    def indices(self) -> list[int]: ...
    def to_ndjson(self) -> bytes: ...
    def to_arrow(self) -> ArrowStream: ...
    def to_dicts(self) -> list[dict[str, Any]]: ...
    def rejections(self) -> list[dict[str, Any]]: ...

@final
class ArrowStream:
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    @property
    def num_rows(self) -> int: ...
    @property
    def num_batches(self) -> int: ...
    @property
    def columns(self) -> list[str]: ...
    def __len__(self) -> int: ...

def read_arrow(
    path: str | PathLike[str],
    *,
    format: str | None = None,
    encoding: str = "auto",
    compression: str = "auto",
    on_error: Literal["raise", "skip"] = "raise",
    required: list[str] | None = None,
    batch_size: int = 2048,
    delimiter: str | None = None,
) -> ArrowStream: ...

@final
class RecordReader:
    def __new__(
        cls,
        path: str | PathLike[str],
        *,
        format: str | None = None,
        encoding: str = "auto",
        compression: str = "auto",
        on_error: Literal["raise", "skip"] = "raise",
        required: list[str] | None = None,
        batch_size: int = 4096,
        delimiter: str | None = None,
    ) -> RecordReader: ...
    def __iter__(self) -> RecordReader: ...
    def __next__(self) -> RecordBatch: ...
    @property
    def path(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def encoding(self) -> str: ...
    @property
    def bytes_read(self) -> int: ...
    @property
    def total_bytes(self) -> int: ...
    @property
    def records(self) -> int: ...
    @property
    def rejected(self) -> int: ...

@final
class JsonlWriter:
    def __new__(cls, path: str | PathLike[str]) -> JsonlWriter: ...
    @property
    def path(self) -> str: ...
    @property
    def count(self) -> int: ...
    def write(self, batch: RecordBatch) -> None: ...
    def write_rejections(self, batch: RecordBatch) -> None: ...
    def commit(self) -> int: ...
    def abort(self) -> None: ...
    def __enter__(self) -> JsonlWriter: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

def partition_jsonl(
    inputs: Sequence[str | PathLike[str]],
    labels: bytes,
    outputs: Sequence[str | PathLike[str] | None],
    *,
    batch_size: int = 8192,
) -> list[int]: ...

@final
class Normalizer:
    def __new__(
        cls,
        *,
        convert: str | None = None,
        fields: list[str] | None = None,
        unicode: Literal["none", "nfc", "nfkc", "width"] | str = "none",
        unicode_fields: list[str] | None = None,
        newlines: bool = True,
        control: bool = True,
        whitespace: bool = True,
    ) -> Normalizer: ...
    def apply(self, batch: RecordBatch) -> None: ...
    def texts(self, texts: list[str]) -> list[str]: ...
    def text(self, text: str) -> str: ...

@overload
def convert(texts: str, config: str) -> str: ...
@overload
def convert(texts: list[str], config: str) -> list[str]: ...
def opencc_configs() -> list[str]: ...
def minhash_signatures(
    texts: list[str],
    *,
    num_perm: int = 128,
    ngram: int = 5,
    word_ngram: int = 3,
    mode: str = "auto",
    seed: int = 1,
    sketch: str = "minhash",
) -> tuple[bytes, bytes]: ...
def band_keys(signatures: bytes, num_perm: int, bands: int, rows: int) -> bytes: ...
def lsh_params(
    threshold: float = 0.8,
    num_perm: int = 128,
    *,
    bands: int | None = None,
    rows: int | None = None,
    verify: bool = True,
    fp_weight: float | None = None,
    fn_weight: float | None = None,
) -> tuple[int, int]: ...
def decontaminate_files(
    inputs: list[tuple[str | PathLike[str], str]],
    evals: Sequence[tuple[str | PathLike[str], list[str] | None]],
    output: str | PathLike[str] | None,
    *,
    report: str | PathLike[str] | None = None,
    quarantine: str | PathLike[str] | None = None,
    fields: list[str] | None = None,
    ngram: int = 8,
    threshold: float = 0.5,
    format: str | None = None,
    encoding: str = "auto",
    on_error: str = "raise",
    batch_size: int = 4096,
    eval_on_error: str = "raise",
    outputs: Sequence[str | PathLike[str]] | None = None,
) -> dict[str, Any]: ...
def group_files(
    inputs: list[PathLike[str] | str],
    *,
    fields: list[str],
    id_field: str | None = None,
    threshold: float | None = None,
    num_perm: int = 128,
    ngram: int = 5,
    word_ngram: int = 3,
    mode: str = "auto",
    seed: int = 1,
    sketch: str = "oph",
    format: str | None = None,
    encoding: str = "auto",
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[bytes, dict[str, Any]]: ...
def dedup_files(
    inputs: list[tuple[PathLike[str] | str, str]],
    output: PathLike[str] | str | None,
    *,
    clusters: PathLike[str] | str | None = None,
    quarantine: PathLike[str] | str | None = None,
    fields: list[str] | None = None,
    scope: str = "both",
    threshold: float = 0.8,
    num_perm: int = 128,
    ngram: int = 5,
    word_ngram: int = 3,
    mode: str = "auto",
    seed: int = 1,
    bands: int | None = None,
    rows: int | None = None,
    verify: bool = True,
    keep: str = "first",
    format: str | None = None,
    encoding: str = "auto",
    on_error: str = "raise",
    batch_size: int = 4096,
    progress: Callable[[str, int, int], None] | None = None,
    source_rank: list[int] | None = None,
    sketch: str = "oph",
    memory_limit: int | None = None,
    tmp_dir: PathLike[str] | str | None = None,
    sketches: Sequence[PathLike[str] | str] | None = None,
    sketch_out: PathLike[str] | str | None = None,
    link: Callable[[list[bytes]], Sequence[bytes]] | None = None,
    num_threads: int | None = None,
    outputs: Sequence[PathLike[str] | str] | None = None,
) -> dict[str, Any]: ...
def link_job(
    sketches: Sequence[PathLike[str] | str], job: bytes, *, num_threads: int | None = None
) -> bytes: ...

@final
class TokenCounter:
    def __new__(cls, path: str | PathLike[str], *, fast: bool = True) -> TokenCounter: ...
    @property
    def path(self) -> str: ...
    @property
    def fast(self) -> bool: ...
    @property
    def eos_token(self) -> str | None: ...
    def token_id(self, token: str) -> int | None: ...
    def count(self, texts: list[str]) -> bytes: ...
    def encode(self, texts: list[str]) -> list[list[int]]: ...

def template_names() -> list[str]: ...
def text_documents(
    files: Sequence[PathLike[str] | str],
    split: str,
    output: PathLike[str] | str,
    *,
    quarantine: PathLike[str] | str | None = None,
    on_error: str = "raise",
) -> dict[str, int]: ...
def render_documents(
    inputs: Sequence[PathLike[str] | str],
    output: PathLike[str] | str,
    *,
    text_field: str | None = None,
    style: str = "plain",
    quarantine: PathLike[str] | str | None = None,
    format: str | None = None,
    encoding: str = "auto",
    on_error: str = "raise",
    origin: str | None = None,
) -> dict[str, int]: ...
def quality_labels(
    input: PathLike[str] | str,
    *,
    field: str = "text",
    min_chars: int = 20,
    max_chars: int = 1000000,
    min_cjk_share: float = 0.0,
    max_repeated_lines: float = 0.3,
    max_repeated_line_chars: float = 0.2,
    ngram: int = 10,
    max_repeated_ngram_chars: float = 0.6,
    max_boilerplate_lines: float = 0.5,
    boilerplate: Sequence[str] | None = None,
    on_error: str = "raise",
) -> bytes: ...
def quality_reasons() -> list[tuple[int, str]]: ...
def dedup_paragraphs(
    inputs: Sequence[PathLike[str] | str],
    outputs: Sequence[PathLike[str] | str],
    *,
    field: str = "text",
    split: str = "line",
    min_chars: int = 10,
) -> list[dict[str, int]]: ...
def tokenize_documents(
    inputs: Sequence[PathLike[str] | str],
    tokenizer: TokenCounter,
    store: PathLike[str] | str,
    *,
    field: str = "text",
    progress: Callable[[str, int, int], None] | None = None,
    num_threads: int | None = None,
) -> bytes: ...
def pack_documents(
    store: PathLike[str] | str,
    counts: bytes,
    order: bytes,
    output_dir: PathLike[str] | str,
    *,
    seq_len: int,
    eos_id: int,
    pad_id: int,
    sequences_per_shard: int,
) -> dict[str, Any]: ...
def template_tokens(name: str) -> dict[str, Any]: ...
def token_lengths(
    inputs: list[tuple[PathLike[str] | str, str]],
    tokenizer: TokenCounter,
    *,
    template: str = "intern2",
    cutoffs: list[int] | None = None,
    system: str | None = None,
    bos_token: str | None = None,
    eos_token: str | None = None,
    buckets: PathLike[str] | str | None = None,
    quarantine: PathLike[str] | str | None = None,
    format: str | None = None,
    encoding: str = "auto",
    on_error: str = "raise",
    batch_size: int = 4096,
    progress: Callable[[str, int, int], None] | None = None,
    num_threads: int | None = None,
) -> dict[str, Any]: ...
def encode_supervised(
    tokenizer: TokenCounter,
    *,
    lines: list[str] | None = None,
    path: PathLike[str] | str | None = None,
    template: str = "intern2",
    cutoff_len: int = 1024,
    mask_history: bool = False,
    train_on_prompt: bool = False,
    system: str | None = None,
    bos_token: str | None = None,
    eos_token: str | None = None,
    format: str | None = None,
    encoding: str = "auto",
    on_error: str = "raise",
) -> dict[str, Any]: ...
def encode_pairwise(
    tokenizer: TokenCounter,
    *,
    lines: list[str] | None = None,
    path: PathLike[str] | str | None = None,
    template: str = "intern2",
    cutoff_len: int = 1024,
    system: str | None = None,
    bos_token: str | None = None,
    eos_token: str | None = None,
    format: str | None = None,
    encoding: str = "auto",
    on_error: str = "raise",
) -> dict[str, Any]: ...
def adapters() -> list[dict[str, Any]]: ...
def adapt(
    adapter_name: str,
    inputs: list[PathLike[str] | str],
    output: PathLike[str] | str,
    *,
    templates: dict[str, str] | None = None,
    per_conversation: bool = False,
    on_error: str = "raise",
    quarantine: PathLike[str] | str | None = None,
    mapping: dict[str, str] | None = None,
    batch_size: int = 4096,
    questions_only: bool = False,
) -> dict[str, Any]: ...
def rouge_l(predictions: list[str], references: list[str]) -> tuple[bytes, bytes, bytes, bytes]: ...
def rouge_tokens(text: str) -> list[str]: ...
def render_prompt(
    template: str,
    messages: list[str],
    *,
    system: str | None = None,
    bos_token: str | None = None,
    eos_token: str | None = None,
) -> str: ...
