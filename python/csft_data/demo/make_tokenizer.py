"""Regenerates the demo tokenizer (``tokenizer/``), the one the demo recipe's ``[lengths]`` stage
counts with: a byte-level BPE of :data:`VOCAB_SIZE` tokens trained on the three demo excerpts
(adapted to Alpaca records and converted t2s, as the build sees them), with Qwen2's
pre-tokenizer and the special tokens of the ``qwen`` chat template, in a folder laid out like a
Qwen model's (``tokenizer.json`` + ``tokenizer_config.json``), so ``transformers`` loads it as
it is. The same inputs give a byte-identical ``tokenizer.json``.

Run it (needs the ``tokenizers`` package, a dev dependency) after changing the demo corpus::

    python -m csft_data.demo.make_tokenizer            # rewrites python/csft_data/demo/tokenizer/
    python -m csft_data.demo.make_tokenizer -o DIR     # somewhere else
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from csft_data.demo import DEMO_ADAPTERS, DEMO_DIR, demo_paths

VOCAB_SIZE = 3000

#: Qwen2's ids 151643-151645, here 0-2: the ``qwen`` template's EOS (``<|im_end|>``), its turn
#: opener and the pad / document end token.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

#: Qwen2's pre-tokenizer split (letters in runs, digits one by one, punctuation, newlines).
QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Qwen2.5's chat template without the tool branches: the ``qwen`` template of the build.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. "
    "You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (message['role'] == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

TOKENIZER_CONFIG: dict[str, Any] = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "bos_token": None,
    "eos_token": "<|im_end|>",
    "pad_token": "<|endoftext|>",
    "unk_token": None,
    "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
    "add_prefix_space": False,
    "clean_up_tokenization_spaces": False,
    "split_special_tokens": False,
    "model_max_length": 32768,
    "chat_template": CHAT_TEMPLATE,
}


def demo_texts() -> list[str]:
    """Every distinct text of the demo excerpts (instruction, input, output and history turns
    of their Alpaca records after t2s conversion), in file and record order."""
    from csft_data.adapters import convert
    from csft_data.normalize import normalize_file

    texts: dict[str, None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in demo_paths():
            adapted = Path(tmp) / f"{path.stem}.adapted.jsonl"
            normalized = Path(tmp) / f"{path.stem}.jsonl"
            convert(DEMO_ADAPTERS[path.name], [path], adapted)
            normalize_file(adapted, normalized, convert="t2s")
            with normalized.open(encoding="utf-8") as f:
                for line in f:
                    r = json.loads(line)
                    turns = [t for pair in r.get("history") or [] for t in pair]
                    for t in [*turns, r["instruction"], r["input"], r["output"]]:
                        if t:
                            texts[t] = None
    return list(texts)


def make_tokenizer(out_dir: str | Path, vocab_size: int = VOCAB_SIZE) -> Path:
    """Trains the demo tokenizer into ``out_dir``; returns its ``tokenizer.json``."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(demo_texts(), trainer)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"), pretty=False)
    # Trailing newline and key order fixed: the folder is byte-identical run after run.
    raw = (out / "tokenizer.json").read_text(encoding="utf-8")
    (out / "tokenizer.json").write_text(raw.rstrip("\n") + "\n", encoding="utf-8")
    (out / "tokenizer_config.json").write_text(
        json.dumps(TOKENIZER_CONFIG, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return out / "tokenizer.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("-o", "--output", type=Path, default=DEMO_DIR / "tokenizer")
    p.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    args = p.parse_args(argv)
    path = make_tokenizer(args.output, args.vocab_size)
    print(f"{path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
