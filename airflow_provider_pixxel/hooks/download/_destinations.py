"""Where a download goes: a local path or an object-storage path, and where its ``.part`` streams to."""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from airflow.providers.common.compat.sdk import ObjectStoragePath
from typing_extensions import TypeIs

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.download._common import PART_SUFFIX, Destination

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
