"""The checks a generated instruction passes before it joins a bank (SF-Med §3.2: complete and
professional, with medical terms; not a near-duplicate of what the banks hold), and the split of
a generator's reply into single instructions. Pure text work: no model, no file.

What the paper leaves open, chosen here:

- a reply is split into lines; list markers (``1.``, ``2、``, ``（3）``, ``-``, ``*``) and
  wrapping quotes or brackets are taken off each line; empty lines are dropped;
- *complete*: the text ends with a sentence-final mark (``。！？；…`` or ``.!?;``) and its
  brackets and quotes are balanced (a heading such as ``以下是一些指令：`` is not complete);
- *length*: ``min_chars`` to ``max_chars`` characters, whitespace not counted;
- *medical*: the text holds at least one term of :data:`MEDICAL_TERMS` (or of the user's list),
  compared case-insensitively;
- *near-duplicate*: ROUGE-L F-measure (the Rust core, character level for Chinese) or the
  Jaccard similarity of character ``ngram`` sets against every instruction accepted so far in
  the scenario, seeds included (not only those the banks still hold after retention), must
  stay below the threshold (0.7, as self-instruct and data-juicer's generators use).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csft_data._core import ConfigError
from csft_data.rouge import rouge_l

#: The built-in medical terms (Chinese and English); ``terms = FILE`` (one per line) replaces it.
MEDICAL_TERMS = (
    "医生", "医师", "患者", "病人", "病情", "病史", "症状", "诊断", "鉴别", "治疗", "用药",
    "药物", "处方", "疾病", "医学", "医疗", "临床", "就医", "就诊", "问诊", "检查", "化验",
    "护理", "康复", "预防", "健康", "手术", "科室", "专科", "体征", "主诉", "病因", "并发症",
    "副作用", "剂量", "疗效", "急诊", "住院", "门诊", "中医", "西医", "病",
    "doctor", "physician", "patient", "medical", "clinical", "symptom", "diagnos", "treatment",
    "therapy", "disease", "medication", "health",
)  # fmt: skip

_MARKER = re.compile(
    r"^\s*(?:[-*•·●▪]+|\d{1,3}\s*[.、．:：)）]|[（(]\d{1,3}[)）]|[一二三四五六七八九十]+[、.．]"
    r"|(?:指令|instruction)\s*\d*\s*[:：])\s*",
    re.I,
)
_WRAPPERS = (("“", "”"), ('"', '"'), ("「", "」"), ("【", "】"), ("'", "'"), ("‘", "’"))
_FINAL = tuple("。！？；…!?;.")
_PAIRS = (("（", "）"), ("(", ")"), ("【", "】"), ("《", "》"), ("“", "”"), ("[", "]"))


def split_instructions(reply: str) -> list[str]:
    """The single instructions of a generator's reply (see the module comment)."""
    out = []
    for line in reply.splitlines():
        text = _MARKER.sub("", line.strip(), count=1).strip()
        for left, right in _WRAPPERS:
            if len(text) > 2 and text.startswith(left) and text.endswith(right):
                text = text[len(left) : -len(right)].strip()
        if text:
            out.append(text)
    return out


def load_terms(path: str | Path | None) -> tuple[str, ...]:
    """The user's terms file (one term a line; ``#`` lines and blanks skipped), or the
    built-in :data:`MEDICAL_TERMS`."""
    if path is None:
        return MEDICAL_TERMS
    terms = tuple(
        t.strip()
        for t in Path(path).read_text(encoding="utf-8").splitlines()
        if t.strip() and not t.lstrip().startswith("#")
    )
    if not terms:
        raise ConfigError(f"{path}: no terms in the file")
    return terms


def _grams(text: str, n: int) -> set[str]:
    chars = "".join(text.split()).lower()
    return {chars[i : i + n] for i in range(max(1, len(chars) - n + 1))}


@dataclass
class Checker:
    """Checks candidates against the rules and against every instruction :meth:`add`-ed."""

    min_chars: int = 8
    max_chars: int = 200
    terms: Sequence[str] = MEDICAL_TERMS
    similarity: str = "rouge-l"
    threshold: float = 0.7
    ngram: int = 2
    known: list[str] = field(default_factory=list)
    _grams: list[set[str]] = field(default_factory=list, repr=False)

    def add(self, texts: Iterable[str]) -> None:
        for t in texts:
            self.known.append(t)
            self._grams.append(_grams(t, self.ngram))

    def nearest(self, text: str) -> tuple[float, str | None]:
        """The highest similarity to a known instruction, and that instruction."""
        if not self.known:
            return 0.0, None
        if self.similarity == "rouge-l":
            scores = rouge_l([text] * len(self.known), self.known).fmeasure.tolist()
        else:
            mine = _grams(text, self.ngram)
            scores = [len(mine & g) / len(mine | g) for g in self._grams]
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        return float(scores[best]), self.known[best]

    def check(self, text: str) -> tuple[list[str], dict[str, Any]]:
        """(reasons to reject, empty when accepted; the check results)."""
        reasons = []
        chars = len("".join(text.split()))
        complete = text.endswith(_FINAL) and all(text.count(a) == text.count(b) for a, b in _PAIRS)
        if not complete:
            reasons.append("incomplete sentence")
        if chars < self.min_chars:
            reasons.append(f"too short ({chars} < {self.min_chars} characters)")
        if chars > self.max_chars:
            reasons.append(f"too long ({chars} > {self.max_chars} characters)")
        lower = text.lower()
        found = [t for t in self.terms if t.lower() in lower]
        if not found:
            reasons.append("no medical term")
        score, nearest = self.nearest(text)
        if score >= self.threshold:
            reasons.append(f"near-duplicate ({self.similarity} {score:.3f} ≥ {self.threshold})")
        checks = {
            "complete": complete,
            "chars": chars,
            "terms": found[:5],
            "similarity": round(score, 4),
            "nearest": nearest,
        }
        return reasons, checks
