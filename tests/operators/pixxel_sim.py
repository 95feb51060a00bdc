"""Shared set-up for the order, catalog, store and download tests: a simulator on loopback and helpers.

The ``sim`` fixture (tests/conftest.py) gives each test its own simulator with ``pixxel_default``
pointing at it; ``slow_sim`` is the same simulator moving one status step per read.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.task_runner import DictTaskStateStore, make_context


@pytest.fixture
def slow_sim(sim: SimulatorHandle) -> SimulatorHandle:
    """One status step per read: the first check finds work still running, so waits really wait."""
    sim.state.steps_per_poll = 1
    return sim


def context(store: DictTaskStateStore | None = None) -> dict[str, Any]:
    return make_context(task_state_store=store if store is not None else DictTaskStateStore())


def square(lon: float = 77.0, lat: float = 12.0, size: float = 0.1) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def tasking_window(handle: SimulatorHandle, days_ahead: int = 3, length: int = 5) -> tuple[str, str]:
    """A window valid both for the real clock (checked locally) and the simulator's clock."""
    now = max(datetime.datetime.now(datetime.timezone.utc).timestamp(), handle.state.now())
    start = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).date() + datetime.timedelta(
        days=days_ahead
    )
    return start.isoformat(), (start + datetime.timedelta(days=length)).isoformat()


def tasking_item(handle: SimulatorHandle, **overrides: Any) -> dict[str, Any]:
    start, end = tasking_window(handle)
    item = {
        "name": "field-42",
        "geometry": square(),
        "usecase": "agriculture",
        "bandset": {"bandset_id": next(iter(handle.state.bandsets))},
        "recurrence": "ONCE",
        "start_date": start,
        "end_date": end,
    }
    item.update(overrides)
    return item


def placed_orders(handle: SimulatorHandle) -> int:
    return len(handle.state.orders)


def order_posts(handle: SimulatorHandle) -> list[Any]:
    """The ``POST /v0/orders`` requests that were not dry runs."""
    return [r for r in handle.state.requests("POST", "/v0/orders") if not (r.body or {}).get("dry_run")]


def fulfilled_order(handle: SimulatorHandle, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Place an order through the hook and read its items once (instant pace: they are fulfilled)."""
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook
    from airflow_provider_pixxel.operators.orders import validate_order_item

    project_id = next(iter(handle.state.projects))
    checked = [
        validate_order_item(item, n, default_project_id=project_id)
        for n, item in enumerate(items or [tasking_item(handle)])
    ]
    with PixxelHook() as hook:
        order = hook.create_order(order_items=checked)
        item_ids = [item["id"] for item in order["order_items"]]
        for item_id in item_ids:
            hook.get_order_item(item_id)
        catalogs = list(hook.iter_catalogs(order_item_ids=item_ids))
    handle.state.clear_records()
    return {"order_id": order["id"], "order_item_ids": item_ids, "catalog_ids": [c["id"] for c in catalogs]}


def recurring_item(handle: SimulatorHandle, occurrences: int = 3) -> dict[str, Any]:
    """A monthly tasking item: one capture, so one catalog, per occurrence."""
    item = tasking_item(handle, recurrence="MONTHLY", no_of_occurrences=occurrences)
    del item["end_date"]
    return item
