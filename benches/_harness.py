"""What the benchmarks share: every measurement runs in a fresh subprocess of the calling
script (``--child CONFIG``), reports its own peak RSS, and the run starts with a machine line.

Peak RSS is ``VmHWM`` from ``/proc/self/status``: Linux ``ru_maxrss`` carries the parent's
high-water mark over ``fork``/``exec``, so a child of a corpus-holding parent would report at
least the parent's peak.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM); ru_maxrss only where /proc is missing."""
    try:
        with Path("/proc/self/status").open() as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(
    script: str, cfg: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Runs ``script --child CFG`` and returns the JSON object its last output line holds."""
    proc = subprocess.run(
        [sys.executable, str(Path(script).resolve()), "--child", json.dumps(cfg)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        sys.exit(f"{cfg.get('method', 'child')} failed:\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def child_result(result: dict[str, Any]) -> None:
    """In a child: prints the result with the child's peak RSS, for :func:`run_child`."""
    print(json.dumps({**result, "rss_mb": peak_rss_mb()}))


def machine_line() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"machine: {cores} cores ({platform.machine()}, {platform.system()}), "
        f"Python {platform.python_version()}; load avg {os.getloadavg()[0]:.2f}"
    )


class StageClock:
    """``on_stage(name, cached)`` for a build: the wall time of each stage in ``seconds``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def __call__(self, name: str, cached: bool) -> None:
        self.stop()
        self._current = (name, time.perf_counter())

    def stop(self) -> None:
        if self._current is not None:
            name, started = self._current
            self.seconds[name] = time.perf_counter() - started
            self._current = None


def print_stages(r: dict[str, Any]) -> None:
    """The per-stage lines of a build bench: seconds, and units in → out where known."""
    counts = {s: (i, o) for s, i, o in r["stage_counts"]}
    for stage, secs in r["stages"].items():
        i, o = counts.get(stage, (None, None))
        io = f"{i:>10,} → {o:>10,}" if i is not None else " " * 25
        print(f"  {stage:<14} {secs:7.1f}s  {io}")
