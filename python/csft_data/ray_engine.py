"""Ray as the distributed engine of ``dedup`` (``--engine ray``; the ``ray`` extra).

Pass 1 of a dedup, the per-record work (reading, the dedup texts, exact-key hashes and MinHash
band keys), runs as one Ray task per input file, on any node of the cluster; each task writes its
file's *sketch* (``rust/dedup/sketch.rs``: checksummed, tied to the options and to the input's
size and time) into a folder that every node sees. The driver then runs the rest in Rust from
the sketches, exactly as a local run does from its own pass 1 (exact groups, LSH buckets, the
keep policy, the clusters file, the copy of the kept records), except the heaviest step: the
verified linking of the buckets (``rust/dedup/remote.rs``) goes back to Ray as *link jobs* of
about 260k bucket members each, whose workers read the members' texts from the sketches; the
driver forms components from their edges and splits them as a local run does. Both engines
therefore write the same bytes. A task whose worker dies is retried by Ray (``max_retries``); a
sketch written by a half-finished attempt is never seen (atomic writes).

The build's per-source stages run one Ray task per source through :func:`run_each`, with the
same functions as locally: adapt, normalize, decontaminate (each task checks its source
against the evaluation files, converted once on the driver; the driver concatenates the hits
and rejections in source order and counts the distinct items hit from the hits) and lengths
(each task counts and routes its source; the driver writes ``totals.bin`` from the tasks'
arrays). Their outputs, stats and fingerprints are the local engine's.

Not done here: the LSH group-by, the split of components and the copy of the kept records run
on the driver (in Rust, out of core past the memory limit), not as Ray shuffles; the unit of
parallelism is the input file (a build's source), as for Ray Data's JSON reader, so a corpus
in one huge file gains nothing (shard it); a decontaminate task reads the evaluation files and
builds their index again for its source, and uses all the cores of its node (the core's
decontamination takes no thread count); the diversify stage, the mixture and the split (and
the pretraining build's own stages) run on the driver.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from csft_data._core import ConfigError, CsftDataError

#: Tests: a path (read by the driver when the run starts). The first sketch task that finds it
#: missing, and the first link task that finds ``PATH-link`` missing, creates it and kills its
#: worker, so the run must survive workers lost mid-run (Ray retries the tasks).
FAULT_ENV = "CSFT_DATA_RAY_FAULT_ONCE"

T = TypeVar("T")

#: What a sketch task is told (the reading and signing options); the rest stays on the driver.
_DRIVER_ONLY = (
    "clusters",
    "quarantine",
    "progress",
    "memory_limit",
    "tmp_dir",
    "sketches",
    "link",
)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "engine 'ray' needs Ray: pip install 'csft-data[ray]' (or pip install 'ray[data]')"
        ) from None
    return ray


def _sketch_task(
    path: str, name: str, out: str, options: dict[str, Any], marker: str | None
) -> dict[str, Any]:
    """One input file's pass 1, in a Ray worker: writes its sketch to ``out``."""
    if marker and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
        os._exit(1)  # the worker dies as a killed or lost node's would
    from csft_data import _core

    return dict(_core.dedup_files([(path, name)], None, sketch_out=out, **options))


def _link_task(sketches: list[str], job: bytes, threads: int, marker: str | None) -> bytes:
    """One link job (``rust/dedup/remote.rs``), in a Ray worker: its buckets' verified edges."""
    if marker and not Path(marker + "-link").exists():
        Path(marker + "-link").write_text(str(os.getpid()), encoding="utf-8")
        os._exit(1)
    from csft_data import _core

    return _core.link_job(sketches, job, num_threads=threads)


class Linker:
    """The callable a run from sketches links its buckets with (``link=`` of
    ``_core.dedup_files``): each scope's link jobs as Ray tasks, results in job order. Counts
    the jobs and the seconds spent."""

    def __init__(self, sketches: Sequence[Path], cpus_per_task: int) -> None:
        ray = _import_ray()
        self._ray = ray
        self._task = ray.remote(num_cpus=cpus_per_task, max_retries=3)(_link_task)
        self._sketches = ray.put([str(p) for p in sketches])
        self._threads = cpus_per_task
        self._marker = os.environ.get(FAULT_ENV)
        self.jobs = 0
        self.seconds = 0.0

    def __call__(self, jobs: list[bytes]) -> list[bytes]:
        ray, start = self._ray, time.perf_counter()
        refs = [self._task.remote(self._sketches, j, self._threads, self._marker) for j in jobs]
        try:
            results: list[bytes] = ray.get(refs)
        except ray.exceptions.RayTaskError as e:
            for r in refs:
                ray.cancel(r, force=True)
            _raise_cause(e)
        self.jobs += len(jobs)
        self.seconds += time.perf_counter() - start
        return results


def sketch_folder(parent: Path) -> Path:
    """A new folder for the sketches of one run, named like the out-of-core dedup's temporary
    folders so that a later run removes it if this process is killed."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = parent / f".csft-dedup-ray{secrets.token_hex(6)}.tmp-{os.getpid()}"
    folder.mkdir()
    return folder


def sketch_inputs(
    sources: Sequence[tuple[Path, str]],
    options: dict[str, Any],
    folder: Path,
    *,
    address: str | None,
    cpus_per_task: int,
    report: Callable[[str, int, int], None] | None,
) -> tuple[list[Path], dict[str, Any]]:
    """Sketches every input as a Ray task into ``folder``; returns the sketch paths in input
    order and what the pass took (tasks, sketch bytes, seconds). Joins the running Ray
    instance if there is one, else ``ray.init(address)`` (``None``: a local cluster on this
    machine; ``"auto"``: the cluster this machine belongs to) and shuts it down afterwards."""
    ray = _import_ray()
    if cpus_per_task < 1:
        raise ConfigError(f"ray cpus_per_task must be at least 1, got {cpus_per_task}")
    with session(address):
        start = time.perf_counter()
        task = ray.remote(num_cpus=cpus_per_task, max_retries=3)(_sketch_task)
        opts = {k: v for k, v in options.items() if k not in _DRIVER_ONLY}
        opts["num_threads"] = cpus_per_task
        paths = [folder / f"{i:05d}.sketch" for i in range(len(sources))]
        marker = os.environ.get(FAULT_ENV)
        refs = [
            task.remote(str(Path(p).resolve()), name, str(out), opts, marker)
            for (p, name), out in zip(sources, paths, strict=True)
        ]
        pending, done, sketch_bytes = list(refs), 0, 0
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                sketch_bytes += int(ray.get(ready[0])["bytes"])
                done += 1
                if report is not None:
                    report("sketches", done, len(refs))
        except ray.exceptions.RayTaskError as e:
            _raise_cause(e)
        finally:
            for ref in pending:  # nothing keeps writing into a folder about to be removed
                ray.cancel(ref, force=True)
        seconds = round(time.perf_counter() - start, 3)
        return paths, {"tasks": len(refs), "sketch_bytes": sketch_bytes, "sketch_seconds": seconds}


#: Inside :func:`hold`: whether Ray was started in it (it is shut down when the hold ends).
_held: list[bool] | None = None


@contextmanager
def hold() -> Iterator[None]:
    """Within it, a Ray instance that a step starts stays up for the next steps (a build's
    stages) and is shut down when it ends; nothing is started if no step needs Ray."""
    global _held
    outer, _held = _held, [False]
    mine = _held
    try:
        yield
    finally:
        _held = outer
        if mine[0]:
            _import_ray().shutdown()


@contextmanager
def session(address: str | None) -> Iterator[None]:
    """The running Ray instance, or one started with ``ray.init(address)`` for the block (or
    for the enclosing :func:`hold`)."""
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        if _held is not None:
            _held[0], started = True, False
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _raise_cause(e: Exception) -> NoReturn:
    """A task's own error (a bad record, a missing file) as a local run raises it."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, CsftDataError | OSError):
        raise cause from None
    raise e


def run_each(
    fn: Callable[..., T],
    calls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]],
    *,
    kind: str = "local",
    address: str | None = None,
    cpus_per_task: int = 1,
) -> list[T]:
    """``fn(*args, **kwargs)`` for each call, in order: here (``kind="local"``) or as one Ray
    task each (``"ray"``; retried if its worker dies). For the build's per-source stages
    (adapt, normalize, decontaminate, lengths), whose calls read and write files that every
    node sees; ``fn`` must be importable by the workers (a module-level function)."""
    if kind == "local":
        return [fn(*args, **kwargs) for args, kwargs in calls]
    ray = _import_ray()
    with session(address):
        task = ray.remote(num_cpus=cpus_per_task, max_retries=3)(fn)
        refs = [task.remote(*args, **kwargs) for args, kwargs in calls]
        try:
            return [ray.get(r) for r in refs]
        except ray.exceptions.RayTaskError as e:
            for r in refs:
                ray.cancel(r, force=True)
            _raise_cause(e)


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
