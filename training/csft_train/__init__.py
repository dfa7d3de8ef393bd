"""csft-train: the thin training and model-evaluation module of csft-data.

It needs torch and transformers (and peft for LoRA); they are imported only when a command runs,
so ``csft-data --help`` stays fast. Data preparation lives in ``csft_data``; this package only
turns prepared Alpaca splits (and packed pre-training token shards) into trained models and
scores models on benchmarks.
"""

__version__ = "0.1.0"

INSTALL_HINT = "python -m pip install ./training  (from the csft-data source tree)"


def require_torch() -> None:
    """Raises ``ImportError`` naming the install command when torch/transformers are missing."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        raise ImportError(f"{e}; the training extra is missing: {INSTALL_HINT}") from e


__all__ = ["INSTALL_HINT", "__version__", "require_torch"]
