"""Putting verified bytes in place: digests and manifests, atomic renames or uploads, and the lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelError
from airflow_provider_pixxel.hooks.download._archive import safe_extract_zip
from airflow_provider_pixxel.hooks.download._common import (
    DIGEST_SUFFIX,
    MANIFEST_NAME,
    PART_SUFFIX,
    DownloadResult,
    PixxelDownloadError,
    _Logger,
)
from airflow_provider_pixxel.hooks.download._destinations import Target, _describe, _is_local, _sibling
from airflow_provider_pixxel.hooks.download._part import _PartFile

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
    max_ratio: int,
    chunk_size: int,
) -> list[dict[str, Any]]:
    if _is_local(target):
        # Beside the destination, so the final move is a rename on the same filesystem.
        staging = target.with_name(f".{target.name}.extract-{uuid.uuid4().hex[:8]}")
    else:
        staging = Path(tempfile.mkdtemp(prefix="pixxel-extract-"))
    try:
        files = safe_extract_zip(
            part.path,
            staging,
            max_bytes=max_bytes,
            max_members=max_members,
            max_ratio=max_ratio,
            chunk_size=chunk_size,
        )
    except Exception as error:
        # A package that failed to extract fails the same way from the same bytes: keeping its .part
        # would only make every re-run resume to the same failure. The next run fetches it afresh.
        shutil.rmtree(staging, ignore_errors=True)
        part.discard()
        if isinstance(error, PixxelError):
            raise
        raise PixxelDownloadError(
            f"Extracting {target.name} failed ({type(error).__name__}: {error}); nothing was kept, "
            "a re-run downloads the package again"
        ) from error
    try:
        manifest = json.dumps({"archive": {"sha256": digest, "size": size}, "files": files}, indent=1)
        if _is_local(target):
            (staging / MANIFEST_NAME).write_text(manifest)
            _swap_into_place(staging, target)
        else:
            for entry in files:
                _copy_file_to(staging.joinpath(*entry["path"].split("/")), target / entry["path"], chunk_size)
            # Written last: a package without its manifest is never taken as complete.
            _write_small(target / MANIFEST_NAME, manifest.encode())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not _is_local(target):
        shutil.rmtree(staging, ignore_errors=True)
    part.discard()
    return files


def _put_in_place(
    part: _PartFile,
    target: Target,
    digest: str,
    size: int,
    *,
    extract: bool,
    max_bytes: int,
    max_members: int,
    max_ratio: int,
    chunk_size: int,
) -> list[dict[str, Any]]:
    if extract:
        return _install_package(
            part,
            target,
            digest,
            size,
            max_bytes=max_bytes,
            max_members=max_members,
            max_ratio=max_ratio,
            chunk_size=chunk_size,
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
