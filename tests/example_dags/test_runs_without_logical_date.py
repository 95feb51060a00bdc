"""Example DAGs in a run without a logical date, as a plain ``airflow dags trigger`` makes in Airflow 3.

Such a run has no ``ds``/``ts_nodash`` in its context; the examples fall back to the date of the run's
``run_after`` (pixxel_example_settings.RUN_DATE and run_date), so templated paths render and every file
lands in that day's partition.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.example_dags.dag_runner import run_dag
from tests.example_dags.outputs import assert_every_task_succeeded, load_example_dag, set_example_connections

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("file_name", "conf", "partition_files"),
    [
        ("pixxel_archive_purchase.py", {"max_items": 1, "max_cost": 900}, ["summary.json", "imagery"]),
        ("pixxel_workflow_job.py", {}, ["summary.json", "job", "tasks"]),
    ],
)
def test_a_run_without_a_logical_date_writes_under_its_run_date(
    sim: Any,
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file_name: str,
    conf: dict[str, Any],
    partition_files: list[str],
) -> None:
    set_example_connections(sim, monkeypatch)
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    dag = load_example_dag(file_name)

    dag_run = run_dag(dag, logical_date=None, run_conf={"output_dir": str(tmp_path), **conf})

    assert dag_run.logical_date is None
    assert_every_task_succeeded(dag_run)
    partition = tmp_path / dag.dag_id / dag_run.run_after.strftime("%Y-%m-%d")
    assert set(partition_files) <= {path.name for path in partition.iterdir()}
    assert json.loads((partition / "summary.json").read_text())
