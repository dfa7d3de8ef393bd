"""Shared pieces of the training tests (not a test module): real Alpaca splits made by the
adapters, tiny Qwen2 models (2 layers, hidden 64) built from a config around the session's
tokenizer (the ``tokenizer_json`` fixture of ``conftest.py``), training configs and metrics.
Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
