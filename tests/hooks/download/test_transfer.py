"""Transfer and resume: real downloads from the simulator's file server with injected faults."""

from __future__ import annotations

import json
import logging
import random
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_pixxel.exceptions import PixxelTransportError
from airflow_provider_pixxel.hooks.download import (
    MAX_REDIRECTS,
    PixxelDownloadError,
    PixxelUnsafeLinkError,
    _transfer,
    download,
)
from airflow_provider_pixxel.hooks.retry import RetryPolicy
from airflow_provider_pixxel.simulator.faults import FaultRule
from airflow_provider_pixxel.simulator.files import Artifact
from tests.hooks.download.support import (
    NO_JITTER,
    _Answer,
    _FileServer,
    _listing,
    _random_file,
    _ScriptedServer,
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


# -- hostile links, redirects and resumes (a scripted server on 127.0.0.1 and another on 127.0.0.2) ----

SIGNATURE = "sig-0123456789abcdef0123456789abcdef"


def _provider(url: str) -> Callable[[], str]:
    handed_out: list[str] = []

    def provide() -> str:
        handed_out.append(url)
        return url

    return provide


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param(
            f"http://files.example.com/scene.tif?signature={SIGNATURE}",
            "over plain http to files.example.com",
            id="plain-http-remote",
        ),
        pytest.param(
            f"https://user:hunter2@files.example.com/scene.tif?signature={SIGNATURE}",
            "carries credentials",
            id="credentials",
        ),
        pytest.param(f"ftp://files.example.com/scene.tif?signature={SIGNATURE}", "not an http", id="ftp"),
        pytest.param(
            f"https://files.example.com\\@127.0.0.1/scene.tif?signature={SIGNATURE}",
            "backslash",
            id="ambiguous-host",
        ),
    ],
)
def test_unsafe_link_is_refused_before_anything_is_sent(
    tmp_path: Path, url: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    connections: list[Any] = []
    monkeypatch.setattr(
        socket, "create_connection", lambda *args, **kwargs: connections.append(args) or _refuse()
    )
    sleeps = _Sleeps()

    with pytest.raises(PixxelUnsafeLinkError, match=reason) as refused:
        download(_provider(url), tmp_path / "scene.tif", retry_policy=NO_JITTER, sleep=sleeps)

    assert connections == []
    assert sleeps == []
    assert SIGNATURE not in str(refused.value)
    assert "hunter2" not in str(refused.value)
    assert _listing(tmp_path) == []


def _refuse() -> Any:
    raise ConnectionRefusedError("the test allows no connection")


def test_redirects_are_followed_by_hand_each_masked_and_without_credentials(
    here: _ScriptedServer,
    elsewhere: _ScriptedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    masked: list[str] = []
    monkeypatch.setattr(_transfer, "mask_secret", masked.append)
    caplog.set_level(logging.DEBUG, logger="airflow_provider_pixxel")
    content = random.Random(7).randbytes(50_000)
    hop_token = "hop-token-fedcba9876543210fedcba98"
    last_token = "last-token-00112233445566778899aabb"
    here.script["/start"] = [_Answer(302, {"Location": elsewhere.url(f"/hop?token={hop_token}")})]
    # A relative Location, resolved against the host that sent it.
    elsewhere.script["/hop"] = [_Answer(307, {"Location": f"/file?token={last_token}"})]
    elsewhere.script["/file"] = [_Answer(200, {"ETag": '"v1"'}, content)]
    session = requests.Session()
    session.headers["Authorization"] = "pixxel-api-key-123"
    session.auth = ("user", "password")

    result = download(
        _provider(here.url(f"/start?signature={SIGNATURE}")), tmp_path / "x.tif", session=session
    )

    assert result.sha256 == _sha(content) == _sha((tmp_path / "x.tif").read_bytes())
    assert [request["path"] for request in here.requests + elsewhere.requests] == ["/start", "/hop", "/file"]
    assert all("authorization" not in request["headers"] for request in here.requests + elsewhere.requests)
    assert {f"signature={SIGNATURE}", f"token={hop_token}", f"token={last_token}"} <= set(masked)
    for secret in (SIGNATURE, hop_token, last_token):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        pytest.param(
            f"http://files.example.com/scene.tif?signature={SIGNATURE}",
            "over plain http to files.example.com",
            id="plain-http-remote",
        ),
        pytest.param(f"ftp://files.example.com/scene.tif?signature={SIGNATURE}", "not an http", id="ftp"),
    ],
)
def test_redirect_to_an_unsafe_link_is_refused_before_it_is_followed(
    here: _ScriptedServer,
    tmp_path: Path,
    location: str,
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    masked: list[str] = []
    monkeypatch.setattr(_transfer, "mask_secret", masked.append)
    here.script["/start"] = [_Answer(302, {"Location": location})]
    sleeps = _Sleeps()

    with pytest.raises(PixxelUnsafeLinkError, match=reason) as refused:
        download(_provider(here.url("/start")), tmp_path / "x.tif", retry_policy=NO_JITTER, sleep=sleeps)

    assert SIGNATURE not in str(refused.value)
    assert f"signature={SIGNATURE}" in masked
    assert [request["path"] for request in here.requests] == ["/start"]
    assert sleeps == []
    assert _listing(tmp_path) == []


def test_redirect_carrying_credentials_to_another_host_is_refused_and_not_sent(
    here: _ScriptedServer, elsewhere: _ScriptedServer, tmp_path: Path
) -> None:
    target = elsewhere.url("/file").replace("http://", "http://user:hunter2@")
    here.script["/start"] = [_Answer(302, {"Location": target})]
    elsewhere.script["/file"] = [_Answer(200, body=b"should never be fetched")]

    with pytest.raises(PixxelUnsafeLinkError, match="carries credentials") as refused:
        download(_provider(here.url("/start")), tmp_path / "x.tif")

    assert "hunter2" not in str(refused.value)
    assert elsewhere.requests == []
    assert _listing(tmp_path) == []


def _redirect_chain(server: _ScriptedServer, redirects: int, content: bytes) -> str:
    for index in range(redirects):
        server.script[f"/r{index}"] = [_Answer(302, {"Location": f"/r{index + 1}"})]
    server.script[f"/r{redirects}"] = [_Answer(200, body=content)]
    return server.url("/r0")


def test_five_redirects_are_followed(here: _ScriptedServer, tmp_path: Path) -> None:
    content = b"after five redirects"

    result = download(_provider(_redirect_chain(here, MAX_REDIRECTS, content)), tmp_path / "x.tif")

    assert MAX_REDIRECTS == 5
    assert result.sha256 == _sha(content)
    assert len(here.requests) == 6


def test_a_sixth_redirect_is_refused_and_not_followed(here: _ScriptedServer, tmp_path: Path) -> None:
    url = _redirect_chain(here, MAX_REDIRECTS + 1, b"never fetched")

    with pytest.raises(PixxelUnsafeLinkError, match="redirected more than 5 times"):
        download(_provider(url), tmp_path / "x.tif")

    assert [request["path"] for request in here.requests] == [f"/r{index}" for index in range(6)]
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("callers_session", [False, True], ids=["own-session", "callers-session"])
def test_environment_proxies_and_netrc_are_not_used(
    files: _FileServer,
    elsewhere: _ScriptedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    callers_session: bool,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(netrc))
    # The "proxy" is a recorder on 127.0.0.2: a request that went through it would show up there.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, elsewhere.url(""))
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    artifact = files.publish(_random_file("no-environment", 20_000))
    session = requests.Session() if callers_session else None

    result = download(files.url_provider(artifact), tmp_path / "x.tif", session=session)

    assert result.sha256 == artifact.sha256()
    assert elsewhere.requests == []
    assert [request["headers"].get("authorization") for request in files.recorder.requests] == [None]


def _two_versions(size: int) -> tuple[bytes, bytes]:
    return random.Random(1).randbytes(size), random.Random(2).randbytes(size)


def test_a_resume_answered_from_another_version_restarts_instead_of_splicing(
    here: _ScriptedServer, tmp_path: Path
) -> None:
    v1, v2 = _two_versions(5_000)
    here.script["/file"] = [
        # Version 1, cut after 1,000 bytes.
        _Answer(200, {"ETag": '"v1"'}, v1, cut_after=1_000),
        # A server that ignores If-Range: version 2's bytes from 1,000 on, as if they continued v1.
        _Answer(206, {"ETag": '"v2"', "Content-Range": "bytes 1000-4999/5000"}, v2[1_000:]),
        _Answer(200, {"ETag": '"v2"'}, v2),
    ]
    sleeps = _Sleeps()

    result = download(_provider(here.url("/file")), tmp_path / "x.bin", retry_policy=NO_JITTER, sleep=sleeps)

    assert (tmp_path / "x.bin").read_bytes() == v2
    assert result.sha256 == _sha(v2)
    assert [request["headers"].get("range") for request in here.requests] == [None, "bytes=1000-", None]
    assert here.requests[1]["headers"].get("if-range") == '"v1"'


@pytest.fixture
def free_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``shutil.disk_usage`` reports ``free_bytes[0]`` free (a real full disk cannot be made in a test)."""
    free = [0]
    real = shutil.disk_usage

    def disk_usage(path: Any) -> Any:
        usage = real(path)
        return type(usage)(usage.total, usage.used, free[0])

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    return free


def test_a_download_larger_than_the_free_space_is_refused_before_writing(
    files: _FileServer, tmp_path: Path, free_bytes: list[int]
) -> None:
    artifact = files.publish(_random_file("no-space", 3_000_000))
    free_bytes[0] = 2_999_999

    with pytest.raises(PixxelDownloadError, match="needs 3000000 bytes, 2999999 free") as refused:
        download(files.url_provider(artifact), tmp_path / "x.tif")

    assert "Nothing was written" in str(refused.value)
    assert _listing(tmp_path) == []
    assert len(files.recorder.requests) == 1


def test_free_space_counts_what_a_resumed_part_already_holds(
    files: _FileServer, tmp_path: Path, free_bytes: list[int]
) -> None:
    artifact = files.publish(_random_file("space-resume", 3_000_000))
    files.faults.add(FaultRule(kind="truncate", path="^/files/", truncate_at=1_000_000, times=1))
    free_bytes[0] = 10**12
    with pytest.raises(PixxelTransportError):
        download(files.url_provider(artifact), tmp_path / "x.tif", retry_policy=RetryPolicy(max_retries=0))

    free_bytes[0] = 1_999_999
    with pytest.raises(PixxelDownloadError, match="needs 2000000 bytes, 1999999 free") as refused:
        download(files.url_provider(artifact), tmp_path / "x.tif")
    assert "x.tif.part (1000000 bytes) is kept" in str(refused.value)
    assert (tmp_path / "x.tif.part").stat().st_size == 1_000_000

    free_bytes[0] = 2_000_000
    result = download(files.url_provider(artifact), tmp_path / "x.tif")

    assert result.sha256 == artifact.sha256()
    assert files.range_headers == [None, "bytes=1000000-", "bytes=1000000-"]
