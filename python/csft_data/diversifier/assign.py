"""Giving records their instructions (the last step of SF-Med's diversification): each record of
the chosen styles gets one instruction of its scenario, ``single`` (a question and its answer)
or ``multi`` (a turn of a dialogue: style ``dialogue`` or a non-empty ``history``), chosen by a
seeded hash of (seed, source, conversation id, or the record's position when it has none): the
turns of one conversation share their instruction, and the choice depends on no other record.

``placement = "system"`` puts it in ``system`` (a record's own non-empty system prompt is kept
unless ``overwrite``); ``"instruction"`` puts it in ``instruction``, the record's instruction
moving to the front of ``input`` (LLaMA-Factory joins them with a line break, so the user turn
reads: directive, question, input). Records of other styles, and of a scenario without
instructions, are copied as they are, byte for byte. This module reads instruction files and
writes record files; it generates nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csft_data._core import ConfigError
from csft_data.pipeline.config import SCENARIOS
from csft_data.rouge import load_records


def scenario_of(record: Mapping[str, Any]) -> str:
    return "multi" if record.get("style") == "dialogue" or record.get("history") else "single"


def load_instructions(
    path: str | Path, scenarios: Sequence[str] = SCENARIOS
) -> dict[str, list[str]]:
    """The instructions of a file written by ``csft-data diversify`` (or any records with an
    ``instruction`` and a ``scenario``; without a scenario it serves both), by scenario, in
    file order, duplicates dropped."""
    out: dict[str, list[str]] = {s: [] for s in scenarios}
    for n, r in enumerate(load_records(path)):
        text, scenario = r.get("instruction"), r.get("scenario")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{path}: record {n} has no text field 'instruction'")
        if scenario is not None and scenario not in SCENARIOS:
            raise ConfigError(
                f"{path}: record {n}: scenario {scenario!r} is not one of {', '.join(SCENARIOS)}"
            )
        for s in [scenario] if scenario is not None else SCENARIOS:
            if s in out and text not in out[s]:
                out[s].append(text)
    return out


def instructions_digest(sets: Mapping[str, Sequence[str]]) -> str:
    """sha256 of an instruction set (scenario → texts), as the manifest names it."""
    text = json.dumps({k: list(v) for k, v in sorted(sets.items())}, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _pick(seed: int, source: str, key: str, n: int) -> int:
    digest = hashlib.sha256(f"{seed}\0{source}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n


@dataclass
class AssignCounts:
    """Records given an instruction, by scenario; records left as they were, by reason; and
    how many records each instruction went to (by scenario, in the set's order)."""

    assigned: dict[str, int] = field(default_factory=dict)
    untouched: dict[str, int] = field(default_factory=dict)
    per_instruction: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "assigned": dict(sorted(self.assigned.items())),
            "untouched": dict(sorted(self.untouched.items())),
            "per_instruction": dict(sorted(self.per_instruction.items())),
        }


def assign_file(
    src: Path,
    dst: Path,
    sets: Mapping[str, Sequence[str]],
    *,
    seed: int,
    source: str,
    placement: str = "system",
    styles: Sequence[str] = ("qa", "dialogue"),
    overwrite: bool = False,
    counts: AssignCounts | None = None,
) -> AssignCounts:
    """Writes the JSONL records of ``src`` to ``dst``, each with its instruction (see the
    module comment); returns ``counts`` (a new one if None) with this file's records added."""
    counts = counts if counts is not None else AssignCounts()
    for s, texts in sets.items():
        counts.per_instruction.setdefault(s, [0] * len(texts))

    def skip(reason: str) -> None:
        counts.untouched[reason] = counts.untouched.get(reason, 0) + 1

    with src.open(encoding="utf-8") as f, dst.open("w", encoding="utf-8") as out:
        for n, line in enumerate(f):
            record = json.loads(line)
            scenario = scenario_of(record)
            texts = sets.get(scenario) or ()
            if record.get("style") not in styles:
                skip(f"style {record.get('style')} not diversified")
            elif not texts:
                skip(f"no {scenario} instructions")
            elif placement == "system" and record.get("system") and not overwrite:
                skip("own system prompt kept")
            else:
                key = str(record["id"]) if record.get("id") is not None else f"#{n}"
                k = _pick(seed, source, key, len(texts))
                if placement == "system":
                    record["system"] = texts[k]
                else:
                    own, given = record.get("instruction") or "", record.get("input") or ""
                    record["input"] = "\n".join(x for x in (own, given) if x)
                    record["instruction"] = texts[k]
                counts.assigned[scenario] = counts.assigned.get(scenario, 0) + 1
                counts.per_instruction[scenario][k] += 1
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
            out.write(line)
    return counts
