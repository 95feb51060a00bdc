"""The archive purchase example DAG end to end against the simulator, with inline and deferred waits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.spend import main, priced_tasks
from tests.example_dags.dag_runner import run_dag, task_states
from tests.example_dags.outputs import (
    assert_every_task_succeeded,
    deferrals,
    load_example_dag,
    set_example_connections,
    sha256_of,
)

pytestmark = pytest.mark.e2e


def test_least_cloudy_archive_scenes_are_priced_bought_and_downloaded(
    sim: Any, airflow_db: None, deferrable_mode: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_example_connections(sim, monkeypatch)
    dag = load_example_dag("pixxel_archive_purchase.py")

    dag_run = run_dag(dag, run_conf={"output_dir": str(tmp_path), "max_items": 2, "max_cost": 900})

    assert_every_task_succeeded(dag_run)
    assert (deferrals(sim, dag_run) > 0) is deferrable_mode, task_states(dag_run)
    # The two least cloudy scenes of the window over the field, whatever their collection.
    in_window = [
        item
        for item in sim.state.items.values()
        if item["collection"] in ("pixxel-td1", "pixxel-td2")
        and "2024-10-01" <= item["properties"]["datetime"][:10] <= "2025-03-31"
        and item["properties"]["eo:cloud_cover"] <= 20
        and covers_field(item["bbox"], dag)
    ]
    best = sorted(in_window, key=lambda item: item["properties"]["eo:cloud_cover"])[:2]
    assert len(best) == 2
    # Exactly one order, priced first by a dry run that bought nothing.
    orders = sim.state.requests("POST", "/v0/orders")
    assert [bool((r.body or {}).get("dry_run")) for r in orders] == [True, False]
    assert len(sim.state.orders) == 1
    assert len(sim.state.created("order")) == 1
    (placed_items,) = [r.body["order_items"] for r in orders if not r.body.get("dry_run")]
    assert [sorted(item["item_ids"]) for item in placed_items] == [sorted(i["id"] for i in best)]
    order = next(iter(sim.state.orders.values()))
    day_dir = tmp_path / "pixxel_archive_purchase" / dag_run.logical_date.strftime("%Y-%m-%d")
    summary = json.loads((day_dir / "summary.json").read_text())
    assert summary["order_id"] == order["id"]
    assert summary["order_status"] == "order items: 1 success"  # the sensor's count per phase
    assert sorted(summary["item_ids"]) == sorted(i["id"] for i in best)
    assert 0 < summary["order_cost_tokens"] <= 900
    # The downloaded zip is byte for byte what the simulator serves, and nothing half-written remains.
    (imagery,) = summary["files"]
    path = Path(imagery["path"])
    assert path.parent == day_dir / "imagery"
    (download_id,) = sim.state.catalog_downloads
    assert imagery["sha256"] == sha256_of(path) == sim.state.files.get(download_id).sha256()
    assert imagery["size"] == path.stat().st_size
    assert not list(day_dir.rglob("*.part"))


def test_an_order_above_max_cost_fails_before_anything_is_bought(
    sim: Any, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_example_connections(sim, monkeypatch)
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    dag = load_example_dag("pixxel_archive_purchase.py")

    dag_run = run_dag(dag, run_conf={"output_dir": str(tmp_path), "max_items": 2, "max_cost": 1})

    states = task_states(dag_run)
    assert states["place_order"] == "failed", states
    assert states["download_imagery"] == "upstream_failed", states
    orders = sim.state.requests("POST", "/v0/orders")
    assert [bool((r.body or {}).get("dry_run")) for r in orders] == [True]
    assert sim.state.orders == {}
    assert not list(tmp_path.rglob("*.zip"))


# [START howto_backfill_pricing]
def test_a_five_day_dry_run_backfill_buys_nothing_and_reports_the_sum_of_five_prices(
    sim: Any, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Step one of the backfill recipe: five runs with ``pixxel_dry_run`` on, then their total."""
    set_example_connections(sim, monkeypatch)
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    dag = load_example_dag("pixxel_archive_purchase.py")
    days = [pendulum.datetime(2026, 11, day, tz="UTC") for day in range(1, 6)]

    for day in days:
        dag_run = run_dag(
            dag,
            logical_date=day,
            run_conf={"output_dir": str(tmp_path), "max_items": 2, "pixxel_dry_run": True},
        )
        states = task_states(dag_run)
        assert states["place_order"] == "skipped", states
        assert states["download_imagery"] == "skipped", states
        assert str(dag_run.state) == "success"

    # Nothing bought: five dry runs, no order, nothing in the wallet's ledger.
    posts = sim.state.requests("POST", "/v0/orders")
    assert [bool(r.body.get("dry_run")) for r in posts] == [True] * 5
    assert sim.state.orders == {}
    assert sim.state.ledger == []
    # What the API quotes for each run's order, asked again now, is what the runs pushed.
    prices = [
        PixxelHook().create_order(order_items=post.body["order_items"], dry_run=True)["total_amount"]
        for post in posts
    ]
    priced = priced_tasks("pixxel_archive_purchase", since=days[0], until=days[-1].add(days=1))
    assert sorted(task.price for task in priced) == sorted(prices)
    assert {task.task_id for task in priced} == {"place_order"}
    assert len({task.run_id for task in priced}) == 5
    capsys.readouterr()  # the runs' own output
    assert (
        main(
            [
                "--priced",
                "pixxel_archive_purchase",
                "--since",
                "2026-11-01",
                "--until",
                "2026-11-06",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["runs"] == 5
    assert report["total"] == pytest.approx(sum(prices))
    assert report["unpriced"] == 0


# [END howto_backfill_pricing]


def covers_field(item_bbox: list[float], dag: Any) -> bool:
    ring = dag.params["aoi_geojson"]["features"][0]["geometry"]["coordinates"][0]
    west, south = min(p[0] for p in ring), min(p[1] for p in ring)
    east, north = max(p[0] for p in ring), max(p[1] for p in ring)
    return item_bbox[0] <= east and item_bbox[2] >= west and item_bbox[1] <= north and item_bbox[3] >= south
