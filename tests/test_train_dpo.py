"""DPO on CPU with a tiny Qwen2: pairs from the real CMExam split (chosen: the record's answer,
rejected: an unhelpful stock reply); the reward margin and accuracy rise; with the policy equal to
the reference the first loss is log 2 for both the precomputed and the frozen-model reference.
Preference selection: swap/drop counts on a hand-made score file, through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _train_common import cmexam_split, metrics, tiny_model, write_config

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def assets(
    shared_data: Path, tokenizer_json: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dpo")
    tok = tokenizer_json
    split = cmexam_split(shared_data, root / "cmexam.jsonl", n=65)
    recs = [json.loads(x) for x in split.read_text("utf-8").splitlines()]
    pairs = root / "pairs.jsonl"
    with pairs.open("w", encoding="utf-8") as f:
        for r in recs[:64]:
            row = {
                "instruction": r["instruction"],
                "input": r.get("input", ""),
                "chosen": r["output"],
                "rejected": "不清楚，建议您咨询医生。",
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {"tok": tok, "model": tiny_model(tok, root / "model"), "pairs": pairs}


def tables(a: dict[str, Path], out: Path, **dpo: Any) -> dict[str, dict[str, Any]]:
    return {
        "model": {"path": str(a["model"]), "template": "qwen"},
        "data": {"cutoff_len": 160},
        "train": {
            "output_dir": str(out),
            "learning_rate": 2e-3,
            "epochs": 2.0,
            "per_device_batch_size": 8,
            "gradient_accumulation_steps": 1,
            "warmup_ratio": 0.0,
            "logging_steps": 2,
            "device": "cpu",
            "save_final": False,
        },
        "dpo": {"train": [str(a["pairs"])], "beta": 0.1, **dpo},
    }


def test_dpo_margin_rises(assets: dict[str, Path], tmp_path: Path) -> None:
    from csft_data.cli import main

    cfg = write_config(tmp_path / "dpo.toml", tables(assets, tmp_path / "run"))
    assert main(["train", "dpo", str(cfg)]) == 0
    rows = metrics(tmp_path / "run")
    assert len(rows) == 8  # 64 pairs / 8 = 8 steps per epoch, 2 epochs, log every 2
    assert rows[0]["loss"] < math.log(2) + 0.05  # (steps 1-2; step 1 alone is log 2, below)
    late = rows[-3:]
    assert all(r["margins"] > rows[0]["margins"] + 0.5 for r in late), [r["margins"] for r in rows]
    assert all(r["accuracies"] > 0.8 for r in late)
    assert all(r["rewards_chosen"] > r["rewards_rejected"] for r in late)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_frozen_reference_model_matches_precomputed(
    assets: dict[str, Path], tmp_path: Path, dtype: str
) -> None:
    """Also under mixed bf16 (fp32 policy, bf16 autocast): the reference gives the policy's
    own log-probs before the first update, so the first loss is exactly log 2."""
    from csft_train.config import parse_config
    from csft_train.dpo import train_dpo

    first = []
    for pre in (True, False):
        t = tables(assets, tmp_path / f"run{pre}", precompute_ref=pre)
        t["train"].update(max_steps=2, logging_steps=1)
        t["model"]["dtype"] = dtype
        train_dpo(parse_config(t))
        first.append(metrics(tmp_path / f"run{pre}")[:2])
    for a, b in zip(first[0], first[1], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["margins"] == pytest.approx(b["margins"], abs=1e-5)
    assert first[0][0]["loss"] == pytest.approx(math.log(2), abs=1e-5)


def test_select_prefs_swaps_lowest_and_drops_highest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from csft_data.cli import main
    from csft_train.prefs import select, strength

    n = 20
    data = tmp_path / "pairs.jsonl"
    data.write_text(
        "".join(
            json.dumps({"instruction": f"q{i}", "chosen": f"c{i}", "rejected": f"r{i}"}) + "\n"
            for i in range(n)
        )
    )
    rng = np.random.default_rng(0)
    # pair i has strength mu_i = i - 4.5 (three models, noise summing to zero), listed reversed
    scores = tmp_path / "scores.jsonl"
    with scores.open("w") as f:
        for i in reversed(range(n)):
            noise = rng.normal(size=3)
            noise -= noise.mean()
            rej = rng.normal(size=3)
            f.write(
                json.dumps(
                    {
                        "index": i,
                        "scores_chosen": (rej + i - 4.5 + noise).tolist(),
                        "scores_rejected": rej.tolist(),
                    }
                )
                + "\n"
            )
    out = tmp_path / "sel" / "selected.jsonl"
    code = main(
        [
            "train",
            "select-prefs",
            str(data),
            "-o",
            str(out),
            "--scores",
            str(scores),
            "--q-low",
            "0.1",
            "--q-high",
            "0.2",
            "--annotate",
        ]
    )
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["instruction"] for r in rows] == [f"q{i}" for i in range(16)]
    swapped = [r["instruction"] for r in rows if r["chosen"].startswith("r")]
    assert swapped == ["q0", "q1"]
    assert rows[0]["preference_mean"] == pytest.approx(4.5)
    stats = json.loads(Path(f"{out}.stats.json").read_text())
    assert (stats["pairs"], stats["models"], stats["swapped"], stats["dropped"]) == (20, 3, 2, 4)
    assert stats["negative_share"] == pytest.approx(5 / 20)
    assert Path(f"{out}.strength.png").read_bytes()[:4] == b"\x89PNG"
    # the maths alone: population std, floor counts, stable ties
    mu, sd = strength(np.array([[1.0, 3.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [1.0, 1.0]]))
    assert mu.tolist() == [2.0, -1.0] and sd.tolist() == [1.0, 0.0]
    swap, drop = select(np.array([0.0, 0.0, 0.0, 5.0]), 0.25, 0.25)
    assert swap.tolist() == [0] and drop.tolist() == [3]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"scores_chosen": [1], "scores_rejected": []}\n')
    assert main(["train", "select-prefs", str(data), "-o", str(out), "--scores", str(bad)]) == 2
    assert "scores_rejected" in capsys.readouterr().err


def test_reward_models_score_pairs_as_a_direct_forward(
    assets: dict[str, Path], tmp_path: Path
) -> None:
    """Two local reward models (tiny Qwen2 classifiers built here) score every pair; each score
    is the model's logit on prompt + response, as a direct forward pass on that sequence alone
    computes it, whatever the batch size. The first model has no pad id (it pools the last
    token); the second's pad id is the token half the sequences end with, so for those it pools
    the last other token: batching must not change either."""
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    import csft_data
    from csft_train.prefs import score_sequences, score_with_models

    vocab = json.loads(assets["tok"].read_text("utf-8"))
    size = len(vocab["model"]["vocab"]) + len(vocab["added_tokens"])
    pairs = tmp_path / "few.jsonl"
    pairs.write_text("".join(assets["pairs"].read_text("utf-8").splitlines(True)[:7]))
    enc = csft_data.encode_pairwise(pairs, assets["tok"], template="qwen", cutoff_len=160)
    seqs = [np.concatenate([p, resp]) for p, c, r in map(enc.pair, range(len(enc)))
            for resp in (c, r)]  # fmt: skip
    ends = [int(s[-1]) for s in seqs]
    end = max(set(ends), key=ends.count)  # the rejected answers' last token (after <|im_end|>)
    assert 0 < ends.count(end) < len(seqs) and len({len(s) for s in seqs}) > 3
    folders = []
    for seed, pad in ((1, None), (2, end)):
        torch.manual_seed(seed)
        cfg = Qwen2Config(
            vocab_size=size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=1, num_labels=1, pad_token_id=pad,
        )  # fmt: skip
        folder = tmp_path / f"rm{seed}"
        Qwen2ForSequenceClassification(cfg).save_pretrained(str(folder))
        (folder / "tokenizer.json").write_bytes(assets["tok"].read_bytes())
        folders.append(folder)

    direct = np.zeros((len(seqs), 2))
    for m, folder in enumerate(folders):
        rm = Qwen2ForSequenceClassification.from_pretrained(str(folder)).eval()
        with torch.no_grad():
            for k, s in enumerate(seqs):
                ids = torch.from_numpy(s.astype(np.int64))[None]
                direct[k, m] = float(rm(input_ids=ids).logits[0, 0])
        if m == 1:  # a direct score differs from the last-token one: pooling is tested
            k = ends.index(end)
            with torch.no_grad():
                hidden = rm.model(input_ids=torch.from_numpy(seqs[k].astype(np.int64))[None])
                last = float(rm.score(hidden.last_hidden_state)[0, -1, 0])
            assert abs(last - direct[k, 1]) > 1e-4
            for bs in (1, 3, 16):
                got = score_sequences(rm, seqs, batch_size=bs)
                np.testing.assert_allclose(got, direct[:, 1], rtol=0, atol=1e-5)
            assert rm.config.pad_token_id == cfg.pad_token_id  # restored

    for bs in (1, 3, 16):
        chosen, rejected = score_with_models(
            pairs, folders, template="qwen", cutoff_len=160, device="cpu", batch_size=bs
        )
        assert chosen.shape == rejected.shape == (7, 2)
        np.testing.assert_allclose(chosen, direct[0::2], rtol=0, atol=1e-5)
        np.testing.assert_allclose(rejected, direct[1::2], rtol=0, atol=1e-5)
    assert not np.allclose(chosen[:, 0], chosen[:, 1])  # two different models
    with pytest.raises(ValueError, match="batch_size"):
        score_sequences(rm, seqs, batch_size=0)

    # Through the CLI (--batch-size): the annotated strength is the mean of the direct margins.
    from csft_data.cli import main

    out = tmp_path / "selected.jsonl"
    argv = ["train", "select-prefs", str(pairs), "-o", str(out), "--reward-model",
            str(folders[0]), "--reward-model", str(folders[1]), "--template", "qwen",
            "--cutoff-len", "160", "--batch-size", "5", "--q-low", "0", "--q-high", "0",
            "--annotate"]  # fmt: skip
    assert main(argv) == 0
    got = [json.loads(x)["preference_mean"] for x in out.read_text("utf-8").splitlines()]
    np.testing.assert_allclose(got, (direct[0::2] - direct[1::2]).mean(axis=1), atol=1e-5)

    # Two processes (gloo) share the scoring, each a block of the pairs: the same selection.
    import os
    import subprocess
    import sys

    two = tmp_path / "selected2.jsonl"
    argv2 = [a if a != str(out) else str(two) for a in argv] + ["--nproc", "2"]
    proc = subprocess.run(
        [sys.executable, "-m", "csft_data", *argv2],
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "7 pairs, 2 reward model(s)" in proc.stdout
    rows1 = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    rows2 = [json.loads(x) for x in two.read_text("utf-8").splitlines()]
    m1, m2 = (np.array([r.pop("preference_mean") for r in rows]) for rows in (rows1, rows2))
    assert rows2 == rows1
    np.testing.assert_allclose(m2, m1, atol=1e-5)


@pytest.mark.slow
def test_dpo_on_two_ddp_ranks_equals_one_process(assets: dict[str, Path], tmp_path: Path) -> None:
    """DPO data-parallel (gloo, 2 processes under the ``--nproc`` launcher): reference
    log-probs precomputed by each rank for its half of the pairs, 2 ranks × 4 pairs per step;
    losses, margins and accuracies equal those of one process with 8 pairs per step."""
    import os
    import subprocess
    import sys

    from csft_train.config import parse_config
    from csft_train.dpo import train_dpo

    one = tables(assets, tmp_path / "one")
    one["train"].update(epochs=1.0, logging_steps=1)
    train_dpo(parse_config(one))
    two = tables(assets, tmp_path / "two")
    two["train"].update(epochs=1.0, logging_steps=1, per_device_batch_size=4)
    two["dist"] = {"strategy": "ddp"}
    cfg = write_config(tmp_path / "two.toml", two)
    proc = subprocess.run(
        [sys.executable, "-m", "csft_data", "train", "dpo", str(cfg), "--nproc", "2"],
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    a, b = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert len(a) == len(b) == 8
    for key in ("loss", "margins", "accuracies", "rewards_chosen"):
        assert [r[key] for r in b] == pytest.approx([r[key] for r in a], rel=1e-4, abs=1e-6), key
