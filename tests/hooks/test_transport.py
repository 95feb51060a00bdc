"""Transport rules shared by both hooks: connection settings, request pieces, answers and errors."""

from __future__ import annotations

from datetime import date, datetime, timezone
from re import escape as re_escape
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_pixxel.exceptions import (
    PixxelApiError,
    PixxelAuthError,
    PixxelConfigError,
    PixxelNotFoundError,
    PixxelOutcomeUnknownError,
    PixxelValidationError,
)
from airflow_provider_pixxel.hooks.transport import (
    DEFAULT_BASE_URL,
    ERROR_BODY_BYTES,
    USER_AGENT,
    AnswerBody,
    ApiRequest,
    PixxelConnectionSettings,
    api_error,
    body,
    decode_json,
    decode_response,
    is_loopback_host,
    outcome_unknown_error,
    path,
    query,
    redirect_error,
    resolve_project_id,
    response_value,
    strip_query,
    transport_error,
    with_default_project,
)

KEY = "pxl-transport-0a9b8c7d6e"


def connection(**fields: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "conn_id": "pixxel_test",
        "host": "https://api.pixxel.space",
        "schema": None,
        "port": None,
        "password": KEY,
        "extra": None,
        "extra_dejson": {},
    }
    values.update(fields)
    if values["extra_dejson"]:
        values["extra"] = "set"
    return SimpleNamespace(**values)


def settings_for(**fields: Any) -> PixxelConnectionSettings:
    return PixxelConnectionSettings.from_connection(connection(**fields))


# -- connection settings ------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = settings_for(host=None)
    assert settings.base_url == DEFAULT_BASE_URL
    assert (settings.connect_timeout, settings.read_timeout) == (10.0, 60.0)
    assert settings.max_retries == 5
    assert settings.project_id is None
    assert settings.headers() == {
        "Authorization": KEY,
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, True),
        (True, True),
        (False, False),
        ("false", False),
        (" True ", True),
        ("0", False),
        ("on", True),
    ],
)
def test_batch_polling_is_a_true_or_false_extra(value: Any, expected: bool) -> None:
    extras = {} if value is None else {"batch_polling": value}
    assert settings_for(extra_dejson=extras).batch_polling is expected


@pytest.mark.parametrize("value", ["sometimes", 2, ["false"]])
def test_a_batch_polling_that_is_not_true_or_false_is_refused(value: Any) -> None:
    with pytest.raises(PixxelConfigError, match="extra 'batch_polling' must be true or false; got"):
        settings_for(extra_dejson={"batch_polling": value})


@pytest.mark.parametrize(
    ("fields", "base_url"),
    [
        ({"host": "https://api.pixxel.space/"}, "https://api.pixxel.space"),
        ({"host": "api.pixxel.space"}, "https://api.pixxel.space"),
        ({"host": "localhost", "schema": "http", "port": 8080}, "http://localhost:8080"),
        ({"host": "http://127.0.0.1:9000/prefix/"}, "http://127.0.0.1:9000/prefix"),
        ({"host": "http://[::1]:9000"}, "http://[::1]:9000"),
        ({"host": "https://proxy.example.com", "port": 8443}, "https://proxy.example.com:8443"),
    ],
)
def test_base_url(fields: dict[str, Any], base_url: str) -> None:
    assert settings_for(**fields).base_url == base_url


@pytest.mark.parametrize("host", ["http://api.pixxel.space", "http://10.0.0.5:8080", "api.pixxel.space:80"])
def test_plain_http_to_a_remote_host_is_refused(host: str) -> None:
    schema = "http" if "://" not in host else None
    with pytest.raises(PixxelConfigError, match="refusing to send the API key over plain http"):
        settings_for(host=host, schema=schema)


@pytest.mark.parametrize("host", ["ftp://api.pixxel.space", "https://"])
def test_non_http_hosts_are_refused(host: str) -> None:
    with pytest.raises(PixxelConfigError, match="is not an http"):
        settings_for(host=host)


@pytest.mark.parametrize("password", [None, "", "   "])
def test_missing_key(password: str | None) -> None:
    with pytest.raises(PixxelConfigError, match=r"'pixxel_test' has no API key.*password field"):
        settings_for(password=password)


def test_extras() -> None:
    settings = settings_for(
        extra_dejson={"auth_prefix": "Bearer", "timeout": "5, 30", "project_id": "proj-1", "max_retries": "2"}
    )
    assert settings.authorization == f"Bearer {KEY}"
    assert (settings.connect_timeout, settings.read_timeout) == (5.0, 30.0)
    assert settings.project_id == "proj-1"
    assert settings.max_retries == 2


def test_extras_in_the_prefixed_form_older_uis_store() -> None:
    settings = settings_for(
        extra_dejson={"extra__pixxel__project_id": "proj-2", "extra__pixxel__timeout": 20}
    )
    assert settings.project_id == "proj-2"
    assert (settings.connect_timeout, settings.read_timeout) == (20.0, 20.0)


@pytest.mark.parametrize(
    ("value", "expected"), [(15, (15.0, 15.0)), ([3, 90], (3.0, 90.0)), ("7", (7.0, 7.0))]
)
def test_timeout_forms(value: Any, expected: tuple[float, float]) -> None:
    settings = settings_for(extra_dejson={"timeout": value})
    assert (settings.connect_timeout, settings.read_timeout) == expected


@pytest.mark.parametrize("value", [0, -1, "abc", [1, 2, 3], {"connect": 1}, True])
def test_bad_timeouts_are_refused(value: Any) -> None:
    with pytest.raises(PixxelConfigError, match="extra 'timeout' must be a positive number"):
        settings_for(extra_dejson={"timeout": value})


@pytest.mark.parametrize("value", [-1, "many", 1.5j])
def test_bad_max_retries_is_refused(value: Any) -> None:
    with pytest.raises(PixxelConfigError, match="extra 'max_retries' must be a whole number"):
        settings_for(extra_dejson={"max_retries": value})


def test_call_timeout_and_answer_cap_defaults_and_values() -> None:
    defaults = settings_for()
    assert (defaults.call_timeout, defaults.max_response_bytes) == (300.0, 32 * 1024 * 1024)
    chosen = settings_for(extra_dejson={"call_timeout": "45", "max_response_mib": 0.5})
    assert (chosen.call_timeout, chosen.max_response_bytes) == (45.0, 512 * 1024)


@pytest.mark.parametrize("name", ["call_timeout", "max_response_mib"])
@pytest.mark.parametrize("value", [0, -3, "soon", [1], True, "inf", "nan"])
def test_bad_call_timeout_and_answer_cap_are_refused(name: str, value: Any) -> None:
    with pytest.raises(PixxelConfigError, match=f"extra '{name}' must be a positive number of"):
        settings_for(extra_dejson={name: value})


def test_the_key_is_not_in_the_repr() -> None:
    settings = settings_for(extra_dejson={"auth_prefix": "Bearer"})
    assert KEY not in repr(settings)
    assert KEY not in str(settings)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("api.pixxel.space", False),
        (None, False),
        ("", False),
    ],
)
def test_is_loopback_host(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


# -- request pieces -----------------------------------------------------------------------------------


def test_path_fills_placeholders_in_order_and_quotes_them() -> None:
    assert path("/v0/aois/{aoi_id}/downloads/{download_id}", "a 1", "d/2") == "/v0/aois/a%201/downloads/d%2F2"
    assert path("/v0/orders/{id}", 42) == "/v0/orders/42"


@pytest.mark.parametrize("value", [None, "", "  "])
def test_path_refuses_empty_ids(value: Any) -> None:
    with pytest.raises(PixxelConfigError, match="aoi_id is required for /v0/aoi/aoi_id"):
        path("/v0/aoi/{aoi_id}", value)


@pytest.mark.parametrize("value", [".", ".."])
def test_path_refuses_dot_segments(value: str) -> None:
    with pytest.raises(PixxelConfigError, match=f"insight_id '{re_escape(value)}' is refused .* dot segment"):
        path("/v0/aoi/{aoi_id}/insights/{insight_id}", "aoi1", value)


def test_path_keeps_ids_that_merely_contain_dots() -> None:
    assert path("/v0/orders/{id}", "...") == "/v0/orders/..."
    assert path("/v0/orders/{id}", "a..b") == "/v0/orders/a..b"
    assert path("/v0/orders/{id}", "../x") == "/v0/orders/..%2Fx"


def test_path_needs_every_id() -> None:
    with pytest.raises(ValueError, match="zip"):
        path("/v0/aois/{aoi_id}/downloads/{download_id}", "a")


def test_query_leaves_out_none_and_renders_values() -> None:
    assert query(
        a=None,
        b=1,
        c=True,
        d=False,
        e=["x", "y"],
        f=date(2024, 5, 6),
        g=datetime(2024, 5, 6, 1, 2, tzinfo=timezone.utc),
        h="text",
    ) == {
        "b": "1",
        "c": "true",
        "d": "false",
        "e": "x,y",
        "f": "2024-05-06",
        "g": "2024-05-06T01:02:00+00:00",
        "h": "text",
    }


def test_body_leaves_out_none_only() -> None:
    assert body(a=None, b=0, c=False, d=[], e="") == {"b": 0, "c": False, "d": [], "e": ""}


@pytest.mark.parametrize(
    ("expect", "accept"),
    [
        ("json", "application/json"),
        ("bytes", "image/png, */*"),
        ("text", "text/csv, */*"),
        ("empty", "application/json"),
    ],
)
def test_accept_header_follows_the_expected_answer(expect: Any, accept: str) -> None:
    assert ApiRequest("GET", "/x", expect=expect).accept == accept


def test_strip_query() -> None:
    assert strip_query("https://bucket.s3/file.tif?X-Amz-Signature=abc#frag") == "https://bucket.s3/file.tif"


def test_project_defaults() -> None:
    with_project = settings_for(extra_dejson={"project_id": "proj-d"})
    without = settings_for()
    assert resolve_project_id("proj-x", without) == "proj-x"
    assert resolve_project_id(None, with_project) == "proj-d"
    with pytest.raises(PixxelConfigError, match=r"project_id is required.*'pixxel_test'"):
        resolve_project_id(None, without)

    needs = ApiRequest("GET", "/v0/workflows/w", params={}, needs_project=True)
    assert with_default_project(needs, with_project).params == {"project_id": "proj-d"}
    given = ApiRequest("GET", "/v0/workflows/w", params={"project_id": "proj-x"}, needs_project=True)
    assert with_default_project(given, without) is given
    plain = ApiRequest("GET", "/v0/workflows")
    assert with_default_project(plain, without) is plain
    with pytest.raises(PixxelConfigError):
        with_default_project(needs, without)


# -- answers --------------------------------------------------------------------------------------------


def error_for(
    status: int, content: bytes, content_type: str = "application/json", **headers: str
) -> PixxelApiError:
    return api_error(
        status=status,
        method="GET",
        url="https://api.pixxel.space/v0/x?token=secret",
        content=content,
        content_type=content_type,
        headers=headers,
    )


def test_api_error_reads_the_envelope() -> None:
    error = error_for(409, b'{"error": {"code": "conflict", "message": "exists", "details": ["name"]}}')
    assert isinstance(error, PixxelValidationError)
    assert (error.code, error.message, error.details) == ("conflict", "exists", ["name"])
    assert error.url == "https://api.pixxel.space/v0/x"
    assert (
        str(error) == "Pixxel API GET https://api.pixxel.space/v0/x failed with HTTP 409 [conflict]: exists "
        "(details: ['name'])"
    )


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        (b'{"message": "flat"}', "application/json", "flat"),
        (b'{"detail": "fastapi style"}', "application/json", "fastapi style"),
        (b'{"error": "just a string"}', "application/json", "just a string"),
        (b"plain words", "text/plain", "plain words"),
        (b"{not json", "application/json", "{not json"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png", "<10 bytes of image/png>"),
        (b"", "", None),
    ],
)
def test_api_error_is_readable_for_any_body(content: bytes, content_type: str, message: str | None) -> None:
    assert error_for(500, content, content_type).message == message


def test_api_error_classes_and_retry_after() -> None:
    assert isinstance(error_for(401, b""), PixxelAuthError)
    assert isinstance(error_for(404, b""), PixxelNotFoundError)
    assert type(error_for(502, b"")) is PixxelApiError
    assert error_for(429, b"", **{"Retry-After": "12"}).retry_after == 12.0
    assert "password field" in str(error_for(403, b""))


def test_long_text_bodies_are_cut() -> None:
    assert len(error_for(500, b"x" * 5000, "text/html").message or "") == 500


def test_decode_response() -> None:
    url = "https://api.pixxel.space/v0/x"
    assert decode_response(
        ApiRequest("GET", "/x"), url=url, status=200, content=b'{"a": 1}', content_type="application/json"
    ) == {"a": 1}
    assert decode_response(ApiRequest("GET", "/x"), url=url, status=204, content=b"", content_type="") is None
    assert (
        decode_response(ApiRequest("DELETE", "/x"), url=url, status=200, content=b"  ", content_type="")
        is None
    )
    assert (
        decode_response(
            ApiRequest("GET", "/x", expect="bytes"),
            url=url,
            status=200,
            content=b"\x89PNG",
            content_type="image/png",
        )
        == b"\x89PNG"
    )
    assert (
        decode_response(
            ApiRequest("GET", "/x", expect="text"),
            url=url,
            status=200,
            content=b"a,b\n",
            content_type="text/csv",
        )
        == "a,b\n"
    )
    with pytest.raises(PixxelApiError, match="expected a JSON body but got text/html"):
        decode_response(
            ApiRequest("GET", "/x"), url=url, status=200, content=b"<html>", content_type="text/html"
        )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"a": NaN}', "NaN is not a JSON value"),
        (b"[-Infinity]", "-Infinity is not a JSON value"),
        (b'{"total": 1e400}', "out of range"),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    ],
)
def test_decode_json_refuses_what_is_not_plain_json(content: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_json(content)


def test_decode_json_reads_plain_json() -> None:
    assert decode_json(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


def test_an_object_read_refuses_other_json() -> None:
    request = ApiRequest("GET", "/v0/orders/o1", expect="object")
    url = "https://api.pixxel.space/v0/orders/o1"
    assert decode_response(request, url=url, status=200, content=b'{"id": "o1"}', content_type="") == {
        "id": "o1"
    }
    with pytest.raises(PixxelApiError, match="expected a JSON object but got list") as refused:
        decode_response(request, url=url, status=200, content=b'[{"id": "o1"}]', content_type="")
    assert refused.value.code == "unexpected_answer"


ORDERS_URL = "https://api.pixxel.space/v0/orders"


def test_redirect_error_names_status_and_target_without_query() -> None:
    request = ApiRequest("GET", "/v0/orders")
    relative = redirect_error(request, url=ORDERS_URL, status=302, headers={"Location": "/v1/orders?sig=s"})
    assert "redirected to https://api.pixxel.space/v1/orders (host api.pixxel.space)" in str(relative)
    assert "sig=s" not in str(relative)
    absent = redirect_error(request, url=ORDERS_URL, status=301, headers={})
    assert "HTTP 301" in str(absent)
    assert "without a readable Location" in str(absent)


def test_answer_body_keeps_only_the_start_of_an_error_answer() -> None:
    huge = {"Content-Length": str(10**9)}  # an error answer is never refused for its size: it is cut
    answer = AnswerBody(
        ApiRequest("GET", "/v0/orders"), url=ORDERS_URL, status=500, headers=huge, settings=settings_for()
    )
    assert answer.add(b"e" * 1000)
    assert not answer.add(b"e" * ERROR_BODY_BYTES)
    assert len(answer.content) == ERROR_BODY_BYTES


def test_response_value_raises_for_errors_and_decodes_the_rest() -> None:
    request = ApiRequest("GET", "/v0/x")
    with pytest.raises(PixxelNotFoundError):
        response_value(
            request,
            url="https://h/v0/x",
            status=404,
            content=b"{}",
            content_type="application/json",
            headers={},
        )
    assert response_value(
        request, url="https://h/v0/x", status=201, content=b"[1]", content_type="application/json", headers={}
    ) == [1]


def test_transport_error_wording() -> None:
    request = ApiRequest("POST", "/v0/orders")
    url = "https://api.pixxel.space/v0/orders?sig=secret"
    refused = transport_error(request, url, request_sent=False, cause=ConnectionRefusedError())
    assert (
        str(refused) == "POST https://api.pixxel.space/v0/orders: could not connect (ConnectionRefusedError)"
    )
    assert refused.request_sent is False
    lost = transport_error(request, url, request_sent=True, cause=ConnectionResetError())
    assert "connection lost" in str(lost)
    slow = transport_error(request, url, request_sent=True, cause=TimeoutError(), read_timeout=60.0)
    assert "no answer within 60 s" in str(slow)
    trickled = transport_error(request, url, request_sent=True, cause=TimeoutError(), call_timeout=300.0)
    assert "no complete answer within 300 s (the connection's call_timeout)" in str(trickled)
    assert trickled.request_sent is True
    assert "secret" not in str(slow) + slow.url


def test_outcome_unknown_error_says_how_to_check() -> None:
    request = ApiRequest("POST", "/v0/orders", creates="an order (look for it with list_orders())")
    cause = error_for(502, b"bad gateway", "text/plain")
    error = outcome_unknown_error(request, "https://api.pixxel.space/v0/orders", cause)
    assert isinstance(error, PixxelOutcomeUnknownError)
    assert error.cause is cause
    assert str(error).startswith(
        "POST https://api.pixxel.space/v0/orders may have created an order (look for it with list_orders())"
    )
    assert "Check whether it exists before retrying" in str(error)
