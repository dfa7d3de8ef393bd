"""``csft-data pretrain``: a pretraining build over the real shared data (a GBK text file cut
by blank lines, a multi-turn dialogue dataset and an exam dataset rendered as text, an English
general source, planted documents) checked against an independent reading of its shards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from csft_data import ParseError
from csft_data.cli import main
from csft_data.pretrain import PretrainResult, build_pretrain, load_pretrain_recipe
from csft_data.pretrain.stages import mixture_order

PLANTED = (
    "高血压患者应低盐饮食，适量运动，规律服药，定期监测血压，并注意控制体重与情绪。\n\n"
    "高血压患者应低盐饮食，适量运动，规律服药，定期监测血压，并注意控制体重与情绪！\n\n"
    + "多喝热水多休息。"
    * 10
    + "\n\n本站版权所有\n转载请注明出处\n关注公众号获取更多\n上一篇：感冒\n下一篇：发烧\n\n"
    "糖尿病患者需要控制饮食，监测血糖，遵医嘱使用胰岛素或口服降糖药物。\n"
)


def _recipe(tmp: Path, data: Path, tokenizer: Path, extra: str = "") -> Path:
    books = tmp / "books"
    books.mkdir(exist_ok=True)
    (books / "planted.txt").write_text(PLANTED, encoding="utf-8")
    text = f"""
kind = "pretrain"
seed = 3
[output]
dir = "out"
[[source]]
name = "neike"
category = "article"
path = "{data}/toyhom_cmdd/内科.txt"
split = "blank-line"
[[source]]
name = "books"
category = "book"
path = "books"
split = "blank-line"
[[source]]
name = "dialogues"
category = "dialogue"
adapter = "cmtmedqa"
path = "{data}/cmtmedqa/CMtMedQA_test.json"
[[source]]
name = "exam"
category = "exam"
adapter = "cmexam"
path = "{data}/cmexam/cmexam_val_part1.csv"
[[source]]
name = "general"
category = "general"
path = "{data}/meddialog_covid/COVID-Dialogue-Dataset-English.txt"
split = "blank-line"
[normalize]
convert = "t2s"
[pack]
tokenizer = "{tokenizer}"
eos = "</s>"
seq_len = 128
sequences_per_shard = 2000
{extra}
"""
    path = tmp / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _read_docs(out: Path) -> tuple[dict, list[list[int]]]:
    """The manifest and the documents of the shards (split at EOS), read independently."""
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    stream = []
    for s in m["shards"]:
        tokens = np.fromfile(out / s["tokens"], dtype="<u4")
        assert len(tokens) == s["sequences"] * m["seq_len"]
        starts = np.fromfile(out / s["docs"], dtype="<u8")
        assert len(starts) == s["documents"]
        assert np.all(tokens[starts[starts > 0] - 1] == m["eos_id"])  # each start follows an EOS
        assert np.all(tokens[s["content_tokens"] :] == m["pad_id"])
        stream.append(tokens[: s["content_tokens"]])
    flat = np.concatenate(stream)
    assert flat[-1] == m["eos_id"]
    ends = np.flatnonzero(flat == m["eos_id"])
    docs = np.split(flat, ends + 1)[:-1]
    return m, [d[:-1].tolist() for d in docs]


@pytest.fixture(scope="module")
def built(
    shared_data: Path, tokenizer_json: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, PretrainResult]:
    tmp = tmp_path_factory.mktemp("pretrain")
    recipe = _recipe(tmp, shared_data, tokenizer_json)
    return recipe, build_pretrain(recipe)


def test_shards_decode_to_the_kept_documents_in_the_seeded_order(
    built: tuple[Path, PretrainResult], tokenizer_json: Path
) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    _, result = built
    out = result.out_dir
    m, docs = _read_docs(out)
    stages = {s.name: s for s in result.stages}
    kept = []
    names = [s["name"] for s in m["recipe"]["sources"]]
    for n in names:
        with stages["decontaminate"].file(n).open(encoding="utf-8") as f:
            kept += [(n, json.loads(line)["text"]) for line in f]
    assert len(kept) == m["documents"]["kept"] == m["documents"]["packed"]
    tok = tokenizers.Tokenizer.from_file(str(tokenizer_json))
    ids = [e.ids for e in tok.encode_batch([t for _, t in kept], add_special_tokens=False)]
    order = np.fromfile(stages["pack"].dir / "order.bin", dtype="<u8")
    assert sorted(order.tolist()) == list(range(len(kept)))  # everything once: no [mixture]
    assert order.tolist() != sorted(order.tolist())  # shuffled
    assert docs == [ids[i] for i in order]
    # token counts per source and category equal a direct count with `tokenizers`
    for n in names:
        direct = sum(len(ids[i]) for i, (src, _) in enumerate(kept) if src == n)
        assert m["sources"][n]["tokens"] == direct
        assert m["sources"][n]["tokens_packed"] == direct + m["sources"][n]["kept"]
    assert m["tokens"]["packed"] == sum(len(d) + 1 for d in docs)
    assert m["sequences"] * m["seq_len"] == m["tokens"]["packed"] + m["tokens"]["padding"]


def test_every_document_is_accounted_for_and_planted_ones_removed_with_reasons(
    built: tuple[Path, PretrainResult],
) -> None:
    _, result = built
    out = result.out_dir
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for s in m["sources"].values():
        assert s["read"] == s["kept"] + sum(s["removed"].values())
    books = m["sources"]["books"]
    assert books["read"] == 5 and books["kept"] == 2
    assert books["removed"] == {
        "dedup: near duplicate (per-source)": 1,
        "quality: repeated_ngrams": 1,
        "quality: boilerplate": 1,
    }
    repeated = (out / "removed/quality/books.repeated_ngrams.jsonl").read_text(encoding="utf-8")
    assert "多喝热水多休息。" in repeated and "books/planted.txt:5" in repeated
    assert "本站版权所有" in (out / "removed/quality/books.boilerplate.jsonl").read_text("utf-8")
    clusters = (out / "removed/dedup/clusters.jsonl").read_text(encoding="utf-8")
    assert '{"source":"books","index":1,"duplicate_of":{"source":"books","index":0}' in clusters
    # the GBK file was read (not rejected) and converted; dialogues are one document each
    assert m["sources"]["neike"]["read"] > 1000
    assert m["sources"]["dialogues"]["unit"] == "records"
    assert all(v["epochs"] == 1.0 for v in m["mixture"].values())


def test_rerun_is_byte_identical_and_served_from_the_cache(
    built: tuple[Path, PretrainResult], tmp_path: Path
) -> None:
    recipe, result = built
    first = result.out_dir
    again = build_pretrain(recipe, tmp_path / "again")
    assert not any(s.cached for s in again.stages)
    names = sorted(p.name for p in first.glob("shard-*"))
    assert names == sorted(p.name for p in again.out_dir.glob("shard-*")) and names
    plots = sorted(p.relative_to(first).as_posix() for p in (first / "plots").glob("*.png"))
    assert plots == ["plots/categories.png", "plots/lengths.png", "plots/removed.png"]
    for n in [*names, "manifest.json", "report.html", *plots]:
        assert (first / n).read_bytes() == (again.out_dir / n).read_bytes(), n
    cached = build_pretrain(recipe, tmp_path / "again")
    assert all(s.cached for s in cached.stages)
    assert (again.out_dir / "manifest.json").read_bytes() == (first / "manifest.json").read_bytes()


def test_token_targets_up_and_down_sample_categories(
    shared_data: Path, tokenizer_json: Path, tmp_path: Path
) -> None:
    recipe = _recipe(
        tmp_path, shared_data, tokenizer_json, "[mixture]\ntokens = { book = 300, exam = 100000 }"
    )
    result = build_pretrain(recipe)
    mix = result.manifest["mixture"]
    assert mix["book"]["available_tokens"] < 300 <= mix["book"]["taken_tokens"]
    assert mix["book"]["epochs"] > 2
    assert mix["exam"]["taken_tokens"] >= 100000 > mix["exam"]["taken_tokens"] - 400
    assert mix["exam"]["epochs"] < 0.5
    assert mix["article"]["epochs"] == 1.0  # no target: taken once
    _, docs = _read_docs(result.out_dir)
    assert len(docs) == result.manifest["documents"]["packed"]
    assert len({tuple(d) for d in docs}) < len(docs)  # up-sampled books repeat


def test_mixture_order_by_total_tokens_and_temperature(tmp_path: Path) -> None:
    r = load_pretrain_recipe(_tiny_recipe(tmp_path, "total_tokens = 1000\ntemperature = 100.0"))
    counts = np.array([9] * 100 + [99] * 100, dtype=np.uint32)  # 1,000 vs 10,000 tokens
    cats = np.array([0] * 100 + [4] * 100)  # book, general
    order, report = mixture_order(counts, cats, r)
    assert abs(report["book"]["target_tokens"] - report["general"]["target_tokens"]) < 20
    assert report["book"]["taken_tokens"] >= 500 and report["general"]["epochs"] < 0.1
    again, _ = mixture_order(counts, cats, r)
    assert order.tolist() == again.tolist()


def _tiny_recipe(tmp: Path, mixture: str) -> Path:
    (tmp / "t.txt").write_text("文本", encoding="utf-8")
    (tmp / "tokenizer.json").write_text("{}", encoding="utf-8")
    p = tmp / "r.toml"
    p.write_text(
        f'kind = "pretrain"\n[output]\ndir = "o"\n[[source]]\nname = "a"\npath = "t.txt"\n'
        f'[pack]\ntokenizer = "tokenizer.json"\n[mixture]\n{mixture}\n',
        encoding="utf-8",
    )
    return p


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[mixture]\ntokens = { novel = 5 }", "unknown category 'novel'"),
        ("[mixture]\ntokens = { exam = 5 }", "no source has category exam"),
        ('[dedup]\nfields = ["x"]', "[dedup] fields"),
        ("[quality]\nmax_repeated_lines = 2.0", "max_repeated_lines"),
    ],
)
def test_recipe_errors_name_the_key(tmp_path: Path, table: str, message: str) -> None:
    from csft_data import ConfigError

    p = _tiny_recipe(tmp_path, "")
    p.write_text(p.read_text(encoding="utf-8").replace("[mixture]\n", table + "\n"), "utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_pretrain_recipe(p)


def test_undecodable_text_is_an_error_naming_the_file_or_a_rejection(
    shared_data: Path, tokenizer_json: Path, tmp_path: Path
) -> None:
    recipe = _recipe(tmp_path, shared_data, tokenizer_json)
    (tmp_path / "books" / "broken.txt").write_bytes(b"\xff\xfe\xfd\x80\x80")
    result = build_pretrain(recipe)  # on_error = "skip" (the default): a rejected file
    books = result.manifest["sources"]["books"]
    assert books["removed"]["documents: rejected: file is neither UTF-8 nor GB18030"] == 1
    rejected = (result.out_dir / "removed/documents/books.rejected.jsonl").read_text("utf-8")
    assert "broken.txt" in rejected
    text = recipe.read_text(encoding="utf-8").replace(
        'kind = "pretrain"', 'kind = "pretrain"\non_error = "raise"'
    )
    recipe.write_text(text, encoding="utf-8")
    shutil.rmtree(tmp_path / "out")
    with pytest.raises(ParseError, match=r"broken\.txt"):
        build_pretrain(recipe)
    assert not list((tmp_path / "out").glob("shard-*"))


def test_cli_pretrain_and_build_dispatch(
    shared_data: Path, tokenizer_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = _recipe(tmp_path, shared_data, tokenizer_json)
    assert main(["pretrain", str(recipe), "--dry-run"]) == 0
    assert "documents → normalize" in capsys.readouterr().out
    assert main(["build", str(recipe), "-o", str(tmp_path / "cli"), "--output-format", "json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["kind"] == "pretrain" and (tmp_path / "cli" / m["shards"][0]["tokens"]).is_file()
    assert main(["pretrain", str(tmp_path / "missing.toml")]) == 2


def test_train_pt_runs_on_the_built_shards(
    built: tuple[Path, PretrainResult], tokenizer_json: Path, tmp_path: Path
) -> None:
    """The shards of the real build train a tiny model from a config (``csft-data train pt``)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from _train_common import tiny_model, write_config

    _, result = built
    model = tiny_model(tokenizer_json, tmp_path / "model")
    run = tmp_path / "run"
    config = write_config(
        tmp_path / "pt.toml",
        {
            "model": {"path": str(model)},
            "data": {"train": [str(result.out_dir)]},
            "train": {
                "output_dir": str(run),
                "per_device_batch_size": 2,
                "max_steps": 3,
                "logging_steps": 1,
                "save_steps": 0,
                "device": "cpu",
                "save_final": False,
            },
        },
    )
    assert main(["train", "pt", str(config)]) == 0
    summary = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert summary["seq_len"] == 128 and summary["sequences"] == result.manifest["sequences"]


def test_out_of_core_dedup_gives_the_same_shards(
    built: tuple[Path, PretrainResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[engine] memory_limit`` sends the dedup out of core; the shards do not change."""
    import csft_data.pipeline.dedup as stage

    runs: list[dict[str, Any]] = []

    def spy(*args: Any, **kwargs: Any) -> dict[str, Any]:
        runs.append(real(*args, **kwargs))
        return runs[-1]

    real = stage.dedup_files
    monkeypatch.setattr(stage, "dedup_files", spy)
    recipe, result = built
    text = recipe.read_text(encoding="utf-8")
    small = recipe.with_name("small-memory.toml")
    small.write_text(
        text + f'\n[engine]\nmemory_limit = "1MB"\ntmp_dir = "{tmp_path / "spill"}"\n', "utf-8"
    )
    (tmp_path / "spill").mkdir()
    again = build_pretrain(small, tmp_path / "ooc")
    assert [r["out_of_core"] for r in runs] == [True]
    for s in result.manifest["shards"]:
        assert (again.out_dir / s["tokens"]).read_bytes() == (
            result.out_dir / s["tokens"]
        ).read_bytes()
    assert again.manifest == result.manifest


def test_paragraph_dedup_removes_paragraphs_seen_earlier(
    shared_data: Path, tokenizer_json: Path, tmp_path: Path
) -> None:
    repeat = "心脏病患者应避免剧烈运动，按时服用医生开具的药物，定期复查心电图。"
    seen = "高血压患者应低盐饮食，适量运动，规律服药，定期监测血压，并注意控制体重与情绪。"
    recipe = _recipe(tmp_path, shared_data, tokenizer_json, "[paragraphs]\ndedup = true\n")
    (tmp_path / "books" / "repeat.txt").write_text(f"{repeat}\n{seen}\n", encoding="utf-8")
    result = build_pretrain(recipe)
    stages = {s.name: s for s in result.stages}
    books = stages["paragraphs"].stats["sources"]["books"]
    assert books["paragraphs_removed"] >= 1 and books["chars_removed"] >= len(seen)
    with stages["decontaminate"].file("books").open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    assert repeat in texts and seen in texts  # the first copy stays, the later one goes
    assert result.manifest["recipe"]["paragraphs"]["dedup"] is True
