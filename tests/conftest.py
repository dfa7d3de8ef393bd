"""Shared fixtures: paths to the real sample data in ``../shared/data`` (never copied here)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
TOYHOM_CSV = SHARED_DATA / "toyhom_cmdd" / "样例_内科5000-6000.csv"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"the real sample data is expected at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def toyhom_csv(shared_data: Path) -> Path:
    return TOYHOM_CSV
