"""Property tests of the retry-delay computation (``hooks/retry.py``).

Geometry and date handling have their own property tests in ``tests/utils/test_geometry.py`` and
``tests/utils/test_dates.py``.
"""

from __future__ import annotations

import email.utils
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_pixxel.exceptions import PixxelApiError, PixxelTransportError
from airflow_provider_pixxel.hooks.retry import (
    RETRYABLE_STATUS_CODES,
    RetryPolicy,
    is_retryable,
    parse_retry_after,
)

attempts = st.integers(min_value=1, max_value=200)
delays = st.floats(min_value=0.0, max_value=3600.0, allow_nan=False, allow_infinity=False)
positive_delays = st.floats(min_value=0.001, max_value=3600.0, allow_nan=False, allow_infinity=False)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def policy(initial: float, cap: float, max_retry_after: float, seed: int) -> RetryPolicy:
    return RetryPolicy(
        initial_delay=initial,
        max_delay=cap,
        max_retry_after=max_retry_after,
        jitter=random.Random(seed).uniform,
    )


def api_error(status: int, retry_after: float | None = None) -> PixxelApiError:
    return PixxelApiError(
        status=status, method="GET", url="https://api.example/v0/x", retry_after=retry_after
    )


@given(attempt=attempts, initial=positive_delays, cap=positive_delays, seed=seeds)
def test_backoff_stays_between_zero_and_the_exponential_ceiling(
    attempt: int, initial: float, cap: float, seed: int
) -> None:
    wait = policy(initial, cap, 600.0, seed).backoff(attempt)

    assert 0.0 <= wait <= min(cap, initial * 2 ** (attempt - 1)) + 1e-9


@given(attempt=st.integers(min_value=1, max_value=30), initial=positive_delays, cap=positive_delays)
def test_backoff_ceiling_never_shrinks_with_more_attempts(attempt: int, initial: float, cap: float) -> None:
    top = RetryPolicy(initial_delay=initial, max_delay=cap, jitter=lambda low, high: high)

    assert top.backoff(attempt) <= top.backoff(attempt + 1)
    assert top.backoff(attempt + 1) <= cap


@given(
    attempt=attempts,
    initial=positive_delays,
    cap=positive_delays,
    max_retry_after=positive_delays,
    retry_after=delays,
    seed=seeds,
)
def test_retry_after_is_a_lower_bound_up_to_its_cap(
    attempt: int, initial: float, cap: float, max_retry_after: float, retry_after: float, seed: int
) -> None:
    retry = policy(initial, cap, max_retry_after, seed)
    backoff_ceiling = min(cap, initial * 2 ** (attempt - 1))

    wait = retry.delay(attempt, api_error(429, retry_after))

    honoured = min(retry_after, max_retry_after)
    assert wait >= honoured
    assert wait <= max(backoff_ceiling, honoured) + 1e-9


@given(attempt=attempts, initial=positive_delays, cap=positive_delays, seed=seeds)
def test_without_retry_after_the_delay_is_the_backoff(
    attempt: int, initial: float, cap: float, seed: int
) -> None:
    with_error = policy(initial, cap, 600.0, seed).delay(attempt, api_error(503))
    backoff_only = policy(initial, cap, 600.0, seed).backoff(attempt)

    assert with_error == backoff_only


@given(seconds=st.integers(min_value=0, max_value=10**7))
def test_retry_after_in_seconds_is_read_exactly(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == float(seconds)
    assert parse_retry_after(f"  {seconds} ") == float(seconds)


@given(
    now=st.integers(min_value=0, max_value=4_000_000_000),
    ahead=st.integers(min_value=-(10**6), max_value=10**6),
)
def test_retry_after_as_http_date_is_the_time_left_and_never_negative(now: int, ahead: int) -> None:
    header = email.utils.formatdate(now + ahead, usegmt=True)

    wait = parse_retry_after(header, now=float(now))

    assert wait == max(0.0, float(ahead))


@given(text=st.text(max_size=40))
def test_unreadable_retry_after_is_ignored_or_a_non_negative_number(text: str) -> None:
    wait = parse_retry_after(text, now=1_700_000_000.0)

    assert wait is None or wait >= 0.0


@given(status=st.integers(min_value=400, max_value=599), creates=st.booleans())
def test_creates_are_retried_only_when_the_server_provably_did_not_act(status: int, creates: bool) -> None:
    retryable = is_retryable(api_error(status), creates=creates)

    if status not in RETRYABLE_STATUS_CODES:
        assert not retryable
    elif creates:
        assert retryable == (status == 429)
    else:
        assert retryable


@given(request_sent=st.booleans(), creates=st.booleans())
def test_transport_failures_are_retried_unless_a_create_may_have_arrived(
    request_sent: bool, creates: bool
) -> None:
    error = PixxelTransportError(
        "boom", method="POST", url="https://api.example/v0/orders", request_sent=request_sent
    )

    assert is_retryable(error, creates=creates) == (not (creates and request_sent))


@given(max_retries=st.integers(min_value=0, max_value=10), seed=seeds)
def test_the_number_of_attempts_is_bounded_by_max_retries(max_retries: int, seed: int) -> None:
    calls: list[int] = []
    retry = RetryPolicy(
        max_retries=max_retries, initial_delay=0.0, max_delay=0.0, jitter=random.Random(seed).uniform
    )

    def always_unavailable() -> None:
        calls.append(1)
        raise api_error(503)

    with pytest.raises(PixxelApiError):
        retry.retrying(creates=False, sleep=lambda seconds: None)(always_unavailable)

    assert len(calls) == max_retries + 1
