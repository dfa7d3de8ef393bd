"""Preference-data selection by preference strength (Wang et al. 2024, "Secrets of RLHF in Large
Language Models Part II", §2; as SF-Med applies it): ``csft-data train select-prefs``.

For pair i and reward model m, d_im = r_m(x, chosen) − r_m(x, rejected); the strength is the mean
μ_i = (1/M) Σ_m d_im and its spread σ_i = sqrt((1/M) Σ_m (d_im − μ_i)²) (population std, as the
paper). Pairs are ranked by μ (stable: ties keep file order): the lowest ``q_low`` share (default
10%, mostly μ < 0: the ensemble prefers the "rejected" answer) get chosen and rejected swapped,
the highest ``q_high`` share (default 10%: so easy that DPO overfits them) are dropped; the counts
are ``floor(q·N)``. Writes the selected records (JSONL, file order, everything else unchanged;
``annotate`` adds ``preference_mean``/``preference_std``), a stats JSON and a PNG histogram of μ
with the two cuts.

Scores come from a JSONL file, one line per pair (file order, or ``"index"``: the 0-based record
index), ``{"scores_chosen": [r_1..r_M], "scores_rejected": [r_1..r_M]}`` (the
``chosen_score_list``/``rejected_score_list`` names of ``fnlp/hh-rlhf-strength-cleaned`` are read
too), or from local reward models (``AutoModelForSequenceClassification`` folders with a
``tokenizer.json``; prompt + response encoded with the chat template, the score is logit 0 at the
position the model pools when it is given the sequence alone). Sequences are scored in batches
sorted by length and right-padded (see :func:`score_sequences` for why the scores equal the
one-at-a-time ones).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def strength(chosen: FloatArray, rejected: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(μ, σ) per pair from [N, M] score matrices (σ: population std over the M models)."""
    if chosen.shape != rejected.shape or chosen.ndim != 2 or chosen.shape[1] == 0:
        raise ValueError(
            f"scores must be two [pairs, models] matrices of one shape, got {chosen.shape} "
            f"and {rejected.shape}"
        )
    d = chosen - rejected
    return d.mean(axis=1), d.std(axis=1, ddof=0)


def select(
    mu: FloatArray, q_low: float = 0.1, q_high: float = 0.1
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(indices to swap, indices to drop): the ``floor(q_low·N)`` weakest and the
    ``floor(q_high·N)`` strongest pairs by μ (stable order)."""
    if not (0 <= q_low <= 1 and 0 <= q_high <= 1 and q_low + q_high <= 1):
        raise ValueError(f"q_low={q_low}, q_high={q_high}: need 0 ≤ q and q_low + q_high ≤ 1")
    n = len(mu)
    order = np.argsort(mu, kind="stable")
    n_low = math.floor(q_low * n + 1e-9)
    n_high = math.floor(q_high * n + 1e-9)
    return np.sort(order[:n_low]), np.sort(order[n - n_high :] if n_high else order[:0])


def read_scores(path: str | Path, n: int) -> tuple[FloatArray, FloatArray]:
    """[n, M] chosen and rejected score matrices from a scores JSONL file."""
    p = Path(path)
    chosen: list[list[float] | None] = [None] * n
    rejected: list[list[float] | None] = [None] * n
    m = None
    lines = [x for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
    for k, line in enumerate(lines):
        where = f"{p}:{k + 1}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not JSON: {e}") from e
        i = row.get("index", k)
        if not isinstance(i, int) or not 0 <= i < n:
            raise ValueError(f"{where}: index {i!r} outside the {n} records")
        if chosen[i] is not None:
            raise ValueError(f"{where}: record {i} scored twice")
        sc = row.get("scores_chosen", row.get("chosen_score_list"))
        sr = row.get("scores_rejected", row.get("rejected_score_list"))
        for name, v in (("scores_chosen", sc), ("scores_rejected", sr)):
            if not isinstance(v, list) or not v or not all(isinstance(x, (int, float)) for x in v):
                raise ValueError(f"{where}: field '{name}' must be a non-empty list of numbers")
        assert isinstance(sc, list) and isinstance(sr, list)
        if len(sc) != len(sr) or (m is not None and len(sc) != m):
            raise ValueError(f"{where}: expected {m or len(sc)} scores per side")
        m = len(sc)
        chosen[i], rejected[i] = [float(x) for x in sc], [float(x) for x in sr]
    missing = [i for i, c in enumerate(chosen) if c is None]
    if missing:
        raise ValueError(f"{p}: no scores for record(s) {missing[:10]} of {n}")
    return np.array(chosen, dtype=np.float64), np.array(rejected, dtype=np.float64)


def _pad_id(own: int | None, seqs: Sequence[npt.NDArray[Any]]) -> int:
    """The id a batch is right-padded with: the model's own ``pad_token_id``, else the smallest
    id that ends none of the batch's sequences (see :func:`score_sequences`)."""
    if own is not None:
        return int(own)
    last = {int(s[-1]) for s in seqs}
    return next(i for i in range(len(last) + 1) if i not in last)


def score_sequences(
    model: Any, seqs: Sequence[npt.NDArray[Any]], *, batch_size: int = 8
) -> FloatArray:
    """Logit 0 of a sequence-classification ``model`` for each id sequence, in batches of
    ``batch_size`` (sorted by length, longest first, right-padded with an attention mask).

    transformers' ``…ForSequenceClassification`` pools the rightmost position whose id is not
    ``config.pad_token_id`` (the last position when that is ``None``, which it allows for a
    batch of one only). Right padding appends pad ids only, so with the model's own pad id the
    rightmost non-pad position of a padded row is the one of the sequence alone, even when the
    sequence itself ends with that id. A model without a pad id pools the last token; the pad id
    set for a batch (and reset afterwards) is then one that ends none of its sequences, so the
    last real token is still the rightmost non-pad one. Padded keys are masked and, for a causal
    model, come after every real position, so the real positions see exactly what they see alone
    (up to float rounding)."""
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if any(len(s) == 0 for s in seqs):
        raise ValueError("cannot score an empty sequence")
    text_config = model.config.get_text_config()
    own = text_config.pad_token_id
    dev = next(model.parameters()).device
    out = np.zeros(len(seqs), dtype=np.float64)
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                pad = _pad_id(own, [seqs[i] for i in rows])
                text_config.pad_token_id = pad
                width = len(seqs[rows[0]])
                ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for b, i in enumerate(rows):
                    n = len(seqs[i])
                    ids[b, :n] = torch.from_numpy(np.asarray(seqs[i], dtype=np.int64))
                    mask[b, :n] = 1
                logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
                scores = logits[:, 0].float().cpu().numpy()
                for b, i in enumerate(rows):
                    out[i] = float(scores[b])
    finally:
        text_config.pad_token_id = own
    return out


def score_with_models(
    data: str | Path,
    models: Sequence[str | Path],
    *,
    template: str,
    cutoff_len: int,
    device: str = "auto",
    batch_size: int = 8,
    dist: Any = None,
) -> tuple[FloatArray, FloatArray]:
    """[N, M] scores of every pair by each local reward model (prompt + chosen and prompt +
    rejected scored by :func:`score_sequences` in batches of ``batch_size``). Under torchrun
    (``dist``, a ``csft_train.dist.Dist``) each rank scores a consecutive block of the pairs on
    its own device and every rank gets all the scores (a score does not depend on the batch it
    was in, so the result is the one process's)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    import csft_data
    from csft_train import dist as dist_mod

    d = dist or dist_mod.Dist()
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else "cpu")
    if device not in ("auto",):
        dev = torch.device(device)
    dev = dist_mod.local_device(dev)
    cols_c: list[FloatArray] = []
    cols_r: list[FloatArray] = []
    for folder in models:
        tok = Path(folder) / "tokenizer.json"
        enc = csft_data.encode_pairwise(data, tok, template=template, cutoff_len=cutoff_len)
        got = enc.indices.tolist()
        if got != list(range(len(got))):
            first = next(i for i, k in enumerate([*got, -1]) if k != i)
            raise ValueError(f"{data}: record {first} could not be encoded for scoring ({folder})")
        per = -(-len(enc) // d.world)
        mine = range(d.rank * per, min(len(enc), (d.rank + 1) * per))
        seqs: list[npt.NDArray[Any]] = []
        for k in mine:
            p, c, r = enc.pair(k)
            seqs += [np.concatenate([p, c]), np.concatenate([p, r])]
        rm = AutoModelForSequenceClassification.from_pretrained(
            str(folder), local_files_only=True
        ).to(dev)
        rm.eval()
        scores = score_sequences(rm, seqs, batch_size=batch_size) if seqs else np.zeros(0)
        if d.active:
            parts = dist_mod.gather_json(d, [float(x) for x in scores], dev)
            scores = np.array([x for part in parts for x in part], dtype=np.float64)
        cols_c.append(scores[0::2])
        cols_r.append(scores[1::2])
        del rm
    return np.stack(cols_c, axis=1), np.stack(cols_r, axis=1)


def _records(path: str | Path) -> list[dict[str, Any]]:
    import csft_data

    out: list[dict[str, Any]] = []
    for batch in csft_data.RecordReader(path):
        out.extend(batch.to_dicts())
    return out


def _histogram_png(mu: FloatArray, lo: float | None, hi: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(mu, bins=min(50, max(5, len(mu) // 5)), color="#4C72B0")
    for x, label, color in ((lo, "swap ≤", "#C44E52"), (hi, "drop ≥", "#DD8452")):
        if x is not None:
            ax.axvline(x, color=color, linestyle="--", label=f"{label} {x:.3g}")
    ax.set_xlabel("preference strength (mean chosen − rejected over reward models)")
    ax.set_ylabel("pairs")
    if lo is not None or hi is not None:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def select_prefs(
    data: str | Path,
    output: str | Path,
    *,
    scores: str | Path | None = None,
    models: Sequence[str | Path] = (),
    q_low: float = 0.1,
    q_high: float = 0.1,
    template: str = "intern2",
    cutoff_len: int = 1024,
    annotate: bool = False,
    stats: str | Path | None = None,
    histogram: str | Path | None = None,
    batch_size: int = 8,
    dist: Any = None,
) -> dict[str, Any]:
    """Selects the pairs of ``data`` (see the module comment); returns the stats. Under
    torchrun (``dist``) the ranks share the reward-model scoring and rank 0 alone writes; the
    other ranks return ``{}``."""
    records = _records(data)
    if not records:
        raise ValueError(f"{data}: no records")
    for i, rec in enumerate(records):
        for f in ("chosen", "rejected"):
            if f not in rec:
                raise ValueError(f"{data}: record {i}: missing field '{f}'")
    if (scores is None) == (not models):
        raise ValueError("give either a scores file or reward model folders (not both)")
    if scores is not None:
        sc, sr = read_scores(scores, len(records))
    else:
        sc, sr = score_with_models(
            data,
            models,
            template=template,
            cutoff_len=cutoff_len,
            batch_size=batch_size,
            dist=dist,
        )
        if dist is not None and not dist.main:
            return {}
    if len(sc) != len(records):
        raise ValueError(f"{data}: {len(records)} records but {len(sc)} scored pairs")
    mu, sigma = strength(sc, sr)
    swap, drop = select(mu, q_low, q_high)
    swap_set, drop_set = set(swap.tolist()), set(drop.tolist())
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for i, rec in enumerate(records):
            if i in drop_set:
                continue
            rec = dict(rec)
            if i in swap_set:
                rec["chosen"], rec["rejected"] = rec["rejected"], rec["chosen"]
            if annotate:
                sign = -1.0 if i in swap_set else 1.0
                rec["preference_mean"] = sign * float(mu[i])
                rec["preference_std"] = float(sigma[i])
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(out)
    lo = float(mu[swap].max()) if len(swap) else None
    hi = float(mu[drop].min()) if len(drop) else None
    counts, edges = np.histogram(mu, bins=20)
    result: dict[str, Any] = {
        "input": str(data),
        "output": str(out),
        "pairs": len(records),
        "models": int(sc.shape[1]),
        "swapped": len(swap),
        "dropped": len(drop),
        "kept": len(records) - len(drop),
        "q_low": q_low,
        "q_high": q_high,
        "swap_threshold": lo,
        "drop_threshold": hi,
        "mean_strength": float(mu.mean()),
        "mean_std": float(sigma.mean()),
        "negative_share": float((mu < 0).mean()),
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }
    if histogram is not None:
        _histogram_png(mu, lo, hi, Path(histogram))
        result["histogram_png"] = str(histogram)
    if stats is not None:
        Path(stats).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
