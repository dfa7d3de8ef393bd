"""SF-Med's bank algorithm (§3.2, Figure 2) for one scenario, over any generator: the seed
instructions are split equally into a question bank and an answer bank; each generation step
draws ``history`` instructions from the question bank as user turns and as many from the
answer bank as assistant turns, each user turn followed by the expansion prompt (the paper's
``{Q1}{Prompt}{A1}…{A5}``), then one more question-bank instruction (with the prompt) as the
turn to expand. The reply is split and checked (``checks.py``); the accepted instructions go
alternately to the question and the answer bank (half each); a bank keeps its oldest
``keep_oldest`` and newest ``keep_newest`` entries; the banks are swapped every ``swap_every``
steps; it stops at ``target`` accepted instructions or after ``max_steps`` steps.

What the paper leaves open, chosen here: seeds are shuffled (seeded) before the split, the
question bank taking the extra one of an odd count; a step with small banks uses a shorter
history (at most one fewer than the question bank holds, so the one to expand is never in its
own history); steps run ``batch`` at a time (a batch ends at a swap), all drawn from the banks
as they were at the start of the batch and applied in step order, so the results depend on
``batch`` but never on how the generator schedules its work; the accepted count of the last
step is cut at ``target``.

Every random choice comes from one ``random.Random(seed)``; this module reads and writes no
file (the generator, with its cache, is given: ``generators.py``).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from csft_data.diversifier.checks import Checker, split_instructions

#: The paper's expansion prompt ("Now you want to extend some more semantic instructions based
#: on the above instructions:"), in Chinese and English.
PROMPTS = {
    "zh": "现在你想基于以上指令，扩展出更多语义相近的指令：",
    "en": "Now you want to extend some more semantic instructions based on the above instructions:",
}

#: A generator: chat turns (user, assistant, …, user) and a seed per step → one reply each.
Generate = Callable[[Sequence[Sequence[str]], Sequence[int]], list[str]]


@dataclass(frozen=True)
class BankSettings:
    history: int = 5
    keep_oldest: int = 20
    keep_newest: int = 40
    swap_every: int = 10
    batch: int = 8
    target: int = 200
    max_steps: int | None = None
    prompt: str = PROMPTS["zh"]

    @property
    def step_limit(self) -> int:
        """``max_steps``, or 10 steps per instruction wanted (at least 50)."""
        return self.max_steps if self.max_steps is not None else max(50, 10 * self.target)


@dataclass
class Step:
    """One generation step: its number (from 1), the turns sent, the instruction expanded."""

    number: int
    turns: list[str]
    parent: str

    @property
    def prompt_sha256(self) -> str:
        text = json.dumps(self.turns, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Banks:
    """The question and answer banks of a scenario."""

    question: list[str]
    answer: list[str]
    keep_oldest: int
    keep_newest: int
    swaps: int = 0
    _added: int = field(default=0, repr=False)

    @classmethod
    def from_seeds(cls, seeds: Sequence[str], rng: random.Random, s: BankSettings) -> Banks:
        order = list(seeds)
        rng.shuffle(order)
        half = (len(order) + 1) // 2
        return cls(order[:half], order[half:], s.keep_oldest, s.keep_newest)

    def add(self, accepted: Sequence[str]) -> None:
        """Half to each bank (alternately, counted over the whole run), then retention."""
        for text in accepted:
            (self.question if self._added % 2 == 0 else self.answer).append(text)
            self._added += 1
        self.question = self._retain(self.question)
        self.answer = self._retain(self.answer)

    def _retain(self, bank: list[str]) -> list[str]:
        if len(bank) <= self.keep_oldest + self.keep_newest:
            return bank
        return bank[: self.keep_oldest] + bank[len(bank) - self.keep_newest :]

    def swap(self) -> None:
        self.question, self.answer = self.answer, self.question
        self.swaps += 1

    def draw(self, number: int, history: int, prompt: str, rng: random.Random) -> Step:
        """Step ``number``: ``h`` (question + prompt, answer) pairs and the turn to expand."""
        h = max(0, min(history, len(self.question) - 1, len(self.answer)))
        questions = rng.sample(self.question, h + 1)
        answers = rng.sample(self.answer, h)
        turns: list[str] = []
        for q, a in zip(questions[:h], answers, strict=True):
            turns += [f"{q}\n{prompt}", a]
        turns.append(f"{questions[h]}\n{prompt}")
        return Step(number, turns, questions[h])


@dataclass
class BankRun:
    """The outcome of one scenario: accepted and rejected rows (with provenance), counts."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    swaps: int = 0


def run_banks(
    scenario: str,
    seeds: Sequence[str],
    generate: Generate,
    settings: BankSettings,
    checker: Checker,
    seed: int,
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[BankRun, Banks]:
    """Runs the bank algorithm for ``scenario`` from ``seeds`` (at least two) until
    ``settings.target`` instructions are accepted or ``settings.step_limit`` steps ran.
    ``checker`` must know the seeds already. ``on_step(accepted, rejected)`` after each step
    with that step's counts. Returns the rows and the final banks."""
    rng = random.Random(f"{seed}:{scenario}")
    banks = Banks.from_seeds(seeds, rng, settings)
    run = BankRun()
    number = 0
    while len(run.accepted) < settings.target and number < settings.step_limit:
        # A batch ends at a swap, so the swaps fall where ``swap_every`` says at any batch size.
        to_swap = settings.swap_every - number % settings.swap_every
        todo = min(settings.batch, settings.step_limit - number, to_swap)
        steps = [
            banks.draw(number + k + 1, settings.history, settings.prompt, rng) for k in range(todo)
        ]
        seeds_of = [rng.getrandbits(31) for _ in steps]
        replies = generate([s.turns for s in steps], seeds_of)
        for step, reply in zip(steps, replies, strict=True):
            number = step.number
            n_acc, n_rej = _take(scenario, step, reply, checker, settings, banks, run)
            if number % settings.swap_every == 0:
                banks.swap()
            if on_step is not None:
                on_step(n_acc, n_rej)
            if len(run.accepted) >= settings.target:
                break
    run.steps, run.swaps = number, banks.swaps
    return run, banks


def _take(
    scenario: str,
    step: Step,
    reply: str,
    checker: Checker,
    settings: BankSettings,
    banks: Banks,
    run: BankRun,
) -> tuple[int, int]:
    """Checks a step's reply; adds what passes to the banks and ``run``."""
    accepted: list[str] = []
    rejected = 0
    where = {"step": step.number, "prompt_sha256": step.prompt_sha256, "parent": step.parent}
    for text in split_instructions(reply):
        if len(run.accepted) + len(accepted) >= settings.target:
            break
        reasons, checks = checker.check(text)
        if reasons:
            rejected += 1
            row = {"text": text, "scenario": scenario, **where, "reasons": reasons}
            run.rejected.append({**row, "checks": checks})
            continue
        checker.add([text])
        accepted.append(text)
        row = {"instruction": text, "scenario": scenario, "origin": "generated", **where}
        run.accepted.append({**row, "checks": checks})
    banks.add(accepted)
    return len(accepted), rejected
