"""Visualization, legend, PNG and SLD operators against the simulator over loopback HTTP."""

from __future__ import annotations

import copy
import datetime
import hashlib
import io
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any
from unittest import mock

import fsspec
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import ObjectStoragePath
from airflow.sdk.io import attach
from PIL import Image

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelError, PixxelWaitTimeoutError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.operators.visualizations import (
    PixxelCreateVisualizationOperator,
    PixxelGenerateIndexPngOperator,
    PixxelGenerateSldOperator,
    PixxelUpdateVisualizationMetadataOperator,
    png_dimensions,
)
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.date_forms import documented_date_forms
from tests.operators.adoption import logged, race
from tests.task_runner import DictTaskStateStore, make_context, requires_task_state_store, run_task

FAST = {"poll_interval": 0.01, "timeout": 5.0}
SIMULATOR_PNG_SIZE = (256, 256)


def context(store: DictTaskStateStore | None = None) -> dict[str, Any]:
    return make_context(task_state_store=store or DictTaskStateStore())


@pytest.fixture
def sim(pixxel_simulator: SimulatorHandle, pixxel_connection: str) -> SimulatorHandle:
    return pixxel_simulator


@pytest.fixture
def seeded(sim: SimulatorHandle) -> dict[str, Any]:
    """The seeded processed AOI, its NDVI visualization, that index, and the visualization's dates."""
    visualization = next(iter(sim.state.visualizations.values()))
    return {
        "aoi_id": visualization["aoi_id"],
        "visualization_id": visualization["id"],
        "index_id": visualization["index_id"],
        "dates": sorted(visualization["legend"]),
    }


def create_operator(seeded: dict[str, Any], **overrides: Any) -> PixxelCreateVisualizationOperator:
    arguments: dict[str, Any] = {
        "task_id": "visualize",
        "aoi_id": seeded["aoi_id"],
        "index_id": seeded["index_id"],
        "resolution": 10,
        **FAST,
        **overrides,
    }
    return PixxelCreateVisualizationOperator(**arguments)


def dashed(day: str) -> str:
    return day.replace("_", "-")


# -- create visualization ------------------------------------------------------------------------------


@pytest.mark.parametrize("deferrable", [True, False])
def test_create_visualization_waits_until_it_succeeds(
    sim: SimulatorHandle, seeded: dict[str, Any], deferrable: bool
) -> None:
    sim.state.steps_per_poll = 1

    run = run_task(create_operator(seeded, deferrable=deferrable), context())

    (created,) = sim.state.created("visualization")
    assert run.result == {"aoi_id": seeded["aoi_id"], "visualization_id": created.id, "status": "success"}
    assert len(run.deferrals) == (1 if deferrable else 0)
    (request,) = sim.state.requests("POST", f"/v0/aois/{seeded['aoi_id']}/visualizations")
    assert request.body == {"index_id": seeded["index_id"], "resolution": 10.0}


def test_create_visualization_already_done_at_first_check_does_not_defer(
    sim: SimulatorHandle, seeded: dict[str, Any]
) -> None:
    run = run_task(create_operator(seeded, deferrable=True), context())

    assert run.result["status"] == "success"
    assert run.deferrals == []


@pytest.mark.parametrize("deferrable", [True, False])
def test_create_visualization_failure_fails_the_task(
    sim: SimulatorHandle, seeded: dict[str, Any], deferrable: bool
) -> None:
    sim.state.steps_per_poll = 1
    sim.state.scenarios.fail("visualization")

    with pytest.raises(AirflowFailException, match=r"visualization .* failed with status failed"):
        run_task(create_operator(seeded, deferrable=deferrable), context())


def test_create_visualization_partial_fails_unless_allowed(
    sim: SimulatorHandle, seeded: dict[str, Any]
) -> None:
    sim.state.scenarios.partial("visualization", times=2)

    ndwi = next(index["id"] for index in sim.state.indices.values() if index["name"] == "NDWI")

    with pytest.raises(AirflowFailException, match="allow_partial=True"):
        run_task(create_operator(seeded), context())
    accepted = run_task(create_operator(seeded, index_id=ndwi, allow_partial=True), context())
    assert accepted.result["status"] == "partial_success"


def test_create_visualization_conflict_is_reported_clearly(
    sim: SimulatorHandle, seeded: dict[str, Any]
) -> None:
    run_task(create_operator(seeded), context())

    with pytest.raises(AirflowFailException, match="already has a visualization of index"):
        run_task(create_operator(seeded), context())


@pytest.mark.parametrize("deferrable", [True, False])
def test_reuse_existing_adopts_the_visualization_the_conflict_is_about_and_waits_for_it(
    sim: SimulatorHandle,
    seeded: dict[str, Any],
    deferrable: bool,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    sim.state.steps_per_poll = 1
    first = run_task(create_operator(seeded, wait_for_completion=False), context())
    # Six reads to compute instead of two: still creating when the second run adopts and checks it.
    sim.state.lifecycles[first.result["visualization_id"]].last_step = 6

    second = run_task(create_operator(seeded, reuse_existing=True, deferrable=deferrable), context())

    # The AOI has two NDVI visualizations (the seeded one, at another resolution, and this one): the one
    # adopted is the one the 409 answer names, not merely one of the index.
    assert second.result == {
        "aoi_id": seeded["aoi_id"],
        "visualization_id": first.result["visualization_id"],
        "status": "success",
    }
    assert len(sim.state.created("visualization")) == 1
    posts = sim.state.requests("POST", f"/v0/aois/{seeded['aoi_id']}/visualizations")
    assert [request.status for request in posts] == [201, 409]
    assert len(second.deferrals) == (1 if deferrable else 0)
    assert (
        f"Adopted the visualization of index {seeded['index_id']} on AOI {seeded['aoi_id']} for these "
        f"assets, id {first.result['visualization_id']}" in logged(caplog, capfd)
    )


def test_runs_racing_to_create_the_same_visualization_end_with_one(
    sim: SimulatorHandle, seeded: dict[str, Any]
) -> None:
    runs = race([create_operator(seeded, reuse_existing=True) for _ in range(4)], "create_visualization")

    (created,) = sim.state.created("visualization")
    expected = {"aoi_id": seeded["aoi_id"], "visualization_id": created.id, "status": "success"}
    assert [run.result for run in runs] == [expected] * 4
    posts = sim.state.requests("POST", f"/v0/aois/{seeded['aoi_id']}/visualizations")
    assert sorted(request.status for request in posts) == [201, 409, 409, 409]


def test_a_daily_task_computes_its_visualization_once_and_every_later_run_adopts_it(
    sim: SimulatorHandle, seeded: dict[str, Any]
) -> None:
    ndvi_index_id = seeded["index_id"]
    # [START howto_get_or_create_visualization]
    ndvi = PixxelCreateVisualizationOperator(
        task_id="ndvi",
        aoi_id="{{ ti.xcom_pull(task_ids='field_aoi')['aoi_id'] }}",
        index_id=ndvi_index_id,
        resolution=10,
        reuse_existing=True,  # the first run computes it, every later run adopts it
    )
    # [END howto_get_or_create_visualization]

    results = []
    for day in (1, 2, 3):
        run_context = context() | {
            "logical_date": datetime.datetime(2025, 3, day, tzinfo=datetime.timezone.utc)
        }
        run_context["ti"].xcoms["return_value"] = {"aoi_id": seeded["aoi_id"], "status": "success"}
        task = copy.deepcopy(ndvi)  # each run renders its own copy, as a worker does
        task.render_template_fields(run_context)
        results.append(run_task(task, run_context).result)

    (created,) = sim.state.created("visualization")
    expected = {"aoi_id": seeded["aoi_id"], "visualization_id": created.id, "status": "success"}
    assert results == [expected] * 3


@pytest.mark.parametrize("deferrable", [True, False])
def test_create_visualization_timeout_is_retryable(
    sim: SimulatorHandle, seeded: dict[str, Any], deferrable: bool
) -> None:
    sim.state.scenarios.stall("visualization")

    with pytest.raises(PixxelWaitTimeoutError, match="creating") as raised:
        run_task(create_operator(seeded, timeout=0.1, deferrable=deferrable), context())
    (created,) = sim.state.created("visualization")
    assert created.id in str(raised.value)


@requires_task_state_store
def test_create_visualization_retry_reconnects_instead_of_recomputing(
    sim: SimulatorHandle, seeded: dict[str, Any]
) -> None:
    store = DictTaskStateStore()
    sim.state.steps_per_poll = 1

    first = run_task(create_operator(seeded, wait_for_completion=False), context(store))
    second = run_task(create_operator(seeded), context(store))
    third = run_task(create_operator(seeded), context(store))

    assert len(sim.state.created("visualization")) == 1
    assert (
        first.result["visualization_id"]
        == second.result["visualization_id"]
        == third.result["visualization_id"]
    )
    assert third.result["status"] == "success"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"resolution": -10}, "resolution must be a positive number"),
        ({"aoi_id": ""}, "aoi_id must be a non-empty string"),
        ({"src_asset_ids": []}, "src_asset_ids must name at least one"),
    ],
)
def test_create_visualization_refuses_bad_input_before_any_request(
    sim: SimulatorHandle, seeded: dict[str, Any], overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        run_task(create_operator(seeded, **overrides), context())
    assert sim.state.requests() == []


# -- legend metadata -----------------------------------------------------------------------------------


def metadata_operator(seeded: dict[str, Any], **arguments: Any) -> PixxelUpdateVisualizationMetadataOperator:
    return PixxelUpdateVisualizationMetadataOperator(
        task_id="legend", aoi_id=seeded["aoi_id"], visualization_id=seeded["visualization_id"], **arguments
    )


def test_update_legend_puts_the_classes_keyed_by_visualization_date(
    sim: SimulatorHandle, seeded: dict[str, Any]
) -> None:
    day = seeded["dates"][0]
    classes = [
        {"min": -1, "max": 0.2, "color": "#d7191c", "label": "Bare"},
        {"min": 0.2, "max": 1, "color": "#1a9641", "label": "Vegetated", "area": 12.5},
    ]

    result = run_task(
        metadata_operator(seeded, visualization_mode="theoretical", legend={dashed(day): classes})
    ).result

    assert result == {
        "aoi_id": seeded["aoi_id"],
        "visualization_id": seeded["visualization_id"],
        "visualization_mode": "theoretical",
        "dates": [day],
        "action": "update",
    }
    (request,) = sim.state.requests("PUT")
    assert request.body == {
        "visualization_mode": "theoretical",
        "legend": {day: [{k: v for k, v in c.items() if k != "area"} for c in classes]},
    }
    stored = sim.state.visualizations[seeded["visualization_id"]]["legend"][day]["theoretical"]
    assert [entry["label"] for entry in stored] == ["Bare", "Vegetated"]


def test_update_dynamic_legend_leaves_computed_bounds_out(
    sim: SimulatorHandle, seeded: dict[str, Any]
) -> None:
    day = seeded["dates"][0]
    run_task(
        metadata_operator(
            seeded,
            visualization_mode="dynamic",
            legend={day: [{"min": None, "max": None, "color": "#2b83ba", "label": "Auto"}]},
            dynamic_bins=3,
        )
    )

    (request,) = sim.state.requests("PUT")
    assert request.body["legend"] == {day: [{"color": "#2b83ba", "label": "Auto"}]}
    assert request.body["dynamic_bins"] == 3
    assert len(sim.state.visualizations[seeded["visualization_id"]]["legend"][day]["dynamic"]) == 3


def test_rollback_recomputes_the_legend_for_the_dates(sim: SimulatorHandle, seeded: dict[str, Any]) -> None:
    result = run_task(
        metadata_operator(
            seeded,
            visualization_mode="dynamic",
            index_id=seeded["index_id"],
            dates=[dashed(day) for day in seeded["dates"]],
            rollback=True,
        )
    ).result

    assert result["action"] == "rollback"
    assert result["dates"] == seeded["dates"]
    (request,) = sim.state.requests("PATCH")
    assert request.body == {
        "index_id": seeded["index_id"],
        "dates": seeded["dates"],
        "visualization_mode": "dynamic",
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"visualization_mode": "dynamic", "legend": {"2024_05_06": [{"min": 0, "max": 1}]}},
            "dynamic_bins is",
        ),
        (
            {
                "visualization_mode": "dynamic",
                "legend": {"2024_05_06": [{"min": 0, "max": 1}]},
                "dynamic_bins": 16,
            },
            "from 1 to 15",
        ),
        ({"visualization_mode": "theoretical", "legend": {"2024_05_06": [{"max": 1}]}}, "min is required"),
        (
            {
                "visualization_mode": "theoretical",
                "legend": {"2024_05_06": [{"min": 0, "max": 1, "colour": "red"}]},
            },
            "unknown keys",
        ),
        (
            {
                "visualization_mode": "theoretical",
                "legend": {"2024_05_06": [{"min": 0, "max": 1, "color": "red"}]},
            },
            "#rrggbb",
        ),
        (
            {"visualization_mode": "theoretical", "legend": {"May 6": [{"min": 0, "max": 1}]}},
            "not a valid date",
        ),
        (
            {"visualization_mode": "vivid", "legend": {"2024_05_06": [{"min": 0, "max": 1}]}},
            "visualization_mode",
        ),
        ({"visualization_mode": "dynamic", "rollback": True, "index_id": "x"}, "needs dates"),
        (
            {"visualization_mode": "dynamic", "dates": ["2024-05-06"], "legend": {}, "index_id": "x"},
            "one or the",
        ),
        ({"visualization_mode": "dynamic", "dates": ["2024-05-06"]}, "index_id"),
        ({"visualization_mode": "dynamic"}, "pass legend"),
    ],
)
def test_metadata_refuses_bad_input_before_any_request(
    sim: SimulatorHandle, seeded: dict[str, Any], arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        run_task(metadata_operator(seeded, **arguments))
    assert sim.state.requests() == []


# -- PNG -----------------------------------------------------------------------------------------------


def png_operator(
    seeded: dict[str, Any], destination: Any, **overrides: Any
) -> PixxelGenerateIndexPngOperator:
    arguments: dict[str, Any] = {
        "task_id": "png",
        "aoi_id": seeded["aoi_id"],
        "visualization_id": seeded["visualization_id"],
        "index_id": seeded["index_id"],
        "date": dashed(seeded["dates"][0]),  # what {{ ds }} renders to
        "destination": destination,
        **overrides,
    }
    return PixxelGenerateIndexPngOperator(**arguments)


def test_png_is_written_as_a_valid_png_and_rewritten_atomically(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    day = seeded["dates"][0]
    result = run_task(png_operator(seeded, f"{tmp_path}/")).result

    path = tmp_path / f"{seeded['visualization_id']}_{day}_dynamic.png"
    content = path.read_bytes()
    assert result == {"path": str(path), "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    with Image.open(io.BytesIO(content)) as image:
        image.verify()
        assert image.format == "PNG"
        assert image.size == SIMULATOR_PNG_SIZE
    (request,) = sim.state.requests("POST", "*/png")
    assert request.body == {"index_id": seeded["index_id"], "date": day, "visualization_mode": "dynamic"}

    # Re-running the day replaces the file whole: same content, no temporary file left behind.
    again = run_task(png_operator(seeded, f"{tmp_path}/")).result
    assert again == result
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, f"{path.name}.sha256"]


def test_png_goes_to_a_file_url(sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "ndvi" / "today.png"

    result = run_task(png_operator(seeded, f"file://{target}", visualization_mode="theoretical")).result

    assert result["path"] == str(target)
    assert png_dimensions(target.read_bytes()) == SIMULATOR_PNG_SIZE


@pytest.fixture
def object_storage() -> str:
    """An fsspec in-memory store reachable as ``memory://`` through ObjectStoragePath."""
    attach("memory", fs=fsspec.filesystem("memory"))
    return f"memory://pixxel-tests-{uuid.uuid4().hex}"


def test_png_and_sld_go_to_object_storage(
    sim: SimulatorHandle, seeded: dict[str, Any], object_storage: str
) -> None:
    day = seeded["dates"][0]

    png = run_task(png_operator(seeded, f"{object_storage}/ndvi/")).result
    sld = run_task(sld_operator(seeded, f"{object_storage}/styles/{{mode}}/{{date}}.sld", dates=[day])).result

    png_path = ObjectStoragePath(png["path"])
    expected = ObjectStoragePath(f"{object_storage}/ndvi/{seeded['visualization_id']}_{day}_dynamic.png")
    assert png["path"] == str(expected)
    assert png_dimensions(png_path.read_bytes()) == SIMULATOR_PNG_SIZE
    assert hashlib.sha256(png_path.read_bytes()).hexdigest() == png["sha256"]
    expected_slds = [f"{object_storage}/styles/{mode}/{day}.sld" for mode in ("dynamic", "theoretical")]
    assert sorted(entry["path"] for entry in sld["files"]) == [
        str(ObjectStoragePath(p)) for p in expected_slds
    ]
    for entry in sld["files"]:
        assert ElementTree.fromstring(ObjectStoragePath(entry["path"]).read_bytes()).tag.endswith(
            "StyledLayerDescriptor"
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"code": "internal", "message": "render failed"}}', "not a PNG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "IHDR"),
    ],
)
def test_png_that_is_not_a_png_is_not_written(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path, body: bytes, message: str
) -> None:
    with (
        mock.patch.object(PixxelHook, "generate_index_png", return_value=body),
        pytest.raises(PixxelError, match=message),
    ):
        run_task(png_operator(seeded, tmp_path / "x.png"))
    assert list(tmp_path.iterdir()) == []


def test_png_cut_short_is_refused() -> None:
    whole = io.BytesIO()
    Image.new("RGB", (4, 3)).save(whole, format="PNG")
    assert png_dimensions(whole.getvalue()) == (4, 3)
    with pytest.raises(PixxelError, match="cut"):
        png_dimensions(whole.getvalue()[:-6])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"date": "06/05/2024"}, "not a valid date"),
        ({"visualization_mode": "vivid"}, "visualization_mode"),
        ({"index_id": None}, "index_id"),
        ({"destination": ""}, "destination"),
    ],
)
def test_png_refuses_bad_input_before_any_request(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    arguments = {"destination": tmp_path / "x.png", **overrides}
    with pytest.raises(PixxelConfigError, match=message):
        run_task(png_operator(seeded, **arguments))
    assert sim.state.requests() == []


# -- SLD -----------------------------------------------------------------------------------------------


def sld_operator(seeded: dict[str, Any], destination: Any, **overrides: Any) -> PixxelGenerateSldOperator:
    arguments: dict[str, Any] = {
        "task_id": "sld",
        "aoi_id": seeded["aoi_id"],
        "visualization_id": seeded["visualization_id"],
        "dates": [dashed(day) for day in seeded["dates"]],
        "destination": destination,
        **overrides,
    }
    return PixxelGenerateSldOperator(**arguments)


def test_sld_writes_one_parsable_file_per_mode_and_date(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    manifest = run_task(sld_operator(seeded, f"{tmp_path}/{{mode}}/{{date}}.sld")).result

    expected = {(mode, day) for mode in ("dynamic", "theoretical") for day in seeded["dates"]}
    assert {(entry["mode"], entry["date"]) for entry in manifest["files"]} == expected
    for entry in manifest["files"]:
        path = Path(entry["path"])
        assert path == tmp_path / entry["mode"] / f"{entry['date']}.sld"
        content = path.read_bytes()
        assert entry["size"] == len(content)
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert ElementTree.fromstring(content).tag.endswith("StyledLayerDescriptor")
    (request,) = sim.state.requests("POST", "*/sld")
    assert request.body == {"dates": seeded["dates"], "visualization_modes": ["dynamic", "theoretical"]}


def test_sld_into_a_directory_names_files_by_visualization_mode_and_date(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    day = seeded["dates"][0]

    manifest = run_task(sld_operator(seeded, tmp_path, dates=day, visualization_modes=["dynamic"])).result

    (entry,) = manifest["files"]
    assert entry["path"] == str(tmp_path / f"{seeded['visualization_id']}_dynamic_{day}.sld")


def test_sld_answer_that_is_not_xml_writes_nothing(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    day = seeded["dates"][0]
    answer = {"sld": {"dynamic": {day: "<StyledLayerDescriptor><unclosed>"}}}

    with (
        mock.patch.object(PixxelHook, "generate_visualization_sld", return_value=answer),
        pytest.raises(PixxelError, match="not well-formed XML"),
    ):
        run_task(sld_operator(seeded, tmp_path, dates=[day], visualization_modes=["dynamic"]))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"destination": "/tmp/styles/{date}.sld"}, "same file"),
        ({"destination": "/tmp/styles/{mode}/{day}.sld"}, "not usable"),
        ({"visualization_modes": ["dynamic", "vivid"]}, "visualization_modes"),
        ({"dates": []}, "non-empty list of dates"),
    ],
)
def test_sld_refuses_bad_input_before_any_request(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    arguments = {"destination": tmp_path, **overrides}
    with pytest.raises(PixxelConfigError, match=message):
        run_task(sld_operator(seeded, **arguments))
    assert sim.state.requests() == []


@pytest.mark.parametrize("form", list(documented_date_forms(datetime.date(2024, 5, 6))))
def test_png_accepts_every_documented_date_form(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path, form: str
) -> None:
    day = seeded["dates"][0]
    value = documented_date_forms(datetime.datetime.strptime(day, "%Y_%m_%d").date())[form]

    run_task(png_operator(seeded, f"{tmp_path}/", date=value))

    (request,) = sim.state.requests("POST", "*/png")
    assert request.body["date"] == day
