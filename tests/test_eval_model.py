"""Model-driven evaluation (``training/csft_train/evaluate``): loaders on real-format fixtures,
CMB's official prompt, and — with torch — tiny Llama models built from a config with a tokenizer
trained here on the real texts of ``../shared/data``: loglik with a forced answer scored against
hand-computed accuracies, gen mode's submission file, multi-answer fallbacks, batching
invariance, the memorization check (a model overfit here on two samples), judge parsing, and
real CMExam rows whose key is empty or names no option: left out, counted and listed (an error
with ``--strict-answers``), through the loaders, the adapters and ``eval mcqa``/``eval cmb``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from csft_data import ConfigError, CsftDataError

pytest.importorskip("csft_train")

from csft_train.evaluate.items import (
    McqaItem,
    SkippedItem,
    load_cmb,
    load_cmexam,
    load_cmmlu,
    load_items,
    load_with_adapter,
)
from csft_train.evaluate.judge import judge_answers, parse_score
from csft_train.evaluate.prompt import (
    filtered_options,
    messages_for,
    pick_shots,
    question_text,
    shown_options,
)

DATA = Path(__file__).parent / "data" / "eval"
QUESTIONS = DATA / "cmb_test_questions.json"
ANSWERS = DATA / "cmb_test_answers.json"
VAL = DATA / "cmb_val.json"


# ---------------------------------------------------------------- loaders and prompts (no torch)


def test_cmb_loader_joins_answers_and_flags_multi() -> None:
    items = load_cmb(QUESTIONS, ANSWERS)
    assert [i.id for i in items] == list(range(1, 17))
    assert [i.id for i in items if i.multi] == [15, 16]
    assert items[14].answer == "ABC" and items[0].answer == "C"
    assert items[0].options == {
        "A": "原发病", "B": "出血部位", "C": "出血量", "D": "在胃内停留时间", "E": "以上均非",
    }  # fmt: skip
    assert all(i.answer is None for i in load_cmb(QUESTIONS))


def test_cmb_loader_errors_name_file_and_field(tmp_path: Path) -> None:
    bad = json.loads(ANSWERS.read_text("utf-8"))
    bad[2]["answer"] = "H"
    path = tmp_path / "a.json"
    path.write_text(json.dumps(bad, ensure_ascii=False), "utf-8")
    with pytest.raises(ConfigError, match=r"a.json: record 2, field 'answer': answer 'H'"):
        load_cmb(QUESTIONS, path)
    short = tmp_path / "short.json"
    short.write_text(json.dumps(bad[:2]), "utf-8")
    with pytest.raises(ConfigError, match="item id 3 has no answer in"):
        load_cmb(QUESTIONS, short)


def test_official_prompt_text() -> None:
    item = load_cmb(QUESTIONS, ANSWERS)[0]
    assert question_text(item) == (
        "以下是中国医师考试中执业医师考试的一道单项选择题，不需要做任何分析和解释，直接输出答案选项。\n"
        "上消化道出血可单纯表现为呕血或黑便，也可两者兼有，这取决于\n"
        "A. 原发病\nB. 出血部位\nC. 出血量\nD. 在胃内停留时间\nE. 以上均非"
    )


def test_official_option_filter_hides_one_character_options() -> None:
    items = load_cmb(QUESTIONS, ANSWERS)
    single_char = items[12]  # options 燥/热/寒/滞/瘀: workers/base.py keeps len(v) > 1 only
    assert filtered_options(single_char, "official") == {}
    assert filtered_options(single_char, "nonempty") == single_char.options
    # Shown whole rather than not at all.
    assert shown_options(single_char, "official") == single_char.options
    assert question_text(single_char).endswith("\nA. 燥\nB. 热\nC. 寒\nD. 滞\nE. 瘀")
    mixed = McqaItem(id=0, question="q", options={"A": "是", "B": "不是"}, answer="B", multi=False)
    assert question_text(mixed).endswith("\nq\nB. 不是")


def test_k_shot_prefers_the_same_class_and_is_deterministic() -> None:
    items = load_cmb(QUESTIONS, ANSWERS)
    pool = load_cmb(VAL, require_id=False)
    item = items[0]  # 医师考试/执业医师; the val pool has two of that class
    shots = pick_shots(item, pool, 3, seed=1)
    assert shots == pick_shots(item, pool, 3, seed=1)
    same = [p for p in pool if (p.exam_type, p.exam_class) == ("医师考试", "执业医师")]
    assert len(same) == 2 and all(s in shots for s in same)
    msgs = messages_for(item, shots)
    assert len(msgs) == 7 and msgs[1] == f"答案是{shots[0].answer}。"


def test_cmexam_cmmlu_and_adapter_loaders() -> None:
    cmexam = load_cmexam(DATA / "cmexam_sample.csv")
    assert len(cmexam) == 7 and cmexam[-1].answer == "ABC" and cmexam[-1].multi
    assert cmexam[0].options["C"] == "出血量"
    cmmlu = load_cmmlu(DATA / "clinical_knowledge.csv")
    assert len(cmmlu) == 6 and cmmlu[0].exam_class == "clinical_knowledge"
    assert cmmlu[0].answer == "D" and list(cmmlu[0].options) == ["A", "B", "C", "D"]
    assert load_items(DATA / "clinical_knowledge.csv")[1].id == "clinical_knowledge/1"
    via = load_with_adapter("cmb", [Path(__file__).parent / "data/adapters/cmb_train.json"])
    assert [(i.answer, i.multi) for i in via] == [("D", False), ("ACD", True), ("C", False)]
    assert via[1].options["C"] == "头孢唑林"
    assert via[0].question.endswith("此男孩可能患")
    ex = load_with_adapter("cmexam", [DATA / "cmexam_sample.csv"])
    assert [i.answer for i in ex] == [i.answer for i in cmexam]
    with pytest.raises(ConfigError, match="not mcqa"):
        load_with_adapter("cmedqa2", [DATA / "cmexam_sample.csv"])


#: Rows of the real CMExam sample whose key is blanked (2, 7) or names no option (5: "F" of A–E).
BLANKED, BAD_LETTER = (2, 7), 5


def cmexam_with_unusable_keys(shared: Path, out: Path, n: int = 12) -> Path:
    """The first ``n`` rows of the real CMExam validation sample, with the keys of
    :data:`BLANKED` emptied and that of :data:`BAD_LETTER` naming no option."""
    src = shared / "cmexam" / "cmexam_val_part1.csv"
    reader = csv.DictReader(io.StringIO(src.read_text("utf-8")))
    rows = [dict(r) for r in list(reader)[:n]]
    for k in BLANKED:
        rows[k]["Answer"] = ""
    assert rows[BAD_LETTER]["Options"].split("\\n")[-1].startswith("E ")
    rows[BAD_LETTER]["Answer"] = "F"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(reader.fieldnames or []), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    out.write_text(buf.getvalue(), "utf-8")
    return out


def test_unusable_keys_are_left_out_and_listed_or_an_error(
    shared_data: Path, tmp_path: Path
) -> None:
    path = cmexam_with_unusable_keys(shared_data, tmp_path / "cmexam.csv")
    with pytest.raises(ConfigError, match=r"cmexam.csv: record 2, field 'Answer': empty answer"):
        load_cmexam(path)
    skipped: list[SkippedItem] = []
    items = load_cmexam(path, skipped=skipped)
    left_out = sorted([*BLANKED, BAD_LETTER])
    assert [i.id for i in items] == [n for n in range(12) if n not in left_out]
    assert all(i.answer for i in items)
    assert [(s.record, s.id, s.field) for s in skipped] == [(n, n, "Answer") for n in left_out]
    assert skipped[0].reason == "empty answer (options ABCDE)"
    assert skipped[1].reason == "answer 'F' names no option (options ABCDE)"
    assert skipped[1].to_json() == {
        "file": str(path), "record": 5, "id": 5, "field": "Answer",
        "reason": "answer 'F' names no option (options ABCDE)",
    }  # fmt: skip
    again: list[SkippedItem] = []
    assert load_items(path, skipped=again) == items and again == skipped

    # The adapter path: the same items, the same left out (with their line and adapter id).
    with pytest.raises(CsftDataError, match=r"cmexam.csv:4 \(record 2, field 'answer'\)"):
        load_with_adapter("cmexam", [path])
    via_skipped: list[SkippedItem] = []
    via = load_with_adapter("cmexam", [path], skipped=via_skipped)
    assert [i.answer for i in via] == [i.answer for i in items]
    assert [(s.record, s.line, s.id) for s in via_skipped] == [
        (n, n + 2, f"cmexam.csv:{n}") for n in left_out
    ]
    assert "names no option" in via_skipped[1].reason

    # No question text is a malformed item, not a missing key: an error either way, also
    # after an item left out (record 2) and with no key either (record 7).
    for record in (3, 7):
        rows = path.read_text("utf-8").splitlines()
        cells = next(csv.reader([rows[record + 1]]))
        cells[0] = " "
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(cells)
        rows[record + 1] = buf.getvalue()
        no_question = tmp_path / "no_question.csv"
        no_question.write_text("\n".join(rows) + "\n", "utf-8")
        with pytest.raises(
            ConfigError, match=rf"record {record}, field 'Question': empty question"
        ):
            load_cmexam(no_question, skipped=[])
        with pytest.raises(
            CsftDataError,
            match=rf"no_question.csv:{record + 2} \(record {record}, field 'question'",
        ):
            load_with_adapter("cmexam", [no_question], skipped=[])


def test_unusable_cmb_and_cmmlu_keys_are_left_out(tmp_path: Path) -> None:
    answers = json.loads(ANSWERS.read_text("utf-8"))
    answers[1]["answer"] = ""
    answers[4]["answer"] = "X"
    apath = tmp_path / "answers.json"
    apath.write_text(json.dumps(answers, ensure_ascii=False), "utf-8")
    with pytest.raises(ConfigError, match=r"answers.json: record 1, field 'answer': empty"):
        load_cmb(QUESTIONS, apath)
    skipped: list[SkippedItem] = []
    items = load_cmb(QUESTIONS, apath, skipped=skipped)
    assert len(items) == 14 and 2 not in [i.id for i in items]
    assert [(s.file, s.record, s.id) for s in skipped] == [(str(apath), 1, 2), (str(apath), 4, 5)]
    # A val file carrying its answers, read directly and through the cmb adapter.
    val = json.loads(VAL.read_text("utf-8"))
    val[3]["answer"] = " "
    vpath = tmp_path / "val.json"
    vpath.write_text(json.dumps(val, ensure_ascii=False), "utf-8")
    skipped = []
    assert len(load_cmb(vpath, require_id=False, skipped=skipped)) == 5
    assert [(s.record, s.id) for s in skipped] == [(3, 3)]
    skipped = []
    assert len(load_with_adapter("cmb", [vpath], skipped=skipped)) == 5
    assert [(s.record, s.reason) for s in skipped] == [(3, "empty answer")]
    # CMMLU.
    lines = (DATA / "clinical_knowledge.csv").read_text("utf-8").splitlines()
    assert lines[1].endswith(",D")
    lines[1] = lines[1][:-1]
    cpath = tmp_path / "clinical_knowledge.csv"
    cpath.write_text("\n".join(lines) + "\n", "utf-8")
    skipped = []
    assert len(load_cmmlu(cpath, skipped=skipped)) == 5
    assert [s.id for s in skipped] == ["clinical_knowledge/0"]


def test_judge_score_parsing_and_mean() -> None:
    table = {
        "回答基本正确，但缺少用药禁忌。\n评分：7": 7.0,
        "理由……\n评分: 8.5": 8.5,
        "Score: 9": 9.0,
        "I'd rate it [[6]]": 6.0,
        "整体 8/10": 8.0,
        "给 5 分": 5.0,
        "评分：11（超出范围）": None,
        "无法评价": None,
    }
    for text, want in table.items():
        assert parse_score(text) == want, text
    items = [{"id": n, "question": "头痛怎么办", "answer": a} for n, a in enumerate("ab")]
    rows, summary = judge_answers(items, lambda ps: ["评分：4", "没有分数"][: len(ps)])
    assert [r["score"] for r in rows] == [4.0, None]
    assert summary == {"items": 2, "scored": 1, "unparsed": 1, "mean": 4.0}


# ---------------------------------------------------------------- tiny models (torch)


@pytest.fixture(scope="module")
def torch_mod() -> Any:
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tokenizer(torch_mod: Any, tokenizer_json: Path) -> Any:
    """The session's byte-level tokenizer (``<s>``/``</s>`` are ids 0 and 1) with a ChatML
    template, as ``transformers`` loads it."""
    pytest.importorskip("transformers")
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_json), bos_token="<s>", eos_token="</s>"
    )
    hf.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return hf


def tiny_llama(torch_mod: Any, vocab: int, seed: int = 0) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch_mod.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=0,
        eos_token_id=1,
    )
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def model(torch_mod: Any, tokenizer: Any) -> Any:
    return tiny_llama(torch_mod, len(tokenizer))


@pytest.fixture(scope="module")
def model_dir(
    model: Any, tokenizer: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    yield d


def forced(torch_mod: Any, model: Any, token_id: int) -> Any:
    """A copy of ``model`` whose every next-token distribution peaks at ``token_id``: the LM
    head becomes a zero-weight linear layer with a bias of 10 on that token."""
    import copy

    m = copy.deepcopy(model)
    head = torch_mod.nn.Linear(m.config.hidden_size, m.config.vocab_size, bias=True)
    with torch_mod.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[token_id] = 10.0
    m.lm_head = head
    return m


def test_letter_tokens_are_taken_as_they_follow_the_prefix(tokenizer: Any) -> None:
    from csft_train.evaluate.engine import encode, letter_token_ids

    ids = letter_token_ids(tokenizer, "答案是", "ABCDE")
    assert len(set(ids.values())) == 5
    for letter, tid in ids.items():
        assert encode(tokenizer, ["答案是" + letter])[0][-1] == tid
        assert tokenizer.decode([tid]) == letter


def test_loglik_forced_answer_scores_as_hand_computed(
    torch_mod: Any, model: Any, tokenizer: Any, tmp_path: Path
) -> None:
    from csft_train.evaluate.engine import letter_token_ids
    from csft_train.evaluate.mcqa import McqaConfig, evaluate_mcqa, write_outputs
    from csft_train.evaluate.prompt import ChatRenderer

    items = load_cmb(QUESTIONS, ANSWERS)
    b = letter_token_ids(tokenizer, "答案是", "B")["B"]
    m = forced(torch_mod, model, b)
    res = evaluate_mcqa(
        items, m, tokenizer, ChatRenderer(tokenizer, "chatml"), McqaConfig("loglik", 5)
    )
    assert res.counts["loglik"] == 14 and res.counts["multi_fallback"] == 2
    assert res.counts["generated"] == 2 and res.counts["options_hidden"] == 2  # ids 13, 14
    singles = [a for a, i in zip(res.answers, items, strict=True) if not i.multi]
    assert singles == ["B"] * 14
    # Generation keeps emitting "B": the official extractor keeps every repeat ("BBB…").
    assert all(set(a) == {"B"} and len(a) > 1 for a in res.answers[14:])
    s = res.score
    assert s is not None
    # Keys B: ids 4, 5, 6, 8, 11, 13 → 6 of 16.
    assert (s.correct, s.items) == (6, 16) and s.micro == pytest.approx(37.5)
    assert s.per_exam_class["医技考试/医技师"] == pytest.approx(100.0)
    assert s.per_exam_class["专业知识考试/预防医学与公共卫生学"] == pytest.approx(100 / 3)
    assert s.per_exam_type == pytest.approx(
        {
            "医师考试": 0.0, "护理考试": 50.0, "药师考试": 50.0, "医技考试": 100.0,
            "专业知识考试": (50.0 + 100 / 3) / 2, "医学考研": 0.0,
        }
    )  # fmt: skip
    assert s.macro == pytest.approx((0 + 50 + 50 + 100 + (50 + 100 / 3) / 2 + 0) / 6)
    rec = res.records[0]
    assert rec["mode"] == "loglik" and max(rec["logprobs"], key=rec["logprobs"].get) == "B"

    paths = write_outputs(res, tmp_path)
    sub = json.loads(paths["predictions"].read_text("utf-8"))
    assert [p["id"] for p in sub] == list(range(1, 17)) and sub[3] == {
        "id": 4,
        "model_answer": "B",
    }
    assert json.loads(paths["scores"].read_text("utf-8"))["micro"] == pytest.approx(37.5)
    report = json.loads(paths["report"].read_text("utf-8"))
    assert report["counts"]["multi_fallback"] == 2


def test_loglik_is_batch_invariant_and_deterministic(model: Any, tokenizer: Any) -> None:
    from csft_train.evaluate.mcqa import McqaConfig, evaluate_mcqa
    from csft_train.evaluate.prompt import ChatRenderer

    items = [i for i in load_cmb(QUESTIONS, ANSWERS) if not i.multi]
    r = ChatRenderer(tokenizer, "auto")
    one = evaluate_mcqa(items, model, tokenizer, r, McqaConfig("loglik", batch_size=1))
    many = evaluate_mcqa(items, model, tokenizer, r, McqaConfig("loglik", batch_size=6))
    again = evaluate_mcqa(items, model, tokenizer, r, McqaConfig("loglik", batch_size=6))
    for a, b in zip(one.records, many.records, strict=True):
        assert a["logprobs"] == pytest.approx(b["logprobs"], abs=1e-4)
    assert many.records == again.records


def test_gen_mode_writes_a_submission_with_every_id(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from csft_data.cli import main

    out = tmp_path / "gen"
    argv = ["eval", "cmb", "--model", str(model_dir), "--questions", str(QUESTIONS),
            "--answers", str(ANSWERS), "--template", "chatml", "--batch-size", "4",
            "--max-new-tokens", "6", "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    sub = json.loads((out / "predictions.json").read_text("utf-8"))
    assert [p["id"] for p in sub] == list(range(1, 17))
    assert all(isinstance(p["model_answer"], str) for p in sub)
    rows = [json.loads(x) for x in (out / "outputs.jsonl").read_text("utf-8").splitlines()]
    assert all(r["mode"] == "gen" and 0 < r["output_tokens"] <= 6 for r in rows)
    report = json.loads((out / "report.json").read_text("utf-8"))
    assert report["counts"]["generated"] == 16 and report["counts"]["multi_fallback"] == 0
    assert report["items_per_second"] > 0
    assert "items/s" in capsys.readouterr().out

    # loglik through the CLI, with 2-shot prompts from the val file.
    out2 = tmp_path / "ll"
    argv2 = ["eval", "cmb", "--model", str(model_dir), "--questions", str(QUESTIONS),
             "--mode", "loglik", "--shots", "2", "--val", str(VAL), "--template", "chatml",
             "--output", str(out2)]  # fmt: skip
    assert main(argv2) == 0
    report2 = json.loads((out2 / "report.json").read_text("utf-8"))
    assert report2["counts"]["multi_fallback"] == 2 and report2["score"] is None
    assert "multi-answer items answered by generation instead: 2" in capsys.readouterr().out


def test_mcqa_command_on_cmmlu_and_bad_model_path(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from csft_data.cli import main

    out = tmp_path / "cmmlu"
    argv = ["eval", "mcqa", "--model", str(model_dir), "--data",
            str(DATA / "clinical_knowledge.csv"), "--mode", "loglik", "--template", "chatml",
            "--generic-prompt", "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    scores = json.loads((out / "scores.json").read_text("utf-8"))
    assert scores["items"] == 6 and list(scores["per_exam_type"]) == ["CMMLU"]
    bad = ["eval", "cmb", "--model", str(tmp_path / "nope"), "--questions", str(QUESTIONS)]
    assert main(bad) == 2
    assert "not a model folder" in capsys.readouterr().err


# ---------------------------------------------------------------- memorization


def _train_records() -> list[dict[str, Any]]:
    """Six SFT records from the CMB-val fixture: question → explanation (cut to 60 characters
    so that a tiny model memorizes two of them in a few seconds)."""
    items = load_cmb(VAL, require_id=False)
    return [
        {"id": f"r{n}", "instruction": i.question, "input": "", "output": i.explanation[:60]}
        for n, i in enumerate(items)
    ]


def test_memorization_with_an_injected_generator(tokenizer: Any) -> None:
    from csft_train.evaluate import memorization as mem
    from csft_train.evaluate.prompt import ChatRenderer

    records = _train_records()
    samples = mem.build_samples(
        records, tokenizer, renderer=ChatRenderer(tokenizer, "chatml"), prefix_ratio=0.5
    )
    assert len(samples) == len(records)

    def fake(prefixes: list[list[int]], budgets: list[int]) -> list[str]:
        # Reproduces sample 2's suffix exactly and half of sample 4's; nothing else.
        out = ["完全无关的回答"] * len(prefixes)
        out[2] = samples[2].suffix
        out[4] = samples[4].suffix[: len(samples[4].suffix) // 2]
        return out

    res = mem.check(samples, fake, threshold=0.8)
    assert res.memorized == [2]
    assert res.fmeasure[2] == pytest.approx(1.0)
    assert 0.5 < res.fmeasure[4] < 0.8
    assert res.summary()["share"] == pytest.approx(1 / len(records))
    some = mem.build_samples(
        records, tokenizer, renderer=None, samples=3, seed=5, split="text", prefix_ratio=0.3
    )
    assert len(some) == 3 and some == mem.build_samples(
        records, tokenizer, renderer=None, samples=3, seed=5, split="text", prefix_ratio=0.3
    )


def test_memorization_finds_samples_a_model_was_overfit_on(
    torch_mod: Any, tokenizer: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from csft_data.cli import main
    from csft_train.evaluate.prompt import ChatRenderer

    records = _train_records()
    planted = [1, 3]
    renderer = ChatRenderer(tokenizer, "chatml")
    model = tiny_llama(torch_mod, len(tokenizer), seed=1).train()
    # Both planted records in one batch, loss on the responses only (as SFT trains).
    rows = []
    for i in planted:
        prompt = tokenizer(renderer.render([records[i]["instruction"]]), add_special_tokens=False)
        answer = tokenizer(records[i]["output"] + "<|im_end|>", add_special_tokens=False)
        rows.append((prompt["input_ids"], answer["input_ids"]))
    width = max(len(p) + len(a) for p, a in rows)
    x = torch_mod.full((2, width), 1)
    labels = torch_mod.full((2, width), -100)
    mask = torch_mod.zeros((2, width), dtype=torch_mod.long)
    for n, (p, a) in enumerate(rows):
        x[n, : len(p) + len(a)] = torch_mod.tensor(p + a)
        labels[n, len(p) : len(p) + len(a)] = torch_mod.tensor(a)
        mask[n, : len(p) + len(a)] = 1
    opt = torch_mod.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = model(input_ids=x, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
    model.eval()
    d = tmp_path / "overfit"
    model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    listed = tmp_path / "mem.jsonl"
    argv = ["eval", "memorization", "--model", str(d), "--data", str(data), "--template",
            "chatml", "--output", str(listed), "--json", str(tmp_path / "s.json")]  # fmt: skip
    assert main(argv) == 1  # findings
    rows = [json.loads(x) for x in listed.read_text("utf-8").splitlines()]
    assert sorted(r["index"] for r in rows) == planted
    summary = json.loads((tmp_path / "s.json").read_text("utf-8"))
    assert summary["memorized"] == 2 and summary["samples"] == len(records)
    assert "2 of 6 samples memorized" in capsys.readouterr().out


def test_items_model_has_the_cmb_answer_shape() -> None:
    item = McqaItem(id=7, question="q", options={"A": "x"}, answer="A", multi=False)
    assert set(item.answer_item()) == {"id", "exam_type", "exam_class", "question_type", "answer"}


def test_model_commands_without_torch_exit_2_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from csft_data.cli import main

    monkeypatch.setitem(sys.modules, "torch", None)
    (tmp_path / "config.json").write_text("{}", "utf-8")
    argv = ["eval", "cmb", "--model", str(tmp_path), "--questions", str(QUESTIONS)]
    assert main(argv) == 2
    assert "pip install ./training" in capsys.readouterr().err


def test_judge_and_adapter_commands_run_end_to_end(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from csft_data.cli import main

    answers = tmp_path / "answers.jsonl"
    rows = [{"id": f"a{n}", "instruction": "头痛三天怎么办", "output": o} for n, o in
            enumerate(["多休息，必要时就医。", "服用布洛芬。"])]  # fmt: skip
    answers.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    out = tmp_path / "judge.jsonl"
    argv = ["eval", "judge", "--answers", str(answers), "--judge-model", str(model_dir),
            "--template", "chatml", "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    got = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert [g["id"] for g in got] == ["a0", "a1"]
    # A random tiny judge writes no score: every item is counted as unparsed, none invented.
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["items"] == 2 and summary["scored"] + summary["unparsed"] == 2
    assert main(["eval", "judge", "--answers", str(answers)]) == 2

    res = tmp_path / "adapted"
    argv = ["eval", "mcqa", "--model", str(model_dir), "--adapter", "cmexam", "--data",
            str(DATA / "cmexam_sample.csv"), "--mode", "loglik", "--template", "chatml",
            "--output", str(res)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((res / "report.json").read_text("utf-8"))
    assert report["counts"]["items"] == 7 and report["counts"]["multi_fallback"] == 1


def test_eval_mcqa_and_cmb_leave_out_unusable_keys(
    model_dir: Path, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from csft_data.cli import main

    data = cmexam_with_unusable_keys(shared_data, tmp_path / "cmexam.csv")
    left_out = sorted([*BLANKED, BAD_LETTER])
    for how in ([], ["--adapter", "cmexam"]):
        out = tmp_path / f"out{len(how)}"
        argv = ["eval", "mcqa", "--model", str(model_dir), "--data", str(data), *how,
                "--mode", "loglik", "--template", "chatml", "--output", str(out)]  # fmt: skip
        assert main(argv) == 0
        report = json.loads((out / "report.json").read_text("utf-8"))
        assert report["counts"]["items"] == 9 and report["counts"]["skipped"] == 3
        assert [s["record"] for s in report["skipped"]] == left_out
        assert all(s["file"] == str(data) and s["reason"] for s in report["skipped"])
        assert json.loads((out / "scores.json").read_text("utf-8"))["items"] == 9
        assert len(json.loads((out / "predictions.json").read_text("utf-8"))) == 9
        assert "left out: 3 items without a usable answer" in capsys.readouterr().out
        assert main([*argv, "--strict-answers"]) == 2
        err = capsys.readouterr().err
        assert "cmexam.csv" in err and "record 2, field" in err and "empty answer" in err

    answers = json.loads(ANSWERS.read_text("utf-8"))
    answers[0]["answer"] = ""
    apath = tmp_path / "answers.json"
    apath.write_text(json.dumps(answers, ensure_ascii=False), "utf-8")
    out = tmp_path / "cmb"
    argv = ["eval", "cmb", "--model", str(model_dir), "--questions", str(QUESTIONS),
            "--answers", str(apath), "--mode", "loglik", "--template", "chatml",
            "--output-format", "json", "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["skipped"] == 1 and report["skipped"][0]["id"] == 1
    assert report["score"]["items"] == 15
    assert main([*argv, "--strict-answers"]) == 2
    assert "answers.json: record 0, field 'answer': empty answer" in capsys.readouterr().err
