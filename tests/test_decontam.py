"""`csft-data decontaminate` on real data: CMExam questions planted inside Toyhom records are
removed and reported; the real Toyhom records are all kept."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import csft_data as cd
from csft_data.cli import main


@pytest.fixture()
def eval_csv(shared_data: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    src = shared_data / "cmexam" / "cmexam_val_part1.csv"
    with src.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))[:200]
    out = tmp_path / "cmexam_eval.csv"
    with out.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out, [r["Question"] for r in rows]


@pytest.fixture()
def train_jsonl(toyhom_csv: Path, eval_csv: tuple[Path, list[str]], tmp_path: Path) -> Path:
    real = cd.read(toyhom_csv).head(300).to_dicts()
    questions = [q for q in eval_csv[1] if len(q) >= 12][:20]
    planted = []
    for i, q in enumerate(questions):
        # half as they are with other punctuation, half inside a longer patient message
        ask = q.replace("，", ",") + "？" if i % 2 == 0 else f"医生您好，我想问一下：{q}谢谢"
        planted.append({"title": "考试题", "ask": ask, "answer": "不清楚", "planted": i})
    path = tmp_path / "train.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in real[:150] + planted + real[150:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_planted_eval_questions_are_removed_and_reported(
    eval_csv: tuple[Path, list[str]],
    train_jsonl: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, report = tmp_path / "clean.jsonl", tmp_path / "report.jsonl"
    args = ["decontaminate", str(train_jsonl), "-o", str(out), "--eval", str(eval_csv[0])]
    args += ["--eval-fields", "Question", "--fields", "ask", "--report", str(report)]
    assert main([*args, "--output-format", "json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    src = stats["sources"][0]
    assert (src["records"], src["kept"], src["removed"], src["rejected"]) == (320, 300, 20, 0)
    assert stats["eval_items"] == 200 and stats["eval_items_hit"] == 20
    kept = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert not any("planted" in r for r in kept)
    lines = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    assert [r["index"] for r in lines] == list(range(150, 170))
    questions = [q for q in eval_csv[1] if len(q) >= 12][:20]
    for r in lines:
        assert r["eval_text"] == questions[r["index"] - 150]
        assert r["overlap"] >= 0.5


def test_per_source_outputs_cut_the_one_output_by_source(
    eval_csv: tuple[Path, list[str]], train_jsonl: Path, toyhom_csv: Path, tmp_path: Path
) -> None:
    """``outputs`` (one JSONL file per input) hold what ``output`` holds, by input."""
    kw = {"fields": ["ask"], "eval_fields": ["Question"]}
    inputs, evals = [toyhom_csv, train_jsonl], [eval_csv[0]]
    one = tmp_path / "one.jsonl"
    a = cd.decontaminate(inputs, one, evals, **kw)
    per = [tmp_path / "kept-toy.jsonl", tmp_path / "kept-train.jsonl"]
    b = cd.decontaminate(inputs, None, evals, outputs=per, **kw)
    assert a["sources"] == b["sources"] and b["sources"][1]["removed"] == 20
    assert one.read_bytes() == per[0].read_bytes() + per[1].read_bytes()
    with pytest.raises(cd.ConfigError, match="1 outputs for 2 inputs"):
        cd.decontaminate(inputs, None, evals, outputs=per[:1], **kw)
    with pytest.raises(cd.ConfigError, match="not both"):
        cd.decontaminate(inputs, one, evals, outputs=per, **kw)


def test_unrelated_eval_set_removes_nothing_and_bad_input_fails(
    eval_csv: tuple[Path, list[str]], toyhom_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "clean.jsonl"
    stats = cd.decontaminate([toyhom_csv], out, [eval_csv[0]], eval_fields=["Question"])
    assert stats["sources"][0]["removed"] == 0
    assert stats["sources"][0]["kept"] == 7644
    with pytest.raises(cd.ParseError) as info:
        cd.decontaminate([toyhom_csv], out, [eval_csv[0]], eval_fields=["question"])
    assert info.value.field == "question"
    with pytest.raises(cd.ConfigError, match="threshold"):
        cd.decontaminate([toyhom_csv], out, [eval_csv[0]], threshold=0)


def _with_unanswerable_rows(src: Path, dst: Path) -> list[dict[str, str]]:
    """``src`` with the answers of rows 1 and 3 blanked (as real CMExam rows have them), row
    5's answer naming no option and row 7 without question text."""
    with src.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[1]["Answer"] = rows[3]["Answer"] = ""
    rows[5]["Answer"] = "F"
    rows[7]["Question"] = ""
    with dst.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def test_eval_items_with_empty_answers_are_used_and_items_without_text_counted(
    eval_csv: tuple[Path, list[str]], train_jsonl: Path, tmp_path: Path
) -> None:
    # A real CMExam file with empty answers used to kill the run on its answer column:
    # checking needs the question text only.
    ev = tmp_path / "unanswerable.csv"
    rows = _with_unanswerable_rows(eval_csv[0], ev)
    stats = cd.decontaminate(
        [train_jsonl], tmp_path / "c.jsonl", {ev: ["Question"]}, fields=["ask"]
    )
    assert stats["eval_items"] == len(rows) - 1 and stats["eval_no_text"] == 1
    # A field name no record has is still an error naming it.
    with pytest.raises(cd.ParseError) as info:
        cd.decontaminate([train_jsonl], tmp_path / "c.jsonl", {ev: ["question"]})
    assert info.value.field == "question" and str(ev) in str(info.value)


def test_build_decontaminates_against_a_cmexam_file_with_unanswerable_items(
    shared_data: Path, eval_csv: tuple[Path, list[str]], train_jsonl: Path, tmp_path: Path
) -> None:
    from csft_data.pipeline import build

    ev = tmp_path / "cmexam_unanswerable.csv"
    rows = _with_unanswerable_rows(eval_csv[0], ev)
    # The planted questions of rows with an empty / unusable answer are still found.
    planted = [
        rows[k]["Question"] + "\n" + rows[k]["Options"].replace("\\n", "\n") for k in (1, 3, 5)
    ]
    train = tmp_path / "alpaca.jsonl"
    recs = [{"instruction": f"请回答：{q}", "input": "", "output": "不清楚"} for q in planted] + [
        {"instruction": f"问题{i}：头疼怎么办", "input": "", "output": "多休息"} for i in range(5)
    ]
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), "utf-8")
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f"""
[output]
dir = "out"
name = "t"
[[source]]
name = "qa"
adapter = "alpaca"
path = "{train}"
[decontaminate]
eval = [{{ path = "{ev}", adapter = "cmexam" }}]
[split]
val_ratio = 0.0
""",
        "utf-8",
    )
    m = build(recipe).manifest
    dec = m["decontamination"]
    assert dec["eval_items"] == len(rows) - 1
    assert dec["eval_items_hit"] == 3
    assert dec["eval_items_left_out"] == {"cmexam_unanswerable.csv: rejected: value (question)": 1}
    assert m["sources"]["qa"]["removed"] == {"decontaminate: contains an evaluation item": 3}
    report = (tmp_path / "out" / "report.html").read_text("utf-8")
    assert "cmexam_unanswerable.csv" in report and "value (question)" in report
