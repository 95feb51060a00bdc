"""Run the example DAGs end to end with ``dag.test()`` against the simulator.

``airflow_db`` creates the metadata DB once per session in the tests' throwaway AIRFLOW_HOME (see
tests/conftest.py, which also makes ``example_dags/`` the dags folder ``dag.test()`` syncs from).
``load_dag`` imports a DAG file afresh, so settings read while a DAG is built (such as
``[operators] default_deferrable``) apply to that load.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
_load_counter = itertools.count()


@pytest.fixture(scope="session")
def airflow_db() -> None:
    airflow_cli = Path(sys.executable).with_name("airflow")
    subprocess.run(
        [str(airflow_cli), "db", "migrate"], env=os.environ.copy(), check=True, capture_output=True
    )


def load_dag(file_name: str, dag_id: str | None = None) -> Any:
    """Import ``example_dags/<file_name>`` afresh and return its DAG (the only one, or ``dag_id``)."""
    from airflow.sdk import DAG

    # Airflow puts the dags folder on sys.path, so DAG files may import their shared settings module.
    if str(EXAMPLE_DAGS) not in sys.path:
        sys.path.insert(0, str(EXAMPLE_DAGS))
    path = EXAMPLE_DAGS / file_name
    spec = importlib.util.spec_from_file_location(f"example_dag_{path.stem}_{next(_load_counter)}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [value for value in vars(module).values() if isinstance(value, DAG)]
    if dag_id is not None:
        dags = [d for d in dags if d.dag_id == dag_id]
    assert len(dags) == 1, f"expected one DAG in {file_name}, found {[d.dag_id for d in dags]}"
    return dags[0]


def load_dag_in_own_bundle(source: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A DAG written by a test (``source``) in a DAG bundle of its own, the only one ``dag.test()`` sees.

    ``dag.test()`` runs a DAG only once it has found it in a configured bundle, so a test's own DAG
    cannot just be defined in the test: it is written to ``folder/dag.py`` and the bundle points there.
    """
    from airflow.sdk import DAG

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "dag.py"
    path.write_text(source)
    bundle = {
        "name": f"pixxel-test-{folder.name}",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(folder), "refresh_interval": 0},
    }
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
    dags = [value for value in runpy.run_path(str(path)).values() if isinstance(value, DAG)]
    assert len(dags) == 1, f"expected one DAG in the test's source, found {len(dags)}"
    return dags[0]


def run_dag(dag: Any, **kwargs: Any) -> Any:
    """``dag.test(**kwargs)``; returns the DagRun."""
    return dag.test(**kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    return {
        ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state)
        for ti in dag_run.get_task_instances()
    }


@pytest.fixture(params=[False, True], ids=["inline-waits", "deferrable-waits"])
def deferrable_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run a test once with every wait inline and once with every wait deferred to a trigger."""
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", str(request.param))
    return bool(request.param)
