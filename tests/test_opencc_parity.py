"""Parity of csft_data.convert with the C++ OpenCC (`opencc` Python package 1.4.2) on real text.

Every string found in ../shared/data (relative to the repository root) is converted with every
built-in config by both implementations; the outputs must be identical. The Toyhom files are
GBK, everything else UTF-8 (JSON, JSONL, CSV, plain text lines).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

opencc = pytest.importorskip("opencc")
import csft_data  # noqa: E402

CONFIGS = [
    "hk2s",
    "hk2sp",
    "hk2t",
    "jp2t",
    "s2hk",
    "s2hkp",
    "s2t",
    "s2tw",
    "s2twp",
    "t2hk",
    "t2jp",
    "t2s",
    "t2tw",
    "tw2s",
    "tw2sp",
    "tw2t",
]


def _strings(value, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)


def _decode(raw: bytes, path: Path) -> str:
    if "toyhom" in path.parts[-2]:
        return raw.decode("gbk")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def extract_texts(root: Path) -> list[str]:
    """All string values / lines / cells under `root`, deduplicated, in a stable order."""
    texts: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = _decode(path.read_bytes(), path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            _strings(json.loads(text), texts)
        elif suffix == ".jsonl":
            for line in text.splitlines():
                if line.strip():
                    _strings(json.loads(line), texts)
        elif suffix == ".csv":
            for row in csv.reader(io.StringIO(text, newline="")):
                texts.extend(row)
        else:
            texts.extend(text.split("\n"))
    return list(dict.fromkeys(t for t in texts if t))


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> list[str]:
    found = extract_texts(shared_data)
    assert len(found) > 10_000
    return found


@pytest.mark.parametrize("config", CONFIGS)
def test_parity_with_opencc(texts: list[str], config: str) -> None:
    reference = opencc.OpenCC(config)
    expected = [reference.convert(t) for t in texts]
    got = csft_data.convert(texts, config)
    assert len(got) == len(texts)
    mismatches = [(t, e, g) for t, e, g in zip(texts, expected, got, strict=True) if e != g]
    report = "\n".join(
        f"input:    {t[:200]!r}\nexpected: {e[:200]!r}\ngot:      {g[:200]!r}"
        for t, e, g in mismatches[:5]
    )
    assert not mismatches, f"{len(mismatches)}/{len(texts)} texts differ for {config}:\n{report}"


def test_single_string_and_errors() -> None:
    assert csft_data.convert("漢字", "t2s") == opencc.OpenCC("t2s").convert("漢字")
    with pytest.raises(Exception, match="s2twp"):
        csft_data.convert("x", "no-such-config")
