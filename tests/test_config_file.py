"""One TOML loader for recipes and training configs: the same errors, naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

import csft_data as cd
from csft_data.pipeline.recipe import load_recipe


def _loaders() -> list[object]:
    from csft_train.config import load_config

    return [cd.load_toml, load_recipe, load_config]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_bad_toml_and_bad_bytes_are_config_errors_naming_the_file(
    tmp_path: Path, index: int
) -> None:
    load = _loaders()[index]
    broken = tmp_path / "broken.toml"
    broken.write_text("[dedup\nthreshold = 0.8\n", "utf-8")
    with pytest.raises(cd.ConfigError, match=r"broken\.toml: not valid TOML: .*line 1"):
        load(broken)  # type: ignore[operator]
    gbk = tmp_path / "gbk.toml"
    gbk.write_bytes('name = "去重"\n'.encode("gbk"))
    with pytest.raises(cd.ConfigError, match=r"gbk\.toml: not UTF-8 text"):
        load(gbk)  # type: ignore[operator]
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.toml")  # type: ignore[operator]


def test_load_toml_returns_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('[engine]\nkind = "ray"\n', "utf-8")
    assert cd.load_toml(path) == {"engine": {"kind": "ray"}}
