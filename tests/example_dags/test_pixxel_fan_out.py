"""Fan-out example DAG: one AOI and one download per field, every API task in the pixxel_api pool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.example_dags.dag_runner import EXAMPLE_DAGS, load_dag, run_dag, task_states
from tests.example_dags.example_runs import no_retries, xcom
from tests.example_dags.outputs import (
    assert_every_task_succeeded,
    deferrals,
    set_example_connections,
    sha256_of,
)

pytestmark = pytest.mark.e2e

API_TASKS = {"resolve_workspace", "search_images", "create_aoi", "choose_assets", "download_assets"}


@pytest.fixture
def pixxel_api_pool(airflow_db: None) -> str:
    from airflow.models.pool import Pool

    Pool.create_or_update_pool("pixxel_api", slots=4, description="Pixxel API calls", include_deferred=False)
    return "pixxel_api"


def test_every_field_gets_an_aoi_and_a_verified_download(
    sim: Any, pixxel_api_pool: str, deferrable_mode: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_example_connections(sim, monkeypatch)
    dag = load_dag("pixxel_fan_out.py")
    no_retries(dag)
    fields = json.loads((EXAMPLE_DAGS / "data" / "fields.geojson").read_text())["features"]
    names = [f["properties"]["name"] for f in fields]

    dag_run = run_dag(dag, run_conf={"output_dir": str(tmp_path)})

    assert_every_task_succeeded(dag_run)
    states = task_states(dag_run)
    assert {key for key in states if key.startswith("download_assets[")} == {
        f"download_assets[{n}]" for n in range(len(names))
    }
    # The waits are deferrable in this DAG whatever the default is.
    assert deferrals(sim, dag_run) >= len(names), states
    assert {ti.pool for ti in dag_run.get_task_instances() if ti.task_id in API_TASKS} == {pixxel_api_pool}
    created = [a for a in sim.state.aois.values() if not a.get("seeded")]
    assert sorted(a["name"].rsplit("-", 1)[0] for a in created) == sorted(names)
    day_dir = tmp_path / "pixxel_fan_out" / dag_run.logical_date.strftime("%Y-%m-%d")
    for index, name in enumerate(names):
        download = xcom(dag_run, "download_assets", index)
        folder = Path(download["path"])
        assert folder == day_dir / name
        assert download["files"]
        for entry in download["files"]:
            assert sha256_of(folder / entry["path"]) == entry["sha256"]
