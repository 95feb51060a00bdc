"""Fixtures shared by the reliability suite."""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any

import pytest

from airflow_provider_pixxel.hooks import pixxel as pixxel_hook_module
from airflow_provider_pixxel.hooks import pixxel_async as pixxel_async_hook_module
from airflow_provider_pixxel.hooks.retry import RetryPolicy
from tests.example_dags.dag_runner import airflow_db

__all__ = ["airflow_db", "enable_hook_retries", "fast_backoff"]

#: Backoff for tests: the same policy (retry counts, what is retried, Retry-After honoured), with
#: millisecond waits (and looks for what a lost create made) instead of seconds, so hundreds of
#: injected faults stay fast.
FAST_BACKOFF: dict[str, Any] = {"initial_delay": 0.005, "max_delay": 0.05, "settle_delays": (0.0, 0.01, 0.02)}


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hooks built from a connection get the real retry policy with short exponential waits."""
    fast_policy = functools.partial(RetryPolicy, **FAST_BACKOFF)
    monkeypatch.setattr(pixxel_hook_module, "RetryPolicy", fast_policy)
    monkeypatch.setattr(pixxel_async_hook_module, "RetryPolicy", fast_policy)


def enable_hook_retries(monkeypatch: pytest.MonkeyPatch, max_retries: int = 5) -> None:
    """``pixxel_default`` (as set by the ``sim`` fixture) with hook retries on."""
    connection = json.loads(os.environ["AIRFLOW_CONN_PIXXEL_DEFAULT"])
    connection.setdefault("extra", {})["max_retries"] = max_retries
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per chaos run and the totals (what RELIABILITY.md quotes)."""
    test_chaos = sys.modules.get("tests.reliability.test_chaos")
    if test_chaos is None or not test_chaos.RUN_REPORTS:
        return
    terminalreporter.section("chaos runs")
    for line in test_chaos.RUN_REPORTS:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"totals: {dict(sorted(test_chaos.TOTALS.items()))}")
