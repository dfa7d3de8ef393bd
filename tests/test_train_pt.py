"""Continued pre-training (``csft-data train pt``) on token shards written here with numpy as the
pretrain builder writes them (2 shards, a document across the shard boundary, padding at the end
of the last one): rows, position ids and labels follow the shards; a bad folder is an error naming
the file; rows with several documents give each document the logits it has alone; on CPU with a
tiny Qwen2 built from a config the loss falls on a repetitive corpus, a resumed run ends with the
same weights and losses as an uninterrupted one, and the CLI runs end to end."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _train_common import metrics, write_config
from csft_train.config import ConfigError, parse_config
from csft_train.data import IGNORE_INDEX
from csft_train.pt_data import load_pretrain

EOS, PAD, VOCAB = 1, 0, 64


def write_pretrain(
    folder: Path, docs: list[list[int]], seq_len: int, rows_per_shard: int
) -> dict[str, Any]:
    """A pretrain folder per the shard format: ``docs`` (each + EOS) concatenated, cut into
    shards of ``rows_per_shard`` rows, the last one padded to whole rows."""
    folder.mkdir(parents=True)
    flat = np.array([t for d in docs for t in [*d, EOS]], dtype=np.uint32)
    starts = np.cumsum([0] + [len(d) + 1 for d in docs[:-1]])
    per = rows_per_shard * seq_len
    shards = []
    for k, base in enumerate(range(0, len(flat), per)):
        part = flat[base : base + per]
        rows = -(-len(part) // seq_len)
        tokens = np.full(rows * seq_len, PAD, dtype="<u4")
        tokens[: len(part)] = part
        tokens.tofile(folder / f"shard-{k:05d}.bin")
        local = starts[(starts >= base) & (starts < base + per)] - base
        local.astype("<u8").tofile(folder / f"shard-{k:05d}.docs.bin")
        shards.append(
            {
                "tokens": f"shard-{k:05d}.bin",
                "docs": f"shard-{k:05d}.docs.bin",
                "sequences": rows,
                "content_tokens": len(part),
                "sha256": "ignored",
            }
        )
    manifest = {
        "kind": "pretrain",
        "seq_len": seq_len,
        "dtype": "uint32",
        "eos_id": EOS,
        "pad_id": PAD,
        "shards": shards,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return {"flat": flat, "starts": set(starts.tolist()), "manifest": manifest}


def reference_row(
    flat: np.ndarray, starts: set[int], seq_len: int, r: int
) -> tuple[list[int], list[int], list[int]]:
    """Row ``r`` computed token by token from the flat stream (padding past its end)."""
    ids, pos, labels = [], [], []
    for i in range(seq_len):
        f = r * seq_len + i
        pad = f >= len(flat)
        ids.append(PAD if pad else int(flat[f]))
        new_segment = i == 0 or f in starts or (pad and f - 1 < len(flat))
        pos.append(0 if new_segment else pos[-1] + 1)
        labels.append(IGNORE_INDEX if pad or f in starts else ids[-1])
    return ids, pos, labels


def corpus(n: int, seed: int = 0) -> list[list[int]]:
    """``n`` documents of 3..20 tokens, ids 2..VOCAB-1."""
    rng = np.random.default_rng(seed)
    return [rng.integers(2, VOCAB, rng.integers(3, 21)).tolist() for _ in range(n)]


def test_rows_positions_and_labels_follow_the_shards(tmp_path: Path) -> None:
    docs = corpus(12)
    seq_len = 16
    w = write_pretrain(tmp_path / "pt", docs, seq_len, rows_per_shard=5)
    shards = w["manifest"]["shards"]
    assert len(shards) == 2 and shards[1]["content_tokens"] % seq_len != 0, "padding at the end"
    first_starts = np.fromfile(tmp_path / "pt" / "shard-00001.docs.bin", dtype="<u8")
    assert first_starts[0] != 0, "a document crosses the shard boundary"
    data = load_pretrain(parse_config({"data": {"train": [str(tmp_path / "pt")]}}))
    n = len(w["flat"])
    assert len(data) == -(-n // seq_len) and data.seq_len == seq_len
    assert data.content_tokens == n and data.documents == len(docs)
    trained = data.trained_per_row()
    for r in range(len(data)):
        ids, pos, labels = data.row(r)
        want = reference_row(w["flat"], w["starts"], seq_len, r)
        assert (ids.tolist(), pos.tolist(), labels.tolist()) == want, r
        assert trained[r] == int((labels[1:] != IGNORE_INDEX).sum()), r
    assert data.content_per_row().sum() == n
    # a row with a document start inside, and the last row with padding
    ids, pos, labels = data.row(len(data) - 1)
    assert labels[-1] == IGNORE_INDEX and pos[-1] > 0 and ids[-1] == PAD
    # max_samples keeps the first rows
    few = load_pretrain(parse_config({"data": {"train": [str(tmp_path / "pt")], "max_samples": 3}}))
    assert len(few) == 3 and few.content_tokens == 3 * seq_len
    assert few.documents == len([s for s in w["starts"] if s < 3 * seq_len])


def test_collate_stacks_rows_as_int64(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from csft_train.pt_data import collate_pt

    write_pretrain(tmp_path / "pt", corpus(6), 8, rows_per_shard=4)
    data = load_pretrain(parse_config({"data": {"train": [str(tmp_path / "pt")]}}))
    batch = collate_pt(data, [[2], [0]])
    assert set(batch) == {"input_ids", "position_ids", "labels"}
    for k, v in batch.items():
        assert v.dtype == torch.long and v.shape == (2, 8), k
    assert batch["input_ids"][0].tolist() == data.row(2)[0].tolist()
    assert batch["labels"][1].tolist() == data.row(0)[2].tolist()


def test_bad_folders_are_errors_naming_the_file(tmp_path: Path) -> None:
    def load(*folders: Path) -> Any:
        return load_pretrain(parse_config({"data": {"train": [str(f) for f in folders]}}))

    good = tmp_path / "good"
    write_pretrain(good, corpus(12), 16, rows_per_shard=5)
    with pytest.raises(FileNotFoundError, match=r"nothing[/\\]manifest\.json"):
        load(tmp_path / "nothing")
    bad = tmp_path / "bad"
    write_pretrain(bad, corpus(12), 16, rows_per_shard=5)
    shard = bad / "shard-00001.bin"
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(ValueError, match=r"bad[/\\]shard-00001\.bin: \d+ bytes, expected"):
        load(good, bad)
    (bad / "shard-00001.docs.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"shard-00001\.docs\.bin"):
        load(bad)
    sft = tmp_path / "sft"
    write_pretrain(sft, corpus(3), 16, rows_per_shard=5)
    m = json.loads((sft / "manifest.json").read_text())
    (sft / "manifest.json").write_text(json.dumps({**m, "kind": "sft"}))
    with pytest.raises(ValueError, match=r"sft[/\\]manifest\.json: not a pretrain manifest"):
        load(sft)
    other = tmp_path / "other"
    write_pretrain(other, corpus(12), 32, rows_per_shard=5)
    with pytest.raises(ConfigError, match=r"good has seq_len 16 but .*other has 32"):
        load(good, other)


# ---------------------------------------------------------------------------------------------
# Training (torch)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("pt") / "model"
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def repetitive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Documents that each repeat one of a few short patterns: easy to learn."""
    rng = np.random.default_rng(1)
    patterns = [list(range(2 + 5 * k, 7 + 5 * k)) for k in range(4)]
    docs = [patterns[int(rng.integers(4))] * int(rng.integers(2, 8)) for _ in range(60)]
    folder = tmp_path_factory.mktemp("pt") / "corpus"
    write_pretrain(folder, docs, 32, rows_per_shard=20)
    return folder


def tables(model: Path, data: Path, out: Path, **train: Any) -> dict[str, dict[str, Any]]:
    t: dict[str, Any] = {
        "output_dir": str(out),
        "learning_rate": 1e-2,
        "epochs": 1.0,
        "per_device_batch_size": 4,
        "gradient_accumulation_steps": 2,
        "warmup_ratio": 0.1,
        "logging_steps": 2,
        "save_steps": 0,
        "device": "cpu",
        "save_final": False,
    }
    t.update(train)
    return {"model": {"path": str(model)}, "data": {"train": [str(data)]}, "train": t}


def test_each_document_of_a_row_sees_only_itself(model_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from csft_train.pt_data import collate_pt

    write_pretrain(tmp_path / "pt", corpus(12), 16, rows_per_shard=5)
    data = load_pretrain(parse_config({"data": {"train": [str(tmp_path / "pt")]}}))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), attn_implementation="sdpa")
    rows = [r for r in range(len(data)) if (data.row(r)[1] == 0).sum() >= 3]
    assert rows, "a row with several segments"
    batch = collate_pt(data, [[r] for r in rows])
    labels = batch.pop("labels")
    with torch.no_grad():
        packed = model(**batch, use_cache=False).logits
        for b in range(len(rows)):
            pos = batch["position_ids"][b]
            bounds = [*(pos == 0).nonzero().flatten().tolist(), len(pos)]
            for a, z in itertools.pairwise(bounds):
                alone = model(input_ids=batch["input_ids"][b : b + 1, a:z], use_cache=False).logits
                torch.testing.assert_close(packed[b : b + 1, a:z], alone, atol=1e-5, rtol=1e-4)
                assert labels[b, a] == IGNORE_INDEX or a == 0


def test_loss_falls_on_a_repetitive_corpus(
    model_dir: Path, repetitive: Path, tmp_path: Path
) -> None:
    from csft_train.pt import train_pt

    cfg = parse_config(tables(model_dir, repetitive, tmp_path / "run", epochs=3.0))
    summary = train_pt(cfg)
    rows = metrics(tmp_path / "run")
    data = load_pretrain(cfg)
    per_epoch = -(-len(data) // 8)
    assert summary["steps"] == 3 * per_epoch and summary["sequences"] == len(data)
    assert summary["trained_tokens"] == 3 * int(data.trained_per_row().sum())
    first, last = rows[0]["loss"], rows[-1]["loss"]
    assert first > 3.0 and last < first - 1.5, (first, last)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == summary["steps"]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(
    model_dir: Path, repetitive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from csft_train import engine as E
    from csft_train.pt import train_pt

    def cfg(out: str) -> Any:
        return parse_config(
            tables(model_dir, repetitive, tmp_path / out, max_steps=6, save_steps=4)
        )

    train_pt(cfg("full"))
    orig_save = E.Loop.save

    def crash_after_first_checkpoint(self: E.Loop, step: int) -> Path:
        orig_save(self, step)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(E.Loop, "save", crash_after_first_checkpoint)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_pt(cfg("cut"))
    assert (tmp_path / "cut" / "checkpoint-4").is_dir()
    monkeypatch.setattr(E.Loop, "save", orig_save)
    train_pt(cfg("cut"))
    a = torch.load(tmp_path / "full" / "checkpoint-6" / "model.pt")
    b = torch.load(tmp_path / "cut" / "checkpoint-6" / "model.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["loss"] for r in metrics(tmp_path / "full")] == [
        r["loss"] for r in metrics(tmp_path / "cut")
    ]


def test_cli_pt_end_to_end_and_errors(
    model_dir: Path, repetitive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from csft_data.cli import main

    t = tables(model_dir, repetitive, tmp_path / "cli", max_steps=2, save_final=True)
    assert main(["train", "pt", str(write_config(tmp_path / "pt.toml", t))]) == 0
    err = capsys.readouterr().err
    assert "pt: " in err and "sequences of 32 tokens" in err and "loss" in err
    run = tmp_path / "cli"
    for name in ("metrics.jsonl", "metrics.json", "config.toml", "final/config.json"):
        assert (run / name).is_file(), name
    bad = tmp_path / "bad"
    write_pretrain(bad, corpus(12), 16, rows_per_shard=5)
    (bad / "shard-00000.bin").write_bytes(b"\0" * 12)
    t = tables(model_dir, bad, tmp_path / "bad-run", max_steps=2)
    assert main(["train", "pt", str(write_config(tmp_path / "bad.toml", t))]) == 2
    assert "shard-00000.bin: 12 bytes, expected" in capsys.readouterr().err
    # ids the model has no embedding for: the shards were made for another tokenizer
    big = tmp_path / "big"
    write_pretrain(big, [[VOCAB + 5, 3, 4]] * 8, 16, rows_per_shard=5)
    t = tables(model_dir, big, tmp_path / "big-run", max_steps=1)
    assert main(["train", "pt", str(write_config(tmp_path / "big.toml", t))]) == 2
    assert f"token id {VOCAB + 5}" in capsys.readouterr().err


@pytest.mark.slow
def test_two_ranks_equal_one_process_with_the_global_batch(
    model_dir: Path, repetitive: Path, tmp_path: Path
) -> None:
    """``--nproc 2`` under gloo (DDP), 2 ranks × 4 rows: the losses and final weights of one
    process with 8 rows."""
    import os
    import subprocess
    import sys

    import torch
    from safetensors.torch import load_file

    from csft_train.pt import train_pt

    def run(out: Path, batch: int) -> dict[str, dict[str, Any]]:
        t = tables(model_dir, repetitive, out, max_steps=3, per_device_batch_size=batch)
        t["train"].update(save_final=True, logging_steps=1, gradient_accumulation_steps=1)
        t["dist"] = {"strategy": "ddp"}
        return t

    train_pt(parse_config(run(tmp_path / "one", 8)))
    cfg = write_config(tmp_path / "two.toml", run(tmp_path / "two", 4))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    argv = [sys.executable, "-m", "csft_data", "train", "pt", str(cfg), "--nproc", "2"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "× 2 ranks (ddp)" in proc.stderr
    l1 = [r["loss"] for r in metrics(tmp_path / "one")]
    l2 = [r["loss"] for r in metrics(tmp_path / "two")]
    assert l2 == pytest.approx(l1, rel=1e-4)
    w1 = load_file(str(tmp_path / "one" / "final" / "model.safetensors"))
    w2 = load_file(str(tmp_path / "two" / "final" / "model.safetensors"))
    assert sorted(w1) == sorted(w2)
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=1e-5, rtol=1e-4), k
