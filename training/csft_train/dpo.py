"""DPO with the sigmoid loss: ``csft-data train dpo CONFIG``.

Loss per pair = −log σ(β·[(π_c − ref_c) − (π_r − ref_r)]) with π/ref the *summed* log-probs of
the completion tokens under the policy / the frozen reference (trl ``loss_type="sigmoid"``),
plus ``sft_weight`` × the per-token NLL of the chosen completion (LLaMA-Factory's ``pref_ftx``).
Chosen and rejected rows go through the model in one concatenated forward; the prompt ids are
the same for both (:func:`csft_data.encode_pairwise`). The reference is ``[dpo] ref_model``, or
the initial policy: with ``precompute_ref`` (the default) its log-probs are computed once before
training (by the policy itself, before its first update: no second model is loaded), otherwise a
frozen copy is kept; with LoRA it is the policy with its adapters disabled. Dropout is disabled
in policy and reference (trl's ``disable_dropout``). Logged: ``rewards_chosen`` = β(π_c − ref_c),
``rewards_rejected``, ``margins`` and ``accuracies``. Online merging (``[merge]``) plugs in as the
optimizer, as in the paper's DPO runs.
"""

from __future__ import annotations

from typing import Any

from csft_train.config import Config


def _disable_dropout(model: Any) -> None:
    import torch

    for mod in model.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    for key in ("attention_dropout", "hidden_dropout", "dropout"):
        if hasattr(model.config, key):
            setattr(model.config, key, 0.0)


def train_dpo(cfg: Config) -> dict[str, Any]:
    """Trains per ``cfg``; returns the summary also written to ``metrics.json``."""
    import torch
    import torch.nn.functional as F

    from csft_train import data as D
    from csft_train import dist as dist_mod
    from csft_train import engine as E

    out_dir, device, prec, d = E.start_run(cfg)
    pairs = D.load_pairs(cfg)
    lengths = pairs.lengths
    bs = cfg.train.per_device_batch_size
    global_bs = bs * d.world  # the plan's batches are global; each rank takes its rows

    def epoch_batches(epoch: int) -> list[Any]:
        rows = D.plan_batches(lengths, global_bs, cfg.train.seed, epoch, cfg.data.group_by_length)
        return [[r[0] for r in b] for b in rows]

    plan = E.build_plan(
        cfg,
        epoch_batches,
        norm=lambda mb: float(len(mb)),
        tokens=lambda mb: sum(
            2 * len(pairs.prompt[i]) + len(pairs.chosen[i]) + len(pairs.rejected[i]) for i in mb
        ),
    )
    model = E.load_policy(cfg, device, prec)
    policy = model  # unwrapped: the reference passes run on it outside DDP/FSDP
    _disable_dropout(model)  # LoRA's dropout too, as trl's disable_dropout
    # The reference: ``[dpo] ref_model``; else the initial policy, which is, with LoRA, the
    # policy with its adapters disabled; with ``precompute_ref``, the policy itself before its
    # first update (no second copy is loaded); otherwise a frozen copy in the policy's dtype.
    ref: Any = None
    if cfg.dpo.ref_model:
        ref = E.load_model(cfg, cfg.dpo.ref_model, device, prec.frozen)
    elif not cfg.lora.enabled and not cfg.dpo.precompute_ref:
        ref = E.load_model(cfg, cfg.model.path, device, prec.master)
    if ref is not None:
        _disable_dropout(ref)
        ref.eval().requires_grad_(False)

    def ref_forward(net: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = net(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
        )
        return E.sequence_logps(out.logits, batch["labels"])

    def ref_logps(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # Under the policy's autocast, so that before the first update policy and reference
        # give the same log-probs (rewards start at 0).
        with torch.no_grad(), prec.autocast(device):
            if ref is not None:
                return ref_forward(ref, batch)
            if cfg.lora.enabled:
                with policy.disable_adapter():
                    return ref_forward(policy, batch)
            return ref_forward(policy, batch)  # precompute only: the untrained policy

    def to_device(mb: list[int]) -> dict[str, torch.Tensor]:
        return {k: v.to(device) for k, v in D.collate_pairs(pairs, mb, pad_id=0).items()}

    pre: torch.Tensor | None = None
    if cfg.dpo.precompute_ref:
        pre = torch.zeros((len(pairs), 2), dtype=torch.float32)
        was_training = model.training
        model.eval()
        # data-parallel: each rank its contiguous block of pairs, then a sum over the ranks
        per_rank = -(-len(pairs) // d.world)
        order = list(range(d.rank * per_rank, min(len(pairs), (d.rank + 1) * per_rank)))
        for s in range(0, len(order), bs):
            mb = order[s : s + bs]
            lp = ref_logps(to_device(mb)).float().cpu()
            pre[mb, 0] = lp[: len(mb)]
            pre[mb, 1] = lp[len(mb) :]
        if d.active:
            summed = pre.to(device)
            torch.distributed.all_reduce(summed)
            pre = summed.cpu()
        model.train(was_training)
        ref = None  # free the reference model
        if device.type == "cuda":
            torch.cuda.empty_cache()

    beta, ftx = cfg.dpo.beta, cfg.dpo.sft_weight

    def loss_fn(m: torch.nn.Module, mb: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        batch = to_device(mb)
        n = len(mb)
        logits = m(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
        ).logits
        logps = E.sequence_logps(logits, batch["labels"])
        pc, pr = logps[:n], logps[n:]
        if pre is not None:
            rc, rr = pre[mb, 0].to(device), pre[mb, 1].to(device)
        else:
            r = ref_logps(batch)
            rc, rr = r[:n], r[n:]
        chosen_rewards = beta * (pc - rc)
        rejected_rewards = beta * (pr - rr)
        losses = -F.logsigmoid(chosen_rewards - rejected_rewards)
        if ftx:
            chosen_len = (batch["labels"][:n, 1:] != -100).sum(-1).clamp_min(1)
            losses = losses + ftx * (-pc / chosen_len)
        cr, rj = chosen_rewards.detach(), rejected_rewards.detach()
        metrics = {
            "rewards_chosen": float(cr.sum()),
            "rewards_rejected": float(rj.sum()),
            "margins": float((cr - rj).sum()),
            "accuracies": float((cr > rj).float().sum()),
        }
        return losses.sum(), metrics

    model = E.distribute(cfg, model, d, prec)
    E.seed_everything(cfg.train.seed)
    optimizer = E.make_optimizer(cfg, model, cfg.train.learning_rate)
    scheduler = E.make_scheduler(cfg, optimizer, len(plan.steps))
    loop = E.Loop(cfg, model, optimizer, scheduler, plan, loss_fn, out_dir, device, prec, dist=d)
    loop.log(
        f"dpo: {len(pairs)} pairs ({len(pairs.rejections)} rejected), {len(plan.steps)} steps, "
        f"beta {beta}, reference {'precomputed' if pre is not None else 'model'}, "
        f"{E.describe(model)}, {device.type} {prec.describe()}{dist_mod.describe(d)}"
    )
    result = loop.run()
    summary: dict[str, Any] = {"pairs": len(pairs), "rejected": len(pairs.rejections), **result}
    if cfg.train.save_final:
        summary["final_model"] = str(E.save_final(cfg, model, out_dir, prec.frozen, d))
    if d.main:
        E.write_json(out_dir / "metrics.json", summary)
    dist_mod.close(d)
    return summary
