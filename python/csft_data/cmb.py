"""CMB answer extraction and scoring, without a model.

Two extraction variants:

* ``official`` — the semantics of CMB's ``src/utils.py`` (``match_choice`` then ``extract_ans``):
  the first match of ``(答案|正确选项)(?:是|：|为|应该是|应该为)(.*?)(。|\\.|$)`` gives the answer
  region, else the whole text is; every ``A``–``G`` in it is kept, in order, repeats included; a
  single-answer item keeps only the first letter.
* ``strict`` — full-width letters and colons folded first; the region as above (also after ``:``
  and ``正确答案``); letters count only as runs of capitals made of the item's option keys alone
  (so ``DNA``, ``CT`` or ``ACEI`` are not answers); de-duplicated and sorted; a single-answer item
  keeps the first letter found.

Scoring follows CMB's ``score.py``: an item is right when the extracted answer equals the key
exactly; each exam class (subcategory) gets its accuracy, each exam type the mean of its classes'
accuracies. Beside those, ``micro`` is the accuracy over all items and ``macro`` the plain mean of
the exam types. Model generation (``eval cmb --model``) is not here: it lives with the trainer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from csft_data._core import ConfigError

Variant = Literal["official", "strict"]

OFFICIAL_LETTERS = "ABCDEFG"
MULTI_ANSWER_TYPE = "多项选择题"

# The six CMB exam types, in the column order of CollectiveSFT's Table 2 (with its labels).
EXAM_TYPES: tuple[tuple[str, str], ...] = (
    ("医师考试", "Training Grad."),
    ("护理考试", "Nursing Exam"),
    ("药师考试", "Pharm. Exam"),
    ("医技考试", "Med. Tech. Exam"),
    ("专业知识考试", "Prof. Knowledge"),
    ("医学考研", "Med. Postgrad."),
)

_OFFICIAL_RE = re.compile(r"(答案|正确选项)(?:是|：|为|应该是|应该为)(.*?)(。|\.|$)", re.S)
_STRICT_RE = re.compile(
    r"(?:正确答案|答案|正确选项)\s*(?:应该是|应该为|应是|应为|是|为|:)\s*(.*?)(?:。|\.|\n|$)", re.S
)
_LETTER_RUN = re.compile(r"[A-Za-z]+")
_WIDTH = str.maketrans(
    {chr(c): chr(c - 0xFEE0) for c in range(0xFF21, 0xFF3B)}
    | {chr(c): chr(c - 0xFEE0) for c in range(0xFF41, 0xFF5B)}
    | {"：": ":", "，": ",", "、": ","}
)


def extract_choice(
    text: str,
    options: Iterable[str] | None = None,
    variant: Variant = "official",
    *,
    multi: bool = True,
) -> str:
    """The answer letters in a model's output (see the module comment for the two variants).

    ``options``: the item's option keys (``strict`` only; default ``A``–``G``). ``multi``: the
    item is a multiple-answer question (CMB ``question_type == "多项选择题"``); otherwise only one
    letter is kept. Returns ``""`` when nothing is found.
    """
    if variant == "official":
        found = _OFFICIAL_RE.search(text)
        region = found.group(2) if found else text
        letters = "".join(c for c in region if c in OFFICIAL_LETTERS)
        return letters[0] if len(letters) > 1 and not multi else letters
    if variant != "strict":
        raise ConfigError(f"unknown extraction variant {variant!r}: expected official or strict")
    keys = set(options) if options is not None else set(OFFICIAL_LETTERS)
    folded = text.translate(_WIDTH)
    found = _STRICT_RE.search(folded)
    region = found.group(1) if found else folded
    picked: list[str] = []
    for run in _LETTER_RUN.findall(region):
        if run.isupper() and set(run) <= keys:
            picked.extend(run)
    if not picked:
        return ""
    if not multi:
        return picked[0]
    return "".join(sorted(set(picked)))


@dataclass
class CmbScore:
    """Accuracies in percent; ``per_exam_class`` is keyed ``"exam_type/exam_class"``."""

    micro: float
    macro: float
    per_exam_type: dict[str, float]
    per_exam_class: dict[str, float]
    items: int
    correct: int
    missing: int
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "micro": self.micro,
            "macro": self.macro,
            "per_exam_type": self.per_exam_type,
            "per_exam_class": self.per_exam_class,
            "items": self.items,
            "correct": self.correct,
            "missing": self.missing,
        }

    def table(self) -> str:
        """The scores in the layout of CollectiveSFT's Table 2, then one line per class."""
        known = [t for t, _ in EXAM_TYPES]
        extra = [t for t in self.per_exam_type if t not in known]
        columns = [(t, label) for t, label in EXAM_TYPES if t in self.per_exam_type]
        columns += [(t, t) for t in extra]
        head = ["Total Avg. (macro)", "micro"] + [f"{label} ({t})" for t, label in columns]
        values = [self.macro, self.micro] + [self.per_exam_type[t] for t, _ in columns]
        widths = [max(len(h), 6) for h in head]
        lines = [
            "  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)),
            "  ".join(f"{v:.2f}".rjust(w) for v, w in zip(values, widths, strict=True)),
            "",
        ]
        for key, acc in self.per_exam_class.items():
            right, total = self.counts[key]
            lines.append(f"{key:<28} {acc:6.2f}  ({right}/{total})")
        return "\n".join(lines)


def score(predictions: Mapping[Any, str], answers: Sequence[Mapping[str, Any]]) -> CmbScore:
    """Scores ``predictions`` (item id → answer letters) against CMB answer items (``id``,
    ``exam_type``, ``exam_class``, ``answer``). Items without a prediction count as wrong."""
    if not answers:
        raise ConfigError("no answer items to score against")
    counts: dict[tuple[str, str], list[int]] = {}
    missing = 0
    for item in answers:
        try:
            key = (str(item["exam_type"]), str(item["exam_class"]))
            truth, item_id = str(item["answer"]), item["id"]
        except KeyError as e:
            raise ConfigError(f"answer item {item!r} lacks the field {e.args[0]!r}") from None
        got = predictions.get(item_id)
        missing += got is None
        c = counts.setdefault(key, [0, 0])
        c[0] += int(got == truth)
        c[1] += 1
    per_class = {f"{t}/{k}": 100.0 * r / n for (t, k), (r, n) in counts.items()}
    by_type: dict[str, list[float]] = {}
    for (t, _), (r, n) in counts.items():
        by_type.setdefault(t, []).append(r / n)
    per_type = {t: 100.0 * sum(a) / len(a) for t, a in by_type.items()}
    right = sum(r for r, _ in counts.values())
    total = sum(n for _, n in counts.values())
    return CmbScore(
        micro=100.0 * right / total,
        macro=sum(per_type.values()) / len(per_type),
        per_exam_type=per_type,
        per_exam_class=per_class,
        items=total,
        correct=right,
        missing=missing,
        counts={f"{t}/{k}": (r, n) for (t, k), (r, n) in counts.items()},
    )


def _load_items(path: Path, what: str) -> list[dict[str, Any]]:
    """A JSON array, or JSON Lines, of objects."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e}") from e
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ConfigError(f"{path}:{n}: the {what} are not JSON: {e.msg}") from None
    for n, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item:
            raise ConfigError(f"{path}: {what} item {n} is not an object with an 'id'")
    return items


def score_files(
    predictions: str | Path,
    answers: str | Path,
    *,
    extract: Variant | None = None,
    questions: str | Path | None = None,
) -> CmbScore:
    """Scores a predictions file against an answers file.

    Predictions are CMB submission items (``id``, ``model_answer``) or raw model outputs
    (``id``, ``output``); raw outputs are extracted with ``extract`` (default ``official``),
    using each item's ``question_type`` from the answers (single vs multiple answer) and, for
    ``strict``, its option keys from ``questions`` (CMB question items with ``option``).
    """
    answer_items = _load_items(Path(answers), "answers")
    options: dict[Any, list[str]] = {}
    if questions is not None:
        for q in _load_items(Path(questions), "questions"):
            if isinstance(q.get("option"), dict):
                options[q["id"]] = [k for k, v in q["option"].items() if str(v).strip()]
    multi = {a["id"]: a.get("question_type") == MULTI_ANSWER_TYPE for a in answer_items}
    found: dict[Any, str] = {}
    for n, p in enumerate(_load_items(Path(predictions), "predictions")):
        if "model_answer" in p and extract is None:
            found[p["id"]] = str(p["model_answer"])
            continue
        text = p.get("output", p.get("model_answer"))
        if text is None:
            raise ConfigError(
                f"{predictions}: prediction item {n} has neither 'model_answer' nor 'output'"
            )
        found[p["id"]] = extract_choice(
            str(text), options.get(p["id"]), extract or "official", multi=multi.get(p["id"], True)
        )
    return score(found, answer_items)
