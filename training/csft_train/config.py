"""TOML configs of the training commands, read into dataclasses.

One file drives ``csft-data train pt``, ``sft``, ``dpo`` and ``sweep``: sections ``[model]``,
``[data]``, ``[train]``, optional ``[lora]``, ``[merge]``, ``[dpo]`` and ``[sweep]`` (see
``training/README.md`` for every key). Unknown keys and values of the wrong type are errors that
name the section and key; relative paths are resolved against the config file's folder. Nothing
here imports torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import csft_data

#: Written into ``final/`` by training: the chat template (and system prompt) the model was
#: trained with, which ``csft-data eval --template auto`` then renders with.
TRAINED_WITH_FILE = "csft_train.json"


#: A config that cannot be used (the message names the file, section and key): csft-data's
#: one configuration error, shared by both packages.
ConfigError = csft_data.ConfigError


@dataclass
class ModelConfig:
    #: A local model folder (config.json + weights, or config.json only with ``init = "random"``).
    path: str = ""
    #: The ``tokenizer.json`` to encode with (default: ``<path>/tokenizer.json``).
    tokenizer: str = ""
    #: LLaMA-Factory template name (``csft_data.template_names()``).
    template: str = "intern2"
    #: Replaces the template's default system prompt (a record's own ``system`` wins).
    system: str | None = None
    bos_token: str | None = None
    eos_token: str | None = None
    #: ``auto`` (``bf16`` on CUDA when supported, else ``fp32``), ``bf16`` (mixed: fp32 master
    #: weights and optimizer, bf16 autocast), ``pure_bf16`` (everything in bf16) or ``fp32``.
    dtype: str = "auto"
    #: ``auto`` (flash_attention_2 when installed on CUDA, else sdpa), ``sdpa``, ``eager``, ...
    attn_implementation: str = "auto"
    #: ``pretrained`` loads the weights; ``random`` initialises from config.json (benchmarks).
    init: str = "pretrained"
    gradient_checkpointing: bool = False
    #: ``torch.compile`` the model being trained (``nn.Module.compile``: checkpoints keep their
    #: names). The first steps compile; on an H200 it took a 7B LoRA step from 29% to 42% MFU.
    compile: bool = False


@dataclass
class DataConfig:
    #: Alpaca (or messages-style) files: JSONL/JSON/Parquet/CSV, any the csft_data readers know;
    #: for ``train pt``, pretrain output folders (``manifest.json`` and token shards).
    train: list[str] = field(default_factory=list)
    cutoff_len: int = 1024
    #: Train only the last turn of multi-turn records (LLaMA-Factory ``mask_history``).
    mask_history: bool = False
    train_on_prompt: bool = False
    #: Batches of similar token length (buckets of the token lengths), else plain shuffling.
    group_by_length: bool = True
    #: Pack several examples into rows of ``cutoff_len`` tokens (no attention across them).
    packing: bool = False
    #: Keep at most this many examples (after encoding, in file order); 0 = all.
    max_samples: int = 0
    #: ``raise`` on a record that cannot be rendered, or ``skip`` it (listed in the log).
    on_error: str = "raise"


@dataclass
class TrainConfig:
    output_dir: str = "runs/sft"
    learning_rate: float = 2e-5
    epochs: float = 3.0
    #: Stop after this many optimizer steps (0 = run all epochs).
    max_steps: int = 0
    per_device_batch_size: int = 16
    gradient_accumulation_steps: int = 2
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    #: Overrides ``warmup_ratio`` when > 0.
    warmup_steps: int = 0
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    seed: int = 42
    logging_steps: int = 10
    #: Write a checkpoint every this many optimizer steps (0 = only at the end).
    save_steps: int = 0
    #: Keep this many newest checkpoints (0 = all).
    save_total_limit: int = 2
    #: Resume from the newest checkpoint in ``output_dir`` when there is one.
    resume: bool = True
    #: ``cuda``, ``cpu`` or ``auto``.
    device: str = "auto"
    #: Save the final model (``save_pretrained``) into ``output_dir/final``.
    save_final: bool = True


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    #: ``all-linear`` or a list of module names.
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])


@dataclass
class MergeConfig:
    #: ``none``, ``ondare`` or ``onties`` (online merging optimizers, Lu et al. 2024).
    method: str = "none"
    #: The base (pre-trained) model folder: τ = θ_sft − θ_base.
    base_model: str = ""
    #: The SFT model folder (default: ``[model] path``, the model being trained).
    sft_model: str = ""
    reserve_p: float = 0.01
    alpha: float = 1e-7
    rescale: bool = False
    clip_val: float = 1.0
    #: Merge every K steps (the paper's Step-K variant); 1 = every step.
    online_step: int = 1


@dataclass
class DPOConfig:
    #: Ranking files with ``chosen``/``rejected`` (Alpaca or messages style).
    train: list[str] = field(default_factory=list)
    beta: float = 0.1
    #: A frozen reference model folder (default: a frozen copy of the initial policy).
    ref_model: str = ""
    #: Compute the reference log-probs once before training and free the reference model.
    precompute_ref: bool = True
    #: Weight of an SFT (NLL of chosen) term, LLaMA-Factory's ``pref_ftx``.
    sft_weight: float = 0.0


@dataclass
class DistConfig:
    """Data parallelism when launched by torchrun (``WORLD_SIZE`` > 1; see ``csft_train.dist``)."""

    #: ``auto`` (FSDP2 for full fine-tuning, DDP for LoRA), ``fsdp``, ``ddp`` or ``none`` (refuses
    #: to run under torchrun with more than one process).
    strategy: str = "auto"
    #: FSDP2 only: keep the sharded parameters, gradients and optimizer state in CPU memory.
    cpu_offload: bool = False


@dataclass
class SweepConfig:
    cutoff_len: list[int] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    merge: MergeConfig = field(default_factory=MergeConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    dist: DistConfig = field(default_factory=DistConfig)
    #: The file it was read from (for messages).
    source: str = "<config>"


_PATH_KEYS = {
    "model": ("path", "tokenizer"),
    "data": ("train",),
    "train": ("output_dir",),
    "merge": ("base_model", "sft_model"),
    "dpo": ("train", "ref_model"),
}

_CHOICES = {
    ("model", "dtype"): ("auto", "bf16", "pure_bf16", "fp32"),
    ("model", "init"): ("pretrained", "random"),
    ("data", "on_error"): ("raise", "skip"),
    ("train", "lr_scheduler"): ("cosine", "linear", "constant_with_warmup"),
    ("train", "device"): ("auto", "cuda", "cpu"),
    ("merge", "method"): ("none", "ondare", "onties"),
    ("dist", "strategy"): ("auto", "fsdp", "ddp", "none"),
}


def _check_value(where: str, hint: Any, value: Any) -> Any:
    text = str(hint)
    if text.startswith("list["):
        inner = text[5:-1]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_value(f"{where}[{i}]", inner, v) for i, v in enumerate(value)]
    optional = "None" in text
    if value is None and optional:
        return None
    if "bool" in text:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if "int" in text and "float" not in text:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if "float" in text:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if "str" in text:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value  # pragma: no cover


def _section(cls: type[Any], table: Any, name: str, source: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) in [{name}]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    values = {k: _check_value(f"{source}: [{name}] {k}", hints[k], v) for k, v in table.items()}
    for (sec, key), allowed in _CHOICES.items():
        if sec == name and key in values and values[key] not in allowed:
            raise ConfigError(
                f"{source}: [{name}] {key} = {values[key]!r}: expected one of {', '.join(allowed)}"
            )
    return cls(**values)


def _resolve(cfg: Config, base: Path) -> None:
    for sec, keys in _PATH_KEYS.items():
        obj = getattr(cfg, sec)
        for key in keys:
            value = getattr(obj, key)
            if isinstance(value, list):
                setattr(obj, key, [str(base / v) if v else v for v in value])
            elif value:
                setattr(obj, key, str(base / value))


def _validate(cfg: Config) -> None:
    src = cfg.source
    positive = [
        ("data", "cutoff_len"),
        ("train", "per_device_batch_size"),
        ("train", "gradient_accumulation_steps"),
        ("train", "logging_steps"),
        ("lora", "r"),
        ("merge", "online_step"),
    ]
    for sec, key in positive:
        if getattr(getattr(cfg, sec), key) < 1:
            raise ConfigError(f"{src}: [{sec}] {key} must be at least 1")
    for sec, key in [("train", "learning_rate"), ("train", "epochs"), ("dpo", "beta")]:
        if getattr(getattr(cfg, sec), key) <= 0:
            raise ConfigError(f"{src}: [{sec}] {key} must be positive")
    if not 0 <= cfg.train.warmup_ratio < 1:
        raise ConfigError(f"{src}: [train] warmup_ratio must be in [0, 1)")
    if not 0 < cfg.merge.reserve_p <= 1:
        raise ConfigError(f"{src}: [merge] reserve_p must be in (0, 1]")
    if not 0 <= cfg.merge.alpha <= 1:
        raise ConfigError(f"{src}: [merge] alpha must be in [0, 1]")
    if cfg.merge.method != "none" and not cfg.merge.base_model:
        raise ConfigError(f"{src}: [merge] method = {cfg.merge.method!r} needs base_model")
    if cfg.dist.strategy == "fsdp" and cfg.lora.enabled:
        raise ConfigError(
            f"{src}: [dist] strategy = 'fsdp' shards full fine-tuning; LoRA trains with 'ddp' "
            "(or 'auto')"
        )
    if cfg.merge.method != "none" and cfg.lora.enabled:
        raise ConfigError(
            f"{src}: [merge] online merging needs full fine-tuning (τ is a full-weight delta); "
            "turn [lora] enabled off"
        )


def parse_config(
    data: dict[str, Any], source: str = "<config>", base: Path | None = None
) -> Config:
    """A :class:`Config` from a parsed TOML table; relative paths resolve against ``base``."""
    sections = {f.name: f for f in dataclasses.fields(Config) if f.name != "source"}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(
            f"{source}: unknown section(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(sections))})"
        )
    hints = get_type_hints(Config)
    parts = {name: _section(hints[name], data.get(name, {}), name, source) for name in sections}
    cfg = Config(**parts, source=source)
    if base is not None:
        _resolve(cfg, base)
    if cfg.model.path and not cfg.model.tokenizer:
        cfg.model.tokenizer = str(Path(cfg.model.path) / "tokenizer.json")
    _validate(cfg)
    return cfg


def load_config(path: str | Path) -> Config:
    """Reads a TOML config file (see the module comment)."""
    p = Path(path)
    data = csft_data.load_toml(p)
    return parse_config(data, source=str(p), base=p.resolve().parent)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain tables (paths as resolved), for writing back."""
    out = dataclasses.asdict(cfg)
    out.pop("source", None)
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")  # pragma: no cover


def dump_toml(tables: dict[str, dict[str, Any]]) -> str:
    """Writes tables of scalars and lists as TOML (``None`` values are left out)."""
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None)
        lines.append("")
    return "\n".join(lines)
