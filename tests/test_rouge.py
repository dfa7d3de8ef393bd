"""ROUGE-L (Rust) against hand-computed LCS values and an independent Python LCS, SF-Med's
win/tie/loss counts, file alignment and the ``eval rouge`` command."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from csft_data import ConfigError, rouge_files, rouge_l, win_tie_loss
from csft_data.cli import main
from csft_data.rouge import rouge_tokens


def py_lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            best = max(table[i][j + 1], table[i + 1][j])
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else best
    return table[-1][-1]


def test_tokens_are_cjk_characters_and_lowercased_words() -> None:
    assert rouge_tokens("患者CT示：肺部阴影，建议复查 PET-CT。") == [
        "患", "者", "ct", "示", "肺", "部", "阴", "影", "建", "议", "复", "查", "pet", "ct",
    ]  # fmt: skip
    assert rouge_tokens("体温38.5℃") == ["体", "温", "38", "5"]
    assert rouge_tokens("。，！  ") == []


# (prediction, reference, LCS, prediction tokens, reference tokens), counted by hand.
HAND = [
    ("多喝水，注意休息", "注意休息，多喝温水", 4, 7, 8),  # 多喝水 vs 注意休息 order: 注意休息 (4)
    ("建议做胃镜检查", "建议尽快做胃镜", 5, 7, 7),  # 建议做胃镜
    ("高血压", "低血压", 2, 3, 3),
    ("Take aspirin daily", "take Aspirin twice daily", 3, 3, 4),
    ("口服阿莫西林 500 mg", "阿莫西林 500 mg，口服", 6, 8, 8),  # 阿莫西林 500 mg
    ("阿莫西林500mg", "阿莫西林 500 mg", 4, 5, 6),  # "500mg" is one token
    ("", "有参考", 0, 0, 3),
    ("头痛", "腹泻", 0, 2, 2),
]


@pytest.mark.parametrize(("pred", "ref", "lcs", "np_", "nr"), HAND)
def test_values_match_hand_computed_lcs(pred: str, ref: str, lcs: int, np_: int, nr: int) -> None:
    s = rouge_l([pred], [ref])
    assert len(rouge_tokens(pred)) == np_ and len(rouge_tokens(ref)) == nr
    assert int(s.lcs[0]) == lcs
    p = lcs / np_ if np_ else 0.0
    r = lcs / nr if nr else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    assert s.precision[0] == pytest.approx(p)
    assert s.recall[0] == pytest.approx(r)
    assert s.fmeasure[0] == pytest.approx(f)


def test_batch_agrees_with_a_python_lcs_on_real_texts(shared_data: Path) -> None:
    recs = json.loads((shared_data / "cmtmedqa" / "CMtMedQA_test.json").read_text("utf-8"))
    texts = [str(r["output"])[:300] for r in recs[:120] if r.get("output")]
    rng = random.Random(3)
    preds = [rng.choice(texts) for _ in texts]
    # Half the pairs share text: the reference with a few characters cut out.
    refs = [t[: len(t) // 2] + t[len(t) // 2 + 5 :] if n % 2 else t for n, t in enumerate(preds)]
    refs = [r if n % 2 else texts[(n * 7) % len(texts)] for n, r in enumerate(refs)]
    got = rouge_l(preds, refs)
    for n, (p, r) in enumerate(zip(preds, refs, strict=True)):
        tp, tr = rouge_tokens(p), rouge_tokens(r)
        lcs = py_lcs(tp, tr)
        assert int(got.lcs[n]) == lcs
        if tp and tr and lcs:
            f = 2 * lcs / (len(tp) + len(tr))
            assert got.fmeasure[n] == pytest.approx(f)
    assert got.fmeasure.dtype == np.float64 and len(got) == len(preds)


def test_length_mismatch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="2 predictions and 1 references"):
        rouge_l(["a", "b"], ["a"])


def test_win_tie_loss_counts() -> None:
    a = [0.5, 0.3, 0.2, 0.9, 0.40]
    b = [0.4, 0.3, 0.25, 0.1, 0.43]
    w = win_tie_loss(a, b)
    assert (w.win, w.tie, w.loss) == (2, 1, 2)
    assert w.cell() == "0.400/0.200/0.400"
    wm = win_tie_loss(a, b, margin=0.06)  # |diff| ≤ 0.06 ties: 0.0, -0.05, -0.03
    assert (wm.win, wm.tie, wm.loss) == (2, 3, 0)
    with pytest.raises(ConfigError):
        win_tie_loss([0.1], [0.1, 0.2])


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_files_align_by_id_and_compare(tmp_path: Path) -> None:
    refs = _jsonl(
        tmp_path / "ref.jsonl",
        [
            {"id": "q1", "output": "多喝水注意休息"},
            {"id": "q2", "output": "建议尽快做胃镜"},
            {"id": "q3", "output": "口服布洛芬"},
        ],
    )
    # Out of order, q3 missing (scored 0).
    a = _jsonl(
        tmp_path / "a.jsonl",
        [{"id": "q2", "output": "建议尽快做胃镜"}, {"id": "q1", "output": "多喝水"}],
    )
    b = _jsonl(
        tmp_path / "b.jsonl",
        [
            {"id": "q1", "output": "多喝水注意休息"},
            {"id": "q2", "output": "做胃镜"},
            {"id": "q3", "output": "口服布洛芬"},
        ],
    )
    rep = rouge_files(a, refs, against=b)
    assert rep.missing == 1 and rep.against_missing == 0
    # a: q1 LCS 3 of 3/7 → F = 6/10; q2 = 1; q3 = 0.  b: q1 = 1; q2 LCS 3 → 6/10; q3 = 1.
    assert list(rep.scores.fmeasure) == pytest.approx([0.6, 1.0, 0.0])
    assert rep.against is not None
    assert list(rep.against.fmeasure) == pytest.approx([1.0, 0.6, 1.0])
    assert rep.pairwise is not None
    assert (rep.pairwise.win, rep.pairwise.tie, rep.pairwise.loss) == (1, 0, 2)

    stray = _jsonl(tmp_path / "stray.jsonl", [{"id": "q9", "output": "x"}])
    with pytest.raises(ConfigError, match="'q9' has no reference"):
        rouge_files(stray, refs)


def test_cli_rouge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refs = _jsonl(tmp_path / "r.jsonl", [{"output": "多喝水注意休息"}, {"output": "口服布洛芬"}])
    a = _jsonl(tmp_path / "a.jsonl", [{"response": "多喝水"}, {"response": "口服布洛芬"}])
    b = _jsonl(tmp_path / "b.jsonl", [{"response": "注意休息"}, {"response": "布洛芬"}])
    out = tmp_path / "s.json"
    per = tmp_path / "per.jsonl"
    code = main(
        ["eval", "rouge", "--predictions", str(a), "--references", str(refs), "--against",
         str(b), "--json", str(out), "--per-item", str(per)]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(out.read_text("utf-8"))
    # a: 6/10, 1.0; b: 4/7 → 8/11, 3/5 → 6/8.
    assert summary["rouge_l"]["fmeasure"] == pytest.approx((0.6 + 1.0) / 2)
    assert summary["against"]["rouge_l"]["fmeasure"] == pytest.approx((8 / 11 + 0.75) / 2)
    assert summary["win_tie_loss"]["cell"] == "0.500/0.000/0.500"
    assert len(per.read_text("utf-8").splitlines()) == 2
    assert "win/tie/loss 0.500/0.000/0.500" in capsys.readouterr().out

    short = _jsonl(tmp_path / "short.jsonl", [{"response": "多喝水"}])
    assert main(["eval", "rouge", "--predictions", str(short), "--references", str(refs)]) == 2
    assert "matched by position" in capsys.readouterr().err
