"""Every capture, as delivered: the watcher's trigger names each new capture once, in one event per poll;
each run processes every capture its events name and every capture no run has finished yet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_pixxel.hooks.download import MANIFEST_NAME
from airflow_provider_pixxel.triggers import catalog as catalog_module
from airflow_provider_pixxel.triggers.catalog import catalogs_in_payload
from tests.example_dags.dag_runner import load_dag, run_dag, task_states
from tests.example_dags.example_runs import asset_triggered_runs, no_retries, xcom
from tests.example_dags.outputs import (
    PNG_SIGNATURE,
    assert_every_task_succeeded,
    deferrals,
    set_example_connections,
    sha256_of,
)
from tests.hooks.download.conftest import memory_store  # noqa: F401 (a fixture)
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
    # The three captures were all there at the first poll: one event names them all, for one run.
    assert len(first) == 1
    assert after_restart == []
    catalogs = {c["id"] for c in sim.state.catalogs.values()}
    assert len(catalogs) == 3
    assert [c["catalog_id"] for c in catalogs_in_payload(first[0])] == sorted(
        catalogs, key=lambda c: (sim.state.catalogs[c]["created_at"], c)
    )


@pytest.mark.e2e
def test_each_capture_event_is_downloaded_and_rendered(
    sim: Any, airflow_db: None, deferrable_mode: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=2)])
    monkeypatch.setenv("PIXXEL_CAPTURE_ORDER_ITEM_IDS", ",".join(order["order_item_ids"]))
    set_example_connections(sim, monkeypatch)
    dag = load_dag("pixxel_capture_events.py")
    no_retries(dag)
    # Two captures found by one poll: one event names both, and its run processes both.
    payloads = [
        {
            "catalogs": [
                {
                    "catalog_id": c,
                    "order_item_id": order["order_item_ids"][0],
                    "task_id": "t",
                    "created_at": "x",
                }
                for c in order["catalog_ids"]
            ]
        }
    ]
    assert len(payloads[0]["catalogs"]) == 2
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


def downloads_asked(sim: Any) -> list[str]:
    """The catalogs whose package the runs asked for, in order (one catalog per request)."""
    bodies = [r.body for r in sim.state.requests("POST", "/v0/catalogs/download")]
    assert all(len(b["catalog_ids"]) == 1 for b in bodies), bodies
    return [b["catalog_ids"][0] for b in bodies]


@pytest.mark.e2e
def test_a_capture_no_event_names_is_processed_and_a_finished_one_is_not_again(
    sim: Any, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The event of the second capture landed while the first one's run was queued but not yet created:
    # Airflow hands that run only the first event (an old single-catalog payload here), and the second
    # would wait for the asset's next event. The run finds the second capture unfinished and takes it.
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=2)])
    first, second = sorted(order["catalog_ids"], key=lambda c: (sim.state.catalogs[c]["created_at"], c))
    monkeypatch.setenv("PIXXEL_CAPTURE_ORDER_ITEM_IDS", ",".join(order["order_item_ids"]))
    set_example_connections(sim, monkeypatch)
    dag = load_dag("pixxel_capture_events.py")
    no_retries(dag)
    old_payload = {
        "catalog_id": first,
        "order_item_id": order["order_item_ids"][0],
        "task_id": "t",
        "created_at": "x",
    }
    asset_triggered_runs(monkeypatch, ASSET_NAME, [old_payload])

    dag_run = run_dag(dag, logical_date=None, run_conf={"output_dir": str(tmp_path)})

    assert_every_task_succeeded(dag_run)
    assert xcom(dag_run, "captures_to_process") == [
        {"catalog_ids": [first], "file_name": f"{first}/package"},
        {"catalog_ids": [second], "file_name": f"{second}/package"},
    ]
    assert sorted(downloads_asked(sim)) == sorted([first, second])
    for catalog_id in (first, second):
        folder = tmp_path / "pixxel_capture_events" / catalog_id
        assert (folder / "quicklook.png").read_bytes().startswith(PNG_SIGNATURE)
        assert (folder / "package" / MANIFEST_NAME).is_file()

    # The second capture's event reaches the next run: finished already, it is not downloaded again.
    sim.state.clear_records()
    asset_triggered_runs(monkeypatch, ASSET_NAME, [{"catalogs": [{"catalog_id": second}]}])
    again = run_dag(dag, logical_date=None, run_conf={"output_dir": str(tmp_path)})

    assert str(again.state) in ("success", "DagRunState.SUCCESS"), task_states(again)
    assert xcom(again, "captures_to_process") == []
    assert downloads_asked(sim) == []


@pytest.mark.usefixtures("memory_store")
def test_finished_captures_are_read_from_object_storage(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_pixxel.hooks.download import resolve_destination

    order = fulfilled_order(sim, [recurring_item(sim, occurrences=3)])
    oldest, middle, newest = sorted(
        order["catalog_ids"], key=lambda c: (sim.state.catalogs[c]["created_at"], c)
    )
    set_example_connections(sim, monkeypatch)
    dag = load_dag("pixxel_capture_events.py")
    # One run at a time: a second run alongside would take up the captures the first is downloading.
    assert dag.max_active_runs == 1
    module = dag.get_task("captures_to_process").python_callable.__globals__
    output_dir = "memory://captures/outputs"

    def write(relative: str) -> None:
        path = resolve_destination(output_dir, relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")

    # Finished: the quicklook and the package manifest. Half done: the package only, or the quicklook only.
    write(f"pixxel_capture_events/{oldest}/quicklook.png")
    write(f"pixxel_capture_events/{oldest}/package/{MANIFEST_NAME}")
    write(f"pixxel_capture_events/{middle}/package/{MANIFEST_NAME}")
    write(f"pixxel_capture_events/{newest}/quicklook.png")

    assert module["capture_is_finished"](output_dir, oldest)
    assert not module["capture_is_finished"](output_dir, middle)
    assert module["unfinished_captures"](output_dir, order["order_item_ids"]) == [middle, newest]
    assert module["unfinished_captures"](output_dir, []) == []


class AssetEventOf:
    """A triggering asset event as the run reads it: the trigger's payload under ``extra["payload"]``."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.extra = {"from_trigger": True, "payload": payload}


class TriggeringEventsOf:
    """``triggering_asset_events`` as the task reads it: the events of one asset (an Asset with watchers
    is not hashable on Airflow 3.1, so no dict)."""

    def __init__(self, asset: Any, payloads: list[dict[str, Any]]) -> None:
        self.asset = asset
        self.events = [AssetEventOf(p) for p in payloads]

    def get(self, asset: Any, default: Any = None) -> Any:
        return self.events if asset is self.asset else default


def test_what_a_run_takes_up_without_and_with_named_catalogs(
    sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=3)])
    oldest, middle, newest = sorted(
        order["catalog_ids"], key=lambda c: (sim.state.catalogs[c]["created_at"], c)
    )
    set_example_connections(sim, monkeypatch)
    monkeypatch.setenv("PIXXEL_CAPTURE_ORDER_ITEM_IDS", ",".join(order["order_item_ids"]))
    task = load_dag("pixxel_capture_events.py").get_task("captures_to_process")
    asset = task.python_callable.__globals__["new_captures"]

    def take_up(events: list[dict[str, Any]], catalog_ids: list[str]) -> list[str]:
        params = {"output_dir": str(tmp_path), "catalog_ids": catalog_ids}
        requests = task.python_callable(
            triggering_asset_events=TriggeringEventsOf(asset, events), params=params
        )
        return [c for request in requests for c in request["catalog_ids"]]

    # A manual run without names: every unfinished capture, oldest first.
    assert take_up([], []) == [oldest, middle, newest]
    # An event naming the newest: it first, then the two no run has finished.
    assert take_up([{"catalogs": [{"catalog_id": newest}]}], []) == [newest, oldest, middle]
    # Named by hand: exactly those, and no search of the order's history.
    sim.state.clear_records()
    assert take_up([], [middle]) == [middle]
    assert sim.state.requests("POST", "/v0/catalogs/search") == []

    # Where the variable is unset, the order items an event names are still searched.
    monkeypatch.delenv("PIXXEL_CAPTURE_ORDER_ITEM_IDS")
    task = load_dag("pixxel_capture_events.py").get_task("captures_to_process")
    asset = task.python_callable.__globals__["new_captures"]
    old_shape = {
        "catalog_id": oldest,
        "order_item_id": order["order_item_ids"][0],
        "task_id": "t",
        "created_at": "x",
    }
    assert take_up([old_shape], []) == [oldest, middle, newest]
    with pytest.raises(ValueError, match="nothing to process"):
        take_up([], [])
