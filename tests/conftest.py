"""Shared fixtures: paths to the real sample data in ``../shared/data`` (never copied here; every
test that reads it goes through ``shared_data``, which skips with the reason when it is
absent, and fails in CI, ``CSFT_REQUIRE_SHARED_DATA=1``), the real texts
of those samples, and one byte-level BPE tokenizer trained on them for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _tokenizer_common import real_texts as _real_texts
from _tokenizer_common import train_tokenizer

REPO = Path(__file__).resolve().parent.parent
#: ``CSFT_SHARED_DATA`` points elsewhere (the GPU check carries a copy of the files it needs).
SHARED_DATA = Path(os.environ.get("CSFT_SHARED_DATA") or REPO.parent / "shared" / "data").resolve()
TOYHOM_CSV = SHARED_DATA / "toyhom_cmdd" / "样例_内科5000-6000.csv"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; the tests that need it skip without it, except
    where ``CSFT_REQUIRE_SHARED_DATA`` is set (CI), where they fail."""
    if not SHARED_DATA.is_dir():
        why = f"needs the real sample data at {SHARED_DATA} (../shared/data), not found"
        if os.environ.get("CSFT_REQUIRE_SHARED_DATA"):
            raise RuntimeError(why)
        pytest.skip(why)
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
