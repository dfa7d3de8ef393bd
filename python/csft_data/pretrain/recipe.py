"""The pretraining recipe: a TOML file with ``kind = "pretrain"`` naming the document
sources (each with a category) and configuring the stages of ``csft-data pretrain``. It is
parsed and validated here (errors name the file and the key); the tables shared with the SFT
build (``[normalize]``, ``[dedup]``, ``[decontaminate]``, ``[engine]``) are read by the same
configuration classes. Runs nothing. Relative paths resolve against the recipe's folder.

A source is one of:

- ``format = "text"``: plain-text files (``path``/``paths``; a folder means its files matching
  ``glob``, default ``*.txt``, sorted, recursively), cut by ``split``: ``file`` (default),
  ``blank-line``, ``line`` or ``separator:TEXT``;
- ``format = "records"``: JSON Lines / JSON / CSV / Parquet files whose ``text_field``
  (default ``text``) is the document;
- ``format = "sft"``: files an ``adapter`` reads (``csft-data sources``), each record rendered
  as text in the adapter's style (dialogues as 患者/医生 turns, exam questions with their answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from csft_data._core import ConfigError
from csft_data.config_file import load_toml
from csft_data.pipeline.config import (
    DecontamConfig,
    DedupConfig,
    EngineConfig,
    NormalizeConfig,
    _Table,
    resolve_path,
)
from csft_data.pipeline.recipe import EvalSet
from csft_data.pretrain.config import (
    CATEGORIES,
    MixtureConfig,
    PackConfig,
    ParagraphConfig,
    QualityConfig,
)

FORMATS = ("text", "records", "sft")
#: Every document carries its text here (the field dedup, quality and decontamination read).
TEXT = "text"


@dataclass(frozen=True)
class DocSource:
    name: str
    category: str
    format: str
    paths: tuple[Path, ...]
    split: str = "file"
    glob: str = "*.txt"
    text_field: str = TEXT
    adapter: str | None = None
    style: str | None = None


@dataclass(frozen=True)
class PretrainRecipe:
    out_dir: Path
    seed: int
    sources: tuple[DocSource, ...]
    normalize: NormalizeConfig
    dedup: DedupConfig
    paragraphs: ParagraphConfig
    quality: QualityConfig
    decontaminate: DecontamConfig
    evals: tuple[EvalSet, ...]
    mixture: MixtureConfig
    pack: PackConfig
    on_error: str = "skip"
    engine: EngineConfig = field(default_factory=EngineConfig)

    def to_json(self) -> dict[str, Any]:
        """The recipe as plain JSON data (the manifest's ``recipe``)."""
        return {
            "kind": "pretrain",
            "seed": self.seed,
            "sources": [
                {
                    "name": s.name,
                    "category": s.category,
                    "format": s.format,
                    "paths": [str(p) for p in s.paths],
                    "split": s.split,
                    "glob": s.glob,
                    "text_field": s.text_field,
                    "adapter": s.adapter,
                    "style": s.style,
                }
                for s in self.sources
            ],
            "normalize": self.normalize.to_json(),
            "dedup": self.dedup.to_json(),
            "paragraphs": self.paragraphs.to_json(),
            "quality": self.quality.to_json(),
            "decontaminate": self.decontaminate.to_json(),
            "evals": [
                {"path": str(e.path), "adapter": e.adapter, "fields": e.fields} for e in self.evals
            ],
            "mixture": self.mixture.to_json(),
            "pack": self.pack.to_json(),
            "on_error": self.on_error,
        }


def is_pretrain_recipe(path: str | Path) -> bool:
    """Whether a recipe file says ``kind = "pretrain"``."""
    return load_toml(Path(path)).get("kind") == "pretrain"


def load_pretrain_recipe(path: str | Path, out_dir: str | Path | None = None) -> PretrainRecipe:
    """Reads and validates a pretraining recipe; ``out_dir`` overrides ``[output] dir``."""
    file = Path(path)
    data = load_toml(file)
    return parse_pretrain_recipe(data, base=file.resolve().parent, file=str(file), out_dir=out_dir)


def parse_pretrain_recipe(
    data: dict[str, Any], *, base: Path, file: str = "<recipe>", out_dir: str | Path | None = None
) -> PretrainRecipe:
    """Validates pretraining recipe data (as parsed from TOML)."""
    from csft_data.adapters import adapters

    known = {a["name"]: a for a in adapters()}
    top = _Table(data, "top level", file)
    kind = top.get("kind", str, "pretrain")
    if kind != "pretrain":
        raise ConfigError(f'{file}: kind: expected "pretrain", got {kind!r}')
    for key in ("output", "source", "normalize", "dedup", "paragraphs", "quality", "decontaminate",
                "mixture", "pack", "engine", "seed", "on_error"):  # fmt: skip
        top.seen.add(key)
    top.finish()

    output = _Table(data.get("output", {}), "output", file)
    dir_ = output.get("dir", str, None)
    output.finish()
    if out_dir is None and dir_ is None:
        raise ConfigError(f"{file}: [output] dir: missing, and no -o/--output given")
    target = Path(out_dir) if out_dir is not None else resolve_path(base, str(dir_))

    raw = data.get("source")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{file}: no [[source]] tables: a recipe needs at least one source")
    sources: list[DocSource] = []
    for i, entry in enumerate(raw):
        t = _Table(entry, f"source {i + 1}", file)
        name = t.require("name", str)
        t.where = f"source {name!r}"
        if not name.replace("_", "").replace("-", "").isalnum():
            raise t._err("name", f"letters, digits, - and _ only, got {name!r}")
        if any(s.name == name for s in sources):
            raise t._err("name", f"two sources are named {name!r}")
        category = t.choice("category", CATEGORIES, "general")
        adapter = t.get("adapter", str)
        default_format = "sft" if adapter else ("records" if "text_field" in entry else "text")
        fmt = t.choice("format", FORMATS, default_format)
        if fmt == "sft":
            if adapter is None:
                raise t._err("adapter", 'format = "sft" needs an adapter; see `csft-data sources`')
            if adapter not in known:
                raise t._err("adapter", f"unknown adapter {adapter!r}; see `csft-data sources`")
        elif adapter is not None:
            raise t._err("adapter", f'an adapter is for format = "sft", not {fmt!r}')
        many = t.strings("paths")
        one = t.get("path", str)
        if (many is None) == (one is None):
            raise t._err("path", 'give exactly one of path = "..." or paths = [...]')
        split = t.get("split", str, "file")
        if split not in ("file", "blank-line", "line") and not (
            split.startswith("separator:") and split[len("separator:") :].strip()
        ):
            raise t._err(
                "split", f"expected file, blank-line, line or separator:TEXT, got {split!r}"
            )
        style = t.get("style", str, known[adapter]["style"] if adapter else None)
        sources.append(
            DocSource(
                name=name,
                category=category,
                format=fmt,
                paths=tuple(resolve_path(base, p) for p in (many or (one,))),
                split=split,
                glob=t.get("glob", str, "*.txt"),
                text_field=t.get("text_field", str, TEXT),
                adapter=adapter,
                style=style,
            )
        )
        t.finish()

    norm = _Table(data.get("normalize", {}), "normalize", file)
    normalize = NormalizeConfig.from_table(norm)
    norm.finish()
    dd = _Table(data.get("dedup", {}), "dedup", file)
    if "fields" in dd.data:
        raise dd._err("fields", "documents are deduplicated on their text; no fields to choose")
    dedup = replace(DedupConfig.from_table(dd), fields=(TEXT,))
    dd.finish()
    pg = _Table(data.get("paragraphs", {}), "paragraphs", file)
    paragraphs = ParagraphConfig.from_table(pg)
    pg.finish()
    qt = _Table(data.get("quality", {}), "quality", file)
    quality = QualityConfig.from_table(qt)
    qt.finish()

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
        evals.append(EvalSet(resolve_path(base, et.require("path", str)), ea, et.strings("fields")))
        et.finish()
    if "fields" in dc.data:
        raise dc._err("fields", "documents are checked on their text; no fields to choose")
    decontaminate = replace(DecontamConfig.from_table(dc), fields=(TEXT,))
    dc.finish()

    mx = _Table(data.get("mixture", {}), "mixture", file)
    mixture = MixtureConfig.from_table(mx)
    mx.finish()
    if mixture.tokens is not None:
        have = {s.category for s in sources}
        missing = sorted(set(mixture.tokens) - have)
        if missing:
            raise ConfigError(
                f"{file}: [mixture] tokens: no source has category {', '.join(missing)}"
            )
    pk = _Table(data.get("pack", {}), "pack", file)
    pack = PackConfig.from_table(pk, base)
    pk.finish()
    en = _Table(data.get("engine", {}), "engine", file)
    engine = EngineConfig.from_table(en)
    en.finish()
    seed = data.get("seed", 42)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{file}: seed: expected an integer, got {seed!r}")
    on_error = data.get("on_error", "skip")
    if on_error not in ("skip", "raise"):
        raise ConfigError(f"{file}: on_error: expected skip or raise, got {on_error!r}")
    return PretrainRecipe(
        out_dir=target,
        seed=seed,
        sources=tuple(sources),
        normalize=normalize,
        dedup=dedup,
        paragraphs=paragraphs,
        quality=quality,
        decontaminate=decontaminate,
        evals=tuple(evals),
        mixture=mixture,
        pack=pack,
        on_error=on_error,
        engine=engine,
    )
