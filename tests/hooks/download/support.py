"""What the download tests share: zip builders, digests, and the signed-URL file server they drive."""

from __future__ import annotations

import hashlib
import http.server
import io
import random
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_pixxel.hooks.retry import RetryPolicy
from airflow_provider_pixxel.simulator.faults import FaultInjector
from airflow_provider_pixxel.simulator.files import Artifact, make_package, single_file
from airflow_provider_pixxel.simulator.signed_urls import FileStore, UrlSigner


def _zip_bytes(
    members: list[tuple[zipfile.ZipInfo | str, bytes]], compression: int = zipfile.ZIP_STORED
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for info, data in members:
            archive.writestr(info, data)
    return buffer.getvalue()


def _write_zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]], **kwargs: int) -> Path:
    path.write_bytes(_zip_bytes(members, **kwargs))
    return path


def _typed_member(name: str, file_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so external_attr carries a mode
    info.external_attr = (file_type | 0o777) << 16
    return info


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _never_called() -> str:
    raise AssertionError("url_provider must not be called when the verified file is kept")


def _listing(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


class _FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class _RequestRecorder:
    """Outermost ASGI layer: remembers every request's path, query and headers, faulted or not."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
            self.requests.append(
                {"path": scope["path"], "query": scope["query_string"].decode(), "headers": headers}
            )
        await self.app(scope, receive, send)


@dataclass
class _FileServer:
    base_url: str
    store: FileStore
    signer: UrlSigner
    clock: _FakeClock
    faults: FaultInjector
    recorder: _RequestRecorder
    handed_out: list[str] = field(default_factory=list)

    def publish(self, artifact: Artifact) -> Artifact:
        self.store.register(artifact)
        return artifact

    def url_provider(self, artifact: Artifact) -> Callable[[], str]:
        def provide() -> str:
            url = self.base_url + self.signer.sign(artifact.artifact_id, artifact.filename)
            self.handed_out.append(url)
            return url

        return provide

    def expired_first_provider(self, artifact: Artifact) -> Callable[[], str]:
        """The first URL it hands out is already past its lifetime when used (minted long ago)."""
        provide = self.url_provider(artifact)

        def provide_stale_then_fresh() -> str:
            url = provide()
            if len(self.handed_out) == 1:
                self.clock.now += 2 * self.signer.ttl_seconds
            return url

        return provide_stale_then_fresh

    @property
    def range_headers(self) -> list[str | None]:
        return [request["headers"].get("range") for request in self.recorder.requests]

    def signatures(self) -> list[str]:
        return [parse_qs(urlsplit(url).query)["signature"][0] for url in self.handed_out]


class _Sleeps(list):
    """Records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


NO_JITTER = RetryPolicy(max_retries=3, initial_delay=1.0, jitter=lambda low, high: high)


def _random_file(artifact_id: str, size: int, filename: str = "scene.tif") -> Artifact:
    content = random.Random(artifact_id).randbytes(size)
    return single_file(artifact_id, filename=filename, media_type="image/tiff", content=content)


def _package(artifact_id: str, size: int | None = 400_000) -> Artifact:
    return make_package(artifact_id, filename=f"{artifact_id}.zip", title="Delivery", size_bytes=size, seed=3)


def _members(artifact: Artifact) -> list[dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(artifact.read())) as archive:
        return sorted(
            (
                {"path": info.filename, "size": info.file_size, "sha256": _sha(archive.read(info))}
                for info in archive.infolist()
                if not info.is_dir()
            ),
            key=lambda entry: entry["path"],
        )


# -- a scripted loopback server, for answers the simulator does not give --------------------------------


@dataclass
class _Answer:
    """One scripted answer; ``cut_after`` closes the connection after that many body bytes."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    cut_after: int | None = None


class _ScriptedServer:
    """``http.server`` on a loopback address: answers each path from a list, records every request.

    ``script[path]`` is a list of answers given in turn (the last one repeats); a path without a script
    gets a 404. Requests are recorded (path, query, lower-cased headers) before they are answered.
    """

    def __init__(self, host: str) -> None:
        self.script: dict[str, list[_Answer]] = {}
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                server.requests.append(
                    {
                        "path": parts.path,
                        "query": parts.query,
                        "target": self.path,
                        "headers": {name.lower(): value for name, value in self.headers.items()},
                    }
                )
                answers = server.script.get(parts.path) or [_Answer(404, body=b"not scripted")]
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                self.send_response(answer.status)
                headers = {"Content-Length": str(len(answer.body)), **answer.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                if answer.cut_after is not None:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(answer.body[: answer.cut_after])
                self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"scripted-{host}", daemon=True)
        self.thread.start()

    def url(self, path_and_query: str) -> str:
        return f"http://{self.host}:{self.port}{path_and_query}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
