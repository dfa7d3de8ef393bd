"""The OpenAI-compatible judge (``csft_train.evaluate.judge.openai_judge``) against a local
``/v1/chat/completions`` server started here on 127.0.0.1: replies in item order at any
concurrency, the API key header, retries of 503s, 429s, timeouts and refused connections with a
bounded number of attempts, no retry of a 400, errors naming the URL and the item,
``csft-data eval judge --judge-url`` end to end, and credentials (the key, a URL's
``user:password``, key-like query parameters) kept out of every error and log line even when the
server echoes the request's headers."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from _chat_server import QuietHandler, serve

pytest.importorskip("csft_train")

from csft_train.evaluate.judge import JudgeError, judge_answers, judge_prompt, openai_judge

_ANSWER = re.compile(r"【回答】\n答案(\d+)")


def score_of(n: int) -> int:
    """The score the server gives answer ``答案{n}``."""
    return n % 10 + 1


@dataclass
class Judge:
    """What the local server does: answer ``答案{n}`` gets ``评分：score_of(n)``; the first
    ``fail_first[n]`` requests for it get ``fail_status``; answers in ``always`` always get that
    (status, body); answers in ``echo`` get that status with the request's path and headers in
    the body (as a careless server or proxy does); ``slow[n]`` seconds of delay on the first
    request for it. ``auth`` and ``paths``: what each request sent."""

    key: str | None = None
    fail_first: dict[int, int] = field(default_factory=dict)
    fail_status: int = 503
    always: dict[int, tuple[int, str]] = field(default_factory=dict)
    slow: dict[int, float] = field(default_factory=dict)
    echo: dict[int, int] = field(default_factory=dict)
    calls: dict[int, int] = field(default_factory=dict)
    auth: list[str | None] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    models: set[str] = field(default_factory=set)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(judge: Judge) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with judge.lock:
                judge.auth.append(self.headers.get("Authorization"))
                judge.paths.append(self.path)
            if self.path.split("?")[0] != "/v1/chat/completions":
                self.reply(404, '{"error": "no such path"}')
                return
            if judge.key is not None and self.headers.get("Authorization") != f"Bearer {judge.key}":
                self.reply(401, '{"error": {"message": "invalid api key"}}')
                return
            assert req["temperature"] == 0 and req["messages"][0]["role"] == "user"
            found = _ANSWER.search(req["messages"][0]["content"])
            assert found is not None
            n = int(found.group(1))
            with judge.lock:
                judge.models.add(req["model"])
                judge.calls[n] = judge.calls.get(n, 0) + 1
                attempt = judge.calls[n]
                judge.in_flight += 1
                judge.most_in_flight = max(judge.most_in_flight, judge.in_flight)
            # Later items answer sooner, so replies arrive out of order.
            time.sleep(0.002 * (20 - n % 20))
            if attempt == 1 and n in judge.slow:
                time.sleep(judge.slow[n])
            headers = None
            if n in judge.echo:
                status = judge.echo[n]
                if status >= 500:  # the raw header block
                    body = f"POST {self.path}\n{self.headers}"
                else:
                    body = json.dumps({"error": "bad", "path": self.path, **dict(self.headers)})
            elif n in judge.always:
                status, body = judge.always[n]
            elif attempt <= judge.fail_first.get(n, 0):
                status, body = judge.fail_status, "upstream overloaded"
                headers = {"Retry-After": "0"}
            else:
                text = f"答案{n}的理由。\n评分：{score_of(n)}"
                status, body = 200, json.dumps({"choices": [{"message": {"content": text}}]})
            with judge.lock:  # before replying: the client may send its next request at once
                judge.in_flight -= 1
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client timeout
                self.reply(status, body, headers)

    return Handler


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib would send 127.0.0.1 through an http_proxy of the environment."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[tuple[str, Judge]]:
    """(base URL ``http://127.0.0.1:PORT/v1``, its :class:`Judge`, to configure per test)."""
    judge = Judge()
    with serve(_handler(judge)) as url:
        yield url, judge


def items(n: int) -> list[dict[str, Any]]:
    return [{"id": f"a{k}", "question": "头痛三天怎么办", "answer": f"答案{k}"} for k in range(n)]


def test_replies_come_back_in_item_order_at_any_concurrency(
    server: tuple[str, Judge], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, judge = server
    judge.key = "sekret"
    judge.fail_first = {k: 1 for k in range(0, 23, 3)}  # one 503 for every third item
    monkeypatch.setenv("JUDGE_KEY", "sekret")
    from csft_train.evaluate.judge import api_key_from_env

    key = api_key_from_env("JUDGE_KEY")
    want = [score_of(k) for k in range(23)]
    outputs = []
    for concurrency in (1, 4, 16):
        judge.calls.clear()
        judge.most_in_flight = 0
        fn = openai_judge(url + "/", "judge-x", api_key=key, concurrency=concurrency, backoff=0.001)
        rows, summary = judge_answers(items(23), fn)
        assert [r["id"] for r in rows] == [f"a{k}" for k in range(23)]
        assert [r["score"] for r in rows] == want
        assert summary == {"items": 23, "scored": 23, "unparsed": 0, "mean": sum(want) / 23}
        # The failed first attempts were retried once, nothing else was sent twice.
        assert judge.calls == {k: 2 if k % 3 == 0 else 1 for k in range(23)}
        assert 1 <= judge.most_in_flight <= concurrency
        outputs.append(rows)
    assert outputs[0] == outputs[1] == outputs[2]
    assert judge.most_in_flight > 1  # concurrency 16 did overlap requests
    assert judge.models == {"judge-x"}


def test_retry_after_429_and_a_timeout(server: tuple[str, Judge]) -> None:
    url, judge = server
    judge.fail_first = {1: 2}
    judge.fail_status = 429
    judge.slow = {2: 1.5}
    fn = openai_judge(url, "x", concurrency=2, retries=2, backoff=0.001, timeout=0.5)
    replies = fn([judge_prompt("q", f"答案{k}") for k in range(3)])
    assert replies == [f"答案{k}的理由。\n评分：{score_of(k)}" for k in range(3)]
    assert judge.calls == {0: 1, 1: 3, 2: 2}


def test_a_persistent_400_is_not_retried_and_names_url_and_item(
    server: tuple[str, Judge],
) -> None:
    url, judge = server
    judge.always = {2: (400, '{"error": {"message": "model x does not exist"}}')}
    fn = openai_judge(url, "x", concurrency=3, retries=3, backoff=0.001)
    with pytest.raises(JudgeError) as err:
        judge_answers(items(5), fn)
    msg = str(err.value)
    assert f"{url}/chat/completions" in msg
    assert "item 2 (id 'a2')" in msg
    assert "HTTP 400 Bad Request" in msg and "model x does not exist" in msg
    assert "after 1 attempt)" in msg
    assert judge.calls[2] == 1
    assert err.value.index == 2 and err.value.item_id == "a2" and err.value.attempts == 1


def test_a_failure_stops_the_retries_in_flight(server: tuple[str, Judge]) -> None:
    url, judge = server
    judge.fail_first = {0: 99}  # would be retried 5 times over 6+ seconds
    judge.always = {1: (400, "bad")}
    fn = openai_judge(url, "x", concurrency=2, retries=5, backoff=0.2)
    start = time.monotonic()
    with pytest.raises(JudgeError, match=r"item 1: HTTP 400 Bad Request: bad"):
        fn([judge_prompt("q", f"答案{k}") for k in range(4)])
    assert time.monotonic() - start < 2.0
    assert judge.calls[0] <= 2 and 2 not in judge.calls and 3 not in judge.calls


def test_a_missing_key_is_a_401_and_not_retried(server: tuple[str, Judge]) -> None:
    url, judge = server
    judge.key = "sekret"
    with pytest.raises(JudgeError, match=r"item 0 \(id 'a0'\): HTTP 401 .*invalid api key"):
        judge_answers(items(1), openai_judge(url, "x", retries=3, backoff=0.001))
    with pytest.raises(JudgeError, match="HTTP 401"):
        judge_answers(items(1), openai_judge(url, "x", api_key="wrong", backoff=0.001))


def test_retries_are_bounded(server: tuple[str, Judge]) -> None:
    url, judge = server
    judge.fail_first = {0: 99}
    fn = openai_judge(url, "x", retries=2, backoff=0.001)
    with pytest.raises(JudgeError) as err:
        fn([judge_prompt("q", "答案0")])
    assert "item 0: HTTP 503 Service Unavailable: upstream overloaded (after 3 attempts)" in str(
        err.value
    )
    assert judge.calls == {0: 3}


def test_a_refused_connection_is_retried_then_named() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(JudgeError, match=r"127\.0\.0\.1:\d+/v1/chat/completions failed for item 0 "
                       r"\(id 'a0'\): connection failed: .*\(after 2 attempts\)"):  # fmt: skip
        judge_answers(items(1), openai_judge(url, "x", retries=1, backoff=0.001))


def test_a_malformed_reply_and_bad_options(server: tuple[str, Judge]) -> None:
    from csft_data import ConfigError

    url, judge = server
    judge.always = {0: (200, '{"choices": []}')}
    with pytest.raises(JudgeError, match=r"HTTP 200: unexpected reply \{\"choices\": \[\]\}"):
        openai_judge(url, "x")([judge_prompt("q", "答案0")])
    assert judge.calls == {0: 1}
    for bad in ({"concurrency": 0}, {"retries": -1}, {"backoff": -1.0}):
        with pytest.raises(ConfigError):
            openai_judge(url, "x", **bad)
    assert openai_judge(url, "x")([]) == []


def test_eval_judge_with_a_url_runs_end_to_end(
    server: tuple[str, Judge],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from csft_data.cli import main

    url, judge = server
    judge.key = "sekret"
    judge.fail_first = {1: 1}
    judge.always = {3: (200, json.dumps({"choices": [{"message": {"content": "无法评价"}}]}))}
    monkeypatch.setenv("JUDGE_KEY", "sekret")
    answers = tmp_path / "answers.jsonl"
    rows = [
        {"id": f"a{n}", "instruction": "头痛三天怎么办", "output": f"答案{n}"} for n in range(6)
    ]
    answers.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    out = tmp_path / "judge.jsonl"
    argv = ["eval", "judge", "--answers", str(answers), "--judge-url", url, "--judge-name", "x",
            "--api-key-env", "JUDGE_KEY", "--concurrency", "3", "--retries", "2",
            "--backoff", "0.001", "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    got = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert [g["id"] for g in got] == [f"a{n}" for n in range(6)]
    assert [g["score"] for g in got] == [score_of(n) if n != 3 else None for n in range(6)]
    assert got[0]["judgement"] == f"答案0的理由。\n评分：{score_of(0)}"
    scored = [score_of(n) for n in range(6) if n != 3]
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {"items": 6, "scored": 5, "unparsed": 1, "mean": sum(scored) / 5}
    assert judge.calls[1] == 2 and judge.models == {"x"}

    # A request that fails for good: exit 2, the URL and the item on stderr.
    judge.always = {4: (400, '{"error": "bad request"}')}
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{url}/chat/completions" in err and "item 4 (id 'a4')" in err and "HTTP 400" in err
    monkeypatch.delenv("JUDGE_KEY")
    judge.always = {}
    assert main(argv) == 2
    assert "HTTP 401" in capsys.readouterr().err


KEY = "sk-live-7f3a9c1e55d04b2a"
QUERY_KEY = "q-9d8c7b6a5f4e"


def _no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, (secret, text)


def test_redact_keys_headers_urls_and_query_parameters() -> None:
    from csft_train.evaluate.judge import redact

    text = (
        f"Authorization: Bearer {KEY} x-api-key: abc123 "
        '{"authorization": "Basic dXNlcjpwYXNzd29yZA=="} '
        f"https://alice:pa55@host:8080/v1?api-version=2&key={QUERY_KEY}&token=t0k "
        f"echo {KEY}."
    )
    got = redact(text, [KEY])
    _no_secret(got, KEY, "abc123", "dXNlcjpwYXNzd29yZA", "alice", "pa55", QUERY_KEY, "t0k")
    assert "Authorization: Bearer ***" in got and "x-api-key: ***" in got
    assert "https://***@host:8080/v1?api-version=2&key=***&token=***" in got
    assert "echo ***." in got
    assert redact("HTTP 400 Bad Request: Basic auth needed") == (
        "HTTP 400 Bad Request: Basic auth needed"
    )


def test_echoed_headers_never_leak_the_key(server: tuple[str, Judge]) -> None:
    url, judge = server
    judge.key = KEY
    judge.echo = {0: 503, 1: 400}
    logged: list[str] = []
    fn = openai_judge(
        f"{url}?api-version=2024&key={QUERY_KEY}",
        "x",
        api_key=KEY + "\n",  # as $(cat key.txt) gives it: the line break is dropped
        retries=2,
        backoff=0.001,
        log=logged.append,
    )
    with pytest.raises(JudgeError) as err:  # retried, then failed for good
        fn([judge_prompt("q", "答案0")])
    assert judge.calls == {0: 3} and judge.auth == [f"Bearer {KEY}"] * 3
    # The query stays on the URL (after the path), the key goes in the header only.
    assert judge.paths[0] == f"/v1/chat/completions?api-version=2024&key={QUERY_KEY}"
    with pytest.raises(JudgeError) as err400:
        fn([judge_prompt("q", "答案1")])
    assert len(logged) == 2 and "retry 1 of 2" in logged[0]
    for text in [str(err.value), str(err400.value), err.value.url, *logged]:
        _no_secret(text, KEY, QUERY_KEY)
    msg = str(err400.value)
    assert f"judge request to {url}/chat/completions?api-version=2024&key=*** failed" in msg
    assert '"Authorization": "Bearer ***"' in msg and "HTTP 400 Bad Request" in msg
    assert "Authorization: Bearer ***" in str(err.value) and "after 3 attempts" in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_url_credentials_go_as_basic_auth_and_are_never_shown(
    server: tuple[str, Judge],
) -> None:
    import base64

    from csft_data import ConfigError

    url, judge = server
    secret_url = url.replace("http://", "http://alice:pa%40ss-w0rd@")
    token = base64.b64encode(b"alice:pa@ss-w0rd").decode()
    judge.echo = {1: 400}
    fn = openai_judge(secret_url, "x", retries=0)
    assert fn([judge_prompt("q", "答案0")]) == [f"答案0的理由。\n评分：{score_of(0)}"]
    with pytest.raises(JudgeError) as err:
        fn([judge_prompt("q", "答案1")])
    assert judge.auth == [f"Basic {token}"] * 2
    msg = str(err.value)
    _no_secret(msg, "pa%40ss-w0rd", "pa@ss-w0rd", "alice", token)
    assert f"judge request to {url}/chat/completions failed for item 0" in msg
    for bad, kw in [
        (secret_url, {"api_key": KEY}),  # two credentials: which one?
        ("ftp://alice:pa%40ss-w0rd@example.org/v1", {}),
        (f"{url}/v1?token={QUERY_KEY}".replace("http:", "file:"), {}),
        (url, {"api_key": KEY[:8] + "\r\nX-Injected: 1"}),
    ]:
        with pytest.raises(ConfigError) as cfg_err:
            openai_judge(bad, "x", **kw)
        _no_secret(str(cfg_err.value), "pa%40ss-w0rd", "pa@ss-w0rd", QUERY_KEY, KEY[:8])


def test_eval_judge_prints_no_credential(
    server: tuple[str, Judge],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from csft_data.cli import main

    url, judge = server
    judge.key = KEY
    judge.fail_first = {}
    judge.echo = {1: 502, 2: 400}
    monkeypatch.setenv("JUDGE_KEY", KEY)
    answers = tmp_path / "answers.jsonl"
    rows = [{"id": f"a{n}", "instruction": "头痛", "output": f"答案{n}"} for n in range(3)]
    answers.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    out = tmp_path / "j.jsonl"
    base = ["eval", "judge", "--answers", str(answers), "--judge-name", "x", "--concurrency",
            "1", "--retries", "1", "--backoff", "0.001", "--output", str(out)]  # fmt: skip
    argv = [*base, "--judge-url", f"{url}?key={QUERY_KEY}", "--api-key-env", "JUDGE_KEY"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    _no_secret(out + err, KEY, QUERY_KEY)
    assert "judge: item 1: HTTP 502 Bad Gateway" in err and "retry 1 of 1" in err
    assert "Bearer ***" in err and "item 1 (id 'a1')" in err and "after 2 attempts" in err

    judge.key = None
    judge.echo = {0: 400}
    assert main([*base, "--judge-url", url.replace("//", "//bob:hunter2-pw@")]) == 2
    out, err = capsys.readouterr()
    _no_secret(out + err, "hunter2-pw", "bob:")
    assert f"{url}/chat/completions failed for item 0 (id 'a0'): HTTP 400" in err
    assert "Basic ***" in err
