"""Defects found by a fault campaign (issue 12), one test group each: an output that is an
input, two builds in one folder, a tampered stage cache, and the temporary files of runs
killed with ``kill -9``."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from csft_data.cli import main
from csft_data.demo import DEMO_DIR, DEMO_RECIPE_FILES

RECORDS = [
    {"instruction": "高血压患者能吃党参吗？", "input": "", "output": "可以适量食用。"},
    {"instruction": "感冒发烧怎么办？", "input": "三天了", "output": "多喝水，注意休息。"},
    {"instruction": "头痛是什么原因？", "input": "", "output": "原因很多，需要检查。"},
]


def write_jsonl(path: Path, records: list[dict[str, str]] = RECORDS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def snapshot(root: Path) -> dict[str, tuple[bool, bytes]]:
    """Every entry under ``root``: whether it is a link, and its bytes (files only)."""
    out: dict[str, tuple[bool, bytes]] = {}
    for p in sorted(root.rglob("*")):
        data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        out[str(p.relative_to(root))] = (p.is_symlink(), data)
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csft_data", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


# -- 1. an output that is (or resolves to) an input -----------------------------------------


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the inputs every command below needs, as the current folder."""
    write_jsonl(tmp_path / "in.jsonl")
    write_jsonl(tmp_path / "in2.jsonl", RECORDS[:2])
    write_jsonl(tmp_path / "o.quarantine.jsonl")  # an input named like a default quarantine
    write_jsonl(tmp_path / "ev.jsonl", RECORDS[:1])
    (tmp_path / "tok.json").write_text("{}", "utf-8")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_alias(kind: str, target: str, root: Path) -> str:
    """A name for the input ``target`` (relative to ``root``, the current folder)."""
    if kind == "same":
        return target
    if kind == "dot":
        return f"./{target}"
    if kind == "absolute":
        return str(root / target)
    if kind == "dotdot":
        return f"sub/../{target}"
    if kind == "symlink":
        (root / "link.jsonl").symlink_to(root / target)
        return "link.jsonl"
    if kind == "hardlink":
        os.link(root / target, root / "hard.jsonl")
        return "hard.jsonl"
    raise AssertionError(kind)


#: (case, the input the output aliases, command line with {X} for the output)
SKIP = "--on-error skip"
Q = f"{SKIP} --quarantine {{X}}"
DECONTAMINATE = "decontaminate in.jsonl --eval ev.jsonl"
LENGTHS = "lengths in.jsonl --tokenizer tok.json"
SCORE = "eval score --predictions in.jsonl --answers ev.jsonl"
ROUGE = "eval rouge --predictions in.jsonl --references ev.jsonl"
REFUSALS: list[tuple[str, str, str]] = [
    ("adapt -o", "in.jsonl", "adapt alpaca in.jsonl -o {X}"),
    ("adapt --quarantine", "in.jsonl", f"adapt alpaca in.jsonl -o o.jsonl {Q}"),
    ("normalize -o", "in.jsonl", "normalize in.jsonl -o {X}"),
    ("normalize --quarantine", "in.jsonl", f"normalize in.jsonl -o o.jsonl {Q}"),
    ("dedup -o", "in2.jsonl", "dedup in.jsonl in2.jsonl -o {X}"),
    ("dedup --clusters", "in.jsonl", "dedup in.jsonl -o o.jsonl --clusters {X}"),
    ("dedup --stats", "in.jsonl", "dedup in.jsonl -o o.jsonl --stats {X}"),
    ("dedup --quarantine", "in2.jsonl", f"dedup in.jsonl in2.jsonl -o o.jsonl {Q}"),
    ("decontaminate -o", "in.jsonl", f"{DECONTAMINATE} -o {{X}}"),
    ("decontaminate -o (eval file)", "ev.jsonl", f"{DECONTAMINATE} -o {{X}}"),
    ("decontaminate --report", "ev.jsonl", f"{DECONTAMINATE} -o o.jsonl --report {{X}}"),
    ("decontaminate --quarantine", "in.jsonl", f"{DECONTAMINATE} -o o.jsonl {Q}"),
    ("lengths --buckets", "in.jsonl", f"{LENGTHS} --buckets {{X}}"),
    ("lengths --buckets (tokenizer)", "tok.json", f"{LENGTHS} --buckets {{X}}"),
    ("lengths --quarantine", "in.jsonl", f"{LENGTHS} {Q}"),
    ("eval score --json", "in.jsonl", f"{SCORE} --json {{X}}"),
    ("eval score --json (answers)", "ev.jsonl", f"{SCORE} --json {{X}}"),
    ("eval rouge --json", "ev.jsonl", f"{ROUGE} --json {{X}}"),
    ("eval rouge --per-item", "in.jsonl", f"{ROUGE} --per-item {{X}}"),
]

ALIASES = ["same", "dot", "absolute", "dotdot", "symlink", "hardlink"]


@pytest.mark.parametrize("kind", ALIASES)
@pytest.mark.parametrize(("case", "target", "argv"), REFUSALS, ids=[c[0] for c in REFUSALS])
def test_an_output_may_not_be_an_input(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    target: str,
    argv: str,
    kind: str,
) -> None:
    alias = make_alias(kind, target, workdir)
    before = snapshot(workdir)
    code = main(argv.replace("{X}", alias).split())
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(Path(alias)) in err and target in err, err  # (pathlib drops a leading ./)
    assert "overwrite" in err
    assert snapshot(workdir) == before  # nothing written, nothing removed


@pytest.mark.parametrize(
    "argv",
    [
        f"normalize o.quarantine.jsonl -o o.jsonl {SKIP}",
        f"adapt alpaca o.quarantine.jsonl -o o.jsonl {SKIP}",
        f"dedup o.quarantine.jsonl -o o.jsonl {SKIP}",
        f"decontaminate o.quarantine.jsonl -o o.jsonl --eval ev.jsonl {SKIP}",
    ],
    ids=["normalize", "adapt", "dedup", "decontaminate"],
)
def test_a_default_quarantine_may_not_be_an_input(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: str
) -> None:
    before = snapshot(workdir)
    assert main(argv.split()) == 2
    err = capsys.readouterr().err
    assert "o.quarantine.jsonl" in err and "overwrite" in err
    assert snapshot(workdir) == before


def test_two_outputs_may_not_be_one_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(workdir)
    assert main(["dedup", "in.jsonl", "-o", "k.jsonl", "--clusters", "./k.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "-o/--output k.jsonl and --clusters k.jsonl are the same file" in err
    assert snapshot(workdir) == before


def test_the_check_does_not_refuse_ordinary_runs(workdir: Path) -> None:
    assert main(["adapt", "alpaca", "in.jsonl", "-o", "sub/a.jsonl"]) == 0
    assert main(["normalize", "sub/a.jsonl", "-o", "sub/n.jsonl"]) == 0
    fields = ["--fields", "instruction,input,output"]
    assert main(["dedup", "sub/n.jsonl", "in2.jsonl", "-o", "sub/d.jsonl", *fields]) == 0
    assert len((workdir / "sub" / "d.jsonl").read_text("utf-8").splitlines()) == 3


def demo_recipe(folder: Path, out: str = "out") -> Path:
    """The demo recipe with its data files copied into ``folder`` (so tests may move them)."""
    text = (DEMO_DIR / "recipe.toml").read_text("utf-8").replace('"demo_out"', f'"{out}"')
    for name in DEMO_RECIPE_FILES[1:]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes((DEMO_DIR / name).read_bytes())
    recipe = folder / "recipe.toml"
    recipe.write_text(text, "utf-8")
    return recipe


def test_build_output_may_not_be_a_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = demo_recipe(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main(["build", "recipe.toml", "-o", "./cmtmedqa.json"]) == 2
    err = capsys.readouterr().err
    assert "output folder cmtmedqa.json would overwrite the file of source 'cmtmedqa'" in err
    assert str(tmp_path / "cmtmedqa.json") in err
    assert snapshot(tmp_path) == before
    # A source where the build puts one of its outputs (here: an earlier build's train.jsonl).
    (tmp_path / "out").mkdir()
    (tmp_path / "cmtmedqa.json").rename(tmp_path / "out" / "README.md")
    recipe.write_text(recipe.read_text("utf-8").replace('"cmtmedqa.json"', '"out/README.md"'))
    before = snapshot(tmp_path)
    assert main(["build", "recipe.toml", "-o", "out"]) == 2
    err = capsys.readouterr().err
    assert "README.md" in err and "overwrite" in err
    assert snapshot(tmp_path) == before


# -- 2. two builds into one folder -----------------------------------------------------------

#: A real ``csft-data build`` that, after its dedup stage, says so (``reached``) and waits for
#: the test to create ``go``: a second build can then start at a known point of the first.
PAUSED_BUILD = """
import sys, time
from pathlib import Path
# build() calls the dedup stage by this module's name for it.
import csft_data.pipeline.runner as pipeline

reached, go, out = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
dedup_stage = pipeline.dedup_stage

def paused(*args, **kwargs):
    result = dedup_stage(*args, **kwargs)
    reached.touch()
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return result

pipeline.dedup_stage = paused
from csft_data.cli import main
sys.exit(main(["build", "--demo", "-o", out]))
"""


@pytest.fixture()
def paused_build(
    tmp_path: Path,
) -> Iterator[tuple[subprocess.Popen[str], Path, Callable[[], None]]]:
    """A build of the demo into ``tmp_path/out``, paused after its dedup stage; call the
    returned function to let it go on."""
    reached, go, out = tmp_path / "reached", tmp_path / "go", tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSED_BUILD, str(reached), str(go), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not reached.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the first build never reached its pause"
            time.sleep(0.02)
        yield proc, out, go.touch
    finally:
        go.touch()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_a_second_build_in_the_same_folder_fails_at_once(
    paused_build: tuple[subprocess.Popen[str], Path, Callable[[], None]],
) -> None:
    first, out, go = paused_build
    before = snapshot(out)
    started = time.monotonic()
    second = cli("build", "--demo", "-o", str(out))
    elapsed = time.monotonic() - started
    assert second.returncode == 2, second.stderr
    assert f"pid {first.pid}" in second.stderr, second.stderr
    assert "another build" in second.stderr and str(out) in second.stderr
    assert "Errno" not in second.stderr
    assert elapsed < 30  # python's start-up; the build itself would take longer
    assert snapshot(out) == before  # the second build touched nothing
    go()
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    for name in ("train.jsonl", "val.jsonl", "train.parquet", "val.parquet"):
        assert manifest["outputs"][name]["sha256"] == sha256(out / name), name
    assert len((out / "train.jsonl").read_text("utf-8").splitlines()) == manifest["split"]["train"]


def test_the_lock_of_a_killed_build_does_not_block(
    paused_build: tuple[subprocess.Popen[str], Path, Callable[[], None]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, out, _ = paused_build
    assert str(first.pid) in (out / ".lock").read_text("utf-8")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert main(["build", "--demo", "-o", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["outputs"]["train.parquet"]["sha256"] == sha256(out / "train.parquet")
    assert not (out / ".staging").exists()
    assert not [p for p in (out / ".cache").iterdir() if p.name.endswith(".partial")]
    capsys.readouterr()


def test_a_stale_lock_file_does_not_block(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    info = {"pid": dead_pid(), "started": "2020-01-01T00:00:00+00:00", "host": "elsewhere"}
    (out / ".lock").write_text(json.dumps(info), "utf-8")
    assert main(["build", "--demo", "-o", str(out)]) == 0


# -- 3. a tampered stage cache ---------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of a fresh demo build."""
    out = tmp_path_factory.mktemp("ref") / "out"
    assert main(["build", "--demo", "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def reference(reference_build: Path) -> bytes:
    """``train.jsonl`` of a fresh demo build."""
    return (reference_build / "train.jsonl").read_bytes()


def test_the_build_writes_only_the_names_it_protects(reference_build: Path) -> None:
    """A build refuses inputs at ``OUTPUT_NAMES`` in its folder: the list must be complete."""
    from csft_data.pipeline.runner import OUTPUT_NAMES

    assert {p.name for p in reference_build.iterdir()} <= set(OUTPUT_NAMES)
    assert (reference_build / ".lock").read_bytes() == b""  # released: names no holder


def stage_dir(out: Path, stage: str) -> Path:
    (d,) = (out / ".cache").glob(f"{stage}-*")
    return d


def edit_first_record(path: Path) -> None:
    """Changes the first record's output, in place (same inode, same line count)."""
    lines = path.read_bytes().splitlines(keepends=True)
    rec = json.loads(lines[0])
    rec["output"] = "篡改：" + rec["output"]
    lines[0] = json.dumps(rec, ensure_ascii=False).encode() + b"\n"
    with path.open("r+b") as f:
        f.write(b"".join(lines))
        f.truncate()


def flip_label(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 1  # one record changes sides: same size
    path.write_bytes(bytes(data))


def bump_count(path: Path) -> None:
    stats = json.loads(path.read_text("utf-8"))
    stats["sources"]["toyhom"]["out"] += 1
    path.write_text(json.dumps(stats), "utf-8")


TAMPERING: list[tuple[str, str, str, Callable[[Path], None]]] = [
    ("edit mixture file", "mixture", "toyhom.jsonl", edit_first_record),
    ("edit dedup file", "dedup", "toyhom.jsonl", edit_first_record),
    ("edit normalize file", "normalize", "cmtmedqa.jsonl", edit_first_record),
    ("flip a split label", "split", "labels.bin", flip_label),
    ("delete a file", "mixture", "toyhom.jsonl", Path.unlink),
    ("truncate stage.json", "mixture", "stage.json", lambda p: p.write_bytes(p.read_bytes()[:40])),
    ("empty stage.json", "lengths", "stage.json", lambda p: p.write_bytes(b"")),
    ("change a count", "dedup", "stage.json", bump_count),
]


@pytest.mark.parametrize(
    ("case", "stage", "name", "tamper"), TAMPERING, ids=[t[0] for t in TAMPERING]
)
def test_a_tampered_stage_cache_is_recomputed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    reference: bytes,
    case: str,
    stage: str,
    name: str,
    tamper: Callable[[Path], None],
) -> None:
    out = tmp_path / "out"
    assert main(["build", "--demo", "-o", str(out)]) == 0
    assert (out / "train.jsonl").read_bytes() == reference
    tamper(stage_dir(out, stage) / name)
    capsys.readouterr()
    assert main(["build", "--demo", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert (out / "train.jsonl").read_bytes() == reference
    warning = next((line for line in err.splitlines() if "recomputing" in line), "")
    assert f"stage {stage}" in warning and name in warning, err
    assert "internal error" not in err
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["outputs"]["train.jsonl"]["sha256"] == sha256(out / "train.jsonl")
    # and the next build trusts the recomputed cache again
    assert main(["build", "--demo", "-o", str(out)]) == 0
    assert "recomputing" not in capsys.readouterr().err


# -- 4. temporary files of killed runs -------------------------------------------------------


def plant_temps(folder: Path, dead: int) -> tuple[list[Path], list[Path]]:
    """Temporary files as our writers name them, of a dead process (stale) and of a live one
    (this process), plus files that only look like them; returns (stale, to keep)."""
    folder.mkdir(parents=True, exist_ok=True)
    stale = [
        folder / f".out.jsonl.tmp-{dead}",  # the Rust writer
        folder / f".o.parquet.tmp-{dead}.jsonl",  # write.staged_output
        folder / f".o.parquet.tmp-{dead}.part",  # write.convert_jsonl
    ]
    keep = [
        folder / f".out.jsonl.tmp-{os.getpid()}",  # alive
        folder / f".o.parquet.tmp-{os.getpid()}.jsonl",
        folder / f".out.jsonl.tmp-{dead}x",
        folder / f".out.jsonl.tmp-0{dead}",
        folder / f"out.jsonl.tmp-{dead}",
        folder / f".out.jsonl.tmp-{dead}.txt",
        folder / f".notes.{dead}.jsonl",
    ]
    for p in stale + keep:
        p.write_text("partial\n", "utf-8")
    d = folder / f".dir.tmp-{dead}"
    d.mkdir()
    link = folder / f".link.jsonl.tmp-{dead}"
    link.symlink_to(keep[0])
    keep += [d, link]
    # an out-of-core dedup's temporary folder (rust/dedup/spill.rs), of a dead and a live run
    for pid, into in ((dead, stale), (os.getpid(), keep)):
        spill = folder / f".csft-dedup-Xy12ab.tmp-{pid}"
        spill.mkdir()
        (spill / "band-000.bin").write_bytes(b"\0" * 8)
        into.append(spill)
    return stale, keep


@pytest.mark.parametrize("command", ["normalize", "adapt", "dedup", "decontaminate", "build"])
def test_stale_temporary_files_are_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    src = write_jsonl(tmp_path / "in" / "in.jsonl")
    ev = write_jsonl(tmp_path / "in" / "ev.jsonl", [{"q": "完全无关的评测题目内容在这里"}])
    out, side = tmp_path / "out", tmp_path / "side"
    dead = dead_pid()
    stale, keep = plant_temps(out, dead)
    o, c, r = str(out / "o.jsonl"), str(side / "c.jsonl"), str(side / "r.jsonl")
    argv = {
        "normalize": ["normalize", str(src), "-o", o],
        "adapt": ["adapt", "alpaca", str(src), "-o", o],
        "dedup": ["dedup", str(src), "-o", o, "--clusters", c],
        "decontaminate": ["decontaminate", str(src), "-o", o, "--eval", str(ev), "--report", r],
        "build": ["build", "--demo", "-o", str(out)],
    }[command]
    if command in ("dedup", "decontaminate"):
        s, k = plant_temps(side, dead)
        stale, keep = stale + s, keep + k
    if command == "build":  # leftovers of a killed build
        (out / ".staging").mkdir()
        (out / ".staging" / "train.jsonl").write_text("partial\n")
        (out / ".cache" / ".adapt-0123456789abcdef.partial").mkdir(parents=True)
        s, k = plant_temps(out / ".cache", dead)
        stale += s
        keep += [p for p in k if not p.is_dir()]  # unused folders of the cache are pruned
    assert main(argv) == 0, capsys.readouterr().err
    assert [p for p in stale if p.exists()] == []
    assert [p for p in keep if not p.exists()] == []
    if command == "build":
        assert not (out / ".staging").exists()
        assert not list((out / ".cache").glob(".*.partial"))


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".tmp-" in p.name)


def test_a_run_killed_while_writing_leaves_nothing_after_the_next_run(tmp_path: Path) -> None:
    src = tmp_path / "big.jsonl"
    with src.open("w", encoding="utf-8") as f:
        for i in range(150_000):
            rec = {"instruction": f"問題 {i}：高血壓患者能吃黨參嗎？" * 3, "output": "回答。" * 40}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    argv = [sys.executable, "-m", "csft_data", "normalize", str(src), "-o", str(out / "n.jsonl")]
    argv += ["--convert", "t2s", "--batch-size", "1024"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not temp_files(out) or temp_files(out)[0].stat().st_size == 0:
            assert proc.poll() is None, "finished before it could be killed: make the input bigger"
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        proc.kill()  # SIGKILL: no clean-up of its own
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in temp_files(out)] == [f".n.jsonl.tmp-{proc.pid}"]
    assert not (out / "n.jsonl").exists()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert temp_files(out) == []
    reference = tmp_path / "ref"
    reference.mkdir()
    argv[argv.index(str(out / "n.jsonl"))] = str(reference / "n.jsonl")
    assert subprocess.run(argv, capture_output=True, timeout=300).returncode == 0
    assert (out / "n.jsonl").read_bytes() == (reference / "n.jsonl").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["n.jsonl"]


KILLED_BUILD = """
import os, signal, sys
from pathlib import Path

from csft_data.pipeline import cache, outputs

where, out = sys.argv[1], sys.argv[2]
if where == "write":  # half-way through the final write: train.parquet done, val not
    write_parquet = outputs.write_parquet

    def dying(src, dst):
        write_parquet(src, dst)
        if dst.name == "train.parquet":
            os.kill(os.getpid(), signal.SIGKILL)

    outputs.write_parquet = dying
else:  # a stage's work done, its folder not yet renamed into the cache
    run = cache.StageCache.run

    def dying(self, name, key, work, up=None):
        if name != where:
            return run(self, name, key, work, up)

        def work_then_die(d):
            work(d)
            os.kill(os.getpid(), signal.SIGKILL)

        return run(self, name, key, work_then_die, up)

    cache.StageCache.run = dying
from csft_data.cli import main
sys.exit(main(["build", "--demo", "-o", out]))
"""


def _outputs(folder: Path) -> dict[str, tuple[bool, bytes]]:
    skip = ("timings.json", ".lock", ".cache")
    return {k: v for k, v in snapshot(folder).items() if not k.startswith(skip)}


@pytest.mark.parametrize("where", ["adapt", "dedup", "lengths", "split", "write"])
def test_a_build_killed_at_any_point_resumes_byte_identical(
    where: str, reference_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_BUILD, where, str(out)], capture_output=True, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not (out / "manifest.json").exists()  # nothing half-written in place
    assert main(["build", "--demo", "-o", str(out)]) == 0
    capsys.readouterr()
    assert _outputs(out) == _outputs(reference_build)
    assert not (out / ".staging").exists()
    assert not [p for p in (out / ".cache").iterdir() if p.name.endswith(".partial")]
