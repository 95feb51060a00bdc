"""``PixxelAsyncHook``: the asynchronous client triggers poll with.

It offers the calls of :class:`~airflow_provider_pixxel.hooks.operations.PixxelPollingOperations`
(status reads and download-package PUTs) as coroutines, with the same names and arguments as
:class:`~airflow_provider_pixxel.hooks.pixxel.PixxelHook`, and sends them under the same connection
settings, retry policy and error mapping; only the HTTP library (httpx) differs.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from airflow.providers.common.compat.connection import get_async_connection
from airflow.providers.common.compat.sdk import BaseHook, mask_secret

from airflow_provider_pixxel.exceptions import PixxelError
from airflow_provider_pixxel.hooks.operations import PixxelPollingOperations
from airflow_provider_pixxel.hooks.retry import RetryPolicy, outcome_unknown
from airflow_provider_pixxel.hooks.transport import (
    BODY_CHUNK_BYTES,
    DEFAULT_CONN_ID,
    AnswerBody,
    ApiRequest,
    PixxelConnectionSettings,
    outcome_unknown_error,
    response_value,
    transport_error,
    with_default_project,
)
from airflow_provider_pixxel.spec.rules import check_request

# Failures where httpx never got the request onto the wire: re-sending cannot create anything twice.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class PixxelAsyncHook(PixxelPollingOperations[Awaitable[Any]], BaseHook):
    """Async calls to the Pixxel API with the key of a ``pixxel`` Airflow connection.

    Use it as an async context manager so that all calls share one ``httpx.AsyncClient``::

        async with PixxelAsyncHook("pixxel_default") as hook:
            job = await hook.get_job(workflow_id, job_id)

    A call made outside the context opens and closes a client for that call alone.

    :param pixxel_conn_id: the Airflow connection (see :class:`PixxelHook`).
    :param retry_policy: overrides the retry policy built from the connection's ``max_retries``.
    :param sleep: the coroutine function waited on between retries (tests pass a fake one).
    :param transport: an httpx transport to send through instead of the network (tests).
    :param max_in_flight: the most requests this hook has on the wire at once (each attempt holds a
        slot; retry waits do not). None: no bound beyond httpx's pool.
    """

    conn_name_attr = "pixxel_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "pixxel"
    hook_name = "Pixxel (async)"

    def __init__(
        self,
        pixxel_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        super().__init__()
        self.pixxel_conn_id = pixxel_conn_id
        self._retry_policy = retry_policy
        self._sleep = sleep
        self._transport = transport
        self._settings: PixxelConnectionSettings | None = None
        self._settings_lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(max_in_flight) if max_in_flight else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pixxel_conn_id={self.pixxel_conn_id!r})"

    async def get_settings(self) -> PixxelConnectionSettings:
        """The connection, fetched with the async API and checked once per hook."""
        if self._settings is None:
            async with self._settings_lock:
                if self._settings is None:
                    conn = await get_async_connection(self.pixxel_conn_id)
                    settings = PixxelConnectionSettings.from_connection(conn)
                    mask_secret(settings.api_key)
                    self._settings = settings
        return self._settings

    def _policy(self, settings: PixxelConnectionSettings) -> RetryPolicy:
        return self._retry_policy or RetryPolicy(max_retries=settings.max_retries)

    def _new_client(self, settings: PixxelConnectionSettings) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=settings.base_url,
            headers=settings.headers(),
            timeout=_timeout(settings),
            transport=self._transport,
            verify=shared_ssl_context(),
            follow_redirects=False,
        )

    async def __aenter__(self) -> PixxelAsyncHook:
        settings = await self.get_settings()
        if self._client is None:
            self._client = self._new_client(settings)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _call(self, request: ApiRequest) -> Any:
        """Send ``request`` under the shared retry policy and return its decoded answer."""
        settings = await self.get_settings()
        request = with_default_project(request, settings)
        check_request(request)  # a request that breaks the API contract is refused, never sent
        retrying = self._policy(settings).async_retrying(
            creates=request.creates is not None, log=self.log, sleep=self._sleep
        )
        try:
            if self._client is not None:
                return await retrying(self._send_once, self._client, settings, request)
            async with self._new_client(settings) as client:
                return await retrying(self._send_once, client, settings, request)
        except PixxelError as error:
            if request.creates and outcome_unknown(error):
                raise outcome_unknown_error(request, settings.base_url + request.path, error) from error
            raise

    async def _send_once(
        self, client: httpx.AsyncClient, settings: PixxelConnectionSettings, request: ApiRequest
    ) -> Any:
        if self._slots is not None:
            async with self._slots:
                return await self._send_unbounded(client, settings, request)
        return await self._send_unbounded(client, settings, request)

    async def _send_unbounded(
        self, client: httpx.AsyncClient, settings: PixxelConnectionSettings, request: ApiRequest
    ) -> Any:
        url = settings.base_url + request.path
        self.log.debug("Pixxel API %s %s", request.method, request.path)
        try:
            # The per-read timeouts are httpx's; this bounds the whole attempt, body included.
            answer, response = await asyncio.wait_for(
                self._receive(client, settings, request, url), settings.call_timeout
            )
        except asyncio.TimeoutError as error:
            raise transport_error(
                request, url, request_sent=True, cause=error, call_timeout=settings.call_timeout
            ) from None
        except _NEVER_SENT as error:
            raise transport_error(request, url, request_sent=False, cause=error) from None
        except httpx.ReadTimeout as error:
            raise transport_error(
                request, url, request_sent=True, cause=error, read_timeout=settings.read_timeout
            ) from None
        except httpx.HTTPError as error:
            raise transport_error(request, url, request_sent=True, cause=error) from None
        return response_value(
            request,
            url=url,
            status=response.status_code,
            content=answer.content,
            content_type=response.headers.get("Content-Type", ""),
            headers=response.headers,
        )

    @staticmethod
    async def _receive(
        client: httpx.AsyncClient, settings: PixxelConnectionSettings, request: ApiRequest, url: str
    ) -> tuple[AnswerBody, httpx.Response]:
        """Send ``request`` and read its body in chunks, no further than :class:`AnswerBody` allows."""
        async with client.stream(
            request.method,
            url,
            params=request.params or None,
            json=request.json,
            headers={"Accept": request.accept},
            timeout=_timeout(settings),
        ) as response:
            answer = AnswerBody(
                request, url=url, status=response.status_code, headers=response.headers, settings=settings
            )
            async for chunk in response.aiter_bytes(BODY_CHUNK_BYTES):
                if not answer.add(chunk):
                    break
        return answer, response


#: Requests one shared client has on the wire at once. Two keep-alive connections carry a triggerer's
#: list reads (each covers up to a hundred waits) without opening a connection, and a TLS handshake,
#: per trigger; waits read one by one queue for them instead of flooding the API.
SHARED_MAX_IN_FLIGHT = 2


@dataclass
class _SharedHook:
    hook: PixxelAsyncHook
    users: int = 0
    opened: asyncio.Lock = field(default_factory=asyncio.Lock)
    open: bool = False


# One entry per event loop (the triggerer runs every trigger in one; ``asyncio.run`` makes a new one
# per inline wait): a loop that is gone takes its entries with it.
_SHARED_HOOKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _SharedHook]] = (
    weakref.WeakKeyDictionary()
)


class SharedAsyncHook:
    """The hook (and so the one ``httpx`` client and connection pool) every user of ``pixxel_conn_id``
    shares in the running event loop; closed when the last user leaves, cancelled ones included.

    Retries, ``Retry-After`` and the answer checks are the hook's own, unchanged; at most
    :data:`SHARED_MAX_IN_FLIGHT` requests are on the wire at once. A class rather than an async
    generator: when ``asyncio.run`` finalizes a trigger's abandoned generator, it would also finalize
    nested generator context managers on their own, out of order.
    """

    def __init__(self, pixxel_conn_id: str) -> None:
        self.pixxel_conn_id = pixxel_conn_id
        self._hooks: dict[str, _SharedHook] = {}
        self._entry: _SharedHook | None = None

    async def __aenter__(self) -> PixxelAsyncHook:
        hooks = self._hooks = _SHARED_HOOKS.setdefault(asyncio.get_running_loop(), {})
        entry = hooks.get(self.pixxel_conn_id)
        if entry is None:
            entry = hooks[self.pixxel_conn_id] = _SharedHook(
                PixxelAsyncHook(self.pixxel_conn_id, max_in_flight=SHARED_MAX_IN_FLIGHT)
            )
        entry.users += 1
        self._entry = entry
        try:
            if not entry.open:
                async with entry.opened:
                    if not entry.open:
                        await entry.hook.__aenter__()
                        entry.open = True
        except BaseException:
            await self._leave()
            raise
        return entry.hook

    async def __aexit__(self, *exc: object) -> None:
        await self._leave()

    async def _leave(self) -> None:
        entry, self._entry = self._entry, None
        if entry is None:
            return
        entry.users -= 1
        if entry.users == 0:
            # Out of the registry before the await: a new user meanwhile opens a client of its own.
            if self._hooks.get(self.pixxel_conn_id) is entry:
                del self._hooks[self.pixxel_conn_id]
            await entry.hook.aclose()


def shared_hook_users(loop: asyncio.AbstractEventLoop, pixxel_conn_id: str) -> int:
    """How many users hold the shared hook of ``pixxel_conn_id`` in ``loop`` (0: none is open)."""
    entry = _SHARED_HOOKS.get(loop, {}).get(pixxel_conn_id)
    return entry.users if entry else 0


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process, shared by every client the async hook opens.

    httpx otherwise builds a context, loading the whole CA bundle, for each client: about 35 ms of CPU
    and 850 KiB per trigger, paid a thousand times by a triggerer running a thousand waits
    (BENCHMARKS.md, "Waiting at scale"). The context is the one httpx builds by default (certifi, or
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set); an ``SSLContext`` is safe to share between clients.
    """
    return httpx.create_ssl_context()


def _timeout(settings: PixxelConnectionSettings) -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.connect_timeout,
    )
