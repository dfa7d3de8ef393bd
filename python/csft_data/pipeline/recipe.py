"""The build recipe: a TOML file that names the sources and configures every stage of
``csft-data build``. This module parses and validates it (errors name the file and the key) and
gives each stage's configuration as plain data for fingerprinting; it runs nothing.

Relative paths in a recipe are resolved against the recipe file's folder.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from csft_data._core import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SCOPES = ("per-source", "cross-source", "both")
POLICIES = ("drop", "truncate", "keep")
KEEPS = ("first", "longest", "priority")
STYLES = ("mcqa", "qa", "dialogue", "ner_intent", "generic")


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
    normalize: dict[str, Any]
    dedup: dict[str, Any]
    decontaminate: dict[str, Any]
    evals: tuple[EvalSet, ...]
    lengths: dict[str, Any] | None
    mixture: dict[str, Any]
    split: dict[str, Any]
    on_error: str = "skip"

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

        d = {k: plain(v) for k, v in asdict(self).items() if k not in ("path", "out_dir")}
        return d


class _Table:
    """A TOML table being read: typed getters whose errors name the file and the key; keys
    not read are reported as unknown."""

    def __init__(self, data: dict[str, Any], where: str, file: str) -> None:
        self.data, self.where, self.file, self.seen = data, where, file, set[str]()

    def _err(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.file}: [{self.where}] {key}: {msg}")

    def get(self, key: str, types: type | tuple[type, ...], default: Any = None) -> Any:
        self.seen.add(key)
        if key not in self.data:
            return default
        v = self.data[key]
        if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise self._err(key, f"expected {_names(types)}, got {v!r}")
        if not isinstance(v, types):
            raise self._err(key, f"expected {_names(types)}, got {v!r}")
        return v

    def require(self, key: str, types: type | tuple[type, ...]) -> Any:
        if key not in self.data:
            raise self._err(key, "missing (required)")
        return self.get(key, types)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        v: str = self.get(key, str, default)
        if v not in choices:
            raise self._err(key, f"expected one of {', '.join(choices)}, got {v!r}")
        return v

    def number(self, key: str, default: float | None, lo: float, hi: float) -> float | None:
        v = self.get(key, (int, float), default)
        if v is not None and not lo <= float(v) <= hi:
            raise self._err(key, f"must be between {lo} and {hi}, got {v}")
        return None if v is None else float(v)

    def count(self, key: str, default: int | None = None, lo: int = 1) -> int | None:
        v: int | None = self.get(key, int, default)
        if v is not None and v < lo:
            raise self._err(key, f"must be at least {lo}, got {v}")
        return v

    def strings(self, key: str) -> tuple[str, ...] | None:
        v = self.get(key, list)
        if v is None:
            return None
        if not v or not all(isinstance(x, str) for x in v):
            raise self._err(key, f"expected a non-empty list of strings, got {v!r}")
        return tuple(v)

    def str_map(self, key: str) -> dict[str, str]:
        v = self.get(key, dict, {})
        if not all(isinstance(x, str) for x in v.values()):
            raise self._err(key, "expected a table of strings")
        return dict(v)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise ConfigError(f"{self.file}: [{self.where}] unknown keys: {', '.join(unknown)}")


def _names(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join(
        {
            "str": "a string",
            "int": "an integer",
            "float": "a number",
            "bool": "true/false",
            "list": "a list",
            "dict": "a table",
        }.get(t.__name__, t.__name__)
        for t in ts
    )


def _path(base: Path, p: str) -> Path:
    q = Path(p).expanduser()
    return Path(os.path.normpath(q if q.is_absolute() else base / q))


def load_recipe(path: str | Path, out_dir: str | Path | None = None) -> Recipe:
    """Reads and validates a recipe file; ``out_dir`` overrides ``[output] dir``."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{file}: not valid TOML: {e}") from None
    return parse_recipe(data, base=file.resolve().parent, file=str(file), out_dir=out_dir)


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
        "lengths",
        "mixture",
        "split",
        "seed",
        "on_error",
    ):
        top.seen.add(key)
    top.finish()

    output = _Table(data.get("output", {}), "output", file)
    dir_ = output.get("dir", str, None)
    name = output.get("name", str, "csft")
    output.finish()
    if out_dir is None and dir_ is None:
        raise ConfigError(f"{file}: [output] dir: missing, and no -o/--output given")
    target = Path(out_dir) if out_dir is not None else _path(base, str(dir_))
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{file}: [output] name: letters, digits, - and _ only, got {name!r}")

    raw_sources = data.get("source")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError(f"{file}: no [[source]] tables: a recipe needs at least one source")
    sources: list[Source] = []
    for i, raw in enumerate(raw_sources):
        t = _Table(raw, f"source {i + 1}", file)
        sname = t.require("name", str)
        t.where = f"source {sname!r}"
        if not sname.replace("_", "").replace("-", "").isalnum():
            raise t._err("name", f"letters, digits, - and _ only, got {sname!r}")
        if any(s.name == sname for s in sources):
            raise t._err("name", f"two sources are named {sname!r}")
        adapter = t.require("adapter", str)
        if adapter not in known:
            raise t._err("adapter", f"unknown adapter {adapter!r}; see `csft-data sources`")
        paths_ = t.strings("paths")
        one = t.get("path", str)
        if (paths_ is None) == (one is None):
            raise t._err("path", 'give exactly one of path = "..." or paths = [...]')
        files = tuple(_path(base, p) for p in (paths_ or (one,)))
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
                weight=1.0 if weight is None else weight,
                style=style or known[adapter]["style"],
                per_conversation=t.get("per_conversation", bool, False),
                templates=t.str_map("templates"),
                mapping=t.str_map("mapping"),
            )
        )
        t.finish()

    norm = _Table(data.get("normalize", {}), "normalize", file)
    normalize = {
        "convert": norm.get("convert", str, None),
        "unicode": norm.choice("unicode", ("none", "nfc", "nfkc", "width"), "none"),
        "newlines": norm.get("newlines", bool, True),
        "control": norm.get("control", bool, True),
        "whitespace": norm.get("whitespace", bool, True),
    }
    norm.finish()

    dd = _Table(data.get("dedup", {}), "dedup", file)
    dedup = {
        "enabled": dd.get("enabled", bool, True),
        "threshold": dd.number("threshold", 0.8, 0.01, 1.0),
        "scope": dd.choice("scope", SCOPES, "both"),
        "fields": list(dd.strings("fields") or ("instruction", "input", "output")),
        "keep": dd.choice("keep", KEEPS, "first"),
        "sketch": dd.choice("sketch", ("oph", "minhash"), "oph"),
        "num_perm": dd.count("num_perm", 128, 16),
        "ngram": dd.count("ngram", 5),
    }
    dd.finish()

    dc = _Table(data.get("decontaminate", {}), "decontaminate", file)
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
    decontaminate = {
        "ngram": dc.count("ngram", 8, 2),
        "threshold": dc.number("threshold", 0.5, 0.01, 1.0),
        "fields": list(dc.strings("fields") or ("instruction", "input")),
    }
    dc.finish()

    lengths: dict[str, Any] | None = None
    if "lengths" in data:
        ln = _Table(data["lengths"], "lengths", file)
        lengths = {
            "tokenizer": str(_path(base, ln.require("tokenizer", str))),
            "template": ln.get("template", str, "intern2"),
            "cutoff_len": ln.count("cutoff_len", 1024),
            "policy": ln.choice("policy", POLICIES, "drop"),
            "system": ln.get("system", str, None),
        }
        ln.finish()

    mx = _Table(data.get("mixture", {}), "mixture", file)
    shares = mx.get("style_shares", dict, {})
    for k, v in shares.items():
        if k not in STYLES or not isinstance(v, int | float) or v < 0:
            raise mx._err(
                "style_shares", f"{k} = {v!r}: styles are {', '.join(STYLES)}, shares ≥ 0"
            )
    mixture = {
        "total": mx.count("total"),
        "temperature": mx.number("temperature", 1.0, 0.01, 1000.0),
        "style_shares": {k: float(v) for k, v in sorted(shares.items())},
    }
    mx.finish()

    sp = _Table(data.get("split", {}), "split", file)
    split_seed = sp.get("seed", int, None)
    split = {
        "val_ratio": sp.number("val_ratio", 0.02, 0.0, 0.9),
        "group_threshold": sp.number("group_threshold", 0.6, 0.0, 1.0),
    }
    sp.finish()
    seed = data.get("seed", split_seed if split_seed is not None else 42)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{file}: seed: expected an integer, got {seed!r}")
    on_error = data.get("on_error", "skip")
    if on_error not in ("skip", "raise"):
        raise ConfigError(f"{file}: on_error: expected skip or raise, got {on_error!r}")

    return Recipe(
        path=None,
        out_dir=target,
        name=name,
        seed=seed,
        sources=tuple(sources),
        normalize=normalize,
        dedup=dedup,
        decontaminate=decontaminate,
        evals=tuple(evals),
        lengths=lengths,
        mixture=mixture,
        split=split,
        on_error=on_error,
    )
