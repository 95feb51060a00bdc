"""The workflow job example DAG end to end against the simulator, with inline and deferred waits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.example_dags.dag_runner import run_dag, task_states
from tests.example_dags.outputs import (
    assert_every_task_succeeded,
    deferrals,
    load_example_dag,
    set_example_connections,
    sha256_of,
)

pytestmark = pytest.mark.e2e


def test_workflow_is_priced_run_once_and_its_job_and_task_outputs_downloaded(
    sim: Any, airflow_db: None, deferrable_mode: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_example_connections(sim, monkeypatch)
    dag = load_example_dag("pixxel_workflow_job.py")

    dag_run = run_dag(dag, run_conf={"output_dir": str(tmp_path), "workflow": "ndvi-timeseries"})

    assert_every_task_succeeded(dag_run)
    assert (deferrals(sim, dag_run) > 0) is deferrable_mode, task_states(dag_run)
    (workflow,) = [w for w in sim.state.workflows.values() if w["name"] == "ndvi-timeseries"]
    # The estimate was read before the one and only job was created.
    requests = [(r.method, r.path) for r in sim.state.requests()]
    estimate = ("GET", f"/v0/workflows/{workflow['id']}/estimate")
    create = ("POST", f"/v0/workflows/{workflow['id']}/jobs")
    assert requests.count(create) == 1, requests
    assert estimate in requests[: requests.index(create)]
    assert len(sim.state.created("job")) == 1
    (job,) = sim.state.jobs.values()
    day_dir = tmp_path / "pixxel_workflow_job" / dag_run.logical_date.strftime("%Y-%m-%d")
    summary = json.loads((day_dir / "summary.json").read_text())
    assert (summary["workflow_id"], summary["job_id"]) == (workflow["id"], job["id"])
    # One package for the job and one per job task, each byte for byte what the simulator serves.
    job_task_ids = [str(t["id"]) for t in job["tasks"]]
    assert len(job_task_ids) == len(workflow["spec"]) == 2
    assert sorted(p["task_id"] for p in summary["task_packages"]) == sorted(job_task_ids)
    assert Path(summary["job_package"]["path"]).parent == day_dir / "job"
    files = [summary["job_package"], *summary["task_packages"]]
    assert all(Path(f["path"]).parent == day_dir / "tasks" for f in summary["task_packages"])
    served = {sim.state.files.get(package_id).sha256() for package_id in sim.state.packages}
    assert len(sim.state.packages) == 3
    assert {f["sha256"] for f in files} == served
    for entry in files:
        path = Path(entry["path"])
        assert sha256_of(path) == entry["sha256"]
        assert path.stat().st_size == entry["size"]
    assert not list(day_dir.rglob("*.part"))


def test_a_workflow_estimated_above_max_cost_creates_no_job(
    sim: Any, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_example_connections(sim, monkeypatch)
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    dag = load_example_dag("pixxel_workflow_job.py")

    dag_run = run_dag(dag, run_conf={"output_dir": str(tmp_path), "max_cost": 10})

    states = task_states(dag_run)
    assert states["run_job"] == "failed", states
    assert sim.state.requests("GET", "/v0/workflows/*/estimate")
    assert sim.state.requests("POST", "/v0/workflows/*/jobs") == []
    assert sim.state.created("job") == []
    assert not list(tmp_path.rglob("*.zip"))
