"""Fixtures of the trigger tests."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.reliability.loopback import Loopback, loopback


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loopback]:
    with loopback("127.0.0.1") as server:
        connection = {
            "conn_type": "pixxel",
            "host": server.base_url,
            "password": "poller-test-key",
            "extra": {"project_id": "p1", "max_retries": 0},
        }
        monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))
        yield server
