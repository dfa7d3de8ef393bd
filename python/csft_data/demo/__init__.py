"""The embedded demo corpus: small excerpts of permissively licensed Chinese medical datasets
(see NOTICE), shipped inside the package so the main job runs with no data of the user's own.

- ``toyhom_cmdd_neike.csv``: Toyhom Chinese-medical-dialogue-data (MIT), GBK-encoded CSV.
- ``cmtmedqa.json``: CMtMedQA test split (Apache-2.0), JSON array with two mixed schemas.
- ``disc_med_sft.jsonl``: DISC-Med-SFT sample (Apache-2.0), JSONL conversations.
"""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent

DEMO_FILES: tuple[str, ...] = (
    "toyhom_cmdd_neike.csv",
    "cmtmedqa.json",
    "disc_med_sft.jsonl",
)


def demo_paths() -> list[Path]:
    """Absolute paths of the demo files."""
    return [DEMO_DIR / name for name in DEMO_FILES]
