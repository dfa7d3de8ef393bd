"""The one TOML loader of csft-data: build recipes (``pipeline/recipe.py``) and training and
evaluation configs (``csft_train.config``) are read through :func:`load_toml`, so a bad file
gives the same :class:`ConfigError` naming the file wherever it is read. Validation of the
tables is the caller's; this module only reads.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from csft_data._core import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def load_toml(path: str | Path) -> dict[str, Any]:
    """The tables of a UTF-8 TOML file. A missing file raises ``FileNotFoundError``; a file that
    is not UTF-8 or not valid TOML raises ``ConfigError`` naming it and the position."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{file}: not UTF-8 text (byte {e.start})") from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{file}: not valid TOML: {e}") from None
    return data
