"""Putting bytes in place: the manifest skip, destination checks, the lock, uploads and packages."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.download import (
    DIGEST_SUFFIX,
    MANIFEST_NAME,
    DownloadResult,
    PixxelDownloadError,
    _install,
    download,
    write_bytes_atomically,
)
from airflow_provider_pixxel.simulator.files import single_file
from tests.hooks.download.support import (
    _FileServer,
    _listing,
    _members,
    _never_called,
    _package,
    _random_file,
    _sha,
    _zip_bytes,
)


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


def test_a_second_download_to_the_same_file_is_refused_while_one_runs(
    files: _FileServer, tmp_path: Path
) -> None:
    artifact = files.publish(_random_file("locked", 1_000))

    with (
        _install._exclusive(tmp_path / "x.tif.part"),
        pytest.raises(PixxelDownloadError, match="Another process is already downloading"),
    ):
        download(files.url_provider(artifact), tmp_path / "x.tif")

    assert files.recorder.requests == []


def test_rerun_with_matching_manifest_makes_no_request(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("rerun", 40_000))
    first = download(files.url_provider(artifact), tmp_path / "x.tif")

    again = download(files.url_provider(artifact), tmp_path / "x.tif")

    assert again.skipped
    assert (again.size, again.sha256) == (first.size, first.sha256)
    assert len(files.recorder.requests) == 1
    assert len(files.handed_out) == 1


def test_remote_upload_failure_leaves_no_object(
    files: _FileServer, memory_store: MemoryFileSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = files.publish(_random_file("osp-upload-fails", 10_000))

    def failing_copy(source: Any, sink: Any, length: int = 0) -> None:
        sink.write(b"half")
        raise OSError("store went away")

    monkeypatch.setattr(_install.shutil, "copyfileobj", failing_copy)

    with pytest.raises(OSError, match="store went away"):
        download(files.url_provider(artifact), ObjectStoragePath("memory://bucket/x.tif"))

    assert list(memory_store.store) == []


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


def test_a_package_that_fails_to_extract_is_discarded_with_a_typed_error(
    files: _FileServer, tmp_path: Path
) -> None:
    # A member name longer than the filesystem allows: the archive is safe, but the write fails
    # (ENAMETOOLONG), every time, from these bytes.
    package = _zip_bytes([("ok.txt", b"fine"), ("n" * 300, b"too long a name")])
    artifact = files.publish(
        single_file("long-name", filename="long-name.zip", media_type="application/zip", content=package)
    )

    with pytest.raises(
        PixxelDownloadError, match=r"Extracting pkg failed .*a re-run downloads the package again"
    ):
        download(files.url_provider(artifact), tmp_path / "pkg", extract=True)

    # Neither the package folder nor the .part: a re-run fetches afresh instead of failing the same way.
    assert _listing(tmp_path) == []
