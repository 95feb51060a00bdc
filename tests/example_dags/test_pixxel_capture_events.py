"""One run per capture: the watcher's trigger finds each new capture once; the DAG processes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_pixxel.triggers import catalog as catalog_module
from tests.example_dags.dag_runner import load_dag, run_dag, task_states
from tests.example_dags.example_runs import asset_triggered_runs, no_retries, xcom
from tests.example_dags.outputs import (
    PNG_SIGNATURE,
    assert_every_task_succeeded,
    deferrals,
    set_example_connections,
    sha256_of,
)
from tests.operators.pixxel_sim import fulfilled_order, recurring_item
from tests.task_runner import rebuild_trigger

ASSET_NAME = "pixxel_recurring_captures"


class FakeAssetStateStore:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))


class Enough(Exception):
    pass


async def watcher_events(
    dag: Any, store: FakeAssetStateStore, max_events: int | None = None
) -> list[dict[str, Any]]:
    """Run the asset's watcher trigger as the triggerer would, until the fake sleep or ``max_events``."""
    (asset,) = [a for a in dag.timetable.asset_condition.objects if a.name == ASSET_NAME]
    (watcher,) = asset.watchers
    trigger = rebuild_trigger(watcher.trigger)
    trigger.asset_state_store = store
    events: list[dict[str, Any]] = []
    run = trigger.run()
    try:
        async for event in run:
            events.append(dict(event.payload))
            if len(events) == max_events:
                break
    except Enough:
        pass
    finally:
        await run.aclose()
    return events


def counting_sleep(monkeypatch: pytest.MonkeyPatch, polls: int) -> list[float]:
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) >= polls:
            raise Enough

    monkeypatch.setattr(catalog_module, "sleep", sleep)
    return pauses


async def test_the_watcher_emits_each_capture_once_across_a_restart(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=3)])
    monkeypatch.setenv("PIXXEL_CAPTURE_ORDER_ITEM_IDS", ",".join(order["order_item_ids"]))
    monkeypatch.setenv("PIXXEL_CAPTURE_POLL_INTERVAL", "120")
    dag = load_dag("pixxel_capture_events.py")
    store = FakeAssetStateStore()

    pauses = counting_sleep(monkeypatch, polls=6)
    first = await watcher_events(dag, store, max_events=1)
    after_restart = await watcher_events(dag, store)

    assert set(pauses) == {120.0}
    assert len(first) == 1
    assert len(after_restart) == 2
    catalogs = {c["id"] for c in sim.state.catalogs.values()}
    assert {e["catalog_id"] for e in first + after_restart} == catalogs


@pytest.mark.e2e
def test_each_capture_event_is_downloaded_and_rendered(
    sim: Any, airflow_db: None, deferrable_mode: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=2)])
    monkeypatch.setenv("PIXXEL_CAPTURE_ORDER_ITEM_IDS", ",".join(order["order_item_ids"]))
    set_example_connections(sim, monkeypatch)
    dag = load_dag("pixxel_capture_events.py")
    no_retries(dag)
    # Two captures delivered before the run started: the scheduler hands both events to one run.
    payloads = [
        {"catalog_id": c, "order_item_id": order["order_item_ids"][0], "task_id": "t", "created_at": "x"}
        for c in order["catalog_ids"]
    ]
    assert len(payloads) == 2
    asset_triggered_runs(monkeypatch, ASSET_NAME, payloads)

    dag_run = run_dag(dag, logical_date=None, run_conf={"output_dir": str(tmp_path)})

    assert_every_task_succeeded(dag_run)
    assert str(dag_run.run_type) in ("asset_triggered", "DagRunType.ASSET_TRIGGERED")
    assert (deferrals(sim, dag_run) > 0) is deferrable_mode, task_states(dag_run)
    # One package per capture, each asked for once.
    bodies = [r.body for r in sim.state.requests("POST", "/v0/catalogs/download")]
    assert sorted(b["catalog_ids"][0] for b in bodies) == sorted(order["catalog_ids"])
    assert all(len(b["catalog_ids"]) == 1 for b in bodies)
    processed = []
    for index in range(len(order["catalog_ids"])):
        download = xcom(dag_run, "download_capture", index)
        folder = Path(download["path"])
        assert folder.parent.parent == tmp_path / "pixxel_capture_events"
        assert folder.name == "package"
        processed.append(folder.parent.name)
        for entry in download["files"]:
            assert sha256_of(folder / entry["path"]) == entry["sha256"]
        rendered = xcom(dag_run, "render_quicklook", index)
        png = Path(rendered["path"])
        assert png == folder.parent / "quicklook.png"
        assert png.read_bytes().startswith(PNG_SIGNATURE)
        assert sha256_of(png) == rendered["sha256"]
    # Each capture in its own folder, named after its catalog.
    assert sorted(processed) == sorted(order["catalog_ids"])
