"""Connections and hooks for the hook tests: an env-var connection, no DB, no real sleeping."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.hooks.retry import RetryPolicy

API_KEY = "pxl-live-4b1d9e7c2a6f8e3d"
BASE_URL = "https://api.pixxel.space"
MAX_RETRIES = 3


def upper_bound_jitter(low: float, high: float) -> float:
    """Deterministic jitter: always the longest wait full jitter could pick."""
    return high


def connection_json(**fields: Any) -> str:
    conn: dict[str, Any] = {"conn_type": "pixxel", "host": BASE_URL, "password": API_KEY}
    conn.update(fields)
    return json.dumps({k: v for k, v in conn.items() if v is not None})


@pytest.fixture
def set_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set ``pixxel_default`` from keyword fields (``extra`` as a dict); None removes a field."""

    def set_fields(**fields: Any) -> None:
        if isinstance(fields.get("extra"), dict):
            fields["extra"] = json.dumps(fields["extra"])
        monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", connection_json(**fields))

    set_fields()
    return set_fields


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def retry_policy() -> RetryPolicy:
    return RetryPolicy(max_retries=MAX_RETRIES, initial_delay=1.0, max_delay=60.0, jitter=upper_bound_jitter)


@pytest.fixture
def hook(set_connection: Callable[..., None], retry_policy: RetryPolicy, sleeps: list[float]) -> PixxelHook:
    return PixxelHook(retry_policy=retry_policy, sleep=sleeps.append)
