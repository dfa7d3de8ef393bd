"""The Normalizer and convert() through Python: options, fields, parallel lists."""

from __future__ import annotations

import pytest

import csft_data as cd


def test_convert_str_and_list() -> None:
    assert cd.convert("頭髮", "t2s") == "头发"
    assert cd.convert(["頭髮", "鬍鬚", ""], "t2s") == ["头发", "胡须", ""]
    assert cd.convert("头发", "s2t") == "頭髮"


def test_convert_rejects_unknown_config_listing_valid_ones() -> None:
    with pytest.raises(cd.ConfigError, match="t2s"):
        cd.convert("x", "x2y")


def test_convert_rejects_non_text() -> None:
    with pytest.raises(TypeError):
        cd.convert(3, "t2s")  # type: ignore[call-overload]


def test_configs_listed() -> None:
    names = cd.opencc_configs()
    for required in ["t2s", "s2t", "tw2s", "hk2s", "s2tw", "s2hk", "s2twp", "tw2sp"]:
        assert required in names


def test_text_cleanup_defaults() -> None:
    n = cd.Normalizer()
    assert n.text(" 问题：\r\n\r\n\r\n回答\u0007 ") == "问题：\n\n回答"


def test_unicode_folding_is_opt_in() -> None:
    assert cd.Normalizer().text("ＡＢ，") == "ＡＢ，"
    assert cd.Normalizer(unicode="width").text("ＡＢ，") == "AB,"
    with pytest.raises(cd.ConfigError):
        cd.Normalizer(unicode="nfkd")


def test_texts_keep_order() -> None:
    n = cd.Normalizer(convert="t2s")
    texts = [f"第{i}個頭髮" for i in range(5000)]
    assert n.texts(texts) == [f"第{i}个头发" for i in range(5000)]
