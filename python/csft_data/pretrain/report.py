"""``report.html`` of ``csft-data pretrain``, with PNG plots: tokens per category (available,
target and packed), document lengths in tokens per category, and the documents removed per
stage and reason. Made from the manifest and the tokens stage only, with the SFT report's
figure settings (no clock or version in the images), so re-runs give the same bytes.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from csft_data.pipeline.cache import StageResult
from csft_data.pipeline.report import _figure, _save, _table


def _plot_categories(manifest: dict[str, Any], path: Path) -> None:
    mix = manifest["mixture"]
    cats = list(mix)
    x = np.arange(len(cats))
    fig, ax = _figure()
    avail = [mix[c]["available_tokens"] for c in cats]
    taken = [mix[c]["taken_tokens"] for c in cats]
    ax.bar(x - 0.2, avail, 0.4, label="available (after filters)")
    ax.bar(x + 0.2, taken, 0.4, label="packed")
    for i, c in enumerate(cats):
        target = mix[c]["target_tokens"]
        if target is not None:
            ax.hlines(target, i - 0.45, i + 0.45, colors="red", linestyles="--")
        ax.annotate(f"{mix[c]['epochs']}×", (i + 0.2, taken[i]), ha="center", va="bottom")
    ax.set_xticks(x, cats)
    ax.set_ylabel("tokens (EOS included)")
    ax.set_title("Tokens per category (red: target)")
    ax.legend(fontsize=8)
    _save(fig, path)


def _plot_lengths(manifest: dict[str, Any], tokens: StageResult, path: Path) -> bool:
    counts = np.fromfile(tokens.dir / "counts.bin", dtype="<u4").astype(np.int64)
    if len(counts) == 0:
        return False
    per = [tokens.counts(n)["out"] for n in manifest["sources"]]
    cats = np.repeat([s["category"] for s in manifest["sources"].values()], per)
    top = max(int(np.quantile(counts, 0.995)), 2)
    bins = np.unique(np.geomspace(1, top + 1, 50).astype(np.int64))
    fig, ax = _figure()
    for c in sorted(set(cats.tolist())):
        ax.hist(np.clip(counts[cats == c], 1, top), bins=bins, histtype="step", label=c)
    ax.set_xscale("log")
    ax.set_xlabel("tokens per document")
    ax.set_ylabel("documents")
    ax.set_title("Document lengths")
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def _plot_removed(manifest: dict[str, Any], path: Path) -> bool:
    totals: dict[str, int] = {}
    for s in manifest["sources"].values():
        for reason, k in s["removed"].items():
            totals[reason] = totals.get(reason, 0) + k
    if not totals:
        return False
    names = sorted(totals, key=lambda r: (-totals[r], r))
    fig, ax = _figure(8.0, 1.0 + 0.35 * len(names))
    ax.barh(np.arange(len(names)), [totals[r] for r in names])
    ax.set_yticks(np.arange(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("documents removed")
    ax.set_title("Removals by stage and reason")
    _save(fig, path)
    return True


def write_report(folder: Path, manifest: dict[str, Any], results: list[StageResult]) -> None:
    """Writes ``report.html`` and ``plots/*.png`` into ``folder``."""
    tokens = next(r for r in results if r.name == "tokens")
    plots = folder / "plots"
    _plot_categories(manifest, plots / "categories.png")
    figures = [("categories.png", "Tokens per category")]
    if _plot_lengths(manifest, tokens, plots / "lengths.png"):
        figures.append(("lengths.png", "Document lengths"))
    if _plot_removed(manifest, plots / "removed.png"):
        figures.append(("removed.png", "Removals"))
    src_rows = [
        [n, s["category"], s["read"], s["kept"], s["tokens"], s["tokens_packed"], s["removed"]]
        for n, s in manifest["sources"].items()
    ]
    mix_rows = [
        [
            c,
            m["documents"],
            m["available_tokens"],
            m["target_tokens"] or "all",
            m["taken_tokens"],
            m["epochs"],
        ]
        for c, m in manifest["mixture"].items()
    ]
    t, d = manifest["tokens"], manifest["documents"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>csft-data pretrain</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body>",
        "<h1>Continued-pretraining corpus</h1>",
        f"<p>Recipe fingerprint <code>{manifest['recipe_fingerprint']}</code>, seed "
        f"{manifest['seed']}, csft-data {html.escape(manifest['versions']['csft_data'])}. "
        f"<b>{d['kept']:,}</b> of {d['read']:,} documents kept; <b>{t['packed']:,}</b> tokens "
        f"in {manifest['sequences']:,} sequences of {manifest['seq_len']} "
        f"({len(manifest['shards'])} shards, {t['padding']:,} padding tokens; EOS "
        f"{html.escape(str(manifest['eos']))} = {manifest['eos_id']}).</p>",
        "<h2>Sources</h2><p><i>read = kept + removed</i>, exactly.</p>",
        _table(
            [
                "source",
                "category",
                "read",
                "kept",
                "tokens",
                "packed (with EOS, epochs)",
                "removed",
            ],
            src_rows,
        ),
        "<h2>Mixture</h2>",
        _table(["category", "documents", "available", "target", "packed", "epochs"], mix_rows),
    ]
    for name, title in figures:
        parts.append(f"<h2>{html.escape(title)}</h2><img src='plots/{name}' alt='{title}'>")
    parts.append("</body></html>\n")
    (folder / "report.html").write_text("\n".join(parts), encoding="utf-8")
