"""The exact fast BPE path (``rust/lengths/bpe.rs``) against the Python ``tokenizers`` package,
token id for token id, on every real text of ``../shared/data`` and on texts made to reach its
edges (spaces, newlines, digits, NFC/NFKC, unknown characters, byte fallback, added tokens),
for each tokenizer shape chat models ship (GPT-2, Qwen2, Llama 3, Metaspace, Llama 2). The
same tokenizer with ``fast=False`` (every text through the ``tokenizers`` crate) must agree
too; a shape the fast path does not reproduce must say so (``fast`` False) and still count
right."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

tokenizers = pytest.importorskip("tokenizers")

import csft_data as cd  # noqa: E402
from _tokenizer_common import SHAPES, tokenizer_shape  # noqa: E402

EDGES = [
    "",
    " ",
    "  ",
    "\n",
    " \n\n  \t x  ",
    "a  b   c",
    "▁already▁spaced ▁ ▁▁",
    "Hello,  world!\n\n\tTabs and 123,456.78 numbers; don't STOP, I'LL go. They've 1234567",
    "😀 emoji ① ＡＢＣ ﹏ 𠀀 𪚥 \u0378 \U0010fffd",
    "e\u0301 café cafe\u0301 Å Å ﬁ ㈱",  # NFC: combined and decomposed forms
    "<|im_start|>user\n头痛<|im_end|>\n<|im_start|>assistant\n",
    "<s>前后</s> x",
    "前<|endoftext|>后",
    "患者男，45岁。主诉：胸痛3天，加重1小时。查体：BP 150/95mmHg，HR 102次/分。",
    "’s ‘quoted’ «guillemets» — dash… …",
    "x" * 3000,
    " \n \n x",
    "a \t\tb  \t c\t\t",
    "x\r\n\r\n  y\r\n",
    "  \u3000 x\u3000\u3000y \u00a0z\u2028w",
    "line one.\n\n   - item  two\n\t\tthree   ",
    "1234567 12 3 ٣٤٥ Ⅻ ½",
    "。" * 500 + "\n" * 200,
]


@pytest.fixture(scope="module")
def texts(real_texts: list[str]) -> list[str]:
    return real_texts + EDGES


@pytest.fixture(scope="module", params=SHAPES)
def shaped(
    request: pytest.FixtureRequest, real_texts: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return tokenizer_shape(real_texts, tmp_path_factory.mktemp("shapes"), request.param)


def hf_ids(path: Path, texts: list[str]) -> list[list[int]]:
    tok = tokenizers.Tokenizer.from_file(str(path))
    return [tok.encode(t, add_special_tokens=False).ids if t else [] for t in texts]


def first_mismatches(got: list[list[int]], want: list[list[int]], texts: list[str]) -> list[Any]:
    return [(t[:40], g[:12], w[:12]) for t, g, w in zip(texts, got, want, strict=True) if g != w][
        :5
    ]


def test_fast_path_ids_equal_hf_tokenizers(shaped: Path, texts: list[str]) -> None:
    fast = cd.TokenCounter(shaped)
    assert fast.fast, f"{shaped.name}: the fast path should serve this shape"
    reference = cd.TokenCounter(shaped, fast=False)
    assert not reference.fast
    want = hf_ids(shaped, texts)
    got = fast.encode(texts)
    assert not first_mismatches(got, want, texts)
    assert not first_mismatches(reference.encode(texts), want, texts)
    counts = cd.count_tokens(fast, texts).tolist()
    assert counts == [len(w) for w in want]
    assert sum(counts) > 100_000


def test_llama2_shape_falls_back_to_bytes_and_fuses_unknowns(
    real_texts: list[str], tmp_path: Path
) -> None:
    """Byte fallback gives the ``<0xXX>`` ids of a character outside the vocabulary; without
    the byte tokens, a run of unknown characters is one ``<unk>`` (``fuse_unk``)."""
    path = tokenizer_shape(real_texts, tmp_path, "llama2")
    text = "头痛𪚥𪚥x"
    ids = cd.TokenCounter(path).encode([text])[0]
    vocab = json.loads(path.read_text("utf-8"))["model"]["vocab"]
    byte_ids = {vocab[f"<0x{b:02X}>"] for b in "𪚥".encode()}
    assert byte_ids <= set(ids) and ids == hf_ids(path, [text])[0]
    tok = json.loads(path.read_text("utf-8"))
    for b in range(256):
        del tok["model"]["vocab"][f"<0x{b:02X}>"]
    no_bytes = tmp_path / "no_bytes.json"
    no_bytes.write_text(json.dumps(tok, ensure_ascii=False), "utf-8")
    got = cd.TokenCounter(no_bytes).encode([text])[0]
    assert got.count(vocab["<unk>"]) == 1 and got == hf_ids(no_bytes, [text])[0]


@pytest.mark.parametrize(
    "change",
    [
        lambda tok: tok.update(normalizer={"type": "Lowercase"}),
        lambda tok: tok["model"].update(dropout=0.1),
        lambda tok: tok.update(
            pre_tokenizer={"type": "Whitespace"},
        ),
    ],
    ids=["lowercase-normalizer", "dropout", "whitespace-pre-tokenizer"],
)
def test_other_shapes_are_declined_and_still_counted(
    change: Any, real_texts: list[str], tmp_path: Path
) -> None:
    tok = json.loads(tokenizer_shape(real_texts, tmp_path, "gpt2").read_text("utf-8"))
    change(tok)
    path = tmp_path / "other.json"
    path.write_text(json.dumps(tok, ensure_ascii=False), "utf-8")
    counter = cd.TokenCounter(path)
    assert not counter.fast
    if tok["model"].get("dropout"):
        return  # dropout samples: no fixed ids to compare
    sample = real_texts[:300] + EDGES
    assert counter.encode(sample) == hf_ids(path, sample)
