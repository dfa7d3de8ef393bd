"""The build recipe: a TOML file that names the sources and configures every stage of
``csft-data build``. This module parses and validates it (errors name the file and the key) and
gives each stage's configuration as a typed, frozen dataclass (``config.py``, whose ``to_json``
is the plain data fingerprints are computed from); it runs nothing.

Relative paths in a recipe are resolved against the recipe file's folder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from csft_data._core import ConfigError
from csft_data.adapters import STYLES
from csft_data.config_file import load_toml
from csft_data.pipeline.config import (
    _C,
    DecontamConfig,
    DedupConfig,
    DiversifyConfig,
    EngineConfig,
    LengthsConfig,
    MixtureConfig,
    NormalizeConfig,
    SplitConfig,
    _Table,
)
from csft_data.pipeline.config import resolve_path as _path


@dataclass(frozen=True)
class Source:
    name: str
    adapter: str
    paths: tuple[Path, ...]
    max_records: int | None = None
    weight: float = 1.0
    style: str | None = None  # None: the adapter's style
    per_conversation: bool = False
    templates: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalSet:
    path: Path
    adapter: str | None = None
    fields: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Recipe:
    path: Path | None
    out_dir: Path
    name: str
    seed: int
    sources: tuple[Source, ...]
    normalize: NormalizeConfig
    dedup: DedupConfig
    decontaminate: DecontamConfig
    evals: tuple[EvalSet, ...]
    lengths: LengthsConfig | None
    mixture: MixtureConfig
    split: SplitConfig
    on_error: str = "skip"
    #: None: no ``[diversify]`` table (the stage does not run and is not recorded).
    diversify: DiversifyConfig | None = None
    #: Where the dedup stage runs; outputs are the same, so it is in no fingerprint.
    engine: EngineConfig = field(default_factory=EngineConfig)

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)

    def to_json(self) -> dict[str, Any]:
        """The recipe as plain JSON data (paths as given after resolution)."""

        def plain(v: Any) -> Any:
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, tuple | list):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        # asdict turns the stage configurations into dicts too (each one its to_json()).
        d = {k: plain(v) for k, v in asdict(self).items() if k not in ("path", "out_dir")}
        if self.diversify is None:  # recipes without it keep their fingerprints
            del d["diversify"]
        del d["engine"]
        return d


def load_recipe(path: str | Path, out_dir: str | Path | None = None) -> Recipe:
    """Reads and validates a recipe file; ``out_dir`` overrides ``[output] dir``."""
    file = Path(path)
    data = load_toml(file)
    return parse_recipe(data, base=file.resolve().parent, file=str(file), out_dir=out_dir)


def read_config(data: dict[str, Any], cls: type[_C], file: str, *args: Any) -> _C:
    """The configuration of the recipe table ``cls.SECTION`` (empty when absent), checked."""
    t = _Table(data.get(cls.SECTION, {}), cls.SECTION, file)
    config = cls.from_table(t, *args)
    t.finish()
    return config


def output_target(given: str | None, out_dir: str | Path | None, base: Path, file: str) -> Path:
    """The output folder: ``out_dir`` (-o) over ``[output] dir``, one of them required."""
    if out_dir is None and given is None:
        raise ConfigError(f"{file}: [output] dir: missing, and no -o/--output given")
    return Path(out_dir) if out_dir is not None else _path(base, str(given))


def source_table(entry: Any, i: int, file: str, taken: list[str]) -> tuple[_Table, str]:
    """The ``i``-th ``[[source]]`` table and its name (letters, digits, - and _; not in
    ``taken``); later errors name the source."""
    t = _Table(entry, f"source {i + 1}", file)
    name: str = t.require("name", str)
    t.where = f"source {name!r}"
    if not name.replace("_", "").replace("-", "").isalnum():
        raise t._err("name", f"letters, digits, - and _ only, got {name!r}")
    if name in taken:
        raise t._err("name", f"two sources are named {name!r}")
    return t, name


def source_paths(t: _Table, base: Path) -> tuple[Path, ...]:
    """A source's ``path = "..."`` or ``paths = [...]`` (exactly one), resolved."""
    many = t.strings("paths")
    one = t.get("path", str)
    if (many is None) == (one is None):
        raise t._err("path", 'give exactly one of path = "..." or paths = [...]')
    return tuple(_path(base, p) for p in (many or (one,)))


def read_evals(dc: _Table, known: dict[str, Any], base: Path, file: str) -> tuple[EvalSet, ...]:
    """The evaluation files of ``[decontaminate] eval = [{ path, adapter, fields }, ...]``."""
    evals: list[EvalSet] = []
    for j, e in enumerate(dc.get("eval", list, [])):
        if not isinstance(e, dict):
            raise dc._err(
                "eval", f"entry {j + 1}: expected a table {{ path = ..., adapter = ... }}"
            )
        et = _Table(e, f"decontaminate eval {j + 1}", file)
        ea = et.get("adapter", str)
        if ea is not None and ea not in known:
            raise et._err("adapter", f"unknown adapter {ea!r}; see `csft-data sources`")
        evals.append(EvalSet(_path(base, et.require("path", str)), ea, et.strings("fields")))
        et.finish()
    return tuple(evals)


def read_seed_and_on_error(data: dict[str, Any], file: str, seed: int) -> tuple[int, str]:
    """The top-level ``seed`` (default ``seed``) and ``on_error`` (skip or raise)."""
    value = data.get("seed", seed)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{file}: seed: expected an integer, got {value!r}")
    on_error = data.get("on_error", "skip")
    if on_error not in ("skip", "raise"):
        raise ConfigError(f"{file}: on_error: expected skip or raise, got {on_error!r}")
    return value, on_error


def parse_recipe(
    data: dict[str, Any], *, base: Path, file: str = "<recipe>", out_dir: str | Path | None = None
) -> Recipe:
    """Validates recipe data (as parsed from TOML)."""
    from csft_data.adapters import adapters

    known = {a["name"]: a for a in adapters()}
    top = _Table(data, "top level", file)
    for key in (
        "output",
        "source",
        "normalize",
        "dedup",
        "decontaminate",
        "diversify",
        "lengths",
        "mixture",
        "split",
        "engine",
        "seed",
        "on_error",
    ):
        top.seen.add(key)
    top.finish()

    output = _Table(data.get("output", {}), "output", file)
    dir_ = output.get("dir", str, None)
    name = output.get("name", str, "csft")
    output.finish()
    target = output_target(dir_, out_dir, base, file)
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{file}: [output] name: letters, digits, - and _ only, got {name!r}")

    raw_sources = data.get("source")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError(f"{file}: no [[source]] tables: a recipe needs at least one source")
    sources: list[Source] = []
    for i, raw in enumerate(raw_sources):
        t, sname = source_table(raw, i, file, [s.name for s in sources])
        adapter = t.require("adapter", str)
        if adapter not in known:
            raise t._err("adapter", f"unknown adapter {adapter!r}; see `csft-data sources`")
        files = source_paths(t, base)
        style = t.get("style", str)
        if style is not None and style not in STYLES:
            raise t._err("style", f"expected one of {', '.join(STYLES)}, got {style!r}")
        weight = t.number("weight", 1.0, 0.0, 1e9)
        sources.append(
            Source(
                name=sname,
                adapter=adapter,
                paths=files,
                max_records=t.count("max_records"),
                weight=weight,
                style=style or known[adapter]["style"],
                per_conversation=t.get("per_conversation", bool, False),
                templates=t.str_map("templates"),
                mapping=t.str_map("mapping"),
            )
        )
        t.finish()

    normalize = read_config(data, NormalizeConfig, file)
    dedup = read_config(data, DedupConfig, file)

    dc = _Table(data.get("decontaminate", {}), "decontaminate", file)
    evals = read_evals(dc, known, base, file)
    decontaminate = DecontamConfig.from_table(dc)
    dc.finish()

    lengths: LengthsConfig | None = None
    if "lengths" in data:
        lengths = read_config(data, LengthsConfig, file, base)

    diversify: DiversifyConfig | None = None
    if "diversify" in data:
        dv = _Table(data["diversify"], "diversify", file)
        diversify = DiversifyConfig.from_table(dv, base)
        dv.finish()
        if diversify.instructions is None and diversify.generator is None:
            raise dv._err("generator", "give instructions = FILE, or a generator to make them")

    mixture = read_config(data, MixtureConfig, file)

    sp = _Table(data.get("split", {}), "split", file)
    split_seed = sp.get("seed", int, None)
    split = SplitConfig.from_table(sp)
    sp.finish()
    seed, on_error = read_seed_and_on_error(
        data, file, split_seed if split_seed is not None else 42
    )
    engine = read_config(data, EngineConfig, file)

    return Recipe(
        path=None,
        out_dir=target,
        name=name,
        seed=seed,
        sources=tuple(sources),
        normalize=normalize,
        dedup=dedup,
        decontaminate=decontaminate,
        evals=evals,
        lengths=lengths,
        mixture=mixture,
        split=split,
        on_error=on_error,
        diversify=diversify,
        engine=engine,
    )
