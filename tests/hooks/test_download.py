"""Tests of the one download routine: hostile zips, path safety and manifests on their own, then real
downloads from the simulator's signed-URL file server (uvicorn on 127.0.0.1) with injected faults."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import random
import stat
import struct
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import uvicorn
from airflow.providers.common.compat.sdk import ObjectStoragePath
from airflow.sdk.io import store as object_store
from fastapi import FastAPI
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelTransportError
from airflow_provider_pixxel.hooks import download as download_module
from airflow_provider_pixxel.hooks.download import (
    DIGEST_SUFFIX,
    MANIFEST_NAME,
    DownloadResult,
    PixxelDownloadError,
    PixxelUnsafeArchiveError,
    download,
    resolve_destination,
    safe_extract_zip,
    write_bytes_atomically,
)
from airflow_provider_pixxel.hooks.retry import RetryPolicy
from airflow_provider_pixxel.simulator.faults import FaultInjector, FaultMiddleware, FaultRule
from airflow_provider_pixxel.simulator.files import Artifact, make_package, single_file
from airflow_provider_pixxel.simulator.signed_urls import FileStore, UrlSigner, files_router


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


# -- safe_extract_zip ---------------------------------------------------------------------------------


def test_safe_extract_zip_extracts_nested_members_with_digests(tmp_path: Path) -> None:
    archive = _write_zip(
        tmp_path / "pkg.zip",
        [("a.tif", b"band data"), ("sub/", b""), ("sub/b.geojson", b'{"type": "Feature"}')],
        compression=zipfile.ZIP_DEFLATED,
    )

    files = safe_extract_zip(archive, tmp_path / "out", max_bytes=1024, max_members=10)

    assert files == [
        {"path": "a.tif", "size": 9, "sha256": _sha(b"band data")},
        {"path": "sub/b.geojson", "size": 19, "sha256": _sha(b'{"type": "Feature"}')},
    ]
    assert (tmp_path / "out" / "sub" / "b.geojson").read_bytes() == b'{"type": "Feature"}'


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        pytest.param("../evil.txt", "'..'", id="parent-dir"),
        pytest.param("ok/../../evil.txt", "'..'", id="nested-parent-dir"),
        pytest.param("..\\evil.txt", "'..'", id="windows-parent-dir"),
        pytest.param("/etc/evil.txt", "absolute", id="absolute"),
        pytest.param("C:\\evil.txt", "absolute", id="drive-letter"),
        pytest.param(_typed_member("link", stat.S_IFLNK), "symbolic link", id="symlink"),
        pytest.param(_typed_member("dev", stat.S_IFCHR), "device", id="char-device"),
        pytest.param(_typed_member("fifo", stat.S_IFIFO), "device", id="fifo"),
        pytest.param(MANIFEST_NAME, "reserved", id="reserved-manifest-name"),
    ],
)
def test_safe_extract_zip_refuses_hostile_member_and_writes_nothing(
    tmp_path: Path, member: zipfile.ZipInfo | str, reason: str
) -> None:
    # The harmless member comes first: refusing must happen before anything is written.
    archive = _write_zip(tmp_path / "evil.zip", [("harmless.txt", b"x"), (member, b"/etc/passwd")])
    target = tmp_path / "deep" / "out"

    with pytest.raises(PixxelUnsafeArchiveError, match=reason):
        safe_extract_zip(archive, target, max_bytes=1024, max_members=10)

    assert not target.exists()
    assert _listing(tmp_path) == ["evil.zip"]


def test_safe_extract_zip_refuses_zip_bomb_by_declared_size(tmp_path: Path) -> None:
    # 20 MB of zeros deflate to about 20 kB: the declared size, not the archive size, must count.
    archive = _write_zip(
        tmp_path / "bomb.zip", [("zeros.bin", bytes(20_000_000))], compression=zipfile.ZIP_DEFLATED
    )
    assert archive.stat().st_size < 100_000

    with pytest.raises(PixxelUnsafeArchiveError, match="more than the limit of 1000000 bytes"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1_000_000, max_members=10)

    assert not (tmp_path / "out").exists()


def test_safe_extract_zip_refuses_too_many_members(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "many.zip", [(f"f{index}.txt", b"x") for index in range(11)])

    with pytest.raises(PixxelUnsafeArchiveError, match="11 members: more than the limit of 10"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1024, max_members=10)


def test_safe_extract_zip_refuses_duplicate_names(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "dup.zip", [("a.txt", b"first"), ("A.TXT", b"second")])

    with pytest.raises(PixxelUnsafeArchiveError, match="would overwrite"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1024, max_members=10)


def test_safe_extract_zip_removes_partial_output_when_a_member_lies_about_its_size(tmp_path: Path) -> None:
    data = bytearray(_zip_bytes([("good.txt", b"fine"), ("liar.bin", b"A" * 100)]))
    # Declare 10 uncompressed bytes for the 100-byte stored member, in both headers.
    local = data.index(b"PK\x03\x04", 1)
    struct.pack_into("<I", data, local + 22, 10)
    central = data.rindex(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 10)
    archive = tmp_path / "liar.zip"
    archive.write_bytes(bytes(data))

    with pytest.raises(PixxelUnsafeArchiveError, match="corrupt"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1024, max_members=10)

    assert not (tmp_path / "out").exists()


def test_safe_extract_zip_refuses_a_file_that_is_not_a_zip(tmp_path: Path) -> None:
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"<html>login page</html>")

    with pytest.raises(PixxelUnsafeArchiveError, match="not a readable zip"):
        safe_extract_zip(not_zip, tmp_path / "out", max_bytes=1024, max_members=10)


def test_safe_extract_zip_keeps_existing_files_when_extraction_fails(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    data = bytearray(_zip_bytes([("new.txt", b"A" * 100)]))
    struct.pack_into("<I", data, 22, 10)
    struct.pack_into("<I", data, data.rindex(b"PK\x01\x02") + 24, 10)
    archive = tmp_path / "broken.zip"
    archive.write_bytes(bytes(data))

    with pytest.raises(PixxelUnsafeArchiveError):
        safe_extract_zip(archive, target, max_bytes=1024, max_members=10)

    assert _listing(target) == ["mine.txt"]


def test_safe_extract_zip_does_not_follow_a_symlink_already_in_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (target / "sub").symlink_to(outside, target_is_directory=True)
    archive = _write_zip(tmp_path / "pkg.zip", [("sub/x.txt", b"through the link")])

    with pytest.raises(PixxelUnsafeArchiveError, match="leads outside"):
        safe_extract_zip(archive, target, max_bytes=1024, max_members=10)

    assert list(outside.iterdir()) == []


def test_safe_extract_zip_creates_missing_parent_folders(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "pkg.zip", [("a.txt", b"x")])

    files = safe_extract_zip(archive, tmp_path / "not" / "yet" / "there", max_bytes=1024, max_members=10)

    assert files == [{"path": "a.txt", "size": 1, "sha256": _sha(b"x")}]


# -- resolve_destination ------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", ["a.zip", "aoi/2026/x.tif", "./a/./b.png", "a/../b.png"])
def test_resolve_destination_accepts_paths_inside_the_base(tmp_path: Path, relative: str) -> None:
    resolved = resolve_destination(tmp_path, relative)

    assert isinstance(resolved, Path)
    assert tmp_path.resolve() in resolved.resolve().parents


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("../x.zip", "climbs out"),
        ("a/../../x.zip", "climbs out"),
        ("..\\x.zip", "climbs out"),
        ("/etc/passwd", "absolute"),
        ("C:\\x.zip", "absolute"),
        ("", "names no file"),
        (".", "names no file"),
        ("a\x00b", "NUL"),
    ],
)
def test_resolve_destination_refuses_escapes(tmp_path: Path, relative: str, reason: str) -> None:
    with pytest.raises(PixxelConfigError, match=reason):
        resolve_destination(tmp_path, relative)


def test_resolve_destination_refuses_a_symlink_leading_outside(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)

    with pytest.raises(PixxelConfigError, match="resolves outside"):
        resolve_destination(base, "link/x.tif")


def test_resolve_destination_joins_object_storage_paths() -> None:
    resolved = resolve_destination("s3://bucket/deliveries", "aoi/x.zip")

    assert str(resolved) == "s3://bucket/deliveries/aoi/x.zip"
    with pytest.raises(PixxelConfigError, match="climbs out"):
        resolve_destination("s3://bucket/deliveries", "../other/x.zip")


# -- write_bytes_atomically and the manifest skip -----------------------------------------------------


def test_write_bytes_atomically_writes_file_digest_and_no_part(tmp_path: Path) -> None:
    destination = tmp_path / "index" / "ndvi.png"
    png = b"\x89PNG..."

    result = write_bytes_atomically(png, destination)

    assert result == DownloadResult(path=str(destination), size=7, sha256=_sha(png))
    assert destination.read_bytes() == png
    assert (tmp_path / "index" / f"ndvi.png{DIGEST_SUFFIX}").read_text() == f"{_sha(png)}  ndvi.png\n"
    assert _listing(tmp_path / "index") == ["ndvi.png", "ndvi.png.sha256"]
    assert result.to_dict() == {
        "path": str(destination),
        "size": 7,
        "sha256": _sha(png),
        "files": [],
        "skipped": False,
    }
    json.dumps(result.to_dict())


def test_write_bytes_atomically_refuses_non_bytes(tmp_path: Path) -> None:
    with pytest.raises(PixxelConfigError, match="needs bytes"):
        write_bytes_atomically("text", tmp_path / "x.sld")  # type: ignore[arg-type]


def test_download_skips_a_file_matching_its_manifest_without_asking_for_a_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    destination = tmp_path / "x.tif"
    write_bytes_atomically(b"verified bytes", destination)

    with caplog.at_level(logging.INFO):
        result = download(_never_called, destination)

    assert result.skipped
    assert (result.size, result.sha256) == (14, _sha(b"verified bytes"))
    assert "skipping" in caplog.text


class _UrlRequested(Exception):
    pass


def _records_request() -> str:
    raise _UrlRequested


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.write_bytes(b"verified byteZ"), id="content-changed"),
        pytest.param(lambda path: path.with_name(path.name + DIGEST_SUFFIX).unlink(), id="no-manifest"),
        pytest.param(
            lambda path: path.with_name(path.name + DIGEST_SUFFIX).write_text("garbage"), id="bad-manifest"
        ),
    ],
)
def test_download_fetches_again_when_the_file_does_not_match(
    tmp_path: Path, damage: Callable[[Path], object]
) -> None:
    destination = tmp_path / "x.tif"
    write_bytes_atomically(b"verified bytes", destination)
    damage(destination)

    with pytest.raises(_UrlRequested):
        download(_records_request, destination)


def test_download_with_overwrite_fetches_even_a_verified_file(tmp_path: Path) -> None:
    destination = tmp_path / "x.tif"
    write_bytes_atomically(b"verified bytes", destination)

    with pytest.raises(_UrlRequested):
        download(_records_request, destination, overwrite=True)


def test_download_skips_an_extracted_package_matching_its_manifest(tmp_path: Path) -> None:
    destination = tmp_path / "pkg"
    destination.mkdir()
    (destination / "a.tif").write_bytes(b"band")
    files = [{"path": "a.tif", "size": 4, "sha256": _sha(b"band")}]
    (destination / MANIFEST_NAME).write_text(
        json.dumps({"archive": {"sha256": "ab" * 32, "size": 99}, "files": files})
    )

    result = download(_never_called, destination, extract=True)

    assert result == DownloadResult(
        path=str(destination), size=99, sha256="ab" * 32, files=files, skipped=True
    )

    (destination / "a.tif").write_bytes(b"BAND")
    with pytest.raises(_UrlRequested):
        download(_records_request, destination, extract=True)


def test_download_refuses_to_extract_over_a_foreign_directory_before_fetching(tmp_path: Path) -> None:
    destination = tmp_path / "pkg"
    destination.mkdir()
    (destination / "users-own.txt").write_text("not ours")

    with pytest.raises(PixxelConfigError, match="did not extract"):
        download(_never_called, destination, extract=True)


def test_download_refuses_a_directory_as_file_destination(tmp_path: Path) -> None:
    with pytest.raises(PixxelConfigError, match="is a directory"):
        download(_never_called, tmp_path, extract=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"expected_size": -1}, "expected_size"),
        ({"max_url_refreshes": -1}, "max_url_refreshes"),
        ({"max_extract_members": 0}, "max_extract_members"),
        ({"timeout": (0, 5)}, "timeout"),
    ],
)
def test_download_refuses_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        download(_never_called, tmp_path / "x", **kwargs)


# -- real downloads from the simulator's file server --------------------------------------------------


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


@pytest.fixture(scope="module")
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


class _Sleeps(list):
    """Records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


NO_JITTER = RetryPolicy(max_retries=3, initial_delay=1.0, jitter=lambda low, high: high)


def _random_file(artifact_id: str, size: int, filename: str = "scene.tif") -> Artifact:
    content = random.Random(artifact_id).randbytes(size)
    return single_file(artifact_id, filename=filename, media_type="image/tiff", content=content)


def test_plain_download_matches_the_artifact_digest(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("plain", 3_000_000))
    destination = tmp_path / "out" / "scene.tif"

    result = download(files.url_provider(artifact), destination, chunk_size=256 * 1024, sleep=_Sleeps())

    assert (result.size, result.sha256) == (artifact.length, artifact.sha256())
    assert result.path == str(destination)
    assert not result.skipped
    assert _sha(destination.read_bytes()) == artifact.sha256()
    assert _listing(tmp_path / "out") == ["scene.tif", "scene.tif.sha256"]
    assert files.range_headers == [None]


def test_progress_is_logged_per_tenth_not_per_chunk(
    files: _FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    artifact = files.publish(_random_file("progress", 2_000_000))

    download(files.url_provider(artifact), tmp_path / "scene.tif", chunk_size=32 * 1024)

    progress = [
        record.getMessage() for record in caplog.records if record.getMessage().startswith("Downloading ")
    ]
    # 62 chunks, but one line per 10 %.
    assert 9 <= len(progress) <= 10
    assert progress[-1].startswith("Downloading scene.tif: 100% (2.0 MB of 2.0 MB) at ")
    assert all("MB/s, ETA" in line for line in progress)


def test_signed_url_is_fetched_without_the_pixxel_authorization(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("no-auth", 10_000))
    hook_like_session = requests.Session()
    hook_like_session.headers["Authorization"] = "pixxel-api-key-123"
    hook_like_session.auth = ("user", "password")

    download(files.url_provider(artifact), tmp_path / "x.tif", session=hook_like_session)

    assert [request["headers"].get("authorization") for request in files.recorder.requests] == [None]
    assert hook_like_session.headers["Authorization"] == "pixxel-api-key-123"


def test_signed_url_query_is_masked(
    files: _FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    masked: list[str] = []
    monkeypatch.setattr(download_module, "mask_secret", masked.append)
    artifact = files.publish(_random_file("masked", 1_000))

    download(files.url_provider(artifact), tmp_path / "x.tif")

    query = urlsplit(files.handed_out[0]).query
    assert query in masked
    assert files.signatures()[0] in masked


def test_body_cut_mid_stream_resumes_with_range_byte_identical(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("cut", 2_500_000))
    files.faults.add(FaultRule(kind="truncate", path="^/files/", truncate_at=1_000_000, times=2))
    sleeps = _Sleeps()

    result = download(
        files.url_provider(artifact), tmp_path / "scene.tif", retry_policy=NO_JITTER, sleep=sleeps
    )

    assert result.sha256 == artifact.sha256() == _sha((tmp_path / "scene.tif").read_bytes())
    # Each truncated answer delivered 1,000,000 bytes of what was asked, so the resumes start there.
    assert files.range_headers == [None, "bytes=1000000-", "bytes=2000000-"]
    assert [request["headers"].get("if-range") for request in files.recorder.requests[1:]] == [
        artifact.etag
    ] * 2
    # Progress was made each time, so the backoff starts over at the first step.
    assert sleeps == [1.0, 1.0]
    assert len(files.handed_out) == 1


def test_connection_reset_is_retried_with_backoff(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("reset", 100_000))
    files.faults.add(FaultRule(kind="reset", path="^/files/", times=2))
    sleeps = _Sleeps()

    result = download(files.url_provider(artifact), tmp_path / "x.tif", retry_policy=NO_JITTER, sleep=sleeps)

    assert result.sha256 == artifact.sha256()
    assert sleeps == [1.0, 2.0]


def test_server_errors_are_retried_honouring_retry_after(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("busy", 50_000))
    files.faults.add(FaultRule(kind="status", status=503, path="^/files/", times=2, retry_after=7))
    sleeps = _Sleeps()

    result = download(files.url_provider(artifact), tmp_path / "x.tif", retry_policy=NO_JITTER, sleep=sleeps)

    assert result.sha256 == artifact.sha256()
    assert sleeps == [7.0, 7.0]


def test_read_timeout_is_an_interruption_that_is_retried(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("stall", 20_000))
    files.faults.add(FaultRule(kind="slow", path="^/files/", delay=5.0, times=1))
    sleeps = _Sleeps()

    result = download(
        files.url_provider(artifact),
        tmp_path / "x.tif",
        timeout=(5, 0.3),
        retry_policy=NO_JITTER,
        sleep=sleeps,
    )

    assert result.sha256 == artifact.sha256()
    assert sleeps == [1.0]


def test_expired_url_is_replaced_by_a_fresh_one(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("expiring", 300_000))
    sleeps = _Sleeps()

    result = download(files.expired_first_provider(artifact), tmp_path / "x.tif", sleep=sleeps)

    assert result.sha256 == artifact.sha256()
    assert len(files.handed_out) == 2
    assert sleeps == []


def test_url_expiring_after_a_cut_resumes_with_the_fresh_url(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("cut-then-expire", 600_000))
    files.faults.add(FaultRule(kind="truncate", path="^/files/", truncate_at=250_000, times=1))
    files.faults.add(FaultRule(kind="expire", path="^/files/", times=1))

    result = download(
        files.url_provider(artifact), tmp_path / "x.tif", retry_policy=NO_JITTER, sleep=_Sleeps()
    )

    assert result.sha256 == artifact.sha256()
    assert len(files.handed_out) == 2
    assert files.range_headers == [None, "bytes=250000-", "bytes=250000-"]
    assert files.recorder.requests[2]["query"] == urlsplit(files.handed_out[1]).query


def test_url_refreshes_are_bounded(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("always-expired", 1_000))
    files.faults.add(FaultRule(kind="expire", path="^/files/"))

    with pytest.raises(PixxelDownloadError, match="HTTP 403 even after 2 fresh signed URLs") as raised:
        download(files.url_provider(artifact), tmp_path / "x.tif", max_url_refreshes=2, sleep=_Sleeps())

    assert len(files.handed_out) == 3
    assert "signature" not in str(raised.value)
    assert not (tmp_path / "x.tif").exists()


def test_size_other_than_expected_is_refused_and_nothing_kept(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("wrong-size", 5_000))

    with pytest.raises(
        PixxelDownloadError, match=f"announces {artifact.length} bytes but 5001 were expected"
    ):
        download(files.url_provider(artifact), tmp_path / "x.tif", expected_size=artifact.length + 1)

    assert _listing(tmp_path) == []


def test_not_found_is_not_retried(files: _FileServer, tmp_path: Path) -> None:
    artifact = _random_file("never-published", 1_000)
    sleeps = _Sleeps()

    with pytest.raises(PixxelDownloadError, match="failed with HTTP 404"):
        download(files.url_provider(artifact), tmp_path / "x.tif", sleep=sleeps)

    assert sleeps == []
    assert _listing(tmp_path) == []


def test_failures_without_progress_are_bounded(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("always-reset", 10_000))
    files.faults.add(FaultRule(kind="reset", path="^/files/"))
    sleeps = _Sleeps()

    with pytest.raises(PixxelTransportError, match="gave up after 4 attempts") as raised:
        download(files.url_provider(artifact), tmp_path / "x.tif", retry_policy=NO_JITTER, sleep=sleeps)

    assert "Nothing was written" in str(raised.value)
    assert sleeps == [1.0, 2.0, 4.0]
    assert _listing(tmp_path) == []


def test_server_errors_that_persist_end_in_a_download_error(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("always-busy", 10_000))
    files.faults.add(FaultRule(kind="status", status=502, path="^/files/"))

    with pytest.raises(PixxelDownloadError, match="HTTP 502; gave up after 4 attempts"):
        download(files.url_provider(artifact), tmp_path / "x.tif", retry_policy=NO_JITTER, sleep=_Sleeps())


def test_resumes_after_progress_are_bounded_too(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("always-cut", 400_000))
    # Every answer delivers half of what was asked: progress each time, never the end.
    files.faults.add(FaultRule(kind="truncate", path="^/files/"))
    sleeps = _Sleeps()

    with pytest.raises(PixxelTransportError, match="gave up after 3 attempts") as raised:
        download(
            files.url_provider(artifact),
            tmp_path / "x.tif",
            retry_policy=NO_JITTER,
            sleep=sleeps,
            max_resumes=2,
        )

    assert "x.tif.part (350000 bytes) is kept" in str(raised.value)
    assert files.range_headers == [None, "bytes=200000-", "bytes=300000-"]
    assert sleeps == [1.0, 1.0]


def test_a_second_download_to_the_same_file_is_refused_while_one_runs(
    files: _FileServer, tmp_path: Path
) -> None:
    artifact = files.publish(_random_file("locked", 1_000))

    with (
        download_module._exclusive(tmp_path / "x.tif.part"),
        pytest.raises(PixxelDownloadError, match="Another process is already downloading"),
    ):
        download(files.url_provider(artifact), tmp_path / "x.tif")

    assert files.recorder.requests == []


def test_crash_leaves_only_part_and_a_rerun_resumes_it(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("crash", 1_500_000))
    destination = tmp_path / "scene.tif"
    files.faults.add(FaultRule(kind="truncate", path="^/files/", truncate_at=600_000, times=1))

    with pytest.raises(PixxelTransportError, match=r"partial file scene\.tif\.part") as raised:
        download(files.url_provider(artifact), destination, retry_policy=RetryPolicy(max_retries=0))

    assert "signature" not in str(raised.value)
    assert _listing(tmp_path) == ["scene.tif.part", "scene.tif.part.json"]
    assert (tmp_path / "scene.tif.part").stat().st_size == 600_000

    result = download(files.url_provider(artifact), destination, retry_policy=RetryPolicy(max_retries=0))

    assert result.sha256 == artifact.sha256()
    assert files.range_headers == [None, "bytes=600000-"]
    assert files.recorder.requests[1]["headers"]["if-range"] == artifact.etag
    assert _listing(tmp_path) == ["scene.tif", "scene.tif.sha256"]


def test_part_of_a_changed_file_is_restarted_from_zero(
    files: _FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = files.publish(_random_file("changing", 400_000))
    files.faults.add(FaultRule(kind="truncate", path="^/files/", truncate_at=100_000, times=1))
    with pytest.raises(PixxelTransportError):
        download(files.url_provider(old), tmp_path / "x.tif", retry_policy=RetryPolicy(max_retries=0))
    new = files.publish(
        Artifact(
            artifact_id="changing",
            filename=old.filename,
            media_type="image/tiff",
            parts=_random_file("changed-content", 300_000).parts,
        )
    )

    result = download(files.url_provider(new), tmp_path / "x.tif")

    # If-Range carried the old ETag, so the server sent the whole new file instead of a splice.
    assert files.range_headers == [None, "bytes=100000-"]
    assert files.recorder.requests[1]["headers"]["if-range"] == old.etag != new.etag
    assert (result.size, result.sha256) == (new.length, new.sha256())
    assert "server sent the whole file instead of resuming at byte 100000" in caplog.text


def test_complete_part_left_before_the_rename_is_finished_without_refetching(
    files: _FileServer, tmp_path: Path
) -> None:
    artifact = files.publish(_random_file("complete-part", 70_000))
    (tmp_path / "x.tif.part").write_bytes(artifact.read())
    (tmp_path / "x.tif.part.json").write_text(json.dumps({"etag": artifact.etag, "total": artifact.length}))

    result = download(files.url_provider(artifact), tmp_path / "x.tif")

    assert result.sha256 == artifact.sha256()
    assert files.range_headers == [f"bytes={artifact.length}-"]
    assert _listing(tmp_path) == ["x.tif", "x.tif.sha256"]


def test_part_without_its_record_is_not_trusted(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("stray-part", 50_000))
    (tmp_path / "x.tif.part").write_bytes(b"garbage from somewhere else")

    result = download(files.url_provider(artifact), tmp_path / "x.tif")

    assert result.sha256 == artifact.sha256()
    assert files.range_headers == [None]


def test_rerun_with_matching_manifest_makes_no_request(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("rerun", 40_000))
    first = download(files.url_provider(artifact), tmp_path / "x.tif")

    again = download(files.url_provider(artifact), tmp_path / "x.tif")

    assert again.skipped
    assert (again.size, again.sha256) == (first.size, first.sha256)
    assert len(files.recorder.requests) == 1
    assert len(files.handed_out) == 1


def test_object_storage_file_url_destination(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("osp-file", 120_000))
    destination = ObjectStoragePath(f"file://{tmp_path}/deliveries/scene.tif")

    result = download(files.url_provider(artifact), destination)

    assert result.sha256 == artifact.sha256()
    assert _sha((tmp_path / "deliveries" / "scene.tif").read_bytes()) == artifact.sha256()
    assert _listing(tmp_path / "deliveries") == ["scene.tif", "scene.tif.sha256"]


@pytest.fixture
def memory_store(monkeypatch: pytest.MonkeyPatch) -> MemoryFileSystem:
    """``memory://`` paths for ObjectStoragePath (Airflow registers no memory filesystem itself)."""
    filesystem = MemoryFileSystem()
    filesystem.store.clear()
    monkeypatch.setitem(
        object_store._STORE_CACHE, "memory", object_store.ObjectStore("memory", None, fs=filesystem)
    )
    return filesystem


def test_remote_destination_gets_nothing_partial(
    files: _FileServer, tmp_path: Path, memory_store: MemoryFileSystem
) -> None:
    artifact = files.publish(_random_file("osp-memory", 900_000))
    destination = ObjectStoragePath("memory://bucket/deliveries/scene.tif")
    files.faults.add(FaultRule(kind="truncate", path="^/files/", truncate_at=300_000, times=1))

    with pytest.raises(PixxelTransportError):
        download(files.url_provider(artifact), destination, retry_policy=RetryPolicy(max_retries=0))
    assert list(memory_store.store) == []

    result = download(files.url_provider(artifact), destination)

    assert result.sha256 == artifact.sha256()
    assert files.range_headers == [None, "bytes=300000-"]
    assert _sha(destination.read_bytes()) == artifact.sha256()
    assert sorted(memory_store.store) == [
        "/bucket/deliveries/scene.tif",
        "/bucket/deliveries/scene.tif.sha256",
    ]
    assert download(_never_called, destination).skipped


def test_remote_upload_failure_leaves_no_object(
    files: _FileServer, memory_store: MemoryFileSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = files.publish(_random_file("osp-upload-fails", 10_000))

    def failing_copy(source: Any, sink: Any, length: int = 0) -> None:
        sink.write(b"half")
        raise OSError("store went away")

    monkeypatch.setattr(download_module.shutil, "copyfileobj", failing_copy)

    with pytest.raises(OSError, match="store went away"):
        download(files.url_provider(artifact), ObjectStoragePath("memory://bucket/x.tif"))

    assert list(memory_store.store) == []


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


def test_real_package_is_extracted_with_file_digests(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_package("pkg-extract"))
    destination = tmp_path / "deliveries" / "pkg"

    result = download(files.url_provider(artifact), destination, extract=True)

    assert (result.size, result.sha256) == (artifact.length, artifact.sha256())
    assert result.files == _members(artifact)
    assert len(result.files) >= 4
    for entry in result.files:
        assert _sha((destination / entry["path"]).read_bytes()) == entry["sha256"]
    # Only the package folder remains: no zip, no .part, no staging folder.
    assert sorted(path.name for path in (tmp_path / "deliveries").iterdir()) == ["pkg"]
    manifest = json.loads((destination / MANIFEST_NAME).read_text())
    assert manifest["archive"] == {"sha256": artifact.sha256(), "size": artifact.length}
    assert len(json.dumps(result.to_dict())) < 2_000

    again = download(files.url_provider(artifact), destination, extract=True)
    assert again.skipped
    assert again.files == result.files
    assert len(files.recorder.requests) == 1


def test_package_replaces_an_earlier_extraction_at_once(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_package("pkg-replace"))
    destination = tmp_path / "pkg"
    download(files.url_provider(artifact), destination, extract=True)
    (destination / "stale-extra.txt").write_text("from an earlier run")

    result = download(files.url_provider(artifact), destination, extract=True, overwrite=True)

    assert sorted(path.name for path in destination.iterdir()) == sorted(
        [MANIFEST_NAME, *(entry["path"] for entry in result.files)]
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pkg"]


def test_package_to_object_storage(files: _FileServer, memory_store: MemoryFileSystem) -> None:
    artifact = files.publish(_package("pkg-remote"))
    destination = ObjectStoragePath("memory://bucket/pkg")

    result = download(files.url_provider(artifact), destination, extract=True)

    assert result.files == _members(artifact)
    assert sorted(memory_store.store) == sorted(
        [f"/bucket/pkg/{MANIFEST_NAME}", *(f"/bucket/pkg/{entry['path']}" for entry in result.files)]
    )
    assert download(_never_called, destination, extract=True).skipped


@pytest.mark.parametrize(
    "members",
    [
        pytest.param([("ok.tif", b"x"), ("../../escape.txt", b"owned")], id="parent-dir"),
        pytest.param([("ok.tif", b"x"), (_typed_member("link", stat.S_IFLNK), b"/etc/passwd")], id="symlink"),
        pytest.param([(f"f{index}", b"") for index in range(30)], id="too-many-members"),
    ],
)
def test_hostile_package_over_http_is_refused_leaving_nothing(
    files: _FileServer, tmp_path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]
) -> None:
    artifact = files.publish(
        single_file(
            "hostile", filename="hostile.zip", media_type="application/zip", content=_zip_bytes(members)
        )
    )
    workdir = tmp_path / "work"

    with pytest.raises(PixxelUnsafeArchiveError, match="Refusing zip"):
        download(files.url_provider(artifact), workdir / "pkg", extract=True, max_extract_members=20)

    assert _listing(tmp_path) == ["work"]


def test_zip_bomb_over_http_is_refused_leaving_nothing(files: _FileServer, tmp_path: Path) -> None:
    bomb = _zip_bytes([("zeros.bin", bytes(30_000_000))], compression=zipfile.ZIP_DEFLATED)
    artifact = files.publish(
        single_file("bomb", filename="bomb.zip", media_type="application/zip", content=bomb)
    )

    with pytest.raises(PixxelUnsafeArchiveError, match="more than the limit"):
        download(files.url_provider(artifact), tmp_path / "pkg", extract=True, max_extract_bytes=10_000_000)

    assert _listing(tmp_path) == []


# -- the writer thread and early writeback ---------------------------------------------------------

WRITER_THREAD_NAME = "pixxel-download-writer"


def _writer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == WRITER_THREAD_NAME]


def _progress() -> Any:
    return download_module._Progress(logging.getLogger("test-download"), "x", 0)


@pytest.fixture
def small_writeback(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Writeback windows of 64 KiB with one in flight, and a record of every sync_file_range call."""
    calls: list[tuple[int, int, int]] = []
    real = download_module._sync_file_range()

    def recording(descriptor: int, start: int, length: int, flags: int) -> None:
        calls.append((start, length, flags))
        if real is not None:
            real(descriptor, start, length, flags)

    monkeypatch.setattr(download_module, "_sync_file_range", lambda: recording)
    monkeypatch.setattr(download_module, "WRITEBACK_WINDOW", 64 * 1024)
    monkeypatch.setattr(download_module, "WRITEBACK_LAG", 1)
    return calls


def test_cut_and_resume_with_early_writeback_keeps_file_and_digest_exact(
    files: _FileServer, tmp_path: Path, small_writeback: list[tuple[int, int, int]]
) -> None:
    artifact = files.publish(_random_file("writeback-cut", 1_000_000))
    files.faults.add(FaultRule(kind="truncate", path="^/files/", truncate_at=300_000, times=1))

    result = download(
        files.url_provider(artifact),
        tmp_path / "x.tif",
        chunk_size=16 * 1024,
        retry_policy=NO_JITTER,
        sleep=_Sleeps(),
    )

    assert result.sha256 == artifact.sha256() == _sha((tmp_path / "x.tif").read_bytes())
    assert files.range_headers == [None, "bytes=300000-"]
    window = 64 * 1024
    started = [
        (start, length)
        for start, length, flags in small_writeback
        if flags == download_module._SYNC_FILE_RANGE_WRITE
    ]
    # Whole windows from byte 0 until the cut, then from the resume offset: never a range twice or
    # a range past what was written.
    assert started == [(index * window, window) for index in range(4)] + [
        (300_000 + index * window, window) for index in range(10)
    ]
    waited = [
        (start, length)
        for start, length, flags in small_writeback
        if flags == download_module._SYNC_FILE_RANGE_WAIT_ALL
    ]
    assert waited
    assert set(waited) <= set(started)
    assert not _writer_threads()


def test_disk_full_in_the_writer_thread_raises_oserror_and_a_rerun_resumes(
    files: _FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = files.publish(_random_file("disk-full", 1_000_000))
    destination = tmp_path / "x.tif"
    real_write = os.write
    room = 400_000

    def write_until_full(descriptor: int, data: Any) -> int:
        part = tmp_path / "x.tif.part"
        if not part.exists() or os.fstat(descriptor).st_ino != part.stat().st_ino:
            return real_write(descriptor, data)
        free = room - os.fstat(descriptor).st_size
        if free <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        # A short write first, as a filling disk does, then the error.
        return real_write(descriptor, bytes(data[:free]))

    monkeypatch.setattr(os, "write", write_until_full)
    with pytest.raises(OSError, match="No space left") as raised:
        download(files.url_provider(artifact), destination, chunk_size=16 * 1024, sleep=_Sleeps())
    monkeypatch.undo()

    assert raised.value.errno == errno.ENOSPC
    assert not isinstance(raised.value, (PixxelTransportError, PixxelDownloadError))
    assert not _writer_threads()
    assert _listing(tmp_path) == ["x.tif.part", "x.tif.part.json"]
    # The chunk that did not fit was cut back: the .part holds whole chunks, all of them hashed.
    kept = (tmp_path / "x.tif.part").stat().st_size
    assert kept == (room // (16 * 1024)) * 16 * 1024

    result = download(files.url_provider(artifact), destination)

    assert result.sha256 == artifact.sha256()
    assert files.range_headers == [None, f"bytes={kept}-"]


def test_io_error_seen_by_early_writeback_is_raised_not_swallowed(
    files: _FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_wait(descriptor: int, start: int, length: int, flags: int) -> None:
        # sync_file_range consumes the error it reports: a later fsync would not see it again.
        if flags == download_module._SYNC_FILE_RANGE_WAIT_ALL:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(download_module, "_sync_file_range", lambda: failing_wait)
    monkeypatch.setattr(download_module, "WRITEBACK_WINDOW", 64 * 1024)
    monkeypatch.setattr(download_module, "WRITEBACK_LAG", 1)
    artifact = files.publish(_random_file("writeback-eio", 500_000))

    with pytest.raises(OSError, match="Input/output error") as raised:
        download(files.url_provider(artifact), tmp_path / "x.tif", chunk_size=16 * 1024)

    assert (raised.value.errno, raised.value.filename) == (errno.EIO, "x.tif.part")
    assert not (tmp_path / "x.tif").exists()
    assert not _writer_threads()


def test_early_writeback_that_the_file_cannot_do_is_turned_off(
    files: _FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def unsupported(descriptor: int, start: int, length: int, flags: int) -> None:
        calls.append(flags)
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr(download_module, "_sync_file_range", lambda: unsupported)
    monkeypatch.setattr(download_module, "WRITEBACK_WINDOW", 64 * 1024)
    artifact = files.publish(_random_file("writeback-unsupported", 500_000))

    result = download(files.url_provider(artifact), tmp_path / "x.tif", chunk_size=16 * 1024)

    assert result.sha256 == artifact.sha256()
    assert calls == [download_module._SYNC_FILE_RANGE_WRITE]


class _InterruptedAtFirstProgressLine:
    """A task log whose first progress line meets Ctrl-C (or the task being killed) in the reader."""

    def info(self, msg: str, /, *args: Any) -> None:
        if msg.startswith("Downloading "):
            raise KeyboardInterrupt

    def warning(self, msg: str, /, *args: Any) -> None:
        pass


def test_interrupt_in_the_reader_stops_the_writer_and_a_rerun_resumes(
    files: _FileServer, tmp_path: Path
) -> None:
    artifact = files.publish(_random_file("ctrl-c", 2_000_000))
    destination = tmp_path / "x.tif"

    with pytest.raises(KeyboardInterrupt):
        download(
            files.url_provider(artifact),
            destination,
            chunk_size=32 * 1024,
            log=_InterruptedAtFirstProgressLine(),
        )

    assert not _writer_threads()
    assert _listing(tmp_path) == ["x.tif.part", "x.tif.part.json"]
    kept = (tmp_path / "x.tif.part").stat().st_size
    # The first progress line comes at 10 %, counted from what the writer had written.
    assert kept >= 200_000

    result = download(files.url_provider(artifact), destination)

    assert result.sha256 == artifact.sha256()
    assert files.range_headers == [None, f"bytes={kept}-"]


def _chunks_then(data: bytes, size: int, count: int, error: BaseException) -> Iterator[bytes]:
    for index in range(count):
        yield data[index * size : (index + 1) * size]
    raise error


@pytest.mark.parametrize(
    ("error", "all_kept"),
    [
        pytest.param(requests.exceptions.ConnectionError("cut"), True, id="body-cut-writes-what-arrived"),
        pytest.param(KeyboardInterrupt(), False, id="interrupt-drops-what-waits"),
    ],
)
def test_part_file_and_running_hash_stay_in_step_when_the_reader_stops(
    tmp_path: Path, error: BaseException, all_kept: bool
) -> None:
    data = random.Random(5).randbytes(64 * 1024)
    part = download_module._PartFile(tmp_path / "x.part", 1024)

    with pytest.raises(type(error)):
        part.append(_chunks_then(data, 1024, 40, error), _progress())

    on_disk = part.path.read_bytes()
    assert not _writer_threads()
    assert part.offset == len(on_disk)
    assert part.hasher.hexdigest() == _sha(on_disk)
    assert on_disk == data[: len(on_disk)]
    if all_kept:
        assert part.offset == 40 * 1024


class _SlotsReportingWaits:
    """Stands in for the writer's semaphore and tells when the reader has to wait for a free slot."""

    def __init__(self, slots: threading.Semaphore) -> None:
        self.slots = slots
        self.reader_waits = threading.Event()

    def acquire(self, blocking: bool = True) -> bool:
        if self.slots.acquire(blocking=False):
            return True
        if not blocking:
            return False
        self.reader_waits.set()
        return self.slots.acquire()

    def release(self) -> None:
        self.slots.release()


def test_reader_waits_once_depth_chunks_wait_for_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random.Random(6).randbytes(10 * 1024)
    part = download_module._PartFile(tmp_path / "x.part", 1024)
    descriptor = os.open(part.path, os.O_WRONLY | os.O_APPEND)
    handed_over = 0
    seen_when_reader_waited: list[tuple[bool, int, int]] = []
    write_chunk = part.write_chunk

    def write_once_the_reader_waits(fd: int, chunk: bytes) -> None:
        if not seen_when_reader_waited:
            # Nothing is written until the reader is stuck: an unbounded hand-over would never wait.
            waited = slots.reader_waits.wait(timeout=30)
            seen_when_reader_waited.append((waited, handed_over, part.offset))
        write_chunk(fd, chunk)

    monkeypatch.setattr(part, "write_chunk", write_once_the_reader_waits)
    try:
        writer = download_module._PartWriter(part, descriptor, depth=3)
        slots = _SlotsReportingWaits(writer._slots)
        writer._slots = slots  # type: ignore[assignment]
        for index in range(10):
            handed_over += 1
            writer.put(data[index * 1024 : (index + 1) * 1024])
        writer.close()
    finally:
        os.close(descriptor)

    # Three chunks handed over (one of them being written), the fourth waiting for a free slot.
    assert seen_when_reader_waited == [(True, 4, 0)]
    assert writer.waits_for_disk >= 1
    assert part.path.read_bytes() == data
    assert part.hasher.hexdigest() == _sha(data)
    assert not _writer_threads()


def test_writer_error_stops_the_reader_within_the_depth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = download_module._PartFile(tmp_path / "x.part", 1024)
    descriptor = os.open(part.path, os.O_WRONLY | os.O_APPEND)

    def disk_gone(fd: int, chunk: bytes) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(part, "write_chunk", disk_gone)
    handed_over: list[bytes] = []

    def hand_over_many(writer: Any) -> None:
        for _ in range(1_000):
            writer.put(b"x" * 1024)
            handed_over.append(b"x")

    try:
        writer = download_module._PartWriter(part, descriptor, depth=2)
        with pytest.raises(OSError, match="Input/output error") as raised:
            hand_over_many(writer)
        writer.close(abandon=True)
    finally:
        os.close(descriptor)

    assert raised.value.errno == errno.EIO
    # The failing chunk, then at most one per slot before the reader sees the error.
    assert len(handed_over) <= 3
    assert part.offset == 0
    assert not _writer_threads()
