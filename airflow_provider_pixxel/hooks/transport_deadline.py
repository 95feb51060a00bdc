"""An overall deadline for one synchronous API call, answer body included.

requests' read timeout bounds each socket read, not the call: a server that sends one byte every few
seconds keeps every read short and the call alive for ever. :class:`CallDeadline` bounds the whole
attempt. While it is active, the socket of every connection the hook's session sends on is registered
with it (:class:`DeadlineHTTPAdapter` installs connection pools that do so); when the deadline passes, a
timer shuts those sockets down, which wakes the blocked read with an error the hook reports as a
timeout. The socket itself is registered, not the connection: http.client lets go of a connection's
socket once an answer says ``Connection: close``, while the answer goes on reading from it.

The async hook needs none of this: ``asyncio.timeout`` bounds a whole coroutine.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
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
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._token: contextvars.Token[CallDeadline | None] | None = None

    def __enter__(self) -> CallDeadline:
        self._token = _ACTIVE.set(self)
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        if self._token is not None:
            _ACTIVE.reset(self._token)

    def watch(self, sock: socket.socket) -> None:
        """Register a socket about to be used; shut it at once if the deadline already passed."""
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


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
