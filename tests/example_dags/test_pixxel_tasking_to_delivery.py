"""The flagship example DAG end to end against the simulator, with inline and with deferred waits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.example_dags.dag_runner import run_dag, task_states
from tests.example_dags.outputs import (
    assert_every_task_succeeded,
    assert_png,
    deferrals,
    load_example_dag,
    set_example_connections,
    sha256_of,
)

pytestmark = pytest.mark.e2e


def test_tasking_order_is_priced_placed_downloaded_delivered_and_previewed(
    sim: Any, airflow_db: None, deferrable_mode: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_example_connections(sim, monkeypatch)
    dag = load_example_dag("pixxel_tasking_to_delivery.py")

    dag_run = run_dag(dag, run_conf={"output_dir": str(tmp_path), "max_cost": 800})

    assert_every_task_succeeded(dag_run)
    assert (deferrals(sim, dag_run) > 0) is deferrable_mode, task_states(dag_run)
    # One order placed, priced first by a dry run that bought nothing.
    orders = sim.state.requests("POST", "/v0/orders")
    assert [bool((r.body or {}).get("dry_run")) for r in orders] == [True, False]
    assert len(sim.state.orders) == 1
    order = next(iter(sim.state.orders.values()))
    day_dir = tmp_path / "pixxel_tasking_to_delivery" / dag_run.logical_date.strftime("%Y-%m-%d")
    summary = json.loads((day_dir / "summary.json").read_text())
    assert summary["order_id"] == order["id"]
    assert summary["order_cost_tokens"] == 400.0
    # The downloaded zip is byte for byte what the simulator serves.
    (imagery,) = summary["files"]
    path = Path(imagery["path"])
    assert path.parent == day_dir / "imagery"
    download_id = next(iter(sim.state.catalog_downloads))
    assert imagery["sha256"] == sha256_of(path) == sim.state.files.get(download_id).sha256()
    assert imagery["size"] == path.stat().st_size
    # Every catalog of the order was delivered to the seeded store under the dated prefix.
    store_id = next(iter(sim.state.stores))
    assert summary["deliveries"]["store_id"] == store_id
    delivered = {d["catalog_id"] for d in sim.state.deliveries.values()}
    assert delivered == {c["id"] for c in sim.state.catalogs.values() if c["order_id"] == order["id"]}
    delivery_posts = sim.state.requests("POST", "/v0/catalogs/deliveries")
    assert [r.body["deliveries"][0]["cloud_info"]["path"] for r in delivery_posts] == [
        f"tasking/{dag_run.logical_date:%Y-%m-%d}/"
    ]
    # The preview: an AOI over the same polygon, an NDVI visualization and its PNG for the newest image.
    png = summary["index_png"]
    assert Path(png["path"]) == day_dir / "ndvi_preview.png"
    assert_png(Path(png["path"]), png["sha256"])
    assert png["date"] == "2025-03-02"
    (aoi,) = [a for a in sim.state.aois.values() if not a.get("seeded")]
    assert aoi["geometry"]["coordinates"] == summary_polygon(dag)
    assert hashlib.sha256(Path(png["path"]).read_bytes()).hexdigest() == png["sha256"]


def summary_polygon(dag: Any) -> Any:
    return dag.params["aoi_geojson"]["features"][0]["geometry"]["coordinates"]
