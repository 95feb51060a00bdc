"""Image search, archive search, AOI and index operators against the simulator over loopback HTTP."""

from __future__ import annotations

import datetime
import json
from typing import Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import DAG

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelWaitTimeoutError
from airflow_provider_pixxel.operators.aoi import (
    PixxelArchiveSearchOperator,
    PixxelCreateAOIOperator,
    PixxelCreateIndexOperator,
    PixxelSearchImagesOperator,
)
from airflow_provider_pixxel.simulator.seed import REGIONS, SENTINEL2_ID, TD2_ID, square
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.task_runner import DictTaskStateStore, make_context, requires_task_state_store, run_task

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


def create_aoi_operator(sim: SimulatorHandle, **overrides: Any) -> PixxelCreateAOIOperator:
    arguments: dict[str, Any] = {
        "task_id": "create_aoi",
        "name": "field-42",
        "description": "Field 42",
        "satellite_id": TD2_ID,
        "provider": "pixxel",
        "geometry": FIELD,
        "item_ids": td2_item_ids(sim),
        "project_id": project_id(sim),
        **FAST,
    }
    arguments.update(overrides)
    return PixxelCreateAOIOperator(**arguments)


def api_requests(sim: SimulatorHandle, method: str | None = None, path: str | None = None) -> list[Any]:
    return sim.state.requests(method, path)


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


# -- create AOI ------------------------------------------------------------------------------------------


def test_create_aoi_defers_and_succeeds_with_the_connection_project(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = json.loads(sim.airflow_connection_json())
    connection["extra"] = json.dumps({"project_id": project_id(sim)})
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))
    sim.state.steps_per_poll = 1  # still running at the first check, so the task defers
    clockwise = {"type": "Polygon", "coordinates": [list(reversed(FIELD["coordinates"][0]))]}

    run = run_task(create_aoi_operator(sim, geometry=clockwise, project_id=None, deferrable=True), context())

    (created,) = sim.state.created("aoi")
    assert run.result == {"aoi_id": created.id, "status": "success"}
    assert len(run.deferrals) == 1
    (request,) = api_requests(sim, "POST", "/v0/aois")
    assert request.body["project_id"] == project_id(sim)
    assert request.body["geometry"]["coordinates"] == FIELD["coordinates"]  # rewound counter-clockwise


def test_create_aoi_takes_values_rendered_as_text(sim: SimulatorHandle) -> None:
    # Without render_template_as_native_obj, templated lists and dicts reach the operator as text.
    op = create_aoi_operator(sim, item_ids=str(td2_item_ids(sim)), geometry=json.dumps(FIELD))

    run_task(op, context())

    (request,) = api_requests(sim, "POST", "/v0/aois")
    assert request.body["item_ids"] == td2_item_ids(sim)
    assert request.body["geometry"] == FIELD


def test_create_aoi_waits_inline_when_not_deferrable(sim: SimulatorHandle) -> None:
    sim.state.steps_per_poll = 1
    run = run_task(create_aoi_operator(sim, deferrable=False), context())

    assert run.result["status"] == "success"
    assert run.deferrals == []
    assert len(api_requests(sim, "GET", "/v0/aoi/*")) >= 2


def test_create_aoi_already_done_at_first_check_does_not_defer(sim: SimulatorHandle) -> None:
    run = run_task(create_aoi_operator(sim, deferrable=True), context())

    assert run.result["status"] == "success"
    assert run.deferrals == []


@pytest.mark.parametrize("deferrable", [True, False])
def test_create_aoi_failure_fails_the_task_naming_the_aoi_and_status(
    sim: SimulatorHandle, deferrable: bool
) -> None:
    sim.state.steps_per_poll = 1
    sim.state.scenarios.fail("aoi")

    # atlas.AOI carries no reason field, so the remote status is what the error can name.
    with pytest.raises(AirflowFailException, match=r"AOI aoi_id=\S+ failed with status failed") as raised:
        run_task(create_aoi_operator(sim, deferrable=deferrable), context())
    (created,) = sim.state.created("aoi")
    assert created.id in str(raised.value)


def test_create_aoi_partial_fails_unless_allowed(sim: SimulatorHandle) -> None:
    sim.state.scenarios.partial("aoi", times=2)

    with pytest.raises(AirflowFailException, match="allow_partial=True"):
        run_task(create_aoi_operator(sim), context())
    run = run_task(create_aoi_operator(sim, name="field-43", allow_partial=True), context())
    assert run.result["status"] == "partial_success"


@pytest.mark.parametrize("deferrable", [True, False])
def test_create_aoi_timeout_is_retryable_and_names_the_aoi(sim: SimulatorHandle, deferrable: bool) -> None:
    sim.state.scenarios.stall("aoi")

    with pytest.raises(PixxelWaitTimeoutError) as raised:
        run_task(create_aoi_operator(sim, timeout=0.1, deferrable=deferrable), context())

    (created,) = sim.state.created("aoi")
    assert created.id in str(raised.value)
    assert "running" in str(raised.value)
    assert not isinstance(raised.value, AirflowFailException)


@requires_task_state_store
def test_create_aoi_retry_reuses_the_aoi_instead_of_creating_another(sim: SimulatorHandle) -> None:
    store = DictTaskStateStore()
    sim.state.steps_per_poll = 1

    first = run_task(create_aoi_operator(sim, wait_for_completion=False), context(store))
    second = run_task(create_aoi_operator(sim), context(store))
    third = run_task(create_aoi_operator(sim), context(store))

    assert len(sim.state.created("aoi")) == 1
    assert len(api_requests(sim, "POST", "/v0/aois")) == 1
    assert first.result["aoi_id"] == second.result["aoi_id"] == third.result["aoi_id"]
    assert second.result["status"] == third.result["status"] == "success"


def test_create_aoi_duplicate_name_is_reported_clearly(sim: SimulatorHandle) -> None:
    run_task(create_aoi_operator(sim), context())

    with pytest.raises(AirflowFailException, match="An AOI named 'field-42' already exists"):
        run_task(create_aoi_operator(sim), context())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "  "}, "name must be a non-empty string"),
        ({"item_ids": []}, "item_ids must name at least one"),
        ({"geometry": {"type": "Point", "coordinates": [77.5, 12.9]}}, "geometry"),
        (
            {
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [square(LON, LAT, 0.05), square(LON + 1, LAT, 0.05)],
                }
            },
            "geometry",
        ),
    ],
)
def test_create_aoi_refuses_bad_input_before_any_request(
    sim: SimulatorHandle, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        run_task(create_aoi_operator(sim, **overrides), context())
    assert api_requests(sim) == []


# -- create index --------------------------------------------------------------------------------------


def index_operator(**overrides: Any) -> PixxelCreateIndexOperator:
    arguments: dict[str, Any] = {
        "task_id": "index",
        "name": "red-edge",
        "description": "Red edge ratio",
        "expression": "(B08-B05)/(B08+B05)",
        "expression_type": "index",
        "rescale": [-1, 1],
        "colormap": "rdylgn",
        "satellite_id": SENTINEL2_ID,
        **overrides,
    }
    return PixxelCreateIndexOperator(**arguments)


def test_create_index_returns_the_new_id(sim: SimulatorHandle) -> None:
    index_id = run_task(index_operator()).result

    assert sim.state.indices[index_id]["name"] == "red-edge"


def test_create_index_duplicate_name_fails_clearly_or_is_reused(sim: SimulatorHandle) -> None:
    ndvi = next(index for index in sim.state.indices.values() if index["name"] == "NDVI")
    duplicate = {"name": "NDVI", "expression": "(B08 - B04) / (B08 + B04)"}

    with pytest.raises(AirflowFailException, match=f"already exists \\(id {ndvi['id']}\\).*reuse_existing"):
        run_task(index_operator(**duplicate))
    assert run_task(index_operator(**duplicate, reuse_existing=True)).result == ndvi["id"]
    with pytest.raises(AirflowFailException, match="differs"):
        run_task(index_operator(name="NDVI", expression="B08/B04", reuse_existing=True))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"expression_type": "ratio"}, "expression_type must be one of"),
        ({"rescale": [1, 1]}, "rescale min must be below max"),
        ({"rescale": [0, 0.5]}, "whole numbers"),
        ({"expression": ""}, "expression must be a non-empty string"),
    ],
)
def test_create_index_refuses_bad_input_before_any_request(
    sim: SimulatorHandle, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        run_task(index_operator(**overrides))
    assert api_requests(sim) == []


def test_request_fields_are_templated() -> None:
    expected = {
        PixxelSearchImagesOperator: {"search_start_date", "search_end_date", "satellites", "geometry"},
        PixxelArchiveSearchOperator: {"collections", "bbox", "intersects", "datetime", "start", "end"},
        PixxelCreateAOIOperator: {"name", "satellite_id", "provider", "project_id", "geometry", "item_ids"},
        PixxelCreateIndexOperator: {"name", "expression", "expression_type", "rescale", "satellite_id"},
    }
    for operator, fields in expected.items():
        assert fields <= set(operator.template_fields), operator.__name__
