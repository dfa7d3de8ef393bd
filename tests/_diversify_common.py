"""Shared pieces of the diversification tests (not a test module): varied, plausible medical
instructions made from a seed, a deterministic fake generator that mixes them with replies that
fail the checks, seed instructions, and the handler of a local chat-completions server that
writes instructions (for ``_chat_server.serve``)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from _chat_server import QuietHandler

KEY = "sk-diversify-0123456789abcdef"

DEPTS = ("内科", "外科", "儿科", "妇产科", "皮肤科", "神经科", "心内科", "消化科", "呼吸科")
TOPICS = ("症状", "病史", "检查结果", "生活习惯", "既往用药", "过敏史", "家族史", "体征", "饮食")
ACTS = ["给出诊断思路", "提供治疗建议", "解释可能的病因", "判断是否需要复查", "说明用药注意事项"]
ENDS = ["语言要通俗易懂。", "并提醒及时就医。", "回答要简洁准确。", "必要时追问关键信息。"]


def varied(rng: random.Random) -> str:
    """A plausible, varied medical instruction."""
    return (
        f"假设你是{rng.choice(DEPTS)}医生，面对{rng.randint(2, 90)}岁的患者，"
        f"请先结合其{rng.choice(TOPICS)}与{rng.choice(TOPICS)}{rng.choice(ACTS)}，"
        f"{rng.choice(ENDS)}"
    )


class Fake:
    """A deterministic generator: per conversation, two varied instructions (numbered, in
    quotes) and three that fail a check (no medical term, incomplete, too short)."""

    model_id = "fake@1"

    def __init__(self) -> None:
        self.sampling: dict[str, Any] = {"temperature": 0.0}
        self.calls: list[list[str]] = []

    def render(self, turns: Sequence[str]) -> str:
        return json.dumps(list(turns), ensure_ascii=False)

    def __call__(self, turns: Sequence[Sequence[str]], seeds: Sequence[int]) -> list[str]:
        out = []
        for t, s in zip(turns, seeds, strict=True):
            self.calls.append(list(t))
            rng = random.Random(s)
            out.append(
                f"以下是扩展的指令：\n1. “{varied(rng)}”\n2、{varied(rng)}\n"
                "- 今天天气很好，我们去公园散步吧。\n（3）请作为医生回答\n好的。"
            )
        return out


def seeds(n: int, tag: str = "种子") -> list[str]:
    return [f"请作为医生回答患者的第{k}个{tag}问题，并给出建议。" for k in range(n)]


@dataclass
class Writer:
    """The server: a request with seed s gets two varied instructions (``varied``, seeded by
    s); seeds divisible by 3 first get a 429, by 5 a 503 (Retry-After 0); ``always`` maps a
    status to every request. ``calls``: attempts per seed."""

    key: str | None = KEY
    flaky: bool = True
    always: int | None = None
    calls: dict[int, int] = field(default_factory=dict)
    bodies: list[dict[str, object]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def writer_handler(w: Writer) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if w.key is not None and self.headers.get("Authorization") != f"Bearer {w.key}":
                self.reply(401, '{"error": "invalid api key"}')
                return
            seed = int(req["seed"])
            with w.lock:
                w.bodies.append(req)
                w.calls[seed] = attempt = w.calls.get(seed, 0) + 1
            if w.always is not None:
                self.reply(w.always, f'{{"error": "bad request", "echo": "Bearer {w.key}"}}')
            elif w.flaky and attempt == 1 and seed % 3 == 0:
                self.reply(429, '{"error": "slow down"}', {"Retry-After": "0"})
            elif w.flaky and attempt == 1 and seed % 5 == 0:
                self.reply(503, "overloaded", {"Retry-After": "0"})
            else:
                rng = random.Random(seed)
                text = f"1. {varied(rng)}\n2. {varied(rng)}"
                self.reply(200, json.dumps({"choices": [{"message": {"content": text}}]}))

    return Handler
