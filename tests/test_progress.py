"""Long core work run from Python (``rust/python/progress.rs``): a progress callback's exception
stops ``dedup_files`` and ``token_lengths`` at the next report and is raised as it is (so Ctrl-C,
a ``KeyboardInterrupt`` raised there or by the signal check, stops them too), and the stopped
run publishes no output file."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from csft_data import _core


class Stop(Exception):
    pass


@pytest.fixture
def corpus(tmp_path: Path, real_texts: list[str]) -> Path:
    path = tmp_path / "corpus.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i, t in enumerate(real_texts * 3):
            rec = {"instruction": t[:40], "input": "", "output": t + str(i % 5)}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


def stop_after(n: int, exc: BaseException) -> tuple[list[tuple[str, int, int]], object]:
    seen: list[tuple[str, int, int]] = []

    def report(stage: str, done: int, total: int) -> None:
        seen.append((stage, done, total))
        if len(seen) >= n:
            raise exc

    return seen, report


def test_a_raising_callback_stops_dedup_and_nothing_is_written(
    corpus: Path, tmp_path: Path
) -> None:
    out, clusters = tmp_path / "kept.jsonl", tmp_path / "clusters.jsonl"
    seen, report = stop_after(1, Stop("from the callback"))
    with pytest.raises(Stop, match="from the callback"):
        _core.dedup_files([(corpus, "c")], out, clusters=clusters, batch_size=256, progress=report)
    assert len(seen) == 1 and seen[0][0] == "read"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl"]
    # Without the raise the same call completes, reporting every stage.
    seen, report = stop_after(10**9, Stop())
    _core.dedup_files([(corpus, "c")], out, clusters=clusters, batch_size=256, progress=report)
    assert {s for s, _, _ in seen} == {"read", "dedup", "write"} and out.is_file()


def test_ctrl_c_stops_token_lengths(corpus: Path, tmp_path: Path, tokenizer_json: Path) -> None:
    """SIGINT delivered during the work (as Ctrl-C does): KeyboardInterrupt, no bucket file."""
    counter = _core.TokenCounter(tokenizer_json)
    buckets = tmp_path / "buckets.jsonl"

    def interrupt(stage: str, done: int, total: int) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # handled at the next signal check

    # Python's own Ctrl-C handler, whatever this process inherited (a shell starts background
    # jobs with SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            _core.token_lengths(
                [(corpus, "c")],
                counter,
                template="qwen",
                buckets=buckets,
                batch_size=256,
                progress=interrupt,
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not buckets.exists()


def test_bars_say_what_each_stage_counts_with_one_label(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csft_data as cd

    cd.dedup_files([corpus], tmp_path / "kept.jsonl", progress=True)
    err = capsys.readouterr().err
    lines = [line for line in err.split("\r") if line.strip()]
    read = [line for line in lines if line.startswith("dedup read:")]
    dedup = [line for line in lines if line.startswith("dedup:")]
    assert read and all("B/s" in line for line in read)  # bytes, scaled
    assert dedup and all("source/s" in line for line in dedup)  # sources, not bytes
    assert "dedup: dedup" not in err
