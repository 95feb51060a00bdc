"""``PixxelHook``: every operation's request, retries, error mapping, validation and secret hygiene."""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import requests_mock as requests_mock_module
from urllib3.exceptions import MaxRetryError, NewConnectionError

from airflow_provider_pixxel.exceptions import (
    PixxelApiError,
    PixxelAuthError,
    PixxelConfigError,
    PixxelNotFoundError,
    PixxelOutcomeUnknownError,
    PixxelTransportError,
    PixxelValidationError,
)
from airflow_provider_pixxel.hooks import pixxel as pixxel_module
from airflow_provider_pixxel.hooks.pixxel import PixxelHook, visualization_date

from .conftest import API_KEY, BASE_URL, MAX_RETRIES
from .operation_cases import CASES_BY_NAME, OPERATION_CASES, ORDER_ITEM, PNG_BYTES, OperationCase

ANY_URL = requests_mock_module.ANY


def sent_query(request: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))


def call(hook: PixxelHook, case: OperationCase) -> Any:
    return getattr(hook, case.name)(*case.args, **case.kwargs)


def new_connection_error() -> requests.exceptions.ConnectionError:
    """What requests raises when the TCP connection cannot be opened."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/v0", reason))


# -- every operation --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", OPERATION_CASES, ids=lambda case: case.name)
def test_operation_sends_its_documented_request(
    hook: PixxelHook, requests_mock: Any, case: OperationCase
) -> None:
    requests_mock.register_uri(
        ANY_URL,
        ANY_URL,
        status_code=case.status,
        content=case.content,
        headers={"Content-Type": case.content_type} if case.content_type else {},
    )

    result = call(hook, case)

    assert requests_mock.call_count == 1
    sent = requests_mock.request_history[0]
    assert sent.method == case.method
    assert urlsplit(sent.url).path == case.path
    assert sent_query(sent) == case.query
    if case.body is None:
        assert sent.body is None
    else:
        assert sent.json() == case.body
    assert sent.headers["Authorization"] == API_KEY
    assert result == case.returns
    assert type(result) is type(case.returns)


def test_the_table_covers_every_public_operation_once() -> None:
    names = [case.name for case in OPERATION_CASES]
    assert len(names) == len(set(names)) == 55
    for name in names:
        assert callable(getattr(PixxelHook, name)), name


def test_operations_need_non_empty_ids(hook: PixxelHook, requests_mock: Any) -> None:
    with pytest.raises(PixxelConfigError, match="job_id is required"):
        hook.get_job("wf-1", " ")
    assert requests_mock.call_count == 0


def test_path_ids_are_url_quoted(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.get(ANY_URL, json={})
    hook.get_collection_item("pixxel-td2", "a/b c")
    assert requests_mock.last_request.path == "/v0/archives/collections/pixxel-td2/items/a%2fb%20c"


# -- project defaults -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["create_job", "get_workflow", "delete_insights"])
def test_required_project_id_falls_back_to_the_connection_default(
    set_connection: Callable[..., None], requests_mock: Any, name: str
) -> None:
    set_connection(extra={"project_id": "proj-default"})
    requests_mock.register_uri(ANY_URL, ANY_URL, json={})
    case = CASES_BY_NAME[name]

    getattr(PixxelHook(), name)(*case.args)

    assert sent_query(requests_mock.last_request) == {"project_id": "proj-default"}


@pytest.mark.parametrize("name", ["create_job", "get_workflow", "delete_insights", "create_aoi"])
def test_missing_project_id_is_a_config_error_and_nothing_is_sent(
    hook: PixxelHook, requests_mock: Any, name: str
) -> None:
    case = CASES_BY_NAME[name]
    kwargs = {k: v for k, v in case.kwargs.items() if k != "project_id"}
    with pytest.raises(PixxelConfigError, match=r"project_id is required.*'project_id' extra"):
        getattr(hook, name)(*case.args, **kwargs)
    assert requests_mock.call_count == 0


def test_explicit_project_id_wins_over_the_default(
    set_connection: Callable[..., None], requests_mock: Any
) -> None:
    set_connection(extra={"project_id": "proj-default"})
    requests_mock.post(ANY_URL, json={})
    PixxelHook().create_job("wf-1", project_id="proj-explicit")
    assert sent_query(requests_mock.last_request) == {"project_id": "proj-explicit"}


# -- argument checks before sending -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["2024_05_06", "2024-05-06", " 2024-05-06 ", date(2024, 5, 6), datetime(2024, 5, 6, 13, 45)],
)
def test_visualization_dates_accept_the_usual_forms(value: Any) -> None:
    assert visualization_date(value) == "2024_05_06"


@pytest.mark.parametrize("value", ["2024/05/06", "06-05-2024", "2024_13_01", "", "yesterday"])
def test_png_date_in_another_form_is_refused_before_sending(
    hook: PixxelHook, requests_mock: Any, value: str
) -> None:
    with pytest.raises(PixxelConfigError, match="YYYY_MM_DD"):
        hook.generate_index_png("aoi-1", "vis-1", index_id="idx-1", date=value, visualization_mode="dynamic")
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        (
            "generate_index_png",
            {"index_id": "i", "date": "2024_05_06", "visualization_mode": "static"},
            "visualization_mode must be one of dynamic, theoretical",
        ),
        (
            "generate_visualization_sld",
            {"dates": ["2024_05_06"], "visualization_modes": ["dynamic", "fancy"]},
            "visualization_modes must be one of",
        ),
        (
            "update_visualization_metadata",
            {"visualization_mode": "dynamic", "legend": {}},
            "dynamic_bins is required",
        ),
        (
            "update_visualization_metadata",
            {"visualization_mode": "dynamic", "legend": {}, "dynamic_bins": 16},
            "dynamic_bins must be a whole number from 1 to 15",
        ),
    ],
)
def test_visualization_arguments_are_checked(
    hook: PixxelHook, requests_mock: Any, name: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        getattr(hook, name)("aoi-1", "vis-1", **kwargs)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "message"),
    [
        ("search_images", (), {**CASES_BY_NAME["search_images"].kwargs, "limit": 10001}, "limit must be"),
        ("search_images", (), {**CASES_BY_NAME["search_images"].kwargs, "limit": 0}, "limit must be"),
        (
            "create_index",
            (),
            {**CASES_BY_NAME["create_index"].kwargs, "expression_type": "ratio"},
            "expression_type",
        ),
        (
            "create_store",
            (),
            {**CASES_BY_NAME["create_store"].kwargs, "type": "ftp"},
            "type must be one of S3",
        ),
        ("create_order", (), {"order_items": []}, "order_items must be a non-empty list"),
        ("create_aoi_download", ("aoi-1",), {"asset_ids": []}, "asset_ids must be a non-empty list"),
        ("create_deliveries", (), {"deliveries": []}, "deliveries must be a non-empty list"),
        ("create_catalog_download", (), {}, "needs catalog_ids or order_item_ids"),
        (
            "create_aoi",
            (),
            {**CASES_BY_NAME["create_aoi"].kwargs, "geometry": {"type": "Point", "coordinates": [1, 2]}},
            "GeoJSON Polygon",
        ),
        (
            "create_insights",
            ("aoi-1",),
            {"block": {"name": "ndvi"}, "input": []},
            "block must name a version",
        ),
    ],
)
def test_cheap_checks_fail_before_sending(
    hook: PixxelHook,
    requests_mock: Any,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        getattr(hook, name)(*args, **kwargs)
    assert requests_mock.call_count == 0


def test_insight_estimate_and_dry_run_order_are_not_creates(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.post(ANY_URL, [{"status_code": 500, "json": {}}, {"status_code": 200, "json": {"cost": 3}}])
    assert hook.create_insights("aoi-1", block={"version": "1"}, input=[], estimate=True) == {"cost": 3}
    requests_mock.post(
        ANY_URL, [{"status_code": 503, "json": {}}, {"status_code": 200, "json": {"total": 9}}]
    )
    assert hook.create_order(order_items=[ORDER_ITEM], dry_run=True) == {"total": 9}
    assert requests_mock.last_request.json()["dry_run"] is True


# -- retries ------------------------------------------------------------------------------------------

RETRYABLE_STATUSES = [429, 500, 502, 503, 504]
IDEMPOTENT_CASES = [c for c in OPERATION_CASES if c.method in ("GET", "PUT", "DELETE")]
SAFE_POST_CASES = [c for c in OPERATION_CASES if c.method == "POST" and not c.creates]
CREATE_CASES = [c for c in OPERATION_CASES if c.creates]


def answer(case: OperationCase) -> dict[str, Any]:
    return {
        "status_code": case.status,
        "content": case.content,
        "headers": {"Content-Type": case.content_type} if case.content_type else {},
    }


def test_the_creates_are_exactly_the_non_idempotent_operations() -> None:
    assert {c.name for c in CREATE_CASES} == {
        "create_aoi",
        "create_index",
        "create_visualization",
        "create_insights",
        "create_job",
        "create_order",
        "create_store",
    }
    # Download and delivery requests only package or copy what was already paid for: safe to repeat.
    assert {c.name for c in SAFE_POST_CASES} == {
        "create_deliveries",
        "create_aoi_download",
        "create_catalog_download",
        "search_images",
        "search_archive",
        "search_catalogs",
        "generate_index_png",
        "generate_visualization_sld",
    }


@pytest.mark.parametrize("status", RETRYABLE_STATUSES)
@pytest.mark.parametrize("case", IDEMPOTENT_CASES + SAFE_POST_CASES, ids=lambda case: case.name)
def test_safe_requests_are_retried_on_throttling_and_server_errors(
    hook: PixxelHook, requests_mock: Any, sleeps: list[float], case: OperationCase, status: int
) -> None:
    requests_mock.register_uri(
        ANY_URL, ANY_URL, [{"status_code": status, "json": {"error": {"message": "busy"}}}, answer(case)]
    )
    assert call(hook, case) == case.returns
    assert requests_mock.call_count == 2
    assert sleeps == [1.0]


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectTimeout,
        requests.exceptions.ReadTimeout,
        requests.exceptions.ConnectionError,
        new_connection_error,
    ],
    ids=["connect-timeout", "read-timeout", "connection-reset", "connection-refused"],
)
@pytest.mark.parametrize("name", ["get_job", "download_job", "delete_store", "search_catalogs"])
def test_safe_requests_are_retried_on_network_failures(
    hook: PixxelHook, requests_mock: Any, sleeps: list[float], failure: Callable[[], Exception], name: str
) -> None:
    case = CASES_BY_NAME[name]
    requests_mock.register_uri(ANY_URL, ANY_URL, [{"exc": failure()}, {"exc": failure()}, answer(case)])
    assert call(hook, case) == case.returns
    assert requests_mock.call_count == 3
    assert sleeps == [1.0, 2.0]


def test_retries_stop_after_max_retries_with_growing_delays(
    hook: PixxelHook, requests_mock: Any, sleeps: list[float]
) -> None:
    requests_mock.get(ANY_URL, status_code=503, json={"error": {"code": "unavailable", "message": "down"}})
    with pytest.raises(PixxelApiError) as raised:
        hook.get_job("wf-1", "job-1")
    assert raised.value.status == 503
    assert requests_mock.call_count == MAX_RETRIES + 1
    assert sleeps == [1.0, 2.0, 4.0]


def test_full_jitter_draws_between_zero_and_the_backoff(
    set_connection: Callable[..., None], requests_mock: Any
) -> None:
    from airflow_provider_pixxel.hooks.retry import RetryPolicy

    bounds: list[tuple[float, float]] = []

    def recording_jitter(low: float, high: float) -> float:
        bounds.append((low, high))
        return high / 2

    sleeps: list[float] = []
    hook = PixxelHook(retry_policy=RetryPolicy(max_retries=2, jitter=recording_jitter), sleep=sleeps.append)
    requests_mock.get(ANY_URL, status_code=500, json={})
    with pytest.raises(PixxelApiError):
        hook.get_aoi("aoi-1")
    assert bounds[:2] == [(0.0, 1.0), (0.0, 2.0)]
    assert sleeps == [0.5, 1.0]


def test_retry_after_seconds_is_honoured(hook: PixxelHook, requests_mock: Any, sleeps: list[float]) -> None:
    requests_mock.get(
        ANY_URL, [{"status_code": 429, "headers": {"Retry-After": "17"}, "json": {}}, {"json": {"id": "a"}}]
    )
    assert hook.get_aoi("aoi-1") == {"id": "a"}
    assert sleeps == [17.0]


def test_retry_after_http_date_is_honoured(hook: PixxelHook, requests_mock: Any, sleeps: list[float]) -> None:
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    requests_mock.get(
        ANY_URL, [{"status_code": 503, "headers": {"Retry-After": later}, "json": {}}, {"json": {}}]
    )
    hook.get_aoi("aoi-1")
    assert len(sleeps) == 1
    assert 110.0 <= sleeps[0] <= 120.0


def test_a_short_retry_after_does_not_shorten_the_backoff(
    hook: PixxelHook, requests_mock: Any, sleeps: list[float]
) -> None:
    requests_mock.get(
        ANY_URL,
        [
            {"status_code": 503, "json": {}},
            {"status_code": 503, "json": {}},
            {"status_code": 429, "headers": {"Retry-After": "0"}, "json": {}},
            {"json": {}},
        ],
    )
    hook.get_aoi("aoi-1")
    assert sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_never_retried(
    hook: PixxelHook, requests_mock: Any, sleeps: list[float], status: int
) -> None:
    requests_mock.get(
        ANY_URL, status_code=status, json={"error": {"code": "forbidden", "message": "no access"}}
    )
    with pytest.raises(PixxelAuthError, match="password field") as raised:
        hook.get_aoi("aoi-1")
    assert raised.value.status == status
    assert requests_mock.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, PixxelValidationError),
        (404, PixxelNotFoundError),
        (409, PixxelValidationError),
        (422, PixxelValidationError),
    ],
)
def test_client_errors_map_to_their_class_and_are_not_retried(
    hook: PixxelHook, requests_mock: Any, status: int, error_class: type[PixxelApiError]
) -> None:
    requests_mock.get(
        ANY_URL,
        status_code=status,
        json={"error": {"code": "bad", "message": "the thing is wrong", "details": {"field": "aoi_id"}}},
    )
    with pytest.raises(error_class) as raised:
        hook.get_aoi("aoi-1")
    error = raised.value
    assert (error.status, error.code, error.message, error.details) == (
        status,
        "bad",
        "the thing is wrong",
        {"field": "aoi_id"},
    )
    assert f"GET {BASE_URL}/v0/aoi/aoi-1 failed with HTTP {status} [bad]: the thing is wrong" in str(error)
    assert requests_mock.call_count == 1


# -- creates: never bought twice ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("case", CREATE_CASES, ids=lambda case: case.name)
def test_creates_are_not_resent_after_a_server_error(
    hook: PixxelHook, requests_mock: Any, sleeps: list[float], case: OperationCase, status: int
) -> None:
    requests_mock.register_uri(ANY_URL, ANY_URL, [{"status_code": status, "json": {}}, answer(case)])
    with pytest.raises(PixxelOutcomeUnknownError) as raised:
        call(hook, case)
    assert requests_mock.call_count == 1
    assert sleeps == []
    message = str(raised.value)
    assert "It was not sent again" in message
    assert "Check whether it exists before retrying" in message
    assert re.search(r"with \w+\(", message), "the message names the hook method to check with"
    assert isinstance(raised.value.cause, PixxelApiError)


@pytest.mark.parametrize(
    "failure",
    [requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError],
    ids=["read-timeout", "reset"],
)
@pytest.mark.parametrize("case", CREATE_CASES, ids=lambda case: case.name)
def test_creates_are_not_resent_when_the_request_may_have_arrived(
    hook: PixxelHook, requests_mock: Any, case: OperationCase, failure: type[Exception]
) -> None:
    requests_mock.register_uri(ANY_URL, ANY_URL, [{"exc": failure}, answer(case)])
    with pytest.raises(PixxelOutcomeUnknownError) as raised:
        call(hook, case)
    assert requests_mock.call_count == 1
    assert isinstance(raised.value.cause, PixxelTransportError)
    assert raised.value.cause.request_sent is True


@pytest.mark.parametrize(
    "failure", [requests.exceptions.ConnectTimeout, new_connection_error], ids=["connect-timeout", "refused"]
)
@pytest.mark.parametrize("case", CREATE_CASES, ids=lambda case: case.name)
def test_creates_are_retried_when_the_connection_never_opened(
    hook: PixxelHook,
    requests_mock: Any,
    sleeps: list[float],
    case: OperationCase,
    failure: Callable[[], Exception],
) -> None:
    requests_mock.register_uri(ANY_URL, ANY_URL, [{"exc": failure()}, answer(case)])
    assert call(hook, case) == case.returns
    assert requests_mock.call_count == 2
    assert sleeps == [1.0]


@pytest.mark.parametrize("case", CREATE_CASES, ids=lambda case: case.name)
def test_creates_are_retried_after_a_429(
    hook: PixxelHook, requests_mock: Any, sleeps: list[float], case: OperationCase
) -> None:
    requests_mock.register_uri(
        ANY_URL, ANY_URL, [{"status_code": 429, "headers": {"Retry-After": "5"}, "json": {}}, answer(case)]
    )
    assert call(hook, case) == case.returns
    assert requests_mock.call_count == 2
    assert sleeps == [5.0]


def test_a_create_that_never_connects_raises_the_transport_error(
    hook: PixxelHook, requests_mock: Any
) -> None:
    requests_mock.post(ANY_URL, exc=requests.exceptions.ConnectTimeout)
    with pytest.raises(PixxelTransportError) as raised:
        hook.create_job("wf-1", project_id="p")
    assert raised.value.request_sent is False
    assert "could not connect" in str(raised.value)
    assert requests_mock.call_count == MAX_RETRIES + 1


def test_a_create_still_throttled_after_all_retries_raises_the_429(
    hook: PixxelHook, requests_mock: Any
) -> None:
    requests_mock.post(ANY_URL, status_code=429, json={"error": {"message": "slow down"}})
    with pytest.raises(PixxelApiError, match="HTTP 429"):
        hook.create_order(order_items=[ORDER_ITEM])
    assert requests_mock.call_count == MAX_RETRIES + 1


# -- answers that are not JSON ------------------------------------------------------------------------


def test_png_endpoint_error_as_an_image_is_readable(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.post(ANY_URL, status_code=400, content=PNG_BYTES, headers={"Content-Type": "image/png"})
    with pytest.raises(PixxelValidationError, match=r"HTTP 400: <24 bytes of image/png>"):
        hook.generate_index_png(
            "aoi-1", "vis-1", index_id="i", date="2024_05_06", visualization_mode="dynamic"
        )


def test_png_endpoint_json_error_labelled_as_png_is_decoded(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.post(
        ANY_URL,
        status_code=404,
        content=b'{"error": {"code": "not_found", "message": "no data for 2024_05_06"}}',
        headers={"Content-Type": "image/png"},
    )
    with pytest.raises(PixxelNotFoundError, match=r"\[not_found\]: no data for 2024_05_06"):
        hook.generate_index_png(
            "aoi-1", "vis-1", index_id="i", date="2024_05_06", visualization_mode="dynamic"
        )


def test_plain_text_error_is_readable(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.post(
        ANY_URL, status_code=400, text="date out of range", headers={"Content-Type": "text/plain"}
    )
    with pytest.raises(PixxelValidationError, match="HTTP 400: date out of range"):
        hook.generate_index_png(
            "aoi-1", "vis-1", index_id="i", date="2024_05_06", visualization_mode="dynamic"
        )


def test_csv_report_error_is_readable(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.get(
        ANY_URL, status_code=403, text="error,access denied\n", headers={"Content-Type": "text/csv"}
    )
    with pytest.raises(PixxelAuthError, match="HTTP 403: error,access denied"):
        hook.download_order_report()


def test_invalid_json_success_body_is_an_api_error(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.get(ANY_URL, text="<html>gateway</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(PixxelApiError, match="expected a JSON body but got text/html"):
        hook.get_aoi("aoi-1")


# -- connection, timeouts and secrets -----------------------------------------------------------------


def test_timeouts_are_always_passed(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.get(ANY_URL, json={})
    hook.get_aoi("aoi-1")
    assert requests_mock.last_request.timeout == (10.0, 60.0)


def test_timeouts_come_from_the_connection(set_connection: Callable[..., None], requests_mock: Any) -> None:
    set_connection(extra={"timeout": [3, 45]})
    requests_mock.get(ANY_URL, json={})
    PixxelHook().get_aoi("aoi-1")
    assert requests_mock.last_request.timeout == (3.0, 45.0)


def test_auth_prefix_from_the_connection(set_connection: Callable[..., None], requests_mock: Any) -> None:
    set_connection(extra={"auth_prefix": "Bearer"})
    requests_mock.get(ANY_URL, json={})
    PixxelHook().get_aoi("aoi-1")
    assert requests_mock.last_request.headers["Authorization"] == f"Bearer {API_KEY}"


def test_plain_http_to_a_remote_host_is_refused(
    set_connection: Callable[..., None], requests_mock: Any
) -> None:
    set_connection(host="http://api.pixxel.space")
    with pytest.raises(PixxelConfigError, match="refusing to send the API key over plain http"):
        PixxelHook().get_aoi("aoi-1")
    assert requests_mock.call_count == 0


def test_plain_http_to_loopback_is_allowed(set_connection: Callable[..., None], requests_mock: Any) -> None:
    set_connection(host="http://127.0.0.1:8080")
    requests_mock.get("http://127.0.0.1:8080/v0/aoi/aoi-1", json={"id": "aoi-1"})
    assert PixxelHook().get_aoi("aoi-1") == {"id": "aoi-1"}


def test_missing_key_is_a_clear_config_error(set_connection: Callable[..., None], requests_mock: Any) -> None:
    set_connection(password=None)
    with pytest.raises(PixxelConfigError, match=r"has no API key.*password field"):
        PixxelHook().get_aoi("aoi-1")
    assert requests_mock.call_count == 0


def test_the_key_never_leaks(
    hook: PixxelHook,
    requests_mock: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    masked: list[Any] = []
    monkeypatch.setattr(pixxel_module, "mask_secret", masked.append)
    caplog.set_level(logging.DEBUG)
    requests_mock.get(f"{BASE_URL}/v0/aoi/aoi-1", [{"status_code": 503, "json": {}}, {"json": {}}])
    requests_mock.get(f"{BASE_URL}/v0/orders/o-1", status_code=403, json={"error": {"message": "denied"}})
    requests_mock.post(f"{BASE_URL}/v0/orders", exc=requests.exceptions.ReadTimeout)
    requests_mock.get(f"{BASE_URL}/v0/order-items/oi-1", exc=requests.exceptions.ConnectTimeout)

    hook.get_aoi("aoi-1")
    errors: list[Exception] = []
    for failing in (
        lambda: hook.get_order("o-1"),
        lambda: hook.create_order(order_items=[ORDER_ITEM]),
        lambda: hook.get_order_item("oi-1"),
    ):
        with pytest.raises(Exception) as raised:  # noqa: PT011 - each failure's text is checked below
            failing()
        errors.append(raised.value)

    # Airflow's task loggers may write through structlog rather than stdlib logging: check both.
    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert masked == [API_KEY]
    assert "retry 1 of 3" in logged  # the retry warnings were logged and captured
    assert "/v0/orders/o-1" in logged
    assert API_KEY not in logged
    for error in errors:
        assert API_KEY not in str(error)
        assert API_KEY not in repr(error)
    assert API_KEY not in repr(hook)
    assert API_KEY not in repr(hook.settings)


def test_store_secrets_are_masked_before_sending(
    hook: PixxelHook, requests_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    masked: list[Any] = []
    monkeypatch.setattr(pixxel_module, "mask_secret", masked.append)
    requests_mock.post(ANY_URL, json={"id": "store-1"})
    case = CASES_BY_NAME["create_store"]
    call(hook, case)
    assert set(case.kwargs["secrets"].values()) <= set(masked)


def test_the_connection_is_read_once(
    hook: PixxelHook, requests_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    original = PixxelHook.get_connection

    def counting_get_connection(conn_id: str) -> Any:
        lookups.append(conn_id)
        return original(conn_id)

    monkeypatch.setattr(PixxelHook, "get_connection", staticmethod(counting_get_connection))
    requests_mock.get(ANY_URL, json={})
    hook.get_aoi("a")
    hook.get_aoi("b")
    assert lookups == ["pixxel_default"]


def test_the_session_is_reused_and_closed(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.get(ANY_URL, json={})
    with hook:
        session = hook.get_conn()
        hook.get_aoi("a")
        assert hook.get_conn() is session
    assert hook._session is None


# -- test_connection ----------------------------------------------------------------------------------


def test_test_connection_succeeds_with_a_good_key(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.get(f"{BASE_URL}/ping", json="pong")
    requests_mock.get(f"{BASE_URL}/v0/projects", json={"count": 0, "projects": []})
    assert hook.test_connection() == (True, f"Connected to {BASE_URL}; the API key was accepted.")
    assert sent_query(requests_mock.last_request) == {"page_num": "1", "page_size": "1"}


@pytest.mark.parametrize("status", [401, 403])
def test_test_connection_reports_a_wrong_key(hook: PixxelHook, requests_mock: Any, status: int) -> None:
    requests_mock.get(f"{BASE_URL}/ping", json="pong")
    requests_mock.get(f"{BASE_URL}/v0/projects", status_code=status, json={"error": {"message": "bad key"}})
    ok, message = hook.test_connection()
    assert not ok
    assert f"reachable but refused the API key (HTTP {status})" in message
    assert API_KEY not in message


def test_test_connection_reports_an_unreachable_api(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.get(f"{BASE_URL}/ping", exc=new_connection_error())
    ok, message = hook.test_connection()
    assert not ok
    assert message.startswith(
        "Could not reach the Pixxel API: GET https://api.pixxel.space/ping: could not connect"
    )


def test_test_connection_reports_a_missing_key(set_connection: Callable[..., None]) -> None:
    set_connection(password=None)
    ok, message = PixxelHook().test_connection()
    assert not ok
    assert "has no API key" in message
