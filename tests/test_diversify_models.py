"""The real generators of ``csft-data diversify``: a tiny local model built from a config
(batched greedy and seeded sampled decoding, the qwen template, the reply cache, exit 1 when the
target is not reached) and a local server that speaks the chat-completions protocol (history as
user/assistant turns, a seed per request, 429 and 503 retried, a 400 not, the key sent as a
header and never shown, a re-run sending nothing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from _chat_server import serve
from _diversify_common import KEY, Writer, writer_handler
from _train_common import tiny_model
from csft_data import CsftDataError, diversify
from csft_data.cli import main
from csft_data.diversifier import PROMPTS, make_generator

pytest.importorskip("csft_train")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib would send 127.0.0.1 through an http_proxy of the environment."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[tuple[str, Writer]]:
    w = Writer()
    with serve(writer_handler(w)) as url:
        yield url, w


def test_endpoint_generator_retries_and_resumes_from_the_cache(
    server: tuple[str, Writer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, w = server
    monkeypatch.setenv("GEN_KEY", KEY)
    logged: list[str] = []
    out = tmp_path / "i.jsonl"
    kw = dict(model="gen-x", api_key_env="GEN_KEY", target=8, batch=4, progress=False)
    extra = {"backoff": 0.001, "concurrency": 3}
    result = diversify(out, generator=f"url:{url}", generator_kwargs=extra, log=logged.append, **kw)
    assert result.reached and result.model == f"url:{url}#gen-x"
    body = w.bodies[0]
    assert body["model"] == "gen-x" and body["temperature"] == 0.7 and body["top_p"] == 0.95
    roles = [m["role"] for m in body["messages"]]  # type: ignore[attr-defined]
    assert roles == ["user", "assistant"] * (len(roles) // 2) + ["user"]
    assert body["messages"][-1]["content"].endswith(PROMPTS["zh"])  # type: ignore[index]
    retried = {s for s, n in w.calls.items() if n > 1}
    assert retried and all(s % 3 == 0 or s % 5 == 0 for s in retried)
    assert all(n <= 2 for n in w.calls.values())
    assert any("HTTP 429" in line for line in logged) and any("HTTP 503" in line for line in logged)
    data = out.read_bytes()
    # A re-run sends nothing and writes the same bytes.
    sent = len(w.bodies)
    again = diversify(out, generator=f"url:{url}", generator_kwargs=extra, **kw)
    assert len(w.bodies) == sent and again.cache["misses"] == 0 and out.read_bytes() == data
    for text in [data.decode(), *logged, json.dumps(result.summary())]:
        assert KEY not in text


def test_endpoint_errors_name_the_url_and_hide_the_key(
    server: tuple[str, Writer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, w = server
    w.always = 400
    with pytest.raises(CsftDataError, match=r"HTTP 401 Unauthorized.*\(after 1 attempt\)") as err:
        diversify(tmp_path / "o.jsonl", generator=f"url:{url}", model="m", progress=False)
    assert f"{url}/chat/completions" in str(err.value)  # no key given: not retried
    base = ["diversify", "-o", str(tmp_path / "o.jsonl"), "--generator", f"url:{url}"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEN_KEY", KEY)
        assert main([*base, "--model", "m", "--api-key-env", "GEN_KEY", "--retries", "0"]) == 2
    err_text = capsys.readouterr().err
    assert "HTTP 400" in err_text and "Bearer ***" in err_text and KEY not in err_text
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_with_an_endpoint_end_to_end(
    server: tuple[str, Writer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, w = server
    w.key = None
    out = tmp_path / "i.jsonl"
    argv = ["diversify", "-o", str(out), "--generator", f"url:{url}", "--model", "m",
            "--target", "5", "--scenario", "multi", "--backoff", "0.001",
            "--output-format", "json"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["scenarios"]["multi"]["accepted"] == 5 and "single" not in summary["scenarios"]
    rows = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert [r["scenario"] for r in rows] == ["multi"] * 11  # 6 seeds, 5 generated


@pytest.fixture(scope="module")
def model_dir(tokenizer_json: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return tiny_model(tokenizer_json, tmp_path_factory.mktemp("generator"))


def test_a_tiny_local_model_generates_through_the_cache(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = make_generator(
        f"local:{model_dir}", template="qwen", max_new_tokens=6, temperature=0.0, device="cpu"
    )
    prompt = gen.render(["问题\n" + PROMPTS["zh"], "回答", "扩展\n" + PROMPTS["zh"]])
    assert prompt.count("<|im_start|>user") == 2 and prompt.endswith("<|im_start|>assistant\n")
    greedy = gen([["请像医生一样回答。"]] * 3, [1, 2, 3])
    assert len(greedy) == 3 and greedy[0] == greedy[1] == greedy[2]  # greedy: seeds unused

    out = tmp_path / "i.jsonl"
    argv = ["diversify", "-o", str(out), "--generator", f"local:{model_dir}", "--template",
            "qwen", "--target", "3", "--max-steps", "4", "--batch", "2", "--max-new-tokens",
            "8", "--temperature", "0.9", "--device", "cpu", "--output-format", "json"]  # fmt: skip
    assert main(argv) == 1  # a random model writes nothing acceptable: the target is missed
    first = json.loads(capsys.readouterr().out)
    assert {s["steps"] for s in first["scenarios"].values()} == {4}
    assert first["cache"] == {"hits": 0, "misses": 8}
    data = out.read_bytes(), (tmp_path / "i.rejected.jsonl").read_bytes()
    assert main(argv) == 1
    assert json.loads(capsys.readouterr().out)["cache"] == {"hits": 8, "misses": 0}
    # Sampled decoding is seeded: a fresh cache gives the same replies.
    fresh = [*argv, "--cache", str(tmp_path / "fresh")]
    fresh[2] = str(tmp_path / "j.jsonl")
    assert main(fresh) == 1
    capsys.readouterr()
    again = (tmp_path / "j.jsonl").read_bytes(), (tmp_path / "j.rejected.jsonl").read_bytes()
    assert again == data
