from __future__ import annotations

import asyncio
import contextlib
import email.utils
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from airflow_provider_pixxel.simulator.faults import (
    FaultInjector,
    FaultMiddleware,
    FaultRule,
    SimulatedConnectionError,
)
from airflow_provider_pixxel.simulator.files import make_package
from airflow_provider_pixxel.simulator.signed_urls import FileStore, UrlSigner, files_router

CLOCK_NOW = 1_750_000_000.0
PROTOCOLS = ["httptools", "h11"]


@contextlib.contextmanager
def serve(app: Any, http: str) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread. The socket is bound and listening before the thread
    starts, so requests queue in the backlog instead of the test polling for readiness."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, http=http, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class RecordingSleep:
    """Stands in for ``asyncio.sleep`` in slow faults: records delays without waiting, unless
    ``block`` is set, in which case it waits until cancelled (and records the cancellation)."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.block = False
        self.cancelled = threading.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.block:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise


class Stack:
    def __init__(self) -> None:
        self.injector = FaultInjector(seed=42, clock=lambda: CLOCK_NOW)
        self.sleep = RecordingSleep()
        self.signer = UrlSigner(b"secret")
        self.store = FileStore()
        self.package = make_package("pkg-1", filename="package.zip", title="t", size_bytes=1_000_000, seed=3)
        self.store.register(self.package)
        api = FastAPI()
        api.include_router(files_router(self.store, self.signer))

        @api.get("/ping")
        def ping() -> dict[str, str]:
            return {"status": "ok"}

        @api.get("/v0/stream")
        def stream() -> StreamingResponse:
            return StreamingResponse(iter([b"a" * 1000, b"b" * 1000, b"c" * 1000]), media_type="text/plain")

        self.orders_created = 0

        @api.post("/v0/orders")
        def create_order(body: dict[str, Any]) -> dict[str, Any]:
            self.orders_created += 1
            return {"id": "order-1", "echo": body}

        self.app = FaultMiddleware(api, self.injector, sleep=self.sleep)
        # The same API wrapped through Starlette's middleware stack instead of from outside.
        self.inner_api = FastAPI()
        self.inner_api.include_router(files_router(self.store, self.signer))
        self.inner_api.add_middleware(FaultMiddleware, injector=self.injector, sleep=self.sleep)
        self.base_urls: dict[str, str] = {}

    def file_url(self, protocol: str = "httptools") -> str:
        return self.base_urls[protocol] + self.signer.sign("pkg-1", "package.zip")


@pytest.fixture(scope="module")
def running() -> Iterator[Stack]:
    stack = Stack()
    with contextlib.ExitStack() as servers:
        for protocol in PROTOCOLS:
            stack.base_urls[protocol] = servers.enter_context(serve(stack.app, protocol))
        stack.base_urls["add_middleware"] = servers.enter_context(serve(stack.inner_api, "auto"))
        yield stack


@pytest.fixture
def stack(running: Stack) -> Iterator[Stack]:
    running.injector.clear()
    running.sleep.delays.clear()
    running.sleep.block = False
    running.sleep.cancelled.clear()
    yield running
    running.injector.clear()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as session:
        yield session


# Rules and the injector -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "explode"},
        {"kind": "status", "status": 418},
        {"kind": "status", "rate": 1.5},
        {"kind": "reset", "times": -1},
        {"kind": "status", "status": 429, "retry_after_form": "minutes"},
        {"kind": "slow", "delay": -1},
        {"kind": "truncate", "truncate_at": -5},
    ],
)
def test_rule_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must be"):
        FaultRule(**kwargs)


def test_rule_round_trips_through_json_form() -> None:
    rule = FaultRule.from_dict(
        {"kind": "status", "status": 429, "methods": ["get"], "path": "^/v0/", "times": 2}
    )

    assert rule.methods == frozenset({"GET"})
    assert FaultRule.from_dict({k: v for k, v in rule.to_dict().items() if k != "injected_count"}) == rule
    with pytest.raises(ValueError, match="unknown fault rule fields: colour"):
        FaultRule.from_dict({"kind": "reset", "colour": "red"})


def decisions(
    seed: int, requests_to_make: list[tuple[str, str]], *, paused_first: int = 0
) -> list[str | None]:
    injector = FaultInjector(seed=seed)
    injector.add(FaultRule("status", status=503, rate=0.3))
    injector.add(FaultRule("reset", rate=0.3, methods=frozenset({"GET"})))
    with injector.paused():
        for _ in range(paused_first):
            assert injector.choose("GET", "/v0/orders") is None
    outcomes = [injector.choose(method, path) for method, path in requests_to_make]
    return [rule.kind if rule else None for rule in outcomes]


def test_choice_is_reproducible_for_a_seed_and_request_sequence() -> None:
    sequence = [("GET" if i % 3 else "POST", f"/v0/orders/{i}") for i in range(200)]

    first = decisions(7, sequence)
    assert decisions(7, sequence) == first
    assert decisions(8, sequence) != first
    assert {"status", "reset", None} == set(first)
    # rate 0.3 on a first-match basis: roughly 30% 503s, never a reset on POST
    assert 40 <= first.count("status") <= 80
    assert all(kind != "reset" for kind, (method, _) in zip(first, sequence, strict=True) if method == "POST")


def test_choice_respects_path_methods_times_and_logs() -> None:
    injector = FaultInjector()
    limited = injector.add(
        FaultRule("status", status=500, path=r"^/v0/orders$", methods=frozenset({"post"}), times=2)
    )

    assert injector.choose("GET", "/v0/orders") is None
    assert injector.choose("POST", "/v0/orders/1") is None
    assert injector.choose("POST", "/v0/orders") is limited
    assert injector.choose("post", "/v0/orders") is limited
    assert injector.choose("POST", "/v0/orders") is None
    assert limited.injected_count == 2
    assert (
        injector.injected
        == [{"method": "POST", "path": "/v0/orders", "kind": "status", "status": 500, "after_app": False}] * 2
    )
    assert injector.rules == [limited]

    injector.clear()
    assert injector.rules == []
    assert injector.injected == []
    assert injector.choose("POST", "/v0/orders") is None


def test_ping_is_faulted_only_when_targeted() -> None:
    injector = FaultInjector()
    injector.add(FaultRule("status"))
    assert injector.choose("GET", "/ping") is None
    assert injector.choose("GET", "/v0/projects") is not None

    targeted = injector.add(FaultRule("reset", path="^/ping$"))
    injector.rules[0].times = 0  # exhaust the catch-all
    assert injector.choose("GET", "/ping") is targeted


def test_expire_rules_only_apply_to_signed_file_paths() -> None:
    injector = FaultInjector()
    rule = injector.add(FaultRule("expire"))

    assert injector.choose("GET", "/v0/orders") is None
    assert injector.choose("GET", "/files/pkg-1/package.zip") is rule
    assert injector.injected[-1]["status"] == 403


def test_rate_zero_never_fires_and_rate_one_always_does() -> None:
    injector = FaultInjector(seed=3)
    never = injector.add(FaultRule("status", rate=0.0))
    always = injector.add(FaultRule("reset", rate=1.0))

    assert [injector.choose("GET", f"/x/{i}") for i in range(50)] == [always] * 50
    assert never.injected_count == 0


# Faults as seen by real clients -----------------------------------------------------------------


def test_status_fault_sends_the_json_error_envelope(
    stack: Stack, http: requests.Session, client: httpx.Client
) -> None:
    stack.injector.add(FaultRule("status", status=503, path="^/files/"))

    for response in (http.get(stack.file_url(), timeout=10), client.get(stack.file_url())):
        assert response.status_code == 503
        assert response.headers["Content-Type"] == "application/json"
        assert "Retry-After" not in response.headers
        assert response.json() == {
            "error": {
                "code": "service_unavailable",
                "message": "Service temporarily unavailable",
                "details": {"simulated": True},
            }
        }


def test_429_carries_retry_after_in_seconds_or_as_a_date(stack: Stack, http: requests.Session) -> None:
    stack.injector.add(FaultRule("status", status=429, retry_after=2.5, times=1))
    stack.injector.add(FaultRule("status", status=429, retry_after=30, retry_after_form="date", times=1))
    stack.injector.add(FaultRule("status", status=429, times=1))
    url = stack.base_urls["httptools"] + "/v0/orders"

    seconds, date, default = (http.post(url, json={}, timeout=10) for _ in range(3))

    assert seconds.status_code == date.status_code == default.status_code == 429
    assert seconds.headers["Retry-After"] == "3"
    assert email.utils.parsedate_to_datetime(date.headers["Retry-After"]).timestamp() == CLOCK_NOW + 30
    assert default.headers["Retry-After"] == "1"
    assert seconds.json()["error"]["code"] == "rate_limited"
    assert http.post(url, json={"a": 1}, timeout=10).json() == {"id": "order-1", "echo": {"a": 1}}


@pytest.mark.parametrize("protocol", [*PROTOCOLS, "add_middleware"])
def test_reset_drops_the_connection_without_a_response(
    stack: Stack, http: requests.Session, client: httpx.Client, protocol: str
) -> None:
    stack.injector.add(FaultRule("reset", path="^/files/"))
    url = stack.file_url(protocol)

    with pytest.raises(requests.ConnectionError) as raised:
        http.get(url, timeout=10)
    assert "Connection aborted" in str(raised.value)
    with pytest.raises(httpx.ReadError, match="reset"):
        client.get(url)
    assert [entry["kind"] for entry in stack.injector.injected] == ["reset", "reset"]


@pytest.mark.parametrize(
    ("rule", "acted"),
    [
        (FaultRule("status", status=502), False),
        (FaultRule("status", status=502, after_app=True), True),
        (FaultRule("reset"), False),
        (FaultRule("reset", after_app=True), True),
    ],
    ids=["502-before", "502-after", "reset-before", "reset-after"],
)
def test_after_app_faults_replace_the_answer_of_a_request_the_api_handled(
    stack: Stack, http: requests.Session, rule: FaultRule, acted: bool
) -> None:
    stack.injector.add(rule)
    before = stack.orders_created

    with contextlib.suppress(requests.ConnectionError):
        response = http.post(stack.base_urls["httptools"] + "/v0/orders", json={"name": "x"}, timeout=10)
        assert response.status_code == 502
        assert "order-1" not in response.text

    assert stack.orders_created - before == (1 if acted else 0)
    assert rule.injected_count == 1


@pytest.mark.parametrize("kind", ["truncate", "slow", "expire"])
def test_after_app_is_refused_where_the_fault_already_follows_the_app(kind: str) -> None:
    with pytest.raises(ValueError, match="after_app applies to status and reset"):
        FaultRule(kind, after_app=True)  # type: ignore[arg-type]


def test_reset_on_a_post_with_a_body(stack: Stack, http: requests.Session, client: httpx.Client) -> None:
    stack.injector.add(FaultRule("reset", methods=frozenset({"POST"})))
    url = stack.base_urls["httptools"] + "/v0/orders"

    with pytest.raises(requests.ConnectionError):
        http.post(url, json={"name": "x" * 1000}, timeout=10)
    with pytest.raises(httpx.TransportError):
        client.post(url, json={"name": "x" * 1000})


@pytest.mark.parametrize("protocol", [*PROTOCOLS, "add_middleware"])
def test_truncate_sends_full_headers_then_a_short_body(
    stack: Stack, http: requests.Session, client: httpx.Client, protocol: str
) -> None:
    stack.injector.add(FaultRule("truncate", path="^/files/"))
    url = stack.file_url(protocol)
    length = stack.package.length

    response = http.get(url, stream=True, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(length)
    with pytest.raises(
        requests.exceptions.ChunkedEncodingError, match=f"IncompleteRead\\({length // 2} bytes read"
    ):
        b"".join(response.iter_content(65536))

    with pytest.raises(httpx.RemoteProtocolError, match=f"received {length // 2} bytes, expected {length}"):
        client.get(url)


def test_truncate_at_a_chosen_byte_of_a_range_response(stack: Stack, http: requests.Session) -> None:
    stack.injector.add(FaultRule("truncate", truncate_at=1000, times=1))
    url = stack.file_url()

    with pytest.raises(
        requests.exceptions.ChunkedEncodingError, match=r"IncompleteRead\(1000 bytes read, 9000 more"
    ):
        http.get(url, headers={"Range": "bytes=5000-14999"}, timeout=10)
    resumed = http.get(url, headers={"Range": "bytes=6000-14999"}, timeout=10)
    assert resumed.status_code == 206
    assert resumed.content == stack.package.read(6000, 15000)


def test_truncate_cuts_a_chunked_response_without_content_length(
    stack: Stack, http: requests.Session, client: httpx.Client
) -> None:
    stack.injector.add(FaultRule("truncate", truncate_at=1500, path="^/v0/stream$"))
    url = stack.base_urls["httptools"] + "/v0/stream"
    received = bytearray()

    response = http.get(url, stream=True, timeout=10)
    assert "Content-Length" not in response.headers
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # noqa: PT012 - collects what arrived
        for chunk in response.iter_content(100):
            received += chunk
    assert bytes(received) == b"a" * 1000 + b"b" * 500
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        client.get(url)


def test_truncate_leaves_head_requests_alone(stack: Stack, http: requests.Session) -> None:
    stack.injector.add(FaultRule("truncate"))

    response = http.head(stack.file_url(), timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(stack.package.length)


def test_slow_fault_delays_then_answers(stack: Stack, http: requests.Session, client: httpx.Client) -> None:
    stack.injector.add(FaultRule("slow", delay=12.5))
    url = stack.base_urls["httptools"] + "/v0/orders"

    assert http.post(url, json={"n": 1}, timeout=10).json() == {"id": "order-1", "echo": {"n": 1}}
    assert client.post(url, json={"n": 2}).json() == {"id": "order-1", "echo": {"n": 2}}
    assert stack.sleep.delays == [12.5, 12.5]


def test_slow_fault_times_out_clients_and_frees_the_server(stack: Stack, http: requests.Session) -> None:
    stack.sleep.block = True
    stack.injector.add(FaultRule("slow", delay=30, path="^/ping$", times=2))
    url = stack.base_urls["httptools"] + "/ping"

    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(url, timeout=0.2)
    assert stack.sleep.cancelled.wait(5), "the delayed request kept running after the client left"
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, timeout=0.2, trust_env=False)
    assert http.get(url, timeout=10).json() == {"status": "ok"}


def test_expire_fault_answers_like_an_expired_signed_url(stack: Stack, http: requests.Session) -> None:
    stack.injector.add(FaultRule("expire"))

    response = http.get(stack.file_url(), timeout=10)
    ping = http.get(stack.base_urls["h11"] + "/ping", timeout=10)

    assert response.status_code == 403
    assert "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>" in response.text
    assert ping.status_code == 200


def test_untargeted_rules_leave_ping_alone(stack: Stack, http: requests.Session) -> None:
    stack.injector.add(FaultRule("reset"))

    assert http.get(stack.base_urls["h11"] + "/ping", timeout=10).json() == {"status": "ok"}
    assert stack.injector.injected == []


async def test_without_a_server_transport_faults_surface_as_connection_errors(running: Stack) -> None:
    running.injector.clear()
    running.injector.add(FaultRule("reset", times=1))
    running.injector.add(FaultRule("truncate", times=1))
    transport = httpx.ASGITransport(app=running.app)
    url = "http://simulator" + running.signer.sign("pkg-1", "package.zip")
    try:
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(SimulatedConnectionError, match="reset"):
                await client.get(url)
            with pytest.raises(SimulatedConnectionError, match="truncated"):
                await client.get(url)
            assert (await client.get(url)).status_code == 200
    finally:
        running.injector.clear()


def test_paused_faults_fire_nothing_and_resume_where_they_were() -> None:
    always = FaultRule("status", status=503, rate=1.0)
    injector = FaultInjector()
    injector.add(always)

    with injector.paused():
        assert injector.choose("POST", "/v0/orders") is None
    assert injector.injected == []
    assert injector.choose("POST", "/v0/orders") is always

    # A pause draws no random numbers: the decisions after it are those of an injector never paused.
    sequence = [("GET", f"/v0/orders/{i}") for i in range(50)]
    assert decisions(3, sequence, paused_first=20) == decisions(3, sequence)
