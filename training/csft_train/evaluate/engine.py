"""The torch side of evaluation: loading a local model, batched greedy generation and batched
next-token log-probabilities. torch/transformers are imported when these functions run.

Batches: prompts are tokenized once (no special tokens added: the chat template writes BOS
itself), sorted by length (longest first, so an out-of-memory batch shows at once) and cut
into batches of ``batch_size``; each batch is left-padded, with position ids counted from the
first real token, so padding changes nothing. Results come back in the input order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from csft_data import ConfigError
from csft_train import require_torch


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[
            dtype
        ]
    except KeyError:
        raise ConfigError(
            f"unknown dtype {dtype!r}: expected auto, bfloat16, float16, float32"
        ) from None


def load_model(path: str | Path, *, device: str = "auto", dtype: str = "auto") -> tuple[Any, Any]:
    """(model, tokenizer) from a local folder (never a hub name: no network), in eval mode,
    the tokenizer set to left padding."""
    require_torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder}: not a model folder (no config.json); give a local path")
    dev = resolve_device(device)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(
        folder, dtype=resolve_dtype(dtype, dev), local_files_only=True
    )
    model.to(dev)
    model.eval()
    prepare_tokenizer(tokenizer)
    rows = int(model.get_input_embeddings().weight.shape[0])
    if len(tokenizer) > rows:
        extra = [t for t, i in tokenizer.get_added_vocab().items() if i >= rows]
        raise ConfigError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model's embeddings "
            f"hold {rows}; tokens {extra} are not in the model (a tokenizer_config.json naming "
            "special tokens that tokenizer.json lacks?)"
        )
    return model, tokenizer


def prepare_tokenizer(tokenizer: Any) -> None:
    """Left padding, and a pad token (the EOS) when the tokenizer has none."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ConfigError("the tokenizer has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token


def encode(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    if not texts:
        return []
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [list(x) for x in ids]


def batches_by_length(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first; stable for ties)."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be ≥ 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for n, r in enumerate(rows):
        if r:
            ids[n, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            mask[n, width - len(r) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def _device_of(model: Any) -> Any:
    return next(model.parameters()).device


def _sync(device: Any) -> None:
    import torch

    if getattr(device, "type", "") == "cuda":
        torch.cuda.synchronize(device)


def letter_token_ids(tokenizer: Any, answer_prefix: str, letters: str) -> dict[str, int]:
    """The token id each option letter has when it follows ``answer_prefix`` (the end of the
    prompt), as lm-eval encodes a continuation: ``tok(prefix + L)`` minus ``tok(prefix)``.
    Tokenizers that write ``▁A`` or ``ĠA`` after some text and ``A`` elsewhere get the right
    form. Raises when a letter does not become exactly one new token after the prefix."""
    base = encode(tokenizer, [answer_prefix])[0] if answer_prefix else []
    out: dict[str, int] = {}
    for letter in letters:
        whole = encode(tokenizer, [answer_prefix + letter])[0]
        if whole[: len(base)] != base or len(whole) != len(base) + 1:
            raise ConfigError(
                f"after the answer prefix {answer_prefix!r} the letter {letter!r} is not one "
                f"token of its own ({base} → {whole}); choose another --answer-prefix"
            )
        out[letter] = whole[-1]
    return out


def next_token_logprobs(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    token_ids: Sequence[int],
    *,
    pad_id: int,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """For each prompt, the log-probabilities (over the whole vocabulary) of ``token_ids`` as
    the next token: one forward pass per batch, logits kept for the last position only."""
    import torch

    device = _device_of(model)
    wanted = torch.tensor(list(token_ids), dtype=torch.long, device=device)
    out: list[list[float]] = [[] for _ in prompt_ids]
    with torch.inference_mode():
        for batch in batches_by_length([len(p) for p in prompt_ids], batch_size):
            ids, mask, pos = _left_pad([prompt_ids[i] for i in batch], pad_id, device)
            try:
                logits = model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=pos,
                    use_cache=False,
                    logits_to_keep=1,
                ).logits
            except TypeError:  # a model class without logits_to_keep
                logits = model(
                    input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False
                ).logits
            last = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
            picked = last.index_select(1, wanted).cpu().tolist()
            for row, i in zip(picked, batch, strict=True):
                out[i] = row
            if progress is not None:
                progress(len(batch))
    return out


def stop_token_ids(tokenizer: Any, extra: Sequence[str] = ()) -> list[int]:
    """EOS and the template's end-of-turn tokens that the vocabulary has."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    for tok in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", *extra):
        tid = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid not in ids:
            ids.append(tid)
    return ids


def generate_greedy(
    model: Any,
    tokenizer: Any,
    prompt_ids: Sequence[Sequence[int]],
    *,
    max_new_tokens: int | Sequence[int],
    batch_size: int,
    stop_ids: Sequence[int] | None = None,
    progress: Callable[[int], None] | None = None,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
) -> list[list[int]]:
    """Greedy continuations (new token ids, stop token excluded) of each prompt, batched with
    left padding. ``max_new_tokens`` may differ per prompt (batches generate up to their
    largest and each row is cut to its own). ``temperature`` > 0 samples instead (nucleus
    ``top_p``), torch's generator seeded with ``seed`` plus the batch's number inside a forked
    RNG state (the caller's is left as it was): the same prompts, batch size and hardware give
    the same tokens."""
    import torch
    from transformers import GenerationConfig

    make_config: Any = GenerationConfig  # untyped in transformers
    device = _device_of(model)
    limits = (
        [int(max_new_tokens)] * len(prompt_ids)
        if isinstance(max_new_tokens, int)
        else [int(x) for x in max_new_tokens]
    )
    stops = list(stop_ids) if stop_ids is not None else stop_token_ids(tokenizer)
    pad_id = int(tokenizer.pad_token_id)
    out: list[list[int]] = [[] for _ in prompt_ids]
    sampling = {"temperature": temperature, "top_p": top_p} if temperature > 0 else {}
    devices = [device] if getattr(device, "type", "") == "cuda" else []
    with torch.inference_mode():
        batches = batches_by_length([len(p) for p in prompt_ids], batch_size)
        for number, batch in enumerate(batches):
            ids, mask, _ = _left_pad([prompt_ids[i] for i in batch], pad_id, device)
            limit = max(limits[i] for i in batch)
            if limit <= 0:
                continue
            config = make_config(
                max_new_tokens=limit,
                do_sample=bool(sampling),
                num_beams=1,
                pad_token_id=pad_id,
                eos_token_id=stops or None,
                **sampling,
            )
            with torch.random.fork_rng(devices=devices, enabled=bool(sampling)):
                if sampling:
                    torch.manual_seed(seed + number)
                gen = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
            new = gen[:, ids.shape[1] :].cpu().tolist()
            for row, i in zip(new, batch, strict=True):
                kept: list[int] = []
                for t in row[: limits[i]]:
                    if t in stops:
                        break
                    kept.append(t)
                out[i] = kept
            if progress is not None:
                progress(len(batch))
    return out


@dataclass
class Timer:
    """Wall time of a block, with the device synchronised at both ends."""

    model: Any
    seconds: float = 0.0

    def __enter__(self) -> Timer:
        _sync(_device_of(self.model))
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        _sync(_device_of(self.model))
        self.seconds += time.perf_counter() - self._t0
