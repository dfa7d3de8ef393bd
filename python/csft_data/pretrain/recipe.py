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
)
from csft_data.pipeline.recipe import (
    EvalSet,
    output_target,
    read_config,
    read_evals,
    read_seed_and_on_error,
    source_paths,
    source_table,
)
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
    target = output_target(output.get("dir", str, None), out_dir, base, file)
    output.finish()

    raw = data.get("source")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{file}: no [[source]] tables: a recipe needs at least one source")
    sources: list[DocSource] = []
    for i, entry in enumerate(raw):
        t, name = source_table(entry, i, file, [s.name for s in sources])
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
        paths = source_paths(t, base)
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
                paths=paths,
                split=split,
                glob=t.get("glob", str, "*.txt"),
                text_field=t.get("text_field", str, TEXT),
                adapter=adapter,
                style=style,
            )
        )
        t.finish()

    # documents are deduplicated and checked on their text: no fields to choose
    for section in ("dedup", "decontaminate"):
        if "fields" in data.get(section, {}):
            raise ConfigError(f"{file}: [{section}] fields: documents have one field, text")
    dc = _Table(data.get("decontaminate", {}), "decontaminate", file)
    evals = read_evals(dc, known, base, file)
    decontaminate = replace(DecontamConfig.from_table(dc), fields=(TEXT,))
    dc.finish()
    mixture = read_config(data, MixtureConfig, file)
    if mixture.tokens is not None:
        missing = sorted(set(mixture.tokens) - {s.category for s in sources})
        if missing:
            raise ConfigError(
                f"{file}: [mixture] tokens: no source has category {', '.join(missing)}"
            )
    seed, on_error = read_seed_and_on_error(data, file, 42)
    return PretrainRecipe(
        out_dir=target,
        seed=seed,
        sources=tuple(sources),
        normalize=read_config(data, NormalizeConfig, file),
        dedup=replace(read_config(data, DedupConfig, file), fields=(TEXT,)),
        paragraphs=read_config(data, ParagraphConfig, file),
        quality=read_config(data, QualityConfig, file),
        decontaminate=decontaminate,
        evals=evals,
        mixture=mixture,
        pack=read_config(data, PackConfig, file, base),
        on_error=on_error,
        engine=read_config(data, EngineConfig, file),
    )
