"""The insights example DAG end to end against the simulator, with inline and with deferred waits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.example_dags.dag_runner import load_dag, run_dag, task_states
from tests.example_dags.example_runs import no_retries, xcom
from tests.example_dags.outputs import (
    assert_every_task_succeeded,
    deferrals,
    set_example_connections,
    sha256_of,
)

pytestmark = pytest.mark.e2e


def test_block_is_chosen_priced_run_and_its_outputs_downloaded(
    sim: Any, airflow_db: None, deferrable_mode: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_example_connections(sim, monkeypatch)
    dag = load_dag("pixxel_insights.py")
    no_retries(dag)

    dag_run = run_dag(dag, run_conf={"output_dir": str(tmp_path)})

    assert_every_task_succeeded(dag_run)
    assert (deferrals(sim, dag_run) > 0) is deferrable_mode, task_states(dag_run)
    # The newest version of the block, priced first, run once on the AOI the DAG created.
    (aoi,) = [a for a in sim.state.aois.values() if not a.get("seeded")]
    (insight,) = sim.state.insights.values()
    assert insight["aoi_id"] == aoi["aoi_id"]
    assert insight["block"] == {"name": "waterbodydetection", "version": "2.0.1"}
    posts = sim.state.requests("POST", "/v0/aoi/*/insights")
    assert [bool(r.body.get("estimate")) for r in posts] == [True, False]
    inputs = {i["name"]: i for i in posts[-1].body["input"]}
    assert inputs["threshold"]["value"] == "0.3"
    assert inputs["input_image"]["stac_url"].startswith("https://stac.pixxel.space/collections/pixxel-td2/")
    # Only the block's outputs were asked for, and the extracted files are those the package holds.
    (download,) = sim.state.requests("PUT", "/v0/aoi/*/insights/*/download")[:1]
    assert download.body == {"outputs": ["water_mask"]}
    folder = tmp_path / "pixxel_insights" / dag_run.logical_date.strftime("%Y-%m-%d") / "insight"
    # The downloader's own manifest (what it verified) sits beside the package's files.
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".pixxel-"))
    assert files
    assert any(p.suffix == ".tif" for p in files)
    recorded = xcom(dag_run, "download_outputs")
    assert Path(recorded["path"]) == folder
    assert {f["path"]: f["sha256"] for f in recorded["files"]} == {
        str(p.relative_to(folder)): sha256_of(p) for p in files
    }
