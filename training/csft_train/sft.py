"""Supervised fine-tuning (full or LoRA): ``csft-data train sft CONFIG``.

Data from :func:`csft_train.data.load_sft` (Rust encoder, LLaMA-Factory masks and truncation),
length-grouped or packed micro-batches, the loss = summed token NLL / trained tokens of the whole
accumulated step, and the loop of :mod:`csft_train.engine` (cosine with warm-up, checkpoints,
exact resume, ``metrics.jsonl``). Writes ``metrics.json`` (summary) and ``config.toml`` (the
config as run) into ``[train] output_dir``.
"""

from __future__ import annotations

from typing import Any

from csft_train.config import Config


def train_sft(cfg: Config) -> dict[str, Any]:
    """Trains per ``cfg``; returns the summary also written to ``metrics.json``."""
    import torch

    from csft_train import data as D
    from csft_train import dist as dist_mod
    from csft_train import engine as E

    out_dir, device, prec, d = E.start_run(cfg)
    sft = D.load_sft(cfg)
    lengths = sft.lengths
    capacity = cfg.data.cutoff_len if cfg.data.packing else 0

    def epoch_batches(epoch: int) -> list[Any]:
        return D.plan_batches(
            lengths,
            cfg.train.per_device_batch_size * d.world,  # the global batch; each rank its rows
            cfg.train.seed,
            epoch,
            cfg.data.group_by_length,
            capacity,
        )

    plan = E.build_plan(
        cfg,
        epoch_batches,
        norm=lambda mb: D.trained_tokens(sft, mb),
        tokens=lambda mb: sum(int(lengths[i]) for row in mb for i in row),
    )
    model = E.distribute(cfg, E.load_policy(cfg, device, prec), d, prec)
    E.seed_everything(cfg.train.seed)
    optimizer = E.make_optimizer(cfg, model, cfg.train.learning_rate)
    scheduler = E.make_scheduler(cfg, optimizer, len(plan.steps))

    def loss_fn(m: torch.nn.Module, mb: Any) -> tuple[torch.Tensor, dict[str, float]]:
        batch = {k: v.to(device) for k, v in D.collate_sft(sft, mb, pad_id=0).items()}
        labels = batch.pop("labels")
        logits = m(**batch, use_cache=False).logits
        return E.token_nll_sum(logits, labels), {}

    loop = E.Loop(cfg, model, optimizer, scheduler, plan, loss_fn, out_dir, device, prec, dist=d)
    loop.log(
        f"sft: {len(sft)} examples ({sft.dropped_no_labels} without trained tokens dropped, "
        f"{len(sft.rejections)} rejected), {len(plan.steps)} steps, {E.describe(model)}, "
        f"{device.type} {prec.describe()}{dist_mod.describe(d)}"
    )
    result = loop.run()
    summary: dict[str, Any] = {
        "examples": len(sft),
        "dropped_no_labels": sft.dropped_no_labels,
        "rejected": len(sft.rejections),
        "trained_tokens": int(sum(plan.norms)),
        **result,
    }
    if cfg.train.save_final:
        summary["final_model"] = str(E.save_final(cfg, model, out_dir, prec.frozen, d))
    if d.main:
        E.write_json(out_dir / "metrics.json", summary)
    dist_mod.close(d)
    return summary
