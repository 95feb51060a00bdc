"""Image search and STAC archive search against the simulator over loopback HTTP."""

from __future__ import annotations

import datetime
from typing import Any
from unittest import mock

import pytest
from airflow.sdk import DAG

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.operators.images import PixxelArchiveSearchOperator, PixxelSearchImagesOperator
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.operators import imagery
from tests.operators.imagery import (
    FIELD,
    TD2,
    api_requests,
)
from tests.task_runner import run_task

sim = imagery.sim  # the fixture: a fresh simulator behind pixxel_default

# -- image search --------------------------------------------------------------------------------------


def test_search_returns_item_ids_and_sends_search_timestamps(sim: SimulatorHandle) -> None:
    op = PixxelSearchImagesOperator(
        task_id="search",
        start_date="2020-01-01",
        end_date="2026_01_01",
        satellites=TD2,
        geometry={"type": "Feature", "properties": {}, "geometry": FIELD},
        filters={"eo:cloud_cover": [0, 100]},
        limit=50,
    )
    ids = run_task(op).result

    assert ids, "the seeded TD2 images over the field should be found"
    assert set(ids) <= set(sim.state.items)
    (search,) = api_requests(sim, "POST", "/v0/search")
    assert search.body["start_date"] == "2020-01-01T00:00:00.000Z"
    assert search.body["end_date"] == "2026-01-01T23:59:59.999Z"
    assert search.body["geometry"]["type"] == "Polygon"
    assert search.body["filters"] == [{"id": "eo:cloud_cover", "min": 0, "max": 100}]
    assert search.body["limit"] == 50


def test_search_caps_the_returned_ids_with_a_warning(sim: SimulatorHandle) -> None:
    op = PixxelSearchImagesOperator(
        task_id="search",
        start_date="2020-01-01",
        end_date="2026-01-01",
        satellites=TD2,
        geometry=FIELD,
        max_returned_ids=1,
    )
    with mock.patch.object(PixxelSearchImagesOperator, "log", new_callable=mock.PropertyMock) as log:
        ids = run_task(op).result

    assert len(ids) == 1
    warning = log.return_value.warning
    assert warning.called
    assert "max_returned_ids" in warning.call_args.args[0]


def test_search_does_not_take_the_task_schedule_bounds(sim: SimulatorHandle) -> None:
    op = PixxelSearchImagesOperator(
        task_id="search", start_date="2020-01-01", end_date="2026-01-01", satellites=TD2, geometry=FIELD
    )
    # BaseOperator.start_date is the scheduler's datetime; the search window must not overwrite it.
    assert op.start_date is None
    assert op.search_start_date == "2020-01-01"
    assert "search_start_date" in op.template_fields


def test_search_warns_when_the_window_came_from_default_args(sim: SimulatorHandle) -> None:
    dag_start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    with DAG("search", schedule=None, default_args={"start_date": dag_start}):
        op = PixxelSearchImagesOperator(
            task_id="search", end_date="2026-01-01", satellites=TD2, geometry=FIELD
        )

    assert op.search_start_date == dag_start
    with mock.patch.object(PixxelSearchImagesOperator, "log", new_callable=mock.PropertyMock) as log:
        run_task(op)
    warnings = [call.args for call in log.return_value.warning.call_args_list]
    assert any("default_args" in args[0] and args[1] == "start_date" for args in warnings)
    (search,) = api_requests(sim, "POST", "/v0/search")
    assert search.body["start_date"] == "2024-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"start_date": "2024-05-02", "end_date": "2024-05-01"}, "before start_date"),
        ({"end_date": "yesterday"}, "end_date"),
        ({"satellites": [{"collection_id": "pixxel-td2"}]}, "satellites[0].satellite_id"),
        ({"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}}, "geometry"),
        ({"limit": 0}, "limit"),
        ({"filters": [{"id": "eo:cloud_cover", "min": 50, "max": 10}]}, "greater than max"),
    ],
)
def test_search_refuses_bad_input_before_any_request(
    sim: SimulatorHandle, overrides: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {
        "task_id": "search",
        "start_date": "2024-01-01",
        "end_date": "2024-02-01",
        "satellites": TD2,
        "geometry": FIELD,
        **overrides,
    }
    with pytest.raises(PixxelConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run_task(PixxelSearchImagesOperator(**arguments))
    assert api_requests(sim) == []


# -- archive search ------------------------------------------------------------------------------------


def test_archive_search_returns_the_least_cloudy_items_across_pages(sim: SimulatorHandle) -> None:
    collections = ["pixxel-td1", "pixxel-td2"]
    op = PixxelArchiveSearchOperator(
        task_id="archive", collections=collections, start="2020-01-01", end="2030-12-31", limit=3, max_items=4
    )
    ids = run_task(op).result

    candidates = [item for item in sim.state.items.values() if item["collection"] in collections]
    expected = [
        item["id"] for item in sorted(candidates, key=lambda item: item["properties"]["eo:cloud_cover"])[:4]
    ]
    assert ids == expected
    pages = api_requests(sim, "POST", "/v0/archives/search")
    # Every page was walked (the best items can be on any of them), three items at a time.
    assert [page.body["offset"] for page in pages] == list(range(0, 3 * len(pages), 3))
    assert 3 * len(pages) >= len(candidates)
    assert pages[0].body["datetime"] == "2020-01-01T00:00:00.000Z/2030-12-31T23:59:59.999Z"


def test_archive_search_stops_paging_once_the_cap_is_exceeded(sim: SimulatorHandle) -> None:
    op = PixxelArchiveSearchOperator(task_id="archive", limit=2, max_returned_ids=3)
    ids = run_task(op).result

    assert len(ids) == 3
    # Two pages of two prove there are more than three; the other pages are never fetched.
    assert len(api_requests(sim, "POST", "/v0/archives/search")) == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"bbox": [77.5, 12.9, 77.6, 13.0], "intersects": FIELD}, "bbox and intersects"),
        ({"datetime": "2024-01-01T00:00:00Z/..", "start": "2024-01-01"}, "either datetime or start/end"),
        ({"bbox": [77.5, 13.0, 77.6, 12.9]}, "south <= north"),
        ({"start": "2024-02-01", "end": "2024-01-01"}, "before"),
        ({"sortby": [{"field": "datetime", "direction": "up"}]}, "asc or desc"),
        ({"max_items": 0}, "max_items"),
    ],
)
def test_archive_search_refuses_bad_input_before_any_request(
    sim: SimulatorHandle, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        run_task(PixxelArchiveSearchOperator(task_id="archive", **arguments))
    assert api_requests(sim) == []
