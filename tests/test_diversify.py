"""SF-Med's instruction diversification without a model (``csft_data.diversifier``): the bank
algorithm with a deterministic fake generator (the history turns and the prompt, half/half
return, oldest-m/newest-n retention, swaps every K steps, the target), the checks, the reply
cache (a re-run generates nothing and writes the same bytes), the assignment to records, the
recipe table and the command line's errors (vLLM missing, a URL without a model)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from _diversify_common import Fake, seeds
from csft_data import ConfigError, diversify
from csft_data.cli import main
from csft_data.diversifier import (
    PROMPTS,
    BankSettings,
    Checker,
    assign_file,
    load_instructions,
    run_banks,
    split_instructions,
)
from csft_data.diversifier.bank import Banks
from csft_data.pipeline import DiversifyConfig, parse_recipe


def test_split_and_checks() -> None:
    reply = (
        "以下是一些指令：\n1. 请像医生一样回答。\n2、“请结合病史回答患者问题。”\n\n"
        "（3）【作为医生，请回答。】\n- done"
    )
    assert split_instructions(reply) == [
        "以下是一些指令：",
        "请像医生一样回答。",
        "请结合病史回答患者问题。",
        "作为医生，请回答。",
        "done",
    ]
    c = Checker(min_chars=8, max_chars=30)
    c.add(["请根据患者的问题，像医生一样进行回答。"])
    assert c.check("以下是一些指令：")[0] == ["incomplete sentence", "no medical term"]
    assert "too short (5 < 8 characters)" in c.check("请问诊断。")[0]
    assert c.check("医生" * 20 + "。")[0] == ["too long (41 > 30 characters)"]
    assert c.check("今天天气很好，我们去公园散步吧。")[0] == ["no medical term"]
    reasons, checks = c.check("请根据患者的问题，像医生一样进行回答吧。")
    assert reasons == ["near-duplicate (rouge-l 0.971 ≥ 0.7)"]
    assert checks["nearest"] == "请根据患者的问题，像医生一样进行回答。"
    ok, checks = c.check("请结合病史与检查结果，给出鉴别诊断的思路。")
    assert ok == [] and checks["complete"] and "诊断" in checks["terms"]
    jac = Checker(similarity="jaccard", threshold=0.5, ngram=2, terms=("患者",))
    jac.add(["请根据患者的问题进行回答。"])
    assert jac.check("请根据患者的问题认真进行回答。")[0][0].startswith("near-duplicate (jaccard")
    assert jac.check("请结合病史回答。")[0] == ["no medical term"]  # the user's terms only


def test_banks_split_retention_and_alternation() -> None:
    s = BankSettings(keep_oldest=2, keep_newest=3)
    banks = Banks.from_seeds(seeds(7), random.Random(0), s)
    assert len(banks.question) == 4 and len(banks.answer) == 3
    assert sorted(banks.question + banks.answer) == sorted(seeds(7))
    q0, a0 = list(banks.question), list(banks.answer)
    banks.add(["n0", "n1", "n2"])  # q, a, q
    banks.add(["n3", "n4"])  # a, q: alternation counts over the whole run
    assert banks.question == [*q0[:2], "n0", "n2", "n4"]  # oldest 2, newest 3
    assert banks.answer == [*a0, "n1", "n3"]  # five: nothing to drop yet
    banks.swap()
    assert banks.answer[-1] == "n4" and banks.swaps == 1


def test_a_step_is_history_pairs_then_the_instruction_to_expand() -> None:
    s = BankSettings(history=5, prompt=PROMPTS["en"])
    banks = Banks.from_seeds(seeds(13), random.Random(1), s)
    step = banks.draw(1, 5, s.prompt, random.Random(2))
    assert len(step.turns) == 11
    users, answers = step.turns[0::2], step.turns[1::2]
    assert all(u.endswith("\n" + PROMPTS["en"]) for u in users)
    questions = [u.split("\n")[0] for u in users]
    assert set(questions) <= set(banks.question) and set(answers) <= set(banks.answer)
    assert questions[-1] == step.parent and step.parent not in questions[:-1]
    # Small banks: a shorter history, never the instruction to expand in it.
    small = Banks.from_seeds(seeds(3), random.Random(1), s).draw(1, 5, "P", random.Random(3))
    assert len(small.turns) == 3 and small.parent not in small.turns[0]


def test_swap_every_k_steps_and_the_step_limit() -> None:
    asked: list[list[str]] = []

    def nothing(turns: Sequence[Sequence[str]], _seeds: Sequence[int]) -> list[str]:
        asked.extend(list(t) for t in turns)
        return ["" for _ in turns]

    s = BankSettings(history=2, swap_every=3, batch=2, max_steps=7, target=5)
    checker = Checker()
    checker.add(seeds(10))
    run, banks = run_banks("single", seeds(10), nothing, s, checker, seed=5)
    assert run.steps == 7 and run.swaps == 2 and not run.accepted
    first = Banks.from_seeds(seeds(10), random.Random("5:single"), s)
    for n, turns in enumerate(asked):
        q, a = (first.question, first.answer) if n < 3 or n >= 6 else (first.answer, first.question)
        assert {t.split("\n")[0] for t in turns[0::2]} <= set(q), n
        assert set(turns[1::2]) <= set(a), n
    assert banks.question == first.question and len(asked) == 7  # swapped twice


def test_target_half_half_and_provenance(tmp_path: Path) -> None:
    fake = Fake()
    s = BankSettings(history=5, batch=3, target=9, swap_every=4)
    checker = Checker()
    checker.add(seeds(12))
    run, banks = run_banks("multi", seeds(12), fake, s, checker, seed=11)
    assert len(run.accepted) == 9
    generated = [r["instruction"] for r in run.accepted]
    assert len(set(generated) & set(banks.question + banks.answer)) == 9
    assert len(banks.question) + len(banks.answer) == 12 + 9
    row = run.accepted[0]
    assert row["origin"] == "generated" and row["step"] == 1 and len(row["prompt_sha256"]) == 64
    assert row["parent"] in seeds(12) and row["checks"]["complete"]
    reasons = {r for x in run.rejected for r in x["reasons"]}
    assert {"incomplete sentence", "no medical term"} <= reasons
    assert any(r.startswith("too short") for r in reasons)


def test_diversify_writes_files_and_a_rerun_comes_from_the_cache(tmp_path: Path) -> None:
    fake = Fake()
    out = tmp_path / "instructions.jsonl"
    kw: dict[str, Any] = {"target": 6, "batch": 2, "seed": 3, "progress": False}
    first = diversify(out, generator=fake, **kw)
    assert first.reached and first.cache["hits"] == 0 and first.cache["misses"] == len(fake.calls)
    rows = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    for scenario in ("single", "multi"):
        mine = [r for r in rows if r["scenario"] == scenario]
        assert [r["origin"] for r in mine] == ["seed"] * 6 + ["generated"] * 6
    rejected = (tmp_path / "instructions.rejected.jsonl").read_text("utf-8")
    assert rejected and all(json.loads(x)["reasons"] for x in rejected.splitlines())
    data = out.read_bytes(), rejected
    calls = len(fake.calls)
    again = diversify(out, generator=fake, **kw)
    assert len(fake.calls) == calls and again.cache == {"hits": calls, "misses": 0}
    assert (out.read_bytes(), (tmp_path / "instructions.rejected.jsonl").read_text()) == data
    # Another seed, other prompts; one scenario only.
    other = diversify(
        tmp_path / "b.jsonl", generator=fake, **{**kw, "seed": 4}, scenarios=["single"]
    )
    assert set(other.scenarios) == {"single"}
    assert (tmp_path / "b.jsonl").read_bytes() != out.read_bytes()


def test_seed_files_and_their_errors(tmp_path: Path) -> None:
    txt = tmp_path / "seeds.txt"
    txt.write_text("\n".join(seeds(4)) + "\n", "utf-8")
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"instruction": "请像医生一样回答。", "scenario": "multi"}) + "\n")
    out = tmp_path / "o.jsonl"
    result = diversify(out, generator=Fake(), seeds=txt, target=2, progress=False)
    assert result.scenarios["single"]["seeds"] == result.scenarios["multi"]["seeds"] == 4
    with pytest.raises(ConfigError, match=r"one\.jsonl: 0 single seed\(s\)"):
        diversify(out, generator=Fake(), seeds=one, target=2)
    with pytest.raises(ConfigError, match=r"\[diversify\] similarity: expected one of"):
        diversify(out, generator=Fake(), similarity="cosine")


def records() -> list[dict[str, Any]]:
    qa = {"instruction": "头痛怎么办？", "input": "", "output": "多休息。", "history": []}
    return [
        {**qa, "style": "qa", "id": "q1"},
        {**qa, "style": "qa", "id": "q2", "system": "你是医生。"},
        {**qa, "style": "mcqa", "id": "m1", "instruction": "以下哪项正确？"},
        {**qa, "style": "dialogue", "id": "c1", "turn": 0},
        {**qa, "style": "dialogue", "id": "c1", "turn": 1, "history": [["头痛", "多久了？"]]},
        {**qa, "style": "qa", "input": "三天了", "id": None},
    ]


def test_assignment_by_scenario_placement_and_conversation(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records()]
    src.write_text("".join(lines), "utf-8")
    sets = {"single": ["单轮指令甲。", "单轮指令乙。"], "multi": ["多轮指令甲。", "多轮指令乙。"]}
    out = tmp_path / "out.jsonl"
    counts = assign_file(src, out, sets, seed=1, source="s")
    got = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    raw = out.read_text("utf-8").splitlines(keepends=True)
    assert got[0]["system"] in sets["single"] and got[5]["system"] in sets["single"]
    assert got[1]["system"] == "你是医生。" and raw[1] == lines[1]  # own system kept
    assert raw[2] == lines[2]  # mcqa: not diversified, byte for byte
    assert got[3]["system"] == got[4]["system"] and got[3]["system"] in sets["multi"]
    assert counts.assigned == {"single": 2, "multi": 2}
    assert counts.untouched == {"own system prompt kept": 1, "style mcqa not diversified": 1}
    assert sum(counts.per_instruction["multi"]) == 2
    # The same seed gives the same choice; as instruction, the question moves to the input.
    counts = assign_file(src, out, sets, seed=1, source="s", placement="instruction")
    moved = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert moved[0]["instruction"] == got[0]["system"] and moved[0]["input"] == "头痛怎么办？"
    assert moved[5]["input"] == "头痛怎么办？\n三天了"
    assert counts.assigned == {"single": 3, "multi": 2}
    picks = set()
    for seed in range(20):
        assign_file(src, out, sets, seed=seed, source="s")
        picks.add(json.loads(out.read_text("utf-8").splitlines()[0])["system"])
    assert picks == set(sets["single"])  # the seed changes the choice


def test_instruction_files_by_scenario(tmp_path: Path) -> None:
    f = tmp_path / "i.jsonl"
    rows = [
        {"instruction": "甲。", "scenario": "single"},
        {"instruction": "乙。"},
        {"instruction": "甲。", "scenario": "single"},
    ]
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    assert load_instructions(f) == {"single": ["甲。", "乙。"], "multi": ["乙。"]}
    f.write_text(json.dumps({"instruction": "丙。", "scenario": "triple"}) + "\n")
    with pytest.raises(ConfigError, match="scenario 'triple'"):
        load_instructions(f)


def test_recipe_table(tmp_path: Path) -> None:
    base = {"output": {"dir": "o"}, "source": [{"name": "a", "adapter": "alpaca", "path": "x"}]}
    r = parse_recipe({**base, "diversify": {"instructions": "i.jsonl"}}, base=tmp_path)
    assert r.diversify is not None and r.diversify.instructions == str(tmp_path / "i.jsonl")
    assert "diversify" in r.to_json()
    assert "diversify" not in parse_recipe(base, base=tmp_path).to_json()
    for table, message in [
        ({}, r"\[diversify\] generator: give instructions = FILE"),
        ({"generator": "gpt:x"}, "expected local:DIR, url:URL or vllm:DIR"),
        ({"generator": "url:http://h/v1"}, r"\[diversify\] model: a url: generator needs"),
        ({"generator": "url:https://u:p@h/v1", "model": "m"}, "credentials"),
        ({"instructions": "i", "styles": ["chat"]}, "styles: expected some of"),
        ({"instructions": "i", "min_chars": 50, "max_chars": 10}, "min_chars: must not be"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_recipe({**base, "diversify": table}, base=tmp_path)
    with pytest.raises(ConfigError, match=r"DiversifyConfig: \[diversify\] placement"):
        DiversifyConfig(instructions="i", placement="user")


def test_cli_errors_for_a_missing_vllm_and_a_url_without_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("csft_train")
    try:
        import vllm  # noqa: F401

        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    out = tmp_path / "o.jsonl"
    assert main(["diversify", "-o", str(out), "--generator", f"vllm:{tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "vllm:DIR needs the vllm package" in err and "pip install vllm" in err
    assert main(["diversify", "-o", str(out), "--generator", "url:http://127.0.0.1:9/v1"]) == 2
    assert "needs the endpoint's model name" in capsys.readouterr().err
    assert main(["diversify", "-o", str(out), "--generator", f"local:{tmp_path / 'none'}"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not out.exists()
