"""pytest fixtures that serve the Pixxel API simulator on loopback.

Enable in a ``conftest.py``::

    pytest_plugins = ["airflow_provider_pixxel.simulator.pytest_plugin"]

* ``pixxel_simulator`` - a fresh simulator per test, instant pace (every resource is finished on the
  first read after it was created), a :class:`~.state.ManualClock` as its clock;
* ``pixxel_simulator_session`` - one simulator shared by the whole session (faster; state carries
  over between tests, so assert on what your test created);
* ``pixxel_connection`` - points ``AIRFLOW_CONN_PIXXEL_DEFAULT`` at ``pixxel_simulator`` for the test
  and returns the connection id.

Options of :func:`~.server.run_simulator` for one test's ``pixxel_simulator`` go in a marker, e.g. to
accept ``Authorization: Bearer <key>`` as well as the exact key (refused by default, as by the API)::

    @pytest.mark.pixxel_simulator(accept_auth_prefix="Bearer")
    def test_bearer_deployment(pixxel_simulator): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_pixxel.simulator.server import SimulatorHandle, run_simulator
from airflow_provider_pixxel.simulator.state import ManualClock

TEST_API_KEY = "pixxel-test-key"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pixxel_simulator(**options): run_simulator options for the test's pixxel_simulator "
        "(e.g. accept_auth_prefix='Bearer')",
    )


@pytest.fixture
def pixxel_simulator(request: pytest.FixtureRequest) -> Iterator[SimulatorHandle]:
    """A simulator of its own for one test, at instant pace (options from a ``pixxel_simulator`` marker)."""
    marker = request.node.get_closest_marker("pixxel_simulator")
    options: dict[str, Any] = {"api_key": TEST_API_KEY, "speed": 0.0, "clock": ManualClock()}
    options.update(marker.kwargs if marker else {})
    with run_simulator(**options) as handle:
        yield handle


@pytest.fixture(scope="session")
def pixxel_simulator_session() -> Iterator[SimulatorHandle]:
    """One simulator for the whole test session, at instant pace."""
    with run_simulator(api_key=TEST_API_KEY, speed=0.0) as handle:
        yield handle


@pytest.fixture
def pixxel_connection(pixxel_simulator: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> str:
    """``AIRFLOW_CONN_PIXXEL_DEFAULT`` set to the test's simulator; returns ``"pixxel_default"``."""
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", pixxel_simulator.airflow_connection_json())
    return "pixxel_default"
