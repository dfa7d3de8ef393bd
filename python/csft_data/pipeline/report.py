"""The human-readable outputs of ``csft-data build``: ``report.html`` with PNG plots (records
per source and per style through the stages, token-length histograms with the cut-off, dedup
cluster sizes, decontamination hits) and the dataset card ``README.md``. Both are made from the
manifest and the stage folders only, with no clock or version string in the images, so they are
byte-identical across re-runs.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

from csft_data.pipeline.cache import StageResult
from csft_data.pipeline.recipe import Recipe


def _figure(width: float = 8.0, height: float = 4.0) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "csft-data"
    return plt.subplots(figsize=(width, height), dpi=100)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def _plot_stages(manifest: dict[str, Any], path: Path) -> None:
    stages = manifest["stages"]
    labels = ["input"] + [st["stage"] for st in stages]
    fig, ax = _figure()
    for name in manifest["sources"]:
        series = [stages[0]["sources"][name]["in"]] + [st["sources"][name]["out"] for st in stages]
        ax.plot(labels, series, marker="o", label=f"{name} (units, then records)")
    ax.set_yscale("symlog")
    ax.set_ylabel("records")
    ax.set_title("Records per source through the stages")
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelsize=8)
    _save(fig, path)


def _plot_styles(manifest: dict[str, Any], path: Path) -> None:
    stages = manifest["stages"]
    styles = sorted({s["style"] for s in manifest["sources"].values()})
    labels = [st["stage"] for st in stages]
    fig, ax = _figure()
    bottom = [0] * len(stages)
    for style in styles:
        vals = [
            sum(
                st["sources"][n]["out"]
                for n, s in manifest["sources"].items()
                if s["style"] == style
            )
            for st in stages
        ]
        ax.bar(labels, vals, bottom=bottom, label=style)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("records out")
    ax.set_title("Records per style after each stage")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    _save(fig, path)


def _plot_lengths(lengths: StageResult, path: Path) -> bool:
    totals_bin = lengths.dir / "totals.bin"
    if not lengths.stats.get("counted") or not totals_bin.is_file():
        return False
    import numpy as np
    import polars as pl

    from csft_data.lengths import NOT_COUNTED

    totals = np.fromfile(totals_bin, dtype="<u4")
    names = list(lengths.stats["totals_order"])
    source = np.repeat(np.arange(len(names)), [lengths.stats["sources"][n]["in"] for n in names])
    counted = totals != NOT_COUNTED
    if not counted.any():
        return False
    totals, source = totals[counted].astype(np.int64), source[counted]
    cutoff = int(lengths.stats["cutoff_len"])
    top = max(int(pl.Series(totals).quantile(0.995) or 1), cutoff) * 1.1
    bins = np.linspace(0, top, 60)
    fig, ax = _figure()
    for k in sorted(range(len(names)), key=lambda k: names[k]):
        vals = totals[source == k]
        if len(vals):
            ax.hist(np.minimum(vals, top), bins=bins, histtype="step", label=names[k])
    ax.axvline(cutoff, color="red", linestyle="--", label=f"cutoff_len {cutoff}")
    ax.set_xlabel(f"tokens ({lengths.stats['template']} template)")
    ax.set_ylabel("records")
    ax.set_title(f"Token lengths (policy: {lengths.stats['policy']})")
    ax.legend(fontsize=7)
    _save(fig, path)
    return True


def _cluster_sizes(dedup: StageResult) -> Counter[int]:
    sizes: Counter[int] = Counter()
    f = dedup.dir / "clusters.jsonl"
    if f.is_file():
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                sizes[int(json.loads(line)["size"])] += 1
    return sizes


def _plot_clusters(sizes: Counter[int], path: Path) -> bool:
    if not sizes:
        return False
    fig, ax = _figure(6, 3.5)
    xs = sorted(sizes)
    ax.bar([str(x) for x in xs], [sizes[x] for x in xs])
    ax.set_yscale("log")
    ax.set_xlabel("records in the cluster (keeper + duplicates)")
    ax.set_ylabel("clusters")
    ax.set_title("Duplicate cluster sizes")
    _save(fig, path)
    return True


def _decontam_hits(dec: StageResult) -> Counter[str]:
    hits: Counter[str] = Counter()
    f = dec.dir / "hits.jsonl"
    if f.is_file():
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                h = json.loads(line)
                hits[f"{h['source']} ← {Path(h['eval_file']).name}"] += 1
    return hits


def _plot_hits(hits: Counter[str], path: Path) -> bool:
    if not hits:
        return False
    fig, ax = _figure(7, 0.6 + 0.35 * len(hits))
    keys = sorted(hits)
    ax.barh(keys, [hits[k] for k in keys])
    ax.set_xlabel("training records removed")
    ax.set_title("Decontamination hits (source ← evaluation file)")
    ax.tick_params(axis="y", labelsize=7)
    _save(fig, path)
    return True


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) or "—"
    return str(v)


def write_report(folder: Path, manifest: dict[str, Any], results: list[StageResult]) -> None:
    """Writes ``report.html`` and ``plots/*.png`` into ``folder``."""
    by = {r.name: r for r in results}
    plots = folder / "plots"
    _plot_stages(manifest, plots / "stages.png")
    _plot_styles(manifest, plots / "styles.png")
    figures = [("stages.png", "Records per source"), ("styles.png", "Records per style")]
    if _plot_lengths(by["lengths"], plots / "lengths.png"):
        figures.append(("lengths.png", "Token lengths and the cut-off"))
    sizes = _cluster_sizes(by["dedup"])
    if _plot_clusters(sizes, plots / "clusters.png"):
        figures.append(("clusters.png", "Duplicate clusters"))
    hits = _decontam_hits(by["decontaminate"])
    if _plot_hits(hits, plots / "decontamination.png"):
        figures.append(("decontamination.png", "Decontamination"))

    src_rows = [
        [
            n,
            s["adapter"],
            s["style"],
            s["input_units"],
            s["records"],
            s["train"],
            s["val"],
            s["removed"],
        ]
        for n, s in manifest["sources"].items()
    ]
    stage_rows = [
        [st["stage"], n, c["in"], c["out"], c["removed"]]
        for st in manifest["stages"]
        for n, c in st["sources"].items()
    ]
    sp = manifest["split"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>csft-data build: {html.escape(manifest['name'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(manifest['name'])}</h1>",
        f"<p>Recipe fingerprint <code>{manifest['recipe_fingerprint']}</code>, seed "
        f"{manifest['seed']}, csft-data {html.escape(manifest['versions']['csft_data'])}. "
        f"<b>{sp['train']:,}</b> training and <b>{sp['val']:,}</b> validation records.</p>",
        "<h2>Sources</h2>",
        _table(
            [
                "source",
                "adapter",
                "style",
                "input units",
                "records",
                "train",
                "val",
                "removed (stage: reason)",
            ],
            src_rows,
        ),
        "<h2>Stages</h2><p>Per stage and source: <i>in = out + removed</i>, exactly.</p>",
        _table(["stage", "source", "in", "out", "removed"], stage_rows),
        "<h2>Split</h2>",
        f"<p>{sp['groups']:,} groups ({sp['groups_of_several']:,} of several records, the "
        f"largest {sp['largest_group']:,}) from conversations and "
        f"{sp['near_duplicate_links']:,} near-duplicate links; no group straddles the split."
        "</p>",
    ]
    parts.append("<h2>Decontamination</h2>")
    dec = manifest["decontamination"]
    if dec.get("evals"):
        parts.append(
            _table(
                ["evaluation items", "checked", "too short to check", "hit", "left out"],
                [
                    [
                        ", ".join(Path(e["file"]).name for e in dec["evals"]),
                        dec["eval_items"],
                        dec.get("eval_items_unchecked") or 0,
                        dec["eval_items_hit"],
                        dec.get("eval_items_left_out") or {},
                    ]
                ],
            )
        )
    else:
        parts.append("<p>No evaluation files in the recipe: nothing was checked.</p>")
    if hits:
        parts.append(
            _table(
                ["source ← evaluation file", "records removed"],
                [[k, hits[k]] for k in sorted(hits)],
            )
        )
    for name, title in figures:
        parts.append(f"<h2>{html.escape(title)}</h2><img src='plots/{name}' alt='{title}'>")
    parts.append("</body></html>\n")
    (folder / "report.html").write_text("\n".join(parts), encoding="utf-8")


def write_card(folder: Path, manifest: dict[str, Any], recipe: Recipe) -> None:
    """Writes the dataset card ``README.md``."""
    from csft_data.adapters import adapters

    described = {a["name"]: a for a in adapters()}
    sp = manifest["split"]
    lines = [
        # The Hub's dataset-card header: `datasets.load_dataset(<this folder>)` loads the
        # Parquet splits.
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: train.parquet",
        "  - split: validation",
        "    path: val.parquet",
        "---",
        "",
        f"# {manifest['name']}",
        "",
        f"A medical SFT corpus in Alpaca format built by csft-data "
        f"{manifest['versions']['csft_data']} from {len(manifest['sources'])} source(s): "
        f"{sp['train']:,} training and {sp['val']:,} validation records.",
        "",
        "## Files",
        "",
        "- `train.jsonl` / `val.jsonl` (and `.parquet`): `instruction`, `input`, `output`, "
        '`system` ("": the template\'s default), `history` ([[question, answer], …], [] for '
        "none) plus provenance `source` (the adapter), `style`, `id` and `turn` (the assistant "
        "turn `output` is). Every record has every key.",
        f"- `dataset_info.json`: LLaMA-Factory entries `{manifest['name']}_train` and "
        f"`{manifest['name']}_val` (alpaca formatting, the Parquet files); point "
        "`dataset_dir` at this folder.",
        '- `datasets.load_dataset("<this folder>")` loads the Parquet splits; the JSONL '
        "files load with `features=csft_data.alpaca_features()`.",
        "- `manifest.json`: counts in/out and the reasons for every removal, per stage and "
        "source; `removed/` has the records or references behind them.",
        "- `report.html`: tables and plots.",
        "",
        "## Sources",
        "",
        "| source | adapter | dataset | style | records | train | val |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, s in manifest["sources"].items():
        ds = described.get(s["adapter"], {}).get("dataset", "")
        lines.append(
            f"| {n} | {s['adapter']} | {ds} | {s['style']} | {s['records']:,} | "
            f"{s['train']:,} | {s['val']:,} |"
        )
    dd, dc = recipe.dedup, recipe.decontaminate
    lines += [
        "",
        "## Processing",
        "",
        f"1. Converted by the source adapters (CollectiveSFT templates), normalized "
        f"({recipe.normalize.convert or 'no script conversion'}).",
        f"2. Deduplicated ({dd.scope}, MinHash-LSH Jaccard ≥ {dd.threshold} on "
        f"{' + '.join(dd.fields)}, exact duplicates first).",
        f"3. Decontaminated against {len(recipe.evals)} evaluation file(s) "
        f"(≥ {dc.threshold:.0%} of an item's {dc.ngram}-grams).",
        "4. "
        + (
            f"Token lengths with the `{recipe.lengths.template}` template, cut-off "
            f"{recipe.lengths.cutoff_len}, policy `{recipe.lengths.policy}`."
            if recipe.lengths
            else "Token lengths not counted (no [lengths] in the recipe)."
        ),
        f"5. Mixture: {manifest['mixture']['rule']}.",
        f"6. Split: val ratio {recipe.split.val_ratio}, by groups (conversations and "
        f"near-duplicates at {recipe.split.group_threshold}), seed {manifest['seed']}.",
        "",
        "## Licenses",
        "",
        "Each source keeps its own license and terms of use; check them before you "
        "redistribute this corpus or a model trained on it.",
        "",
    ]
    (folder / "README.md").write_text("\n".join(lines), encoding="utf-8")
