"""The shared retry policy: what is retried, how long it waits, and ``Retry-After`` parsing."""

from __future__ import annotations

import asyncio
import email.utils
from typing import Any

import pytest

from airflow_provider_pixxel.exceptions import PixxelApiError, PixxelConfigError, PixxelTransportError
from airflow_provider_pixxel.hooks.retry import (
    RETRYABLE_STATUS_CODES,
    RetryPolicy,
    is_retryable,
    outcome_unknown,
    parse_retry_after,
)

NOW = 1_700_000_000.0


def api_error(status: int, retry_after: float | None = None) -> PixxelApiError:
    return PixxelApiError(status=status, method="GET", url="https://x/v0", retry_after=retry_after)


def transport_error(*, sent: bool) -> PixxelTransportError:
    return PixxelTransportError("failed", method="POST", url="https://x/v0", request_sent=sent)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW - 90, usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00", max(0.0, 1445412480.0 - NOW)),
        (None, None),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_parse_retry_after_uses_the_clock_by_default() -> None:
    import time

    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    parsed = parse_retry_after(later)
    assert parsed is not None
    assert 55 <= parsed <= 60


@pytest.mark.parametrize("status", sorted(RETRYABLE_STATUS_CODES))
def test_retryable_statuses_for_safe_requests(status: int) -> None:
    assert is_retryable(api_error(status), creates=False)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308, 400, 401, 403, 404, 409, 422, 501])
def test_other_statuses_are_never_retried(status: int) -> None:
    assert not is_retryable(api_error(status), creates=False)
    assert not is_retryable(api_error(status), creates=True)


@pytest.mark.parametrize(
    ("status", "retried"), [(429, True), (500, False), (502, False), (503, False), (504, False)]
)
def test_creates_are_retried_only_on_429(status: int, retried: bool) -> None:
    assert is_retryable(api_error(status), creates=True) is retried


def test_transport_errors() -> None:
    assert is_retryable(transport_error(sent=True), creates=False)
    assert is_retryable(transport_error(sent=False), creates=False)
    assert is_retryable(transport_error(sent=False), creates=True)
    assert not is_retryable(transport_error(sent=True), creates=True)


def test_unrelated_errors_are_not_retried() -> None:
    assert not is_retryable(ValueError("bug"), creates=False)
    assert not is_retryable(PixxelConfigError("bad argument"), creates=False)


def test_outcome_unknown() -> None:
    assert outcome_unknown(transport_error(sent=True))
    assert not outcome_unknown(transport_error(sent=False))
    assert outcome_unknown(api_error(500))
    assert outcome_unknown(api_error(503))
    assert not outcome_unknown(api_error(429))
    assert not outcome_unknown(api_error(400))
    assert not outcome_unknown(ValueError())


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=10.0, jitter=lambda low, high: high)
    assert [policy.backoff(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_is_full_jitter() -> None:
    seen: list[tuple[float, float]] = []
    policy = RetryPolicy(initial_delay=2.0, jitter=lambda low, high: seen.append((low, high)) or 0.25)
    assert policy.backoff(3) == 0.25
    assert seen == [(0.0, 8.0)]


def test_retry_after_is_a_lower_bound_capped_by_max_retry_after() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_retry_after=100.0, jitter=lambda low, high: high)
    assert policy.delay(1, api_error(429, retry_after=30.0)) == 30.0
    assert policy.delay(3, api_error(429, retry_after=0.5)) == 4.0
    assert policy.delay(1, api_error(503, retry_after=3600.0)) == 100.0
    assert policy.delay(2, None) == 2.0


def test_negative_max_retries_is_refused() -> None:
    with pytest.raises(ValueError, match="max_retries must be 0 or more"):
        RetryPolicy(max_retries=-1)


def failing_then(results: list[Any]) -> Any:
    calls: list[int] = []

    def attempt() -> Any:
        calls.append(1)
        result = results[len(calls) - 1]
        if isinstance(result, BaseException):
            raise result
        return result

    attempt.calls = calls  # type: ignore[attr-defined]
    return attempt


def test_sync_controller_retries_then_succeeds() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_retries=3, jitter=lambda low, high: high)
    attempt = failing_then([api_error(503), transport_error(sent=True), "done"])
    assert policy.retrying(creates=False, sleep=sleeps.append)(attempt) == "done"
    assert sleeps == [1.0, 2.0]


def test_sync_controller_reraises_the_last_error() -> None:
    policy = RetryPolicy(max_retries=2, jitter=lambda low, high: 0.0)
    attempt = failing_then([api_error(503)] * 3)
    with pytest.raises(PixxelApiError):
        policy.retrying(creates=False, sleep=lambda s: None)(attempt)
    assert len(attempt.calls) == 3


def test_zero_retries_means_one_attempt() -> None:
    policy = RetryPolicy(max_retries=0)
    attempt = failing_then([api_error(503), "never"])
    with pytest.raises(PixxelApiError):
        policy.retrying(creates=False, sleep=lambda s: None)(attempt)
    assert len(attempt.calls) == 1


def test_controller_never_resends_a_create_after_a_5xx() -> None:
    policy = RetryPolicy(max_retries=5)
    attempt = failing_then([api_error(502), "never"])
    with pytest.raises(PixxelApiError):
        policy.retrying(creates=True, sleep=lambda s: None)(attempt)
    assert len(attempt.calls) == 1


def test_controller_logs_each_retry() -> None:
    messages: list[str] = []

    class Log:
        def warning(self, template: str, *args: Any) -> None:
            messages.append(template % args)

    policy = RetryPolicy(max_retries=1, jitter=lambda low, high: high)
    policy.retrying(creates=False, log=Log(), sleep=lambda s: None)(failing_then([api_error(503), "ok"]))
    assert messages == [
        "Pixxel request failed (Pixxel API GET https://x/v0 failed with HTTP 503); retry 1 of 1 in 1.0 s"
    ]


def test_async_controller_uses_the_same_rules() -> None:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    results = [api_error(429, retry_after=7.0), api_error(500), "done"]
    calls: list[int] = []

    async def attempt() -> Any:
        calls.append(1)
        result = results[len(calls) - 1]
        if isinstance(result, BaseException):
            raise result
        return result

    policy = RetryPolicy(max_retries=3, jitter=lambda low, high: high)
    assert asyncio.run(policy.async_retrying(creates=False, sleep=fake_sleep)(attempt)) == "done"
    assert sleeps == [7.0, 2.0]

    calls.clear()
    results[:] = [api_error(500), "never"]
    with pytest.raises(PixxelApiError):
        asyncio.run(policy.async_retrying(creates=True, sleep=fake_sleep)(attempt))
    assert len(calls) == 1
