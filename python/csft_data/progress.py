"""Progress bars for core work that reports ``(stage, done, total)`` (see rust/python/progress.rs).

One bar per stage, labelled once (``dedup``, then ``dedup write`` — never ``dedup: dedup``), in
the unit the stage counts (bytes as MB/s, records or sources as counts/s), with tqdm's ETA. The
units of the core's stages are declared here, in one table; an unknown stage counts items.
Not done here: bars for work that reports nothing (Python loops use tqdm directly).
"""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

#: The unit of each stage the core (and the Ray engine) reports.
STAGE_UNITS = {
    "read": "B",
    "write": "B",
    "sketch": "B",
    "count": "B",
    "sketches": "file",
    "dedup": "source",
    "bucket": "band",
    "verify": "bucket",
}


class StageBar:
    """A ``progress`` callback: one tqdm bar per stage on stderr (``enabled=False``: none)."""

    def __init__(self, label: str, *, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled
        self._stage: str | None = None
        self._bar: tqdm[Any] | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self._stage or self._bar is None:
            self.close()
            self._stage = stage
            unit = STAGE_UNITS.get(stage, "item")
            desc = self.label if stage == self.label else f"{self.label} {stage}"
            self._bar = tqdm(
                total=total,
                desc=desc,
                unit=unit,
                unit_scale=unit == "B",
                unit_divisor=1000,
                leave=False,
                dynamic_ncols=True,
            )
        bar = self._bar
        bar.total = total
        bar.update(max(0, done - bar.n))  # update(), not n=: tqdm's rate and ETA need it

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> StageBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
