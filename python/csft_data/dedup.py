"""MinHash-LSH stages as numpy arrays, for notebooks and distributed engines (Ray).

The stages are separable (signatures → band keys → buckets → pairs → clusters), so a distributed
run can compute signatures and band keys per batch with these functions and shuffle on the keys.
Everything runs in the Rust core with the GIL released. Same texts and seed → same arrays.
This module does not read or write files; the ``dedup`` command does that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from csft_data import _core

#: ``kinds`` codes: shingled normally / shorter than n (exact match only) / empty.
KIND_NORMAL, KIND_SHORT, KIND_EMPTY = 0, 1, 2


@dataclass(frozen=True)
class MinHashSignatures:
    """``signatures[i]`` is text i's signature (uint32, ``num_perm`` values); ``kinds[i]`` says
    whether it was shingled (0), too short for an n-gram (1, exact match only) or empty (2)."""

    signatures: npt.NDArray[np.uint32]
    kinds: npt.NDArray[np.uint8]

    @property
    def num_perm(self) -> int:
        return int(self.signatures.shape[1])

    def estimate(self, i: int, j: int) -> float:
        """Jaccard estimate of texts i and j (share of equal signature values)."""
        return float(np.mean(self.signatures[i] == self.signatures[j]))


def minhash(
    texts: Sequence[str],
    *,
    num_perm: int = 128,
    ngram: int = 5,
    word_ngram: int = 3,
    mode: str = "auto",
    seed: int = 1,
) -> MinHashSignatures:
    """MinHash signatures of many texts, in parallel.

    Shingles are character ``ngram``-grams for Chinese text and word ``word_ngram``-grams for
    Latin-script text (``mode="auto"`` decides per text; ``"char"``/``"word"`` force one).
    """
    values, kinds = _core.minhash_signatures(
        list(texts), num_perm=num_perm, ngram=ngram, word_ngram=word_ngram, mode=mode, seed=seed
    )
    sigs = np.frombuffer(values, dtype="<u4").reshape(len(kinds), num_perm)
    return MinHashSignatures(sigs.astype(np.uint32, copy=False), np.frombuffer(kinds, np.uint8))


def band_keys(signatures: npt.NDArray[np.uint32], bands: int, rows: int) -> npt.NDArray[np.uint64]:
    """One uint64 key per (text, band): texts sharing a key in any band are LSH candidates."""
    sig = np.ascontiguousarray(signatures, dtype="<u4")
    if sig.ndim != 2:
        raise _core.ConfigError(f"signatures must be a 2-D array, got shape {sig.shape}")
    raw = _core.band_keys(sig.tobytes(), sig.shape[1], bands, rows)
    return np.frombuffer(raw, dtype="<u8").reshape(sig.shape[0], bands).astype(np.uint64)


def lsh_params(
    threshold: float = 0.8,
    num_perm: int = 128,
    *,
    bands: int | None = None,
    rows: int | None = None,
    fp_weight: float | None = None,
    fn_weight: float | None = None,
) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive/false-negative probability at
    ``threshold`` (datasketch's ``_optimal_param``; csft-data's default weights are fp 0.1 /
    fn 0.9, favouring recall, since candidates are verified by true Jaccard). ``bands``/``rows``
    override."""
    return _core.lsh_params(
        threshold, num_perm, bands=bands, rows=rows, fp_weight=fp_weight, fn_weight=fn_weight
    )
