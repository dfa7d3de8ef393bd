"""Training data: encode Alpaca / ranking files through the Rust encoder, plan batches, collate.

* :func:`load_sft` encodes every file of ``[data] train`` with :func:`csft_data.encode_supervised`
  (LLaMA-Factory's template and truncation, so the token lengths are those of the build's
  length report) and drops examples without a trained token.
* :func:`plan_batches` gives the micro-batches of one epoch, deterministic in (seed, epoch):
  length-grouped (shuffle, cut into mega-batches of 50 batches, sort each by token length, cut
  into batches, shuffle the batches: similar lengths together, little padding, the order still
  random) or plain shuffled; with packing, examples are first packed first-fit-decreasing into
  rows of ``cutoff_len`` tokens.
* :func:`collate_sft` pads to the longest row of the batch (labels with -100). Packed rows carry
  per-example ``position_ids`` restarting at 0 and no 2-D attention mask: transformers then builds
  a block-diagonal causal mask from the position ids (``masking_utils.find_packed_sequence_indices``
  for sdpa/eager; flash-attention uses the same ids as varlen boundaries), so packed examples do not
  attend to each other. The first label of every packed example is -100, so no example is trained to
  predict the next example's first token. Padding at the end of a packed row is one more segment.

Torch is imported inside the collators only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from csft_train.config import Config

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100


@dataclass
class SFTData:
    """Encoded examples: ``input_ids[k]``/``labels[k]`` are int64 arrays."""

    input_ids: list[npt.NDArray[np.int64]]
    labels: list[npt.NDArray[np.int64]]
    #: Examples dropped because no token was left to train on (prompt filled ``cutoff_len``).
    dropped_no_labels: int
    rejections: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        return np.array([len(x) for x in self.input_ids], dtype=np.int64)


def tokenizer_path(cfg: Config) -> Path:
    p = Path(cfg.model.tokenizer)
    if not p.is_file():
        raise FileNotFoundError(f"{cfg.source}: [model] tokenizer: no tokenizer.json at {p}")
    return p


def load_sft(cfg: Config) -> SFTData:
    """Encodes ``[data] train`` (see the module comment)."""
    import csft_data

    if not cfg.data.train:
        raise ValueError(f"{cfg.source}: [data] train lists no file")
    counter = csft_data.TokenCounter(tokenizer_path(cfg))
    ids: list[npt.NDArray[np.int64]] = []
    labels: list[npt.NDArray[np.int64]] = []
    dropped = 0
    rejections: list[dict[str, Any]] = []
    for path in cfg.data.train:
        enc = csft_data.encode_supervised(
            path,
            counter,
            template=cfg.model.template,
            cutoff_len=cfg.data.cutoff_len,
            mask_history=cfg.data.mask_history,
            train_on_prompt=cfg.data.train_on_prompt,
            system=cfg.model.system,
            bos_token=cfg.model.bos_token,
            eos_token=cfg.model.eos_token,
            on_error=cfg.data.on_error,
        )
        rejections.extend(enc.rejections)
        all_ids = enc.input_ids.astype(np.int64)
        all_labels = enc.labels.astype(np.int64)
        bounds = enc.offsets.astype(np.int64)
        for a, b in itertools.pairwise(bounds.tolist()):
            lab = all_labels[a:b]
            if not (lab[1:] != IGNORE_INDEX).any():
                dropped += 1
                continue
            ids.append(all_ids[a:b])
            labels.append(lab)
    if cfg.data.max_samples:
        ids, labels = ids[: cfg.data.max_samples], labels[: cfg.data.max_samples]
    if not ids:
        raise ValueError(f"{cfg.source}: [data] train: no example left to train on")
    return SFTData(ids, labels, dropped, rejections)


def pack_rows(lengths: npt.NDArray[np.int64], capacity: int) -> list[list[int]]:
    """First-fit-decreasing packing of examples into rows of at most ``capacity`` tokens
    (deterministic: ties by index)."""
    order = sorted(range(len(lengths)), key=lambda i: (-int(lengths[i]), i))
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = int(lengths[i])
        for r, room in enumerate(free):
            if n <= room:
                rows[r].append(i)
                free[r] -= n
                break
        else:
            rows.append([i])
            free.append(capacity - n)
    return rows


def plan_batches(
    lengths: npt.NDArray[np.int64],
    batch_size: int,
    seed: int,
    epoch: int,
    group_by_length: bool,
    packing_capacity: int = 0,
) -> list[list[list[int]]]:
    """The micro-batches of one epoch: each is a list of rows, each row a list of example
    indices (one index per row unless packing). Deterministic in (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    if packing_capacity:
        rows = pack_rows(lengths, packing_capacity)
        row_len = np.array([sum(int(lengths[i]) for i in r) for r in rows], dtype=np.int64)
    else:
        rows = [[i] for i in range(len(lengths))]
        row_len = lengths
    perm = rng.permutation(len(rows))
    if group_by_length:
        mega = batch_size * 50
        order: list[int] = []
        for s in range(0, len(perm), mega):
            chunk = perm[s : s + mega]
            order.extend(sorted(chunk.tolist(), key=lambda i: (-int(row_len[i]), i)))
        batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
        batch_perm = rng.permutation(len(batches))
        batches = [batches[b] for b in batch_perm]
    else:
        flat = perm.tolist()
        batches = [flat[s : s + batch_size] for s in range(0, len(flat), batch_size)]
    return [[rows[r] for r in batch] for batch in batches]


def trained_tokens(data: SFTData, batch: list[list[int]]) -> int:
    """Label tokens of a micro-batch that carry loss after the causal shift: an example's first
    label never does (position 0 of a row, or masked when packed)."""
    return sum(int((data.labels[i][1:] != IGNORE_INDEX).sum()) for row in batch for i in row)


def collate_sft(data: SFTData, batch: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Tensors of one micro-batch (see the module comment). Rows of one example: right
    padding plus a 2-D ``attention_mask``. Packed rows: ``position_ids`` and no mask."""
    import torch

    packed = any(len(row) > 1 for row in batch)
    width = max(sum(len(data.input_ids[i]) for i in row) for row in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    if not packed:
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, (i,) in enumerate(batch):
            n = len(data.input_ids[i])
            ids[r, :n] = torch.from_numpy(data.input_ids[i])
            labels[r, :n] = torch.from_numpy(data.labels[i])
            mask[r, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
    pos = torch.zeros((len(batch), width), dtype=torch.long)
    for r, row in enumerate(batch):
        at = 0
        for i in row:
            n = len(data.input_ids[i])
            ids[r, at : at + n] = torch.from_numpy(data.input_ids[i])
            labels[r, at : at + n] = torch.from_numpy(data.labels[i])
            labels[r, at] = IGNORE_INDEX
            pos[r, at : at + n] = torch.arange(n)
            at += n
        pos[r, at:] = torch.arange(width - at)
    return {"input_ids": ids, "labels": labels, "position_ids": pos}


# ---------------------------------------------------------------------------------------------
# DPO


@dataclass
class PairData:
    """Encoded preference pairs (prompt shared by chosen and rejected)."""

    prompt: list[npt.NDArray[np.int64]]
    chosen: list[npt.NDArray[np.int64]]
    rejected: list[npt.NDArray[np.int64]]
    rejections: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.prompt)

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        return np.array(
            [
                len(p) + max(len(c), len(r))
                for p, c, r in zip(self.prompt, self.chosen, self.rejected, strict=True)
            ],
            dtype=np.int64,
        )


def load_pairs(cfg: Config) -> PairData:
    """Encodes ``[dpo] train`` with :func:`csft_data.encode_pairwise`; pairs whose chosen or
    rejected completion kept no token are dropped."""
    import csft_data

    if not cfg.dpo.train:
        raise ValueError(f"{cfg.source}: [dpo] train lists no file")
    counter = csft_data.TokenCounter(tokenizer_path(cfg))
    out = PairData([], [], [], [])
    for path in cfg.dpo.train:
        enc = csft_data.encode_pairwise(
            path,
            counter,
            template=cfg.model.template,
            cutoff_len=cfg.data.cutoff_len,
            system=cfg.model.system,
            bos_token=cfg.model.bos_token,
            eos_token=cfg.model.eos_token,
            on_error=cfg.data.on_error,
        )
        out.rejections.extend(enc.rejections)
        for k in range(len(enc)):
            p, c, r = (x.astype(np.int64) for x in enc.pair(k))
            if len(c) and len(r) and len(p):
                out.prompt.append(p)
                out.chosen.append(c)
                out.rejected.append(r)
    if cfg.data.max_samples:
        n = cfg.data.max_samples
        out.prompt, out.chosen, out.rejected = out.prompt[:n], out.chosen[:n], out.rejected[:n]
    if not out.prompt:
        raise ValueError(f"{cfg.source}: [dpo] train: no pair left to train on")
    return out


def collate_pairs(data: PairData, batch: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    """Chosen rows then rejected rows in one batch (one concatenated forward), right padded;
    labels are the completion tokens (prompt and padding -100)."""
    import torch

    seqs = [(data.prompt[i], data.chosen[i]) for i in batch]
    seqs += [(data.prompt[i], data.rejected[i]) for i in batch]
    width = max(len(p) + len(c) for p, c in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, (p, c) in enumerate(seqs):
        n = len(p) + len(c)
        ids[r, : len(p)] = torch.from_numpy(p)
        ids[r, len(p) : n] = torch.from_numpy(c)
        labels[r, len(p) : n] = torch.from_numpy(c)
        mask[r, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
