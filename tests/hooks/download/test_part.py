"""The .part file: its writer thread, its running hash and early writeback."""

from __future__ import annotations

import errno
import logging
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_pixxel.exceptions import PixxelTransportError
from airflow_provider_pixxel.hooks.download import (
    PixxelDownloadError,
    _part,
    download,
)
from airflow_provider_pixxel.simulator.faults import FaultRule
from tests.hooks.download.support import (
    NO_JITTER,
    _FileServer,
    _listing,
    _random_file,
    _sha,
    _Sleeps,
)

# -- the writer thread and early writeback ---------------------------------------------------------

WRITER_THREAD_NAME = "pixxel-download-writer"


def _writer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == WRITER_THREAD_NAME]


def _progress() -> Any:
    return _part._Progress(logging.getLogger("test-download"), "x", 0)


@pytest.fixture
def small_writeback(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Writeback windows of 64 KiB with one in flight, and a record of every sync_file_range call."""
    calls: list[tuple[int, int, int]] = []
    real = _part._sync_file_range()

    def recording(descriptor: int, start: int, length: int, flags: int) -> None:
        calls.append((start, length, flags))
        if real is not None:
            real(descriptor, start, length, flags)

    monkeypatch.setattr(_part, "_sync_file_range", lambda: recording)
    monkeypatch.setattr(_part, "WRITEBACK_WINDOW", 64 * 1024)
    monkeypatch.setattr(_part, "WRITEBACK_LAG", 1)
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
        (start, length) for start, length, flags in small_writeback if flags == _part._SYNC_FILE_RANGE_WRITE
    ]
    # Whole windows from byte 0 until the cut, then from the resume offset: never a range twice or
    # a range past what was written.
    assert started == [(index * window, window) for index in range(4)] + [
        (300_000 + index * window, window) for index in range(10)
    ]
    waited = [
        (start, length)
        for start, length, flags in small_writeback
        if flags == _part._SYNC_FILE_RANGE_WAIT_ALL
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
        if flags == _part._SYNC_FILE_RANGE_WAIT_ALL:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(_part, "_sync_file_range", lambda: failing_wait)
    monkeypatch.setattr(_part, "WRITEBACK_WINDOW", 64 * 1024)
    monkeypatch.setattr(_part, "WRITEBACK_LAG", 1)
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

    monkeypatch.setattr(_part, "_sync_file_range", lambda: unsupported)
    monkeypatch.setattr(_part, "WRITEBACK_WINDOW", 64 * 1024)
    artifact = files.publish(_random_file("writeback-unsupported", 500_000))

    result = download(files.url_provider(artifact), tmp_path / "x.tif", chunk_size=16 * 1024)

    assert result.sha256 == artifact.sha256()
    assert calls == [_part._SYNC_FILE_RANGE_WRITE]


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
    part = _part._PartFile(tmp_path / "x.part", 1024)

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
    part = _part._PartFile(tmp_path / "x.part", 1024)
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
        writer = _part._PartWriter(part, descriptor, depth=3)
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
    part = _part._PartFile(tmp_path / "x.part", 1024)
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
        writer = _part._PartWriter(part, descriptor, depth=2)
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
