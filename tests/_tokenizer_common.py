"""Shared pieces of the tokenizer tests (not a test module): the real texts of ``../shared/data``
that tokenizers are trained on here, the trainer, the special tokens of the chat templates and
the templates' default system prompts. ``conftest.py`` turns them into the session fixtures
``real_texts`` and ``tokenizer_json``; nothing is downloaded."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

#: The special tokens of the chat templates (intern2, qwen, llama3, default) and the EOS names of
#: the model folders of ``test_llamafactory.py``. ``<s>`` and ``</s>`` are ids 0 and 1.
SPECIALS = [
    "<s>",
    "</s>",
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|endoftext|>",
]

#: The size of the shared tokenizer's vocabulary, special tokens included.
VOCAB = 1500

INTERN_SYSTEM = (
    "You are an AI assistant whose name is InternLM (书生·浦语).\n"
    "- InternLM (书生·浦语) is a conversational language model that is developed by Shanghai "
    "AI Laboratory (上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n"
    "- InternLM (书生·浦语) can understand and communicate fluently in the language chosen by "
    "the user such as English and 中文."
)
QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def real_texts(shared: Path) -> list[str]:
    """Chinese Q&A and dialogue (CMtMedQA, DISC-Med-SFT, the GBK toyhom CSV, CMExam) and English
    dialogue (MedDialog), in a stable order, plus the role words of the plain templates."""
    texts: list[str] = []
    for rec in json.loads((shared / "cmtmedqa" / "CMtMedQA_test.json").read_text("utf-8")):
        for key in ("instruction", "instruct", "output"):
            if isinstance(rec.get(key), str):
                texts.append(rec[key])
    for line in (shared / "disc_med_sft" / "test_examples.jsonl").read_text("utf-8").splitlines():
        texts.extend(t["content"] for t in json.loads(line)["conversation"])
    raw = (shared / "toyhom_cmdd" / "样例_内科5000-6000.csv").read_bytes().decode("gbk")
    for row in list(csv.DictReader(io.StringIO(raw)))[:1500]:
        texts.extend(v for k, v in row.items() if k in ("title", "ask", "answer") and v)
    raw = (shared / "cmexam" / "cmexam_val_part1.csv").read_text("utf-8")
    for row in list(csv.DictReader(io.StringIO(raw)))[:1500]:
        texts.extend(v for v in row.values() if v)
    english = (shared / "meddialog_covid" / "COVID-Dialogue-Dataset-English.txt").read_text("utf-8")
    texts.extend(line for line in english.splitlines()[:1500] if line.strip())
    texts.extend(["Human: System: Assistant: user assistant system"] * 20)
    return texts


def train_tokenizer(
    texts: list[str], path: Path, kind: str = "bytelevel", vocab: int = VOCAB
) -> Path:
    """A BPE tokenizer trained on ``texts``, saved as ``path`` (a ``tokenizer.json``):
    ``bytelevel`` (GPT-2/Qwen style, no unknown token) or ``metaspace`` (SentencePiece style,
    with ``<unk>``), the ``SPECIALS`` first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None if kind == "bytelevel" else "<unk>"))
    if kind == "bytelevel":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        specials = SPECIALS
    elif kind == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        alphabet = []
        specials = ["<unk>", *SPECIALS]
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


#: The pre-tokenizer regexes of Qwen2 and Llama 3 (their ``tokenizer.json`` ``Split`` patterns).
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Every tokenizer shape ``tokenizer_shape`` makes.
SHAPES = ["gpt2", "qwen2", "llama3", "metaspace", "llama2", "mistral"]


def tokenizer_shape(texts: list[str], folder: Path, shape: str) -> Path:
    """A ``tokenizer.json`` of one shape chat models ship, with a vocabulary trained on
    ``texts`` (``folder/<shape>.json``):

    - ``gpt2``: byte-level BPE, ``ByteLevel`` pre-tokenizer with its GPT-2 regex;
    - ``qwen2``: NFC normalizer, Qwen2's ``Split`` regex, then ``ByteLevel`` without its regex;
    - ``llama3``: Llama 3's ``Split`` regex, ``ByteLevel`` without regex, ``ignore_merges``;
    - ``metaspace``: SentencePiece-style BPE with a ``Metaspace`` pre-tokenizer and ``<unk>``;
    - ``llama2``: SentencePiece-style as Llama 2 / Mistral convert it: a ``Prepend("▁")`` +
      ``Replace(" ", "▁")`` normalizer, no pre-tokenizer, ``byte_fallback`` with the 256
      ``<0xXX>`` tokens and ``fuse_unk``;
    - ``mistral``: as Mistral v0.3 ships it: ``Metaspace`` with ``prepend_scheme = "first"``
      (only the text's first section, not one after a special token) and no split, byte
      fallback.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown tokenizer shape {shape!r}")
    folder.mkdir(parents=True, exist_ok=True)
    base = "bytelevel" if shape in ("gpt2", "qwen2", "llama3") else "metaspace"
    trained = folder / f"{base}-trained.json"
    if not trained.exists():
        train_tokenizer(texts, trained, kind=base)
    tok = json.loads(trained.read_text("utf-8"))
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True}
    if shape in ("qwen2", "llama3"):
        regex = QWEN2_PATTERN if shape == "qwen2" else LLAMA3_PATTERN
        split = {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated"}
        tok["pre_tokenizer"] = {
            "type": "Sequence",
            "pretokenizers": [{**split, "invert": False}, {**byte_level, "use_regex": False}],
        }
        if shape == "qwen2":
            tok["normalizer"] = {"type": "NFC"}
        else:
            tok["model"]["ignore_merges"] = True
    elif shape == "llama2":
        tok["normalizer"] = {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ],
        }
        tok["pre_tokenizer"] = None
    if shape == "mistral":
        tok["pre_tokenizer"] = {
            "type": "Metaspace",
            "replacement": "▁",
            "prepend_scheme": "first",
            "split": False,
        }
    if shape in ("llama2", "mistral"):
        model = tok["model"]
        model["byte_fallback"] = True
        model["fuse_unk"] = True
        next_id = max(model["vocab"].values()) + 1
        for b in range(256):
            model["vocab"].setdefault(f"<0x{b:02X}>", next_id + b)
    path = folder / f"{shape}.json"
    path.write_text(json.dumps(tok, ensure_ascii=False), "utf-8")
    return path
