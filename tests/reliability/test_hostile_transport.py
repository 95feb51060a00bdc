"""Hostile edges of the transport (issue #11, points 1-5), for the sync and the async hook alike.

Every test drives real loopback servers (``tests/reliability/loopback.py``): the API on 127.0.0.1 and,
where "another host" matters, a second server on 127.0.0.2 that records whatever reaches it. Each case
ends in a typed ``PixxelError`` naming what was wrong, and the servers' records prove what was (not)
sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_pixxel.exceptions import (
    PixxelApiError,
    PixxelConfigError,
    PixxelPagingError,
    PixxelTransportError,
)
from airflow_provider_pixxel.hooks.download import download
from airflow_provider_pixxel.hooks.pagination import aiter_offset_pages, paginated_list_page
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook
from airflow_provider_pixxel.hooks.retry import RetryPolicy
from airflow_provider_pixxel.triggers import catalog as catalog_module
from airflow_provider_pixxel.triggers.catalog import PixxelNewCatalogTrigger
from airflow_provider_pixxel.triggers.status import PixxelStatusTrigger
from tests.task_runner import first_event

from .loopback import Exchange, Loopback, can_bind, loopback

KEY = "hostile-transport-key-5f2c"
CLIENTS = ["sync", "async"]
JOB_PATH = "/v0/workflows/wf-1/jobs/job-1"


@pytest.fixture
def api() -> Iterator[Loopback]:
    with loopback("127.0.0.1") as server:
        yield server


@pytest.fixture
def other_host() -> Iterator[Loopback]:
    if not can_bind("127.0.0.2"):
        pytest.skip("127.0.0.2 is not routed to this machine, so there is no second loopback host")
    with loopback("127.0.0.2") as server:
        yield server


@pytest.fixture
def other_port() -> Iterator[Loopback]:
    with loopback("127.0.0.1") as server:
        yield server


def connect(monkeypatch: pytest.MonkeyPatch, host: str, **extra: Any) -> None:
    connection = {
        "conn_type": "pixxel",
        "host": host,
        "password": KEY,
        "extra": {"project_id": "p1", "max_retries": 2, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))


def fast_policy(max_retries: int = 2) -> RetryPolicy:
    return RetryPolicy(max_retries=max_retries, initial_delay=0.001, max_delay=0.001)


async def no_sleep(seconds: float) -> None:
    return None


async def send(client: str, operation: str, *args: Any, max_retries: int = 2, **kwargs: Any) -> Any:
    """Call ``operation`` with the sync or the async hook, under the same connection and retry policy."""
    if client == "sync":
        with PixxelHook(retry_policy=fast_policy(max_retries), sleep=lambda seconds: None) as hook:
            return getattr(hook, operation)(*args, **kwargs)
    async with PixxelAsyncHook(retry_policy=fast_policy(max_retries), sleep=no_sleep) as hook:
        return await getattr(hook, operation)(*args, **kwargs)


def job_answer(status: str = "completed") -> dict[str, Any]:
    return {"id": "job-1", "workflow_id": "wf-1", "status": status, "progress": 100}


# -- 1. the plain-http rule cannot be bypassed ----------------------------------------------------------


HOSTILE_HOST_CASES = [
    "backslash to 127.0.0.2",
    "backslash to a remote name",
    "user:password@",
    "tab",
    "space",
    "NUL",
]


def hostile_hosts(api: Loopback, other: Loopback) -> list[tuple[str, str]]:
    """(base URL, what the refusal names): each would send the key somewhere the check did not read."""
    return [
        # urllib3/requests read the host before the backslash (127.0.0.2), urllib.parse after it.
        (f"http://{other.host}:{other.port}\\@{api.host}:{api.port}", "'\\\\'"),
        (f"http://evil.example\\@{api.host}:{api.port}", "'\\\\'"),
        (f"http://user:secret@{api.host}:{api.port}", "credentials"),
        (f"http://{api.host}:{api.port}\t/v0", "'\\t'"),
        (f"http://{api.host}:{api.port} @{other.host}:{other.port}", "' '"),
        (f"http://{api.host}:{api.port}/\x00", "'\\x00'"),
    ]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("case", range(len(HOSTILE_HOST_CASES)), ids=HOSTILE_HOST_CASES)
async def test_a_disguised_base_url_is_refused_and_the_key_goes_nowhere(
    monkeypatch: pytest.MonkeyPatch, api: Loopback, other_host: Loopback, client: str, case: int
) -> None:
    for server in (api, other_host):
        server.routes[JOB_PATH] = lambda exchange: exchange.json(job_answer())
    host, named = hostile_hosts(api, other_host)[case]
    connect(monkeypatch, host)

    with pytest.raises(PixxelConfigError, match="is refused") as refused:
        await send(client, "get_job", "wf-1", "job-1")

    assert named in str(refused.value)
    assert api.requests == []
    assert other_host.requests == []
    assert KEY not in str(refused.value)


# -- 2. API redirects are refused, never followed -------------------------------------------------------


def redirect_to(status: int, target: str) -> Any:
    def answer(exchange: Exchange) -> None:
        exchange.send(status, b"", {"Location": target})

    return answer


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("elsewhere", ["other_host", "other_port"])
async def test_a_redirected_read_is_an_error_naming_the_target(
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    api: Loopback,
    client: str,
    status: int,
    elsewhere: str,
) -> None:
    target: Loopback = request.getfixturevalue(elsewhere)
    target.routes[JOB_PATH] = lambda exchange: exchange.json(job_answer())
    api.routes[JOB_PATH] = redirect_to(status, f"{target.base_url}{JOB_PATH}?X-Signature=sig-secret")
    connect(monkeypatch, api.base_url)

    with pytest.raises(PixxelApiError) as refused:
        await send(client, "get_job", "wf-1", "job-1")

    message = str(refused.value)
    assert refused.value.status == status
    assert refused.value.code == "redirect"
    assert f"HTTP {status}" in message
    assert f"host {target.host}:{target.port}" in message
    assert "sig-secret" not in message
    assert target.requests == []
    assert len(api.requests) == 1  # a redirect is not retried either


def endless_redirect(target: str, *, give_up_after: int = 256 * 1024 * 1024) -> Any:
    """A 302 whose body does not end until ``give_up_after`` bytes: whether the client hung up before
    is recorded as the outcome ("cut")."""

    def answer(exchange: Exchange) -> None:
        handler = exchange.handler
        handler.send_response(302)
        handler.send_header("Location", target)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Connection", "close")
        handler.end_headers()
        outcome = "complete"
        try:
            block = b"<p>moved</p>" * 5000
            sent = 0
            while sent < give_up_after and not exchange.server.stopping.is_set():
                handler.wfile.write(block)
                sent += len(block)
        except OSError:
            outcome = "cut"
        exchange.server.outcomes.append(outcome)
        exchange.server.outcome_ready.set()

    return answer


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_redirect_with_an_endless_body_is_refused_without_reading_it(
    monkeypatch: pytest.MonkeyPatch, api: Loopback, other_host: Loopback, client: str
) -> None:
    # requests' Session.send reads a 3xx answer's whole body even with allow_redirects=False; only the
    # call deadline (made long here) would end that read, and memory would grow all the while.
    api.routes[JOB_PATH] = endless_redirect(f"{other_host.base_url}{JOB_PATH}")
    connect(monkeypatch, api.base_url, call_timeout=20)
    started = time.monotonic()

    with pytest.raises(PixxelApiError) as refused:
        await send(client, "get_job", "wf-1", "job-1")

    assert refused.value.code == "redirect"
    assert time.monotonic() - started < 10
    assert api.wait_for_outcome() == "cut"  # the client hung up instead of reading on
    assert other_host.requests == []


def test_a_download_link_redirecting_with_an_endless_body_is_followed_without_reading_it(
    api: Loopback, tmp_path: Path
) -> None:
    content = b"the file behind the redirect"
    api.routes["/file"] = lambda exchange: exchange.send(200, content, {"Content-Type": "image/tiff"})
    api.routes["/link"] = endless_redirect(f"{api.base_url}/file")
    started = time.monotonic()

    result = download(lambda: f"{api.base_url}/link", tmp_path / "x.tif", timeout=(5.0, 20.0))

    assert (tmp_path / "x.tif").read_bytes() == content
    assert result.size == len(content)
    assert time.monotonic() - started < 10
    assert api.wait_for_outcome() == "cut"


async def test_a_307_never_carries_a_stores_secrets_to_another_host(
    monkeypatch: pytest.MonkeyPatch, api: Loopback, other_host: Loopback
) -> None:
    other_host.routes["/v0/stores"] = lambda exchange: exchange.json({"id": "store-1"}, status=201)
    api.routes["/v0/stores"] = redirect_to(307, f"{other_host.base_url}/v0/stores")
    connect(monkeypatch, api.base_url)

    with pytest.raises(PixxelApiError, match="HTTP 307"):
        await send(
            "sync",
            "create_store",
            name="bucket",
            type="S3",
            configs={"bucket": "b", "region": "eu-west-1"},
            secrets={"access_key_id": "AKIA-store", "secret_access_key": "store-secret-9"},
        )

    assert other_host.requests == []
    assert not other_host.saw_text("store-secret-9")
    assert len(api.requests) == 1


async def test_a_307_on_an_async_put_sends_nothing_to_another_host(
    monkeypatch: pytest.MonkeyPatch, api: Loopback, other_host: Loopback
) -> None:
    download = f"{JOB_PATH}/download"
    other_host.routes[download] = lambda exchange: exchange.json({"status": "completed"})
    api.routes[download] = redirect_to(307, f"{other_host.base_url}{download}")
    connect(monkeypatch, api.base_url)

    with pytest.raises(PixxelApiError, match="HTTP 307"):
        await send("async", "download_job", "wf-1", "job-1")

    assert other_host.requests == []


# -- 3. malformed JSON is an API error, never a crash ----------------------------------------------------

MALFORMED = [
    ("deeply nested", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("Infinity", b'{"status": "completed", "progress": Infinity}', "Infinity is not a JSON value"),
    ("NaN", b'{"status": "completed", "progress": NaN}', "NaN is not a JSON value"),
    ("a float out of range", b'{"status": "completed", "progress": 1e999}', "out of range"),
]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(("case", "body", "text"), MALFORMED, ids=[row[0] for row in MALFORMED])
async def test_malformed_json_is_an_api_error(
    monkeypatch: pytest.MonkeyPatch, api: Loopback, client: str, case: str, body: bytes, text: str
) -> None:
    api.routes[JOB_PATH] = lambda exchange: exchange.send(200, body)
    connect(monkeypatch, api.base_url)

    with pytest.raises(PixxelApiError, match=text) as refused:
        await send(client, "get_job", "wf-1", "job-1")

    assert refused.value.code == "invalid_json"


def test_a_page_that_is_a_list_is_an_api_error(monkeypatch: pytest.MonkeyPatch, api: Loopback) -> None:
    api.routes["/v0/aois"] = lambda exchange: exchange.json([{"id": "a1"}])
    connect(monkeypatch, api.base_url)

    with PixxelHook(retry_policy=fast_policy()) as hook, pytest.raises(PixxelApiError, match="got a list"):
        list(hook.iter_aois())


def test_a_total_of_infinity_is_an_api_error(monkeypatch: pytest.MonkeyPatch, api: Loopback) -> None:
    api.routes["/v0/aois"] = lambda exchange: exchange.send(
        200, b'{"aois": [{"id": "a1"}], "pagination": {"total": Infinity}}'
    )
    connect(monkeypatch, api.base_url)

    with PixxelHook(retry_policy=fast_policy()) as hook, pytest.raises(PixxelApiError, match="Infinity"):
        list(hook.iter_aois())


async def test_an_async_page_that_is_a_list_is_an_api_error(
    monkeypatch: pytest.MonkeyPatch, api: Loopback
) -> None:
    api.routes["/v0/catalogs/search"] = lambda exchange: exchange.json([{"id": "c1"}])
    connect(monkeypatch, api.base_url)

    async with PixxelAsyncHook(retry_policy=fast_policy(), sleep=no_sleep) as hook:
        pages = aiter_offset_pages(
            lambda offset, limit: hook.search_catalogs(order_item_ids=["oi-1"], offset=offset, limit=limit),
            paginated_list_page("catalogs"),
        )
        with pytest.raises(PixxelApiError, match="expected a JSON object but got list"):
            [item async for item in pages]


def answers_in_turn(*bodies: bytes) -> Any:
    """A route answering each body in turn, then the last one for ever."""
    served: list[bytes] = []

    def answer(exchange: Exchange) -> None:
        body = bodies[min(len(served), len(bodies) - 1)]
        served.append(body)
        exchange.send(200, body)

    return answer


async def test_the_status_trigger_polls_past_malformed_answers(
    monkeypatch: pytest.MonkeyPatch, api: Loopback
) -> None:
    api.routes[JOB_PATH] = answers_in_turn(
        MALFORMED[0][1],  # nested too deeply
        MALFORMED[1][1],  # Infinity
        b'[{"status": "completed"}]',  # a list where a job object is documented
        b'{"status": "failed", "tasks": 5}',  # an object whose tasks are not a list
        b'{"status": "completed"',  # cut short
        json.dumps(job_answer()).encode(),
    )
    connect(monkeypatch, api.base_url, max_retries=0)
    trigger = PixxelStatusTrigger(
        kind="job",
        ids={"workflow_id": "wf-1", "job_id": "job-1"},
        poll_interval=0.01,
        deadline=time.time() + 60,
    )

    event = await first_event(trigger)

    assert event["status"] == "success"
    assert len(api.requests) == 6


@pytest.mark.parametrize(
    ("body", "seen"),
    [
        (MALFORMED[0][1], "nested too deeply"),
        (b'[{"status": "completed"}]', "expected a JSON object but got list"),
        (b'{"status": "failed", "tasks": 5}', "not shaped as the API documents"),
    ],
    ids=["malformed JSON", "a list", "tasks not a list"],
)
async def test_the_status_trigger_times_out_saying_what_it_saw(
    monkeypatch: pytest.MonkeyPatch, api: Loopback, body: bytes, seen: str
) -> None:
    api.routes[JOB_PATH] = lambda exchange: exchange.send(200, body)
    connect(monkeypatch, api.base_url, max_retries=0)
    # A deadline already past: one last poll, then the timeout event.
    trigger = PixxelStatusTrigger(
        kind="job",
        ids={"workflow_id": "wf-1", "job_id": "job-1"},
        poll_interval=0.01,
        deadline=time.time() - 1,
    )

    event = await first_event(trigger)

    assert event["status"] == "timeout"
    assert "the last poll failed" in event["message"]
    assert seen in event["message"]


class Polls:
    """The catalog trigger's sleep: counts polls and ends the run after ``limit`` of them."""

    class Stop(Exception):
        pass

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    async def __call__(self, seconds: float) -> None:
        self.count += 1
        if self.count >= self.limit:
            raise Polls.Stop


async def collect_catalog_events(trigger: PixxelNewCatalogTrigger) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    try:
        async for event in trigger.run():
            events.append(dict(event.payload))
    except Polls.Stop:
        pass
    return events


def catalog(catalog_id: str) -> dict[str, Any]:
    return {"id": catalog_id, "task_id": "t", "created_at": f"2026-01-0{catalog_id[-1]}T00:00:00Z"}


async def test_the_catalog_watch_survives_a_malformed_answer(
    monkeypatch: pytest.MonkeyPatch, api: Loopback
) -> None:
    api.routes["/v0/catalogs/search"] = answers_in_turn(
        b'[{"id": "c1"}]',
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"catalogs": [catalog("c1")], "pagination": {"total": 1}}).encode(),
    )
    connect(monkeypatch, api.base_url, max_retries=0)
    polls = Polls(limit=10)
    monkeypatch.setattr(catalog_module, "sleep", polls)
    run = PixxelNewCatalogTrigger(order_item_ids=["oi-1"], poll_interval=1).run()

    try:
        first = await asyncio.wait_for(anext(run), timeout=30)
    finally:
        await run.aclose()

    assert [c["catalog_id"] for c in first.payload["catalogs"]] == ["c1"]
    # The two bad answers each ended one poll (and its sleep); the third poll emitted.
    assert (len(api.requests), polls.count) == (3, 2), (api.paths(), polls.count)


# -- 4. nothing is unbounded ------------------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("declare_length", [True, False], ids=["Content-Length", "no length"])
async def test_an_answer_over_the_cap_is_refused_without_being_read(
    monkeypatch: pytest.MonkeyPatch, api: Loopback, client: str, declare_length: bool
) -> None:
    api.routes[JOB_PATH] = lambda exchange: exchange.stream(256 * 1024 * 1024, declare_length=declare_length)
    connect(monkeypatch, api.base_url, max_response_mib=1)

    with pytest.raises(PixxelApiError, match="max_response_mib of 1 MiB") as refused:
        await send(client, "get_job", "wf-1", "job-1")

    assert refused.value.code == "answer_too_large"
    assert ("Content-Length says" in str(refused.value)) is declare_length
    assert len(api.requests) == 1  # not retried
    # The client hung up: the server could not deliver its 256 MiB.
    assert api.wait_for_outcome() == "cut"


@pytest.mark.parametrize("client", CLIENTS)
async def test_an_answer_within_the_cap_is_read_whole(
    monkeypatch: pytest.MonkeyPatch, api: Loopback, client: str
) -> None:
    api.routes[JOB_PATH] = lambda exchange: exchange.stream(3 * 1024 * 1024, declare_length=False)
    connect(monkeypatch, api.base_url, max_response_mib=4)

    answer = await send(client, "get_job", "wf-1", "job-1")

    assert len(answer["padding"]) == 3 * 1024 * 1024 - len('{"padding": ""}')
    assert api.wait_for_outcome() == "complete"


def trickled_body(exchange: Exchange) -> None:
    body = json.dumps(job_answer()).encode()
    exchange.raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    exchange.trickle(body, every=0.05)


def trickled_headers(exchange: Exchange) -> None:
    exchange.trickle(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"p" * 200, every=0.05
    )


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("trickle", [trickled_body, trickled_headers], ids=["body", "headers"])
async def test_a_trickled_answer_ends_at_the_call_timeout(
    monkeypatch: pytest.MonkeyPatch, api: Loopback, client: str, trickle: Any
) -> None:
    api.routes[JOB_PATH] = trickle
    # Each byte comes well within the 60 s read timeout; only the whole-call deadline can end this.
    connect(monkeypatch, api.base_url, call_timeout=1, timeout=[5, 60])
    started = time.monotonic()

    with pytest.raises(PixxelTransportError, match="no complete answer within 1 s"):
        await send(client, "get_job", "wf-1", "job-1", max_retries=0)

    assert time.monotonic() - started < 8


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_call_timeout_applies_to_each_attempt(
    monkeypatch: pytest.MonkeyPatch, api: Loopback, client: str
) -> None:
    served: list[int] = []

    def trickle_once(exchange: Exchange) -> None:
        served.append(1)
        if len(served) == 1:
            trickled_body(exchange)
        else:
            exchange.json(job_answer())

    api.routes[JOB_PATH] = trickle_once
    connect(monkeypatch, api.base_url, call_timeout=1)

    assert (await send(client, "get_job", "wf-1", "job-1", max_retries=1))["status"] == "completed"
    assert len(served) == 2


def endless_pages(exchange: Exchange) -> None:
    """Full pages for ever, claiming a total of 10**12."""
    offset = int(dict(p.split("=") for p in exchange.seen.query.split("&") if "=" in p).get("offset", 0))
    exchange.json({"aois": [{"id": f"a{offset}"}, {"id": f"a{offset + 1}"}], "pagination": {"total": 10**12}})


def test_a_total_of_a_trillion_stops_at_the_page_cap(monkeypatch: pytest.MonkeyPatch, api: Loopback) -> None:
    api.routes["/v0/aois"] = endless_pages
    connect(monkeypatch, api.base_url)

    with PixxelHook(retry_policy=fast_policy()) as hook:
        items = hook.iter_aois(page_size=2, max_pages=5)
        taken = [next(items) for _ in range(10)]
        with pytest.raises(PixxelPagingError, match="after 5 pages \\(10 items\\)"):
            next(items)

    assert len(taken) == 10
    assert len(api.requests) == 5


def test_project_pages_without_end_stop_at_the_page_cap(
    monkeypatch: pytest.MonkeyPatch, api: Loopback
) -> None:
    # Full pages and no count: without a cap, page_num would climb for ever.
    api.routes["/v0/projects"] = lambda exchange: exchange.json({"projects": [{"id": "p"}, {"id": "q"}]})
    connect(monkeypatch, api.base_url)

    with PixxelHook(retry_policy=fast_policy()) as hook:
        projects = hook.iter_projects(page_size=2, max_pages=3)
        with pytest.raises(PixxelPagingError, match="after 3 pages \\(6 items\\)"):
            list(projects)

    assert len(api.requests) == 3


def test_a_project_page_that_is_a_list_is_an_api_error(
    monkeypatch: pytest.MonkeyPatch, api: Loopback
) -> None:
    api.routes["/v0/projects"] = lambda exchange: exchange.json([{"id": "p"}])
    connect(monkeypatch, api.base_url)

    with PixxelHook(retry_policy=fast_policy()) as hook, pytest.raises(PixxelApiError, match="got a list"):
        list(hook.iter_projects())


def stac_page(next_link: dict[str, Any] | None) -> Any:
    def answer(exchange: Exchange) -> None:
        links = [{"rel": "next", **next_link}] if next_link else []
        exchange.json({"type": "FeatureCollection", "features": [{"id": "f"}, {"id": "g"}], "links": links})

    return answer


def test_the_same_stac_next_link_twice_is_a_repeat(monkeypatch: pytest.MonkeyPatch, api: Loopback) -> None:
    api.routes["/v0/archives/search"] = stac_page(
        {"href": f"{api.base_url}/v0/archives/search", "body": {"offset": 2}}
    )
    connect(monkeypatch, api.base_url)

    with (
        PixxelHook(retry_policy=fast_policy()) as hook,
        pytest.raises(PixxelPagingError, match="same next link"),
    ):
        list(hook.iter_archive_items(page_size=2))

    assert len(api.requests) == 2


def test_ever_new_stac_next_links_stop_at_the_page_cap(
    monkeypatch: pytest.MonkeyPatch, api: Loopback
) -> None:
    def answer(exchange: Exchange) -> None:
        offset = json.loads(exchange.seen.body or b"{}").get("offset", 0)
        stac_page({"href": f"{api.base_url}/v0/archives/search?offset={offset + 2}"})(exchange)

    api.routes["/v0/archives/search"] = answer
    connect(monkeypatch, api.base_url)

    with (
        PixxelHook(retry_policy=fast_policy()) as hook,
        pytest.raises(PixxelPagingError, match="after 4 pages"),
    ):
        list(hook.iter_archive_items(page_size=2, max_pages=4))

    assert len(api.requests) == 4


def test_equal_pages_at_different_offsets_are_not_a_repeat(
    monkeypatch: pytest.MonkeyPatch, api: Loopback
) -> None:
    # Two identical pages, asked at offsets 0 and 2: that is what the server holds, not a loop.
    api.routes["/v0/aois"] = lambda exchange: exchange.json(
        {"aois": [{"name": "same"}, {"name": "same"}], "pagination": {"total": 4}}
    )
    connect(monkeypatch, api.base_url)

    with PixxelHook(retry_policy=fast_policy()) as hook:
        assert len(list(hook.iter_aois(page_size=2))) == 4


async def test_the_async_pager_stops_at_the_page_cap(monkeypatch: pytest.MonkeyPatch, api: Loopback) -> None:
    api.routes["/v0/catalogs/search"] = lambda exchange: exchange.json(
        {"catalogs": [{"id": "c"}, {"id": "d"}], "pagination": {"total": 10**12}}
    )
    connect(monkeypatch, api.base_url)

    async with PixxelAsyncHook(retry_policy=fast_policy(), sleep=no_sleep) as hook:
        pages = aiter_offset_pages(
            lambda offset, limit: hook.search_catalogs(order_item_ids=["oi-1"], offset=offset, limit=limit),
            paginated_list_page("catalogs"),
            page_size=2,
            max_pages=3,
        )
        with pytest.raises(PixxelPagingError, match="after 3 pages"):
            [item async for item in pages]

    assert len(api.requests) == 3


async def test_the_catalog_trigger_emits_a_full_event_before_fetching_the_next_page(
    monkeypatch: pytest.MonkeyPatch, api: Loopback
) -> None:
    # One event per poll, but never more than MAX_CATALOGS_PER_EVENT held: here two, one page's worth.
    def search(exchange: Exchange) -> None:
        offset = json.loads(exchange.seen.body)["offset"]
        page = [catalog("c1"), catalog("c2")] if offset == 0 else [catalog("c3")]
        exchange.json({"catalogs": page, "pagination": {"total": 3}})

    api.routes["/v0/catalogs/search"] = search
    connect(monkeypatch, api.base_url, max_retries=0)
    monkeypatch.setattr(catalog_module, "sleep", Polls(limit=1))
    monkeypatch.setattr(catalog_module, "MAX_CATALOGS_PER_EVENT", 2)
    run = PixxelNewCatalogTrigger(order_item_ids=["oi-1"], poll_interval=1).run()

    first = await anext(run)
    searched_by_the_first_event = len(api.requests)
    rest = []
    try:
        async for event in run:
            rest += [c["catalog_id"] for c in event.payload["catalogs"]]
    except Polls.Stop:
        pass

    assert [c["catalog_id"] for c in first.payload["catalogs"]] == ["c1", "c2"]
    assert searched_by_the_first_event == 1
    assert rest == ["c3"]


async def test_the_catalogs_of_pages_before_a_bad_one_are_still_emitted(
    monkeypatch: pytest.MonkeyPatch, api: Loopback
) -> None:
    def search(exchange: Exchange) -> None:
        if json.loads(exchange.seen.body)["offset"] == 0:
            exchange.json({"catalogs": [catalog("c1"), catalog("c2")], "pagination": {"total": 3}})
        else:
            exchange.send(200, b'{"catalogs": "not a list"}', {"Content-Type": "application/json"})

    api.routes["/v0/catalogs/search"] = search
    connect(monkeypatch, api.base_url, max_retries=0)
    monkeypatch.setattr(catalog_module, "sleep", Polls(limit=1))
    run = PixxelNewCatalogTrigger(order_item_ids=["oi-1"], poll_interval=1).run()

    events = []
    try:
        async for event in run:
            events.append([c["catalog_id"] for c in event.payload["catalogs"]])
    except Polls.Stop:
        pass

    # The second page's bad answer ended the poll; the first page's catalogs still got their event.
    assert events == [["c1", "c2"]]
    assert len(api.requests) == 2


# -- 5. dot segments never reach another endpoint ---------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("operation", "args"),
    [
        ("get_order", ("..",)),
        ("get_order", (".",)),
        ("delete_insights", ("aoi1", "..")),
        ("download_task", ("wf-1", "job-1", "..")),
    ],
)
async def test_dot_segment_ids_are_refused_before_sending(
    monkeypatch: pytest.MonkeyPatch, api: Loopback, client: str, operation: str, args: tuple[str, ...]
) -> None:
    for route in ("/v0/", "/v0", "/v0/aoi/aoi1", "/v0/workflows/wf-1/jobs/job-1/download", "/v0/orders"):
        api.routes[route] = lambda exchange: exchange.json({"whole": "package"})
    connect(monkeypatch, api.base_url)

    with pytest.raises(PixxelConfigError, match="dot segment"):
        await send(client, operation, *args)

    assert api.requests == []
