"""The Rust SFT/DPO encoder against an independent Python re-implementation of LLaMA-Factory's
formatting (``Template._encode``: each slot element tokenized on its own): pinned rendered strings
and token ids per template, labels masked exactly on the prompt, multi-turn history masking, the
length report's truncated totals, and the pairwise prompt sharing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

tokenizers = pytest.importorskip("tokenizers")

import csft_data as cd  # noqa: E402
from _tokenizer_common import INTERN_SYSTEM, QWEN_SYSTEM  # noqa: E402
from _train_common import cmexam_split  # noqa: E402

IM_SYSTEM = "<|im_start|>system\n{}<|im_end|>\n"
IM_USER = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
BOS, EOS = object(), object()

# LLaMA-Factory's slots (src/llamafactory/data/template.py): prefix, system, user, assistant.
LF: dict[str, dict[str, Any]] = {
    "intern2": {
        "prefix": [BOS],
        "system": [IM_SYSTEM],
        "user": [IM_USER],
        "assistant": ["{}<|im_end|>\n"],
        "default_system": INTERN_SYSTEM,
        "bos": "<s>",
        "eos": "</s>",
    },
    "qwen": {
        "prefix": [],
        "system": [IM_SYSTEM],
        "user": [IM_USER],
        "assistant": ["{}<|im_end|>\n"],
        "default_system": QWEN_SYSTEM,
        "bos": None,
        "eos": "<|im_end|>",
    },
    "llama3": {
        "prefix": [BOS],
        "system": ["<|start_header_id|>system<|end_header_id|>\n\n{}<|eot_id|>"],
        "user": [
            "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n"
        ],
        "assistant": ["{}<|eot_id|>"],
        "default_system": "",
        "bos": "<|begin_of_text|>",
        "eos": "<|eot_id|>",
    },
    "default": {
        "prefix": [],
        "system": ["System: {}", EOS, "\n"],
        "user": ["Human: {}", EOS, "\nAssistant:"],
        "assistant": ["{}", EOS, "\n"],
        "default_system": "",
        "bos": "<s>",
        "eos": "</s>",
    },
}


def lf_encode(tok: Any, template: str, system: str | None, msgs: list[str]) -> list[list[int]]:
    """Ids per message, as ``Template._encode`` + ``_convert_elements_to_ids``."""
    t = LF[template]
    system = system or t["default_system"]
    out = []
    for i, m in enumerate(msgs):
        elements: list[Any] = []
        if i == 0:
            elements += t["prefix"]
            if system:
                elements += [e.format(system) if isinstance(e, str) else e for e in t["system"]]
        slot = t["user"] if i % 2 == 0 else t["assistant"]
        elements += [e.format(m) if isinstance(e, str) else e for e in slot]
        ids: list[int] = []
        for e in elements:
            if e is BOS:
                bos = tok.token_to_id(t["bos"]) if t["bos"] else None
                ids += [bos] if bos is not None else []
            elif e is EOS:
                ids.append(tok.token_to_id(t["eos"]))
            elif e:
                ids += tok.encode(e, add_special_tokens=False).ids
        out.append(ids)
    return out


RECORD = {
    "instruction": "头痛怎么办",
    "input": "三天了",
    "output": "多休息。",
    "system": "你是医生",
}
PINNED = {
    "intern2": "<s><|im_start|>system\n你是医生<|im_end|>\n<|im_start|>user\n头痛怎么办\n三天了"
    "<|im_end|>\n<|im_start|>assistant\n多休息。<|im_end|>\n",
    "qwen": "<|im_start|>system\n你是医生<|im_end|>\n<|im_start|>user\n头痛怎么办\n三天了"
    "<|im_end|>\n<|im_start|>assistant\n多休息。<|im_end|>\n",
    "llama3": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n你是医生<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\n头痛怎么办\n三天了<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n多休息。<|eot_id|>",
    "default": "System: 你是医生</s>\nHuman: 头痛怎么办\n三天了</s>\nAssistant:多休息。</s>\n",
}


@pytest.mark.parametrize("template", ["intern2", "qwen", "llama3", "default"])
def test_rendered_string_ids_and_labels_are_llamafactorys(
    tokenizer_json: Path, template: str
) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    enc = cd.encode_supervised([RECORD], tokenizer_json, template=template, cutoff_len=4096)
    ids, labels = (x.tolist() for x in enc.example(0))
    assert tok.decode(ids, skip_special_tokens=False) == PINNED[template]
    prompt, response = lf_encode(
        tok, template, RECORD["system"], ["头痛怎么办\n三天了", "多休息。"]
    )
    assert ids == prompt + response
    assert labels == [-100] * len(prompt) + response
    # the template's special tokens sit where LLaMA-Factory puts them
    first = {"intern2": "<s>", "qwen": "<|im_start|>", "llama3": "<|begin_of_text|>"}
    if template in first:
        assert ids[0] == tok.token_to_id(first[template])
    # default system prompt when the record has none
    no_sys = {k: v for k, v in RECORD.items() if k != "system"}
    enc = cd.encode_supervised([no_sys], tokenizer_json, template=template, cutoff_len=4096)
    want = lf_encode(tok, template, None, ["头痛怎么办\n三天了", "多休息。"])
    assert enc.example(0)[0].tolist() == want[0] + want[1]


@pytest.mark.parametrize("mask_history", [False, True])
def test_multiturn_labels_on_real_records(
    tokenizer_json: Path, shared_data: Path, mask_history: bool
) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    recs = json.loads((shared_data / "cmtmedqa" / "CMtMedQA_test.json").read_text("utf-8"))
    recs = [r for r in recs if "instruction" in r and r.get("history")][:60]
    assert len(recs) == 60
    enc = cd.encode_supervised(
        recs, tokenizer_json, template="qwen", mask_history=mask_history, cutoff_len=100_000
    )
    for k, rec in enumerate(recs):
        msgs = [m for pair in rec["history"] for m in pair]
        query = "\n".join(q for q in (rec["instruction"], rec.get("input") or "") if q)
        parts = lf_encode(tok, "qwen", rec.get("system"), [*msgs, query, rec["output"]])
        want_ids: list[int] = []
        want_labels: list[int] = []
        last = len(parts) - 1
        for i, p in enumerate(parts):
            want_ids += p
            trained = i % 2 == 1 and (not mask_history or i == last)
            want_labels += p if trained else [-100] * len(p)
        ids, labels = enc.example(k)
        assert ids.tolist() == want_ids
        assert labels.tolist() == want_labels


@pytest.mark.slow
def test_encoded_lengths_equal_the_length_reports_truncated_totals(
    tokenizer_json: Path, shared_data: Path, tmp_path: Path
) -> None:
    cmt = json.loads((shared_data / "cmtmedqa" / "CMtMedQA_test.json").read_text("utf-8"))
    src = tmp_path / "cmt.jsonl"
    src.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in cmt if "instruction" in r),
        encoding="utf-8",
    )
    split = cmexam_split(shared_data, tmp_path / "cmexam.jsonl")
    for path in (src, split):
        for template in ("intern2", "qwen"):
            for cutoff in (64, 256, 1024):
                report = cd.token_lengths(
                    [path], tokenizer_json, template=template, cutoffs=[cutoff]
                )
                kept = report["total"]["cutoffs"][0]["kept_tokens"]
                enc = cd.encode_supervised(
                    path, tokenizer_json, template=template, cutoff_len=cutoff
                )
                assert len(enc) == report["total"]["counted"]
                assert int(enc.lengths.sum()) == kept, (path.name, template, cutoff)
                assert int(enc.lengths.max()) <= cutoff


def test_pairwise_shares_prompt_ids(tokenizer_json: Path) -> None:
    recs = [
        {"instruction": "头痛", "input": "", "chosen": "多休息。", "rejected": "不知道"},
        {"messages": [{"role": "user", "content": "发烧"}], "chosen": "就医", "rejected": "喝水"},
        {"instruction": "x", "chosen": "y"},
    ]
    pairs = cd.encode_pairwise(recs, tokenizer_json, template="qwen", on_error="skip")
    assert len(pairs) == 2 and pairs.indices.tolist() == [0, 1]
    assert pairs.rejections[0]["field"] == "rejected" and pairs.rejections[0]["record"] == 2
    p, c, _ = pairs.pair(0)
    sft = cd.encode_supervised(
        [{"instruction": "头痛", "output": "多休息。"}], tokenizer_json, template="qwen"
    )
    ids, labels = sft.example(0)
    assert np.array_equal(np.concatenate([p, c]), ids)
    assert (labels[: len(p)] == -100).all() and (labels[len(p) :] != -100).all()
    with pytest.raises(cd.ParseError, match="record 2"):
        cd.encode_pairwise(recs, tokenizer_json, template="qwen")


def test_template_tokens_name_the_usual_bos_eos_and_system() -> None:
    qwen = cd.template_tokens("qwen")
    assert qwen["eos_token"] == "<|im_end|>" and qwen["bos_token"] is None
    assert qwen["default_system"].startswith("You are Qwen")
    assert qwen["default_system"] == QWEN_SYSTEM
    assert cd.template_tokens("llama3")["eos_token"] == "<|eot_id|>"
    with pytest.raises(cd.ConfigError, match="nope"):
        cd.template_tokens("nope")
