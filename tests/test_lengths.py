"""Token-length bucketing against the Python ``tokenizers`` package: tokenizers trained here on
real texts of ``../shared/data`` (byte-level BPE and Metaspace BPE, 2k vocab, with the special
tokens of the chat templates), counts of real texts, per-record prompt/response counts of
rendered intern2/qwen conversations recomputed element by element in Python, and the
``csft-data lengths`` command end to end."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

tokenizers = pytest.importorskip("tokenizers")

import csft_data as cd  # noqa: E402
from csft_data.cli import main  # noqa: E402

SPECIALS = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"]
INTERN_SYSTEM = (
    "You are an AI assistant whose name is InternLM (书生·浦语).\n"
    "- InternLM (书生·浦语) is a conversational language model that is developed by Shanghai "
    "AI Laboratory (上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n"
    "- InternLM (书生·浦语) can understand and communicate fluently in the language chosen by "
    "the user such as English and 中文."
)
QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def real_texts(shared: Path) -> list[str]:
    texts: list[str] = []
    for rec in json.loads((shared / "cmtmedqa" / "CMtMedQA_test.json").read_text("utf-8")):
        for key in ("instruction", "instruct", "output"):
            if isinstance(rec.get(key), str):
                texts.append(rec[key])
    for line in (shared / "disc_med_sft" / "test_examples.jsonl").read_text("utf-8").splitlines():
        texts.extend(t["content"] for t in json.loads(line)["conversation"])
    raw = (shared / "toyhom_cmdd" / "样例_内科5000-6000.csv").read_bytes().decode("gbk")
    for row in list(csv.DictReader(io.StringIO(raw)))[:1500]:
        texts.extend(v for k, v in row.items() if k in ("title", "ask", "answer") and v)
    english = (shared / "meddialog_covid" / "COVID-Dialogue-Dataset-English.txt").read_text("utf-8")
    texts.extend(line for line in english.splitlines()[:1500] if line.strip())
    return texts


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> list[str]:
    return real_texts(shared_data)


def train(texts: list[str], kind: str, path: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None if kind == "bytelevel" else "<unk>"))
    if kind == "bytelevel":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        specials = SPECIALS
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        alphabet = []
        specials = ["<unk>", *SPECIALS]
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(texts[:4000], trainer)
    tok.save(str(path))
    return path


@pytest.fixture(scope="module", params=["bytelevel", "metaspace"])
def tokenizer_json(
    request: pytest.FixtureRequest, texts: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return train(texts, request.param, tmp_path_factory.mktemp("tok") / "tokenizer.json")


def hf_len(tok: Any, text: str) -> int:
    return len(tok.encode(text, add_special_tokens=False).ids) if text else 0


def test_counts_equal_hf_tokenizers(tokenizer_json: Path, texts: list[str]) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    extra = [
        "",
        " ",
        "<|im_start|>user\n头痛<|im_end|>\n<|im_start|>assistant\n",
        "<s>前后</s> x",
        "Hello,  world!\n\n\tTabs and 123,456.78 numbers; don't stop",
        "😀 emoji ① ＡＢＣ ﹏ 𠀀",
    ]
    sample = texts + extra
    assert len(sample) > 3000
    got = cd.count_tokens(tokenizer_json, sample)
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
    tokenizer_json: Path, shared_data: Path, tmp_path: Path, template: str
) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    disc = shared_data / "disc_med_sft" / "test_examples.jsonl"
    cmt = shared_data / "cmtmedqa" / "CMtMedQA_test.json"
    buckets = tmp_path / "buckets.jsonl"
    stats = cd.token_lengths(
        [disc, cmt], tokenizer_json, template=template, buckets=buckets, cutoffs=[1024]
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
    tokenizer_json: Path, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
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
            str(tokenizer_json),
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
    # a clean file: exit 0 and one bucket line per input record, in input order
    code = main(
        ["lengths", str(clean), "--tokenizer", str(tokenizer_json), "--buckets", str(buckets)]
    )
    capsys.readouterr()
    lines = buckets.read_text("utf-8").splitlines()
    assert code == 0 and len(lines) == 1000
    assert [json.loads(x)["index"] for x in lines] == list(range(1000))
    first = json.loads(lines[0])
    assert first["total_tokens"] == first["prompt_tokens"] + first["response_tokens"]
    assert first["bucket"] in (0, 1, 2, "over")


def test_truncation_shares_tiny_and_huge_cutoffs(
    tokenizer_json: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cmt = shared_data / "cmtmedqa" / "CMtMedQA_test.json"
    code = main(
        [
            "lengths",
            str(cmt),
            "--tokenizer",
            str(tokenizer_json),
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
