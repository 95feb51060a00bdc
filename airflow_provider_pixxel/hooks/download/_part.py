"""The ``.part`` file being filled: its running hash, the writer thread that fills it, early writeback.

Throughput: the calling thread only reads the socket; a second thread (:class:`_PartWriter`) writes
and hashes each chunk, at most ``PIPELINE_DEPTH`` chunks behind, and has the kernel write the ``.part``
to disk as it grows (:class:`_EarlyWriteback`), so the ``fsync`` before the rename finds little left.
The hash always covers exactly the bytes in the ``.part``, whatever stops the transfer.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import hashlib
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from airflow_provider_pixxel.hooks.download._common import (
    _INTERRUPTIONS,
    PART_STATE_SUFFIX,
    PART_SUFFIX,
    _format_bytes,
    _Logger,
)

# Chunks read from the socket but not yet written: bounds memory at a few chunks, whatever the disk.
PIPELINE_DEPTH = 4
# Writeback of the .part starts every WRITEBACK_WINDOW bytes, and the writer waits once more than
# WRITEBACK_LAG windows are on their way to disk: about 80 MiB of the file dirty at most (BENCHMARKS.md §1).
WRITEBACK_WINDOW = 16 * 1024 * 1024
WRITEBACK_LAG = 4

# sync_file_range flags (<fcntl.h>): start writeback of a range; wait for it before and after.
_SYNC_FILE_RANGE_WRITE = 2
_SYNC_FILE_RANGE_WAIT_ALL = 1 | 2 | 4
# Answers meaning "this file or kernel cannot do early writeback", not "the write failed".
_WRITEBACK_UNSUPPORTED = frozenset({errno.ENOSYS, errno.EINVAL, errno.ESPIPE, errno.EOPNOTSUPP})


class _Progress:
    """Logs at every tenth of the file (or every 1 GB when the size is unknown), never per chunk."""

    UNKNOWN_SIZE_STEP = 1_000_000_000

    def __init__(self, log: _Logger, label: str, start_offset: int) -> None:
        self.log = log
        self.label = label
        self.total: int | None = None
        self.started = time.monotonic()
        self.start_offset = start_offset
        self.next_mark = 0

    def begin(self, total: int | None, offset: int) -> None:
        if total != self.total or offset < self.start_offset:
            self.started = time.monotonic()
            self.start_offset = offset
        self.total = total
        self.next_mark = self._mark_after(offset)

    def _mark_after(self, offset: int) -> int:
        if self.total:
            step = max(1, self.total // 10)
            return min(self.total, (offset // step + 1) * step)
        return (offset // self.UNKNOWN_SIZE_STEP + 1) * self.UNKNOWN_SIZE_STEP

    def update(self, offset: int) -> None:
        if offset < self.next_mark:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (offset - self.start_offset) / elapsed
        if self.total:
            eta = (self.total - offset) / rate if rate > 0 else float("inf")
            self.log.info(
                "Downloading %s: %d%% (%s of %s) at %.1f MB/s, ETA %.0f s",
                self.label,
                offset * 100 // self.total,
                _format_bytes(offset),
                _format_bytes(self.total),
                rate / 1_000_000,
                eta,
            )
        else:
            self.log.info(
                "Downloading %s: %s so far at %.1f MB/s", self.label, _format_bytes(offset), rate / 1_000_000
            )
        self.next_mark = self._mark_after(offset)


class _PartFile:
    """The ``.part`` being filled, the running hash of its bytes, and what the server said about it.

    The ETag and total size are kept in ``<name>.part.json`` (written before the first body byte), so a
    later run resumes with ``If-Range``; a ``.part`` without that record is not trusted and restarted.
    """

    def __init__(self, path: Path, chunk_size: int) -> None:
        self.path = path
        self.state_path = path.with_name(path.name[: -len(PART_SUFFIX)] + PART_STATE_SUFFIX)
        self.chunk_size = chunk_size
        self.hasher = hashlib.sha256()
        self.offset = 0
        self.etag: str | None = None
        self.total: int | None = None
        self._load()

    def _load(self) -> None:
        state = None
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(self.state_path.read_text())
        if not isinstance(state, dict) or not self.path.is_file():
            self.reset()
            return
        size = self.path.stat().st_size
        total = state.get("total")
        if isinstance(total, int) and size > total:
            self.reset()
            return
        with open(self.path, "rb") as stream:
            for block in iter(lambda: stream.read(self.chunk_size), b""):
                self.hasher.update(block)
        self.offset = size
        self.etag = state.get("etag") if isinstance(state.get("etag"), str) else None
        self.total = total if isinstance(total, int) else None

    def reset(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb"):
            pass
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()
        self.hasher = hashlib.sha256()
        self.offset = 0
        self.etag = None
        self.total = None

    def remember(self, etag: str | None, total: int | None) -> None:
        if (etag, total) == (self.etag, self.total) and self.state_path.exists():
            return
        self.etag, self.total = etag, total
        self.state_path.write_text(json.dumps({"etag": etag, "total": total}))

    def append(self, chunks: Iterator[bytes], progress: _Progress) -> None:
        """Add ``chunks`` to the end of the ``.part`` through a :class:`_PartWriter`; fsync what arrived.

        The chunks already handed over when the body is cut are still written (they are good bytes and
        save refetching them); on any other exception (``KeyboardInterrupt``, the task being killed)
        they are dropped. Either way the writer thread has ended before this returns or raises, and
        ``offset`` and ``hasher`` describe exactly the bytes in the file.
        """
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            writer = _PartWriter(self, descriptor)
            try:
                for chunk in chunks:
                    writer.put(chunk)
                    progress.update(self.offset)
            except _INTERRUPTIONS:
                writer.close()
                raise
            except BaseException:
                writer.close(abandon=True)
                raise
            writer.close()
            progress.update(self.offset)
        finally:
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)

    def write_chunk(self, descriptor: int, chunk: bytes) -> None:
        """Append one chunk, then hash it and count it: ``offset`` and ``hasher`` move only together.

        A write that fails part-way is cut back, so the file never holds bytes the hash has not seen.
        """
        view = memoryview(chunk)
        written = 0
        try:
            while written < len(view):
                written += os.write(descriptor, view[written:])
        except BaseException:
            if written:
                with contextlib.suppress(OSError):
                    os.ftruncate(descriptor, self.offset)
            raise
        self.hasher.update(view)
        self.offset += written

    def discard(self) -> None:
        for path in (self.path, self.state_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class _PartWriter:
    """Writes and hashes, in a second thread, the chunks the calling thread reads from the socket.

    Reading the socket, writing the page cache and SHA-256 each cost about the same (BENCHMARKS.md §1);
    socket reads, file writes and ``hashlib`` all release the GIL, so with the writing and hashing in
    a thread of their own the next chunk is read while the previous one is stored. At most
    ``PIPELINE_DEPTH`` chunks wait between the two (a semaphore, not a queue size, so that ``close``
    can always hand over its end marker): memory stays flat however slow the disk is, and a slow
    disk slows the reader down instead of filling memory.

    Errors in the writer are raised in the caller, with their own type, at the next ``put`` or at
    ``close``; after an error the writer only drains what is queued, so the reader never blocks on a
    dead writer. ``close`` always waits for the thread to end.
    """

    def __init__(self, part: _PartFile, descriptor: int, depth: int | None = None) -> None:
        self.part = part
        self.descriptor = descriptor
        self.depth = depth or PIPELINE_DEPTH
        # How often the reader had to wait for the disk: with a fast network, the disk is the limit.
        self.waits_for_disk = 0
        self._slots = threading.Semaphore(self.depth)
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._abandon = threading.Event()
        self._error: BaseException | None = None
        self._error_raised = False
        self._writeback = _EarlyWriteback(descriptor, part.offset, part.path.name)
        self._thread = threading.Thread(target=self._run, name="pixxel-download-writer", daemon=True)
        self._thread.start()

    def put(self, chunk: bytes) -> None:
        """Hand ``chunk`` over; blocks while ``depth`` chunks are waiting for the disk."""
        self._raise_error()
        if not self._slots.acquire(blocking=False):
            self.waits_for_disk += 1
            self._slots.acquire()
        self._chunks.put(chunk)

    def close(self, *, abandon: bool = False) -> None:
        """Let the writer finish what was handed over (or drop it, with ``abandon``), wait for it to end.

        Raises the writer's error, if it had one that ``put`` did not already raise.
        """
        if abandon:
            self._abandon.set()
        self._chunks.put(None)
        try:
            self._thread.join()
        except BaseException:
            # Interrupted while waiting: the thread must still not outlive the download.
            self._abandon.set()
            self._thread.join()
            raise
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None and not self._error_raised:
            self._error_raised = True
            raise self._error

    def _run(self) -> None:
        while True:
            chunk = self._chunks.get()
            if chunk is None:
                return
            try:
                if self._error is None and not self._abandon.is_set():
                    self.part.write_chunk(self.descriptor, chunk)
                    self._writeback.advance(self.part.offset)
            except BaseException as error:
                self._error = error
            finally:
                self._slots.release()


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], None] | None:
    """Linux's ``sync_file_range(2)`` (not in :mod:`os`), raising ``OSError``; None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int

    def sync_file_range(descriptor: int, start: int, length: int, flags: int) -> None:
        if function(descriptor, start, length, flags) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))

    return sync_file_range


class _EarlyWriteback:
    """Has the kernel write the ``.part`` to disk during the download, not all in the final ``fsync``.

    Every ``WRITEBACK_WINDOW`` bytes, writeback of the window just written starts (``SYNC_FILE_RANGE_WRITE``
    returns at once), and the window ``WRITEBACK_LAG`` windows behind is waited for and, now on disk,
    dropped from the page cache. The disk works while the network does, the final ``fsync`` finds
    at most a few windows dirty, and a large download neither piles up dirty memory nor pushes the
    worker's other files out of the page cache. Linux only; a no-op elsewhere.

    An I/O error reported while waiting is raised: ``sync_file_range`` consumes it, so the final
    ``fsync`` would no longer see it.
    """

    def __init__(self, descriptor: int, offset: int, name: str) -> None:
        self.descriptor = descriptor
        self.name = name
        self.mark = offset
        self.in_flight: collections.deque[tuple[int, int]] = collections.deque()
        self.sync_file_range = _sync_file_range()

    def advance(self, offset: int) -> None:
        """Called after each chunk with the new end of the file."""
        if self.sync_file_range is None or offset - self.mark < WRITEBACK_WINDOW:
            return
        if not self._sync(self.mark, offset - self.mark, _SYNC_FILE_RANGE_WRITE):
            return
        self.in_flight.append((self.mark, offset - self.mark))
        self.mark = offset
        if len(self.in_flight) > WRITEBACK_LAG:
            start, length = self.in_flight.popleft()
            if self._sync(start, length, _SYNC_FILE_RANGE_WAIT_ALL):
                with contextlib.suppress(OSError):
                    os.posix_fadvise(self.descriptor, start, length, os.POSIX_FADV_DONTNEED)

    def _sync(self, start: int, length: int, flags: int) -> bool:
        """Whether the call was made; False (and no more calls) where early writeback is unsupported."""
        sync_file_range = self.sync_file_range
        if sync_file_range is None:
            return False
        try:
            sync_file_range(self.descriptor, start, length, flags)
        except OSError as error:
            if error.errno in _WRITEBACK_UNSUPPORTED:
                self.sync_file_range = None
                return False
            raise OSError(error.errno, error.strerror, self.name) from None
        return True
