"""Causal-LM continued pre-training on packed token shards: ``csft-data train pt CONFIG``.

``[data] train`` lists pretrain output folders (``manifest.json`` and uint32 shards of
``seq_len``-token rows, read by :mod:`csft_train.pt_data`; they must share one ``seq_len``).
Every row of every shard is one example: batches are planned as SFT's (plain shuffling in
(seed, epoch), the global batch shared by the ranks), each document inside a row gets its own
position ids and no label on its first token, and the loss = summed token NLL / trained tokens
of the whole accumulated step, with the loop of :mod:`csft_train.engine` (schedule, checkpoints,
exact resume, ``metrics.jsonl``). ``[data] cutoff_len``, ``packing``, ``group_by_length`` and the
chat template do not apply (the shards are already tokenized and packed); ``max_samples`` keeps
the first rows. Writes ``metrics.json`` and ``config.toml`` into ``[train] output_dir``, and
``final/`` (a model folder that ``train sft`` can start from) unless ``save_final`` is off.
"""

from __future__ import annotations

from typing import Any

from csft_train.config import Config


def train_pt(cfg: Config) -> dict[str, Any]:
    """Trains per ``cfg``; returns the summary also written to ``metrics.json``."""
    import torch

    from csft_train import data as D
    from csft_train import dist as dist_mod
    from csft_train import engine as E
    from csft_train import pt_data as P

    pt = P.load_pretrain(cfg)
    out_dir, device, prec, d = E.start_run(cfg)
    trained = pt.trained_per_row()
    content = pt.content_per_row()

    def epoch_batches(epoch: int) -> list[Any]:
        return D.plan_batches(
            pt.lengths,
            cfg.train.per_device_batch_size * d.world,  # the global batch; each rank its rows
            cfg.train.seed,
            epoch,
            group_by_length=False,
        )

    plan = E.build_plan(
        cfg,
        epoch_batches,
        norm=lambda mb: sum(int(trained[i]) for row in mb for i in row),
        tokens=lambda mb: sum(int(content[i]) for row in mb for i in row),
    )
    policy = E.load_policy(cfg, device, prec)
    vocab = int(policy.get_input_embeddings().num_embeddings)
    model = E.distribute(cfg, policy, d, prec)
    E.seed_everything(cfg.train.seed)
    optimizer = E.make_optimizer(cfg, model, cfg.train.learning_rate)
    scheduler = E.make_scheduler(cfg, optimizer, len(plan.steps))

    def loss_fn(m: torch.nn.Module, mb: Any) -> tuple[torch.Tensor, dict[str, float]]:
        cpu = P.collate_pt(pt, mb)
        top = int(cpu["input_ids"].max())
        if top >= vocab:
            rows = [i for row in mb for i in row]
            raise ValueError(
                f"token id {top} in rows {rows} of [data] train is out of the model's "
                f"vocabulary ({vocab} embeddings): the shards were tokenized for another model"
            )
        batch = {k: v.to(device) for k, v in cpu.items()}
        labels = batch.pop("labels")
        logits = m(**batch, use_cache=False).logits
        return E.token_nll_sum(logits, labels), {}

    loop = E.Loop(cfg, model, optimizer, scheduler, plan, loss_fn, out_dir, device, prec, dist=d)
    loop.log(
        f"pt: {len(pt)} sequences of {pt.seq_len} tokens ({pt.content_tokens} not padding, "
        f"{pt.documents} documents, {len(cfg.data.train)} folder(s)), {len(plan.steps)} steps, "
        f"{E.describe(model)}, {device.type} {prec.describe()}{dist_mod.describe(d)}"
    )
    result = loop.run()
    summary: dict[str, Any] = {
        "sequences": len(pt),
        "seq_len": pt.seq_len,
        "content_tokens": pt.content_tokens,
        "documents": pt.documents,
        "trained_tokens": int(sum(plan.norms)),
        **result,
    }
    if cfg.train.save_final:
        summary["final_model"] = str(E.save_final(cfg, model, out_dir, prec.frozen, d))
    if d.main:
        E.write_json(out_dir / "metrics.json", summary)
    dist_mod.close(d)
    return summary
