"""Shared pieces of the training tests: a byte-level BPE tokenizer trained here on real texts of
``../shared/data`` (with the special tokens of the chat templates), real Alpaca splits made by the
adapters, and tiny Qwen2 models (2 layers, hidden 64) built from a config. Nothing is downloaded."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

SPECIALS = [
    "<s>",
    "</s>",
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
]


def real_texts(shared: Path) -> list[str]:
    texts: list[str] = []
    raw = (shared / "cmexam" / "cmexam_val_part1.csv").read_text("utf-8")
    for row in list(csv.DictReader(io.StringIO(raw)))[:1500]:
        texts.extend(v for v in row.values() if v)
    for rec in json.loads((shared / "cmtmedqa" / "CMtMedQA_test.json").read_text("utf-8"))[:400]:
        for key in ("instruction", "output"):
            if isinstance(rec.get(key), str):
                texts.append(rec[key])
    texts.extend(["Human: System: Assistant: user assistant system"] * 20)
    return texts


def train_tokenizer(shared: Path, path: Path, vocab: int = 1500) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(real_texts(shared), trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def cmexam_split(shared: Path, out: Path, n: int = 0) -> Path:
    """The CMExam validation sample through the ``cmexam`` adapter (Alpaca JSONL)."""
    from csft_data import adapters

    adapters.convert("cmexam", [shared / "cmexam" / "cmexam_val_part1.csv"], out)
    if n:
        lines = out.read_text("utf-8").splitlines()[:n]
        out.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return out


def tiny_model(
    tokenizer_json: Path, folder: Path, seed: int = 0, dropout: float = 0.0, **kw: Any
) -> Path:
    import torch
    from tokenizers import Tokenizer
    from transformers import Qwen2Config, Qwen2ForCausalLM

    vocab = Tokenizer.from_file(str(tokenizer_json)).get_vocab_size(with_added_tokens=True)
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        attention_dropout=dropout,
        **kw,
    )
    Qwen2ForCausalLM(cfg).save_pretrained(str(folder))
    (folder / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    return folder


def write_config(path: Path, tables: dict[str, dict[str, Any]]) -> Path:
    from csft_train.config import dump_toml

    path.write_text(dump_toml(tables), encoding="utf-8")
    return path


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text("utf-8").splitlines()]
