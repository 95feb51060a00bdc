"""Destinations: path safety of templated names, and object-storage destinations."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelTransportError
from airflow_provider_pixxel.hooks.download import (
    download,
    resolve_destination,
)
from airflow_provider_pixxel.hooks.retry import RetryPolicy
from airflow_provider_pixxel.simulator.faults import FaultRule
from tests.hooks.download.support import (
    _FileServer,
    _listing,
    _never_called,
    _random_file,
    _sha,
)

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


def test_object_storage_file_url_destination(files: _FileServer, tmp_path: Path) -> None:
    artifact = files.publish(_random_file("osp-file", 120_000))
    destination = ObjectStoragePath(f"file://{tmp_path}/deliveries/scene.tif")

    result = download(files.url_provider(artifact), destination)

    assert result.sha256 == artifact.sha256()
    assert _sha((tmp_path / "deliveries" / "scene.tif").read_bytes()) == artifact.sha256()
    assert _listing(tmp_path / "deliveries") == ["scene.tif", "scene.tif.sha256"]


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
