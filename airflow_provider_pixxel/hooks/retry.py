"""The one retry policy shared by the sync and the async hook.

What is retried:

* connection failures, timeouts and the statuses in :data:`RETRYABLE_STATUS_CODES`, for every request
  that is safe to repeat (GET, PUT, DELETE, and POSTs that only read, such as searches);
* for a request that *creates* something billable, only failures that prove the server did not act:
  a connection that never opened, or a 429 refusal. After a read timeout, a dropped connection or a
  5xx the outcome is unknown, and re-sending could buy the same thing twice, so it is not re-sent.

Waits grow exponentially with full jitter up to ``max_delay``; a ``Retry-After`` header (seconds or
HTTP-date) is honoured as a lower bound, up to ``max_retry_after``.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import tenacity

from airflow_provider_pixxel.exceptions import PixxelApiError, PixxelTransportError

RETRYABLE_STATUS_CODES = frozenset({429, 500, 502, 503, 504})

DEFAULT_MAX_RETRIES = 5


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, in delta-seconds or HTTP-date form.

    Returns None for a missing or unreadable header, and never a negative number.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    current = datetime.now(timezone.utc).timestamp() if now is None else now
    return max(0.0, moment.timestamp() - current)


def is_retryable(error: BaseException, *, creates: bool) -> bool:
    """Whether a failed attempt may be sent again.

    ``creates`` marks a request that is not idempotent: it is re-sent only when the server provably
    did not act on it.
    """
    if isinstance(error, PixxelTransportError):
        return not (creates and error.request_sent)
    if isinstance(error, PixxelApiError):
        if error.status not in RETRYABLE_STATUS_CODES:
            return False
        return not creates or error.status == 429
    return False


def outcome_unknown(error: BaseException) -> bool:
    """True when a create request failed in a way that may have left it done on the server."""
    if isinstance(error, PixxelTransportError):
        return error.request_sent
    if isinstance(error, PixxelApiError):
        return error.status >= 500
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. One instance per hook; the same rules for sync and async."""

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 600.0
    #: After a create request's answer is lost, how long to wait before each look for what it made
    #: (``hooks/reconcile.py``): a server may still be finishing the request when the client gives up.
    settle_delays: tuple[float, ...] = (0.0, 2.0, 5.0, 10.0)
    jitter: Callable[[float, float], float] = field(default=random.uniform, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if not self.settle_delays or any(delay < 0 for delay in self.settle_delays):
            raise ValueError(
                f"settle_delays must be one or more waits of 0 s or more, got {self.settle_delays!r}"
            )

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential wait before retry number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.initial_delay * (2 ** (attempt - 1)))
        return self.jitter(0.0, ceiling)

    def delay(self, attempt: int, error: BaseException | None) -> float:
        """The wait before retry ``attempt``: the backoff, or longer if the server asked for it."""
        wait = self.backoff(attempt)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, min(float(retry_after), self.max_retry_after))
        return wait

    def _tenacity_kwargs(self, creates: bool, log: Any | None) -> dict[str, Any]:
        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.delay(state.attempt_number, error)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if log is None or state.outcome is None:
                return
            log.warning(
                "Pixxel request failed (%s); retry %d of %d in %.1f s",
                state.outcome.exception(),
                state.attempt_number,
                self.max_retries,
                state.upcoming_sleep,
            )

        return {
            "retry": tenacity.retry_if_exception(lambda error: is_retryable(error, creates=creates)),
            "stop": tenacity.stop_after_attempt(self.max_retries + 1),
            "wait": wait,
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def retrying(
        self, *, creates: bool, log: Any | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> tenacity.Retrying:
        """A tenacity controller for one synchronous request."""
        return tenacity.Retrying(sleep=sleep, **self._tenacity_kwargs(creates, log))

    def async_retrying(
        self, *, creates: bool, log: Any | None = None, sleep: Callable[[float], Any] | None = None
    ) -> tenacity.AsyncRetrying:
        """A tenacity controller for one asynchronous request."""
        kwargs = self._tenacity_kwargs(creates, log)
        if sleep is not None:
            kwargs["sleep"] = sleep
        return tenacity.AsyncRetrying(**kwargs)
