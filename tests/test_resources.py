"""The waitable kinds: reading each one from the simulator with both hooks, and classifying it."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelNotFoundError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook
from airflow_provider_pixxel.resources import (
    MAX_IDS_QUERY_CHARS,
    WATCHABLES,
    id_chunks,
    observe,
    read_async,
    read_many_async,
    read_sync,
    watchable,
)
from airflow_provider_pixxel.statuses import Phase, Resource
from airflow_provider_pixxel.triggers.status import PixxelStatusTrigger
from tests.task_runner import first_event

# One API object per kind and phase, shaped as the API returns it.
OBJECTS: dict[str, dict[Phase, dict[str, Any]]] = {
    "aoi": {
        Phase.RUNNING: {"aoi_id": "a", "status": "running", "progress": 40},
        Phase.SUCCESS: {"aoi_id": "a", "status": "success", "progress": 100},
        Phase.PARTIAL: {"aoi_id": "a", "status": "partial_success", "progress": 100},
        Phase.FAILURE: {"aoi_id": "a", "status": "failed", "progress": 10},
    },
    "visualization": {
        Phase.RUNNING: {"id": "v", "status": "creating"},
        Phase.SUCCESS: {"id": "v", "status": "success"},
        Phase.PARTIAL: {"id": "v", "status": "partial_success"},
        Phase.FAILURE: {"id": "v", "status": "failed"},
    },
    "insight": {
        Phase.RUNNING: {"id": "i", "status": "running", "progress": 12.5},
        Phase.SUCCESS: {"id": "i", "status": "completed", "progress": 100},
        Phase.FAILURE: {"id": "i", "status": "failed", "err_msg": "no valid pixels"},
    },
    "aoi_download": {
        Phase.RUNNING: {"download_id": "d", "status": "SUCCESS", "signed_url": ""},
        Phase.SUCCESS: {"download_id": "d", "status": "SUCCESS", "signed_url": "https://x/f?sig=secret"},
        Phase.FAILURE: {"download_id": "d", "status": "failed"},
    },
    "catalog_download": {
        Phase.RUNNING: {"id": "d", "status": "in_progress"},
        Phase.SUCCESS: {"id": "d", "status": "success", "signed_url": "https://x/f?sig=secret"},
        Phase.FAILURE: {"id": "d", "status": "failed"},
    },
    "delivery": {
        Phase.RUNNING: {"delivery_id": "d", "status": "IN_PROGRESS"},
        Phase.SUCCESS: {"delivery_id": "d", "status": "SUCCESSFUL"},
        Phase.FAILURE: {"delivery_id": "d", "status": "FAILED"},
    },
    "job": {
        Phase.RUNNING: {"id": "j", "status": "running", "progress": "33"},
        Phase.SUCCESS: {"id": "j", "status": "completed", "progress": "100"},
        Phase.PARTIAL: {"id": "j", "status": "partially_completed"},
        Phase.FAILURE: {
            "id": "j",
            "status": "failed",
            "tasks": [{"id": "t1", "name": "cloudmask", "status": "failed", "err_msg": "oom"}],
        },
    },
    "order_item": {
        Phase.RUNNING: {"id": "o", "status": "ACTIVE"},
        Phase.SUCCESS: {"id": "o", "status": "FULFILLED"},
        Phase.PARTIAL: {"id": "o", "status": "PARTIALLY_FULFILLED"},
        Phase.FAILURE: {"id": "o", "status": "CANCELLED"},
    },
    "job_package": {
        Phase.RUNNING: {"id": "p", "status": "pending"},
        Phase.SUCCESS: {"id": "p", "status": "ready", "signed_url": "https://x/f?sig=secret"},
        Phase.FAILURE: {"id": "p", "status": "failed"},
    },
}
OBJECTS["task_package"] = OBJECTS["insight_package"] = OBJECTS["job_package"]
IDS: dict[str, dict[str, str]] = {
    kind: {name: f"{name}-1" for name in spec.id_names} for kind, spec in WATCHABLES.items()
}
PHASE_CASES = [(kind, phase) for kind, phases in OBJECTS.items() for phase in phases]


@pytest.mark.parametrize(("kind", "phase"), PHASE_CASES, ids=[f"{k}-{p.value}" for k, p in PHASE_CASES])
def test_observe_classifies_each_phase(kind: str, phase: Phase) -> None:
    observation = observe(kind, OBJECTS[kind][phase], IDS[kind])

    assert observation.phase is phase
    assert observation.status == OBJECTS[kind][phase]["status"]
    if phase in (Phase.FAILURE, Phase.PARTIAL):
        assert observation.reason
    else:
        assert observation.reason is None
    # Observations travel in trigger events stored in the metadata DB: no signed URL in them.
    assert "secret" not in repr(observation.as_event())


def test_observe_keeps_progress_of_every_type() -> None:
    assert observe("job", OBJECTS["job"][Phase.RUNNING], IDS["job"]).progress == 33.0
    assert observe("insight", OBJECTS["insight"][Phase.RUNNING], IDS["insight"]).progress == 12.5
    assert observe("aoi", {"status": "running", "progress": "n/a"}, IDS["aoi"]).progress is None


def test_observe_names_failed_tasks_and_err_msg() -> None:
    failed_job = observe("job", OBJECTS["job"][Phase.FAILURE], IDS["job"])
    failed_insight = observe("insight", OBJECTS["insight"][Phase.FAILURE], IDS["insight"])

    assert "cloudmask" in str(failed_job.reason)
    assert "no valid pixels" in str(failed_insight.reason)


def test_observe_treats_a_deleted_insight_as_failed() -> None:
    deleted = {"id": "i", "status": "completed", "deleted_at": "2025-01-01T00:00:00Z"}
    assert observe("insight", deleted, IDS["insight"]).phase is Phase.FAILURE


def test_observe_of_a_missing_object_is_not_found() -> None:
    with pytest.raises(PixxelNotFoundError, match="insight"):
        observe("insight", None, IDS["insight"])


def _order(*statuses: str) -> dict[str, Any]:
    return {
        "id": "order-1",
        "status": "PAID",
        "order_items": [{"id": f"item-{n}", "status": status} for n, status in enumerate(statuses)],
    }


@pytest.mark.parametrize(
    ("statuses", "phase"),
    [
        (("FULFILLED", "FULFILLED"), Phase.SUCCESS),
        (("FULFILLED", "ACTIVE"), Phase.RUNNING),
        (("FAILED", "ACTIVE"), Phase.RUNNING),
        (("FULFILLED", "PARTIALLY_FULFILLED"), Phase.PARTIAL),
        (("PARTIALLY_FULFILLED", "CANCELLED"), Phase.FAILURE),
        ((), Phase.RUNNING),
    ],
)
def test_an_order_is_done_when_every_item_is(statuses: tuple[str, ...], phase: Phase) -> None:
    observation = observe("order", _order(*statuses), {"order_id": "order-1"})

    assert observation.phase is phase
    assert observation.detail["order_item_ids"] == [f"item-{n}" for n in range(len(statuses))]
    assert observation.detail["order_status"] == "PAID"


def test_a_failed_order_names_each_failed_item() -> None:
    observation = observe("order", _order("FULFILLED", "CANCELLED", "FAILED"), {"order_id": "order-1"})

    assert observation.phase is Phase.FAILURE
    assert "item-1 CANCELLED" in str(observation.reason)
    assert "item-2 FAILED" in str(observation.reason)
    assert "item-0" not in str(observation.reason)
    assert observation.status == "order items: 2 failure, 1 success"


def test_check_ids_names_the_missing_ids() -> None:
    with pytest.raises(PixxelConfigError, match="missing or empty: job_id"):
        watchable("job").check_ids({"workflow_id": "w", "job_id": " "})
    assert watchable("job").check_ids({"workflow_id": " w ", "job_id": "j", "extra": "x"}) == {
        "workflow_id": "w",
        "job_id": "j",
    }


def test_an_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(PixxelConfigError, match="aoi, aoi_download"):
        watchable("jobs")


# -- every kind read from the simulator with both hooks ------------------------------------------


def _box(bbox: list[float]) -> dict[str, Any]:
    west, south, east, north = bbox
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def place_order(sim: Any, hook: PixxelHook, items: int = 1) -> dict[str, Any]:
    """An archive order of ``items`` order items, placed and not read yet (the API's answer)."""
    state = sim.state
    item = next(i for i in state.items.values() if i["collection"] == "pixxel-td2")
    order_item = {
        "project_id": next(iter(state.projects)),
        "usecase": "resource tests",
        "geometry": {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": _box(item["bbox"])}],
        },
        "item_ids": [item["id"]],
    }
    order: dict[str, Any] = hook.create_order(order_items=[order_item] * items)
    return order


def _ordered_item(sim: Any, hook: PixxelHook) -> dict[str, str]:
    order = place_order(sim, hook)
    order_item_id = order["order_items"][0]["id"]
    # Read until fulfilled (instant pace: the first read after creation is terminal).
    hook.get_order_item(order_item_id)
    return {"order_id": order["id"], "order_item_id": order_item_id}


def _job(sim: Any, hook: PixxelHook) -> dict[str, str]:
    workflow_id = next(iter(sim.state.workflows))
    job = hook.create_job(workflow_id)
    hook.get_job(workflow_id, job["id"])
    return {"workflow_id": workflow_id, "job_id": job["id"]}


def _insight(sim: Any, hook: PixxelHook) -> dict[str, str]:
    aoi_id = next(iter(sim.state.aois))
    created = hook.create_insights(
        aoi_id,
        block={"name": "waterbodydetection", "version": "2.0.1"},
        input=[
            {
                "name": "input_image",
                "format": "raster",
                "type": "url",
                "stac_url": "https://stac.example/item",
            },
            {"name": "threshold", "format": "number", "type": "number", "value": "0.3"},
        ],
    )
    hook.list_insights(aoi_id, id=created["id"])
    return {"aoi_id": aoi_id, "insight_id": created["id"]}


def _ids_for(kind: str, sim: Any, hook: PixxelHook) -> dict[str, str]:
    state = sim.state
    aoi_id = next(iter(state.aois))
    if kind == "aoi":
        return {"aoi_id": aoi_id}
    if kind == "visualization":
        return {"aoi_id": aoi_id, "visualization_id": next(iter(state.visualizations))}
    if kind == "insight":
        return _insight(sim, hook)
    if kind == "insight_package":
        ids = _insight(sim, hook)
        hook.download_insights(ids["aoi_id"], ids["insight_id"])
        return ids
    if kind == "aoi_download":
        asset_ids = [a["id"] for a in state.assets.values() if a["aoi_id"] == aoi_id][:1]
        return {
            "aoi_id": aoi_id,
            "download_id": hook.create_aoi_download(aoi_id, asset_ids=asset_ids)["download_id"],
        }
    if kind in ("job", "job_package", "task_package"):
        ids = _job(sim, hook)
        if kind == "job_package":
            hook.download_job(ids["workflow_id"], ids["job_id"])
        if kind == "task_package":
            ids["task_id"] = hook.get_job(ids["workflow_id"], ids["job_id"])["tasks"][0]["id"]
            hook.download_task(ids["workflow_id"], ids["job_id"], ids["task_id"])
        return ids
    ordered = _ordered_item(sim, hook)
    if kind in ("order", "order_item"):
        return ordered
    if kind == "catalog_download":
        created = hook.create_catalog_download(order_item_ids=[ordered["order_item_id"]])
        return {"download_id": created["id"]}
    assert kind == "delivery"
    store_id = next(iter(state.stores))
    created = hook.create_deliveries(
        deliveries=[{"order_item_ids": [ordered["order_item_id"]], "cloud_info": {"config": store_id}}]
    )
    return {"delivery_id": created["deliveries"][0]["delivery_id"]}


@pytest.mark.parametrize("kind", sorted(WATCHABLES))
def test_every_kind_is_read_with_both_hooks(sim: Any, kind: str) -> None:
    with PixxelHook() as hook:
        ids = watchable(kind).check_ids(_ids_for(kind, sim, hook))
        synced = read_sync(hook, kind, ids)

    async def read() -> Any:
        async with PixxelAsyncHook() as async_hook:
            return await read_async(async_hook, kind, ids)

    awaited = asyncio.run(read())

    assert synced.phase is Phase.SUCCESS, synced
    assert awaited.phase is Phase.SUCCESS, awaited
    assert awaited.status == synced.status


def test_reading_a_missing_resource_is_not_found(sim: Any) -> None:
    aoi_id = next(iter(sim.state.aois))
    with PixxelHook() as hook, pytest.raises(PixxelNotFoundError):
        read_sync(hook, "insight", {"aoi_id": aoi_id, "insight_id": "no-such-insight"})


# -- params carried with the ids; reasons read from a failed order's items ------------------------------


class RecordingOperations:
    """Answers the two reads these tests need and records every call (sync flavour)."""

    def __init__(self, order: dict[str, Any], items: dict[str, Any]) -> None:
        self.order = order
        self.items = items
        self.calls: list[tuple[str, Any, Any]] = []

    def get_order(self, order_id: str) -> Any:
        self.calls.append(("get_order", order_id, None))
        return self.order

    def get_order_item(self, order_item_id: str) -> Any:
        self.calls.append(("get_order_item", order_item_id, None))
        found = self.items[order_item_id]
        if isinstance(found, Exception):
            raise found
        return found

    def download_insights(self, aoi_id: str, insight_id: str, **selection: Any) -> Any:
        self.calls.append(("download_insights", (aoi_id, insight_id), selection))
        return {"status": "ready", "signed_url": "https://files/x.zip?sig=1"}


class AsyncRecordingOperations(RecordingOperations):
    async def get_order(self, order_id: str) -> Any:  # type: ignore[override]
        return RecordingOperations.get_order(self, order_id)

    async def get_order_item(self, order_item_id: str) -> Any:  # type: ignore[override]
        return RecordingOperations.get_order_item(self, order_item_id)


def test_check_ids_keeps_given_params_as_strings_and_drops_empty_ones() -> None:
    spec = watchable("insight_package")
    assert spec.check_ids({"aoi_id": "a", "insight_id": "i", "inputs": ["s2", " dem "], "outputs": ""}) == {
        "aoi_id": "a",
        "insight_id": "i",
        "inputs": "s2,dem",
    }
    # Kinds without params keep only their ids.
    assert watchable("aoi").check_ids({"aoi_id": "a", "inputs": "x"}) == {"aoi_id": "a"}


def test_every_insight_package_read_re_sends_the_selection() -> None:
    ops = RecordingOperations({}, {})
    ids = watchable("insight_package").check_ids(
        {"aoi_id": "a", "insight_id": "i", "outputs": ["classes", "confidence"]}
    )

    read_sync(ops, "insight_package", ids)  # type: ignore[arg-type]
    read_sync(ops, "insight_package", ids)  # type: ignore[arg-type]

    assert [call[2] for call in ops.calls] == [{"inputs": None, "outputs": ["classes", "confidence"]}] * 2


FAILED_ORDER = {
    "id": "o1",
    "status": "PAID",
    "order_items": [{"id": "i1", "status": "FAILED"}, {"id": "i2", "status": "FULFILLED"}],
}
FAILED_ITEM = {
    "id": "i1",
    "status": "FAILED",
    "validation_errors": [{"capture": ["persistent cloud cover"]}],
    "tasks": [{"id": "t1", "type": "TASKING", "status": "EXPIRED"}],
}


def test_a_failed_order_reads_its_failed_items_for_the_reason() -> None:
    ops = RecordingOperations(FAILED_ORDER, {"i1": FAILED_ITEM})

    observation = read_sync(ops, "order", {"order_id": "o1"})  # type: ignore[arg-type]

    assert observation.phase is Phase.FAILURE
    assert observation.reason == (
        "order item i1 FAILED: validation_errors: capture: persistent cloud cover; "
        "failed tasks: t1 (TASKING, EXPIRED)"
    )
    # Only the failed item is read: the fulfilled one has nothing to explain.
    assert ("get_order_item", "i2", None) not in ops.calls


def test_the_async_read_gives_the_same_reason() -> None:
    ops = AsyncRecordingOperations(FAILED_ORDER, {"i1": FAILED_ITEM})

    observation = asyncio.run(read_async(ops, "order", {"order_id": "o1"}))  # type: ignore[arg-type]

    assert observation.reason is not None
    assert "persistent cloud cover" in observation.reason


def test_an_unreadable_item_keeps_the_outcome_and_the_summary_reason() -> None:
    ops = RecordingOperations(FAILED_ORDER, {"i1": PixxelNotFoundError(status=404, method="GET", url="u")})

    observation = read_sync(ops, "order", {"order_id": "o1"})  # type: ignore[arg-type]

    assert observation.phase is Phase.FAILURE
    assert observation.reason == "order item i1 FAILED: no reason given by the API"


def test_a_running_order_reads_no_items() -> None:
    ops = RecordingOperations({"id": "o1", "order_items": [{"id": "i1", "status": "ACTIVE"}]}, {})

    assert read_sync(ops, "order", {"order_id": "o1"}).phase is Phase.RUNNING  # type: ignore[arg-type]
    assert [call[0] for call in ops.calls] == ["get_order"]


# -- kinds are the status table's resources; triggers serialized before still run ------------------------

# The kind strings PixxelStatusTrigger.serialize() wrote before kinds were named by statuses.Resource,
# written out literally: a triggerer restarted after an upgrade holds rows with exactly these.
KINDS_SERIALIZED_BEFORE = (
    "aoi",
    "visualization",
    "insight",
    "aoi_download",
    "catalog_download",
    "delivery",
    "job",
    "order_item",
    "order",
    "job_package",
    "task_package",
    "insight_package",
)


def test_every_kind_is_named_by_its_status_table_resource() -> None:
    for resource, spec in WATCHABLES.items():
        assert isinstance(resource, Resource)
        assert spec.resource is resource
        assert spec.kind == resource.value
        assert type(spec.kind) is str
    # An order is its own resource (its phase comes from its items), not an order item.
    assert watchable("order").resource is Resource.ORDER
    assert watchable(Resource.ORDER) is watchable("order")


def test_every_operator_and_sensor_waits_on_a_known_kind() -> None:
    import airflow_provider_pixxel.operators as operators
    import airflow_provider_pixxel.sensors as sensors

    kinds = {
        getattr(package, name).watch_kind
        for package in (operators, sensors)
        for name in package.__all__
        if getattr(getattr(package, name), "watch_kind", "")
    }
    assert kinds
    assert {watchable(kind).kind for kind in kinds} == kinds


@pytest.mark.parametrize("kind", KINDS_SERIALIZED_BEFORE)
def test_a_trigger_serialized_by_an_earlier_version_still_runs(sim: Any, kind: str) -> None:
    with PixxelHook() as hook:
        ids = watchable(kind).check_ids(_ids_for(kind, sim, hook))
    serialized = {
        "kind": kind,
        "ids": ids,
        "pixxel_conn_id": "pixxel_default",
        "poll_interval": 0.01,
        "deadline": time.time() + 30,
        "stop_on_kill": False,
        "project_id": None,
    }

    trigger = PixxelStatusTrigger(**json.loads(json.dumps(serialized)))
    event = asyncio.run(first_event(trigger))

    assert trigger.serialize()[1] == serialized
    assert (event["kind"], event["status"]) == (kind, "success")


# -- list forms: many resources of one kind and scope read at once ---------------------------------

LISTED_KINDS = sorted(w.kind for w in WATCHABLES.values() if w.list_form is not None)


def test_the_kinds_with_a_list_form() -> None:
    assert LISTED_KINDS == ["aoi", "insight", "job", "order", "order_item", "visualization"]


@pytest.mark.parametrize("kind", LISTED_KINDS)
def test_a_list_read_observes_what_the_resources_own_read_does(sim: Any, kind: str) -> None:
    with PixxelHook() as hook:
        ids = watchable(kind).check_ids(_ids_for(kind, sim, hook))
    sim.state.clear_records()

    async def read() -> tuple[Any, Any]:
        async with PixxelAsyncHook() as async_hook:
            alone = await read_async(async_hook, kind, ids)
            return alone, await read_many_async(async_hook, kind, [ids, ids])

    alone, listed = asyncio.run(read())

    assert listed == [alone, alone]
    own_reads = len(sim.state.requests("GET"))
    # One own read, then the list read (a job list item that is not a failure needs no own read); a
    # kind whose list form confirms success (an order) reads each of the two on its own as well.
    confirmed = 2 if Phase.SUCCESS in watchable(kind).list_form.confirm else 0  # type: ignore[union-attr]
    assert own_reads == 2 + confirmed, [r.path for r in sim.state.requests()]


def test_order_items_are_read_with_one_list_call_and_a_missing_one_on_its_own(sim: Any) -> None:
    with PixxelHook() as hook:
        watches = [watchable("order_item").check_ids(_ordered_item(sim, hook)) for _ in range(3)]
    missing = {"order_item_id": "00000000-0000-4000-8000-00000000abcd"}
    sim.state.clear_records()

    async def read() -> list[Any]:
        async with PixxelAsyncHook() as async_hook:
            return await read_many_async(async_hook, "order_item", [*watches, missing])

    results = asyncio.run(read())

    assert [getattr(r, "phase", None) for r in results[:3]] == [Phase.SUCCESS] * 3
    assert isinstance(results[3], PixxelNotFoundError)
    listed = sim.state.requests("GET", "/v0/order-items")
    assert len(listed) == 1
    assert listed[0].query["limit"] == "4"
    assert listed[0].query["ids"].split(",") == [w["order_item_id"] for w in watches] + [
        missing["order_item_id"]
    ]
    assert [r.path for r in sim.state.requests("GET", "/v0/order-items/*")] == [
        f"/v0/order-items/{missing['order_item_id']}"
    ]


def test_a_failed_job_in_the_list_is_confirmed_by_its_own_read(sim: Any) -> None:
    sim.state.scenarios.fail("job", message="out of memory")
    with PixxelHook() as hook:
        ids = watchable("job").check_ids(_job(sim, hook))
    sim.state.clear_records()

    async def read() -> list[Any]:
        async with PixxelAsyncHook() as async_hook:
            return await read_many_async(async_hook, "job", [ids, ids])

    observation, again = asyncio.run(read())

    # The job list carries no tasks: the reason (the failed task) comes from the job's own read.
    assert observation.phase is Phase.FAILURE
    assert "atmcorrection" in observation.reason
    assert again == observation
    assert len(sim.state.requests("GET", f"/v0/workflows/{ids['workflow_id']}/jobs")) == 1
    assert len(sim.state.requests("GET", f"/v0/workflows/{ids['workflow_id']}/jobs/{ids['job_id']}")) == 2


def test_a_lone_resource_is_read_on_its_own(sim: Any) -> None:
    with PixxelHook() as hook:
        ids = watchable("job").check_ids(_job(sim, hook))
    sim.state.clear_records()

    async def read() -> list[Any]:
        async with PixxelAsyncHook() as async_hook:
            return await read_many_async(async_hook, "job", [ids])

    (observation,) = asyncio.run(read())

    assert observation.phase is Phase.SUCCESS
    assert [r.path for r in sim.state.requests("GET")] == [
        f"/v0/workflows/{ids['workflow_id']}/jobs/{ids['job_id']}"
    ]


def test_id_chunks_respect_the_page_size_and_the_url_length() -> None:
    uuids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(250)]
    assert [len(chunk) for chunk in id_chunks(uuids)] == [100, 100, 50]
    long_ids = [letter * 1500 for letter in "xy"] + ["é" * 300]  # é is 6 characters URL-encoded
    chunks = id_chunks(long_ids + long_ids)  # repeats are asked for once
    assert [len(c) for c in chunks] == [2, 1]
    for chunk in id_chunks(uuids) + chunks:
        assert sum(len(quote(key, safe="")) + 3 for key in chunk) <= MAX_IDS_QUERY_CHARS


# -- orders read with the order-item list, AOIs with a bounded walk of the AOI list -------------------

MISSING_ID = "00000000-0000-4000-8000-00000000abcd"


def add_aois(sim: Any, count: int) -> list[str]:
    """``count`` more processed AOIs in the account, listed after those it has (copies of the seeded
    one, put straight into the simulator's state: creating hundreds through the API proves nothing)."""
    seeded = next(iter(sim.state.aois.values()))
    added = []
    for n in range(count):
        aoi_id = sim.state.new_id()
        sim.state.aois[aoi_id] = {**seeded, "aoi_id": aoi_id, "name": f"{seeded['name']} {n}"}
        added.append(aoi_id)
    return added


def _read_many(kind: str, watches: list[dict[str, str]]) -> list[Any]:
    async def read() -> list[Any]:
        async with PixxelAsyncHook() as async_hook:
            return await read_many_async(async_hook, kind, watches)

    return asyncio.run(read())


def _read_each(kind: str, watches: list[dict[str, str]]) -> list[Any]:
    async def read() -> list[Any]:
        async with PixxelAsyncHook() as async_hook:
            return [await read_async(async_hook, kind, ids) for ids in watches]

    return asyncio.run(read())


def test_running_orders_are_served_by_one_order_item_list_call(sim: Any) -> None:
    sim.state.scenarios.stall("order_item", times=4)
    with PixxelHook() as hook:
        watches = [{"order_id": place_order(sim, hook, items=2)["id"]} for _ in range(2)]
    sim.state.clear_records()

    batched = _read_many("order", [*watches, {"order_id": MISSING_ID}])

    assert [getattr(result, "phase", None) for result in batched[:2]] == [Phase.RUNNING] * 2
    # An order none of whose items is listed is read on its own: only that read says "not found".
    assert isinstance(batched[2], PixxelNotFoundError)
    (listed,) = sim.state.requests("GET", "/v0/order-items")
    assert listed.query["order_ids"].split(",") == [w["order_id"] for w in watches] + [MISSING_ID]
    assert listed.query["limit"] == "100"
    assert [r.path for r in sim.state.requests("GET", "/v0/orders/*")] == [f"/v0/orders/{MISSING_ID}"]
    # A running order from the list observes what its own read does, but for the order's payment
    # status, which the item list does not carry.
    for from_list, own in zip(batched[:2], _read_each("order", watches), strict=True):
        assert from_list.detail["order_status"] is None
        assert own.detail["order_status"] == "PAID"
        assert replace(from_list, detail={**from_list.detail, "order_status": "PAID"}) == own
        assert len(own.detail["order_item_ids"]) == 2


def test_finished_orders_in_the_list_are_confirmed_by_their_own_reads(sim: Any) -> None:
    with PixxelHook() as hook:
        sim.state.scenarios.fail("order_item", message="persistent cloud cover")
        failed = place_order(sim, hook, items=2)
        sim.state.scenarios.partial("order_item")
        partial = place_order(sim, hook)
        succeeded = place_order(sim, hook, items=2)
    watches = [{"order_id": order["id"]} for order in (failed, partial, succeeded)]
    sim.state.clear_records()

    batched = _read_many("order", watches)

    assert [observation.phase for observation in batched] == [Phase.FAILURE, Phase.PARTIAL, Phase.SUCCESS]
    assert "persistent cloud cover" in str(batched[0].reason)
    assert len(sim.state.requests("GET", "/v0/order-items")) == 1
    assert sorted(r.path for r in sim.state.requests("GET", "/v0/orders/*")) == sorted(
        f"/v0/orders/{w['order_id']}" for w in watches
    )
    # What a task resumes with is exactly what each order's own read gives, payment status included.
    assert batched == _read_each("order", watches)


def test_aoi_waits_are_read_with_one_page_of_the_aoi_list(sim: Any) -> None:
    watches = [{"aoi_id": aoi_id} for aoi_id in add_aois(sim, 3)]
    sim.state.clear_records()

    batched = _read_many("aoi", [*watches, {"aoi_id": MISSING_ID}])

    assert [getattr(result, "phase", None) for result in batched[:3]] == [Phase.SUCCESS] * 3
    assert isinstance(batched[3], PixxelNotFoundError)
    (listed,) = sim.state.requests("GET", "/v0/aois")
    assert (listed.query["offset"], listed.query["limit"]) == ("0", "100")
    # The missing AOI was not on the account's one page: read on its own, and only that says 404.
    assert [r.path for r in sim.state.requests("GET", "/v0/aoi/*")] == [f"/v0/aoi/{MISSING_ID}"]
    assert batched[:3] == _read_each("aoi", watches)


@pytest.mark.parametrize(("wanted", "pages"), [(2, 1), (101, 2)])
def test_the_aoi_walk_stops_once_every_wanted_aoi_was_seen(sim: Any, wanted: int, pages: int) -> None:
    account = add_aois(sim, 350)
    watches = [{"aoi_id": aoi_id} for aoi_id in account[:wanted]]
    sim.state.clear_records()

    batched = _read_many("aoi", watches)

    assert {observation.phase for observation in batched} == {Phase.SUCCESS}
    # ceil(n / 100) pages of the 351 AOIs, not all four: the walk stops once every wanted one was seen.
    assert [r.query["offset"] for r in sim.state.requests("GET", "/v0/aois")] == [
        str(100 * page) for page in range(pages)
    ]
    assert sim.state.requests("GET", "/v0/aoi/*") == []


def test_the_aoi_walk_reads_at_most_one_page_more_and_the_rest_on_their_own(sim: Any) -> None:
    account = add_aois(sim, 300)  # behind the seeded AOI: at positions 1 to 300 of the list
    watches = [{"aoi_id": account[position - 1]} for position in (50, 150, 250)]
    sim.state.clear_records()

    batched = _read_many("aoi", watches)

    assert {observation.phase for observation in batched} == {Phase.SUCCESS}
    # Three wanted AOIs: a budget of ceil(3 / 100) + 1 = 2 pages finds two of them ...
    assert [r.query["offset"] for r in sim.state.requests("GET", "/v0/aois")] == ["0", "100"]
    # ... and the one past the budget is read on its own.
    assert [r.path for r in sim.state.requests("GET", "/v0/aoi/*")] == [f"/v0/aoi/{account[249]}"]
    assert batched == _read_each("aoi", watches)
