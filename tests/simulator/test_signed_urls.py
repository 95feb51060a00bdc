from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading
from collections.abc import Iterator

import pytest
import requests
import uvicorn
from fastapi import FastAPI

from airflow_provider_pixxel.simulator.files import Artifact, make_package
from airflow_provider_pixxel.simulator.signed_urls import (
    ExpiredSignature,
    FileStore,
    InvalidSignature,
    UrlSigner,
    files_router,
    parse_range,
)

NOW = 1_750_000_000.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread. The socket is bound and listening before the thread
    starts, so requests queue in the backlog instead of the test polling for readiness."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class Simulator:
    def __init__(self) -> None:
        self.clock = FakeClock(NOW)
        self.signer = UrlSigner(b"test-secret", ttl_seconds=600, clock=self.clock)
        self.store = FileStore()
        self.requests: list[tuple[str, str]] = []
        self.package = make_package("pkg-1", filename="package.zip", title="t", size_bytes=2_500_000, seed=1)
        self.store.register(self.package)
        self.app = FastAPI()
        self.app.include_router(
            files_router(self.store, self.signer, on_request=lambda *call: self.requests.append(call))
        )
        self.base_url = ""
        self.http = requests.Session()
        self.http.trust_env = False

    def url(self, artifact: Artifact | None = None) -> str:
        artifact = artifact or self.package
        return self.base_url + self.signer.sign(artifact.artifact_id, artifact.filename)


@pytest.fixture(scope="module")
def running() -> Iterator[Simulator]:
    simulator = Simulator()
    with serve(simulator.app) as base_url:
        simulator.base_url = base_url
        yield simulator


@pytest.fixture
def sim(running: Simulator) -> Simulator:
    running.clock.now = NOW
    running.signer.ttl_seconds = 600
    running.requests.clear()
    return running


# Signer and store -------------------------------------------------------------------------------


def test_signed_path_has_expiry_and_hmac_signature() -> None:
    signer = UrlSigner(b"k", ttl_seconds=90, clock=FakeClock(NOW))
    url = signer.sign("id/with space", "a b.zip")

    match = re.fullmatch(r"/files/id%2Fwith%20space/a%20b\.zip\?expires=(\d+)&signature=([0-9a-f]{64})", url)
    assert match is not None
    assert int(match.group(1)) == NOW + 90
    signer.verify("id/with space", match.group(1), match.group(2))
    assert "k" not in repr(signer)


def test_verify_rejects_tampering_and_expiry() -> None:
    clock = FakeClock(NOW)
    signer = UrlSigner(b"k", ttl_seconds=60, clock=clock)
    expires, signature = re.findall(r"=(\w+)", signer.sign("a", "f.zip"))

    with pytest.raises(InvalidSignature):
        signer.verify("b", expires, signature)
    with pytest.raises(InvalidSignature):
        signer.verify("a", str(int(expires) + 3600), signature)
    with pytest.raises(InvalidSignature):
        UrlSigner(b"other").verify("a", expires, signature)
    for bad_expires, bad_signature in [
        (None, signature),
        ("soon", signature),
        (expires, None),
        (expires, ""),
    ]:
        with pytest.raises(InvalidSignature):
            signer.verify("a", bad_expires, bad_signature)
    clock.now = NOW + 60
    signer.verify("a", expires, signature)
    clock.now = NOW + 61
    with pytest.raises(ExpiredSignature):
        signer.verify("a", expires, signature)


def test_file_store_registers_and_looks_up() -> None:
    store = FileStore()
    package = make_package("p", filename="p.zip", title="t")
    store.register(package)

    assert "p" in store
    assert "q" not in store
    assert store.get("p") is package
    with pytest.raises(KeyError):
        store.get("q")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, 1000)),
        ("bytes=-10", (990, 1000)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=900-5000", (900, 1000)),
        ("bytes=999-999", (999, 1000)),
        ("bytes=1000-", False),
        ("bytes=1000-2000", False),
        ("bytes=-0", False),
        ("bytes=5-4", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=abc", None),
    ],
)
def test_parse_range(header: str, expected: object) -> None:
    assert parse_range(header, 1000) == expected


# Serving ----------------------------------------------------------------------------------------


def test_get_streams_the_whole_artifact_without_authorization(sim: Simulator) -> None:
    response = sim.http.get(sim.url(), headers={"Authorization": "ignored"}, timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(sim.package.length)
    assert response.headers["ETag"] == sim.package.etag
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="package.zip"')
    assert hashlib.sha256(response.content).hexdigest() == sim.package.sha256()
    assert sim.requests == [("pkg-1", "")]


def test_head_gives_the_headers_without_a_body(sim: Simulator) -> None:
    response = sim.http.head(sim.url(), timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(sim.package.length)
    assert response.headers["ETag"] == sim.package.etag
    assert response.content == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 100), ("bytes=2400000-", 2_400_000, 2_500_000), ("bytes=-1000", 2_499_000, 2_500_000)],
)
def test_single_range_gets_206(sim: Simulator, header: str, start: int, end: int) -> None:
    response = sim.http.get(sim.url(), headers={"Range": header}, timeout=10)

    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{sim.package.length}"
    assert response.headers["Content-Length"] == str(end - start)
    assert response.content == sim.package.read(start, end)
    assert sim.requests == [("pkg-1", header)]


def test_unsatisfiable_range_gets_416(sim: Simulator) -> None:
    response = sim.http.get(sim.url(), headers={"Range": f"bytes={sim.package.length}-"}, timeout=10)

    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{sim.package.length}"
    assert "<Code>InvalidRange</Code>" in response.text


def test_if_range_serves_the_range_only_for_the_current_etag(sim: Simulator) -> None:
    matching = sim.http.get(
        sim.url(), headers={"Range": "bytes=10-19", "If-Range": sim.package.etag}, timeout=10
    )
    stale = sim.http.get(sim.url(), headers={"Range": "bytes=10-19", "If-Range": '"stale"'}, timeout=10)

    assert matching.status_code == 206
    assert matching.content == sim.package.read(10, 20)
    assert stale.status_code == 200
    assert len(stale.content) == sim.package.length


def test_resuming_with_ranges_rebuilds_the_exact_file(sim: Simulator) -> None:
    url = sim.url()
    pieces = [sim.http.get(url, headers={"Range": "bytes=0-1048575"}, timeout=10).content]
    pieces.append(
        sim.http.get(
            url, headers={"Range": f"bytes={len(pieces[0])}-", "If-Range": sim.package.etag}, timeout=10
        ).content
    )

    assert hashlib.sha256(b"".join(pieces)).hexdigest() == sim.package.sha256()


def test_expired_url_gets_s3_style_403(sim: Simulator) -> None:
    url = sim.url()
    sim.clock.now = NOW + 601

    response = sim.http.get(url, timeout=10)

    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/xml")
    assert "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>" in response.text
    assert sim.requests == [("pkg-1", "")]


def test_zero_ttl_expires_on_the_next_tick(sim: Simulator) -> None:
    sim.signer.ttl_seconds = 0
    url = sim.url()
    assert sim.http.get(url, headers={"Range": "bytes=0-0"}, timeout=10).status_code == 206
    sim.clock.now += 1
    assert sim.http.get(url, timeout=10).status_code == 403


def test_bad_signature_gets_403(sim: Simulator) -> None:
    url = sim.url()
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")

    response = sim.http.get(tampered, timeout=10)

    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text
    assert sim.http.get(url.split("?")[0], timeout=10).status_code == 403


def test_unknown_artifact_or_wrong_name_gets_404(sim: Simulator) -> None:
    unknown = sim.base_url + sim.signer.sign("nope", "package.zip")
    wrong_name = sim.base_url + sim.signer.sign("pkg-1", "other.zip")

    for url in (unknown, wrong_name):
        response = sim.http.get(url, timeout=10)
        assert response.status_code == 404
        assert "<Code>NoSuchKey</Code>" in response.text
