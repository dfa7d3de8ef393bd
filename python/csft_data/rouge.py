"""ROUGE-L of model outputs against references, and SF-Med's pairwise win/tie/loss.

The scores are computed in the Rust core (``rust/rouge.rs``, in parallel, GIL released).
Tokens: each CJK character is a token (character-level ROUGE for Chinese, no segmentation);
other runs of letters/digits are one lowercased token each; whitespace, punctuation and symbols
only separate tokens. The score is the sentence-level ROUGE-L: LCS-based precision, recall and
F-measure with β = 1 (``rouge-score``'s ``rougeL``); an empty side scores 0.

SF-Med (Tables 3 and 5) compares two models on the same questions by their per-item ROUGE-L
against the reference: model A *wins* an item when its F-measure is higher than B's by more
than ``margin``, *loses* when lower by more than ``margin``, and *ties* otherwise; the table
cells read ``win/tie/loss`` as shares of the items.

Files are JSON, JSON Lines, CSV or Parquet (gz/zst ok), read by the Rust reader. Records are
matched by ``id`` when every record of both files has one, else by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from csft_data import _core
from csft_data._core import ConfigError, RecordReader

#: Fields tried, in order, for the text of a prediction / a reference record.
PREDICTION_FIELDS = ("output", "prediction", "response", "model_output", "text")
REFERENCE_FIELDS = ("reference", "output", "answer", "response", "text")


@dataclass(frozen=True)
class RougeScores:
    """Per-item ROUGE-L: ``precision``, ``recall``, ``fmeasure`` (float64) and ``lcs``
    (uint32, LCS length in tokens), all of the length of the inputs."""

    precision: npt.NDArray[np.float64]
    recall: npt.NDArray[np.float64]
    fmeasure: npt.NDArray[np.float64]
    lcs: npt.NDArray[np.uint32]

    def __len__(self) -> int:
        return len(self.fmeasure)

    def mean(self) -> dict[str, float]:
        """Mean precision, recall and F-measure (0 for no items)."""
        if len(self) == 0:
            return {"precision": 0.0, "recall": 0.0, "fmeasure": 0.0}
        return {
            "precision": float(self.precision.mean()),
            "recall": float(self.recall.mean()),
            "fmeasure": float(self.fmeasure.mean()),
        }


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> RougeScores:
    """ROUGE-L of each prediction against the reference at the same index."""
    p, r, f, lcs = _core.rouge_l(list(predictions), list(references))
    return RougeScores(
        precision=np.frombuffer(p, dtype="<f8").astype(np.float64, copy=False),
        recall=np.frombuffer(r, dtype="<f8").astype(np.float64, copy=False),
        fmeasure=np.frombuffer(f, dtype="<f8").astype(np.float64, copy=False),
        lcs=np.frombuffer(lcs, dtype="<u4").astype(np.uint32, copy=False),
    )


def rouge_tokens(text: str) -> list[str]:
    """The tokens ROUGE-L compares for ``text`` (see the module comment)."""
    return _core.rouge_tokens(text)


@dataclass(frozen=True)
class WinTieLoss:
    """Items where A's F-measure beats B's by more than ``margin`` (win), falls below by more
    than ``margin`` (loss), or neither (tie)."""

    win: int
    tie: int
    loss: int
    margin: float

    @property
    def items(self) -> int:
        return self.win + self.tie + self.loss

    def rates(self) -> tuple[float, float, float]:
        n = self.items
        if n == 0:
            return (0.0, 0.0, 0.0)
        return (self.win / n, self.tie / n, self.loss / n)

    def cell(self) -> str:
        """SF-Med's table cell: ``win/tie/loss`` shares with three decimals."""
        return "/".join(f"{x:.3f}" for x in self.rates())

    def to_json(self) -> dict[str, Any]:
        w, t, lo = self.rates()
        return {
            "win": self.win,
            "tie": self.tie,
            "loss": self.loss,
            "items": self.items,
            "margin": self.margin,
            "win_rate": w,
            "tie_rate": t,
            "loss_rate": lo,
            "cell": self.cell(),
        }


def win_tie_loss(
    a: npt.ArrayLike | RougeScores, b: npt.ArrayLike | RougeScores, *, margin: float = 0.0
) -> WinTieLoss:
    """Pairwise comparison of per-item scores ``a`` and ``b`` (F-measures, or
    :class:`RougeScores`) of two systems on the same items."""
    if margin < 0:
        raise ConfigError(f"margin must be ≥ 0, got {margin}")
    fa = np.asarray(a.fmeasure if isinstance(a, RougeScores) else a, dtype=np.float64)
    fb = np.asarray(b.fmeasure if isinstance(b, RougeScores) else b, dtype=np.float64)
    if fa.shape != fb.shape:
        raise ConfigError(f"the two systems have {fa.size} and {fb.size} items: need the same")
    diff = fa - fb
    win = int((diff > margin).sum())
    loss = int((diff < -margin).sum())
    return WinTieLoss(win=win, tie=int(diff.size) - win - loss, loss=loss, margin=margin)


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """All records of a file (JSON array, JSONL, CSV, Parquet; compressed ok)."""
    out: list[dict[str, Any]] = []
    for batch in RecordReader(Path(path)):
        out.extend(batch.to_dicts())
    return out


def _text(record: dict[str, Any], fields: Sequence[str], path: Path, n: int) -> str:
    for f in fields:
        v = record.get(f)
        if v is not None:
            if not isinstance(v, str):
                raise ConfigError(f"{path}: record {n} field {f!r} is not text: {v!r:.60}")
            return v
    raise ConfigError(f"{path}: record {n} has none of the text fields {', '.join(fields)}")


def load_texts(
    path: str | Path, fields: Sequence[str] | str = PREDICTION_FIELDS
) -> tuple[list[Any] | None, list[str]]:
    """(ids, texts) of a file: the text of each record is its first present field of
    ``fields``; ``ids`` is ``None`` unless every record has an ``id``."""
    path = Path(path)
    names = (fields,) if isinstance(fields, str) else tuple(fields)
    records = load_records(path)
    texts = [_text(r, names, path, n) for n, r in enumerate(records)]
    if records and all("id" in r for r in records):
        ids = [r["id"] for r in records]
        seen: set[Any] = set()
        for n, i in enumerate(ids):
            if i in seen:
                raise ConfigError(f"{path}: record {n} repeats the id {i!r}")
            seen.add(i)
        return ids, texts
    return None, texts


def _align(
    ref_path: Path,
    ref_ids: list[Any] | None,
    refs: list[str],
    path: Path,
    ids: list[Any] | None,
    texts: list[str],
) -> tuple[list[str], int]:
    """``texts`` reordered to the references; references without a prediction get ``""``
    (scored 0) and are counted as missing."""
    if ref_ids is None or ids is None:
        if len(texts) != len(refs):
            raise ConfigError(
                f"{path} has {len(texts)} records and {ref_path} {len(refs)}; without an 'id' "
                "in every record they are matched by position and must be as many"
            )
        return texts, 0
    by_id = dict(zip(ids, texts, strict=True))
    known = set(ref_ids)
    for i in ids:
        if i not in known:
            raise ConfigError(f"{path}: the prediction id {i!r} has no reference in {ref_path}")
    aligned = [by_id.get(i, "") for i in ref_ids]
    return aligned, sum(i not in by_id for i in ref_ids)


@dataclass(frozen=True)
class RougeReport:
    """ROUGE-L of a predictions file (and optionally a second one) against references."""

    ids: list[Any]
    scores: RougeScores
    missing: int
    against: RougeScores | None = None
    against_missing: int = 0
    pairwise: WinTieLoss | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "items": len(self.scores),
            "missing": self.missing,
            "rouge_l": self.scores.mean(),
        }
        if self.against is not None and self.pairwise is not None:
            out["against"] = {"rouge_l": self.against.mean(), "missing": self.against_missing}
            out["win_tie_loss"] = self.pairwise.to_json()
        return out

    def table(self) -> str:
        m = self.scores.mean()
        lines = [
            f"items {len(self.scores):,}  (no prediction: {self.missing:,}, scored 0)",
            f"ROUGE-L  P {m['precision']:.4f}  R {m['recall']:.4f}  F {m['fmeasure']:.4f}",
        ]
        if self.against is not None and self.pairwise is not None:
            a = self.against.mean()
            w = self.pairwise
            lines += [
                f"against  P {a['precision']:.4f}  R {a['recall']:.4f}  F {a['fmeasure']:.4f}"
                f"  (no prediction: {self.against_missing:,})",
                f"win/tie/loss {w.cell()}  ({w.win:,}/{w.tie:,}/{w.loss:,}, margin {w.margin:g})",
            ]
        return "\n".join(lines)


def rouge_files(
    predictions: str | Path,
    references: str | Path,
    *,
    against: str | Path | None = None,
    margin: float = 0.0,
    prediction_fields: Sequence[str] | str = PREDICTION_FIELDS,
    reference_fields: Sequence[str] | str = REFERENCE_FIELDS,
) -> RougeReport:
    """ROUGE-L of ``predictions`` against ``references`` and, with ``against`` (a second
    system's predictions on the same items), SF-Med's win/tie/loss of the first over it."""
    ref_path = Path(references)
    ref_ids, refs = load_texts(ref_path, reference_fields)
    p_path = Path(predictions)
    p_ids, p_texts = load_texts(p_path, prediction_fields)
    aligned, missing = _align(ref_path, ref_ids, refs, p_path, p_ids, p_texts)
    scores = rouge_l(aligned, refs)
    ids: list[Any] = ref_ids if ref_ids is not None else list(range(len(refs)))
    if against is None:
        return RougeReport(ids=ids, scores=scores, missing=missing)
    b_path = Path(against)
    b_ids, b_texts = load_texts(b_path, prediction_fields)
    b_aligned, b_missing = _align(ref_path, ref_ids, refs, b_path, b_ids, b_texts)
    b_scores = rouge_l(b_aligned, refs)
    return RougeReport(
        ids=ids,
        scores=scores,
        missing=missing,
        against=b_scores,
        against_missing=b_missing,
        pairwise=win_tie_loss(scores, b_scores, margin=margin),
    )
