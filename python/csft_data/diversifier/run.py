"""``csft_data.diversify``: SF-Med's instruction diversification from seeds to a file of accepted
instructions (with their provenance) and a file of rejected ones (with the reasons), one bank
run per scenario (``bank.py``) through a cached generator (``generators.py``). The build stage
(``csft_data.pipeline.diversify``) runs the same generation, then assigns (``assign.py``).

Seeds: a JSONL/JSON/CSV/Parquet file of records with an ``instruction`` and an optional
``scenario`` (``single`` or ``multi``; without one a seed serves both), a ``.txt`` file (one
seed a line, for every scenario), or the built-in :data:`SEEDS` (the paper's two examples of
§3.2 and Figure 2 in Chinese, and a few alike). The accepted file starts, per scenario, with the
seeds (``origin: seed``), then the generated instructions in the order they were accepted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csft_data._core import ConfigError
from csft_data.diversifier.assign import load_instructions
from csft_data.diversifier.bank import PROMPTS, BankRun, BankSettings, run_banks
from csft_data.diversifier.checks import Checker, load_terms
from csft_data.diversifier.generators import GenerationCache, Generator, cached, make_generator
from csft_data.pipeline.config import SCENARIOS, DiversifyConfig
from csft_data.write import write_text_atomic

#: The built-in seeds by scenario: single-turn answers directly, multi-turn may ask back.
SEEDS = {
    "single": (
        "请根据患者的问题，像医生一样进行回答。",
        "请基于你作为医生的背景，结合患者的描述，给出你对医学问题的见解。",
        "你是一名经验丰富的临床医生，请直接、准确地回答患者提出的健康问题。",
        "请以专业医生的身份，根据患者描述的症状给出可能的诊断和治疗建议。",
        "作为医学专家，请用通俗易懂的语言解答患者关于疾病和用药的疑问。",
        "请根据患者提供的信息，给出专业、简洁的医疗建议，并提醒必要时及时就医。",
    ),
    "multi": (
        "请根据患者的问题，像医生一样进行回答。如果无法判断患者的病情，可以向患者询问更多信息，"
        "但请注意不要重复之前轮次中已经问过的问题。",
        "作为一名医生，请根据患者的症状和病史准确评估并给出医疗建议。如果诊断不明确，请深入了解"
        "患者的情况，避免遗漏任何可能相关的信息，并严格遵守不重复提问的原则。",
        "你是一名耐心的医生，请在多轮对话中逐步了解患者的症状，必要时追问关键信息后再给出建议。",
        "请以医生的身份与患者交流，结合之前的对话内容回答患者的问题，信息不足时可以继续询问病史。",
        "请像门诊医生问诊一样与患者对话，先了解症状的持续时间和严重程度，再给出诊断思路和建议。",
        "作为临床医生，请根据对话中患者已经提供的信息给出回答，不要重复询问患者已经说明的内容。",
    ),
}


def load_seeds(path: str | Path | None, scenarios: Sequence[str]) -> dict[str, list[str]]:
    """The seeds of each scenario (see the module comment); each needs at least two."""
    if path is None:
        seeds = {s: list(SEEDS[s]) for s in scenarios}
    elif Path(path).suffix == ".txt":
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        seeds = {s: list(dict.fromkeys(x.strip() for x in lines if x.strip())) for s in scenarios}
    else:
        seeds = load_instructions(path, scenarios)
    for s, texts in seeds.items():
        if len(texts) < 2:
            where = path if path is not None else "the built-in seeds"
            raise ConfigError(f"{where}: {len(texts)} {s} seed(s); a scenario needs at least two")
    return seeds


@dataclass
class DiversifyResult:
    """Accepted rows (seeds first) and rejected rows, and per scenario: seeds, accepted,
    rejected, steps, swaps and whether the target was reached."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: str = ""
    cache: dict[str, int] = field(default_factory=dict)

    @property
    def reached(self) -> bool:
        return all(s["reached"] for s in self.scenarios.values())

    def sets(self) -> dict[str, list[str]]:
        """Scenario → instructions (seeds and generated), in file order."""
        out: dict[str, list[str]] = {s: [] for s in self.scenarios}
        for row in self.accepted:
            out[row["scenario"]].append(row["instruction"])
        return out

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "scenarios": self.scenarios, "cache": self.cache}


def bank_settings(cfg: DiversifyConfig) -> BankSettings:
    return BankSettings(
        history=cfg.history,
        keep_oldest=cfg.keep_oldest,
        keep_newest=cfg.keep_newest,
        swap_every=cfg.swap_every,
        batch=cfg.batch,
        target=cfg.target,
        max_steps=cfg.max_steps,
        prompt=cfg.prompt if cfg.prompt is not None else PROMPTS[cfg.language],
    )


def generator_options(cfg: DiversifyConfig) -> dict[str, Any]:
    """What :func:`~csft_data.diversifier.generators.make_generator` takes from ``cfg``."""
    return {
        "model": cfg.model,
        "api_key_env": cfg.api_key_env,
        "template": cfg.template,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "max_new_tokens": cfg.max_new_tokens,
        "batch_size": cfg.batch,
    }


def _bar(scenario: str, total: int, show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=f"diversify {scenario}", unit="instr", disable=not show)


def generate_instructions(
    cfg: DiversifyConfig,
    generator: Generator,
    *,
    seed: int,
    cache: GenerationCache | None,
    progress: bool = False,
) -> DiversifyResult:
    """Runs the banks of every scenario of ``cfg`` (see :mod:`csft_data.diversifier.bank`)."""
    seeds = load_seeds(cfg.seeds, cfg.scenarios)
    terms = load_terms(cfg.terms)
    settings = bank_settings(cfg)
    generate = cached(generator, cache)
    result = DiversifyResult(model=generator.model_id)
    for scenario in [s for s in SCENARIOS if s in cfg.scenarios]:
        checker = Checker(
            min_chars=cfg.min_chars,
            max_chars=cfg.max_chars,
            terms=terms,
            similarity=cfg.similarity,
            threshold=cfg.similarity_threshold,
            ngram=cfg.ngram,
        )
        checker.add(seeds[scenario])
        result.accepted += [_seed_row(t, scenario) for t in seeds[scenario]]
        with _bar(scenario, cfg.target, progress) as bar:
            tally = [0, 0]

            def on_step(acc: int, rej: int, bar: Any = bar, tally: list[int] = tally) -> None:
                tally[0] += acc
                tally[1] += rej
                bar.update(acc)
                bar.set_postfix(accepted=tally[0], rejected=tally[1], refresh=False)

            run, _ = run_banks(
                scenario, seeds[scenario], generate, settings, checker, seed, on_step
            )
        result.accepted += run.accepted
        result.rejected += run.rejected
        result.scenarios[scenario] = _counts(run, len(seeds[scenario]), cfg.target)
    if cache is not None:
        result.cache = {"hits": cache.hits, "misses": cache.misses}
    return result


def _seed_row(text: str, scenario: str) -> dict[str, Any]:
    return {
        "instruction": text,
        "scenario": scenario,
        "origin": "seed",
        "step": 0,
        "prompt_sha256": None,
        "parent": None,
        "checks": None,
    }


def _counts(run: BankRun, seeds: int, target: int) -> dict[str, Any]:
    return {
        "seeds": seeds,
        "accepted": len(run.accepted),
        "rejected": len(run.rejected),
        "steps": run.steps,
        "swaps": run.swaps,
        "reached": len(run.accepted) >= target,
    }


def diversify(
    output: str | Path,
    *,
    generator: str | Generator,
    seeds: str | Path | None = None,
    rejected: str | Path | None = None,
    cache: str | Path | None = None,
    seed: int = 42,
    progress: bool | None = None,
    api_key_env: str | None = None,
    generator_kwargs: Mapping[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> DiversifyResult:
    """Generates diversified instructions (SF-Med §3.2) from ``seeds`` (None: the built-in
    ones) with ``generator`` (``local:DIR``, ``url:URL``, ``vllm:DIR`` or a
    :class:`~csft_data.diversifier.generators.Generator`) and writes the accepted ones to
    ``output`` and the rejected ones to ``rejected`` (default: ``<output>`` with
    ``.rejected.jsonl``), both JSONL, atomically. Replies are cached under ``cache`` (default:
    ``<output>.cache/``). ``options``: the keys of
    :class:`~csft_data.pipeline.config.DiversifyConfig` (``target``, ``scenarios``,
    ``history``, ``temperature``, …); ``generator_kwargs``: what the generator class takes
    besides (``device``, ``dtype``, ``concurrency``, ``retries``, ``backoff``, ``timeout``).
    The API key, if any, is read from the environment variable ``api_key_env``."""
    spec = generator if isinstance(generator, str) else None
    seeds_path = None if seeds is None else str(seeds)
    cfg = DiversifyConfig(generator=spec, seeds=seeds_path, api_key_env=api_key_env, **options)
    if isinstance(generator, str):
        kw = {**generator_options(cfg), "log": log, **(generator_kwargs or {})}
        gen = make_generator(generator, **kw)
    else:
        gen = generator
    out = Path(output)
    store = GenerationCache(cache if cache is not None else out.with_name(out.name + ".cache"))
    show = sys.stderr.isatty() if progress is None else progress
    result = generate_instructions(cfg, gen, seed=seed, cache=store, progress=show)
    rejected_path = Path(rejected) if rejected is not None else rejected_name(out)
    write_text_atomic(out, _jsonl(result.accepted))
    write_text_atomic(rejected_path, _jsonl(result.rejected))
    return result


def rejected_name(output: Path) -> Path:
    stem = output.name[: -len(".jsonl")] if output.name.endswith(".jsonl") else output.name
    return output.with_name(f"{stem}.rejected.jsonl")


def _jsonl(rows: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
