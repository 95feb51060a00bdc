"""PixxelNewCatalogTrigger against the simulator: one event per poll naming every new capture, none twice.

The trigger's sleep is replaced by one that records each pause and moves the simulator's ManualClock
instead of waiting, so a recurring tasking order delivers its captures over "time" with no real sleep.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.simulator.faults import FaultRule
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from airflow_provider_pixxel.triggers import catalog as catalog_module
from airflow_provider_pixxel.triggers.catalog import (
    EMITTED_KEY_PREFIX,
    PixxelNewCatalogTrigger,
    catalogs_in_payload,
    catalogs_of_events,
)
from tests.operators.pixxel_sim import fulfilled_order, recurring_item
from tests.task_runner import rebuild_trigger

SECONDS_PER_STEP = 60.0
CATALOG_KEYS = {"catalog_id", "order_item_id", "task_id", "created_at"}


class StopPolling(Exception):
    """Raised by the fake sleep to end a trigger run after a set number of polls."""


class FakeAssetStateStore:
    """What the 3.3 triggerer injects as ``asset_state_store`` for a watcher of one asset."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))


class Pauses:
    """The trigger's sleep: records each pause, moves the simulator clock one status step instead."""

    def __init__(self, handle: SimulatorHandle, limit: int) -> None:
        self.handle = handle
        self.limit = limit
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        if len(self.seconds) > self.limit:
            raise StopPolling
        self.handle.state.clock.advance(SECONDS_PER_STEP)


@pytest.fixture
def timed_sim(sim: SimulatorHandle) -> SimulatorHandle:
    """Statuses move with the simulator's ManualClock: one step per ``SECONDS_PER_STEP``."""
    sim.state.speed = SECONDS_PER_STEP
    return sim


def pause_with(monkeypatch: pytest.MonkeyPatch, handle: SimulatorHandle, limit: int) -> Pauses:
    pauses = Pauses(handle, limit)
    monkeypatch.setattr(catalog_module, "sleep", pauses)
    return pauses


async def collect(
    trigger: PixxelNewCatalogTrigger,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    max_events: int | None = None,
) -> list[dict[str, Any]]:
    """Events until ``max_events`` or until the fake sleep stops the run."""
    events: list[dict[str, Any]] = []
    run: AsyncIterator[Any] = trigger.run()
    try:
        async for event in run:
            events.append(dict(event.payload))
            if on_event is not None:
                on_event(events[-1])
            if max_events is not None and len(events) == max_events:
                break
    except StopPolling:
        pass
    finally:
        await run.aclose()  # type: ignore[attr-defined]
    return events


def catalogs_in(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every catalog the events name, in order; each event is exactly ``{"catalogs": [...]}``."""
    assert all(set(event) == {"catalogs"} and event["catalogs"] for event in events), events
    return [catalog for event in events for catalog in event["catalogs"]]


def logged(capfd: pytest.CaptureFixture[str]) -> str:
    """What the trigger logged (Airflow's structlog writes to the standard streams)."""
    captured = capfd.readouterr()
    return captured.out + captured.err


def delivered_catalog_ids(order_item_ids: list[str]) -> set[str]:
    with PixxelHook() as hook:
        return {c["id"] for c in hook.iter_catalogs(order_item_ids=order_item_ids)}


def trigger_for(order: dict[str, Any], **kwargs: Any) -> PixxelNewCatalogTrigger:
    return PixxelNewCatalogTrigger(order_item_ids=order["order_item_ids"], poll_interval=30, **kwargs)


# -- construction and serialization ----------------------------------------------------------------


def test_serialize_round_trips_through_json() -> None:
    trigger = PixxelNewCatalogTrigger(
        order_item_ids=["oi-1", "oi-2"], pixxel_conn_id="pixxel_eu", poll_interval=90
    )
    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_provider_pixxel.triggers.catalog.PixxelNewCatalogTrigger"
    assert kwargs == {
        "order_item_ids": ["oi-1", "oi-2"],
        "pixxel_conn_id": "pixxel_eu",
        "poll_interval": 90.0,
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert rebuild_trigger(trigger).serialize() == (classpath, kwargs)


def test_trigger_is_exported_and_registered() -> None:
    from airflow_provider_pixxel import triggers
    from airflow_provider_pixxel.get_provider_info import get_provider_info

    assert triggers.PixxelNewCatalogTrigger is PixxelNewCatalogTrigger
    modules = get_provider_info()["triggers"][0]["python-modules"]
    assert "airflow_provider_pixxel.triggers.catalog" in modules


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order_item_ids": "oi-1"}, "order_item_ids must be a list"),
        ({"order_item_ids": []}, "at least one"),
        ({"order_item_ids": ["oi-1", ""]}, "at least one non-empty"),
        ({"order_item_ids": ["oi-1"], "poll_interval": 0}, "poll_interval"),
        ({"order_item_ids": ["oi-1"], "poll_interval": True}, "poll_interval"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        PixxelNewCatalogTrigger(**kwargs)


# -- events ----------------------------------------------------------------------------------------


async def test_one_event_per_poll_that_finds_a_capture_as_the_recurring_order_delivers(
    timed_sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = fulfilled_order(timed_sim, [recurring_item(timed_sim, occurrences=3)])
    assert order["catalog_ids"] == []  # nothing delivered yet: the captures come over time
    pauses = pause_with(monkeypatch, timed_sim, limit=8)
    store = FakeAssetStateStore()
    trigger = trigger_for(order)
    trigger.asset_state_store = store
    arrivals: list[int] = []

    def on_event(event: dict[str, Any]) -> None:
        arrivals.append(len(pauses.seconds))
        # At most once: the record exists before anyone sees the event.
        for catalog in event["catalogs"]:
            assert EMITTED_KEY_PREFIX + catalog["catalog_id"] in store.values

    events = await collect(trigger, on_event)
    catalogs = catalogs_in(events)

    delivered = delivered_catalog_ids(order["order_item_ids"])
    assert len(delivered) == 3
    created = [e["created_at"] for e in catalogs]
    assert created == sorted(created)
    assert {e["catalog_id"] for e in catalogs} == delivered
    assert len(events) == 3
    assert [len(event["catalogs"]) for event in events] == [1, 1, 1]
    assert all(set(e) == CATALOG_KEYS for e in catalogs)
    assert {e["order_item_id"] for e in catalogs} == set(order["order_item_ids"])
    assert all(e["task_id"] and e["created_at"] for e in catalogs)
    # One capture per poll as the clock moves on, then quiet polls that emit nothing more.
    assert arrivals == sorted(set(arrivals))
    assert len(pauses.seconds) == 9
    assert set(pauses.seconds) == {30.0}


async def test_captures_found_by_one_poll_travel_in_one_event(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Airflow hands a run only the events registered before its queue row was created: captures found
    # together and emitted as separate events would be split, the later ones held back for days.
    order = fulfilled_order(
        sim, [recurring_item(sim, occurrences=2), {**recurring_item(sim, occurrences=1), "name": "field-43"}]
    )
    assert len(order["catalog_ids"]) == 3
    pause_with(monkeypatch, sim, limit=2)
    store = FakeAssetStateStore()
    trigger = trigger_for(order)
    trigger.asset_state_store = store

    events = await collect(trigger)

    (event,) = events
    assert sorted(c["catalog_id"] for c in event["catalogs"]) == sorted(order["catalog_ids"])
    assert {c["order_item_id"] for c in event["catalogs"]} == set(order["order_item_ids"])
    assert sorted(store.values) == sorted(EMITTED_KEY_PREFIX + c for c in order["catalog_ids"])


async def test_a_poll_larger_than_one_event_is_split_without_repeating_a_catalog(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=5)])
    monkeypatch.setattr(catalog_module, "MAX_CATALOGS_PER_EVENT", 2)
    monkeypatch.setattr(catalog_module, "CATALOG_PAGE_SIZE", 3)
    pause_with(monkeypatch, sim, limit=1)
    store = FakeAssetStateStore()
    trigger = trigger_for(order)
    trigger.asset_state_store = store
    searches_before_event: list[int] = []

    events = await collect(
        trigger,
        lambda event: searches_before_event.append(len(sim.state.requests("POST", "/v0/catalogs/search"))),
    )

    assert [len(event["catalogs"]) for event in events] == [2, 2, 1]
    emitted = [c["catalog_id"] for c in catalogs_in(events)]
    assert sorted(emitted) == sorted(order["catalog_ids"])
    # Bounded: the first full event leaves before the second page is asked for.
    assert searches_before_event[0] == 1
    # The second poll finds nothing new and emits nothing.
    assert len(sim.state.requests("POST", "/v0/catalogs/search")) == 4


def test_payloads_of_both_shapes_are_read() -> None:
    class Event:
        def __init__(self, payload: Any) -> None:
            self.extra = {"from_trigger": True, "payload": payload}

    # [START howto_catalog_payloads]
    new = {"catalogs": [{"catalog_id": "c1", "order_item_id": "oi"}, {"catalog_id": "c2"}]}
    old = {"catalog_id": "c3", "order_item_id": "oi", "task_id": "t", "created_at": "x"}
    # [END howto_catalog_payloads]

    assert [c["catalog_id"] for c in catalogs_in_payload(new)] == ["c1", "c2"]
    assert catalogs_in_payload(old) == [old]
    assert catalogs_in_payload({"catalogs": [{"order_item_id": "oi"}, "c9"]}) == []
    assert catalogs_in_payload(None) == []
    events = [Event(new), Event(old), Event({"catalogs": [{"catalog_id": "c1"}]}), Event("junk")]
    assert [c["catalog_id"] for c in catalogs_of_events(events)] == ["c1", "c2", "c3"]
    assert catalogs_of_events(None) == []


async def test_a_restarted_trigger_emits_nothing_already_emitted(
    timed_sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = fulfilled_order(timed_sim, [recurring_item(timed_sim, occurrences=3)])
    pause_with(monkeypatch, timed_sim, limit=20)
    store = FakeAssetStateStore()

    first = trigger_for(order)
    first.asset_state_store = store
    before_restart = catalogs_in(await collect(first, max_events=2))

    # The triggerer restarts: a new instance from the serialized kwargs, with the same asset's store.
    pause_with(monkeypatch, timed_sim, limit=6)
    second = rebuild_trigger(first)
    second.asset_state_store = store
    after_restart = catalogs_in(await collect(second))

    assert len(before_restart) == 2
    assert len(after_restart) == 1
    emitted = [e["catalog_id"] for e in before_restart + after_restart]
    assert len(set(emitted)) == 3
    assert set(emitted) == delivered_catalog_ids(order["order_item_ids"])
    assert sorted(store.values) == sorted(EMITTED_KEY_PREFIX + cid for cid in emitted)

    # A third start once everything was delivered and emitted: nothing at all.
    pause_with(monkeypatch, timed_sim, limit=2)
    third = rebuild_trigger(first)
    third.asset_state_store = store
    assert await collect(third) == []


async def test_without_a_state_store_it_dedupes_in_memory_and_warns_once(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=2)])
    pause_with(monkeypatch, sim, limit=3)

    events = catalogs_in(await collect(trigger_for(order)))

    assert sorted(e["catalog_id"] for e in events) == sorted(order["catalog_ids"])
    assert logged(capfd).count("remembered in memory only") == 1


async def test_walks_every_page_past_the_api_default_of_two(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=5)])
    assert len(order["catalog_ids"]) == 5
    pause_with(monkeypatch, sim, limit=0)

    events = catalogs_in(await collect(trigger_for(order)))

    assert sorted(e["catalog_id"] for e in events) == sorted(order["catalog_ids"])
    (search,) = sim.state.requests("POST", "/v0/catalogs/search")
    assert search.body == {"order_item_ids": order["order_item_ids"], "offset": 0, "limit": 100}

    # With pages of two the trigger follows the offsets to the end.
    sim.state.clear_records()
    monkeypatch.setattr(catalog_module, "CATALOG_PAGE_SIZE", 2)
    pause_with(monkeypatch, sim, limit=0)
    events = catalogs_in(await collect(trigger_for(order)))
    assert len(events) == 5
    bodies = [r.body for r in sim.state.requests("POST", "/v0/catalogs/search")]
    assert [(b["offset"], b["limit"]) for b in bodies] == [(0, 2), (2, 2), (4, 2)]


async def test_each_order_item_is_searched_and_named_in_its_events(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = fulfilled_order(
        sim, [recurring_item(sim, occurrences=2), {**recurring_item(sim, occurrences=1), "name": "field-43"}]
    )
    pause_with(monkeypatch, sim, limit=0)

    events = catalogs_in(await collect(trigger_for(order)))

    with PixxelHook() as hook:
        by_item = {
            item_id: {c["id"] for c in hook.iter_catalogs(order_item_ids=[item_id])}
            for item_id in order["order_item_ids"]
        }
    assert {item: len(ids) for item, ids in by_item.items()} == dict(
        zip(order["order_item_ids"], [2, 1], strict=True)
    )
    for event in events:
        assert event["catalog_id"] in by_item[event["order_item_id"]]
    assert len(events) == 3


# -- errors: sleep every time, never spin, never stop ------------------------------------------------


async def test_server_errors_sleep_between_polls_then_events_resume(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=1)])
    outage = FaultRule(kind="status", status=503, path="^/v0/catalogs/search$", times=4)
    sim.faults.add(outage)
    pauses = pause_with(monkeypatch, sim, limit=6)

    events = catalogs_in(await collect(trigger_for(order)))

    assert outage.injected_count == 4  # one request per poll: the connection has no hook retries
    assert pauses.seconds == [30.0] * 7
    assert [e["catalog_id"] for e in events] == order["catalog_ids"]
    assert "Catalog search failed" in logged(capfd)


async def test_a_bad_api_key_is_logged_once_and_polled_at_the_interval(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=1)])
    monkeypatch.setenv(
        "AIRFLOW_CONN_PIXXEL_BAD_KEY",
        json.dumps(
            {"conn_type": "pixxel", "host": sim.base_url, "password": "wrong", "extra": {"max_retries": 0}}
        ),
    )
    pauses = pause_with(monkeypatch, sim, limit=5)

    events = await collect(trigger_for(order, pixxel_conn_id="pixxel_bad_key"))

    assert events == []
    assert pauses.seconds == [30.0] * 6
    assert len(sim.state.requests("POST", "/v0/catalogs/search")) == 6
    output = logged(capfd)
    assert output.count("Cannot search the catalogs") == 1
    assert "wrong" not in output


async def test_a_missing_connection_does_not_spin(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    pauses = pause_with(monkeypatch, sim, limit=3)

    events = await collect(
        PixxelNewCatalogTrigger(order_item_ids=["oi-1"], pixxel_conn_id="no_such_conn", poll_interval=45)
    )

    assert events == []
    assert pauses.seconds == [45.0] * 4
    assert logged(capfd).count("no_such_conn") == 1
