"""What the AOI, image search and index operator tests share: the seeded field, its images, a simulator."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_pixxel.simulator.seed import REGIONS, TD2_ID, square
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.task_runner import DictTaskStateStore, make_context

_, LON, LAT = REGIONS[0]
FIELD = {"type": "Polygon", "coordinates": square(LON, LAT, 0.05)}
TD2 = [{"collection_id": "pixxel-td2", "satellite_id": TD2_ID}]
FAST = {"poll_interval": 0.01, "timeout": 5.0}


def context(store: DictTaskStateStore | None = None) -> dict[str, Any]:
    return make_context(task_state_store=store or DictTaskStateStore())


@pytest.fixture
def sim(pixxel_simulator: SimulatorHandle, pixxel_connection: str) -> SimulatorHandle:
    return pixxel_simulator


def project_id(sim: SimulatorHandle) -> str:
    return next(iter(sim.state.projects))


def td2_item_ids(sim: SimulatorHandle) -> list[str]:
    """The seeded TD2 images over FIELD (the first region)."""
    return [
        item_id
        for item_id, item in sim.state.items.items()
        if item["collection"] == "pixxel-td2" and abs(item["bbox"][0] - (LON - 0.06)) < 1e-6
    ]


def api_requests(sim: SimulatorHandle, method: str | None = None, path: str | None = None) -> list[Any]:
    return sim.state.requests(method, path)
