"""An overall deadline for one synchronous API call, answer body included.

requests' read timeout bounds each socket read, not the call: a server that sends one byte every few
seconds keeps every read short and the call alive for ever. :class:`CallDeadline` bounds the whole
attempt. While it is active, the socket of every connection the hook's session sends on is registered
with it (:class:`DeadlineHTTPAdapter` installs connection pools that do so); when the deadline passes,
one watchdog thread per process shuts those sockets down, which wakes the blocked read with an error the
hook reports as a timeout. (A timer thread per call would cost ~90 us of CPU on every request.) The
socket itself is registered, not the connection: http.client lets go of a connection's socket once an
answer says ``Connection: close``, while the answer goes on reading from it.

The async hook needs none of this: ``asyncio.wait_for`` bounds a whole coroutine.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_ACTIVE: contextvars.ContextVar[CallDeadline | None] = contextvars.ContextVar(
    "pixxel_call_deadline", default=None
)


class CallDeadline:
    """``with CallDeadline(seconds) as deadline:`` bounds every socket read the session makes inside.

    ``expired`` tells, after a failure, whether the deadline is what ended the call.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.finished = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._token: contextvars.Token[CallDeadline | None] | None = None

    def __enter__(self) -> CallDeadline:
        self._token = _ACTIVE.set(self)
        _watchdog.add(time.monotonic() + self.seconds, self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.finished = True
            self._sockets.clear()
        _watchdog.finished()
        if self._token is not None:
            _ACTIVE.reset(self._token)

    def watch(self, sock: socket.socket) -> None:
        """Register a socket about to be used; shut it at once if the deadline already passed."""
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def expire(self) -> None:
        """The deadline passed: shut every socket of a call still running."""
        with self._lock:
            if self.finished:
                return
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


class _Watchdog:
    """One daemon thread expiring :class:`CallDeadline` s in deadline order, started on first use."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, CallDeadline]] = []
        self._order = itertools.count()
        self._finished = 0
        self._thread: threading.Thread | None = None

    def add(self, at: float, deadline: CallDeadline) -> None:
        with self._condition:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pixxel-call-deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (at, next(self._order), deadline))
            if self._heap[0][2] is deadline:
                self._condition.notify()

    def finished(self) -> None:
        """A call ended before its deadline; drop finished entries once they are most of the heap."""
        with self._condition:
            self._finished += 1
            if self._finished > 64 and self._finished * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].finished]
                heapq.heapify(self._heap)
                self._finished = 0

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._heap:
                    self._condition.wait()
                at, _, deadline = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                heapq.heappop(self._heap)
                if deadline.finished:
                    self._finished = max(0, self._finished - 1)
                    continue
            deadline.expire()


_watchdog = _Watchdog()


def _new_watchdog_after_fork() -> None:
    # A forked child has none of the parent's threads: it starts its own watchdog when it needs one.
    global _watchdog
    _watchdog = _Watchdog()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_watchdog_after_fork)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to wake
        sock.shutdown(socket.SHUT_RDWR)


class _DeadlinePoolMixin:
    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        deadline = _ACTIVE.get()
        if deadline is not None:
            # Connect now (urllib3 would, lazily, a moment later) so the socket exists to be shut.
            if conn.is_closed:
                conn.connect()
            deadline.watch(conn.sock)
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]


class _DeadlineHTTPConnectionPool(_DeadlinePoolMixin, HTTPConnectionPool):
    pass


class _DeadlineHTTPSConnectionPool(_DeadlinePoolMixin, HTTPSConnectionPool):
    pass


_POOL_CLASSES = {"http": _DeadlineHTTPConnectionPool, "https": _DeadlineHTTPSConnectionPool}


class DeadlineHTTPAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections obey the active :class:`CallDeadline` (direct or proxied)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager
