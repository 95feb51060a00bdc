"""What every part of the download routine shares: its limits and names, errors, result and logger."""

from __future__ import annotations

import http.client
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests
import urllib3.exceptions
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_pixxel.exceptions import PixxelError

# 1 MiB, not more: each chunk is read, hashed and written while it is still in the CPU cache; 8 MiB
# chunks measured about 35 % slower on loopback (BENCHMARKS.md, "Download throughput").
DEFAULT_CHUNK_SIZE = 1024 * 1024
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 120.0)
DEFAULT_MAX_URL_REFRESHES = 3
DEFAULT_MAX_RESUMES = 20
DEFAULT_MAX_EXTRACT_BYTES = 50 * 1024**3
DEFAULT_MAX_EXTRACT_MEMBERS = 10_000
# A package whose members unpack to more than this many times their compressed size (each member, and
# all of them together) is refused as a zip bomb: DEFLATE reaches about 1032:1 at most, and bombs sit
# near that. The limit is a parameter of download() and safe_extract_zip() for packages that need more.
DEFAULT_MAX_EXTRACT_RATIO = 200
# Below this many unpacked bytes a member (or a package) is never refused for its ratio: a few KiB of
# repetitive metadata can exceed 200:1 and can do no harm.
EXTRACT_RATIO_GRACE_BYTES = 1024 * 1024
# Redirects a signed link may take to its bytes; each target is checked like the link itself.
MAX_REDIRECTS = 5

PART_SUFFIX = ".part"
PART_STATE_SUFFIX = ".part.json"
DIGEST_SUFFIX = ".sha256"
MANIFEST_NAME = ".pixxel-manifest.json"

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

# One logger for the whole routine, named after the public module users configure.
module_log = logging.getLogger("airflow_provider_pixxel.hooks.download")

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


class PixxelUnsafeLinkError(PixxelDownloadError):
    """A signed link, or a redirect it took, was refused before anything was sent to it.

    Plain http to a host that is not loopback, credentials in the URL, a URL two parsers read
    differently, or more than ``MAX_REDIRECTS`` redirects.
    """


def require_free_space(folder: Path, needed: int, what: str, *, then: str = "") -> None:
    """Refuse, with :class:`PixxelDownloadError`, to write ``needed`` bytes where fewer are free."""
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise PixxelDownloadError(
            f"Not enough disk space {what}: needs {needed} bytes, {free} free under {folder}. "
            f"Free some space or choose another destination. {then}".rstrip()
        )


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


def _format_bytes(count: float) -> str:
    return f"{count / 1_000_000:.1f} MB"
