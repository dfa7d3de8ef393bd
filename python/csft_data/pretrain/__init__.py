"""The continued-pretraining corpus (SF-Med §3.1): raw documents (text files, record files,
SFT datasets rendered as text) → normalized, deduplicated, quality-filtered, decontaminated →
a token mixture by category → packed ``seq_len`` token shards with document boundaries, which
``csft-data train pt`` trains on. ``recipe`` parses the ``kind = "pretrain"`` recipe,
``config`` holds its stage tables, ``stages`` the stages of its own, ``runner`` the build."""

from csft_data.pretrain.config import (
    CATEGORIES,
    MixtureConfig,
    PackConfig,
    ParagraphConfig,
    QualityConfig,
)
from csft_data.pretrain.recipe import (
    DocSource,
    PretrainRecipe,
    is_pretrain_recipe,
    load_pretrain_recipe,
    parse_pretrain_recipe,
)
from csft_data.pretrain.runner import STAGES, PretrainResult, build_pretrain

__all__ = [
    "CATEGORIES",
    "STAGES",
    "DocSource",
    "MixtureConfig",
    "PackConfig",
    "ParagraphConfig",
    "PretrainRecipe",
    "PretrainResult",
    "QualityConfig",
    "build_pretrain",
    "is_pretrain_recipe",
    "load_pretrain_recipe",
    "parse_pretrain_recipe",
]
