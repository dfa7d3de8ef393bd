"""Commands other distributions register under ``csft-data`` (entry-point group
``csft_data.commands``): the installed csft-train registers ``train`` and ``eval``; without a
registration the commands still show and exit 2 with the install command."""

from __future__ import annotations

from typing import Any

import pytest

from csft_data.cli import main
from csft_data.cli import train as registry


def test_the_training_module_registers_its_command_groups() -> None:
    from csft_train.cli import add_eval_parsers, add_train_parsers

    assert registry.registered("train") is add_train_parsers
    assert registry.registered("eval") is add_eval_parsers


def test_without_a_registration_the_commands_say_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def nothing(**_: Any) -> list[object]:
        return []

    monkeypatch.setattr(registry, "entry_points", nothing)
    with pytest.raises(ImportError, match=r"csft_data\.commands"):
        registry.registered("train")
    assert main(["train", "sft", "x.toml"]) == 2
    err = capsys.readouterr().err
    assert "needs the training module" in err and registry.INSTALL_HINT in err
    assert main(["eval", "cmb", "preds.jsonl"]) == 2
