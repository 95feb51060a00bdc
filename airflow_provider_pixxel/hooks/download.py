"""The provider's one download routine: every file that leaves Pixxel goes through :func:`download`.

What it guarantees, and why (see BAR.md §5 for the peers that lose data silently):

* **Nothing incomplete under the final name.** Bytes stream to ``<name>.part`` beside the destination
  (or, for object-storage destinations, to a local temporary file) and reach the final name only by an
  atomic rename (or a transactional upload) after the size is verified.
* **Interrupted bodies resume.** A connection that drops mid-body, a body cut short or a read timeout
  resumes from the last byte with ``Range`` (``If-Range`` with the ETag, so a file changed in between is
  fetched again from zero), under the shared :class:`~airflow_provider_pixxel.hooks.retry.RetryPolicy`
  backoff and a bounded number of attempts.
* **Expired signed URLs are replaced.** The routine takes a ``url_provider`` and asks it for a fresh URL
  when the file host answers 401/403/410 or says the request has expired.
* **Digests.** SHA-256 is computed while streaming (a resumed ``.part`` is hashed from disk first) and
  recorded in a sidecar manifest, so a re-run skips a file only when its content still matches.
* **Secrets.** Signed URLs are fetched without the Pixxel ``Authorization`` header, their query strings
  are passed to ``mask_secret`` and never written to a log line or an exception.
* **Safe extraction.** Zip packages are checked member by member (no absolute paths, no ``..``, no
  links or devices, bounded size and count) before anything is written, then moved into place at once.

Bytes are stored exactly as served: a ``Content-Encoding`` is not undone, so that ``Content-Length``,
``Range`` offsets and the digest all refer to the same bytes.

Throughput: the calling thread only reads the socket; a second thread (:class:`_PartWriter`) writes
and hashes each chunk, at most ``PIPELINE_DEPTH`` chunks behind, and has the kernel write the ``.part``
to disk as it grows (:class:`_EarlyWriteback`), so the ``fsync`` before the rename finds little left.
The hash always covers exactly the bytes in the ``.part``, whatever stops the transfer.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import functools
import hashlib
import http.client
import json
import logging
import os
import posixpath
import queue
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import requests
import urllib3.exceptions
from airflow.providers.common.compat.sdk import ObjectStoragePath, mask_secret
from requests.adapters import HTTPAdapter
from typing_extensions import TypeIs

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelError, PixxelTransportError
from airflow_provider_pixxel.hooks.retry import RETRYABLE_STATUS_CODES, RetryPolicy, parse_retry_after
from airflow_provider_pixxel.hooks.transport import USER_AGENT, strip_query

# 1 MiB, not more: each chunk is read, hashed and written while it is still in the CPU cache; 8 MiB
# chunks measured about 35 % slower on loopback (BENCHMARKS.md, "Download throughput").
DEFAULT_CHUNK_SIZE = 1024 * 1024
# Chunks read from the socket but not yet written: bounds memory at a few chunks, whatever the disk.
PIPELINE_DEPTH = 4
# Writeback of the .part starts every WRITEBACK_WINDOW bytes, and the writer waits once more than
# WRITEBACK_LAG windows are on their way to disk: about 80 MiB of the file dirty at most (BENCHMARKS.md §1).
WRITEBACK_WINDOW = 16 * 1024 * 1024
WRITEBACK_LAG = 4
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 120.0)
DEFAULT_MAX_URL_REFRESHES = 3
DEFAULT_MAX_RESUMES = 20
DEFAULT_MAX_EXTRACT_BYTES = 50 * 1024**3
DEFAULT_MAX_EXTRACT_MEMBERS = 10_000

PART_SUFFIX = ".part"
PART_STATE_SUFFIX = ".part.json"
DIGEST_SUFFIX = ".sha256"
MANIFEST_NAME = ".pixxel-manifest.json"

# The file host refusing a signed URL: a fresh URL may succeed where retrying the same one cannot.
URL_REFUSED_STATUSES = frozenset({401, 403, 410})
_EXPIRED_BODY = re.compile(
    rb"request has expired|expiredtoken|token.{0,20}expired|signature.{0,20}expired", re.I
)
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.I)
# Query values this long are signatures, credentials or tokens rather than dates or flags.
_SECRET_QUERY_VALUE_LENGTH = 16

_INTERRUPTIONS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.DecodeError,
    http.client.IncompleteRead,
    ConnectionError,
    TimeoutError,
)

_READ_ERRORS: tuple[type[BaseException], ...] = (*_INTERRUPTIONS, OSError)

# sync_file_range flags (<fcntl.h>): start writeback of a range; wait for it before and after.
_SYNC_FILE_RANGE_WRITE = 2
_SYNC_FILE_RANGE_WAIT_ALL = 1 | 2 | 4
# Answers meaning "this file or kernel cannot do early writeback", not "the write failed".
_WRITEBACK_UNSUPPORTED = frozenset({errno.ENOSYS, errno.EINVAL, errno.ESPIPE, errno.EOPNOTSUPP})

module_log = logging.getLogger(__name__)

Destination = str | os.PathLike[str] | ObjectStoragePath


class _Logger(Protocol):
    """Anything with ``info``/``warning`` taking %-style arguments: a stdlib logger or a task's ``self.log``.

    The message is positional-only because Airflow's task logger names it ``event``, not ``msg``.
    """

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...


class PixxelDownloadError(PixxelError):
    """A download failed or its bytes failed verification. Nothing was left under the final name."""


class PixxelUnsafeArchiveError(PixxelDownloadError):
    """A package was refused before extraction: a member would escape, link, or exceed the limits."""


@dataclass(frozen=True)
class DownloadResult:
    """What was written, for XCom: the path, size and SHA-256 of the download, never its content.

    ``files`` lists the members of an extracted package (relative path, size, sha256); ``skipped`` is
    True when a verified earlier download was kept and nothing was fetched.
    """

    path: str
    size: int
    sha256: str
    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, safe to return from an operator as its XCom."""
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "files": [dict(entry) for entry in self.files],
            "skipped": self.skipped,
        }


# -- destinations ------------------------------------------------------------------------------------

Target = Path | ObjectStoragePath


def _as_target(destination: Destination) -> Target:
    """A local ``Path``, or an ``ObjectStoragePath`` for anything that is not the local filesystem."""
    if isinstance(destination, ObjectStoragePath):
        remote = destination
    else:
        text = os.fspath(destination)
        if "://" not in text:
            return Path(text).expanduser()
        remote = ObjectStoragePath(text)
    if (remote.protocol or "file") in ("file", "local"):
        # A local URL gets the real atomic rename of a local path.
        return Path(remote.path)
    return remote


def _is_local(target: Target) -> TypeIs[Path]:
    # Not isinstance(target, Path): with universal-pathlib < 0.3 (Airflow 3.1) ObjectStoragePath is a
    # subclass of pathlib.Path.
    return not isinstance(target, ObjectStoragePath)


def resolve_destination(base_dir: Destination, relative: str | os.PathLike[str]) -> Target:
    """``base_dir / relative``, refusing any ``relative`` that would land outside ``base_dir``.

    Operators call this on templated file names: an absolute path, a ``..`` that climbs out, a drive
    letter or an empty name raises :class:`PixxelConfigError` naming the offending value.
    """
    text = os.fspath(relative)
    if "\x00" in text:
        raise PixxelConfigError(f"Destination {text!r} contains a NUL byte")
    if not text.strip() or text.strip() in (".", "./"):
        raise PixxelConfigError(
            f"Destination {text!r} names no file: give a file or directory name relative to {base_dir}"
        )
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).anchor:
        raise PixxelConfigError(
            f"Destination {text!r} is absolute; it must be relative to {base_dir} (for example 'aoi/x.zip')"
        )
    normalized = posixpath.normpath(text.replace("\\", "/"))
    if normalized == ".." or normalized.startswith("../"):
        raise PixxelConfigError(f"Destination {text!r} climbs out of {base_dir} with '..'; refusing it")
    base = _as_target(base_dir)
    if _is_local(base):
        resolved_base = base.resolve()
        candidate = (resolved_base / normalized).resolve()
        # Resolving also catches a symlink inside base_dir that points elsewhere.
        if candidate != resolved_base and resolved_base not in candidate.parents:
            raise PixxelConfigError(f"Destination {text!r} resolves outside {base_dir}; refusing it")
        return base / normalized
    return base / normalized


def _describe(target: Target) -> str:
    return str(target)


def _sibling(target: Target, suffix: str) -> Target:
    return target.with_name(target.name + suffix)


def _local_part_path(target: Target) -> Path:
    """Where the bytes of ``target`` stream to: beside it when local, else a stable local temp path.

    The temp path depends only on the destination, so a task retry on the same worker resumes it.
    """
    if _is_local(target):
        return target.with_name(target.name + PART_SUFFIX)
    key = hashlib.sha256(str(target).encode()).hexdigest()[:16]
    directory = Path(tempfile.gettempdir()) / "airflow-pixxel-downloads"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{key}-{target.name}{PART_SUFFIX}"


# -- hashing and manifests ---------------------------------------------------------------------------


def _hash_stream(stream: IO[bytes], chunk_size: int) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    for block in iter(lambda: stream.read(chunk_size), b""):
        hasher.update(block)
        size += len(block)
    return hasher.hexdigest(), size


def _hash_target(target: Target, chunk_size: int) -> tuple[str, int]:
    with target.open("rb") as stream:
        return _hash_stream(stream, chunk_size)


def _read_text(target: Target) -> str | None:
    try:
        if not target.is_file():
            return None
        with target.open("rb") as stream:
            return stream.read(1024 * 1024).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _recorded_digest(target: Target) -> str | None:
    """The SHA-256 in ``<target>.sha256`` (``sha256sum`` format), or None if absent or unreadable."""
    text = _read_text(_sibling(target, DIGEST_SUFFIX))
    if not text:
        return None
    digest = text.split(maxsplit=1)[0].lower()
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _write_local_atomically(destination: Path, write: Callable[[IO[bytes]], None]) -> None:
    part = destination.with_name(f"{destination.name}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}")
    try:
        with open(part, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise


def _upload(target: ObjectStoragePath, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``target`` in an fsspec transaction: an upload that fails leaves no object behind."""
    filesystem = target.fs
    with filesystem.transaction, target.open("wb") as handle:
        write(handle)


def _write_small(target: Target, content: bytes) -> None:
    def write(handle: IO[bytes]) -> None:
        handle.write(content)

    if _is_local(target):
        _write_local_atomically(target, write)
    else:
        _upload(target, write)


def _copy_file_to(source: Path, target: Target, chunk_size: int) -> None:
    def copy(handle: IO[bytes]) -> None:
        with open(source, "rb") as stream:
            shutil.copyfileobj(stream, handle, chunk_size)

    if _is_local(target):
        _write_local_atomically(target, copy)
    else:
        _upload(target, copy)


def _record_digest(target: Target, digest: str) -> None:
    _write_small(_sibling(target, DIGEST_SUFFIX), f"{digest}  {target.name}\n".encode())


def _verified_file(target: Target, chunk_size: int, log: _Logger) -> DownloadResult | None:
    """The result of an earlier download of ``target`` if its content still matches the manifest."""
    recorded = _recorded_digest(target)
    if recorded is None or not target.is_file():
        return None
    digest, size = _hash_target(target, chunk_size)
    if digest != recorded:
        log.warning(
            "%s does not match its recorded SHA-256 (changed or incomplete); downloading it again",
            _describe(target),
        )
        return None
    return DownloadResult(path=str(target), size=size, sha256=digest, skipped=True)


def _read_package_manifest(target: Target) -> dict[str, Any] | None:
    text = _read_text(target / MANIFEST_NAME)
    if not text:
        return None
    try:
        manifest = json.loads(text)
    except ValueError:
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return None
    return manifest


def _verified_package(target: Target, chunk_size: int, log: _Logger) -> DownloadResult | None:
    """The result of an earlier extraction into ``target`` if every listed file still matches."""
    manifest = _read_package_manifest(target)
    if manifest is None:
        return None
    for entry in manifest["files"]:
        member = target / entry["path"]
        if not member.is_file() or _hash_target(member, chunk_size) != (entry["sha256"], entry["size"]):
            log.warning(
                "%s in %s does not match the package manifest; downloading the package again",
                entry["path"],
                _describe(target),
            )
            return None
    archive = manifest.get("archive", {})
    return DownloadResult(
        path=str(target),
        size=int(archive.get("size", 0)),
        sha256=str(archive.get("sha256", "")),
        files=list(manifest["files"]),
        skipped=True,
    )


# -- zip safety --------------------------------------------------------------------------------------


def _member_path(name: str) -> PurePosixPath:
    """The safe relative path of a zip member, or :class:`PixxelUnsafeArchiveError`."""
    if "\x00" in name:
        raise PixxelUnsafeArchiveError(f"Refusing zip member {name!r}: NUL byte in its name")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or PureWindowsPath(name).anchor:
        raise PixxelUnsafeArchiveError(f"Refusing zip member {name!r}: absolute path")
    parts = [part for part in unified.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PixxelUnsafeArchiveError(
            f"Refusing zip member {name!r}: '..' would escape the target directory"
        )
    if not parts:
        raise PixxelUnsafeArchiveError(f"Refusing zip member {name!r}: empty path")
    return PurePosixPath(*parts)


def _check_member_type(info: zipfile.ZipInfo) -> None:
    mode = info.external_attr >> 16
    file_type = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        raise PixxelUnsafeArchiveError(f"Refusing zip member {info.filename!r}: it is a symbolic link")
    # Zips made on Windows carry no Unix mode (file_type 0); anything but a file or folder is refused.
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise PixxelUnsafeArchiveError(
            f"Refusing zip member {info.filename!r}: it is a device, pipe or socket, not a regular file"
        )
    if info.flag_bits & 0x1:
        raise PixxelUnsafeArchiveError(f"Refusing zip member {info.filename!r}: it is encrypted")


def _plan_extraction(
    archive: zipfile.ZipFile, *, max_bytes: int, max_members: int
) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Check every member before anything is written; a hostile archive is refused as a whole."""
    infos = archive.infolist()
    if len(infos) > max_members:
        raise PixxelUnsafeArchiveError(
            f"Refusing zip with {len(infos)} members: more than the limit of {max_members} "
            "(raise max_extract_members if the package is genuine)"
        )
    plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    seen: dict[str, str] = {}
    declared = 0
    for info in infos:
        relative = _member_path(info.filename)
        _check_member_type(info)
        if relative.parts[0] == MANIFEST_NAME:
            raise PixxelUnsafeArchiveError(
                f"Refusing zip member {info.filename!r}: {MANIFEST_NAME} is reserved"
            )
        key = relative.as_posix().casefold()
        if key in seen and not info.is_dir():
            raise PixxelUnsafeArchiveError(
                f"Refusing zip member {info.filename!r}: it would overwrite {seen[key]!r}"
            )
        seen[key] = info.filename
        declared += info.file_size
        if declared > max_bytes:
            raise PixxelUnsafeArchiveError(
                f"Refusing zip: its members unpack to more than the limit of {max_bytes} bytes "
                "(raise max_extract_bytes if the package is genuine)"
            )
        plan.append((info, relative))
    return plan


def safe_extract_zip(
    zip_path: str | os.PathLike[str],
    target_dir: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_EXTRACT_BYTES,
    max_members: int = DEFAULT_MAX_EXTRACT_MEMBERS,
    chunk_size: int = 1024 * 1024,
) -> list[dict[str, Any]]:
    """Extract ``zip_path`` into ``target_dir`` and list what was written (path, size, sha256).

    Every member is checked before the first byte is written: absolute paths, ``..``, links, devices,
    encrypted members, duplicate names, more than ``max_members`` members or more than ``max_bytes``
    declared bytes make the whole archive refused with :class:`PixxelUnsafeArchiveError`. The bytes
    actually inflated are counted too, and an archive that fails part-way (a CRC error, a member
    larger than declared) has everything it wrote removed again.
    """
    if max_bytes <= 0 or max_members <= 0:
        raise PixxelConfigError("max_bytes and max_members must be positive")
    target = Path(target_dir)
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as error:
        raise PixxelUnsafeArchiveError(
            f"{Path(zip_path).name} is not a readable zip archive: {error}"
        ) from None
    with archive:
        plan = _plan_extraction(archive, max_bytes=max_bytes, max_members=max_members)
        existing = next(path for path in (target, *target.parents) if path.exists())
        free = shutil.disk_usage(existing).free
        declared = sum(info.file_size for info, _ in plan)
        if declared > free:
            raise PixxelDownloadError(
                f"Not enough disk space to extract {Path(zip_path).name}: needs {declared} bytes, "
                f"{free} free under {target}"
            )
        created_root = not target.exists()
        target.mkdir(parents=True, exist_ok=True)
        target = target.resolve()
        written: list[Path] = []
        try:
            files = _extract_planned(archive, plan, target, max_bytes, chunk_size, written)
        except BaseException:
            _remove_extracted(target, written, created_root)
            raise
    return sorted(files, key=lambda entry: entry["path"])


def _extract_planned(
    archive: zipfile.ZipFile,
    plan: list[tuple[zipfile.ZipInfo, PurePosixPath]],
    target: Path,
    max_bytes: int,
    chunk_size: int,
    written: list[Path],
) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = []
    total = 0
    for info, relative in plan:
        destination = target.joinpath(*relative.parts)
        _check_stays_inside(target, destination, info.filename)
        if info.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        size = 0
        try:
            # "xb" never follows or replaces something already there.
            with archive.open(info) as source, open(destination, "xb") as sink:
                written.append(destination)
                for block in iter(lambda: source.read(chunk_size), b""):
                    size += len(block)
                    total += len(block)
                    if total > max_bytes:
                        raise PixxelUnsafeArchiveError(
                            f"Refusing zip: members inflate past the limit of {max_bytes} bytes"
                        )
                    hasher.update(block)
                    sink.write(block)
        except zipfile.BadZipFile as error:
            raise PixxelUnsafeArchiveError(f"Zip member {info.filename!r} is corrupt: {error}") from None
        files.append({"path": relative.as_posix(), "size": size, "sha256": hasher.hexdigest()})
    return files


def _check_stays_inside(target: Path, destination: Path, member: str) -> None:
    """A symlink already inside an existing ``target_dir`` must not carry a member out of it."""
    existing = next(
        path for path in (destination, *destination.parents) if path.exists() or path.is_symlink()
    )
    if not existing.resolve().is_relative_to(target):
        raise PixxelUnsafeArchiveError(f"Refusing zip member {member!r}: its path leads outside {target}")


def _remove_extracted(target: Path, written: list[Path], created_root: bool) -> None:
    if created_root:
        shutil.rmtree(target, ignore_errors=True)
        return
    for path in written:
        with contextlib.suppress(OSError):
            path.unlink()


# -- the transfer ------------------------------------------------------------------------------------


class _Interrupted(Exception):
    """One attempt ended early in a way that another attempt can fix."""

    def __init__(self, reason: str, *, retry_after: float | None = None, network: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.network = network


class _UrlRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _StripAuthorization(requests.auth.AuthBase):
    """Removes any ``Authorization`` a session would add (its headers, its auth, ``.netrc``).

    Signed URLs carry their own credentials; cloud stores refuse a request that has a second one,
    and the Pixxel API key must never travel to a file host.
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


class _SignedUrlSession(requests.Session):
    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        # requests would re-add .netrc credentials on a redirect; a signed URL needs none.
        prepared_request.headers.pop("Authorization", None)


def _plain_session() -> requests.Session:
    session = _SignedUrlSession()
    # Retries, including of the body, are ours; urllib3's own would restart from byte zero.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=2, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def _mask_signed_url(url: str) -> None:
    query = urlsplit(url).query
    if not query:
        return
    mask_secret(query)
    for _, value in parse_qsl(query, keep_blank_values=False):
        if len(value) >= _SECRET_QUERY_VALUE_LENGTH:
            mask_secret(value)


def _format_bytes(count: float) -> str:
    return f"{count / 1_000_000:.1f} MB"


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


def _leftover(part: _PartFile) -> str:
    if part.offset:
        return f"The partial file {part.path.name} ({part.offset} bytes) is kept and a re-run resumes it."
    return "Nothing was written."


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from ``bytes 100-199/1000`` or ``bytes */1000``."""
    match = _CONTENT_RANGE.match(value or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return start, total


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


class _Transfer:
    def __init__(
        self,
        *,
        url_provider: Callable[[], str],
        session: requests.Session,
        label: str,
        expected_size: int | None,
        chunk_size: int,
        retry_policy: RetryPolicy,
        sleep: Callable[[float], None],
        log: _Logger,
        max_url_refreshes: int,
        max_resumes: int,
        timeout: tuple[float, float],
    ) -> None:
        self.url_provider = url_provider
        self.session = session
        self.label = label
        self.expected_size = expected_size
        self.chunk_size = chunk_size
        self.retry_policy = retry_policy
        self.sleep = sleep
        self.log = log
        self.max_url_refreshes = max_url_refreshes
        self.max_resumes = max_resumes
        self.timeout = timeout
        self.url = ""

    def _next_url(self) -> str:
        url = self.url_provider()
        if not isinstance(url, str) or not url.strip():
            raise PixxelDownloadError(f"No download URL was provided for {self.label}")
        url = url.strip()
        _mask_signed_url(url)
        if urlsplit(url).scheme not in ("http", "https"):
            raise PixxelDownloadError(f"Download URL for {self.label} is not http(s): {strip_query(url)}")
        return url

    def run(self, part: _PartFile) -> None:
        """Fill ``part`` completely, resuming and refreshing the URL as needed."""
        self.url = self._next_url()
        progress = _Progress(self.log, self.label, part.offset)
        if part.offset:
            self.log.info(
                "Resuming %s from byte %d (%s already on disk)",
                self.label,
                part.offset,
                _format_bytes(part.offset),
            )
        refreshes = failures = resumes = attempts = 0
        while True:
            before = part.offset
            attempts += 1
            try:
                self._attempt(part, progress)
                return
            except _UrlRefused as refused:
                refreshes += 1
                if refreshes > self.max_url_refreshes:
                    raise PixxelDownloadError(
                        f"The file host refused {strip_query(self.url)} with HTTP {refused.status} even "
                        f"after {self.max_url_refreshes} fresh signed URLs. {_leftover(part)}"
                    ) from None
                self.log.info(
                    "Signed URL for %s was refused (HTTP %d), probably expired; requesting a fresh one "
                    "(%d of %d)",
                    self.label,
                    refused.status,
                    refreshes,
                    self.max_url_refreshes,
                )
                self.url = self._next_url()
            except _Interrupted as interruption:
                if part.offset > before:
                    # Progress proves the link works: the backoff starts over, the resume budget shrinks.
                    failures = 0
                    resumes += 1
                failures += 1
                if failures > self.retry_policy.max_retries or resumes > self.max_resumes:
                    raise self._gave_up(interruption, part, attempts) from None
                wait = self.retry_policy.delay(failures, interruption)
                self.log.warning(
                    "Download of %s interrupted at byte %d (%s); retry %d of %d in %.1f s%s",
                    self.label,
                    part.offset,
                    interruption.reason,
                    failures,
                    self.retry_policy.max_retries,
                    wait,
                    " with Range" if part.offset else "",
                )
                self.sleep(wait)

    def _gave_up(self, interruption: _Interrupted, part: _PartFile, attempts: int) -> PixxelError:
        url = strip_query(self.url)
        message = (
            f"GET {url} failed: {interruption.reason}; gave up after {attempts} attempts "
            f"(at most {self.retry_policy.max_retries} retries in a row without progress and "
            f"{self.max_resumes} resumes). {_leftover(part)}"
        )
        if interruption.network:
            return PixxelTransportError(message, method="GET", url=url, request_sent=True)
        return PixxelDownloadError(message)

    def _attempt(self, part: _PartFile, progress: _Progress) -> None:
        headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
        if part.offset:
            headers["Range"] = f"bytes={part.offset}-"
            # If-Range needs a strong validator; a weak one could splice two versions of a file.
            if part.etag and not part.etag.startswith("W/"):
                headers["If-Range"] = part.etag
        try:
            response = self.session.get(
                self.url,
                headers=headers,
                auth=_StripAuthorization(),
                stream=True,
                timeout=self.timeout,
                allow_redirects=True,
            )
        except requests.exceptions.SSLError:
            # A certificate problem does not heal by retrying.
            raise PixxelDownloadError(
                f"GET {strip_query(self.url)} failed: the TLS certificate of the file host was refused"
            ) from None
        except _INTERRUPTIONS as error:
            raise _Interrupted(type(error).__name__) from None
        except requests.exceptions.RequestException as error:
            raise PixxelDownloadError(f"GET {strip_query(self.url)} failed: {type(error).__name__}") from None
        with contextlib.closing(response):
            try:
                total = self._accept(response, part)
            except _AlreadyComplete:
                return
            if total is None and part.offset == 0 and self.expected_size is None:
                self.log.warning(
                    "%s: the server sent no size, so completeness cannot be verified", self.label
                )
            progress.begin(total, part.offset)
            try:
                part.append(response.raw.stream(self.chunk_size, decode_content=False), progress)
            except _INTERRUPTIONS as error:
                raise _Interrupted(f"body cut: {type(error).__name__}") from None
        if total is not None and part.offset < total:
            raise _Interrupted(f"body ended at byte {part.offset} of {total}")
        if total is not None and part.offset > total:
            part.discard()
            raise PixxelDownloadError(
                f"GET {strip_query(self.url)} sent {part.offset} bytes, more than the {total} it announced"
            )

    def _accept(self, response: requests.Response, part: _PartFile) -> int | None:
        """Check the status and headers of an answer; returns the file's total size if known."""
        status = response.status_code
        url = strip_query(response.url or self.url)
        if status in URL_REFUSED_STATUSES or (status == 400 and self._says_expired(response)):
            raise _UrlRefused(status)
        if status == 416:
            _, total = _parse_content_range(response.headers.get("Content-Range"))
            if total is not None and total == part.offset:
                raise _AlreadyComplete(total)
            self.log.warning(
                "%s: server refused to resume at byte %d; restarting from zero", self.label, part.offset
            )
            part.reset()
            raise _Interrupted("range not satisfiable", network=False)
        if status in RETRYABLE_STATUS_CODES:
            raise _Interrupted(
                f"HTTP {status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                network=False,
            )
        if status not in (200, 206):
            raise PixxelDownloadError(f"GET {url} failed with HTTP {status}")
        etag = response.headers.get("ETag")
        if status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            changed = part.total is not None and total is not None and total != part.total
            if start != part.offset or changed:
                self.log.warning(
                    "%s: server resumed at byte %s instead of %d; restarting from zero",
                    self.label,
                    start,
                    part.offset,
                )
                part.reset()
                raise _Interrupted("mismatched Content-Range", network=False)
        else:
            if part.offset:
                self.log.warning(
                    "%s: server sent the whole file instead of resuming at byte %d (changed or no Range "
                    "support); restarting from zero",
                    self.label,
                    part.offset,
                )
                part.reset()
            total = _content_length(response)
        if self.expected_size is not None and total is not None and total != self.expected_size:
            part.discard()
            raise PixxelDownloadError(
                f"GET {url} announces {total} bytes but {self.expected_size} were expected; refusing it"
            )
        part.remember(etag, total if total is not None else part.total)
        return total if total is not None else part.total

    @staticmethod
    def _says_expired(response: requests.Response) -> bool:
        try:
            head = response.raw.read(4096, decode_content=True) or b""
        except _READ_ERRORS:
            return False
        return bool(_EXPIRED_BODY.search(head))


class _AlreadyComplete(Exception):
    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.total = total


# -- putting verified bytes in place -----------------------------------------------------------------


def _check_destination(target: Target, *, extract: bool, overwrite: bool) -> None:
    """Refuse, before any byte is fetched, a destination the download could not or should not replace."""
    if not _is_local(target):
        return
    if not extract:
        if target.is_dir():
            raise PixxelConfigError(
                f"Destination {target} is a directory; give a file path, or pass extract=True for a package"
            )
        return
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        if not overwrite:
            raise PixxelConfigError(
                f"Destination {target} exists and is not a directory; a package extracts into a "
                "directory. Choose another path or pass overwrite=True to replace it"
            )
        return
    if target.is_dir() and not overwrite and not (target / MANIFEST_NAME).exists() and any(target.iterdir()):
        raise PixxelConfigError(
            f"Destination {target} already holds files that this provider did not extract; the "
            "package replaces the whole directory. Use an empty or new directory, or pass overwrite=True"
        )


def _swap_into_place(extracted: Path, target: Path) -> None:
    """Make ``extracted`` appear as ``target`` by renames, so readers never see a half-filled folder."""
    if not target.exists() and not target.is_symlink():
        os.rename(extracted, target)
        return
    if target.is_dir() and not target.is_symlink():
        retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(target, retired)
        try:
            os.rename(extracted, target)
        except BaseException:
            os.rename(retired, target)
            raise
        shutil.rmtree(retired, ignore_errors=True)
        return
    target.unlink()
    os.rename(extracted, target)


def _install_file(part: _PartFile, target: Target, digest: str, chunk_size: int) -> None:
    if _is_local(target):
        os.replace(part.path, target)
        part.discard()
    else:
        _copy_file_to(part.path, target, chunk_size)
        part.discard()
    _record_digest(target, digest)


def _install_package(
    part: _PartFile,
    target: Target,
    digest: str,
    size: int,
    *,
    max_bytes: int,
    max_members: int,
    chunk_size: int,
) -> list[dict[str, Any]]:
    if _is_local(target):
        # Beside the destination, so the final move is a rename on the same filesystem.
        staging = target.with_name(f".{target.name}.extract-{uuid.uuid4().hex[:8]}")
    else:
        staging = Path(tempfile.mkdtemp(prefix="pixxel-extract-"))
    try:
        files = safe_extract_zip(
            part.path, staging, max_bytes=max_bytes, max_members=max_members, chunk_size=chunk_size
        )
        manifest = json.dumps({"archive": {"sha256": digest, "size": size}, "files": files}, indent=1)
        if _is_local(target):
            (staging / MANIFEST_NAME).write_text(manifest)
            _swap_into_place(staging, target)
        else:
            for entry in files:
                _copy_file_to(staging.joinpath(*entry["path"].split("/")), target / entry["path"], chunk_size)
            # Written last: a package without its manifest is never taken as complete.
            _write_small(target / MANIFEST_NAME, manifest.encode())
    except PixxelUnsafeArchiveError:
        shutil.rmtree(staging, ignore_errors=True)
        part.discard()
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not _is_local(target):
        shutil.rmtree(staging, ignore_errors=True)
    part.discard()
    return files


def _install(
    part: _PartFile,
    target: Target,
    digest: str,
    size: int,
    *,
    extract: bool,
    max_bytes: int,
    max_members: int,
    chunk_size: int,
) -> list[dict[str, Any]]:
    if extract:
        return _install_package(
            part, target, digest, size, max_bytes=max_bytes, max_members=max_members, chunk_size=chunk_size
        )
    _install_file(part, target, digest, chunk_size)
    return []


@contextlib.contextmanager
def _exclusive(part_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the ``.part`` so two runs never fill the same file at once.

    (A zombie task and its retry can overlap in Airflow.) The lock dies with the process.
    """
    part_path.parent.mkdir(parents=True, exist_ok=True)
    with open(part_path, "ab") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PixxelDownloadError(
                f"Another process is already downloading to {part_path.name}; not starting a second "
                "download of the same file"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _check_arguments(
    *,
    chunk_size: int,
    expected_size: int | None,
    max_url_refreshes: int,
    max_resumes: int,
    max_extract_bytes: int,
    max_extract_members: int,
    timeout: tuple[float, ...],
) -> None:
    problems = []
    if chunk_size <= 0:
        problems.append(f"chunk_size must be positive, got {chunk_size}")
    if expected_size is not None and expected_size < 0:
        problems.append(f"expected_size must be 0 or more, got {expected_size}")
    if max_url_refreshes < 0 or max_resumes < 0:
        problems.append("max_url_refreshes and max_resumes must be 0 or more")
    if max_extract_bytes <= 0 or max_extract_members <= 0:
        problems.append("max_extract_bytes and max_extract_members must be positive")
    if len(timeout) != 2 or min(timeout) <= 0:
        problems.append(f"timeout must be a (connect, read) pair of positive seconds, got {timeout!r}")
    if problems:
        raise PixxelConfigError("; ".join(problems))


def download(
    url_provider: Callable[[], str],
    destination: Destination,
    *,
    session: requests.Session | None = None,
    expected_size: int | None = None,
    extract: bool = False,
    overwrite: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    retry_policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    log: _Logger | None = None,
    max_url_refreshes: int = DEFAULT_MAX_URL_REFRESHES,
    max_extract_bytes: int = DEFAULT_MAX_EXTRACT_BYTES,
    max_extract_members: int = DEFAULT_MAX_EXTRACT_MEMBERS,
    max_resumes: int = DEFAULT_MAX_RESUMES,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> DownloadResult:
    """Download the file behind a signed URL to ``destination``, verified, resumable and atomic.

    :param url_provider: returns a signed URL; called once at the start (only if there is something
        to fetch) and again whenever the file host refuses the URL as expired, up to
        ``max_url_refreshes`` times.
    :param destination: a local path, or an ``ObjectStoragePath``/URL (``s3://...``, ``file://...``).
        Remote destinations are filled from a verified local copy in one transactional upload.
    :param session: a ``requests.Session`` to reuse (for example the hook's); its ``Authorization``
        is never sent to the file host. Default: a fresh plain session.
    :param expected_size: the size the API announced, if any; a different size is refused.
    :param extract: treat the download as a zip package and extract it (safely) into ``destination``,
        which then is a directory.
    :param overwrite: download even when ``destination`` already matches its recorded digest. Without
        it a verified earlier download is kept and nothing is requested.
    :param chunk_size: bytes per read and write.
    :param retry_policy: backoff and retry count for interrupted transfers (default ``RetryPolicy()``).
        Consecutive failures without progress are bounded by its ``max_retries``; transfers that were
        cut after making progress are resumed at most ``max_resumes`` times.
    :param sleep: how to wait between retries (tests pass a recorder).
    :param log: where progress goes (default this module's logger): every 10 %, with MB/s and ETA.
    :param max_extract_bytes: most bytes a package may unpack to.
    :param max_extract_members: most members a package may hold.
    :param timeout: (connect, read) seconds, or one number for both; a read that stalls longer is
        an interruption, and is resumed.
    :return: path, size and SHA-256 of the download, plus the extracted files of a package.
    :raises PixxelDownloadError: the bytes could not be fetched or failed verification (nothing is left
        under the final name; a partial ``.part`` is kept only where a re-run can resume it).
    :raises PixxelUnsafeArchiveError: the package would escape its directory or exceed the limits.
    :raises PixxelTransportError: the connection kept failing after all retries.
    """
    logger: _Logger = log or module_log
    timeouts = (timeout, timeout) if isinstance(timeout, (int, float)) else tuple(timeout)
    _check_arguments(
        chunk_size=chunk_size,
        expected_size=expected_size,
        max_url_refreshes=max_url_refreshes,
        max_resumes=max_resumes,
        max_extract_bytes=max_extract_bytes,
        max_extract_members=max_extract_members,
        timeout=timeouts,
    )
    target = _as_target(destination)
    label = target.name or _describe(target)
    if not overwrite:
        previous = (_verified_package if extract else _verified_file)(target, chunk_size, logger)
        if previous is not None:
            logger.info(
                "%s is already downloaded and matches its recorded SHA-256 %s; skipping",
                _describe(target),
                previous.sha256,
            )
            return previous
    _check_destination(target, extract=extract, overwrite=overwrite)
    if _is_local(target):
        target.parent.mkdir(parents=True, exist_ok=True)
    part_path = _local_part_path(target)
    started = time.monotonic()
    with _exclusive(part_path):
        part = _PartFile(part_path, chunk_size)
        http = session if session is not None else _plain_session()
        try:
            _Transfer(
                url_provider=url_provider,
                session=http,
                label=label,
                expected_size=expected_size,
                chunk_size=chunk_size,
                retry_policy=retry_policy or RetryPolicy(),
                sleep=sleep,
                log=logger,
                max_url_refreshes=max_url_refreshes,
                max_resumes=max_resumes,
                timeout=(float(timeouts[0]), float(timeouts[1])),
            ).run(part)
        except BaseException:
            if part.offset == 0:
                # Nothing worth resuming: leave no empty .part behind.
                part.discard()
            raise
        finally:
            if session is None:
                http.close()
        size = part.offset
        digest = part.hasher.hexdigest()
        if expected_size is not None and size != expected_size:
            part.discard()
            raise PixxelDownloadError(
                f"{label}: received {size} bytes but {expected_size} were expected; nothing was kept"
            )
        files = _install(
            part,
            target,
            digest,
            size,
            extract=extract,
            max_bytes=max_extract_bytes,
            max_members=max_extract_members,
            chunk_size=chunk_size,
        )
    elapsed = max(time.monotonic() - started, 1e-6)
    logger.info(
        "Downloaded %s to %s: %s in %.1f s (%.1f MB/s), sha256 %s%s",
        label,
        _describe(target),
        _format_bytes(size),
        elapsed,
        size / elapsed / 1_000_000,
        digest,
        f", {len(files)} files extracted" if extract else "",
    )
    return DownloadResult(path=str(target), size=size, sha256=digest, files=files)


def write_bytes_atomically(content: bytes, destination: Destination) -> DownloadResult:
    """Store bytes the API returned in its body (PNG, SLD) like a download: ``.part``, rename, digest.

    The digest goes to ``<destination>.sha256`` as for :func:`download`, so downstream tasks can check
    what they read.
    """
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise PixxelConfigError(f"write_bytes_atomically needs bytes, got {type(content).__name__}")
    data = bytes(content)
    target = _as_target(destination)
    _check_destination(target, extract=False, overwrite=True)
    if _is_local(target):
        target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    _write_small(target, data)
    _record_digest(target, digest)
    return DownloadResult(path=str(target), size=len(data), sha256=digest)
