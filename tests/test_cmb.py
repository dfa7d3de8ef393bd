"""CMB answer extraction (official and strict) on realistic model outputs, and scoring checked
against hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import csft_data as cd
from csft_data.cli import main

# (output, multi-answer item, official, strict with options A-E)
EXTRACTION = [
    ("答案是B。", False, "B", "B"),
    ("答案：C", False, "C", "C"),
    ("正确选项为AC。", True, "AC", "AC"),
    ("答案是C和A", True, "CA", "AC"),  # official keeps order: "CA" != "AC"
    ("答案应该是 D，因为E选项错误。", False, "D", "D"),
    ("答案为ＡＢ", True, "", "AB"),  # full-width letters: official finds none
    ("根据DNA复制原理，选B", False, "D", "B"),  # official falls back to every A-G letter
    ("B", False, "B", "B"),
    ("B. 高血压", False, "B", "B"),
    ("我认为是ACE抑制剂，答案是A。", False, "A", "A"),
    ("这个问题无法回答", False, "", ""),
    ("答案是 BDB。", True, "BDB", "BD"),
    ("选项C的CT表现最典型", False, "C", "C"),  # strict ignores "CT" (T is no option)
    ("正确答案: E", False, "E", "E"),  # official's regex needs 答案 + 是/：/为: falls back
]


@pytest.mark.parametrize(("text", "multi", "official", "strict"), EXTRACTION)
def test_extract_choice(text: str, multi: bool, official: str, strict: str) -> None:
    assert cd.extract_choice(text, variant="official", multi=multi) == official
    assert cd.extract_choice(text, "ABCDE", "strict", multi=multi) == strict


def test_strict_keeps_to_the_items_options() -> None:
    assert cd.extract_choice("答案是E", ["A", "B", "C", "D"], "strict") == ""
    assert cd.extract_choice("答案是E", None, "official") == "E"
    with pytest.raises(cd.ConfigError, match="variant"):
        cd.extract_choice("A", variant="loose")  # type: ignore[arg-type]


ANSWERS = [
    # 医师考试: two classes; 护理考试: one class (hand-computed below)
    {
        "id": 1,
        "exam_type": "医师考试",
        "exam_class": "执业医师",
        "question_type": "单项选择题",
        "answer": "A",
    },
    {
        "id": 2,
        "exam_type": "医师考试",
        "exam_class": "执业医师",
        "question_type": "单项选择题",
        "answer": "B",
    },
    {
        "id": 3,
        "exam_type": "医师考试",
        "exam_class": "执业医师",
        "question_type": "多项选择题",
        "answer": "AC",
    },
    {
        "id": 4,
        "exam_type": "医师考试",
        "exam_class": "中级职称",
        "question_type": "单项选择题",
        "answer": "D",
    },
    {
        "id": 5,
        "exam_type": "护理考试",
        "exam_class": "护士执业资格",
        "question_type": "单项选择题",
        "answer": "E",
    },
    {
        "id": 6,
        "exam_type": "护理考试",
        "exam_class": "护士执业资格",
        "question_type": "多项选择题",
        "answer": "BD",
    },
]


def test_score_by_hand() -> None:
    # right: 1, 3 (执业医师 2/3), 4 (中级职称 1/1), 6 (护士执业资格 1/2); id 5 missing
    preds = {1: "A", 2: "C", 3: "AC", 4: "D", 6: "BD"}
    s = cd.cmb.score(preds, ANSWERS)
    assert s.per_exam_class == {
        "医师考试/执业医师": pytest.approx(200 / 3),
        "医师考试/中级职称": 100.0,
        "护理考试/护士执业资格": 50.0,
    }
    assert s.per_exam_type == {
        "医师考试": pytest.approx((200 / 3 + 100) / 2),
        "护理考试": 50.0,
    }
    assert s.micro == pytest.approx(100 * 4 / 6)
    assert s.macro == pytest.approx(((200 / 3 + 100) / 2 + 50) / 2)
    assert (s.items, s.correct, s.missing) == (6, 4, 1)
    table = s.table()
    assert "Training Grad. (医师考试)" in table and "Nursing Exam (护理考试)" in table


def test_score_cli_on_raw_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(ANSWERS, ensure_ascii=False), encoding="utf-8")
    raw = tmp_path / "raw.jsonl"
    outputs = {
        1: "答案是A。",
        2: "答案是B和C",
        3: "正确选项为C、A",
        4: "D",
        5: "无法判断",
        6: "答案：DB",
    }
    raw.write_text(
        "\n".join(
            json.dumps({"id": i, "output": o}, ensure_ascii=False) for i, o in outputs.items()
        ),
        encoding="utf-8",
    )
    out = tmp_path / "scores.json"
    # official: 1 A ok; 2 single → "B" ok; 3 "CA" != "AC"; 4 ok; 5 ""; 6 "DB" != "BD"
    assert (
        main(
            [
                "eval",
                "score",
                "--predictions",
                str(raw),
                "--answers",
                str(answers),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    official = json.loads(out.read_text(encoding="utf-8"))
    assert set(official) >= {"micro", "macro", "per_exam_type", "per_exam_class"}
    assert official["micro"] == pytest.approx(100 * 3 / 6)
    assert "3 of 6 items right" in capsys.readouterr().out
    # strict sorts and de-duplicates: 3 and 6 become right too
    assert (
        main(
            [
                "eval",
                "score",
                "--predictions",
                str(raw),
                "--answers",
                str(answers),
                "--extract",
                "strict",
                "--output-format",
                "json",
            ]
        )
        == 0
    )
    strict = json.loads(capsys.readouterr().out)
    assert strict["micro"] == pytest.approx(100 * 5 / 6)


def test_score_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(ANSWERS, ensure_ascii=False), encoding="utf-8")
    preds = tmp_path / "preds.json"
    preds.write_text('[{"id": 1, "answer": "A"}]', encoding="utf-8")
    assert main(["eval", "score", "--predictions", str(preds), "--answers", str(answers)]) == 2
    assert "neither 'model_answer' nor 'output'" in capsys.readouterr().err
    missing = tmp_path / "nope.json"
    assert main(["eval", "score", "--predictions", str(missing), "--answers", str(answers)]) == 2
    assert "No such file or directory" in capsys.readouterr().err
