"""The simulator is as strict as the service: null bodies, 405 answers and the form of the API key.

Each of these once let a client bug pass against the simulator that the real API would refuse (or
answered it with a 500 the service never gives), so every test here runs over loopback HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from airflow_provider_pixxel.simulator import SimulatorHandle, run_simulator
from airflow_provider_pixxel.simulator.cli import build_parser, state_from_args
from airflow_provider_pixxel.spec import official_spec

BODY_OPERATIONS = sorted(
    (method.upper(), route)
    for route, item in official_spec()["paths"].items()
    for method, operation in item.items()
    if isinstance(operation, dict) and "requestBody" in operation
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_simulator(speed=0) as handle:
        yield handle


def test_the_spec_has_17_operations_with_a_body() -> None:
    assert len(BODY_OPERATIONS) == 17


@pytest.mark.parametrize(("method", "route"), BODY_OPERATIONS, ids=lambda value: str(value))
def test_a_null_body_is_a_400_envelope(sim: SimulatorHandle, method: str, route: str) -> None:
    path = re.sub(r"\{[^}]+\}", "some-id", route)
    answer = requests.request(
        method,
        sim.url(path),
        data="null",
        headers={**sim.headers(), "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "bad_request"
    assert "null" in error["message"]


def test_a_405_lists_every_method_of_the_path(sim: SimulatorHandle) -> None:
    # /v0/aois has GET (list) and POST (create); Starlette alone would name only the first route's.
    answer = requests.delete(sim.url("/v0/aois"), headers=sim.headers(), timeout=10)
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["Allow"].split(",")} == {"GET", "POST"}
    assert answer.json()["error"]["code"] == "method_not_allowed"
    assert "GET, POST" in answer.json()["error"]["message"]

    metadata = "/v0/aois/a/visualizations/v/metadata"  # PUT (update) and PATCH (rollback)
    answer = requests.post(sim.url(metadata), headers=sim.headers(), json={}, timeout=10)
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["Allow"].split(",")} == {"PATCH", "PUT"}


@pytest.mark.parametrize("prefix", ["Bearer", "bearer", "Token"])
def test_a_prefixed_key_is_refused_by_default(sim: SimulatorHandle, prefix: str) -> None:
    answer = requests.get(
        sim.url("/v0/projects"), headers={"Authorization": f"{prefix} {sim.api_key}"}, timeout=10
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert requests.get(sim.url("/v0/projects"), headers=sim.headers(), timeout=10).status_code == 200


def test_a_prefix_is_accepted_when_opted_in() -> None:
    with run_simulator(speed=0, accept_auth_prefix="Bearer") as sim:
        url = sim.url("/v0/projects")
        assert requests.get(url, headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=10).ok
        assert requests.get(url, headers={"Authorization": sim.api_key}, timeout=10).ok
        refused = requests.get(url, headers={"Authorization": f"Token {sim.api_key}"}, timeout=10)
        assert refused.status_code == 403


@pytest.mark.pixxel_simulator(accept_auth_prefix="Bearer")
def test_the_pytest_fixture_takes_the_option_from_a_marker(pixxel_simulator: SimulatorHandle) -> None:
    answer = requests.get(
        pixxel_simulator.url("/v0/projects"),
        headers={"Authorization": f"Bearer {pixxel_simulator.api_key}"},
        timeout=10,
    )
    assert answer.status_code == 200


def test_the_cli_flag_opts_in() -> None:
    assert state_from_args(build_parser().parse_args([])).accept_auth_prefix is None
    state = state_from_args(build_parser().parse_args(["--accept-auth-prefix", "Bearer"]))
    assert state.accept_auth_prefix == "Bearer"
