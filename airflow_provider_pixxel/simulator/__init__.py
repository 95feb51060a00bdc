"""A local simulator of the Pixxel Aurora API, for demos, example DAGs and tests (like moto for AWS).

Three ways to start it:

* ``pixxel-simulator --port 0`` (console script) prints its URL and API key, then serves until
  interrupted;
* ``with run_simulator(speed=0) as sim: ...`` serves in a background thread;
* the ``pixxel_simulator`` pytest fixture, after
  ``pytest_plugins = ["airflow_provider_pixxel.simulator.pytest_plugin"]``.
"""

from airflow_provider_pixxel.simulator.app import create_app
from airflow_provider_pixxel.simulator.faults import FaultInjector, FaultRule
from airflow_provider_pixxel.simulator.server import SimulatorHandle, run_simulator
from airflow_provider_pixxel.simulator.state import (
    CreatedResource,
    ManualClock,
    Outcome,
    RecordedRequest,
    ScenarioRule,
    Scenarios,
    SimulatorState,
)

__all__ = [
    "CreatedResource",
    "FaultInjector",
    "FaultRule",
    "ManualClock",
    "Outcome",
    "RecordedRequest",
    "ScenarioRule",
    "Scenarios",
    "SimulatorHandle",
    "SimulatorState",
    "create_app",
    "run_simulator",
]
