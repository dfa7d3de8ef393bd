"""The typed configuration of each stage of ``csft-data build``, declared once: one frozen
dataclass per recipe table (``[normalize]``, ``[dedup]``, ``[decontaminate]``, ``[diversify]``,
``[lengths]``, ``[mixture]``, ``[split]``) whose fields are the table's keys with their defaults.
``from_table`` reads and validates a table (errors name the recipe file and the key);
``to_json`` gives the configuration as plain JSON data, which is what the manifest records and
what a stage's fingerprint is computed from.

This module reads no file and runs nothing: the recipe as a whole (sources, evaluation files,
output, seed) is in ``recipe.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar, overload

from csft_data._core import ConfigError
from csft_data.adapters import STYLES

SCOPES = ("per-source", "cross-source", "both")
POLICIES = ("drop", "truncate", "keep")
KEEPS = ("first", "longest", "priority")
UNICODE_FORMS = ("none", "nfc", "nfkc", "width")
SKETCHES = ("oph", "minhash")
SCENARIOS = ("single", "multi")
PLACEMENTS = ("system", "instruction")
SIMILARITIES = ("rouge-l", "jaccard")
GENERATOR_KINDS = ("local", "url", "vllm")


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

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        v = self.get(key, (int, float), default)
        if not lo <= float(v) <= hi:
            raise self._err(key, f"must be between {lo} and {hi}, got {v}")
        return float(v)

    @overload
    def count(self, key: str, default: int, lo: int = 1) -> int: ...

    @overload
    def count(self, key: str, default: None = None, lo: int = 1) -> int | None: ...

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


def resolve_path(base: Path, p: str) -> Path:
    """A path of the recipe: ``~`` expanded, relative to ``base`` (the recipe's folder)."""
    q = Path(p).expanduser()
    return Path(os.path.normpath(q if q.is_absolute() else base / q))


def _json(v: Any) -> Any:
    """Plain JSON data: tuples as lists, tables copied."""
    if isinstance(v, tuple | list):
        return [_json(x) for x in v]
    if isinstance(v, dict):
        return {k: _json(x) for k, x in v.items()}
    return v


_C = TypeVar("_C", bound="_StageConfig")


class _StageConfig:
    """What every stage configuration has: its fields as JSON, in declaration order, and one
    set of rules, ``_read``, used both for a recipe's table (``from_table``: errors name the
    file and the key) and for a configuration built in Python (``__post_init__``: errors name
    the class and the key), so ``DedupConfig(threshold=5)`` is refused as the recipe
    ``threshold = 5`` is."""

    __dataclass_fields__: ClassVar[dict[str, Any]]
    #: The recipe table this configuration is read from.
    SECTION: ClassVar[str]

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        """The constructor's arguments from a table, checked (types, ranges, choices)."""
        raise NotImplementedError

    @classmethod
    def from_table(cls: type[_C], t: _Table, *args: Any) -> _C:
        """The configuration of a recipe table (``args``: what ``_read`` needs besides)."""
        return cls(**cls._read(t, *args))

    def __post_init__(self) -> None:
        given = {k: v for k, v in self.to_json().items() if v is not None}
        type(self)._read(_Table(given, self.SECTION, type(self).__name__), Path())

    def to_json(self) -> dict[str, Any]:
        """The configuration as plain JSON data (the manifest's ``recipe`` and the stage's
        fingerprint): every field, in declaration order, tuples as lists."""
        return {f.name: _json(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class NormalizeConfig(_StageConfig):
    """``[normalize]``: script conversion (an OpenCC config such as ``t2s``, or none), Unicode
    normalization and the clean-ups of :func:`csft_data.normalize.normalize_file`."""

    SECTION: ClassVar[str] = "normalize"

    convert: str | None = None
    unicode: str = "none"
    newlines: bool = True
    control: bool = True
    whitespace: bool = True

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        return dict(
            convert=t.get("convert", str, cls.convert),
            unicode=t.choice("unicode", UNICODE_FORMS, cls.unicode),
            newlines=t.get("newlines", bool, cls.newlines),
            control=t.get("control", bool, cls.control),
            whitespace=t.get("whitespace", bool, cls.whitespace),
        )


@dataclass(frozen=True)
class DedupConfig(_StageConfig):
    """``[dedup]``: exact + MinHash-LSH near-duplicate removal (Jaccard ``threshold`` on the
    ``ngram``-shingles of ``fields``) within each source, across sources or both."""

    SECTION: ClassVar[str] = "dedup"

    enabled: bool = True
    threshold: float = 0.8
    scope: str = "both"
    fields: tuple[str, ...] = ("instruction", "input", "output")
    keep: str = "first"
    sketch: str = "oph"
    num_perm: int = 128
    ngram: int = 5

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        return dict(
            enabled=t.get("enabled", bool, cls.enabled),
            threshold=t.number("threshold", cls.threshold, 0.01, 1.0),
            scope=t.choice("scope", SCOPES, cls.scope),
            fields=t.strings("fields") or cls.fields,
            keep=t.choice("keep", KEEPS, cls.keep),
            sketch=t.choice("sketch", SKETCHES, cls.sketch),
            num_perm=t.count("num_perm", cls.num_perm, 16),
            ngram=t.count("ngram", cls.ngram),
        )


@dataclass(frozen=True)
class EngineConfig(_StageConfig):
    """``[engine]``: where the dedup stage's per-record pass and the per-source stages (adapt,
    normalize, decontaminate, lengths) run: ``local`` (this process) or ``ray`` (one Ray task
    per file or source at ``address``, ``cpus_per_task`` cores each; see
    :mod:`csft_data.ray_engine`), and the dedup's ``memory_limit`` (bytes or a size such as
    ``"2GB"``; past it the dedup runs out of core in ``tmp_dir``, relative to the working
    directory; default: half the memory
    available). Outputs are the same either way, so this is not part of any fingerprint."""

    SECTION: ClassVar[str] = "engine"

    kind: str = "local"
    address: str | None = None
    cpus_per_task: int = 1
    memory_limit: int | str | None = None
    tmp_dir: str | None = None

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        limit = t.get("memory_limit", (int, str), cls.memory_limit)
        if limit is not None:
            from csft_data.dedup import parse_size

            try:
                parse_size(limit)
            except (ValueError, ConfigError) as e:
                raise t._err("memory_limit", str(e)) from None
        return dict(
            kind=t.choice("kind", ("local", "ray"), cls.kind),
            address=t.get("address", str, cls.address),
            cpus_per_task=t.count("cpus_per_task", cls.cpus_per_task),
            memory_limit=limit,
            tmp_dir=t.get("tmp_dir", str, cls.tmp_dir),
        )


@dataclass(frozen=True)
class DecontamConfig(_StageConfig):
    """``[decontaminate]``: a training record is removed when it holds at least ``threshold``
    of an evaluation item's character ``ngram``-grams (on ``fields`` of the record). The
    evaluation files (``eval = [...]``) are :attr:`Recipe.evals <csft_data.pipeline.Recipe>`."""

    SECTION: ClassVar[str] = "decontaminate"

    ngram: int = 8
    threshold: float = 0.5
    fields: tuple[str, ...] = ("instruction", "input")

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        return dict(
            ngram=t.count("ngram", cls.ngram, 2),
            threshold=t.number("threshold", cls.threshold, 0.01, 1.0),
            fields=t.strings("fields") or cls.fields,
        )


def _generator_spec(t: _Table, base: Path) -> str | None:
    """``local:DIR``, ``url:URL`` or ``vllm:DIR`` (a folder resolved against ``base``)."""
    spec: str | None = t.get("generator", str)
    if spec is None:
        return None
    kind, colon, target = spec.partition(":")
    if not colon or kind not in GENERATOR_KINDS or not target:
        raise t._err("generator", f"expected local:DIR, url:URL or vllm:DIR, got {spec!r}")
    if kind == "url":
        if "@" in target.split("://", 1)[-1].split("/", 1)[0]:
            # The recipe goes into the manifest: no credential may be part of it.
            raise t._err("generator", "a URL with credentials: give the key in api_key_env")
        if t.data.get("model") is None:
            raise t._err("model", "a url: generator needs the endpoint's model name")
        return spec
    return f"{kind}:{resolve_path(base, target)}"


@dataclass(frozen=True)
class DiversifyConfig(_StageConfig):
    """``[diversify]``: SF-Med's instruction diversification (``csft_data.diversifier``).
    Instructions come from ``instructions`` (a file written by ``csft-data diversify``) or are
    generated from ``seeds`` (None: the built-in seeds) by ``generator`` (a recipe needs one
    of the two; ``csft_data.diversify`` also takes a generator object) until ``target``
    accepted instructions per scenario; each record of ``styles`` then gets one of its
    scenario (``single``: no history; ``multi``: a dialogue), chosen by a seeded hash of its
    source and conversation, as its ``system`` prompt or ``instruction`` (``placement``).
    The other keys tune the generation (see ``csft-data diversify --help``)."""

    SECTION: ClassVar[str] = "diversify"

    instructions: str | None = None
    seeds: str | None = None
    generator: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    template: str = "auto"
    scenarios: tuple[str, ...] = SCENARIOS
    target: int = 200
    max_steps: int | None = None
    batch: int = 8
    history: int = 5
    keep_oldest: int = 20
    keep_newest: int = 40
    swap_every: int = 10
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 256
    language: str = "zh"
    prompt: str | None = None
    min_chars: int = 8
    max_chars: int = 200
    terms: str | None = None
    similarity: str = "rouge-l"
    similarity_threshold: float = 0.7
    ngram: int = 2
    placement: str = "system"
    styles: tuple[str, ...] = ("qa", "dialogue")
    overwrite: bool = False

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        base: Path = args[0]
        files = {k: t.get(k, str) for k in ("instructions", "seeds", "terms")}
        generator = _generator_spec(t, base)
        if t.get("min_chars", int, cls.min_chars) > t.get("max_chars", int, cls.max_chars):
            raise t._err("min_chars", "must not be above max_chars")
        scenarios = t.strings("scenarios") or cls.scenarios
        styles = t.strings("styles") or cls.styles
        for key, values, allowed in (
            ("scenarios", scenarios, SCENARIOS),
            ("styles", styles, STYLES),
        ):
            if not set(values) <= set(allowed):
                raise t._err(key, f"expected some of {', '.join(allowed)}, got {list(values)}")
        return dict(
            **{k: None if v is None else str(resolve_path(base, v)) for k, v in files.items()},
            generator=generator,
            model=t.get("model", str),
            api_key_env=t.get("api_key_env", str),
            template=t.get("template", str, cls.template),
            scenarios=tuple(sorted(set(scenarios), key=SCENARIOS.index)),
            target=t.count("target", cls.target),
            max_steps=t.count("max_steps"),
            batch=t.count("batch", cls.batch),
            history=t.count("history", cls.history, 0),
            keep_oldest=t.count("keep_oldest", cls.keep_oldest, 0),
            keep_newest=t.count("keep_newest", cls.keep_newest),
            swap_every=t.count("swap_every", cls.swap_every),
            temperature=t.number("temperature", cls.temperature, 0.0, 5.0),
            top_p=t.number("top_p", cls.top_p, 0.01, 1.0),
            max_new_tokens=t.count("max_new_tokens", cls.max_new_tokens),
            language=t.choice("language", ("zh", "en"), cls.language),
            prompt=t.get("prompt", str),
            min_chars=t.count("min_chars", cls.min_chars),
            max_chars=t.count("max_chars", cls.max_chars),
            similarity=t.choice("similarity", SIMILARITIES, cls.similarity),
            similarity_threshold=t.number(
                "similarity_threshold", cls.similarity_threshold, 0.01, 1.0
            ),
            ngram=t.count("ngram", cls.ngram),
            placement=t.choice("placement", PLACEMENTS, cls.placement),
            styles=tuple(styles),
            overwrite=t.get("overwrite", bool, cls.overwrite),
        )


@dataclass(frozen=True)
class LengthsConfig(_StageConfig):
    """``[lengths]``: token counts under ``tokenizer`` (a ``tokenizer.json``, resolved against
    the recipe's folder) and a chat ``template``, and the policy for records longer than
    ``cutoff_len`` (``drop``, ``truncate`` or ``keep``)."""

    SECTION: ClassVar[str] = "lengths"

    tokenizer: str
    template: str = "intern2"
    cutoff_len: int = 1024
    policy: str = "drop"
    system: str | None = None

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        base: Path = args[0]
        return dict(
            tokenizer=str(resolve_path(base, t.require("tokenizer", str))),
            template=t.get("template", str, cls.template),
            cutoff_len=t.count("cutoff_len", cls.cutoff_len),
            policy=t.choice("policy", POLICIES, cls.policy),
            system=t.get("system", str, cls.system),
        )


@dataclass(frozen=True)
class MixtureConfig(_StageConfig):
    """``[mixture]``: ``total`` records (None: see :func:`~csft_data.pipeline.mixture.
    mixture_targets`) shared by per-style shares (``style_shares``, sorted by style), then
    within a style by ``weight × available^(1/temperature)``."""

    SECTION: ClassVar[str] = "mixture"

    total: int | None = None
    temperature: float = 1.0
    style_shares: dict[str, float] = field(default_factory=dict)

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        shares = t.get("style_shares", dict, {})
        for k, v in shares.items():
            if k not in STYLES or not isinstance(v, int | float) or v < 0:
                raise t._err(
                    "style_shares", f"{k} = {v!r}: styles are {', '.join(STYLES)}, shares ≥ 0"
                )
        return dict(
            total=t.count("total", cls.total),
            temperature=t.number("temperature", cls.temperature, 0.01, 1000.0),
            style_shares={k: float(v) for k, v in sorted(shares.items())},
        )


@dataclass(frozen=True)
class SplitConfig(_StageConfig):
    """``[split]``: the share of records that go to val, by groups (conversations and the
    near-duplicate clusters at ``group_threshold``; 0: conversations only). The table's
    ``seed`` is the recipe's seed (:attr:`Recipe.seed <csft_data.pipeline.Recipe>`) when the
    top level has none."""

    SECTION: ClassVar[str] = "split"

    val_ratio: float = 0.02
    group_threshold: float = 0.6

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        return dict(
            val_ratio=t.number("val_ratio", cls.val_ratio, 0.0, 0.9),
            group_threshold=t.number("group_threshold", cls.group_threshold, 0.0, 1.0),
        )
