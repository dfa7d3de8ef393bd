"""SF-Med's instruction diversification (§3.2, Figure 2; ablation in Table 8): generated,
varied instructions for question–answer records, which mostly have none, with different ones
for single-turn and multi-turn dialogue. ``bank.py`` is the algorithm (question and answer
banks, history-as-dialogue prompts, retention, swaps), ``checks.py`` what an instruction must
pass, ``generators.py`` the models that write them (local, OpenAI-compatible endpoint, vLLM)
behind an on-disk cache, ``run.py`` the whole generation (:func:`diversify`) and ``assign.py``
the assignment of instructions to records that the build stage ``[diversify]`` does.
"""

from csft_data.diversifier.assign import assign_file, load_instructions, scenario_of
from csft_data.diversifier.bank import PROMPTS, BankSettings, run_banks
from csft_data.diversifier.checks import MEDICAL_TERMS, Checker, split_instructions
from csft_data.diversifier.generators import GenerationCache, Generator, make_generator
from csft_data.diversifier.run import SEEDS, DiversifyResult, diversify, load_seeds

__all__ = [
    "MEDICAL_TERMS",
    "PROMPTS",
    "SEEDS",
    "BankSettings",
    "Checker",
    "DiversifyResult",
    "GenerationCache",
    "Generator",
    "assign_file",
    "diversify",
    "load_instructions",
    "load_seeds",
    "make_generator",
    "run_banks",
    "scenario_of",
    "split_instructions",
]
