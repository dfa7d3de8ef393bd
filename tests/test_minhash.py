"""`csft_data.minhash` / `band_keys` / `lsh_params`: the signature stage as numpy arrays, on real
Chinese text, checked against true Jaccard and against datasketch's parameter choice."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

import csft_data as cd


def char_shingles(text: str, n: int = 5) -> set[str]:
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def jaccard(a: str, b: str) -> float:
    x, y = char_shingles(a), char_shingles(b)
    return len(x & y) / len(x | y)


@pytest.fixture(scope="module")
def huatuo_texts(shared_data: Path) -> list[str]:
    items = json.loads((shared_data / "huatuo26m/huatuo26M_test.json").read_text("utf-8"))
    return [it["output"][0] for it in items if len(it["output"][0]) >= 100][:400]


def edit(text: str, k: int, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(k):
        chars[rng.randrange(len(chars))] = rng.choice("的了是在有和人这中大为上个国")
    return "".join(chars)


def test_shapes_kinds_and_determinism(huatuo_texts: list[str]) -> None:
    texts = [*huatuo_texts[:50], "短文本", ""]
    a = cd.minhash(texts, num_perm=64)
    assert a.signatures.shape == (52, 64) and a.signatures.dtype == np.uint32
    assert list(a.kinds[-2:]) == [1, 2] and not a.kinds[:50].any()
    b = cd.minhash(texts, num_perm=64)
    assert np.array_equal(a.signatures, b.signatures)
    c = cd.minhash(texts, num_perm=64, seed=2)
    assert not np.array_equal(a.signatures[:50], c.signatures[:50])
    d = cd.minhash(texts, num_perm=64, sketch="oph")
    assert not np.array_equal(a.signatures[:50], d.signatures[:50]), "two different sketches"
    with pytest.raises(cd.ConfigError, match="sketch"):
        cd.minhash(texts, sketch="bogus")


@pytest.mark.parametrize("sketch", ["minhash", "oph"])
def test_estimate_tracks_true_jaccard(huatuo_texts: list[str], sketch: str) -> None:
    rng = random.Random(7)
    originals = huatuo_texts[:200]
    edited = [edit(t, rng.randrange(1, 30), rng) for t in originals]
    sig = cd.minhash(originals + edited, num_perm=128, sketch=sketch)
    errors = [abs(sig.estimate(i, i + 200) - jaccard(originals[i], edited[i])) for i in range(200)]
    assert np.mean(errors) < 0.05
    assert np.mean(np.array(errors) < 0.15) >= 0.97


def test_near_duplicates_share_a_band_key(huatuo_texts: list[str]) -> None:
    rng = random.Random(11)
    originals = huatuo_texts[:200]
    copies = [edit(t, 1, rng) for t in originals]
    bands, rows = cd.lsh_params(0.8, 128)
    keys = cd.band_keys(cd.minhash(originals + copies).signatures, bands, rows)
    assert keys.shape == (400, bands) and keys.dtype == np.uint64
    close = [i for i in range(200) if jaccard(originals[i], copies[i]) >= 0.9]
    found = sum(bool((keys[i] == keys[i + 200]).any()) for i in close)
    assert found >= 0.98 * len(close)
    unrelated = sum(bool((keys[i] == keys[i + 1]).any()) for i in range(199))
    assert unrelated <= 2


def test_lsh_params_match_datasketch() -> None:
    lsh = pytest.importorskip("datasketch.lsh")
    for num_perm in (64, 128, 256):
        for threshold in (0.5, 0.7, 0.8, 0.9):
            expected = lsh._optimal_param(threshold, num_perm, 0.5, 0.5)
            got = cd.lsh_params(threshold, num_perm, verify=False, fp_weight=0.5, fn_weight=0.5)
            assert got == expected, (threshold, num_perm)


def test_verified_banding_finds_the_pairs_at_the_threshold() -> None:
    """With verification the default banding is chosen for recall: at least 99.5% of the pairs
    at exactly the threshold share a band (datasketch's choice for 0.8 finds 87%)."""
    for num_perm in (64, 128, 256):
        for threshold in (0.5, 0.7, 0.8, 0.9):
            b, r = cd.lsh_params(threshold, num_perm)
            assert b * r <= num_perm
            assert 1 - (1 - threshold**r) ** b >= 0.995, (threshold, num_perm, b, r)
    assert cd.lsh_params(0.8, 128) == (18, 6)
    b, r = cd.lsh_params(0.8, 128, verify=False)
    assert 1 - (1 - 0.8**r) ** b < 0.9


def test_lsh_params_overrides_and_errors() -> None:
    assert cd.lsh_params(0.8, 128, bands=16) == (16, 8)
    with pytest.raises(cd.ConfigError, match="num_perm"):
        cd.lsh_params(0.8, 128, bands=20, rows=10)
    with pytest.raises(cd.ConfigError, match="threshold"):
        cd.lsh_params(1.5, 128)
    with pytest.raises(cd.ConfigError):
        cd.minhash(["a"], mode="syllable")
