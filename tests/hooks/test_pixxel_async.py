"""``PixxelAsyncHook``: the polling operations over httpx, with the shared retry and error rules."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_provider_pixxel.exceptions import (
    PixxelApiError,
    PixxelAuthError,
    PixxelConfigError,
    PixxelNotFoundError,
    PixxelOutcomeUnknownError,
    PixxelTransportError,
)
from airflow_provider_pixxel.hooks import pixxel_async as async_module
from airflow_provider_pixxel.hooks.operations import PixxelPollingOperations
from airflow_provider_pixxel.hooks.pixxel_async import (
    SHARED_MAX_IN_FLIGHT,
    PixxelAsyncHook,
    SharedAsyncHook,
    shared_hook_users,
)
from airflow_provider_pixxel.hooks.retry import RetryPolicy
from airflow_provider_pixxel.hooks.transport import ApiRequest
from airflow_provider_pixxel.simulator.app import STATS_PATH
from airflow_provider_pixxel.simulator.faults import FaultRule

from .conftest import API_KEY, MAX_RETRIES
from .operation_cases import CASES_BY_NAME, ORDER_ITEM, OperationCase

POLLING_NAMES = sorted(
    name
    for name in vars(PixxelPollingOperations)
    if not name.startswith("_") and callable(getattr(PixxelPollingOperations, name))
)
POLLING_CASES = [CASES_BY_NAME[name] for name in POLLING_NAMES]

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """An httpx mock transport answering from a list of responses (or exceptions), recording requests."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def ok(case: OperationCase) -> httpx.Response:
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    return httpx.Response(case.status, content=case.content, headers=headers)


@pytest.fixture
def async_sleeps() -> list[float]:
    return []


@pytest.fixture
def make_hook(
    set_connection: Callable[..., None], retry_policy: RetryPolicy, async_sleeps: list[float]
) -> Callable[[Recorder], PixxelAsyncHook]:
    async def fake_sleep(seconds: float) -> None:
        async_sleeps.append(seconds)

    def make(recorder: Recorder) -> PixxelAsyncHook:
        return PixxelAsyncHook(retry_policy=retry_policy, sleep=fake_sleep, transport=recorder.transport)

    return make


def test_the_polling_operations_are_the_expected_ones() -> None:
    assert (
        sorted(
            [
                "get_aoi",
                "list_aois",
                "list_visualizations",
                "list_insights",
                "delete_insights",
                "get_aoi_download",
                "get_catalog_download",
                "list_deliveries",
                "get_job",
                "list_jobs",
                "get_order",
                "get_order_item",
                "list_order_items",
                "search_catalogs",
                "download_job",
                "download_task",
                "download_insights",
            ]
        )
        == POLLING_NAMES
    )


@pytest.mark.parametrize("case", POLLING_CASES, ids=lambda case: case.name)
async def test_polling_operation_sends_its_documented_request(
    make_hook: Callable[[Recorder], PixxelAsyncHook], case: OperationCase
) -> None:
    recorder = Recorder(ok(case))
    async with make_hook(recorder) as hook:
        result = await getattr(hook, case.name)(*case.args, **case.kwargs)

    assert result == case.returns
    (sent,) = recorder.requests
    assert sent.method == case.method
    assert sent.url.path == case.path
    assert dict(sent.url.params) == case.query
    assert (json.loads(sent.content) if sent.content else None) == case.body
    assert sent.headers["Authorization"] == API_KEY


async def test_one_client_per_context_and_one_per_call_outside(
    make_hook: Callable[[Recorder], PixxelAsyncHook], monkeypatch: pytest.MonkeyPatch
) -> None:
    clients: list[httpx.AsyncClient] = []
    original = PixxelAsyncHook._new_client

    def counting_new_client(self: PixxelAsyncHook, settings: Any) -> httpx.AsyncClient:
        clients.append(original(self, settings))
        return clients[-1]

    monkeypatch.setattr(PixxelAsyncHook, "_new_client", counting_new_client)
    recorder = Recorder(httpx.Response(200, json={"status": "running"}))
    hook = make_hook(recorder)

    async with hook:
        await hook.get_job("wf-1", "job-1")
        await hook.get_aoi("aoi-1")
        assert len(clients) == 1
    assert clients[0].is_closed
    assert hook._client is None

    await hook.get_aoi("aoi-1")
    assert len(clients) == 2
    assert clients[1].is_closed
    assert len(recorder.requests) == 3


async def test_the_connection_is_fetched_once_with_the_async_api(
    make_hook: Callable[[Recorder], PixxelAsyncHook], monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    original = async_module.get_async_connection

    async def counting_get_async_connection(conn_id: str) -> Any:
        lookups.append(conn_id)
        return await original(conn_id)

    monkeypatch.setattr(async_module, "get_async_connection", counting_get_async_connection)
    hook = make_hook(Recorder(httpx.Response(200, json={})))
    async with hook:
        await hook.get_aoi("a")
        await hook.get_aoi("b")
    await hook.get_aoi("c")
    assert lookups == ["pixxel_default"]


async def test_server_errors_are_retried_with_the_shared_policy(
    make_hook: Callable[[Recorder], PixxelAsyncHook], async_sleeps: list[float]
) -> None:
    recorder = Recorder(
        httpx.Response(503, json={}),
        httpx.Response(429, headers={"Retry-After": "9"}, json={}),
        httpx.Response(200, json={"status": "completed"}),
    )
    async with make_hook(recorder) as hook:
        assert await hook.get_job("wf-1", "job-1") == {"status": "completed"}
    assert len(recorder.requests) == 3
    assert async_sleeps == [1.0, 9.0]


async def test_retries_stop_after_max_retries(
    make_hook: Callable[[Recorder], PixxelAsyncHook], async_sleeps: list[float]
) -> None:
    recorder = Recorder(httpx.Response(500, json={"error": {"message": "boom"}}))
    with pytest.raises(PixxelApiError, match="HTTP 500: boom"):
        await make_hook(recorder).get_aoi("aoi-1")
    assert len(recorder.requests) == MAX_RETRIES + 1
    assert async_sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("error", "request_sent"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.PoolTimeout("pool full"), False),
        (httpx.ReadTimeout("slow answer"), True),
        (httpx.WriteTimeout("slow upload"), True),
        (httpx.RemoteProtocolError("server hung up"), True),
        (httpx.ReadError("reset"), True),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
async def test_network_failures_map_to_transport_errors(
    make_hook: Callable[[Recorder], PixxelAsyncHook], error: Exception, request_sent: bool
) -> None:
    recorder = Recorder(error)
    with pytest.raises(PixxelTransportError) as raised:
        await make_hook(recorder).get_aoi("aoi-1")
    assert raised.value.request_sent is request_sent
    assert len(recorder.requests) == MAX_RETRIES + 1  # a read is retried either way


async def test_a_create_is_not_resent_after_a_read_timeout(
    make_hook: Callable[[Recorder], PixxelAsyncHook],
) -> None:
    recorder = Recorder(httpx.ReadTimeout("slow"), httpx.Response(201, json={"id": "order-1"}))
    request = ApiRequest(
        "POST", "/v0/orders", json={"order_items": []}, creates="an order (look for it with list_orders())"
    )
    with pytest.raises(PixxelOutcomeUnknownError, match=r"look for it with list_orders\(\)"):
        await make_hook(recorder)._call(request)
    assert len(recorder.requests) == 1


async def test_a_create_is_resent_when_the_connection_never_opened(
    make_hook: Callable[[Recorder], PixxelAsyncHook],
) -> None:
    recorder = Recorder(httpx.ConnectError("refused"), httpx.Response(201, json={"id": "order-1"}))
    request = ApiRequest(
        "POST",
        "/v0/orders",
        json={"order_items": [ORDER_ITEM]},
        creates="an order (look for it with list_orders())",
    )
    assert await make_hook(recorder)._call(request) == {"id": "order-1"}
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(
    ("status", "error_class"), [(401, PixxelAuthError), (403, PixxelAuthError), (404, PixxelNotFoundError)]
)
async def test_client_errors_are_typed_and_not_retried(
    make_hook: Callable[[Recorder], PixxelAsyncHook], status: int, error_class: type[PixxelApiError]
) -> None:
    recorder = Recorder(httpx.Response(status, json={"error": {"code": "x", "message": "nope"}}))
    with pytest.raises(error_class):
        await make_hook(recorder).get_order("order-1")
    assert len(recorder.requests) == 1


async def test_timeouts_are_explicit(
    make_hook: Callable[[Recorder], PixxelAsyncHook], set_connection: Callable[..., None]
) -> None:
    set_connection(extra={"timeout": [4, 40]})
    recorder = Recorder(httpx.Response(200, json={}))
    await make_hook(recorder).get_aoi("aoi-1")
    assert recorder.requests[0].extensions["timeout"] == {
        "connect": 4.0,
        "read": 40.0,
        "write": 40.0,
        "pool": 4.0,
    }


async def test_delete_insights_falls_back_to_the_connection_project(
    make_hook: Callable[[Recorder], PixxelAsyncHook], set_connection: Callable[..., None]
) -> None:
    set_connection(extra={"project_id": "proj-default"})
    recorder = Recorder(httpx.Response(200))
    assert await make_hook(recorder).delete_insights("aoi-1", "ins-1") is None
    assert dict(recorder.requests[0].url.params) == {"project_id": "proj-default"}


async def test_delete_insights_without_any_project_is_a_config_error(
    make_hook: Callable[[Recorder], PixxelAsyncHook],
) -> None:
    recorder = Recorder(httpx.Response(200))
    with pytest.raises(PixxelConfigError, match="project_id is required"):
        await make_hook(recorder).delete_insights("aoi-1", "ins-1")
    assert recorder.requests == []


async def test_plain_http_remote_host_is_refused(
    make_hook: Callable[[Recorder], PixxelAsyncHook], set_connection: Callable[..., None]
) -> None:
    set_connection(host="http://example.com")
    recorder = Recorder(httpx.Response(200, json={}))
    with pytest.raises(PixxelConfigError, match="plain http"):
        await make_hook(recorder).get_aoi("aoi-1")
    assert recorder.requests == []


async def test_the_key_never_leaks(
    make_hook: Callable[[Recorder], PixxelAsyncHook],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    masked: list[Any] = []
    monkeypatch.setattr(async_module, "mask_secret", masked.append)
    caplog.set_level("DEBUG")
    recorder = Recorder(
        httpx.Response(503, json={}), httpx.Response(403, json={"error": {"message": "denied"}})
    )
    hook = make_hook(recorder)
    with pytest.raises(PixxelAuthError) as raised:
        await hook.get_aoi("aoi-1")
    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert "retry 1 of 3" in logged
    assert masked == [API_KEY]
    assert API_KEY not in logged
    assert API_KEY not in str(raised.value)
    assert API_KEY not in repr(hook)
    assert API_KEY not in repr(await hook.get_settings())


# -- one client per connection per event loop, shared by every trigger on it -----------------------


async def test_the_shared_hook_is_one_per_connection_and_loop_closed_by_the_last_user(
    set_connection: Callable[..., None],
) -> None:
    loop = asyncio.get_running_loop()
    async with SharedAsyncHook("pixxel_default") as first, SharedAsyncHook("pixxel_default") as second:
        assert first is second
        client = first._client
        assert client is not None
        assert not client.is_closed
        assert shared_hook_users(loop, "pixxel_default") == 2
    assert client.is_closed
    assert shared_hook_users(loop, "pixxel_default") == 0
    async with SharedAsyncHook("pixxel_default") as again:
        assert again is not first  # a new user after the last one left opens a new client


def test_each_event_loop_has_its_own_shared_hook(set_connection: Callable[..., None]) -> None:
    async def open_one() -> PixxelAsyncHook:
        async with SharedAsyncHook("pixxel_default") as hook:
            return hook

    assert asyncio.run(open_one()) is not asyncio.run(open_one())


async def test_the_shared_hook_keeps_two_requests_on_the_wire_over_two_connections(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow answer, so that all twelve reads are in flight at once unless the hook holds them back.
    sim.state.faults.add(FaultRule("slow", delay=0.05, path=r"^/v0/aoi/"))
    aoi_id = next(iter(sim.state.aois))
    since = time.time()

    async with SharedAsyncHook("pixxel_default") as hook:
        await asyncio.gather(*(hook.get_aoi(aoi_id) for _ in range(12)))

    async with httpx.AsyncClient() as reader:
        stats = (await reader.get(f"{sim.base_url}{STATS_PATH}", params={"since": since})).json()
    assert stats["count"] == 12
    assert stats["connections"] <= SHARED_MAX_IN_FLIGHT == 2
