"""Model-driven evaluation: multiple-choice benchmarks (CMB with its official prompt, CMExam,
CMMLU, any file of a csft_data MCQA adapter) in ``gen`` or ``loglik`` mode, the memorization
check and single-answer judging. ``items``, ``prompt`` and ``judge`` need no torch; ``engine``,
``mcqa`` and ``memorization`` import it when they run.
"""
