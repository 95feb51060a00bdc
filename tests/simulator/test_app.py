"""The simulator application's own endpoint: per-request figures for load measurements."""

from __future__ import annotations

import time
from typing import Any

import httpx

from airflow_provider_pixxel.simulator.app import STATS_PATH


def test_request_stats_count_requests_and_connections_since_a_moment(pixxel_simulator: Any) -> None:
    base_url, headers = pixxel_simulator.base_url, {"Authorization": pixxel_simulator.api_key}
    httpx.get(f"{base_url}/ping")
    since = time.time()
    with httpx.Client(base_url=base_url, headers=headers) as client:  # one keep-alive connection
        client.get("/v0/aois")
        client.get("/v0/no-such-endpoint")
    httpx.get(f"{base_url}/ping")  # a connection of its own

    stats = httpx.get(f"{base_url}{STATS_PATH}", params={"since": since}).json()

    assert stats["count"] == 3
    assert stats["connections"] == 2
    assert [(method, path, status) for _, method, path, status, _ in stats["requests"]] == [
        ("GET", "/v0/aois", 200),
        ("GET", "/v0/no-such-endpoint", 404),
        ("GET", "/ping", 200),
    ]
    assert all(received >= since for received, *_ in stats["requests"])
    # The endpoint itself is never recorded, and without ``since`` every request is listed.
    assert httpx.get(f"{base_url}{STATS_PATH}").json()["count"] == 4
    assert not pixxel_simulator.state.requests(path=STATS_PATH)


def test_request_stats_refuse_a_since_that_is_not_a_moment(pixxel_simulator: Any) -> None:
    for since in ("yesterday", "-1", "nan"):
        answer = httpx.get(f"{pixxel_simulator.base_url}{STATS_PATH}", params={"since": since})
        assert answer.status_code == 400
        assert "since: a number of epoch seconds" in answer.text
