"""``csft-data build``: every source of a recipe → deduplicated, decontaminated Alpaca
train/val splits with a manifest, a report and a dataset card. See ``runner.py`` for the
orchestration (and the list of stages, one module each: ``adapt.py``, ``normalize.py``,
``dedup.py``, ``decontaminate.py``, ``diversify.py``, ``lengths.py``, ``mixture.py``,
``split.py``, on the machinery of ``cache.py``), ``recipe.py`` for the recipe format and
``config.py`` for each stage's configuration.
"""

from csft_data.pipeline.config import (
    DecontamConfig,
    DedupConfig,
    DiversifyConfig,
    LengthsConfig,
    MixtureConfig,
    NormalizeConfig,
    SplitConfig,
)
from csft_data.pipeline.recipe import Recipe, Source, load_recipe, parse_recipe
from csft_data.pipeline.runner import STAGES, BuildResult, build, plan

__all__ = [
    "STAGES",
    "BuildResult",
    "DecontamConfig",
    "DedupConfig",
    "DiversifyConfig",
    "LengthsConfig",
    "MixtureConfig",
    "NormalizeConfig",
    "Recipe",
    "Source",
    "SplitConfig",
    "build",
    "load_recipe",
    "parse_recipe",
    "plan",
]
