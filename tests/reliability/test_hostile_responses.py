"""Hostile responses: whatever a broken or malicious server sends, the provider refuses it clearly and
leaves no partial file behind.

A small loopback server answers each path with exactly the bytes, status and headers a row asks for
(including a body shorter than its ``Content-Length``). API answers go through ``PixxelHook`` and the
operators; file answers go through the download routine the download operators use.
"""

from __future__ import annotations

import io
import json
import socket
import stat
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_pixxel.exceptions import PixxelApiError, PixxelError, PixxelTransportError
from airflow_provider_pixxel.hooks.download import PixxelDownloadError, download
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.hooks.retry import RetryPolicy
from airflow_provider_pixxel.operators.visualizations import (
    PixxelGenerateIndexPngOperator,
    PixxelGenerateSldOperator,
)
from tests.task_runner import make_context, run_task


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    #: Declared length when it differs from the body (the connection is closed after the body).
    content_length: int | None = None


@dataclass
class HostileServer:
    base_url: str
    answers: dict[str, Answer] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)


def _handler(server_state: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            server_state.hits.append(path)
            answer = server_state.answers.get(path, Answer(404, b'{"error": {"message": "no such path"}}'))
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            declared = answer.content_length if answer.content_length is not None else len(answer.body)
            self.send_header("Content-Length", str(declared))
            if answer.content_length is not None:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(answer.body)
            self.wfile.flush()
            if answer.content_length is not None:
                self.connection.shutdown(socket.SHUT_WR)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(HostileServer("")))
    state = HostileServer(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    connection = {
        "conn_type": "pixxel",
        "host": state.base_url,
        "password": "hostile-test-key",
        "extra": {"project_id": "p1", "max_retries": 1},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if not p.is_dir())


def quick_hook() -> PixxelHook:
    return PixxelHook(retry_policy=RetryPolicy(max_retries=1, initial_delay=0.001, max_delay=0.001))


# -- API answers --------------------------------------------------------------------------------------

API_ROWS = [
    ("malformed JSON", Answer(body=b'{"data": [1, 2,'), PixxelApiError, "expected a JSON body"),
    (
        "HTML instead of JSON",
        Answer(body=b"<html>proxy login</html>", content_type="text/html"),
        PixxelApiError,
        "JSON",
    ),
    (
        "JSON body cut short",
        Answer(body=b'{"data": []', content_length=400),
        PixxelTransportError,
        "connection lost",
    ),
    (
        "error page that is not JSON",
        Answer(502, b"<html>Bad gateway</html>", "text/html"),
        PixxelApiError,
        "502",
    ),
]


@pytest.mark.parametrize(("case", "answer", "error", "text"), API_ROWS, ids=[row[0] for row in API_ROWS])
def test_hostile_api_answer_is_refused_clearly(
    hostile: HostileServer, case: str, answer: Answer, error: type[Exception], text: str
) -> None:
    hostile.answers["/v0/projects"] = answer

    with pytest.raises(error) as refused:
        quick_hook().list_projects()

    assert text in str(refused.value)
    assert "/v0/projects" in str(refused.value)
    assert "hostile-test-key" not in str(refused.value)


VIS = "/v0/aois/a1/visualizations/v1"


def png_task(destination: Path) -> PixxelGenerateIndexPngOperator:
    return PixxelGenerateIndexPngOperator(
        task_id="png",
        aoi_id="a1",
        visualization_id="v1",
        index_id="i1",
        date="2024-05-01",
        destination=str(destination),
    )


PNG_ROWS = [
    ("JSON error with status 200", Answer(body=b'{"error": {"message": "render failed"}}'), "PNG"),
    ("HTML page", Answer(body=b"<html>maintenance</html>", content_type="image/png"), "PNG"),
    ("PNG signature only", Answer(body=b"\x89PNG\r\n\x1a\n", content_type="image/png"), "PNG"),
    (
        "PNG cut short",
        Answer(body=b"\x89PNG\r\n\x1a\n" + b"\0" * 20, content_type="image/png", content_length=5000),
        "connection lost",
    ),
]


@pytest.mark.parametrize(("case", "answer", "text"), PNG_ROWS, ids=[row[0] for row in PNG_ROWS])
def test_png_endpoint_answering_something_else_writes_nothing(
    hostile: HostileServer, tmp_path: Path, case: str, answer: Answer, text: str
) -> None:
    hostile.answers[f"{VIS}/png"] = answer

    with pytest.raises(PixxelError) as refused:
        run_task(png_task(tmp_path / "ndvi.png"), make_context())

    assert text in str(refused.value)
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    "sld_text",
    ["not xml at all", "<html><body>oops</body></html>", '<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'],
    ids=["not XML", "wrong root", "entity declarations"],
)
def test_sld_endpoint_answering_something_else_writes_nothing(
    hostile: HostileServer, tmp_path: Path, sld_text: str
) -> None:
    hostile.answers[f"{VIS}/sld"] = Answer(body=json.dumps({"2024_05_01": {"dynamic": sld_text}}).encode())
    task = PixxelGenerateSldOperator(
        task_id="sld",
        aoi_id="a1",
        visualization_id="v1",
        dates="2024-05-01",
        destination=str(tmp_path),
        visualization_modes=["dynamic"],
    )

    with pytest.raises(PixxelError):
        run_task(task, make_context())

    assert files_under(tmp_path) == []


# -- packages behind signed URLs ------------------------------------------------------------------------


def zip_bytes(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            archive.writestr(info, data)
    return buffer.getvalue()


def symlink_member(name: str) -> zipfile.ZipInfo:
    """A symbolic-link entry, as ``zip -y`` stores one (the member's data is the link target)."""
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    info.create_system = 3
    return info


def huge_member() -> bytes:
    """One member of 64 MB of zeros (64 KB compressed), above the 32 MB limit the test sets."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        chunk = b"\0" * (1 << 20)
        for _ in range(64):
            member.write(chunk)
    return buffer.getvalue()


PACKAGE_ROWS = [
    ("member climbing out with ../", zip_bytes([("../../evil.sh", b"echo pwned")]), "escape"),
    ("member with an absolute path", zip_bytes([("/tmp/evil.sh", b"echo pwned")]), "absolute"),
    (
        "symbolic link member",
        zip_bytes([(symlink_member("data/link"), b"/etc/passwd")]),
        "link",
    ),
    ("huge uncompressed size", huge_member(), "bytes"),
    ("not a zip at all", b"<html>Access denied</html>", "zip"),
]


@pytest.mark.parametrize(("case", "package", "text"), PACKAGE_ROWS, ids=[row[0] for row in PACKAGE_ROWS])
def test_hostile_package_is_refused_and_leaves_nothing(
    hostile: HostileServer, tmp_path: Path, case: str, package: bytes, text: str
) -> None:
    hostile.answers["/files/package.zip"] = Answer(body=package, content_type="application/zip")
    destination = tmp_path / "out" / "package"

    with pytest.raises(PixxelDownloadError) as refused:
        download(
            lambda: f"{hostile.base_url}/files/package.zip?X-Signature=secret-token",
            destination,
            extract=True,
            retry_policy=RetryPolicy(max_retries=1, initial_delay=0.001, max_delay=0.001),
            max_extract_bytes=32 * 1024 * 1024,
        )

    assert text in str(refused.value).lower()
    assert "secret-token" not in str(refused.value)
    assert files_under(tmp_path) == []
    assert not (tmp_path / "evil.sh").exists()


def test_package_cut_short_every_time_leaves_no_final_file(hostile: HostileServer, tmp_path: Path) -> None:
    package = zip_bytes([("data/a.tif", b"x" * 10_000)])
    hostile.answers["/files/package.zip"] = Answer(
        body=package[: len(package) // 2], content_type="application/zip", content_length=len(package)
    )
    destination = tmp_path / "package.zip"

    with pytest.raises(PixxelError, match="body cut"):
        download(
            lambda: f"{hostile.base_url}/files/package.zip?X-Signature=secret-token",
            destination,
            retry_policy=RetryPolicy(max_retries=1, initial_delay=0.001, max_delay=0.001),
            max_resumes=1,
            sleep=lambda seconds: None,
        )

    assert not destination.exists()
    # Only a resumable .part (and its record) may stay, never anything under the final name.
    assert all(path.name.startswith(".") or ".part" in path.name for path in files_under(tmp_path))
