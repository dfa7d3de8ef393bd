"""``csft-data build``: every source of a recipe → deduplicated, decontaminated Alpaca
train/val splits with a manifest, a report and a dataset card. See ``pipeline.py`` for the
stages, ``recipe.py`` for the recipe format."""

from csft_data.pipeline.pipeline import STAGES, BuildResult, build, plan
from csft_data.pipeline.recipe import Recipe, Source, load_recipe, parse_recipe

__all__ = [
    "STAGES",
    "BuildResult",
    "Recipe",
    "Source",
    "build",
    "load_recipe",
    "parse_recipe",
    "plan",
]
