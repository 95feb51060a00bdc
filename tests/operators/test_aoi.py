"""The AOI operator against the simulator over loopback HTTP; the names its module still exports."""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import (
    PixxelConfigError,
    PixxelExistingResourceError,
    PixxelWaitTimeoutError,
)
from airflow_provider_pixxel.operators.aoi import (
    PixxelArchiveSearchOperator,
    PixxelCreateAOIOperator,
    PixxelCreateIndexOperator,
    PixxelSearchImagesOperator,
)
from airflow_provider_pixxel.simulator.seed import TD2_ID, square
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.operators import imagery
from tests.operators.adoption import logged, race
from tests.operators.imagery import (
    FAST,
    FIELD,
    LAT,
    LON,
    api_requests,
    context,
    project_id,
    td2_item_ids,
)
from tests.task_runner import DictTaskStateStore, requires_task_state_store, run_task

sim = imagery.sim  # the fixture: a fresh simulator behind pixxel_default


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


def test_request_fields_are_templated() -> None:
    expected = {
        PixxelSearchImagesOperator: {"search_start_date", "search_end_date", "satellites", "geometry"},
        PixxelArchiveSearchOperator: {"collections", "bbox", "intersects", "datetime", "start", "end"},
        PixxelCreateAOIOperator: {"name", "satellite_id", "provider", "project_id", "geometry", "item_ids"},
        PixxelCreateIndexOperator: {"name", "expression", "expression_type", "rescale", "satellite_id"},
    }
    for operator, fields in expected.items():
        assert fields <= set(operator.template_fields), operator.__name__


def test_operators_moved_out_of_the_aoi_module_are_still_importable_from_it() -> None:
    from airflow_provider_pixxel.operators import images, indices

    assert PixxelSearchImagesOperator is images.PixxelSearchImagesOperator
    assert PixxelArchiveSearchOperator is images.PixxelArchiveSearchOperator
    assert PixxelCreateIndexOperator is indices.PixxelCreateIndexOperator


# -- get-or-create (reuse_existing) ----------------------------------------------------------------------


def same_field_written_otherwise() -> dict[str, Any]:
    """FIELD wound clockwise, starting at another corner, with a corner added along one edge."""
    ring = FIELD["coordinates"][0][:-1]
    (west, south), (east, _) = ring[0], ring[1]
    rewritten = [ring[2], ring[1], [(west + east) / 2, south], ring[0], ring[3]]
    return {"type": "Polygon", "coordinates": [[*rewritten, rewritten[0]]]}


@pytest.mark.parametrize("deferrable", [True, False])
def test_reuse_existing_adopts_the_aoi_of_that_name_and_waits_until_it_is_processed(
    sim: SimulatorHandle,
    deferrable: bool,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    sim.state.steps_per_poll = 1
    first = run_task(create_aoi_operator(sim, wait_for_completion=False), context())
    # Four reads to process instead of two: still running when the second run adopts and first checks it.
    sim.state.lifecycles[first.result["aoi_id"]].last_step = 4
    caplog.set_level(logging.INFO)

    second = run_task(
        create_aoi_operator(
            sim, reuse_existing=True, geometry=same_field_written_otherwise(), deferrable=deferrable
        ),
        context(),
    )

    assert second.result == {"aoi_id": first.result["aoi_id"], "status": "success"}
    assert len(sim.state.created("aoi")) == 1
    assert len(api_requests(sim, "POST", "/v0/aois")) == 1  # found by name: no create sent
    assert len(second.deferrals) == (1 if deferrable else 0)
    assert len(api_requests(sim, "GET", "/v0/aoi/*")) >= 2  # waited: the first check found it running
    log = logged(caplog, capfd)
    assert "instead of creating it (reuse_existing=True; status running)" in log
    assert (
        f"Adopted the AOI named 'field-42' in project {project_id(sim)}, id {first.result['aoi_id']}" in log
    )


def test_reuse_existing_refuses_a_same_named_aoi_over_another_area_unless_told_to_adopt(
    sim: SimulatorHandle, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    first = run_task(create_aoi_operator(sim), context())
    elsewhere = {"type": "Polygon", "coordinates": square(LON + 0.01, LAT, 0.05)}

    with pytest.raises(PixxelExistingResourceError) as raised:
        run_task(create_aoi_operator(sim, reuse_existing=True, geometry=elsewhere), context())
    message = str(raised.value)
    assert f"An AOI named 'field-42' already exists in project {project_id(sim)}" in message
    assert f"(id {first.result['aoi_id']})" in message
    assert f"bbox {LON - 0.05 + 0.01:.6f}" in message  # the requested area ...
    assert f"bbox {LON - 0.05:.6f}" in message  # ... and the existing one
    assert "on_geometry_mismatch='adopt'" in message
    assert isinstance(raised.value, AirflowFailException)  # renaming fixes it, retrying does not

    caplog.set_level(logging.WARNING)
    adopted = run_task(
        create_aoi_operator(sim, reuse_existing=True, geometry=elsewhere, on_geometry_mismatch="adopt"),
        context(),
    )
    assert adopted.result["aoi_id"] == first.result["aoi_id"]
    assert "adopting it as on_geometry_mismatch='adopt' says" in logged(caplog, capfd)
    assert len(sim.state.created("aoi")) == 1


def test_reuse_existing_adopts_only_an_aoi_of_the_same_project(sim: SimulatorHandle) -> None:
    other_project = list(sim.state.projects)[1]
    elsewhere = run_task(create_aoi_operator(sim, project_id=other_project), context())

    here = run_task(create_aoi_operator(sim, reuse_existing=True), context())

    assert here.result["aoi_id"] != elsewhere.result["aoi_id"]
    assert sim.state.aois[here.result["aoi_id"]]["project_id"] == project_id(sim)


def test_on_geometry_mismatch_takes_fail_or_adopt(sim: SimulatorHandle) -> None:
    with pytest.raises(PixxelConfigError, match="on_geometry_mismatch must be one of 'fail', 'adopt'"):
        create_aoi_operator(sim, reuse_existing=True, on_geometry_mismatch="ignore")


def test_runs_racing_to_create_the_same_aoi_end_with_one_aoi(sim: SimulatorHandle) -> None:
    runs = race([create_aoi_operator(sim, reuse_existing=True) for _ in range(4)], "create_aoi")

    (created,) = sim.state.created("aoi")
    assert [run.result for run in runs] == [{"aoi_id": created.id, "status": "success"}] * 4
    # Every run sent its create; the service let one through and each loser adopted the winner.
    assert sorted(request.status for request in api_requests(sim, "POST", "/v0/aois")) == [201, 409, 409, 409]


def test_a_daily_task_creates_its_aoi_once_and_every_later_run_adopts_it(sim: SimulatorHandle) -> None:
    item_ids, project = td2_item_ids(sim), project_id(sim)
    # [START howto_get_or_create_aoi]
    field_aoi = PixxelCreateAOIOperator(
        task_id="field_aoi",
        name="field-42",  # one name for every run: no {{ ds_nodash }} in it
        description="Field 42, monitored daily",
        satellite_id=TD2_ID,
        provider="pixxel",
        geometry=FIELD,
        item_ids=item_ids,
        project_id=project,
        reuse_existing=True,  # the first run creates the AOI, every later run adopts it
        on_geometry_mismatch="fail",  # the default: a same-named AOI over another area fails the task
    )
    # [END howto_get_or_create_aoi]

    days = [datetime.datetime(2025, 3, day, tzinfo=datetime.timezone.utc) for day in (1, 2, 3)]
    results = [run_task(field_aoi, context() | {"logical_date": day}).result for day in days]

    (created,) = sim.state.created("aoi")
    assert results == [{"aoi_id": created.id, "status": "success"}] * 3
    assert len(api_requests(sim, "POST", "/v0/aois")) == 1
