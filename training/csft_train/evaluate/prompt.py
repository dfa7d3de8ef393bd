"""CMB's official prompt (answer-only, zero- or K-shot) inside a chat template. No torch here.

The question text is ``workers/base.py``'s ``query_prompt_2`` of FreedomIntelligence/CMB:
``以下是中国{exam_type}中{exam_class}考试的一道{question_type}，不需要做任何分析和解释，直接输出答案选项。
\\n{question}\\n{option_str}`` with ``option_str`` the ``"{k}. {v}"`` lines. ``option_filter``
``official`` keeps only options whose text is longer than one character, as ``base.py`` (and
OpenCompass) do; ``nonempty`` keeps every non-blank option (``generate_fewshot.py``). K-shot
examples are CMB-val items of the same exam type and class, each a user turn followed by the
assistant turn ``答案是{answer}。`` (``format_fewshot_user_and_gpt``); they are drawn with a
seeded generator per item (the official script does not seed), from the same class first, then
the same exam type, then any.

Non-CMB items (CMExam, CMMLU, adapter files) get the same prompt with the exam type and class
of the item (e.g. ``CMMLU``/``clinical_knowledge``) unless ``generic`` is chosen, which drops the
exam sentence: ``以下是一道{question_type}，不需要做任何分析和解释，直接输出答案选项。``.

The conversation is rendered by a LLaMA-Factory template of csft_data (``intern2``, ``qwen``,
...) or, with ``template="auto"``, by the template a ``csft-data train`` run recorded in the model
folder (``csft_train.json``), else by the tokenizer's own ``chat_template``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import csft_data
from csft_data import ConfigError
from csft_train.config import TRAINED_WITH_FILE
from csft_train.evaluate.items import McqaItem

OptionFilter = Literal["official", "nonempty"]

CMB_QUERY = (
    "以下是中国{exam_type}中{exam_class}考试的一道{question_type}，"
    "不需要做任何分析和解释，直接输出答案选项。\n{question}\n{option_str}"
)
GENERIC_QUERY = (
    "以下是一道{question_type}，不需要做任何分析和解释，直接输出答案选项。"
    "\n{question}\n{option_str}"
)
FEWSHOT_ANSWER = "答案是{answer}。"


def filtered_options(item: McqaItem, option_filter: OptionFilter = "official") -> dict[str, str]:
    """The options ``option_filter`` keeps (see the module comment); may be empty."""
    if option_filter == "official":
        return {k: v for k, v in item.options.items() if len(v) > 1}
    if option_filter == "nonempty":
        return {k: v for k, v in item.options.items() if v.strip()}
    raise ConfigError(f"unknown option filter {option_filter!r}: expected official or nonempty")


def shown_options(item: McqaItem, option_filter: OptionFilter = "official") -> dict[str, str]:
    """The options the prompt shows and the answer is chosen from: those the filter keeps, or
    all of them when it keeps none (``workers/base.py`` would then show no option at all, as
    for an item whose options are single characters such as 心/肝/脾)."""
    return filtered_options(item, option_filter) or dict(item.options)


def question_text(
    item: McqaItem, option_filter: OptionFilter = "official", *, generic: bool = False
) -> str:
    option_str = "\n".join(f"{k}. {v}" for k, v in shown_options(item, option_filter).items())
    fields = {
        "exam_type": item.exam_type,
        "exam_class": item.exam_class,
        "question_type": item.question_type,
        "question": item.question,
        "option_str": option_str,
    }
    return (GENERIC_QUERY if generic else CMB_QUERY).format(**fields)


def pick_shots(
    item: McqaItem, pool: Sequence[McqaItem], k: int, *, seed: int = 0
) -> list[McqaItem]:
    """``k`` examples for ``item`` from ``pool`` (same class, then same type, then any;
    deterministic for a seed and item id; never the item's own question)."""
    if k <= 0:
        return []
    rng = random.Random(f"{seed}:{item.id!r}")
    chosen: list[McqaItem] = []
    tiers = [
        [p for p in pool if (p.exam_type, p.exam_class) == (item.exam_type, item.exam_class)],
        [p for p in pool if p.exam_type == item.exam_type and p.exam_class != item.exam_class],
        [p for p in pool if p.exam_type != item.exam_type],
    ]
    for tier in tiers:
        # A pool item with the very question asked would hand the model its answer.
        tier = [p for p in tier if p.answer and p.question != item.question]
        need = k - len(chosen)
        if need <= 0:
            break
        chosen.extend(rng.sample(tier, min(need, len(tier))))
    return chosen


def messages_for(
    item: McqaItem,
    shots: Sequence[McqaItem] = (),
    option_filter: OptionFilter = "official",
    *,
    generic: bool = False,
) -> list[str]:
    """user, assistant, ..., user: the K-shot turns then the question."""
    out: list[str] = []
    for s in shots:
        out.append(question_text(s, option_filter, generic=generic))
        out.append(FEWSHOT_ANSWER.format(answer=s.answer))
    out.append(question_text(item, option_filter, generic=generic))
    return out


@dataclass(frozen=True)
class ChatRenderer:
    """Renders user/assistant turns into a generation prompt (text), ending where the
    assistant's answer starts. ``template``: a csft_data template name, or ``auto`` for the
    tokenizer's ``chat_template``. ``system``: the system prompt (``None``: the template's
    default, ``""``: none)."""

    tokenizer: Any
    template: str = "auto"
    system: str | None = None

    def __post_init__(self) -> None:
        if self.template == "auto":
            if not getattr(self.tokenizer, "chat_template", None):
                raise ConfigError(
                    "the model folder records no training template and the tokenizer has no "
                    "chat_template: give a template name ("
                    + ", ".join(csft_data.template_names())
                    + ")"
                )
        elif self.template not in csft_data.template_names():
            raise ConfigError(
                f"unknown template {self.template!r}: expected auto or one of "
                + ", ".join(csft_data.template_names())
            )

    def render(self, messages: Sequence[str]) -> str:
        if self.template == "auto":
            roles = ["user", "assistant"]
            chat = [{"role": roles[n % 2], "content": m} for n, m in enumerate(messages)]
            if self.system:
                chat.insert(0, {"role": "system", "content": self.system})
            text = self.tokenizer.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=True
            )
            if not isinstance(text, str):
                raise ConfigError("the tokenizer's chat_template did not give text")
            return text
        return csft_data.render_prompt(
            self.template,
            list(messages),
            system=self.system,
            bos_token=getattr(self.tokenizer, "bos_token", None),
            eos_token=getattr(self.tokenizer, "eos_token", None),
        )


def chat_renderer(
    tokenizer: Any, model_dir: str | Path, template: str = "auto", system: str | None = None
) -> ChatRenderer:
    """The renderer for a model folder. ``auto`` takes the template (and system prompt, unless
    ``system`` is given) that ``csft-data train`` recorded in ``model_dir/csft_train.json``: a
    fine-tuned model is prompted as it was trained, whatever chat template its base tokenizer
    carries. Without that file ``auto`` is the tokenizer's ``chat_template``."""
    record = Path(model_dir) / TRAINED_WITH_FILE
    if template == "auto" and record.is_file():
        try:
            trained = json.loads(record.read_text("utf-8"))
            template = str(trained["template"])
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{record}: not a csft-train record ({e})") from None
        if system is None:
            system = trained.get("system")
    return ChatRenderer(tokenizer, template, system)
