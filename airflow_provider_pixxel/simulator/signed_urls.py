"""Expiring signed download URLs, served by the simulator itself.

The real API hands out "time-bound" signed URLs that need no ``Authorization`` header (its downloads),
like S3 pre-signed URLs. The simulator mints its own: ``/files/{artifact_id}/{filename}?expires=
<unix seconds>&signature=<HMAC-SHA256 hex>`` and serves them with HTTP range support, answering
failures with S3-style XML bodies so clients meet what a cloud bucket would send.

Order of checks for a request: signature (403 ``SignatureDoesNotMatch``), expiry (403
``AccessDenied`` "Request has expired"), then existence (404 ``NoSuchKey``). A request for an
unknown artifact therefore needs a validly signed URL to see the 404, as on S3.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable
from urllib.parse import quote
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from airflow_provider_pixxel.simulator.files import Artifact

__all__ = [
    "FILES_PATH_PREFIX",
    "ExpiredSignature",
    "FileStore",
    "InvalidSignature",
    "SignedUrlError",
    "UrlSigner",
    "expired_response",
    "files_router",
    "parse_range",
    "s3_error_body",
]

#: Every signed URL's path starts with this; fault injection uses it to recognise file requests.
FILES_PATH_PREFIX = "/files/"

#: Size of the chunks a download is streamed in.
STREAM_CHUNK_SIZE = 256 * 1024


class SignedUrlError(Exception):
    """A signed URL was refused."""


class ExpiredSignature(SignedUrlError):
    """The URL's ``expires`` time has passed."""


class InvalidSignature(SignedUrlError):
    """The signature is missing, malformed or does not match."""


class FileStore:
    """Thread-safe registry of the artifacts the simulator can serve, keyed by artifact id."""

    def __init__(self) -> None:
        self._artifacts: dict[str, Artifact] = {}
        self._lock = threading.Lock()

    def register(self, artifact: Artifact) -> None:
        """Add ``artifact`` (replacing any artifact with the same id)."""
        with self._lock:
            self._artifacts[artifact.artifact_id] = artifact

    def get(self, artifact_id: str) -> Artifact:
        """The artifact with this id; raises ``KeyError`` if unknown."""
        with self._lock:
            return self._artifacts[artifact_id]

    def remove(self, artifact_id: str) -> None:
        """Forget an artifact; unknown ids are ignored."""
        with self._lock:
            self._artifacts.pop(artifact_id, None)

    def __contains__(self, artifact_id: object) -> bool:
        with self._lock:
            return artifact_id in self._artifacts

    def __len__(self) -> int:
        with self._lock:
            return len(self._artifacts)


class UrlSigner:
    """Signs and verifies file URLs with HMAC-SHA256 over the artifact id and the expiry time.

    ``ttl_seconds`` and ``clock`` are plain attributes: tests shorten the lifetime or move the clock
    to expire URLs without sleeping.
    """

    def __init__(
        self, secret: bytes, ttl_seconds: float = 3600, clock: Callable[[], float] = time.time
    ) -> None:
        if not secret:
            raise ValueError("the signing secret must not be empty")
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def __repr__(self) -> str:
        return f"UrlSigner(ttl_seconds={self.ttl_seconds!r})"

    def _signature(self, artifact_id: str, expires: int) -> str:
        message = f"{artifact_id}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, artifact_id: str, filename: str) -> str:
        """Path and query of a URL for ``artifact_id`` valid for ``ttl_seconds`` from now."""
        expires = int(self.clock() + self.ttl_seconds)
        return (
            f"{FILES_PATH_PREFIX}{quote(artifact_id, safe='')}/{quote(filename, safe='')}"
            f"?expires={expires}&signature={self._signature(artifact_id, expires)}"
        )

    def verify(self, artifact_id: str, expires: int | str | None, signature: str | None) -> None:
        """Raise :class:`InvalidSignature` if the signature does not cover this id and expiry, then
        :class:`ExpiredSignature` if the expiry time has passed."""
        try:
            expires_at = int(expires) if expires is not None else None
        except ValueError:
            expires_at = None
        if expires_at is None or not signature:
            raise InvalidSignature("the URL has no valid expires/signature parameters")
        if not hmac.compare_digest(self._signature(artifact_id, expires_at), signature.lower()):
            raise InvalidSignature("the signature does not match")
        if self.clock() > expires_at:
            raise ExpiredSignature("the URL has expired")


def s3_error_body(code: str, message: str) -> str:
    """An S3-style XML error document."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    )


def _xml_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        s3_error_body(code, message), status_code=status, media_type="application/xml", headers=headers
    )


def expired_response() -> Response:
    """The 403 an expired signed URL gets (also used by the ``expire`` fault)."""
    return _xml_error(403, "AccessDenied", "Request has expired")


def _content_disposition(filename: str) -> str:
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str, length: int) -> tuple[int, int] | bool | None:
    """Interpret a ``Range`` header for a representation of ``length`` bytes.

    Returns ``(start, end_exclusive)`` for a satisfiable single range, ``False`` when the range is
    unsatisfiable (416), and ``None`` when the header must be ignored (absent, malformed, another
    unit, or several ranges - RFC 9110 lets a server serve the full representation then).
    """
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or length == 0:
            return False
        return max(0, length - suffix), length
    start = int(first)
    end = int(last) + 1 if last else length
    if last and end <= start:
        return None
    if start >= length:
        return False
    return start, min(end, length)


def files_router(
    store: FileStore,
    signer: UrlSigner,
    *,
    on_request: Callable[[str, str], None] | None = None,
) -> APIRouter:
    """``GET``/``HEAD /files/{artifact_id}/{filename}``: serve registered artifacts via signed URLs.

    No ``Authorization`` header is needed (one that is sent is ignored). Responses carry
    ``Content-Length``, a strong ``ETag``, ``Accept-Ranges: bytes`` and the artifact's media type,
    and bodies are streamed from :meth:`Artifact.iter_bytes`. A single ``Range`` (``bytes=a-b``,
    ``bytes=a-``, ``bytes=-n``) gets 206 with ``Content-Range``; an unsatisfiable one 416 with
    ``Content-Range: bytes */<length>``; an ``If-Range`` that is not the current ETag gets the full
    200. ``on_request(artifact_id, range_header_or_empty)`` is called for every request, before any
    check, so a recorder sees refused requests too.
    """
    router = APIRouter()

    @router.api_route(f"{FILES_PATH_PREFIX}{{artifact_id}}/{{filename}}", methods=["GET", "HEAD"])
    def download(artifact_id: str, filename: str, request: Request) -> Response:
        range_header = request.headers.get("range", "")
        if on_request is not None:
            on_request(artifact_id, range_header)
        try:
            signer.verify(
                artifact_id, request.query_params.get("expires"), request.query_params.get("signature")
            )
        except ExpiredSignature:
            return expired_response()
        except InvalidSignature:
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        try:
            artifact = store.get(artifact_id)
        except KeyError:
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        if filename != artifact.filename:
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")

        headers = {
            "ETag": artifact.etag,
            "Accept-Ranges": "bytes",
            "Content-Disposition": _content_disposition(artifact.filename),
        }
        if_range = request.headers.get("if-range")
        wanted = parse_range(range_header, artifact.length) if range_header else None
        if if_range is not None and if_range.strip() != artifact.etag:
            wanted = None
        if wanted is False:
            headers["Content-Range"] = f"bytes */{artifact.length}"
            return _xml_error(416, "InvalidRange", "The requested range is not satisfiable", headers)
        if isinstance(wanted, tuple):
            start, end = wanted
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{artifact.length}"
        else:
            start, end, status = 0, artifact.length, 200
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=artifact.media_type)
        return StreamingResponse(
            artifact.iter_bytes(start, end, chunk_size=STREAM_CHUNK_SIZE),
            status_code=status,
            headers=headers,
            media_type=artifact.media_type,
        )

    return router
