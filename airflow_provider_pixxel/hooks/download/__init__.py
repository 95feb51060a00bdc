"""The provider's one download routine: every file that leaves Pixxel goes through :func:`download`.

What it guarantees, and why:

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
* **Links held to https.** A signed link and every redirect it takes (followed by hand, at most
  ``MAX_REDIRECTS``) must pass the provider's one URL rule (``hooks.transport.url_refusal``: https, plain
  http only to loopback, no ``user:password@``) before anything is sent to it. The API documents no
  checksum, so bytes fetched in clear text from a remote host could be substituted unnoticed.
* **Secrets.** Signed URLs are fetched without the Pixxel ``Authorization`` header, without ``.netrc``
  credentials or environment proxies (the environment is not trusted), their query strings (and those
  of every redirect) are passed to ``mask_secret`` and never written to a log line or an exception;
  error texts carry URLs without query or credentials.
* **No spliced resumes.** A resumed answer whose ``ETag`` differs from the one the ``.part`` was started
  with is refused: the ``.part`` is discarded and the file fetched again from zero.
* **Space first.** The free space beside the ``.part`` is checked against ``Content-Length`` (less what a
  resumed ``.part`` holds) before the first byte is written.
* **Safe extraction.** Zip packages are checked member by member (no absolute paths, no ``..``, no
  links or devices, no path that is both a file and a folder, bounded size, count and compression
  ratio) before anything is written, then moved into place at once. A package that fails to extract
  has its ``.part`` discarded, so a re-run fetches it afresh instead of failing the same way.

Bytes are stored exactly as served: a ``Content-Encoding`` is not undone, so that ``Content-Length``,
``Range`` offsets and the digest all refer to the same bytes.

The public names are those in ``__all__``; the modules starting with ``_`` are private:
``_destinations`` (where bytes go), ``_transfer`` (fetching, resuming, refreshing the URL), ``_part``
(the ``.part`` file, its writer thread and early writeback), ``_archive`` (zip safety), ``_install``
(digests, manifests, atomic replacement and the lock) and ``_common`` (limits, names, errors).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import requests

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.download._archive import safe_extract_zip
from airflow_provider_pixxel.hooks.download._common import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_EXTRACT_BYTES,
    DEFAULT_MAX_EXTRACT_MEMBERS,
    DEFAULT_MAX_EXTRACT_RATIO,
    DEFAULT_MAX_RESUMES,
    DEFAULT_MAX_URL_REFRESHES,
    DEFAULT_TIMEOUT,
    DIGEST_SUFFIX,
    MANIFEST_NAME,
    MAX_REDIRECTS,
    PART_STATE_SUFFIX,
    PART_SUFFIX,
    Destination,
    DownloadResult,
    PixxelDownloadError,
    PixxelUnsafeArchiveError,
    PixxelUnsafeLinkError,
    _format_bytes,
    _Logger,
    module_log,
)
from airflow_provider_pixxel.hooks.download._destinations import (
    Target,
    _as_target,
    _describe,
    _is_local,
    _local_part_path,
    resolve_destination,
)
from airflow_provider_pixxel.hooks.download._install import (
    _check_destination,
    _exclusive,
    _put_in_place,
    _record_digest,
    _verified_file,
    _verified_package,
    _write_small,
)
from airflow_provider_pixxel.hooks.download._part import _PartFile
from airflow_provider_pixxel.hooks.download._transfer import _plain_session, _Transfer
from airflow_provider_pixxel.hooks.retry import RetryPolicy

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_EXTRACT_BYTES",
    "DEFAULT_MAX_EXTRACT_MEMBERS",
    "DEFAULT_MAX_EXTRACT_RATIO",
    "DEFAULT_MAX_RESUMES",
    "DEFAULT_MAX_URL_REFRESHES",
    "DEFAULT_TIMEOUT",
    "DIGEST_SUFFIX",
    "MANIFEST_NAME",
    "MAX_REDIRECTS",
    "PART_STATE_SUFFIX",
    "PART_SUFFIX",
    "Destination",
    "DownloadResult",
    "PixxelDownloadError",
    "PixxelUnsafeArchiveError",
    "PixxelUnsafeLinkError",
    "Target",
    "download",
    "resolve_destination",
    "safe_extract_zip",
    "write_bytes_atomically",
]


def _check_arguments(
    *,
    chunk_size: int,
    expected_size: int | None,
    max_url_refreshes: int,
    max_resumes: int,
    max_extract_bytes: int,
    max_extract_members: int,
    max_extract_ratio: int,
    timeout: tuple[float, ...],
) -> None:
    problems = []
    if chunk_size <= 0:
        problems.append(f"chunk_size must be positive, got {chunk_size}")
    if expected_size is not None and expected_size < 0:
        problems.append(f"expected_size must be 0 or more, got {expected_size}")
    if max_url_refreshes < 0 or max_resumes < 0:
        problems.append("max_url_refreshes and max_resumes must be 0 or more")
    if max_extract_bytes <= 0 or max_extract_members <= 0 or max_extract_ratio <= 0:
        problems.append("max_extract_bytes, max_extract_members and max_extract_ratio must be positive")
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
    max_extract_ratio: int = DEFAULT_MAX_EXTRACT_RATIO,
    max_resumes: int = DEFAULT_MAX_RESUMES,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> DownloadResult:
    """Download the file behind a signed URL to ``destination``, verified, resumable and atomic.

    :param url_provider: returns a signed URL; called once at the start (only if there is something
        to fetch) and again whenever the file host refuses the URL as expired, up to
        ``max_url_refreshes`` times.
    :param destination: a local path, or an ``ObjectStoragePath``/URL (``s3://...``, ``file://...``).
        Remote destinations are filled from a verified local copy in one transactional upload.
    :param session: a ``requests.Session`` to reuse (for example the hook's): its adapters, ``verify``,
        ``cert`` and explicit ``proxies`` apply, but never its ``Authorization``, and nothing from the
        environment (``.netrc``, ``*_proxy``, CA bundle variables). Default: a fresh plain session.
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
    :param max_extract_ratio: most times its compressed size a package member, or the whole package,
        may unpack to (a zip bomb guard; members and packages under 1 MiB unpacked are exempt).
    :param timeout: (connect, read) seconds, or one number for both; a read that stalls longer is
        an interruption, and is resumed.
    :return: path, size and SHA-256 of the download, plus the extracted files of a package.
    :raises PixxelDownloadError: the bytes could not be fetched or failed verification (nothing is left
        under the final name; a partial ``.part`` is kept only where a re-run can resume it).
    :raises PixxelUnsafeArchiveError: the package would escape its directory or exceed the limits.
    :raises PixxelUnsafeLinkError: the link or a redirect is not https (plain http only to loopback),
        carries credentials, or the redirects go on past ``MAX_REDIRECTS``; nothing was sent to it.
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
        max_extract_ratio=max_extract_ratio,
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
        files = _put_in_place(
            part,
            target,
            digest,
            size,
            extract=extract,
            max_bytes=max_extract_bytes,
            max_members=max_extract_members,
            max_ratio=max_extract_ratio,
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
