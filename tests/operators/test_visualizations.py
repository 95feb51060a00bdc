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
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException
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
    assert result == {
        "path": str(path),
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "image_date": dashed(day),
    }
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


# -- date policy: the newest image on or before the date asked for ---------------------------------------


def days_after(day: str, days: int) -> str:
    """``YYYY-MM-DD``, ``days`` after the ``YYYY_MM_DD`` date ``day``."""
    return (datetime.datetime.strptime(day, "%Y_%m_%d").date() + datetime.timedelta(days=days)).isoformat()


def sidecar_digest(path: Any) -> str:
    """The digest recorded in ``<file>.sha256``, after checking it names the file."""
    sidecar = path.parent / f"{path.name}.sha256"
    digest, name = sidecar.read_text().split()
    assert name == path.name
    return digest


def test_on_or_before_renders_the_newest_earlier_image_and_names_it(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    first, second = seeded["dates"][:2]
    asked = days_after(first, 1)
    assert asked < dashed(second), "needs the first two seeded dates more than a day apart"

    result = run_task(
        png_operator(seeded, f"{tmp_path}/", date=asked, date_policy="on_or_before", max_image_age_days=3)
    ).result

    path = tmp_path / f"{seeded['visualization_id']}_{first}_dynamic.png"
    assert result["image_date"] == dashed(first)
    assert result["path"] == str(path)
    assert png_dimensions(path.read_bytes()) == SIMULATOR_PNG_SIZE
    assert sidecar_digest(path) == result["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    (request,) = sim.state.requests("POST", "*/png")
    assert request.body["date"] == first
    assert len(sim.state.requests("GET", "/v0/aois/*/assets")) == 1


def test_on_or_before_a_date_with_its_own_image_renders_that_date(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    day = seeded["dates"][1]

    result = run_task(
        png_operator(
            seeded, f"{tmp_path}/", date=dashed(day), date_policy="on_or_before", max_image_age_days=0
        )
    ).result

    assert result["image_date"] == dashed(day)
    (request,) = sim.state.requests("POST", "*/png")
    assert request.body["date"] == day


def test_on_or_before_skips_when_the_newest_image_is_older_than_the_limit(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    newest = seeded["dates"][-1]
    asked = days_after(newest, 10)

    with pytest.raises(AirflowSkipException) as skipped:
        run_task(
            png_operator(seeded, f"{tmp_path}/", date=asked, date_policy="on_or_before", max_image_age_days=9)
        )

    message = str(skipped.value)
    assert asked in message
    assert dashed(newest) in message
    assert "10 days earlier" in message
    assert "max_image_age_days=9" in message
    assert sim.state.requests("POST", "*/png") == []
    assert list(tmp_path.iterdir()) == []


def test_on_or_before_any_age_renders_the_newest_image_however_old(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    newest = seeded["dates"][-1]

    # A template rendering a null param gives the text "None": no limit, as None itself.
    for max_age in (None, "None"):
        result = run_task(
            png_operator(
                seeded,
                f"{tmp_path}/",
                date=days_after(newest, 400),
                date_policy="on_or_before",
                max_image_age_days=max_age,
            )
        ).result
        assert result["image_date"] == dashed(newest)


def test_on_or_before_skips_a_date_before_the_first_image(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    first = seeded["dates"][0]
    asked = days_after(first, -1)

    # Backfilling before the first capture: nothing to render yet, which is not a failure.
    with pytest.raises(AirflowSkipException) as skipped:
        run_task(png_operator(seeded, f"{tmp_path}/", date=asked, date_policy="on_or_before"))

    assert f"no image on or before {asked}" in str(skipped.value)
    assert f"its first is {dashed(first)}" in str(skipped.value)
    assert sim.state.requests("POST", "*/png") == []


def test_on_or_before_leaves_out_an_image_whose_computation_failed(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    # A partial visualization: its newest date's asset failed, so the date before it is rendered.
    sim.state.scenarios.partial("visualization", times=1)
    created = run_task(create_operator(seeded, allow_partial=True), context()).result
    assets = [
        a
        for a in sim_hook_assets(seeded["aoi_id"])
        if a["asset_type"] == "visualization" and a["visualization_id"] == created["visualization_id"]
    ]
    failed = [a["date"] for a in assets if a["status"] == "failed"]
    assert failed == [dashed(seeded["dates"][-1])]

    result = run_task(
        png_operator(
            seeded,
            f"{tmp_path}/",
            visualization_id=created["visualization_id"],
            date=dashed(seeded["dates"][-1]),
            date_policy="on_or_before",
        )
    ).result

    assert result["image_date"] == dashed(seeded["dates"][-2])


def sim_hook_assets(aoi_id: str) -> list[dict[str, Any]]:
    with PixxelHook() as hook:
        return list(hook.iter_assets(aoi_id))


def test_on_or_before_fails_for_a_visualization_the_aoi_does_not_list(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(PixxelError, match="lists no image of visualization not-a-visualization"):
        run_task(
            png_operator(
                seeded,
                f"{tmp_path}/",
                visualization_id="not-a-visualization",
                date_policy="on_or_before",
            )
        )
    assert sim.state.requests("POST", "*/png") == []


def test_on_or_before_png_and_its_sidecar_go_to_object_storage(
    sim: SimulatorHandle, seeded: dict[str, Any], object_storage: str
) -> None:
    first = seeded["dates"][0]

    png = run_task(
        png_operator(
            seeded,
            f"{object_storage}/ndvi/today.png",
            date=days_after(first, 1),
            date_policy="on_or_before",
        )
    ).result

    path = ObjectStoragePath(png["path"])
    assert png["image_date"] == dashed(first)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == png["sha256"]
    sidecar = ObjectStoragePath(f"{object_storage}/ndvi/today.png.sha256")
    assert sidecar.read_text().split() == [png["sha256"], "today.png"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_image_age_days": 7}, "applies to date_policy='on_or_before' only"),
        ({"date_policy": "on_or_before", "max_image_age_days": -1}, "max_image_age_days"),
        ({"date_policy": "on_or_before", "max_image_age_days": "a week"}, "max_image_age_days"),
        ({"date_policy": "on_or_before", "destination": ""}, "destination"),
    ],
)
def test_date_policy_refuses_bad_input_before_any_request(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    arguments = {"destination": f"{tmp_path}/", **overrides}
    with pytest.raises(PixxelConfigError, match=message):
        run_task(png_operator(seeded, **arguments))
    with pytest.raises(PixxelConfigError, match=message):
        run_task(sld_operator(seeded, **arguments))
    assert sim.state.requests() == []


def test_an_unknown_date_policy_is_refused_when_the_dag_is_built(seeded: dict[str, Any]) -> None:
    with pytest.raises(PixxelConfigError, match="date_policy must be one of exact, on_or_before"):
        png_operator(seeded, "/tmp/x.png", date_policy="nearest")
    with pytest.raises(PixxelConfigError, match="date_policy must be one of exact, on_or_before"):
        sld_operator(seeded, "/tmp/styles/", date_policy="latest")


def test_sld_on_or_before_styles_each_date_with_its_newest_image_and_leaves_out_the_rest(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    first, newest = seeded["dates"][0], seeded["dates"][-1]
    recent, stale, too_early = days_after(first, 1), days_after(newest, 30), days_after(first, -1)

    manifest = run_task(
        sld_operator(
            seeded,
            f"{tmp_path}/{{mode}}/{{date}}.sld",
            dates=[recent, stale, too_early],
            visualization_modes=["dynamic"],
            date_policy="on_or_before",
            max_image_age_days=5,
        )
    ).result

    assert manifest["image_dates"] == {recent: dashed(first), stale: None, too_early: None}
    (entry,) = manifest["files"]
    path = Path(entry["path"])
    assert (entry["date"], path) == (first, tmp_path / "dynamic" / f"{first}.sld")
    assert sidecar_digest(path) == entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    (request,) = sim.state.requests("POST", "*/sld")
    assert request.body == {"dates": [first], "visualization_modes": ["dynamic"]}


def test_sld_on_or_before_skips_when_no_date_has_an_image(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    newest = seeded["dates"][-1]
    asked = [days_after(newest, 30), days_after(newest, 31)]

    with pytest.raises(AirflowSkipException) as skipped:
        run_task(
            sld_operator(seeded, tmp_path, dates=asked, date_policy="on_or_before", max_image_age_days=5)
        )

    for day in asked:
        assert f"on or before {day} is {dashed(newest)}" in str(skipped.value)
    assert sim.state.requests("POST", "*/sld") == []
    assert list(tmp_path.iterdir()) == []


def test_sld_exact_names_the_dates_asked_for_as_the_image_dates(
    sim: SimulatorHandle, seeded: dict[str, Any], tmp_path: Path
) -> None:
    day = seeded["dates"][0]

    manifest = run_task(sld_operator(seeded, tmp_path, dates=[day], visualization_modes=["dynamic"])).result

    assert manifest["image_dates"] == {dashed(day): dashed(day)}
    assert sim.state.requests("GET", "/v0/aois/*/assets") == []
