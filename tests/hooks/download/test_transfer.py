"""Transfer and resume: real downloads from the simulator's file server with injected faults."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_pixxel.exceptions import PixxelTransportError
from airflow_provider_pixxel.hooks.download import (
    PixxelDownloadError,
    _transfer,
    download,
)
from airflow_provider_pixxel.hooks.retry import RetryPolicy
from airflow_provider_pixxel.simulator.faults import FaultRule
from airflow_provider_pixxel.simulator.files import Artifact
from tests.hooks.download.support import (
    NO_JITTER,
    _FileServer,
    _listing,
    _random_file,
    _sha,
    _Sleeps,
)

# -- real downloads from the simulator's file server --------------------------------------------------


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
    monkeypatch.setattr(_transfer, "mask_secret", masked.append)
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
