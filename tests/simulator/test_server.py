"""Starting the simulator: console script, context manager, pytest fixtures, Airflow connection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
import requests
from airflow.models.connection import Connection

from airflow_provider_pixxel.hooks.transport import PixxelConnectionSettings
from airflow_provider_pixxel.simulator import SimulatorHandle, run_simulator


def test_context_manager_serves_then_stops() -> None:
    with run_simulator(api_key="ctx-key", seed=5) as sim:
        assert sim.api_key == "ctx-key"
        assert sim.state.seed == 5
        assert sim.faults is sim.state.faults
        assert requests.get(sim.url("/v0/bandsets"), headers=sim.headers(), timeout=10).status_code == 200
        base_url = sim.base_url
    assert "ctx-key" not in repr(sim)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base_url}/ping", timeout=2)
    assert not any(t.name == "pixxel-simulator" and t.is_alive() for t in threading.enumerate())


def test_connection_forms_point_the_hook_settings_at_the_simulator(pixxel_simulator: SimulatorHandle) -> None:
    for conn in (
        Connection.from_json(pixxel_simulator.airflow_connection_json(), conn_id="pixxel_default"),
        Connection(conn_id="pixxel_default", uri=pixxel_simulator.airflow_connection_uri()),
    ):
        settings = PixxelConnectionSettings.from_connection(conn)
        assert settings.base_url == pixxel_simulator.base_url
        assert settings.api_key == pixxel_simulator.api_key


def test_fixture_gives_a_fresh_instant_simulator(pixxel_simulator: SimulatorHandle) -> None:
    assert pixxel_simulator.state.speed == 0
    assert pixxel_simulator.state.requests() == []
    assert requests.get(pixxel_simulator.url("/v0/stores"), headers=pixxel_simulator.headers(), timeout=10).ok


def test_connection_fixture_sets_the_environment(
    pixxel_connection: str, pixxel_simulator: SimulatorHandle
) -> None:
    assert pixxel_connection == "pixxel_default"
    assert json.loads(os.environ["AIRFLOW_CONN_PIXXEL_DEFAULT"])["host"] == pixxel_simulator.base_url


def test_session_fixture_is_shared(pixxel_simulator_session: SimulatorHandle) -> None:
    assert requests.get(pixxel_simulator_session.url("/ping"), timeout=10).ok


def test_the_simulator_starts_without_loading_airflow() -> None:
    # Airflow logs to stdout as it starts; the simulator's first three stdout lines are the ones
    # scripts read (the CLI test above), and it serves tests and demos that need no Airflow at all.
    probe = (
        "import sys\n"
        "import airflow_provider_pixxel.simulator.app, airflow_provider_pixxel.simulator.cli\n"
        "from airflow_provider_pixxel.simulator.routing import check_visualization_date, parse_instant\n"
        "check_visualization_date('2024_05_06', 'date')\n"
        "parse_instant('2024-05-06T00:00:00Z', 'datetime')\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert completed.stdout.strip().splitlines()[-1] == "[]"
