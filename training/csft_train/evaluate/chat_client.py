"""An OpenAI-compatible chat-completions client (``urllib``: no extra dependency), shared by the
judge (``judge.py``) and ``csft-data diversify``'s endpoint generator. It sends requests
``concurrency`` at a time, retries transient failures (HTTP 429 and 5xx, refused or dropped
connections, timeouts) with exponential backoff and the server's ``Retry-After``, and stops the
batch with a :class:`ChatError` naming the URL, the request and the reply when one fails for
good. What a request asks (the prompt, the rubric, the sampling settings) is the caller's; this
module knows only the protocol.

Credentials never reach a message: the key, ``Bearer``/``Basic`` values and
``Authorization``-like header values (a server or proxy may echo the request's headers in an
error reply), the user and password of a ``https://user:pass@host/…`` URL (sent as HTTP Basic
authentication, not as part of the URL) and key-like query parameters (``key=``, ``api_key=``,
``token=``, …) are replaced by ``***`` in every :class:`ChatError`, retry log line and error
(:func:`redact`).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, ClassVar, TypeVar

from csft_data import ConfigError, CsftDataError

#: Requests → replies in order; a request is its body beyond the model and the shared settings:
#: ``messages`` and any per-request field (``seed``, …).
ChatFn = Callable[[Sequence[Mapping[str, Any]]], list[str]]

#: What :func:`redact` writes instead of a secret.
REDACTED = "***"

_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#]*@")
_QUERY_SECRET = re.compile(
    r"(?i)\b((?:api[-_]?key|apikey|key|access[-_]?token|refresh[-_]?token|id[-_]?token|token"
    r"|auth|secret|client[-_]?secret|password|passwd|pwd|sig|signature)=)[^&#\s\"'<>,;]+"
)
_HEADER_SECRET = re.compile(
    r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key|x-goog-api-key|x-auth-token)"
    r"([\"']?\s*[:=]\s*[\"']?)((?:bearer|basic|token|digest)\s+)?[^\s\"',;}]+"
)
_SCHEME_SECRET = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;}]+|\b(basic)\s+[A-Za-z0-9+/=]{8,}")


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with every occurrence of the ``secrets`` (an API key, a URL's password, …), the
    values of ``Bearer``/``Basic`` credentials and ``Authorization``-like headers, the user
    and password of URLs and key-like query parameters replaced by ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _HEADER_SECRET.sub(lambda m: f"{m[1]}{m[2]}{m[3] or ''}{REDACTED}", text)
    text = _SCHEME_SECRET.sub(lambda m: f"{m.group(1) or m.group(2)} {REDACTED}", text)
    return _QUERY_SECRET.sub(rf"\1{REDACTED}", text)


_E = TypeVar("_E", bound="ChatError")


class ChatError(CsftDataError):
    """A request that failed for good: ``url``, the 0-based ``index`` of the request (and the
    ``item_id`` of what it was about, once the caller knows it), ``reason`` (HTTP status and
    reply excerpt, or the connection error) and the number of ``attempts`` made. ``url`` and
    ``reason`` come already redacted (:func:`redact`). Subclasses name their client (``what``)."""

    what: ClassVar[str] = "chat"

    def __init__(
        self, url: str, index: int, reason: str, attempts: int, item_id: Any = None
    ) -> None:
        self.url, self.index, self.reason = url, index, reason
        self.attempts, self.item_id = attempts, item_id
        where = f"item {index}" + (f" (id {item_id!r})" if item_id is not None else "")
        tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
        super().__init__(
            f"{self.what} request to {url} failed for {where}: {reason} (after {tries})"
        )

    def with_item_id(self: _E, item_id: Any) -> _E:
        return type(self)(self.url, self.index, self.reason, self.attempts, item_id)


class _Transient(Exception):
    """A failure worth another attempt; ``wait`` is the server's Retry-After, if any."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class _Stopped(Exception):
    """Another request failed for good: this one gives up without trying again."""


class _Permanent(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_EXCERPT = 300


def _excerpt(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: fall back to the backoff
        return None


def _post_once(url: str, body: bytes, headers: dict[str, str], timeout: float) -> str:
    """One request; the reply's message content, or :class:`_Transient`/:class:`_Permanent`."""
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        try:
            detail = _excerpt(e.read())
        except (OSError, http.client.HTTPException):
            detail = ""
        reason = f"HTTP {e.code} {e.reason}" + (f": {detail}" if detail else "")
        if e.code == 429 or e.code >= 500:
            raise _Transient(reason, _retry_after(e.headers)) from e
        raise _Permanent(reason) from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise _Transient(f"no reply within {timeout:g} s") from e
        raise _Transient(f"connection failed: {e.reason}") from e
    except TimeoutError as e:  # socket.timeout while reading the reply
        raise _Transient(f"no reply within {timeout:g} s") from e
    except (OSError, http.client.HTTPException) as e:  # reset, dropped, TLS, …
        raise _Transient(f"connection failed: {type(e).__name__}: {e}") from e
    try:
        reply = json.loads(raw.decode("utf-8"))
        content = reply["choices"][0]["message"]["content"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError) as e:
        raise _Permanent(f"HTTP {status}: unexpected reply {_excerpt(raw)}") from e
    if content is None:  # e.g. a reasoning model that spent max_tokens before answering
        return ""
    if not isinstance(content, str):
        raise _Permanent(f"HTTP {status}: unexpected reply {_excerpt(raw)}")
    return content


def _endpoint(
    base_url: str, api_key: str | None, what: str = "chat"
) -> tuple[str, dict[str, str], list[str]]:
    """The chat-completions URL (without user info), the auth headers and the secrets to redact
    for ``base_url`` and ``api_key``: a URL's ``user:password@`` is sent as HTTP Basic
    authentication (never in the URL, where a proxy, a log or an error would show it)."""
    key = api_key.strip() if api_key else None
    if key and (not key.isascii() or any(ord(c) < 32 or ord(c) == 127 for c in key)):
        raise ConfigError(
            "the API key holds a line break or a control or non-ASCII character "
            "(check the environment variable; its value is not shown)"
        )
    secrets = [key] if key else []
    parts = urllib.parse.urlsplit(base_url.strip())
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    # The user name is a secret only as the sole credential (``https://TOKEN@host``).
    for raw in (userinfo, password) if colon else (userinfo,):
        secrets += [raw, urllib.parse.unquote(raw)]
    for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if _QUERY_SECRET.fullmatch(f"{name}=x"):
            secrets += [value, urllib.parse.quote(value, safe="")]
    if parts.scheme not in ("http", "https") or not hostport:
        shown = redact(base_url, secrets)
        raise ConfigError(f"{what} URL {shown!r}: expected http(s)://host[:port]/path")
    path = parts.path.rstrip("/") + "/chat/completions"
    url = urllib.parse.urlunsplit((parts.scheme, hostport, path, parts.query, ""))
    headers = {"Content-Type": "application/json"}
    if at:
        if key:
            raise ConfigError(
                f"{what} URL {redact(base_url, secrets)!r} carries credentials and an API key "
                "is given too: give one of them"
            )
        plain = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
        token = base64.b64encode(plain.encode("utf-8")).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
        secrets.append(token)
    elif key:
        headers["Authorization"] = f"Bearer {key}"
    return url, headers, [x for x in secrets if x]


def chat_client(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float = 120.0,
    concurrency: int = 4,
    retries: int = 3,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    log: Callable[[str], None] | None = None,
    error: type[ChatError] = ChatError,
) -> ChatFn:
    """A :data:`ChatFn` calling ``{base_url}/chat/completions``: one request per body fragment
    (``{"messages": [...], ...}``, sent with ``model`` and ``params``, e.g. ``temperature``),
    ``concurrency`` requests at a time; replies (the message content) come back in order.

    A request failing with HTTP 429 or 5xx, a refused or dropped connection or no reply within
    ``timeout`` seconds is tried again up to ``retries`` more times, after ``backoff``·2^k seconds
    (k = 0, 1, …; the server's ``Retry-After`` when longer; at most ``max_backoff``; up to 25%
    jitter), each retry announced to ``log`` if given. Other HTTP errors (400, 401, 404, …) and
    malformed replies are not retried. A request that fails for good raises ``error`` (a
    :class:`ChatError`; the lowest index among the failures) once the requests in flight have
    ended; no request is sent or retried after it.

    ``api_key`` is sent as ``Authorization: Bearer``; a ``user:password@`` in ``base_url`` as
    HTTP Basic authentication (not both). Neither, nor key-like query parameters of the URL,
    appear in any error or log line (:func:`redact`)."""
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    if retries < 0:
        raise ConfigError(f"retries must be 0 or more, got {retries}")
    if backoff < 0 or max_backoff < 0 or timeout <= 0:
        raise ConfigError("backoff and max_backoff must be 0 or more and timeout positive")
    url, headers, secrets = _endpoint(base_url, api_key, error.what)
    shown_url = redact(url, secrets)
    shared = dict(params or {})

    def clean(text: str) -> str:
        return redact(text, secrets)

    def ask(index: int, request: Mapping[str, Any], stop: threading.Event) -> str:
        body = json.dumps({"model": model, **shared, **request}).encode("utf-8")
        for attempt in range(1, retries + 2):
            if stop.is_set():
                raise _Stopped
            # The underlying exceptions are not chained: their text and attributes may hold
            # the URL or the reply unredacted.
            try:
                return _post_once(url, body, headers, timeout)
            except _Permanent as e:
                raise error(shown_url, index, clean(e.reason), attempt) from None
            except _Transient as e:
                if attempt > retries:
                    raise error(shown_url, index, clean(e.reason), attempt) from None
                delay = backoff * 2 ** (attempt - 1) * (1 + random.random() / 4)
                if e.wait is not None:
                    delay = max(delay, e.wait)
                delay = min(delay, max_backoff)
                if log is not None:
                    log(
                        f"{error.what}: item {index}: {clean(e.reason)}; retry {attempt} of "
                        f"{retries} in {delay:.1f} s"
                    )
                stop.wait(delay)
            except Exception as e:  # e.g. a header value urllib refuses: its text may hold it
                reason = clean(f"{type(e).__name__}: {e}")
                raise error(shown_url, index, reason, attempt) from None
        raise AssertionError("unreachable")

    def ask_or_stop(index: int, request: Mapping[str, Any], stop: threading.Event) -> str:
        try:
            return ask(index, request, stop)
        except _Stopped:
            raise
        except BaseException:
            stop.set()  # before this worker takes the next request
            raise

    def run(requests: Sequence[Mapping[str, Any]]) -> list[str]:
        if not requests:
            return []
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=min(concurrency, len(requests)))
        try:
            futures: list[Future[str]] = [
                pool.submit(ask_or_stop, i, r, stop) for i, r in enumerate(requests)
            ]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            if pending:  # a failure: send nothing more, let the requests in flight end
                stop.set()
                for f in pending:
                    f.cancel()
                wait([f for f in futures if not f.cancelled()])
            errors = [f.exception() for f in futures if not f.cancelled()]
            for err in errors:
                if err is not None and not isinstance(err, _Stopped):
                    raise err  # the lowest-index failure
            return [f.result() for f in futures]
        finally:
            stop.set()  # also on Ctrl-C: no more retries
            pool.shutdown(wait=False, cancel_futures=True)

    return run


def api_key_from_env(name: str | None) -> str | None:
    """The API key held by the environment variable ``name`` (never logged), or None."""
    return os.environ.get(name) if name else None
