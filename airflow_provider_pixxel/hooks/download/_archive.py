"""Archive safety: a zip package is checked member by member before anything is written."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.download._common import (
    DEFAULT_MAX_EXTRACT_BYTES,
    DEFAULT_MAX_EXTRACT_MEMBERS,
    DEFAULT_MAX_EXTRACT_RATIO,
    EXTRACT_RATIO_GRACE_BYTES,
    MANIFEST_NAME,
    PixxelUnsafeArchiveError,
    require_free_space,
)


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
    archive: zipfile.ZipFile, *, max_bytes: int, max_members: int, max_ratio: int, archive_size: int
) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Check every member before anything is written; a hostile archive is refused as a whole.

    The sizes checked are the declared ones: ``zipfile`` never inflates a member past its declared
    ``file_size`` (it raises instead), so they bound what extraction can write.
    """
    infos = archive.infolist()
    if len(infos) > max_members:
        raise PixxelUnsafeArchiveError(
            f"Refusing zip with {len(infos)} members: more than the limit of {max_members} "
            "(raise max_extract_members if the package is genuine)"
        )
    plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    # Case-folded paths, as a case-insensitive filesystem sees them: each file member, and each folder
    # (listed, or implied by a member below it), with the member that makes it one.
    files: dict[str, str] = {}
    folders: dict[str, str] = {}
    declared = 0
    for info in infos:
        relative = _member_path(info.filename)
        _check_member_type(info)
        if relative.parts[0] == MANIFEST_NAME:
            raise PixxelUnsafeArchiveError(
                f"Refusing zip member {info.filename!r}: {MANIFEST_NAME} is reserved"
            )
        _check_no_clash(info, relative, files, folders)
        declared += info.file_size
        if declared > max_bytes:
            raise PixxelUnsafeArchiveError(
                f"Refusing zip: its members unpack to more than the limit of {max_bytes} bytes "
                "(raise max_extract_bytes if the package is genuine)"
            )
        _check_ratio(f"zip member {info.filename!r}", info.file_size, info.compress_size, max_ratio)
        plan.append((info, relative))
    # Against the archive's real size, not the sum of the members' compressed sizes: members whose
    # compressed data overlap would otherwise count the same bytes many times.
    _check_ratio("zip", declared, archive_size, max_ratio)
    return plan


def _check_no_clash(
    info: zipfile.ZipInfo, relative: PurePosixPath, files: dict[str, str], folders: dict[str, str]
) -> None:
    """Refuse two members for one path, or a path that would have to be both a file and a folder."""
    key = relative.as_posix().casefold()
    if not info.is_dir():
        if key in files:
            raise PixxelUnsafeArchiveError(
                f"Refusing zip member {info.filename!r}: it would overwrite {files[key]!r}"
            )
        if key in folders:
            raise PixxelUnsafeArchiveError(
                f"Refusing zip member {info.filename!r}: it is a file, but {folders[key]!r} needs a "
                "folder of that name"
            )
        files[key] = info.filename
    own_folders = [*relative.parents][:-1]  # without the "." every relative path ends in
    if info.is_dir():
        own_folders.append(relative)
    for folder in own_folders:
        folder_key = folder.as_posix().casefold()
        if folder_key in files:
            raise PixxelUnsafeArchiveError(
                f"Refusing zip member {info.filename!r}: it needs a folder {folder.as_posix()!r}, but "
                f"{files[folder_key]!r} is a file of that name"
            )
        folders.setdefault(folder_key, info.filename)


def _check_ratio(what: str, unpacked: int, packed: int, max_ratio: int) -> None:
    """Refuse a zip bomb: more than ``max_ratio`` times as many bytes out as in (past a small grace)."""
    if unpacked > EXTRACT_RATIO_GRACE_BYTES and unpacked > max_ratio * packed:
        ratio = unpacked / max(packed, 1)
        raise PixxelUnsafeArchiveError(
            f"Refusing {what}: it unpacks {packed} bytes to {unpacked} ({ratio:.0f}:1), more than the "
            f"limit of {max_ratio}:1 (raise max_extract_ratio if the package is genuine)"
        )


def safe_extract_zip(
    zip_path: str | os.PathLike[str],
    target_dir: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_EXTRACT_BYTES,
    max_members: int = DEFAULT_MAX_EXTRACT_MEMBERS,
    max_ratio: int = DEFAULT_MAX_EXTRACT_RATIO,
    chunk_size: int = 1024 * 1024,
) -> list[dict[str, Any]]:
    """Extract ``zip_path`` into ``target_dir`` and list what was written (path, size, sha256).

    Every member is checked before the first byte is written: absolute paths, ``..``, links, devices,
    encrypted members, duplicate names, a path that is both a file and a folder, more than
    ``max_members`` members, more than ``max_bytes`` declared bytes, or a member (or the whole archive)
    unpacking to more than ``max_ratio`` times its compressed size make the whole archive refused with
    :class:`PixxelUnsafeArchiveError`. The bytes
    actually inflated are counted too, and an archive that fails part-way (a CRC error, a member
    larger than declared) has everything it wrote removed again.
    """
    if max_bytes <= 0 or max_members <= 0 or max_ratio <= 0:
        raise PixxelConfigError("max_bytes, max_members and max_ratio must be positive")
    target = Path(target_dir)
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as error:
        raise PixxelUnsafeArchiveError(
            f"{Path(zip_path).name} is not a readable zip archive: {error}"
        ) from None
    with archive:
        plan = _plan_extraction(
            archive,
            max_bytes=max_bytes,
            max_members=max_members,
            max_ratio=max_ratio,
            archive_size=os.path.getsize(zip_path),
        )
        existing = next(path for path in (target, *target.parents) if path.exists())
        declared = sum(info.file_size for info, _ in plan)
        require_free_space(existing, declared, f"to extract {Path(zip_path).name}")
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
