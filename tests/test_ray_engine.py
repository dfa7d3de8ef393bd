"""`--engine ray` on a local Ray cluster (``ray.init(num_cpus=2)``, no network) over the real
Toyhom CSV and planted copies of it: byte-identical kept records, clusters, quarantine and
counts to the local engine, in memory and out of core; a worker killed mid-run (the task is
retried); a bad record raised as locally; the recipe's ``[engine]`` table; a whole build (adapt,
normalize, decontaminate and lengths per source on Ray too) equal to a local one, file for
file; the decontaminate and lengths stages on Ray over sources that hit one evaluation item
together and hold rejected and unrenderable records."""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import csft_data as cd
from csft_data import ray_engine
from csft_data._core import ConfigError, ParseError
from csft_data.cli import main

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(toyhom_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The real CSV (GBK), a JSONL source of exact and one-character-edited copies of its long
    answers plus a broken line, and a third source of cross-source copies."""
    rows = list(csv.DictReader(io.StringIO(toyhom_csv.read_bytes().decode("gbk"))))
    distinct = list({r["answer"]: r for r in rows}.values())
    long_rows = [r for r in distinct if len(r["answer"]) > 150]
    rng = random.Random(5)
    planted: list[str] = []
    for i, r in enumerate(long_rows[:80]):
        answer = r["answer"]
        if i % 2:
            a = list(answer)
            a[rng.randrange(len(a))] = "某"
            answer = "".join(a)
        planted.append(json.dumps({"ask": r["ask"], "answer": answer}, ensure_ascii=False))
        if i == 40:
            planted.append('{"ask": "broken')
    d = tmp_path_factory.mktemp("ray-inputs")
    (d / "planted.jsonl").write_text("\n".join(planted) + "\n", encoding="utf-8")
    third = [
        json.dumps({"ask": r["ask"] + "？", "answer": r["answer"]}, ensure_ascii=False)
        for r in long_rows[100:130]
    ]
    (d / "third.jsonl").write_text("\n".join(third) + "\n", encoding="utf-8")
    return [toyhom_csv, d / "planted.jsonl", d / "third.jsonl"]


def _run(inputs: list[Path], out: Path, **kw: Any) -> tuple[dict[str, Any], list[bytes]]:
    clusters, quarantine = out.with_suffix(".clusters.jsonl"), out.with_suffix(".q.jsonl")
    stats = cd.dedup_files(
        inputs,
        out,
        clusters=clusters,
        quarantine=quarantine,
        fields=["ask", "answer"],
        on_error="skip",
        **kw,
    )
    # how it ran, not what it found (a run from sketches spills no texts: they stay in them)
    for key in ("seconds", "output", "clusters_file", "quarantine", "engine", "ray"):
        stats.pop(key, None)
    stats["spilled"] = stats.pop("spilled_bytes") > 0
    return stats, [p.read_bytes() for p in (out, clusters, quarantine)]


@pytest.mark.slow
@pytest.mark.parametrize("memory_limit", [None, 0], ids=["in-memory", "out-of-core"])
def test_ray_engine_writes_what_the_local_engine_writes(
    local_ray: None, inputs: list[Path], tmp_path: Path, memory_limit: int | None
) -> None:
    local, local_files = _run(inputs, tmp_path / "local.jsonl", memory_limit=memory_limit)
    _, one_thread = _run(inputs, tmp_path / "one.jsonl", memory_limit=memory_limit, num_threads=1)
    assert one_thread == local_files
    dist, dist_files = _run(inputs, tmp_path / "ray.jsonl", memory_limit=memory_limit, engine="ray")
    assert dist_files == local_files
    assert dist == local
    per = {s["source"]: s for s in local["sources"]}
    assert per["planted"]["rejected"] == 1
    assert per["planted"]["cross_source"] >= 60  # exact and near copies of the CSV's answers
    assert per["third"]["cross_source"] == 30
    assert local["out_of_core"] == (memory_limit == 0)
    # nothing left beside the outputs: the sketch folder is gone
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_retried(
    local_ray: None,
    inputs: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, local_files = _run(inputs, tmp_path / "local.jsonl")
    marker = tmp_path / "killed"
    monkeypatch.setenv(ray_engine.FAULT_ENV, str(marker))
    _, dist_files = _run(inputs, tmp_path / "ray.jsonl", engine="ray")
    assert marker.exists(), "no sketch worker was killed"
    assert Path(f"{marker}-link").exists(), "no link worker was killed"
    assert dist_files == local_files


def test_a_bad_record_is_raised_as_the_local_engine_raises_it(
    local_ray: None, inputs: list[Path], tmp_path: Path
) -> None:
    errors = []
    for engine in ("local", "ray"):
        with pytest.raises(ParseError) as e:
            cd.dedup_files(inputs, tmp_path / f"{engine}.jsonl", fields=["ask"], engine=engine)
        errors.append(str(e.value))
        assert not (tmp_path / f"{engine}.jsonl").exists()
    assert errors[0] == errors[1]
    assert "planted.jsonl:42 (record 41)" in errors[0]


def test_the_cli_and_the_recipe_take_the_engine(
    local_ray: None, inputs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["dedup", *map(str, inputs), "--fields", "ask,answer", "--on-error", "skip"]
    outs = []
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.jsonl"
        assert main([*args, "-o", str(out), "--engine", engine, "--output-format", "json"]) == 1
        outs.append(out.read_bytes())
        assert json.loads(capsys.readouterr().out)["engine"] == engine
    assert outs[0] == outs[1]

    from csft_data.pipeline.recipe import parse_recipe

    base = {"output": {"dir": "out"}, "source": [{"name": "a", "adapter": "alpaca", "path": "x"}]}
    recipe = parse_recipe({**base, "engine": {"kind": "ray", "cpus_per_task": 2}}, base=tmp_path)
    assert (recipe.engine.kind, recipe.engine.cpus_per_task) == ("ray", 2)
    assert recipe.to_json() == parse_recipe(base, base=tmp_path).to_json()  # same fingerprints
    with pytest.raises(ConfigError, match=r"engine.*kind"):
        parse_recipe({**base, "engine": {"kind": "spark"}}, base=tmp_path)


@pytest.mark.slow
def test_a_build_with_the_ray_engine_writes_what_a_local_build_writes(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded demo recipe (every stage acts), once per engine: the same manifest, stage
    checksums and outputs, byte for byte."""
    calls = []
    sketch_inputs = ray_engine.sketch_inputs

    def counted(*args: Any, **kw: Any) -> Any:
        calls.append(len(args[0]))
        return sketch_inputs(*args, **kw)

    monkeypatch.setattr(ray_engine, "sketch_inputs", counted)
    stages = _record_run_each(monkeypatch)
    from dataclasses import replace

    import csft_data.demo as demo
    from csft_data.pipeline.config import EngineConfig
    from csft_data.pipeline.recipe import load_recipe
    from csft_data.pipeline.runner import build

    recipe = load_recipe(Path(demo.__file__).parent / "recipe.toml")
    results = {}
    for kind in ("local", "ray"):
        r = replace(recipe, out_dir=tmp_path / kind, engine=EngineConfig(kind=kind))
        results[kind] = build(r, on_notice=None)
    assert calls == [4]  # the ray build sketched its four sources on Ray; the local one did not
    # the per-source stages: adapt and normalize through run_each on both engines; the
    # decontaminate and lengths stages one Ray task per source under ray, one call locally
    assert stages == [
        ("convert", "local", 4),
        ("normalize_file", "local", 4),
        ("convert", "ray", 4),
        ("normalize_file", "ray", 4),
        ("decontaminate", "ray", 4),
        ("count_source", "ray", 4),
    ]
    local, dist = results["local"], results["ray"]
    assert [s.checksum for s in dist.stages] == [s.checksum for s in local.stages]
    assert [s.dir.name for s in dist.stages] == [s.dir.name for s in local.stages]
    # every file, the stages' cache (stage.json, hits, totals.bin) included, byte for byte
    local_files, dist_files = _tree(tmp_path / "local"), _tree(tmp_path / "ray")
    assert sorted(dist_files) == sorted(local_files)
    for name, data in local_files.items():
        assert dist_files[name] == data, name
    assert "manifest.json" in local_files and "removed/decontaminate/hits.jsonl" in local_files
    dec = json.loads(local_files["manifest.json"])["decontamination"]
    assert dec["eval_items_hit"] == 3


def _record_run_each(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, int]]:
    """Records each ``ray_engine.run_each`` call: (function, engine, number of calls)."""
    run_each = ray_engine.run_each
    stages: list[tuple[str, str, int]] = []

    def recorded(fn: Any, calls: Any, **kw: Any) -> Any:
        stages.append((fn.__name__, kw["kind"], len(calls)))
        return run_each(fn, calls, **kw)

    monkeypatch.setattr(ray_engine, "run_each", recorded)
    return stages


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative POSIX name → bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _exam_items() -> list[str]:
    """The demo's CMExam-style evaluation items as a training record would copy them (the
    question, then the options one per line)."""
    import csft_data.demo as demo

    text = (Path(demo.__file__).parent / "exam_items.csv").read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    return [f"{r['Question']}\n{r['Options'].replace(chr(92) + 'n', chr(10))}" for r in rows]


def test_decontaminate_and_lengths_on_ray_write_what_they_write_locally(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two stages alone, on upstream files made for them: one evaluation item copied into
    two sources (``eval_items_hit`` counts it once), two evaluation files (one through its
    adapter, one by fields, with a row left out and a malformed one), rejected records and
    unrenderable ones in two sources, records over the cut-off. One Ray task per source; the
    same stage folders (names, files, ``stage.json``) as the local engine, byte for byte."""
    import csft_data.demo as demo
    from csft_data.pipeline.cache import StageCache, StageResult
    from csft_data.pipeline.decontaminate import decontaminate_stage
    from csft_data.pipeline.lengths import lengths_stage
    from csft_data.pipeline.recipe import parse_recipe

    exam = _exam_items()
    own = ["夜间阵发性呼吸困难最常见于哪一种心脏疾病的患者", "小儿高热惊厥首选的止惊药物是哪一种"]
    evals = tmp_path / "own_eval.jsonl"
    evals.write_text(
        "".join(
            json.dumps(r, ensure_ascii=False) + "\n"
            for r in [{"question": own[0]}, {"question": ""}, {"question": own[1]}]
        )
        + '{"question": "broken\n',
        encoding="utf-8",
    )
    rng = random.Random(3)

    def record(text: str, **kw: Any) -> str:
        rec = {"instruction": "请回答下面的问题。", "input": text, "output": "答：" + "好" * 5}
        return json.dumps({**rec, **kw}, ensure_ascii=False)

    def filler(k: int) -> list[str]:
        words = ["头痛", "发热", "咳嗽", "胸闷", "乏力", "腹泻", "呕吐", "失眠", "心悸", "水肿"]
        return [record("患者" + "".join(rng.choices(words, k=6)) + f"第{i}例") for i in range(k)]

    long_output = "好" * 400  # over the cut-off below
    lines = {
        "a": [
            *filler(30),
            record("请问：" + exam[0]),
            '{"instruction": "broken',
            record(own[0] + "？"),
            record("病史", history="not pairs"),
            *filler(20),
        ],
        "b": [
            *filler(25),
            record("考题：" + exam[0] + "（单选）"),
            record(exam[1]),
            record("长答案", output=long_output),
            *filler(10),
        ],
        "c": [
            *filler(10),
            json.dumps({"instruction": "缺少 input", "output": "答"}, ensure_ascii=False),
            record("又问：" + own[0]),
            record("病史", history=[["a"]]),
            *filler(15),
        ],
    }
    up_dir = tmp_path / "up"
    up_dir.mkdir()
    for n, ls in lines.items():
        (up_dir / f"{n}.jsonl").write_text("\n".join(ls) + "\n", encoding="utf-8")
    up = StageResult(
        "dedup",
        "0123456789abcdef",
        up_dir,
        {"sources": {n: {"out": len(ls)} for n, ls in lines.items()}},
        cached=False,
        checksum="up",
    )
    base = {
        "output": {"dir": "out"},
        "source": [
            {"name": n, "adapter": "alpaca", "path": str(up_dir / f"{n}.jsonl")} for n in lines
        ],
        "decontaminate": {
            "eval": [
                {"path": str(Path(demo.__file__).parent / "exam_items.csv"), "adapter": "cmexam"},
                {"path": str(evals), "fields": ["question"]},
            ]
        },
        "lengths": {
            "tokenizer": str(Path(demo.__file__).parent / "tokenizer" / "tokenizer.json"),
            "template": "qwen",
            "cutoff_len": 256,
            "policy": "drop",
        },
    }
    stages = _record_run_each(monkeypatch)
    results, trees = {}, {}
    root = tmp_path / "cache"  # one folder for both: rejections name the file they come from
    for kind in ("local", "ray"):
        shutil.rmtree(root, ignore_errors=True)
        recipe = parse_recipe({**base, "engine": {"kind": kind}}, base=tmp_path)
        cache = StageCache(root)
        dec = decontaminate_stage(cache, recipe, up)
        results[kind] = [dec, lengths_stage(cache, recipe, dec)]
        trees[kind] = _tree(root)
    assert stages == [("decontaminate", "ray", 3), ("count_source", "ray", 3)]
    local, dist = results["local"], results["ray"]
    assert [r.dir.name for r in dist] == [r.dir.name for r in local]  # same fingerprints
    assert [r.stats for r in dist] == [r.stats for r in local]
    local_files, dist_files = trees["local"], trees["ray"]
    assert sorted(dist_files) == sorted(local_files)
    for name, data in local_files.items():
        assert dist_files[name] == data, name

    dec_stats, len_stats = local[0].stats, local[1].stats
    hits = [json.loads(x) for x in (dist[0].dir / "hits.jsonl").read_text("utf-8").splitlines()]
    assert [h["source"] for h in hits] == ["a", "a", "b", "b", "c"]
    # distinct items, not a sum over sources: exam items 0 (in a and b) and 1, own item 0 (a, c)
    assert len(hits) == 5 and dec_stats["eval_items_hit"] == 3
    assert dec_stats["eval_items"] == 12 + 2
    assert dec_stats["eval_items_left_out"] == {"malformed rows": 1, "no question text": 1}
    rejected = (dist[0].dir / "rejected.jsonl").read_text("utf-8").splitlines()
    assert [Path(json.loads(x)["file"]).stem for x in rejected] == ["a", "c"]
    assert {n: s["removed"] for n, s in dec_stats["sources"].items()} == {
        "a": {"contains an evaluation item": 2, "rejected: no question text": 1},
        "b": {"contains an evaluation item": 2},
        "c": {"contains an evaluation item": 1, "rejected: no question text": 1},
    }
    unrenderable = (dist[1].dir / "unrenderable.jsonl").read_text("utf-8").splitlines()
    assert [Path(json.loads(x)["file"]).stem for x in unrenderable] == ["a", "c"]
    assert len_stats["sources"]["b"]["removed"] == {"longer than cutoff_len 256": 1}
