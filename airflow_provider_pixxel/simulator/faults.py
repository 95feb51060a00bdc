"""Deterministic, seeded fault injection for the Pixxel API simulator.

A :class:`FaultInjector` holds :class:`FaultRule` s; :class:`FaultMiddleware` (a pure ASGI middleware)
asks it, for every HTTP request, whether to inject a fault, and then really injects it at the
connection level when run under uvicorn.

What a client sees for each kind (checked under uvicorn with both its ``httptools`` and ``h11``
protocols, requests 2.34 / urllib3 2, httpx 0.28):

* ``status``: a normal response with that status and the JSON error envelope
  ``{"error": {"code", "message", "details"}}``; a 429 carries ``Retry-After``.
* ``reset``: the connection is closed with a TCP RST before any response byte.
  ``requests`` raises ``requests.exceptions.ConnectionError`` wrapping
  ``urllib3.exceptions.ProtocolError('Connection aborted.', ConnectionResetError(104, ...))``;
  ``httpx`` raises ``httpx.ReadError`` ("[Errno 104] Connection reset by peer"). Both are what a
  client gets from a dropped connection, never an HTTP 500.
* ``truncate``: the status line and headers arrive, with the full ``Content-Length``, then only
  ``truncate_at`` body bytes (default: half) before the server closes the connection. Reading the
  body raises ``requests.exceptions.ChunkedEncodingError`` wrapping ``ProtocolError('Connection
  broken: IncompleteRead(...)')`` (also with ``stream=True`` / ``iter_content``), and
  ``httpx.RemoteProtocolError`` ("peer closed connection without sending complete message body").
* ``slow``: the answer comes ``delay`` seconds late; a client whose read timeout is shorter gets
  ``requests.exceptions.ReadTimeout`` / ``httpx.ReadTimeout``.
* ``expire``: 403 with the S3 XML body ``AccessDenied`` / "Request has expired" (``/files/``
  requests only, like a signed URL used too late).

Rules are matched in the order they were added; the first rule that matches *and* fires (by its
``rate``) wins. Each rule draws from its own random stream seeded by the injector's seed and the
rule's position, so a given seed and request sequence always gives the same faults. ``/ping`` is
only faulted by a rule whose ``path`` pattern matches it: rules without a ``path`` leave it alone,
so a health check still tells whether the simulator is up.

"reset" and "truncate" need the connection's transport. Under uvicorn it is found through the
``send`` callable uvicorn hands to the application (its request-response cycle owns the transport);
this works when the middleware wraps the whole application (``FaultMiddleware(app, injector)``) and
also through Starlette's own middleware wrappers (``app.add_middleware(FaultMiddleware, ...)``).
Elsewhere (for example ``httpx.ASGITransport`` in-process) the middleware raises
:class:`SimulatedConnectionError` instead, which such transports propagate to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import math
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from airflow_provider_pixxel.simulator.signed_urls import FILES_PATH_PREFIX, s3_error_body

__all__ = [
    "FAULT_KINDS",
    "FAULT_STATUSES",
    "FaultInjector",
    "FaultKind",
    "FaultMiddleware",
    "FaultRule",
    "SimulatedConnectionError",
]

FaultKind = Literal["status", "reset", "truncate", "slow", "expire"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
FAULT_STATUSES: dict[int, tuple[str, str]] = {
    429: ("rate_limited", "Too many requests, slow down"),
    500: ("internal_error", "Internal server error"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service temporarily unavailable"),
    504: ("gateway_timeout", "Gateway timeout"),
}
PING_PATH = "/ping"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: How long the middleware waits for the server to notice a connection it broke.
_DISCONNECT_WAIT_SECONDS = 2.0


class SimulatedConnectionError(ConnectionError):
    """Raised in place of a broken connection when the server's transport is not reachable."""


@dataclass
class FaultRule:
    """One kind of fault, where it applies and how often.

    ``path`` is a regular expression searched in the request path (anchor it with ``^...$`` for an
    exact match; ``None`` means every path except ``/ping``). ``methods`` restricts the HTTP methods
    (``None`` = all). ``rate`` is the probability, per matching request, that the fault fires;
    ``times`` stops the rule after that many injections. Kind-specific settings: ``status`` (for
    ``"status"``: 429, 500, 502, 503 or 504), ``retry_after`` seconds and ``retry_after_form``
    (``"seconds"`` or ``"date"``; 429 always carries ``Retry-After``, default 1 s, other statuses only
    when ``retry_after`` is set), ``truncate_at`` (bytes of body to send; default half the
    ``Content-Length``), ``delay`` (seconds, for ``"slow"``). ``after_app`` (for ``"status"`` and
    ``"reset"``): the API handles the request first and its answer is replaced by the fault, like a
    gateway that times out after the service behind it acted; by default the fault comes first.
    """

    kind: FaultKind
    status: int = 503
    rate: float = 1.0
    path: str | None = None
    methods: frozenset[str] | None = None
    times: int | None = None
    retry_after: float | None = None
    retry_after_form: Literal["seconds", "date"] = "seconds"
    truncate_at: int | None = None
    delay: float = 0.0
    message: str | None = None
    after_app: bool = False
    injected_count: int = field(default=0, compare=False)
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, got {self.kind!r}")
        if self.kind == "status" and self.status not in FAULT_STATUSES:
            raise ValueError(f"status must be one of {sorted(FAULT_STATUSES)}, got {self.status}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must be 0 or more, got {self.times}")
        if self.retry_after_form not in ("seconds", "date"):
            raise ValueError(f"retry_after_form must be 'seconds' or 'date', got {self.retry_after_form!r}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError(f"retry_after must be 0 or more, got {self.retry_after}")
        if self.truncate_at is not None and self.truncate_at < 0:
            raise ValueError(f"truncate_at must be 0 or more, got {self.truncate_at}")
        if self.delay < 0:
            raise ValueError(f"delay must be 0 or more, got {self.delay}")
        if self.after_app and self.kind not in ("status", "reset"):
            raise ValueError(f"after_app applies to status and reset faults, not {self.kind!r}")
        if self.methods is not None:
            self.methods = frozenset(method.upper() for method in self.methods)
        self._pattern = re.compile(self.path) if self.path is not None else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from JSON-like data (``methods`` may be a list); unknown keys are refused."""
        allowed = {name for name in cls.__dataclass_fields__ if not name.startswith("_")} - {"injected_count"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault rule fields: {', '.join(sorted(unknown))}")
        values = dict(data)
        if values.get("methods") is not None:
            values["methods"] = frozenset(values["methods"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, including how many times the rule has fired."""
        return {
            "kind": self.kind,
            "status": self.status,
            "rate": self.rate,
            "path": self.path,
            "methods": sorted(self.methods) if self.methods is not None else None,
            "times": self.times,
            "retry_after": self.retry_after,
            "retry_after_form": self.retry_after_form,
            "truncate_at": self.truncate_at,
            "delay": self.delay,
            "message": self.message,
            "after_app": self.after_app,
            "injected_count": self.injected_count,
        }

    def applies_to(self, method: str, path: str) -> bool:
        """Whether this rule targets the request (ignoring ``rate`` and ``times``)."""
        if self.methods is not None and method.upper() not in self.methods:
            return False
        if self.kind == "expire" and not path.startswith(FILES_PATH_PREFIX):
            return False
        if self.path is None:
            return path != PING_PATH
        if self._pattern is None or self._pattern.pattern != self.path:
            self._pattern = re.compile(self.path)  # the rule's path was changed after creation
        return self._pattern.search(path) is not None

    @property
    def exhausted(self) -> bool:
        """True once the rule has fired ``times`` times."""
        return self.times is not None and self.injected_count >= self.times

    @property
    def response_status(self) -> int | None:
        """The status the client receives for this fault, when the fault decides it."""
        if self.kind == "status":
            return self.status
        if self.kind == "expire":
            return 403
        return None


class FaultInjector:
    """Thread-safe set of :class:`FaultRule` s with a seeded, reproducible choice per request.

    ``injected`` logs every fault fired as ``{"method", "path", "kind", "status"}`` (``status`` is
    ``None`` when the application's own status is kept, as for ``slow`` and ``truncate``).
    """

    def __init__(self, seed: int = 0, *, clock: Callable[[], float] = time.time) -> None:
        self.seed = seed
        self.clock = clock
        self.injected: list[dict[str, Any]] = []
        self._rules: list[tuple[FaultRule, random.Random]] = []
        self._lock = threading.Lock()
        self._paused = 0

    def add(self, rule: FaultRule) -> FaultRule:
        """Append ``rule`` (matched after the rules already added) and return it."""
        with self._lock:
            stream = random.Random(f"pixxel-simulator-faults:{self.seed}:{len(self._rules)}")
            self._rules.append((rule, stream))
        return rule

    def remove(self, rule: FaultRule) -> None:
        """Drop one rule; the others keep their random streams."""
        with self._lock:
            self._rules = [(kept, stream) for kept, stream in self._rules if kept is not rule]

    def clear(self) -> None:
        """Remove every rule and empty the ``injected`` log."""
        with self._lock:
            self._rules.clear()
            self.injected.clear()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No fault fires inside this block, and no rule's random stream moves, so a test can set up
        what it needs (an order to watch) through the API without the faults meant for the run."""
        with self._lock:
            self._paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1

    @property
    def rules(self) -> list[FaultRule]:
        """The rules in matching order (a copy of the list; the rules themselves are live)."""
        with self._lock:
            return [rule for rule, _ in self._rules]

    def choose(self, method: str, path: str) -> FaultRule | None:
        """The fault to inject for this request, or ``None``; records the injection when there is one."""
        with self._lock:
            if self._paused:
                return None
            for rule, stream in self._rules:
                if rule.exhausted or not rule.applies_to(method, path):
                    continue
                if stream.random() >= rule.rate:
                    continue
                rule.injected_count += 1
                self.injected.append(
                    {
                        "method": method.upper(),
                        "path": path,
                        "kind": rule.kind,
                        "status": rule.response_status,
                        "after_app": rule.after_app,
                    }
                )
                return rule
        return None


def _find_transport(send: Callable[..., Any], depth: int = 0) -> asyncio.Transport | None:
    """The server transport behind ``send``: uvicorn's cycle ``send`` is a bound method of an object
    holding ``transport``; Starlette's wrappers are closures over the original ``send``."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "abort") and hasattr(transport, "close"):
        return transport  # type: ignore[no-any-return]
    if depth >= 4:
        return None
    for cell in getattr(send, "__closure__", None) or ():
        try:
            contents = cell.cell_contents
        except ValueError:
            continue
        if callable(contents):
            found = _find_transport(contents, depth + 1)
            if found is not None:
                return found
    return None


def _reset(transport: asyncio.Transport) -> None:
    """Close with a TCP RST (SO_LINGER 0) so the client sees "connection reset by peer"."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Without it a plain close still leaves the client with no response at all.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _wait_for_disconnect(receive: Receive) -> None:
    """Let the server register the broken connection before the application returns, so it does
    not try to answer with a 500 (or log one)."""

    async def drain() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(drain(), _DISCONNECT_WAIT_SECONDS)


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _StreamCut(Exception):
    """Stops the application's body once a truncation has been delivered."""


class FaultMiddleware:
    """Pure ASGI middleware that injects the faults an :class:`FaultInjector` chooses.

    ``sleep`` (default :func:`asyncio.sleep`) is what ``slow`` faults wait with; tests pass a fake.
    A ``slow`` request whose client disconnects during the delay is dropped without running the
    application, so a client timeout does not leave work running on the server.
    """

    def __init__(
        self,
        app: AsgiApp,
        injector: FaultInjector,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.app = app
        self.injector = injector
        self.sleep = sleep

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.injector.choose(scope["method"], scope["path"])
        if rule is not None and rule.after_app:
            await self.app(scope, receive, _discard)
        if rule is None:
            await self.app(scope, receive, send)
        elif rule.kind == "status":
            await self._send_status(rule, send)
        elif rule.kind == "expire":
            body = s3_error_body("AccessDenied", "Request has expired").encode()
            await _send_simple(send, 403, body, b"application/xml")
        elif rule.kind == "reset":
            await self._reset(receive, send)
        elif rule.kind == "truncate":
            await self._truncate(rule, scope, receive, send)
        else:
            await self._slow(rule, scope, receive, send)

    async def _send_status(self, rule: FaultRule, send: Send) -> None:
        code, default_message = FAULT_STATUSES[rule.status]
        body = json.dumps(
            {
                "error": {
                    "code": code,
                    "message": rule.message or default_message,
                    "details": {"simulated": True},
                }
            }
        ).encode()
        extra: list[tuple[bytes, bytes]] = []
        retry_after = (
            rule.retry_after if rule.retry_after is not None else (1.0 if rule.status == 429 else None)
        )
        if retry_after is not None:
            if rule.retry_after_form == "date":
                value = email.utils.formatdate(self.injector.clock() + retry_after, usegmt=True)
            else:
                value = str(math.ceil(retry_after))
            extra.append((b"retry-after", value.encode()))
        await _send_simple(send, rule.status, body, b"application/json", extra)

    async def _reset(self, receive: Receive, send: Send) -> None:
        transport = _find_transport(send)
        if transport is None:
            raise SimulatedConnectionError("simulated connection reset")
        _reset(transport)
        await _wait_for_disconnect(receive)

    async def _truncate(self, rule: FaultRule, scope: Scope, receive: Receive, send: Send) -> None:
        transport = _find_transport(send)
        passthrough = scope["method"].upper() == "HEAD"
        cut: int | None = None
        delivered = 0
        done = False

        async def cutting_send(message: Message) -> None:
            nonlocal passthrough, cut, delivered, done
            if done:
                raise _StreamCut
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                declared = _content_length(message.get("headers", []))
                if message["status"] in (204, 304) or declared == 0:
                    passthrough = True
                elif declared is not None:
                    cut = min(
                        rule.truncate_at if rule.truncate_at is not None else declared // 2, declared - 1
                    )
                await send(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body = bytes(message.get("body", b""))
            if cut is None:  # no Content-Length: cut within the first chunk that has data
                if not body and message.get("more_body", False):
                    await send(message)
                    return
                cut = rule.truncate_at if rule.truncate_at is not None else len(body) // 2
            remaining = cut - delivered
            if len(body) < remaining and message.get("more_body", False):
                delivered += len(body)
                await send(message)
                return
            await send({"type": "http.response.body", "body": body[: max(remaining, 0)], "more_body": True})
            done = True
            if transport is None:
                raise SimulatedConnectionError("simulated truncated response")
            transport.close()  # flushes what was sent, then FIN: the client gets a short body
            raise _StreamCut

        try:
            await self.app(scope, receive, cutting_send)
        except Exception:
            if not done or transport is None:
                raise
        if done:
            await _wait_for_disconnect(receive)

    async def _slow(self, rule: FaultRule, scope: Scope, receive: Receive, send: Send) -> None:
        buffered: list[Message] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            buffered.append(message)
            if not message.get("more_body", False):
                break
        sleeper = asyncio.ensure_future(self.sleep(rule.delay))
        watcher = asyncio.ensure_future(receive())
        await asyncio.wait({sleeper, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not sleeper.done():
            sleeper.cancel()
            return  # the client went away while we were "slow"

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await watcher

        try:
            await self.app(scope, replay, send)
        finally:
            watcher.cancel()


async def _discard(message: Message) -> None:
    """The ``send`` of an application whose answer is thrown away (``FaultRule.after_app``)."""


async def _send_simple(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra_headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
