"""Multiple-choice items and their loaders: CMB (official JSON), CMExam (CSV), CMMLU (CSV), and
any file a csft_data MCQA adapter converts. No torch here.

An item is a question, its options (letter → text, in display order), its key (letters, or
``None`` when no answers were given), and whether several letters may be right (``multi``,
CMB's ``多项选择题``). ``exam_type``/``exam_class`` group the scores the way CMB's ``score.py``
does; for other benchmarks they are the source name and the subject.

Real benchmark files hold items whose key is unusable (CMExam's official key is empty for some
items): an empty answer, or one naming no option. Every loader takes ``skipped``: ``None`` (the
default) makes such an item an error naming the file, record and field; a list leaves the item
out and appends a :class:`SkippedItem` (file, record, id, why) to it, for the evaluation report.
An item without question text is an error either way (a malformed item, not a missing key).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from csft_data import ConfigError, ParseError
from csft_data.cmb import MULTI_ANSWER_TYPE
from csft_data.rouge import load_records

SINGLE_ANSWER_TYPE = "单项选择题"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class McqaItem:
    id: Any
    question: str
    options: dict[str, str]
    answer: str | None
    multi: bool
    exam_type: str = ""
    exam_class: str = ""
    question_type: str = SINGLE_ANSWER_TYPE
    subject: str = ""
    explanation: str = ""

    def answer_item(self) -> dict[str, Any]:
        """The item as a CMB answer record (what ``csft_data.cmb.score`` reads)."""
        return {
            "id": self.id,
            "exam_type": self.exam_type,
            "exam_class": self.exam_class,
            "question_type": self.question_type,
            "answer": self.answer,
        }


@dataclass(frozen=True)
class SkippedItem:
    """An item left out of the evaluation because its key is unusable: ``file``, its 0-based
    ``record`` (and ``line``, where the reader knows it), its ``id``, the ``field`` and why."""

    file: str
    record: int
    id: Any
    field: str
    reason: str
    line: int | None = None

    def message(self) -> str:
        """The error this item raises when unusable keys are errors."""
        if self.line is not None:
            where = f"{self.file}:{self.line} (record {self.record}, field {self.field!r})"
            return f"{where}: {self.reason}"
        return f"{_where(Path(self.file), self.record, self.field)}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        out = {"file": self.file, "record": self.record, "id": self.id, "field": self.field}
        if self.line is not None:
            out["line"] = self.line
        return {**out, "reason": self.reason}


def _where(path: Path, n: int, field: str) -> str:
    return f"{path}: record {n}, field {field!r}"


def _req_text(rec: Mapping[str, Any], field: str, path: Path, n: int) -> str:
    v = rec.get(field)
    if v is None:
        raise ConfigError(f"{_where(path, n, field)}: missing")
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    if not isinstance(v, str):
        raise ConfigError(f"{_where(path, n, field)}: expected text, got {type(v).__name__}")
    return v


def _question(rec: Mapping[str, Any], field: str, path: Path, n: int) -> str:
    """The question text: missing or blank is an error (a malformed item)."""
    text = _req_text(rec, field, path, n)
    if not text.strip():
        raise ConfigError(f"{_where(path, n, field)}: empty question")
    return text


def _check_answer(
    answer: str,
    options: Mapping[str, str],
    path: Path,
    n: int,
    field: str,
    *,
    item_id: Any = None,
    skipped: list[SkippedItem] | None = None,
) -> str | None:
    """The key's letters, upper-cased. An empty key or one naming no option raises, or with
    ``skipped`` is appended to it and gives ``None`` (the item is left out)."""
    answer = answer.strip().upper()
    if not answer:
        reason = f"empty answer (options {''.join(options)})"
    elif any(c not in options for c in answer):
        reason = f"answer {answer!r} names no option (options {''.join(options)})"
    else:
        return answer
    if skipped is None:
        raise ConfigError(f"{_where(path, n, field)}: {reason}")
    skipped.append(SkippedItem(str(path), n, item_id, field, reason))
    return None


def _cmb_options(value: Any, path: Path, n: int) -> dict[str, str]:
    if isinstance(value, str):
        import ast

        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise ConfigError(f"{_where(path, n, 'option')}: not an object") from None
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{_where(path, n, 'option')}: expected an object of options")
    out: dict[str, str] = {}
    for k in sorted(value):
        v = value[k]
        if not isinstance(k, str) or len(k) != 1 or k not in LETTERS:
            raise ConfigError(f"{_where(path, n, 'option')}: option key {k!r} is not a letter")
        out[k] = "" if v is None else str(v)
    return out


def load_cmb(
    questions: str | Path,
    answers: str | Path | None = None,
    *,
    require_id: bool = True,
    skipped: list[SkippedItem] | None = None,
) -> list[McqaItem]:
    """CMB items from the official question file (``id``, ``exam_type``, ``exam_class``,
    ``question_type``, ``question``, ``option``) and, if given, the answer file (``id``,
    ``answer``, ...). A questions file that carries ``answer`` itself (CMB-val, CMB-train) needs
    no answer file. Without ``require_id`` (val/train files have none) the index is the id.
    ``skipped``: see the module comment (a question without ``answer`` at all, as in the test
    questions, is an item without a key, not an unusable one)."""
    qpath = Path(questions)
    keys: dict[Any, tuple[str, int]] = {}
    apath = Path(answers) if answers is not None else qpath
    if answers is not None:
        for n, a in enumerate(load_records(apath)):
            if "id" not in a:
                raise ConfigError(f"{_where(apath, n, 'id')}: missing")
            keys[a["id"]] = (_req_text(a, "answer", apath, n), n)
    items: list[McqaItem] = []
    seen: set[Any] = set()
    for n, q in enumerate(load_records(qpath)):
        if "id" in q:
            item_id = q["id"]
        elif require_id:
            raise ConfigError(f"{_where(qpath, n, 'id')}: missing (CMB test items carry an id)")
        else:
            item_id = n
        if item_id in seen:
            raise ConfigError(f"{_where(qpath, n, 'id')}: repeats the id {item_id!r}")
        seen.add(item_id)
        options = _cmb_options(q.get("option"), qpath, n)
        question = _question(q, "question", qpath, n)
        qtype = str(q.get("question_type") or SINGLE_ANSWER_TYPE)
        if answers is None:
            raw, where, at = q.get("answer"), qpath, n
        elif item_id in keys:
            (raw, at), where = keys[item_id], apath
        else:
            raise ConfigError(f"{qpath}: item id {item_id!r} has no answer in {apath}")
        answer = None
        if raw is not None:
            answer = _check_answer(
                str(raw), options, where, at, "answer", item_id=item_id, skipped=skipped
            )
            if answer is None:
                continue
        items.append(
            McqaItem(
                id=item_id,
                question=question,
                options=options,
                answer=answer,
                multi=qtype == MULTI_ANSWER_TYPE,
                exam_type=_req_text(q, "exam_type", qpath, n),
                exam_class=_req_text(q, "exam_class", qpath, n),
                question_type=qtype,
                subject=str(q.get("exam_subject") or ""),
                explanation=str(q.get("explanation") or ""),
            )
        )
    return items


_CMEXAM_OPTION = re.compile(r"^([A-Z])[\s.:：、．]*(.*)$", re.S)


def load_cmexam(
    path: str | Path, *, name: str = "CMExam", skipped: list[SkippedItem] | None = None
) -> list[McqaItem]:
    """CMExam CSV rows (``Question``, ``Options`` as ``A 文本\\nB 文本``, ``Answer`` letters).
    Items with several key letters are multi-answer. Ids are row indices. ``skipped``: see the
    module comment."""
    path = Path(path)
    items = []
    for n, r in enumerate(load_records(path)):
        raw = _req_text(r, "Options", path, n).replace("\\n", "\n")
        options: dict[str, str] = {}
        for part in raw.split("\n"):
            part = part.strip()
            if not part:
                continue
            m = _CMEXAM_OPTION.match(part)
            if m is None:
                raise ConfigError(
                    f"{_where(path, n, 'Options')}: {part!r} does not start with a letter"
                )
            options[m.group(1)] = m.group(2).strip()
        if not options:
            raise ConfigError(f"{_where(path, n, 'Options')}: no options")
        question = _question(r, "Question", path, n)
        raw_answer = _req_text(r, "Answer", path, n)
        answer = _check_answer(raw_answer, options, path, n, "Answer", item_id=n, skipped=skipped)
        if answer is None:
            continue
        multi = len(answer) > 1
        items.append(
            McqaItem(
                id=n,
                question=question,
                options=options,
                answer=answer,
                multi=multi,
                exam_type=name,
                exam_class=str(r.get("Medical Discipline") or r.get("Clinical Department") or name),
                question_type=MULTI_ANSWER_TYPE if multi else SINGLE_ANSWER_TYPE,
                explanation=str(r.get("Explanation") or ""),
            )
        )
    return items


def load_cmmlu(
    path: str | Path, *, subject: str | None = None, skipped: list[SkippedItem] | None = None
) -> list[McqaItem]:
    """A CMMLU subject CSV (columns ``Question,A,B,C,D,Answer``, an unnamed index column
    allowed). The subject is the file stem (``clinical_knowledge.csv``) unless given.
    ``skipped``: see the module comment."""
    path = Path(path)
    subject = subject or path.stem
    items = []
    for n, r in enumerate(load_records(path)):
        options = {k: _req_text(r, k, path, n) for k in "ABCD"}
        question = _question(r, "Question", path, n)
        item_id = f"{subject}/{n}"
        raw_answer = _req_text(r, "Answer", path, n)
        answer = _check_answer(
            raw_answer, options, path, n, "Answer", item_id=item_id, skipped=skipped
        )
        if answer is None:
            continue
        items.append(
            McqaItem(
                id=item_id,
                question=question,
                options=options,
                answer=answer,
                multi=False,
                exam_type="CMMLU",
                exam_class=subject,
                subject=subject,
            )
        )
    return items


_ANSWER_LINE = re.compile(r"(?:答案是|The answer is)\s*([A-Z]+)\s*[。.]?\s*$")
_OPTION_LINE = re.compile(r"^([A-Z]): ?(.*)$")


def from_alpaca(records: Iterable[Mapping[str, Any]], *, source: str) -> list[McqaItem]:
    """Items back from the Alpaca records an MCQA adapter wrote (its default templates:
    input = question, then ``X: text`` option lines; output ending ``答案是X。`` or
    ``The answer is X .``). The instruction (the adapter's exam header) is kept before the
    question."""
    items = []
    for n, rec in enumerate(records):
        where = f"{source}: converted record {n} (id {rec.get('id')!r})"
        lines = str(rec.get("input") or "").rstrip("\n").split("\n")
        options: dict[str, str] = {}
        while lines and (m := _OPTION_LINE.match(lines[-1])) is not None:
            options[m.group(1)] = m.group(2)
            lines.pop()
        if not options:
            raise ConfigError(f"{where}: no 'X: text' option lines at the end of the input")
        options = dict(sorted(options.items()))
        m = _ANSWER_LINE.search(str(rec.get("output") or ""))
        if m is None:
            raise ConfigError(f"{where}: the output does not end with the answer letters")
        answer = m.group(1)
        if any(c not in options for c in answer):
            raise ConfigError(f"{where}: answer {answer!r} names no option")
        question = (str(rec.get("instruction") or "") + "\n".join(lines)).strip()
        multi = len(answer) > 1
        items.append(
            McqaItem(
                id=rec.get("id", n),
                question=question,
                options=options,
                answer=answer,
                multi=multi,
                exam_type=source,
                exam_class=source,
                question_type=MULTI_ANSWER_TYPE if multi else SINGLE_ANSWER_TYPE,
            )
        )
    return items


#: Rejections of an MCQA adapter (field ``answer``, kind ``value``) that mean an unusable key.
_ADAPTER_KEY_REASONS = ("empty answer", "names no option", "is no option number")
#: The question and id fields of the MCQA adapters' input records.
_ADAPTER_QUESTION_FIELDS = ("question", "Question", "qtext", "questionText")
_ADAPTER_ID_FIELDS = ("id", "qid", "questionId")


def _adapter_skip(rejection: Mapping[str, Any]) -> SkippedItem | None:
    """The rejection of an MCQA adapter as a :class:`SkippedItem` when it is an unusable key
    of an item with question text; ``None`` for any other rejection."""
    reason = str(rejection.get("reason", ""))
    if rejection.get("field") != "answer" or rejection.get("kind") != "value":
        return None
    if not any(r in reason for r in _ADAPTER_KEY_REASONS):
        return None
    try:
        raw = json.loads(str(rejection.get("raw", "")))
    except ValueError:
        raw = None
    raw = raw if isinstance(raw, dict) else {}
    for name in _ADAPTER_QUESTION_FIELDS:
        if name in raw and not str(raw[name] or "").strip():
            return None  # no question text: a malformed item, whatever its key
    file, record = str(rejection.get("file", "")), int(rejection.get("record", 0))
    item_id: Any = f"{Path(file).name}:{record}"  # the adapter's id when the record has none
    for name in _ADAPTER_ID_FIELDS:
        if isinstance(raw.get(name), str | int) and str(raw[name]):
            item_id = str(raw[name])
            break
    line = rejection.get("line")
    return SkippedItem(
        file, record, item_id, "answer", reason, int(line) if isinstance(line, int) else None
    )


def load_with_adapter(
    adapter: str,
    inputs: Sequence[str | Path],
    *,
    skipped: list[SkippedItem] | None = None,
) -> list[McqaItem]:
    """Items of any file an MCQA adapter of csft_data reads (``cmb``, ``cmexam``, ``mlecqa``,
    ``nlpec``, ``medmcqa``, ``headqa``): converted with the adapter's default templates, then
    read back (:func:`from_alpaca`). Rejected records raise (the adapter's
    :class:`csft_data.ParseError`), except, with ``skipped``, those whose key is unusable (an
    empty answer, or one naming no option): they are appended to ``skipped``. Multi-answer
    items are recognised by their number of key letters."""
    from csft_data.adapters import adapters, convert

    styles = {a["name"]: a["style"] for a in adapters()}
    if adapter not in styles:
        raise ConfigError(f"unknown adapter {adapter!r}: expected one of {', '.join(styles)}")
    if styles[adapter] != "mcqa":
        raise ConfigError(f"adapter {adapter!r} is a {styles[adapter]} adapter, not mcqa")
    with tempfile.TemporaryDirectory(prefix="csft-eval-") as tmp:
        out = Path(tmp) / "items.jsonl"
        if skipped is None:
            convert(adapter, list(inputs), out)
            return from_alpaca(load_records(out), source=adapter)
        rejected = Path(tmp) / "rejected.jsonl"
        convert(adapter, list(inputs), out, on_error="skip", quarantine=rejected)
        found: list[SkippedItem] = []
        lines = rejected.read_text("utf-8").splitlines() if rejected.is_file() else []
        for text in lines:
            if not text.strip():
                continue
            rejection = json.loads(text)
            skip = _adapter_skip(rejection)
            if skip is None:  # any other rejection: the adapter's error, as without skipped
                raise ParseError(
                    f"{rejection.get('file')}:{rejection.get('line')} (record "
                    f"{rejection.get('record')}, field {rejection.get('field')!r}): "
                    f"{rejection.get('reason')}"
                )
            found.append(skip)
        skipped.extend(found)
        return from_alpaca(load_records(out), source=adapter)


def load_items(
    path: str | Path,
    *,
    format: str = "auto",
    answers: str | Path | None = None,
    adapter: str | None = None,
    skipped: list[SkippedItem] | None = None,
) -> list[McqaItem]:
    """Items of one benchmark file. ``format``: ``cmb``, ``cmexam``, ``cmmlu``, ``adapter``
    (with ``adapter``) or ``auto``: CMB for ``.json``/``.jsonl`` files with ``option``,
    CMExam for CSV with ``Options``, CMMLU for CSV with ``A``..``D``. ``skipped``: see the
    module comment."""
    path = Path(path)
    if adapter is not None or format == "adapter":
        if adapter is None:
            raise ConfigError("format 'adapter' needs the adapter name")
        return load_with_adapter(adapter, [path], skipped=skipped)
    if format == "auto":
        first = next(iter(load_records(path)), None)
        if first is None:
            raise ConfigError(f"{path}: no records")
        if "option" in first:
            format = "cmb"
        elif "Options" in first:
            format = "cmexam"
        elif all(k in first for k in ("Question", "A", "B", "C", "D", "Answer")):
            format = "cmmlu"
        else:
            raise ConfigError(
                f"{path}: cannot tell the benchmark from the fields {sorted(first)}; "
                "give --format or --adapter"
            )
    if format == "cmb":
        return load_cmb(path, answers, require_id=answers is not None, skipped=skipped)
    if format == "cmexam":
        return load_cmexam(path, skipped=skipped)
    if format == "cmmlu":
        return load_cmmlu(path, skipped=skipped)
    raise ConfigError(f"unknown format {format!r}: expected auto, cmb, cmexam, cmmlu or adapter")


def with_ids(items: Sequence[McqaItem]) -> list[McqaItem]:
    """Items whose ids are unique (positions replace the ids when they are not)."""
    ids = [i.id for i in items]
    if len(set(map(repr, ids))) == len(ids):
        return list(items)
    return [replace(item, id=n) for n, item in enumerate(items)]
