"""The generators of ``csft-data diversify`` and the on-disk cache every generation goes through.

- ``local:DIR``: a transformers model folder, batched and left-padded through the evaluation
  engine of the training module (``csft_train.evaluate.engine``), greedy at temperature 0 and
  sampled (seeded) above it, prompted with the chat template the folder records or a named one;
- ``url:URL``: an OpenAI-compatible chat-completions endpoint through the judge's client
  (``csft_train.evaluate.chat_client``: concurrency, retries with backoff and ``Retry-After``,
  the key from an environment variable and redacted everywhere), a ``seed`` per request;
- ``vllm:DIR``: vLLM offline, one ``LLM.generate`` over each batch with prefix caching, when
  ``vllm`` is installed.

The training pieces are imported when a generator is made (``csft_data`` needs no torch); a
missing one is a :class:`ConfigError` naming what to install. :class:`GenerationCache` keeps
each reply under the sha256 of (model id and revision, rendered prompt, sampling settings,
seed), written atomically as it arrives, so a re-run, or one after a crash, generates only what
is missing and gives the same bytes. Nothing here decides what to generate (``bank.py``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from csft_data._core import ConfigError
from csft_data.cli.train import INSTALL_HINT
from csft_data.write import write_text_atomic

#: Files of a model folder hashed whole for its revision (larger ones: name, size, mtime).
_SMALL_FILE = 4 << 20


class Generator(Protocol):
    #: The model and its revision, as the cache key knows it (never a credential).
    model_id: str
    #: The sampling settings, as the cache key knows them.
    sampling: dict[str, Any]

    def render(self, turns: Sequence[str]) -> str:
        """The prompt exactly as the model gets it (user, assistant, …, user turns)."""
        ...

    def __call__(self, turns: Sequence[Sequence[str]], seeds: Sequence[int]) -> list[str]:
        """One reply per conversation (``seeds``: one per conversation)."""
        ...


def folder_revision(folder: Path) -> str:
    """A digest of a model folder: small files by content, weights by name, size and mtime."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(folder).as_posix()}\0{st.st_size}\0".encode())
        h.update(f.read_bytes() if st.st_size <= _SMALL_FILE else str(st.st_mtime_ns).encode())
    return h.hexdigest()[:16]


class GenerationCache:
    """Replies on disk, one JSON file per key under ``folder/<key[:2]>/``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.hits = self.misses = 0

    @staticmethod
    def key(model_id: str, prompt: str, sampling: dict[str, Any], seed: int) -> str:
        payload = {"model": model_id, "prompt": prompt, "sampling": sampling, "seed": seed}
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            record = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # missing, or unreadable: generated again
        reply = record.get("reply") if isinstance(record, dict) else None
        return reply if isinstance(reply, str) and record.get("key") == key else None

    def put(self, key: str, model_id: str, reply: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"key": key, "model": model_id, "reply": reply}
        write_text_atomic(path, json.dumps(record, ensure_ascii=False) + "\n")


def cached(
    generator: Generator, cache: GenerationCache | None
) -> Callable[[Sequence[Sequence[str]], Sequence[int]], list[str]]:
    """``generator`` behind ``cache``: only the prompts not in it are generated (one batch)."""
    if cache is None:
        return generator

    def run(turns: Sequence[Sequence[str]], seeds: Sequence[int]) -> list[str]:
        keys = [
            cache.key(generator.model_id, generator.render(t), generator.sampling, s)
            for t, s in zip(turns, seeds, strict=True)
        ]
        replies = [cache.get(k) for k in keys]
        todo = [i for i, r in enumerate(replies) if r is None]
        cache.hits += len(keys) - len(todo)
        cache.misses += len(todo)
        if todo:
            fresh = generator([turns[i] for i in todo], [seeds[i] for i in todo])
            for i, reply in zip(todo, fresh, strict=True):
                cache.put(keys[i], generator.model_id, reply)
                replies[i] = reply
        return [r if r is not None else "" for r in replies]

    return run


def _training(what: str) -> None:
    try:
        import csft_train  # noqa: F401
    except ImportError as e:
        raise ConfigError(
            f"{what} needs the training module, which is not installed ({e}).\n"
            f"Install it with: {INSTALL_HINT}"
        ) from None


def _sampling(temperature: float, top_p: float, max_new_tokens: int) -> dict[str, Any]:
    if temperature <= 0:
        return {"temperature": 0.0, "max_new_tokens": max_new_tokens}
    return {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens}


class LocalGenerator:
    """A local transformers model folder (see the module comment)."""

    def __init__(
        self,
        folder: Path,
        *,
        template: str = "auto",
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_new_tokens: int = 256,
        batch_size: int = 8,
        device: str = "auto",
        dtype: str = "auto",
    ) -> None:
        _training("local:DIR")
        from csft_train.evaluate import engine
        from csft_train.evaluate.prompt import chat_renderer

        self.engine = engine
        self.model, self.tokenizer = engine.load_model(folder, device=device, dtype=dtype)
        self.renderer = chat_renderer(self.tokenizer, folder, template)
        self.batch_size = batch_size
        self.sampling = _sampling(temperature, top_p, max_new_tokens)
        self.model_id = f"local:{folder.name}@{folder_revision(folder)}:{template}"

    def render(self, turns: Sequence[str]) -> str:
        return str(self.renderer.render(list(turns)))

    def __call__(self, turns: Sequence[Sequence[str]], seeds: Sequence[int]) -> list[str]:
        ids = self.engine.encode(self.tokenizer, [self.render(t) for t in turns])
        new = self.engine.generate_greedy(
            self.model,
            self.tokenizer,
            ids,
            max_new_tokens=self.sampling["max_new_tokens"],
            batch_size=self.batch_size,
            temperature=self.sampling["temperature"],
            top_p=self.sampling.get("top_p", 1.0),
            seed=seeds[0] if seeds else 0,
        )
        return [str(x) for x in self.tokenizer.batch_decode(new, skip_special_tokens=True)]


def _messages(turns: Sequence[str]) -> list[dict[str, str]]:
    return [{"role": ("user", "assistant")[n % 2], "content": t} for n, t in enumerate(turns)]


class EndpointGenerator:
    """An OpenAI-compatible chat-completions endpoint (see the module comment)."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_new_tokens: int = 256,
        concurrency: int = 4,
        retries: int = 3,
        backoff: float = 1.0,
        timeout: float = 120.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        _training("url:URL")
        from csft_train.evaluate.chat_client import api_key_from_env, chat_client, redact

        api_key = api_key_from_env(api_key_env)
        self.sampling = _sampling(temperature, top_p, max_new_tokens)
        params: dict[str, Any] = {"max_tokens": max_new_tokens, "temperature": temperature}
        if temperature > 0:
            params["top_p"] = top_p
        self.ask = chat_client(
            url,
            model,
            api_key=api_key,
            params=params,
            timeout=timeout,
            concurrency=concurrency,
            retries=retries,
            backoff=backoff,
            log=log,
        )
        self.model_id = f"url:{redact(url, [api_key] if api_key else [])}#{model}"

    def render(self, turns: Sequence[str]) -> str:
        return json.dumps(_messages(turns), ensure_ascii=False)

    def __call__(self, turns: Sequence[Sequence[str]], seeds: Sequence[int]) -> list[str]:
        return self.ask(
            [{"messages": _messages(t), "seed": s} for t, s in zip(turns, seeds, strict=True)]
        )


class VllmGenerator:
    """vLLM offline over a local folder (see the module comment)."""

    def __init__(
        self,
        folder: Path,
        *,
        template: str = "auto",
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_new_tokens: int = 256,
    ) -> None:
        try:
            vllm: Any = importlib.import_module("vllm")
        except ImportError:
            raise ConfigError(
                "vllm:DIR needs the vllm package, which is not installed (pip install vllm); "
                "use local:DIR (transformers) or url:URL (an OpenAI-compatible server) instead"
            ) from None
        _training("vllm:DIR")
        from csft_train.evaluate.prompt import chat_renderer

        self.vllm = vllm
        self.llm = vllm.LLM(model=str(folder), enable_prefix_caching=True, trust_remote_code=False)
        self.renderer = chat_renderer(self.llm.get_tokenizer(), folder, template)
        self.sampling = _sampling(temperature, top_p, max_new_tokens)
        self.model_id = f"vllm:{folder.name}@{folder_revision(folder)}:{template}"

    def render(self, turns: Sequence[str]) -> str:
        return str(self.renderer.render(list(turns)))

    def __call__(self, turns: Sequence[Sequence[str]], seeds: Sequence[int]) -> list[str]:
        s = self.sampling
        params = [
            self.vllm.SamplingParams(
                temperature=s["temperature"],
                top_p=s.get("top_p", 1.0),
                max_tokens=s["max_new_tokens"],
                seed=seed,
            )
            for seed in seeds
        ]
        outs = self.llm.generate([self.render(t) for t in turns], params, use_tqdm=False)
        return [str(o.outputs[0].text) for o in outs]


def make_generator(spec: str, **options: Any) -> Generator:
    """The generator of ``spec`` (``local:DIR``, ``url:URL``, ``vllm:DIR``). ``options``: those
    of the generator's class; ``model`` and ``api_key_env`` for ``url:``, dropped for the others,
    and ``concurrency``/``retries``/``backoff``/``timeout``/``log`` (``url:`` only),
    ``batch_size``/``device``/``dtype`` (``local:`` only), ``template`` (not ``url:``)."""
    kind, _, target = spec.partition(":")
    keys = ("temperature", "top_p", "max_new_tokens")
    common: dict[str, Any] = {k: options[k] for k in keys if k in options}
    if kind == "url":
        if not options.get("model"):
            raise ConfigError("url:URL needs the endpoint's model name (--model)")
        extra = ("api_key_env", "concurrency", "retries", "backoff", "timeout", "log")
        kw = {k: options[k] for k in extra if k in options}
        return EndpointGenerator(target, options["model"], **common, **kw)
    if kind not in ("local", "vllm") or not target:
        raise ConfigError(f"generator {spec!r}: expected local:DIR, url:URL or vllm:DIR")
    folder = Path(target)
    if not folder.is_dir():
        raise ConfigError(f"generator {spec!r}: {folder} is not a folder")
    if "template" in options:
        common["template"] = options["template"]
    if kind == "vllm":
        return VllmGenerator(folder, **common)
    kw = {k: options[k] for k in ("batch_size", "device", "dtype") if k in options}
    return LocalGenerator(folder, **common, **kw)
