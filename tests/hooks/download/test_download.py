"""The package entry points: write_bytes_atomically and the argument checks of download."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.download import (
    DIGEST_SUFFIX,
    DownloadResult,
    download,
    write_bytes_atomically,
)
from tests.hooks.download.support import (
    _listing,
    _never_called,
    _sha,
)

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
