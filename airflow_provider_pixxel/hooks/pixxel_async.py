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
from collections.abc import Awaitable, Callable
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
    ) -> None:
        super().__init__()
        self.pixxel_conn_id = pixxel_conn_id
        self._retry_policy = retry_policy
        self._sleep = sleep
        self._transport = transport
        self._settings: PixxelConnectionSettings | None = None
        self._settings_lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

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
