"""The embedded demo corpus: small excerpts of permissively licensed Chinese medical datasets
(see NOTICE), shipped inside the package so the main job runs with no data of the user's own,
and :func:`run_demo`, the main job on it: adapt each source to Alpaca records, normalize them
(t2s by default), then deduplicate per source and across sources.

- ``toyhom_cmdd_neike.csv``: Toyhom Chinese-medical-dialogue-data (MIT), GBK-encoded CSV.
- ``cmtmedqa.json``: CMtMedQA test split (Apache-2.0), JSON array with two mixed schemas.
- ``disc_med_sft.jsonl``: DISC-Med-SFT sample (Apache-2.0), JSONL conversations.

The demo recipe (``recipe.toml``, ``csft-data build --demo``) reads these files and the
project's own (Apache-2.0, written for the demo), so that every stage of the build acts:

- ``exam_practice.jsonl``: Alpaca records of exam practice, three of which leak items of
  ``exam_items.csv`` (what decontamination removes);
- ``exam_items.csv``: twelve exam items in CMExam's CSV form, two without an answer (the
  evaluation file of ``[decontaminate]``);
- ``tokenizer/``: a 3,000-token byte-level BPE trained on the three excerpts, in a Qwen-style
  folder (``tokenizer.json`` + ``tokenizer_config.json``), the ``[lengths]`` tokenizer;
  ``make_tokenizer.py`` regenerates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEMO_DIR = Path(__file__).resolve().parent

DEMO_FILES: tuple[str, ...] = (
    "toyhom_cmdd_neike.csv",
    "cmtmedqa.json",
    "disc_med_sft.jsonl",
)


# The adapter that reads each demo file.
DEMO_ADAPTERS: dict[str, str] = {
    "toyhom_cmdd_neike.csv": "cmd_toyhom",
    "cmtmedqa.json": "cmtmedqa",
    "disc_med_sft.jsonl": "discmed",
}

#: Every file the demo recipe reads, relative to :data:`DEMO_DIR` (the recipe itself first).
DEMO_RECIPE_FILES: tuple[str, ...] = (
    "recipe.toml",
    *DEMO_FILES,
    "exam_practice.jsonl",
    "exam_items.csv",
    "tokenizer/tokenizer.json",
    "tokenizer/tokenizer_config.json",
)

#: The demo tokenizer (``tokenizer_config.json`` beside it).
DEMO_TOKENIZER = DEMO_DIR / "tokenizer" / "tokenizer.json"

DEDUP_FIELDS = ("instruction", "input", "output")


def demo_paths() -> list[Path]:
    """Absolute paths of the demo files."""
    return [DEMO_DIR / name for name in DEMO_FILES]


@dataclass
class DemoResult:
    """What each stage of :func:`run_demo` did."""

    adapted: list[dict[str, Any]]
    normalized: list[Any]  # NormalizeSummary
    dedup: dict[str, Any]
    kept: Path

    def lines(self) -> list[str]:
        out = []
        for a in self.adapted:
            out.append(
                f"adapt {a['adapter']}: {a['records']:,} units -> {a['written']:,} Alpaca records"
            )
        out.extend(s.line() for s in self.normalized)
        total = sum(int(s["records"]) for s in self.dedup["sources"])
        kept = sum(int(s["kept"]) for s in self.dedup["sources"])
        out.append(f"dedup: {total:,} records -> {kept:,} kept ({total - kept:,} duplicates)")
        return out


def run_demo(out_dir: str | Path, **normalize_options: Any) -> DemoResult:
    """Runs the main job on the embedded corpus into ``out_dir``: ``adapted/`` (Alpaca records
    per source), ``normalized/``, then ``kept.jsonl`` with ``clusters.jsonl`` and
    ``dedup_stats.json``. ``normalize_options`` go to :func:`csft_data.normalize_file`."""
    import json

    from csft_data.adapters import convert
    from csft_data.dedup import dedup_files
    from csft_data.normalize import normalize_file

    out = Path(out_dir)
    adapted, normalized = [], []
    for path in demo_paths():
        stem = path.name.split(".")[0]
        a_path = out / "adapted" / f"{stem}.jsonl"
        a_path.parent.mkdir(parents=True, exist_ok=True)
        stats = convert(DEMO_ADAPTERS[path.name], [path], a_path)
        adapted.append({"adapter": DEMO_ADAPTERS[path.name], **stats})
        n_path = out / "normalized" / f"{stem}.jsonl"
        n_path.parent.mkdir(parents=True, exist_ok=True)
        normalized.append(normalize_file(a_path, n_path, **normalize_options))
    kept = out / "kept.jsonl"
    dedup = dedup_files(
        [out / "normalized" / f"{p.name.split('.')[0]}.jsonl" for p in demo_paths()],
        kept,
        fields=list(DEDUP_FIELDS),
        clusters=out / "clusters.jsonl",
        scope="both",
    )
    # Counts and config only (no timings or absolute paths): the same run gives the same file.
    stable = {
        k: v
        for k, v in dedup.items()
        if k not in ("seconds", "output", "clusters_file", "quarantine")
    }
    stable["sources"] = [{k: v for k, v in s.items() if k != "path"} for s in dedup["sources"]]
    (out / "dedup_stats.json").write_text(
        json.dumps(stable, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return DemoResult(adapted=adapted, normalized=normalized, dedup=dedup, kept=kept)
