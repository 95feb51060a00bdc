"""Transport rules shared by the sync and the async hook.

* :class:`PixxelConnectionSettings` reads an Airflow connection once: base URL, API key, auth prefix,
  timeouts, default project and retry count, refusing unsafe or incomplete set-ups before anything
  is sent.
* :class:`ApiRequest` describes one API call independently of the HTTP library that sends it.
* :class:`AnswerBody` collects an answer's body chunk by chunk, refusing one larger than the
  connection's ``max_response_mib`` before it is held in memory.
* :func:`decode_json` is the one JSON decoder of API answers; :func:`decode_response` and
  :func:`api_error` turn an HTTP answer into a value or a typed error; :func:`response_value` does both
  (and refuses redirects), so the sync and async hooks differ only in the library calls.
* :func:`transport_error` and :func:`outcome_unknown_error` word the failures both hooks raise.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from urllib3.util import parse_url as urllib3_parse_url

from airflow_provider_pixxel import __version__
from airflow_provider_pixxel.exceptions import (
    PixxelApiError,
    PixxelConfigError,
    PixxelError,
    PixxelOutcomeUnknownError,
    PixxelTransportError,
    api_error_class,
)
from airflow_provider_pixxel.hooks import DEFAULT_CONN_ID as DEFAULT_CONN_ID  # re-exported for the hooks
from airflow_provider_pixxel.hooks.retry import DEFAULT_MAX_RETRIES, parse_retry_after
from airflow_provider_pixxel.utils.arguments import true_or_false

DEFAULT_BASE_URL = "https://api.pixxel.space"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
#: The longest one attempt of an API call may take, answer body included: the read timeout bounds
#: each socket read only, so a server trickling a byte at a time would otherwise never time out.
DEFAULT_CALL_TIMEOUT = 300.0
#: The largest API answer (JSON, PNG or CSV) a hook reads into memory.
DEFAULT_MAX_RESPONSE_MIB = 32
#: Error answers are read only this far: their message is in the first few hundred bytes.
ERROR_BODY_BYTES = 64 * 1024
#: How much of an answer body is read at a time.
BODY_CHUNK_BYTES = 64 * 1024
USER_AGENT = f"airflow-provider-pixxel/{__version__}"

#: What a successful answer holds: any JSON, one JSON object (the status reads triggers poll: any
#: other shape is an API error, not a crash further on), PNG bytes, text, or nothing.
ResponseKind = Literal["json", "object", "bytes", "text", "empty"]


def is_loopback_host(hostname: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if not hostname:
        return False
    if hostname.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def strip_query(url: str) -> str:
    """The URL without credentials, query string or fragment: safe to log even for signed URLs."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# Characters that different URL parsers split differently: a backslash is a path separator to
# urllib3 and WHATWG parsers but part of the authority to urllib.parse, so the host we check and the
# host the sender connects to could differ. Whitespace and control characters are refused for the same
# reason (and because a URL with them was never meant).
_AMBIGUOUS_URL_CHARACTERS = re.compile(r"[\\\s\x00-\x1f\x7f]")


def url_refusal(url: str, *, carrying: str) -> str | None:
    """Why ``url`` may not be sent to, or None when it may; ``carrying`` names what a request to it holds.

    The one rule for every URL the provider sends to (the API base URL, signed download links and
    each redirect they take): http(s) only, no credentials in the URL, nothing that two parsers read
    differently, and plain http only to a loopback host. The host is read with urllib3's parser,
    which is the one requests sends with, and must agree with the standard library's reading.
    """
    found = _AMBIGUOUS_URL_CHARACTERS.search(url)
    if found:
        return f"it contains {found.group()!r} (backslashes, whitespace and control characters are refused)"
    try:
        sender = urllib3_parse_url(url)
        parts = urlsplit(url)
        std_host = parts.hostname
    except ValueError as error:
        return f"it is not a valid URL ({error})"
    scheme = (sender.scheme or "").lower()
    if scheme not in ("http", "https"):
        return "it is not an http(s) URL"
    if sender.auth or "@" in parts.netloc:
        return "it carries credentials (user:password@), which the provider never sends"
    host = (sender.host or "").strip("[]").lower()
    if not host:
        return "it is not an http(s) URL with a host name"
    if host != (std_host or "").lower():
        return "its host cannot be read unambiguously"
    if scheme == "http" and not is_loopback_host(host):
        return f"refusing to send {carrying} over plain http to {host}; use https, or a loopback host"
    return None


def _extra(extras: Mapping[str, Any], name: str, conn_type: str = "pixxel") -> Any:
    """An extra by its plain name or the ``extra__pixxel__`` form older UIs store."""
    value = extras.get(name)
    if value in (None, ""):
        value = extras.get(f"extra__{conn_type}__{name}")
    return None if value == "" else value


def _parse_timeout(value: Any, conn_id: str) -> tuple[float, float]:
    if value is None:
        return DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
    parts: Sequence[Any]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        parts = [value, value]
    elif isinstance(value, str):
        parts = [p for p in value.replace(" ", "").split(",") if p]
        if len(parts) == 1:
            parts = [parts[0], parts[0]]
    elif isinstance(value, Sequence):
        parts = list(value)
    else:
        parts = []
    try:
        connect, read = (float(p) for p in parts)
    except (TypeError, ValueError):
        connect = read = -1.0
    if connect <= 0 or read <= 0:
        raise PixxelConfigError(
            f"Connection {conn_id!r}: extra 'timeout' must be a positive number of seconds or a "
            f"[connect, read] pair such as [10, 60]; got {value!r}"
        )
    return connect, read


def _positive_number(
    extras: Mapping[str, Any], name: str, default: float, conn_id: str, expected: str
) -> float:
    """A positive, finite number extra (``default`` when absent); a :class:`PixxelConfigError` otherwise."""
    raw = _extra(extras, name)
    if raw is None:
        return default
    try:
        value = -1.0 if isinstance(raw, bool) else float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not (0 < value < float("inf")):
        raise PixxelConfigError(f"Connection {conn_id!r}: extra {name!r} must be {expected}; got {raw!r}")
    return value


def _flag(extras: Mapping[str, Any], name: str, default: bool, conn_id: str) -> bool:
    """A true/false extra (``default`` when absent); the UI may store it as the text "true"/"false"."""
    raw = _extra(extras, name)
    if raw is None:
        return default
    # A JSON extra may hold a number: 1 and 0 read as their text.
    switch = raw if isinstance(raw, bool) else str(raw)
    return true_or_false(f"Connection {conn_id!r}: extra {name!r}", switch)


@dataclass(frozen=True)
class PixxelConnectionSettings:
    """Everything a hook needs from an Airflow ``pixxel`` connection."""

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    auth_prefix: str = ""
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    project_id: str | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_MIB * 1024 * 1024
    #: The shared spend budget of every DAG on this connection, as given (checked where it is used,
    #: by ``hooks.spend.check_budget``, before any purchase request).
    budget_tokens: Any = None
    budget_period: Any = None
    #: Deferred waits on this connection share one poller per kind and scope in a triggerer (list
    #: reads instead of one read per wait); ``false`` gives every wait its own client and reads.
    batch_polling: bool = True

    @classmethod
    def from_connection(cls, conn: Any) -> PixxelConnectionSettings:
        """Read and check an Airflow connection. Raises :class:`PixxelConfigError` with the fix."""
        conn_id = getattr(conn, "conn_id", None) or "pixxel_default"
        extras: Mapping[str, Any] = conn.extra_dejson if getattr(conn, "extra", None) else {}
        api_key = (conn.password or "").strip()
        if not api_key:
            raise PixxelConfigError(
                f"Connection {conn_id!r} has no API key. Put the Pixxel API key (Aurora > Workspace "
                f"Settings > API) in the connection's password field, e.g. AIRFLOW_CONN_"
                f'{conn_id.upper()}=\'{{"conn_type": "pixxel", "password": "<api key>"}}\''
            )
        base_url = cls._base_url(conn, conn_id)
        max_retries_raw = _extra(extras, "max_retries")
        try:
            max_retries = DEFAULT_MAX_RETRIES if max_retries_raw is None else int(max_retries_raw)
        except (TypeError, ValueError):
            max_retries = -1
        if max_retries < 0:
            raise PixxelConfigError(
                f"Connection {conn_id!r}: extra 'max_retries' must be a whole number, 0 or more; "
                f"got {max_retries_raw!r}"
            )
        connect_timeout, read_timeout = _parse_timeout(_extra(extras, "timeout"), conn_id)
        call_timeout = _positive_number(
            extras,
            "call_timeout",
            DEFAULT_CALL_TIMEOUT,
            conn_id,
            "a positive number of seconds (the longest one attempt of an API call may take, answer "
            "included), e.g. 300",
        )
        max_response_mib = _positive_number(
            extras,
            "max_response_mib",
            DEFAULT_MAX_RESPONSE_MIB,
            conn_id,
            "a positive number of MiB (the largest API answer read into memory), e.g. 32",
        )
        auth_prefix = _extra(extras, "auth_prefix") or ""
        if auth_prefix and not auth_prefix.endswith(" "):
            auth_prefix += " "
        project_id = _extra(extras, "project_id")
        return cls(
            conn_id=conn_id,
            base_url=base_url,
            api_key=api_key,
            auth_prefix=auth_prefix,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            project_id=str(project_id) if project_id else None,
            max_retries=max_retries,
            call_timeout=call_timeout,
            max_response_bytes=int(max_response_mib * 1024 * 1024),
            budget_tokens=_extra(extras, "budget_tokens"),
            budget_period=_extra(extras, "budget_period"),
            batch_polling=_flag(extras, "batch_polling", True, conn_id),
        )

    @staticmethod
    def _base_url(conn: Any, conn_id: str) -> str:
        host = (conn.host or "").strip()
        if not host:
            return DEFAULT_BASE_URL
        if "://" not in host:
            scheme = (conn.schema or "https").strip().lower()
            host = f"{scheme}://{host}"
        refusal = url_refusal(host, carrying="the API key")
        if refusal is None and conn.port:
            parts = urlsplit(host)
            if parts.port is None:
                host = urlunsplit(parts._replace(netloc=f"{parts.netloc}:{conn.port}"))
                refusal = url_refusal(host, carrying="the API key")
        if refusal is not None:
            raise PixxelConfigError(
                f"Connection {conn_id!r}: host {strip_query(conn.host)!r} is refused: {refusal}. "
                f"Use e.g. {DEFAULT_BASE_URL} (or leave the host empty for that default), or "
                "http://127.0.0.1:<port> for the local simulator"
            )
        parts = urlsplit(host)
        return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path.rstrip("/"), "", ""))

    @property
    def authorization(self) -> str:
        return f"{self.auth_prefix}{self.api_key}"

    def headers(self) -> dict[str, str]:
        """Headers sent with every API request (never with signed-URL downloads)."""
        return {
            "Authorization": self.authorization,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }


def path(template: str, *values: Any) -> str:
    """Fill the ``{name}`` placeholders of a path template, in order, with URL-quoted non-empty ids.

    ``.`` and ``..`` are refused: quoting leaves them as they are and both HTTP clients collapse such
    dot segments, so ``get_order("..")`` would reach ``/v0/`` and an id of ``..`` another endpoint.
    """
    names = [segment.strip("{}") for segment in template.split("/") if segment.startswith("{")]
    filled: dict[str, str] = {}
    for name, value in zip(names, values, strict=True):
        operation = template.replace("{", "").replace("}", "")
        if value is None or (isinstance(value, str) and not value.strip()):
            raise PixxelConfigError(f"{name} is required for {operation}: pass a non-empty id, got {value!r}")
        if str(value) in (".", ".."):
            raise PixxelConfigError(
                f"{name} {value!r} is refused for {operation}: a dot segment would make the request "
                "reach another endpoint; pass the resource's id"
            )
        filled[name] = quote(str(value), safe="")
    return template.format(**filled)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(_query_value(v) for v in value)
    return str(value)


def query(**params: Any) -> dict[str, str]:
    """Query parameters with None left out; lists comma-joined, booleans as true/false."""
    return {name: _query_value(value) for name, value in params.items() if value is not None}


def body(**fields: Any) -> dict[str, Any]:
    """A JSON body with None fields left out."""
    return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True)
class ApiRequest:
    """One API call, independent of the HTTP library that sends it.

    ``creates`` is set on requests that are not idempotent: it names what the request creates and
    how to look for it, and such requests are never re-sent once the server may have acted on them.
    ``needs_project`` marks operations whose spec requires a ``project_id`` query parameter: when the
    caller gave none, :func:`with_default_project` fills in the connection's default.
    """

    method: str
    path: str
    params: Mapping[str, str] | None = None
    json: Any = None
    expect: ResponseKind = "json"
    creates: str | None = None
    needs_project: bool = False

    @property
    def accept(self) -> str:
        return {"bytes": "image/png, */*", "text": "text/csv, */*"}.get(self.expect, "application/json")


def resolve_project_id(project_id: str | None, settings: PixxelConnectionSettings) -> str:
    """``project_id`` if given, else the connection's default; a clear error when neither is."""
    resolved = project_id or settings.project_id
    if not resolved:
        raise PixxelConfigError(
            "project_id is required: pass project_id=..., or set the 'project_id' extra on "
            f"connection {settings.conn_id!r} (find ids with PixxelHook.list_projects())"
        )
    return resolved


def with_default_project(request: ApiRequest, settings: PixxelConnectionSettings) -> ApiRequest:
    """``request`` with its required ``project_id`` query parameter filled from the connection."""
    params = dict(request.params or {})
    if not request.needs_project or params.get("project_id"):
        return request
    params["project_id"] = resolve_project_id(None, settings)
    return replace(request, params=params)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def decode_json(content: bytes | bytearray | str) -> Any:
    """The JSON value of an API answer; a ValueError saying why for anything that is not plain JSON.

    The one decoder of both hooks: ``NaN``, ``Infinity`` and numbers too large for a float are
    refused (they would turn into OverflowErrors far from here), and so is nesting deep enough to
    exhaust Python's recursion limit.
    """
    try:
        return json.loads(content, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


def unusable_answer(request: ApiRequest, *, url: str, status: int, code: str, message: str) -> PixxelApiError:
    """The error for an answer the provider will not use: not JSON, the wrong shape, too large, a redirect."""
    return PixxelApiError(
        status=status, method=request.method, url=strip_query(url), code=code, message=message
    )


class AnswerBody:
    """An answer's body, collected chunk by chunk up to a cap: the same limits for both hooks.

    A successful answer larger than the connection's ``max_response_mib`` is refused as soon as its
    ``Content-Length`` or the bytes received pass the cap, so memory is bounded by the cap and not by
    what a server sends. Other answers (errors, redirects) are read only up to
    :data:`ERROR_BODY_BYTES`: what they say is at the start, and the rest is left unread.
    """

    def __init__(
        self,
        request: ApiRequest,
        *,
        url: str,
        status: int,
        headers: Mapping[str, str],
        settings: PixxelConnectionSettings,
    ) -> None:
        self._request = request
        self._url = url
        self._status = status
        self._success = 200 <= status < 300
        self.limit = settings.max_response_bytes if self._success else ERROR_BODY_BYTES
        self._buffer = bytearray()
        declared = headers.get("Content-Length") or ""
        if self._success and declared.strip().isdigit() and int(declared) > self.limit:
            raise self._too_large(f"its Content-Length says {int(declared)} bytes")

    def add(self, chunk: bytes) -> bool:
        """Take the next chunk; False once enough of an error answer is read (stop reading then)."""
        room = self.limit - len(self._buffer)
        if len(chunk) > room:
            if self._success:
                raise self._too_large(f"more than {self.limit} bytes arrived")
            self._buffer += chunk[:room]
            return False
        self._buffer += chunk
        return self._success or len(self._buffer) < self.limit

    @property
    def content(self) -> bytes:
        return bytes(self._buffer)

    def _too_large(self, why: str) -> PixxelApiError:
        return unusable_answer(
            self._request,
            url=self._url,
            status=self._status,
            code="answer_too_large",
            message=f"the answer is larger than the connection's max_response_mib of "
            f"{self.limit / (1024 * 1024):g} MiB ({why}); it was not read further. Narrow the request "
            "(filters, a smaller page_size), or raise the connection extra 'max_response_mib' if such "
            "answers are expected",
        )


def redirect_error(
    request: ApiRequest, *, url: str, status: int, headers: Mapping[str, str]
) -> PixxelApiError:
    """The error for a 3xx answer: the Pixxel API documents no redirects, so none is followed.

    Following one would re-send the request (a 307 re-sends its body, e.g. a store's secrets) or
    take another host's answer as the API's. The target is named without its query string.
    """
    location = (headers.get("Location") or headers.get("location") or "").strip()
    try:
        target = strip_query(urljoin(url, location)) if location else ""
        host = urlsplit(target).netloc if target else ""
    except ValueError:
        target, host = "", ""
    where = f"to {target} (host {host or 'unknown'})" if target else "without a readable Location"
    return unusable_answer(
        request,
        url=url,
        status=status,
        code="redirect",
        message=f"the server redirected {where}; the Pixxel API documents no redirects, so it was not "
        "followed and nothing was sent there. Check the connection's host (API base URL)",
    )


def api_error(
    *, status: int, method: str, url: str, content: bytes, content_type: str, headers: Mapping[str, str]
) -> PixxelApiError:
    """A typed error from an error answer; readable also when the body is not JSON."""
    code = message = details = None
    text = content.decode("utf-8", errors="replace").strip()
    payload: Any = None
    if text and ("json" in content_type or text[:1] in "{["):
        try:
            payload = decode_json(text)
        except ValueError:
            payload = None
    if isinstance(payload, dict):
        envelope = payload.get("error", payload)
        if isinstance(envelope, dict):
            code = envelope.get("code")
            message = envelope.get("message") or envelope.get("detail") or envelope.get("msg")
            details = envelope.get("details")
        elif isinstance(envelope, str):
            message = envelope
    elif text and not content_type.startswith("image/"):
        message = text[:500]
    elif content:
        message = f"<{len(content)} bytes of {content_type or 'unknown content'}>"
    retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
    return api_error_class(status)(
        status=status,
        method=method,
        url=strip_query(url),
        code=str(code) if code is not None else None,
        message=str(message) if message is not None else None,
        details=details,
        retry_after=retry_after,
    )


def decode_response(request: ApiRequest, *, url: str, status: int, content: bytes, content_type: str) -> Any:
    """The value a hook method returns for a successful answer."""
    if request.expect == "bytes":
        return content
    if request.expect == "text":
        return content.decode("utf-8", errors="replace")
    if status == 204 or not content.strip():
        return None
    try:
        value = decode_json(content)
    except ValueError as error:
        raise unusable_answer(
            request,
            url=url,
            status=status,
            code="invalid_json",
            message=f"expected a JSON body but got {content_type or 'no content type'}: {error}",
        ) from error
    if request.expect == "object" and not isinstance(value, dict):
        raise unusable_answer(
            request,
            url=url,
            status=status,
            code="unexpected_answer",
            message=f"expected a JSON object but got {type(value).__name__} {str(value)[:80]}",
        )
    return value


def response_value(
    request: ApiRequest,
    *,
    url: str,
    status: int,
    content: bytes,
    content_type: str,
    headers: Mapping[str, str],
) -> Any:
    """The decoded answer of a 2xx response, or the typed :class:`PixxelApiError` of any other."""
    if 300 <= status < 400:
        raise redirect_error(request, url=url, status=status, headers=headers)
    if status >= 400:
        raise api_error(
            status=status,
            method=request.method,
            url=url,
            content=content,
            content_type=content_type,
            headers=headers,
        )
    return decode_response(request, url=url, status=status, content=content, content_type=content_type)


def transport_error(
    request: ApiRequest,
    url: str,
    *,
    request_sent: bool,
    cause: BaseException,
    read_timeout: float | None = None,
    call_timeout: float | None = None,
) -> PixxelTransportError:
    """A :class:`PixxelTransportError` naming what happened, never the query string or the key.

    ``read_timeout`` is given when the failure was the wait for the answer running out, and
    ``call_timeout`` when the attempt's overall deadline passed (e.g. an answer trickling in).
    """
    if call_timeout is not None:
        what = f"no complete answer within {call_timeout:g} s (the connection's call_timeout)"
    elif read_timeout is not None:
        what = f"no answer within {read_timeout:g} s"
    elif request_sent:
        what = "connection lost"
    else:
        what = "could not connect"
    safe_url = strip_query(url)
    return PixxelTransportError(
        f"{request.method} {safe_url}: {what} ({type(cause).__name__})",
        method=request.method,
        url=safe_url,
        request_sent=request_sent,
    )


def outcome_unknown_error(request: ApiRequest, url: str, error: PixxelError) -> PixxelOutcomeUnknownError:
    """The error raised instead of re-sending a create request whose outcome is unknown."""
    safe_url = strip_query(url)
    return PixxelOutcomeUnknownError(
        f"{request.method} {safe_url} may have created {request.creates} even though it failed "
        f"({error}). It was not sent again, so nothing is created or bought twice. Check whether it "
        "exists before retrying.",
        method=request.method,
        url=safe_url,
        cause=error,
    )
