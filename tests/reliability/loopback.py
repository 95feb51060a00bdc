"""A loopback HTTP server for hostile-server tests: answers are functions of the request, and every
request that arrives is recorded (method, path, headers, body), so a test can prove nothing was sent.

Bind one to ``127.0.0.1`` for the API and another to ``127.0.0.2`` where "another host" matters.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


Route = Callable[["Exchange"], None]


@dataclass
class Loopback:
    host: str
    port: int = 0
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    #: Set when the test ends: answers that trickle or stream stop at once.
    stopping: threading.Event = field(default_factory=threading.Event)
    #: How each streamed answer ended: "complete", or "cut" when the client closed the connection.
    outcomes: list[str] = field(default_factory=list)
    outcome_ready: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    def saw_text(self, text: str) -> bool:
        """Whether ``text`` arrived anywhere in any request (headers or body)."""
        return any(
            text in json.dumps(seen.headers) or text.encode() in seen.body or text in seen.query
            for seen in self.requests
        )

    def wait_for_outcome(self) -> str:
        """How the last streamed answer ended; bounded, as the server may still be writing."""
        assert self.outcome_ready.wait(timeout=30), "the streamed answer never ended"
        return self.outcomes[-1]


@dataclass
class Exchange:
    """What a route sees and uses to answer."""

    server: Loopback
    seen: Seen
    handler: BaseHTTPRequestHandler

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        handler = self.handler
        handler.send_response(status)
        all_headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            **(headers or {}),
        }
        for name, value in all_headers.items():
            handler.send_header(name, value)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()

    def json(self, payload: Any, status: int = 200) -> None:
        self.send(status, json.dumps(payload).encode())

    def raw(self, data: bytes) -> None:
        self.handler.wfile.write(data)
        self.handler.wfile.flush()

    def trickle(self, data: bytes, every: float) -> None:
        """Send ``data`` one byte at a time, ``every`` seconds apart, until done or the test ends."""
        for index in range(len(data)):
            if self.server.stopping.wait(every):
                return
            try:
                self.raw(data[index : index + 1])
            except OSError:
                return

    def stream(self, total: int, *, declare_length: bool, chunk: int = 64 * 1024) -> None:
        """Send a JSON object of ``total`` bytes; record whether the client took it all."""
        handler = self.handler
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if declare_length:
            handler.send_header("Content-Length", str(total))
        handler.send_header("Connection", "close")
        handler.end_headers()
        opening, closing = b'{"padding": "', b'"}'
        body_middle = total - len(opening) - len(closing)
        outcome = "complete"
        try:
            handler.wfile.write(opening)
            sent = 0
            block = b"x" * chunk
            while sent < body_middle and not self.server.stopping.is_set():
                piece = block[: min(chunk, body_middle - sent)]
                handler.wfile.write(piece)
                sent += len(piece)
            handler.wfile.write(closing)
            handler.wfile.flush()
        except OSError:
            outcome = "cut"
        self.server.outcomes.append(outcome)
        self.server.outcome_ready.set()


def _handler(server: Loopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            seen = Seen(self.command, path, query, dict(self.headers.items()), body)
            server.requests.append(seen)
            self.close_connection = True
            route = server.routes.get(path)
            exchange = Exchange(server, seen, self)
            if route is None:
                exchange.json({"error": {"code": "not_found", "message": f"no route {path}"}}, status=404)
                return
            route(exchange)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def loopback(host: str = "127.0.0.1") -> Iterator[Loopback]:
    """A running :class:`Loopback` on ``host`` (a free port), shut down when the block ends."""
    state = Loopback(host)
    httpd = ThreadingHTTPServer((host, 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def can_bind(host: str) -> bool:
    """Whether this machine routes ``host`` to itself (all of 127.0.0.0/8 on Linux)."""
    try:
        with socket.socket() as probe:
            probe.bind((host, 0))
        return True
    except OSError:
        return False
