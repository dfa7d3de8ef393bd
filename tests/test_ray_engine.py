"""`--engine ray` on a local Ray cluster (``ray.init(num_cpus=2)``, no network) over the real
Toyhom CSV and planted copies of it: byte-identical kept records, clusters, quarantine and
counts to the local engine, in memory and out of core; a worker killed mid-run (the task is
retried); a bad record raised as locally; the recipe's ``[engine]`` table; a whole build (adapt
and normalize per source on Ray too) equal to a local one."""

from __future__ import annotations

import csv
import io
import json
import random
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
    run_each = ray_engine.run_each
    stages: list[tuple[str, str]] = []

    def recorded(fn: Any, calls: Any, **kw: Any) -> Any:
        stages.append((fn.__name__, kw["kind"]))
        return run_each(fn, calls, **kw)

    monkeypatch.setattr(ray_engine, "run_each", recorded)
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
    assert stages == [(f, k) for k in ("local", "ray") for f in ("convert", "normalize_file")]
    local, dist = results["local"], results["ray"]
    assert [s.checksum for s in dist.stages] == [s.checksum for s in local.stages]
    for name in ("manifest.json", "train.jsonl", "val.jsonl", "removed/dedup/clusters.jsonl"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
