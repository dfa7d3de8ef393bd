"""Shared fixtures: paths to the real sample data in ``../shared/data`` (never copied here; every
test that reads it goes through ``shared_data``, which fails when it is absent: a run without
the data must not pass by skipping), the real texts
of those samples, and one byte-level BPE tokenizer trained on them for the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest

from _tokenizer_common import real_texts as _real_texts
from _tokenizer_common import train_tokenizer

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
TOYHOM_CSV = SHARED_DATA / "toyhom_cmdd" / "样例_内科5000-6000.csv"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout."""
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"the real sample data is expected at {SHARED_DATA} (../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def toyhom_csv(shared_data: Path) -> Path:
    return TOYHOM_CSV


@pytest.fixture(scope="session")
def real_texts(shared_data: Path) -> list[str]:
    """Real Chinese and English texts of ``../shared/data`` (see ``_tokenizer_common``)."""
    return _real_texts(shared_data)


@pytest.fixture(scope="session")
def tokenizer_json(real_texts: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One byte-level BPE ``tokenizer.json`` (1,500 tokens with the chat templates' special
    tokens, ``<s>``/``</s>`` first) trained on ``real_texts``, shared by the whole session."""
    pytest.importorskip("tokenizers")
    return train_tokenizer(real_texts, tmp_path_factory.mktemp("tokenizer") / "tokenizer.json")
