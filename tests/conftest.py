"""Test-wide set-up: a throwaway AIRFLOW_HOME (never the user's own).

The API spec ships in the package: its one path is ``airflow_provider_pixxel.spec.SPEC_PATH``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

# Airflow reads these at import time, so they are set before any test module imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="pixxel-tests-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
# dag.test() syncs DAGs from the dags folder: the example DAGs are that folder.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent.parent / "example_dags")

# The simulator's fixtures (pixxel_simulator, pixxel_simulator_session, pixxel_connection) for every test.
pytest_plugins = ["airflow_provider_pixxel.simulator.pytest_plugin"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sim(pixxel_simulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh simulator (instant pace) with ``pixxel_default`` pointing at it.

    The connection has a default project and no hook-level retries, so one poll is one request.
    """
    connection = {
        "conn_type": "pixxel",
        "host": pixxel_simulator.base_url,
        "password": pixxel_simulator.api_key,
        "extra": {"project_id": next(iter(pixxel_simulator.state.projects)), "max_retries": 0},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))
    return pixxel_simulator
