"""Transfer and resume: one signed URL's bytes into a ``.part``, resumed, retried and refreshed."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests
from airflow.providers.common.compat.sdk import mask_secret
from requests.adapters import HTTPAdapter

from airflow_provider_pixxel.exceptions import PixxelError, PixxelTransportError
from airflow_provider_pixxel.hooks.download._common import (
    _INTERRUPTIONS,
    _READ_ERRORS,
    MAX_REDIRECTS,
    PixxelDownloadError,
    PixxelUnsafeLinkError,
    _format_bytes,
    _Logger,
    require_free_space,
)
from airflow_provider_pixxel.hooks.download._part import _PartFile, _Progress
from airflow_provider_pixxel.hooks.retry import RETRYABLE_STATUS_CODES, RetryPolicy, parse_retry_after
from airflow_provider_pixxel.hooks.sessions import (
    RedirectBodyUnreadSession,
    redirect_target,
    unread_redirects,
)
from airflow_provider_pixxel.hooks.transport import USER_AGENT, strip_query, url_refusal

# The file host refusing a signed URL: a fresh URL may succeed where retrying the same one cannot.
URL_REFUSED_STATUSES = frozenset({401, 403, 410})
_EXPIRED_BODY = re.compile(
    rb"request has expired|expiredtoken|token.{0,20}expired|signature.{0,20}expired", re.I
)
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.I)
# Query values this long are signatures, credentials or tokens rather than dates or flags.
_SECRET_QUERY_VALUE_LENGTH = 16


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


def _plain_session() -> requests.Session:
    session = RedirectBodyUnreadSession()
    # No .netrc credentials, environment proxies or CA bundle: a signed URL needs none of them, and a
    # proxy from the environment would see every signed URL. (Requests are sent without the
    # environment whatever the session says, see _Transfer._send; this keeps the session honest too.)
    session.trust_env = False
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


def _refuse_unsafe_link(url: str, what: str) -> None:
    """Raise :class:`PixxelUnsafeLinkError` unless the provider's URL rule lets ``url`` be sent to."""
    refusal = url_refusal(url, carrying="a signed download link")
    if refusal is not None:
        raise PixxelUnsafeLinkError(
            f"{what} {strip_query(url)} is refused: {refusal}. Nothing was sent to it"
        )


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
        self.session = unread_redirects(session)
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
        _refuse_unsafe_link(url, f"Download URL for {self.label}")
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
            response = self._open(headers)
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
            if total is not None:
                require_free_space(
                    part.path.parent,
                    total - part.offset,
                    f"for {self.label}",
                    then=_leftover(part),
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

    def _open(self, headers: dict[str, str]) -> requests.Response:
        """GET the signed URL, following at most ``MAX_REDIRECTS`` redirects by hand.

        Each target's query is masked before anything could log it and the target is checked by the
        same rule as the link itself before anything is sent to it.
        """
        url = self.url
        redirects = 0
        while True:
            response = self._send(url, headers)
            location = redirect_target(response)
            if location is None:
                return response
            response.close()
            target = urljoin(url, location)
            _mask_signed_url(target)
            redirects += 1
            if redirects > MAX_REDIRECTS:
                raise PixxelUnsafeLinkError(
                    f"GET {strip_query(self.url)} was redirected more than {MAX_REDIRECTS} times (last to "
                    f"{strip_query(target)}); refusing to follow further. Nothing was downloaded"
                )
            _refuse_unsafe_link(target, f"The redirect of {strip_query(url)} for {self.label} to")
            url = target

    def _send(self, url: str, headers: dict[str, str]) -> requests.Response:
        """One GET, with nothing from the environment and no ``Authorization``, whatever the session.

        ``Session.get`` would merge ``.netrc`` credentials, ``*_proxy`` variables and CA bundle variables
        into the request when the session trusts the environment, as a caller's session does; preparing
        and sending the request ourselves, with the session's explicit settings, takes none of them.
        """
        prepared = self.session.prepare_request(
            requests.Request("GET", url, headers=headers, auth=_StripAuthorization())
        )
        return self.session.send(
            prepared,
            stream=True,
            timeout=self.timeout,
            allow_redirects=False,
            proxies=dict(self.session.proxies),
            verify=self.session.verify,
            cert=self.session.cert,
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
            if part.etag is not None and etag != part.etag:
                # The server ignored If-Range (or we could not send it for a weak ETag): these bytes
                # belong to another version of the file, and appending them would splice two files.
                self.log.warning(
                    "%s: the resumed answer is of another version of the file (ETag %s, the partial "
                    "file has %s); discarding the partial file and restarting from zero",
                    self.label,
                    etag,
                    part.etag,
                )
                part.reset()
                raise _Interrupted("the file changed between resumes", network=False)
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
