"""Token-length bucketing against the Python ``tokenizers`` package: tokenizers trained here on
real texts of ``../shared/data`` (the session's byte-level BPE and a Metaspace BPE, 1.5k vocab,
with the special tokens of the chat templates), counts of real texts, per-record prompt/response
counts of rendered intern2/qwen conversations recomputed element by element in Python, and the
``csft-data lengths`` command end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

tokenizers = pytest.importorskip("tokenizers")

import csft_data as cd  # noqa: E402
from _tokenizer_common import INTERN_SYSTEM, QWEN_SYSTEM, train_tokenizer  # noqa: E402
from csft_data.cli import main  # noqa: E402


@pytest.fixture(scope="module", params=["bytelevel", "metaspace"])
def any_tokenizer(
    request: pytest.FixtureRequest,
    real_texts: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Each kind of BPE: the session's byte-level tokenizer (``tokenizer_json`` of
    ``conftest.py``) and a Metaspace one trained here on the same texts."""
    if request.param == "bytelevel":
        return Path(request.getfixturevalue("tokenizer_json"))
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    return train_tokenizer(real_texts, path, kind="metaspace")


def hf_len(tok: Any, text: str) -> int:
    return len(tok.encode(text, add_special_tokens=False).ids) if text else 0


def test_counts_equal_hf_tokenizers(any_tokenizer: Path, real_texts: list[str]) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(any_tokenizer))
    extra = [
        "",
        " ",
        "<|im_start|>user\n头痛<|im_end|>\n<|im_start|>assistant\n",
        "<s>前后</s> x",
        "Hello,  world!\n\n\tTabs and 123,456.78 numbers; don't stop",
        "😀 emoji ① ＡＢＣ ﹏ 𠀀",
    ]
    sample = real_texts + extra
    assert len(sample) > 3000
    got = cd.count_tokens(any_tokenizer, sample)
    want = [hf_len(tok, t) for t in sample]
    pairs = zip(sample, got.tolist(), want, strict=True)
    mismatches = [(t[:40], g, w) for t, g, w in pairs if g != w]
    assert not mismatches, mismatches[:5]
    assert got.dtype.name == "uint32" and int(got.sum()) > 100_000


def lf_messages(rec: dict[str, Any]) -> tuple[str | None, list[str]] | None:
    """LLaMA-Factory's view of a record: (system, alternating messages), None if invalid."""
    if "conversation" in rec:
        msgs = [t["content"] for t in rec["conversation"]]
        roles = [t["role"] for t in rec["conversation"]]
        if len(msgs) % 2 or roles != ["user", "assistant"] * (len(msgs) // 2):
            return None
        return rec.get("system"), msgs
    if not isinstance(rec.get("instruction"), str) or not isinstance(rec.get("output"), str):
        return None
    msgs = [m for pair in rec.get("history") or [] for m in pair]
    query = "\n".join(q for q in (rec["instruction"], rec.get("input") or "") if q)
    return rec.get("system"), [*msgs, query, rec["output"]]


def lf_counts(tok: Any, template: str, system: str | None, msgs: list[str]) -> tuple[int, int]:
    """(prompt, response) tokens: every element encoded on its own, as encode_multiturn."""
    user = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
    sys_slot = "<|im_start|>system\n{}<|im_end|>\n"
    default = INTERN_SYSTEM if template == "intern2" else QWEN_SYSTEM
    system = system or default
    counts = []
    for i, m in enumerate(msgs):
        n = 0
        if i == 0:
            n += 1 if template == "intern2" else 0  # BOS prefix
            n += hf_len(tok, sys_slot.format(system)) if system else 0
        n += hf_len(tok, user.format(m) if i % 2 == 0 else m + "<|im_end|>\n")
        counts.append(n)
    return sum(counts[:-1]), counts[-1]


@pytest.mark.parametrize("template", ["intern2", "qwen"])
def test_rendered_records_match_element_by_element_python(
    any_tokenizer: Path, shared_data: Path, tmp_path: Path, template: str
) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(any_tokenizer))
    disc = shared_data / "disc_med_sft" / "test_examples.jsonl"
    cmt = shared_data / "cmtmedqa" / "CMtMedQA_test.json"
    buckets = tmp_path / "buckets.jsonl"
    stats = cd.token_lengths(
        [disc, cmt], any_tokenizer, template=template, buckets=buckets, cutoffs=[1024]
    )
    got = {
        (b["source"], b["index"]): (b["prompt_tokens"], b["response_tokens"])
        for b in map(json.loads, buckets.read_text("utf-8").splitlines())
    }
    records = {
        "test_examples": [json.loads(line) for line in disc.read_text("utf-8").splitlines()],
        "CMtMedQA_test": json.loads(cmt.read_text("utf-8")),
    }
    expected: dict[tuple[str, int], tuple[int, int]] = {}
    for source, recs in records.items():
        for i, rec in enumerate(recs):
            conv = lf_messages(rec)
            if conv is not None:
                expected[(source, i)] = lf_counts(tok, template, *conv)
    assert got == expected
    multi = sum(len(r.get("history") or []) > 0 for r in records["CMtMedQA_test"])
    assert multi > 100, "multi-turn records are in the comparison"
    assert stats["total"]["rejected"] == 1144 + 163 - len(expected)


def test_cli_table_buckets_and_exit_codes(
    any_tokenizer: Path, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cmt = json.loads((shared_data / "cmtmedqa" / "CMtMedQA_test.json").read_text("utf-8"))
    clean = tmp_path / "cmt_alpaca.jsonl"
    clean.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in cmt if "instruction" in r),
        encoding="utf-8",
    )
    disc = shared_data / "disc_med_sft" / "test_examples.jsonl"
    buckets = tmp_path / "b.jsonl"
    code = main(
        [
            "lengths",
            str(disc),
            str(clean),
            "--tokenizer",
            str(any_tokenizer),
            "--cutoffs",
            "256,1024",
            "--buckets",
            str(buckets),
            "--quarantine",
            str(tmp_path / "q.jsonl"),
        ]
    )
    out = capsys.readouterr()
    assert code == 1, "DISC-Med-SFT has conversations ending with the user: rejected"
    assert "test_examples" in out.out and "cmt_alpaca" in out.out and "trunc@1024" in out.out
    assert "field 'conversation'" in out.err
    n_disc = len(disc.read_text("utf-8").splitlines())
    n_rejected = len((tmp_path / "q.jsonl").read_text("utf-8").splitlines())
    lines = buckets.read_text("utf-8").splitlines()
    assert len(lines) + n_rejected == n_disc + 1000
    assert n_rejected > 0
    # a clean file: exit 0 and one bucket line per input record, in input order, the same on
    # one thread as on every core; no threads is a usage error
    one = tmp_path / "one.jsonl"
    args = ["lengths", str(clean), "--tokenizer", str(any_tokenizer), "--buckets"]
    assert main([*args, str(one), "--threads", "1"]) == 0
    assert main([*args, str(tmp_path / "zero.jsonl"), "--threads", "0"]) == 2
    assert "num_threads must be at least 1" in capsys.readouterr().err
    code = main([*args, str(buckets)])
    capsys.readouterr()
    assert buckets.read_bytes() == one.read_bytes()
    lines = buckets.read_text("utf-8").splitlines()
    assert code == 0 and len(lines) == 1000
    assert [json.loads(x)["index"] for x in lines] == list(range(1000))
    first = json.loads(lines[0])
    assert first["total_tokens"] == first["prompt_tokens"] + first["response_tokens"]
    assert first["bucket"] in (0, 1, 2, "over")


def test_truncation_shares_tiny_and_huge_cutoffs(
    any_tokenizer: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cmt = shared_data / "cmtmedqa" / "CMtMedQA_test.json"
    code = main(
        [
            "lengths",
            str(cmt),
            "--tokenizer",
            str(any_tokenizer),
            "--cutoffs",
            "16,1000000",
            "--output-format",
            "json",
        ]
    )
    stats = json.loads(capsys.readouterr().out)
    assert code == 1  # the 144 records without 'instruction'
    tiny, huge = stats["sources"][0]["cutoffs"]
    assert tiny["truncated_share"] == 1.0 and tiny["response_cut_share"] > 0.5
    assert huge["truncated"] == 0 and huge["response_cut"] == 0
    total = stats["total"]
    assert total["records"] == 1144 and total["counted"] + total["rejected"] == 1144
    assert total["quantiles"]["p50"] <= total["quantiles"]["p90"] <= total["quantiles"]["max"]
    assert sum(b["count"] for b in total["histogram"]) == total["counted"]


def test_bad_tokenizer_exits_2_naming_the_file(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cmt = str(shared_data / "cmtmedqa" / "CMtMedQA_test.json")
    missing = tmp_path / "missing" / "tokenizer.json"
    assert main(["lengths", cmt, "--tokenizer", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text('{"model": 3}', encoding="utf-8")
    assert main(["lengths", cmt, "--tokenizer", str(broken)]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "tokenizer" in err
