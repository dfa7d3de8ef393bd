"""LoRA through peft: wrap a causal LM with adapters per ``[lora]``; only the adapters train.
``engine.save_final`` merges them into the weights (``merge_and_unload``) for export."""

from __future__ import annotations

from typing import Any

from csft_train.config import Config


def apply_lora(cfg: Config, model: Any) -> Any:
    """The peft model with LoRA adapters on ``target_modules`` (``all-linear`` by default)."""
    from peft import LoraConfig, get_peft_model

    targets = cfg.lora.target_modules
    target: str | list[str] = "all-linear" if targets == ["all-linear"] else targets
    lc = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=target,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lc)
    if cfg.model.gradient_checkpointing:
        peft_model.enable_input_require_grads()
    return peft_model
