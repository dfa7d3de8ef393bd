"""Source adapters on the real samples in ``../shared/data`` and, for the datasets with no
sample there, on small fixtures in their published formats (``tests/data/adapters``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import csft_data as cd
from csft_data.adapters import adapter_names, adapters, convert
from csft_data.cli import main

FIXTURES = Path(__file__).resolve().parent / "data" / "adapters"


def lines(path: Path) -> list[dict[str, Any]]:
    # split on "\n" only: texts may hold U+2028 and the like, which splitlines() also cuts at
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def run(adapter: str, inputs: list[Path], out: Path, **kw: Any) -> tuple[dict[str, Any], list]:
    stats = convert(adapter, inputs, out, **kw)
    assert stats["records"] == stats["converted"] + stats["skipped"] + stats["rejected"]
    for f in stats["files"]:
        assert f["records"] == f["converted"] + f["skipped"] + f["rejected"]
    recs = lines(out)
    assert len(recs) == stats["written"]
    for r in recs:
        assert r["source"] == adapter
        assert isinstance(r["instruction"], str) and isinstance(r["output"], str)
        assert isinstance(r["id"], str) and r["id"]
    return stats, recs


def test_sources_lists_every_adapter(capsys: pytest.CaptureFixture[str]) -> None:
    names = adapter_names()
    for want in [
        "cmb", "cmexam", "mlecqa", "nlpec", "medmcqa", "headqa", "cmedqa2", "webmedqa",
        "cmd_toyhom", "cmd_toyhom_txt", "pubmedqa", "huatuo26m", "chatmed_consult",
        "huatuo_sft", "meddialog", "discmed", "cmtmedqa", "cmid", "alpaca", "sharegpt",
        "mapping",
    ]:  # fmt: skip
        assert want in names
    cmb = next(a for a in adapters() if a["name"] == "cmb")
    assert (
        cmb["templates"]["instruction"]
        == "该问题源自{exam_type}，面向{exam_class}中的{exam_subject}。\n\n"
    )
    assert main(["sources", "--output-format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(names)
    assert main(["sources"]) == 0
    assert "meddialog" in capsys.readouterr().out


def test_toyhom_csv_gbk(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "toyhom_cmdd" / "样例_内科5000-6000.csv"
    stats, recs = run("cmd_toyhom", [src], tmp_path / "o.jsonl")
    assert stats["written"] == 7644 and stats["rejected"] == 0
    r = recs[0]
    assert r["instruction"] == "高血压患者能吃党参吗？"
    assert r["input"].startswith("我有高血压这两天女婿来的时候给我拿了些党参泡水喝")
    assert r["output"].startswith("高血压病人可以口服党参的。")
    assert (r["style"], r["id"]) == ("qa", "样例_内科5000-6000.csv:0")
    # Every record carries every Alpaca key (LLaMA-Factory reads example["history"]).
    assert (r["history"], r["system"], r["turn"]) == ([], "", 1)


def test_toyhom_txt_blocks(shared_data: Path, tmp_path: Path) -> None:
    stats, recs = run(
        "cmd_toyhom_txt", [shared_data / "toyhom_cmdd" / "内科.txt"], tmp_path / "o.jsonl"
    )
    # 16,192 lines = 4,048 blocks of title,ask / answer / two blank lines
    assert (stats["records"], stats["written"], stats["rejected"]) == (4048, 4048, 0)
    assert recs[0]["instruction"] == "高血压患者能吃党参吗？"
    assert recs[0]["output"].startswith("高血压病人可以口服党参的。")


def test_cmexam_csv(shared_data: Path, tmp_path: Path) -> None:
    stats, recs = run(
        "cmexam", [shared_data / "cmexam" / "cmexam_val_part1.csv"], tmp_path / "o.jsonl"
    )
    assert (stats["written"], stats["rejected"]) == (3000, 0)
    r = recs[0]
    assert r["instruction"] == "这是国家医师资格考试的题目。\n\n"
    assert r["input"] == (
        "上消化道出血可单纯表现为呕血或黑便，也可两者兼有，这取决于\n"
        "A: 原发病\nB: 出血部位\nC: 出血量\nD: 在胃内停留时间\nE: 以上均非\n"
    )
    assert r["output"].startswith("上消化道出血表现为呕血还是便血")
    assert r["output"].endswith("\n答案是C。")
    multi = [x for x in recs if len(x["output"].rsplit("答案是", 1)[1]) > 2]
    assert len(multi) == 2  # the two multi-answer items keep every letter


def test_headqa_spanish(shared_data: Path, tmp_path: Path) -> None:
    stats, recs = run("headqa", [shared_data / "headqa" / "HEAD.json"], tmp_path / "o.jsonl")
    assert (stats["written"], stats["rejected"]) == (6765, 0)
    r = recs[0]
    assert r["instruction"] == (
        "This is a question about biology from exams to access a specialized position in "
        "healthcare system.\n\n"
    )
    assert r["input"] == (
        "Los potenciales postsinápticos excitadores:\nA: Son de tipo todo o nada.\n"
        "B: Son hiperpolarizantes.\nC: Se pueden sumar.\nD: Se propagan a largas distancias.\n"
        "E: Presentan un periodo refractario.\n"
    )
    assert (r["output"], r["id"]) == ("The answer is C .", "Cuaderno_2013_1_B/1")
    # the sample is Spanish: the header can be overridden
    tpl = {
        "instruction": "Pregunta de {category} ({year}).\n\n",
        "output": "La respuesta es {answer}.",
    }
    _, recs2 = run(
        "headqa", [shared_data / "headqa" / "HEAD.json"], tmp_path / "o2.jsonl", templates=tpl
    )
    assert recs2[0]["instruction"] == "Pregunta de biology (2013).\n\n"
    assert recs2[0]["output"] == "La respuesta es C."


def test_pubmedqa(shared_data: Path, tmp_path: Path) -> None:
    stats, recs = run(
        "pubmedqa", [shared_data / "pubmedqa" / "ori_pqal.json"], tmp_path / "o.jsonl"
    )
    assert stats["written"] == 1000
    r = recs[0]
    assert r["id"] == "21645374"
    assert r["instruction"].startswith("Do mitochondria play a role in remodelling lace plant")
    assert r["input"].startswith("BACKGROUND: Programmed cell death (PCD)")
    decisions = [x["output"].rsplit("The answer is ", 1)[1] for x in recs]
    assert {d: decisions.count(d) for d in set(decisions)} == {
        "yes.": 552,
        "no.": 338,
        "maybe.": 110,
    }


def test_huatuo26m(shared_data: Path, tmp_path: Path) -> None:
    stats, recs = run(
        "huatuo26m", [shared_data / "huatuo26m" / "huatuo26M_test.json"], tmp_path / "o.jsonl"
    )
    assert stats["written"] == 6000
    assert recs[0]["instruction"] == "做了腰间盘穿丁手术后，用盐泡脚可以吗"
    assert recs[0]["input"] == ""
    assert recs[0]["id"] == "huatuo26M_test.json:0"  # the file's ids are all empty


def test_cmtmedqa_two_schemas(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "cmtmedqa" / "CMtMedQA_test.json"
    stats, recs = run("cmtmedqa", [src], tmp_path / "o.jsonl")
    assert (stats["records"], stats["converted"]) == (1144, 1144)
    assert stats["written"] == 4696  # 1,000 dialogues with 3,552 history pairs + 144 single turns
    first = [r for r in recs if r["id"] == "j4219"]
    assert [r["turn"] for r in first] == [1, 2, 3, 4]
    assert first[0]["history"] == []
    assert first[3]["instruction"] == "我知道了，谢谢医生的解答。"
    assert [len(r["history"]) for r in first] == [0, 1, 2, 3]
    assert first[3]["history"][0][0].startswith("医生，我得了恶性乳腺癌中期")
    safety = [r for r in recs if r["id"].startswith("CMtMedQA_test.json:")]
    assert len(safety) == 144
    assert not safety[0]["instruction"].startswith(" ")
    stats, recs = run("cmtmedqa", [src], tmp_path / "c.jsonl", per_conversation=True)
    assert stats["written"] == 1144
    j = next(r for r in recs if r["id"] == "j4219")
    assert len(j["history"]) == 3 and j["turn"] == 4  # the conversation's last turn


def test_discmed_turns_and_conversations(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "disc_med_sft" / "test_examples.jsonl"
    stats, recs = run("discmed", [src], tmp_path / "o.jsonl")
    assert (stats["records"], stats["written"]) == (163, 417)
    r = recs[0]
    assert (r["id"], r["instruction"], r["history"], r["turn"]) == (
        "01-94236",
        "中央型肺癌，右肺门中央型肺鳞癌",
        [],
        1,
    )
    stats, recs = run("discmed", [src], tmp_path / "c.jsonl", per_conversation=True)
    assert stats["written"] == 163
    assert sum(len(r["history"]) + 1 for r in recs) == 417


def test_meddialog_english_duplicate_id_and_crs(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "meddialog_covid" / "COVID-Dialogue-Dataset-English.txt"
    stats, recs = run("meddialog", [src], tmp_path / "o.jsonl")
    assert (stats["records"], stats["converted"], stats["written"]) == (604, 604, 615)
    ids = {r["id"] for r in recs}
    assert {"18", "18#2"} <= ids
    assert not any("\r" in r["output"] or "\r" in r["instruction"] for r in recs)
    r1 = next(r for r in recs if r["id"] == "1")
    assert r1["instruction"].startswith("Hello doctor, I get a cough for the last few days")
    assert r1["output"].startswith("Hello, I understand your concern.")
    assert r1["style"] == "dialogue" and r1["history"] == []


def test_meddialog_chinese(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "meddialog_covid" / "COVID-Dialogue-Dataset-Chinese.txt"
    stats, recs = run("meddialog", [src], tmp_path / "o.jsonl")
    assert (stats["records"], stats["skipped"], stats["rejected"]) == (1393, 96, 0)
    assert stats["written"] == 6751
    r = recs[0]  # id=1 opens with the doctor: the Description is the patient's first turn
    assert r["id"] == "1" and r["instruction"].startswith("疾病： 血管型AD患者")
    assert r["output"] == "呛咳病程多久了？\n神志清醒？"
    stats, recs = run("meddialog", [src], tmp_path / "c.jsonl", per_conversation=True)
    assert stats["written"] == 1393 - 96


def test_cmid_sample(shared_data: Path, tmp_path: Path) -> None:
    stats, recs = run("cmid", [shared_data / "cmid" / "cmid_samples.json"], tmp_path / "o.jsonl")
    # no entity spans in DISC's sample; 多问 + 其他 leaves nothing to say for some items
    assert stats["records"] == 120
    assert stats["written"] + stats["skipped"] == 120 and stats["rejected"] == 0
    r = recs[0]
    assert r["instruction"] == "分析下列描述中提到的医学专有名词并分析其意图：\n\n"
    assert r["input"] == "你好，我想咨询一下，我小便时有疼痛感，请问是怎么回事？"
    assert r["output"] == "该描述期望知道该病症及其病因。"
    assert r["style"] == "ner_intent"


def test_fixture_mcqa_sets(tmp_path: Path) -> None:
    _, recs = run("cmb", [FIXTURES / "cmb_train.json"], tmp_path / "cmb.jsonl")
    assert recs[0]["input"].endswith("D: 原发性肺结核\nE: 粟粒型肺结核\n")
    assert recs[0]["input"].split("\n")[1] == "A: 小叶型肺炎"  # options sorted
    assert recs[1]["output"] == "答案是ACD。"  # multi-answer, option given as Python text
    assert recs[2]["output"] == "2015年指南推荐按压频率为100～120次/分。\n答案是C。"
    _, recs = run("mlecqa", [FIXTURES / "Clinic_train.json"], tmp_path / "m.jsonl")
    assert recs[1]["input"].split("\n")[1:4] == ["A: 急性咽炎", "B: 流行性感冒", "C: 急性扁桃体炎"]
    assert (recs[0]["output"], recs[0]["id"]) == (
        "答案是B。",
        "13413fc4-61a8-4e0c-b24f-01634e6262c6",
    )
    _, recs = run("nlpec", [FIXTURES / "NLPEC_public_data" / "train.json"], tmp_path / "n.jsonl")
    assert recs[1]["output"] == "大环内酯类包括红霉素、阿奇霉素、克拉霉素等。\n答案是ABD。"
    assert recs[0]["output"].startswith("拉西地平：CCB具有很强的血管选择性。\n依诺肝素：")
    _, recs = run("medmcqa", [FIXTURES / "medmcqa_train.json"], tmp_path / "mm.jsonl")
    assert recs[0]["output"].endswith("\nThe answer is A .")
    assert recs[1]["output"] == "The answer is C ."
    assert recs[1]["instruction"].endswith("entrance exam.\n\n")


def test_fixture_qa_sets(shared_data: Path, tmp_path: Path) -> None:
    d = FIXTURES / "cmedqa2"
    stats, recs = run(
        "cmedqa2",
        [d / "answer.csv", d / "question.csv", d / "train_candidates.txt"],
        tmp_path / "c.jsonl",
    )
    assert [r["id"] for r in recs] == ["50355365", "50355366", "60000001"]
    assert recs[0]["instruction"] == recs[1]["instruction"] == "头痛头晕，血压正常，是怎么回事？"
    assert stats["skipped_by_reason"] == {
        "cmedqa2: question not in the candidate split": 1,
        "cmedqa2: question without a (selected) answer": 1,
    }
    stats, recs = run("cmedqa2", [d / "question.csv", d / "answer.csv"], tmp_path / "c2.jsonl")
    assert stats["written"] == 4
    # the real (ID-only) dev candidates select none of the fixture questions
    stats, _ = run(
        "cmedqa2",
        [d / "question.csv", d / "answer.csv", shared_data / "cmedqa2" / "dev_candidates.txt"],
        tmp_path / "c3.jsonl",
    )
    assert stats["written"] == 0 and stats["rejected"] == 0 and stats["records"] == 3 + 4 + 20000
    stats, recs = run("webmedqa", [FIXTURES / "medQA.train.txt"], tmp_path / "w.jsonl")
    assert (stats["records"], stats["written"], stats["skipped"]) == (3, 2, 1)
    assert recs[0]["output"] == "胃疼可以先吃点温和的食物，注意休息。"
    assert recs[0]["id"] == "1001"
    _, recs = run("chatmed_consult", [FIXTURES / "chatmed_consult.jsonl"], tmp_path / "cc.jsonl")
    assert recs[1]["instruction"] == "感冒了能喝咖啡吗？"
    stats, recs = run("huatuo_sft", [FIXTURES / "huatuo_sft.jsonl"], tmp_path / "h.jsonl")
    assert (stats["records"], stats["written"], stats["skipped"]) == (3, 3, 1)
    assert recs[0]["instruction"].startswith("我最近总是失眠") and recs[0]["style"] == "qa"
    assert recs[2]["instruction"] == "吃了药还不退烧怎么办？" and recs[2]["turn"] == 2
    assert recs[2]["history"][0][0] == "孩子发烧38.5度需要吃退烧药吗？"
    assert recs[2]["id"] == "1"


def test_generic_adapters(tmp_path: Path) -> None:
    _, recs = run("alpaca", [FIXTURES / "alpaca.json"], tmp_path / "a.jsonl")
    assert recs[1]["history"] == [["我有高血压", "请问血压多少？"]]
    assert (recs[1]["system"], recs[1]["id"], recs[1]["style"]) == (
        "你是一名医生。",
        "a2",
        "generic",
    )
    _, recs = run("sharegpt", [FIXTURES / "sharegpt.jsonl"], tmp_path / "s.jsonl")
    assert [(r["id"], r["turn"]) for r in recs] == [("s1", 1), ("s1", 2), ("s2", 1)]
    assert recs[1]["history"] == [["我头疼", "疼了多久？"]]
    assert recs[2]["system"] == "你是医生"
    _, recs = run(
        "mapping",
        [FIXTURES / "mapping.csv"],
        tmp_path / "m.jsonl",
        mapping={"instruction": "question", "output": "answer", "id": "qid"},
        templates={"input": "选项：{options}", "system": "你是考官。"},
    )
    assert recs[0] == {
        "instruction": "哪种维生素缺乏会引起坏血病？",
        "input": "选项：A 维生素A；B 维生素C",
        "output": "B",
        "system": "你是考官。",
        "history": [],
        "source": "mapping",
        "style": "generic",
        "id": "q1",
        "turn": 1,
    }
    with pytest.raises(cd.ConfigError, match="mapping"):
        convert("mapping", [FIXTURES / "mapping.csv"], tmp_path / "x.jsonl", mapping={"input": "q"})


def test_system_template_and_bad_override(shared_data: Path, tmp_path: Path) -> None:
    src = FIXTURES / "Clinic_train.json"
    _, recs = run("mlecqa", [src], tmp_path / "o.jsonl", templates={"system": "你是医学考试助手。"})
    assert recs[0]["system"] == "你是医学考试助手。"
    with pytest.raises(cd.ConfigError, match=r"\{qtyp\}"):
        convert("mlecqa", [src], tmp_path / "x.jsonl", templates={"instruction": "{qtyp}"})
    with pytest.raises(cd.ConfigError, match="no template"):
        convert("mlecqa", [src], tmp_path / "x.jsonl", templates={"nope": "x"})


def test_deterministic(shared_data: Path, tmp_path: Path) -> None:
    for adapter, src in [
        ("discmed", shared_data / "disc_med_sft" / "test_examples.jsonl"),
        ("cmd_toyhom", shared_data / "toyhom_cmdd" / "样例_内科5000-6000.csv"),
        ("meddialog", shared_data / "meddialog_covid" / "COVID-Dialogue-Dataset-Chinese.txt"),
    ]:
        a, b = tmp_path / f"{adapter}1.jsonl", tmp_path / f"{adapter}2.jsonl"
        convert(adapter, [src], a, batch_size=97)
        convert(adapter, [src], b)
        assert a.read_bytes() == b.read_bytes()


def test_bad_input_raises_or_quarantines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    items = json.loads((FIXTURES / "Clinic_train.json").read_text(encoding="utf-8"))
    items.insert(1, {"qid": "x", "qtext": "问题", "options": {"A": "a", "B": "b"}, "answer": "F"})
    items.append({"qid": "y", "options": {"A": "a"}, "answer": "A"})
    bad.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "o.jsonl"
    with pytest.raises(cd.ParseError) as e:
        convert("mlecqa", [bad], out)
    assert (e.value.record, e.value.field, e.value.kind) == (1, "answer", "value")
    assert not out.exists()
    assert main(["adapt", "mlecqa", str(bad), "-o", str(out)]) == 2
    assert "record 1, field 'answer'" in capsys.readouterr().err
    assert main(["adapt", "mlecqa", str(bad), "-o", str(out), "--on-error", "skip"]) == 1
    printed = capsys.readouterr().out
    assert "4 in, 2 converted" in printed and "2 rejected" in printed
    assert len(lines(out)) == 2
    q = lines(tmp_path / "o.quarantine.jsonl")
    assert [(x["record"], x["field"], x["kind"]) for x in q] == [
        (1, "answer", "value"),
        (3, "qtext", "missing_field"),
    ]
    assert json.loads(q[0]["raw"])["qid"] == "x"


def test_cli_adapt_options(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = shared_data / "disc_med_sft" / "test_examples.jsonl"
    out = tmp_path / "o.jsonl"
    code = main(
        ["adapt", "discmed", str(src), "-o", str(out), "--per-conversation",
         "--template", "system=你是医生。\\n请回答。", "--output-format", "json"]
    )  # fmt: skip
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["written"] == 163
    assert lines(out)[0]["system"] == "你是医生。\n请回答。"
    assert main(["adapt", "mapping", str(FIXTURES / "mapping.csv"), "-o", str(out),
                 "--map", "instruction=question", "--map", "output=answer"]) == 0  # fmt: skip
    assert (
        main(["adapt", "mapping", str(FIXTURES / "mapping.csv"), "-o", str(out), "--map", "x"]) == 2
    )
