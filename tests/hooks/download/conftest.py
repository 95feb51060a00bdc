"""The simulator's signed-URL file server (uvicorn on 127.0.0.1, faults injectable), one per package run."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from airflow.sdk.io import store as object_store
from fastapi import FastAPI
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_pixxel.simulator.faults import FaultInjector, FaultMiddleware
from airflow_provider_pixxel.simulator.signed_urls import FileStore, UrlSigner, files_router
from tests.hooks.download.support import (
    _FakeClock,
    _FileServer,
    _RequestRecorder,
    _ScriptedServer,
)


@pytest.fixture(scope="package")
def _running_file_server() -> Iterator[_FileServer]:
    store = FileStore()
    clock = _FakeClock()
    signer = UrlSigner(b"test-signing-secret", ttl_seconds=600, clock=clock)
    faults = FaultInjector(seed=11)
    app = FastAPI()
    app.include_router(files_router(store, signer))
    recorder = _RequestRecorder(FaultMiddleware(app, faults))
    server = uvicorn.Server(
        uvicorn.Config(recorder, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="download-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "test file server did not start"
        assert time.monotonic() < deadline, "test file server did not start in 10 s"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield _FileServer(f"http://127.0.0.1:{port}", store, signer, clock, faults, recorder)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def files(_running_file_server: _FileServer, caplog: pytest.LogCaptureFixture) -> Iterator[_FileServer]:
    """The file server with no faults, a fresh request log, and a check that no signature is logged."""
    server = _running_file_server
    server.faults.clear()
    server.recorder.requests.clear()
    server.handed_out.clear()
    server.clock.now = 1_800_000_000.0
    caplog.set_level(logging.DEBUG, logger="airflow_provider_pixxel")
    yield server
    for signature in server.signatures():
        assert signature not in caplog.text
    assert "signature=" not in caplog.text


@pytest.fixture
def memory_store(monkeypatch: pytest.MonkeyPatch) -> MemoryFileSystem:
    """``memory://`` paths for ObjectStoragePath (Airflow registers no memory filesystem itself)."""
    filesystem = MemoryFileSystem()
    filesystem.store.clear()
    monkeypatch.setitem(
        object_store._STORE_CACHE, "memory", object_store.ObjectStore("memory", None, fs=filesystem)
    )
    return filesystem


@pytest.fixture
def here() -> Iterator[_ScriptedServer]:
    """A scripted server on 127.0.0.1."""
    server = _ScriptedServer("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def elsewhere() -> Iterator[_ScriptedServer]:
    """A second scripted server on 127.0.0.2: another host, still loopback."""
    server = _ScriptedServer("127.0.0.2")
    yield server
    server.close()
