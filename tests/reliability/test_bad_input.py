"""Bad input is refused before anything is sent: one table of invalid arguments and connections.

Each row builds an operator, sensor or connection the way a DAG author might get it wrong, runs it as
Airflow would (``run_task``), and checks three things: the error is a ``PixxelConfigError`` (a
``ValueError``, so Airflow shows it as a plain configuration mistake), its text names the field and
says how to fix it, and the simulator recorded no request at all.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.operators.aoi import (
    PixxelCreateAOIOperator,
    PixxelSearchImagesOperator,
)
from airflow_provider_pixxel.operators.catalog import PixxelCreateDeliveryOperator
from airflow_provider_pixxel.operators.downloads import (
    PixxelDownloadAssetsOperator,
    PixxelDownloadJobOperator,
)
from airflow_provider_pixxel.operators.insights import PixxelCreateInsightsOperator
from airflow_provider_pixxel.operators.jobs import PixxelRunJobOperator
from airflow_provider_pixxel.operators.orders import PixxelCreateOrderOperator
from airflow_provider_pixxel.operators.stores import PixxelCreateStoreOperator
from airflow_provider_pixxel.operators.visualizations import (
    PixxelGenerateIndexPngOperator,
    PixxelGenerateSldOperator,
    PixxelUpdateVisualizationMetadataOperator,
)
from airflow_provider_pixxel.sensors.jobs import PixxelJobSensor
from airflow_provider_pixxel.sensors.orders import PixxelOrderSensor
from airflow_provider_pixxel.sensors.visualizations import PixxelVisualizationSensor
from airflow_provider_pixxel.simulator.seed import REGIONS, TD2_ID, square
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.task_runner import DictTaskStateStore, make_context, run_task

_, LON, LAT = REGIONS[0]
FAST: dict[str, Any] = {"poll_interval": 0.01, "timeout": 5.0}
RASTER = {
    "stac_url": "https://stac.pixxel.space/collections/pixxel-td2/items/TD2_1",
    "asset_source": {"id": "a1", "type": "raw_mosaic"},
}


@dataclass
class Env:
    """What a row needs to build its task: the simulator, a scratch directory, env overrides."""

    sim: SimulatorHandle
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def project_id(self) -> str:
        return next(iter(self.sim.state.projects))

    @property
    def workflow_id(self) -> str:
        return next(iter(self.sim.state.workflows))

    @property
    def visualization(self) -> dict[str, Any]:
        return next(iter(self.sim.state.visualizations.values()))

    def use_connection(self, **fields: Any) -> None:
        """Point ``pixxel_default`` at a connection with these fields instead of the good one."""
        connection = {"conn_type": "pixxel", "host": self.sim.base_url, "password": self.sim.api_key}
        connection.update(fields)
        self.monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))


def polygon(ring: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring]}


FIELD = {"type": "Polygon", "coordinates": square(LON, LAT, 0.05)}
OPEN_RING = polygon([[LON, LAT], [LON + 0.05, LAT], [LON + 0.05, LAT + 0.05], [LON, LAT + 0.05]])
# A field near Hefei (lon 117.2, lat 31.8) written (lat, lon): 117.2 is not a latitude.
SWAPPED = polygon([[31.8, 117.2], [31.85, 117.2], [31.85, 117.25], [31.8, 117.25], [31.8, 117.2]])
OUT_OF_RANGE = polygon([[181.0, 10.0], [181.5, 10.0], [181.5, 10.5], [181.0, 10.5], [181.0, 10.0]])
BOWTIE = polygon([[LON, LAT], [LON + 0.05, LAT + 0.05], [LON + 0.05, LAT], [LON, LAT + 0.05], [LON, LAT]])
EMPTY_POLYGON: dict[str, Any] = {"type": "Polygon", "coordinates": []}
LINE = {"type": "LineString", "coordinates": [[LON, LAT], [LON + 0.05, LAT]]}


def days_from_today(days: int) -> str:
    return (datetime.date.today() + datetime.timedelta(days=days)).isoformat()


def create_aoi(env: Env, **overrides: Any) -> PixxelCreateAOIOperator:
    arguments: dict[str, Any] = {
        "task_id": "create_aoi",
        "name": "field-42",
        "description": "Field 42",
        "satellite_id": TD2_ID,
        "provider": "pixxel",
        "geometry": FIELD,
        "item_ids": ["item-1"],
        "project_id": env.project_id,
        **FAST,
        **overrides,
    }
    return PixxelCreateAOIOperator(**arguments)


def search_images(env: Env, **overrides: Any) -> PixxelSearchImagesOperator:
    arguments: dict[str, Any] = {
        "task_id": "search",
        "start_date": "2024-01-01",
        "end_date": "2024-06-30",
        "satellites": [{"collection_id": "pixxel-td2", "satellite_id": TD2_ID}],
        "geometry": FIELD,
        **overrides,
    }
    return PixxelSearchImagesOperator(**arguments)


def tasking_item(env: Env, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": "field-42",
        "geometry": FIELD,
        "usecase": "agriculture",
        "bandset": {"bandset_id": next(iter(env.sim.state.bandsets))},
        "recurrence": "ONCE",
        "start_date": days_from_today(3),
        "end_date": days_from_today(8),
    }
    item.update(overrides)
    return item


def create_order(env: Env, item: dict[str, Any] | None = None, **overrides: Any) -> PixxelCreateOrderOperator:
    arguments: dict[str, Any] = {
        "task_id": "order",
        "order_items": [item if item is not None else tasking_item(env)],
        "max_cost": 10_000,
        **FAST,
        **overrides,
    }
    return PixxelCreateOrderOperator(**arguments)


def run_job(env: Env, **overrides: Any) -> PixxelRunJobOperator:
    arguments: dict[str, Any] = {"task_id": "run_job", "workflow_id": env.workflow_id, **FAST, **overrides}
    return PixxelRunJobOperator(**arguments)


def create_insights(env: Env, **overrides: Any) -> PixxelCreateInsightsOperator:
    arguments: dict[str, Any] = {
        "task_id": "insight",
        "aoi_id": env.visualization["aoi_id"],
        "block": {"name": "waterbodydetection", "version": "2.0.1"},
        "input_values": {"input_image": RASTER, "threshold": 0.3},
        "project_id": env.project_id,
        **FAST,
        **overrides,
    }
    return PixxelCreateInsightsOperator(**arguments)


def update_metadata(env: Env, **overrides: Any) -> PixxelUpdateVisualizationMetadataOperator:
    visualization = env.visualization
    arguments: dict[str, Any] = {
        "task_id": "metadata",
        "aoi_id": visualization["aoi_id"],
        "visualization_id": visualization["id"],
        "visualization_mode": "dynamic",
        "dynamic_bins": 5,
        "dates": [sorted(visualization["legend"])[0].replace("_", "-")],
        **overrides,
    }
    return PixxelUpdateVisualizationMetadataOperator(**arguments)


def index_png(env: Env, **overrides: Any) -> PixxelGenerateIndexPngOperator:
    visualization = env.visualization
    arguments: dict[str, Any] = {
        "task_id": "png",
        "aoi_id": visualization["aoi_id"],
        "visualization_id": visualization["id"],
        "index_id": visualization["index_id"],
        "date": sorted(visualization["legend"])[0].replace("_", "-"),
        "destination": str(env.tmp_path / "ndvi.png"),
        **overrides,
    }
    return PixxelGenerateIndexPngOperator(**arguments)


def sld(env: Env, **overrides: Any) -> PixxelGenerateSldOperator:
    visualization = env.visualization
    arguments: dict[str, Any] = {
        "task_id": "sld",
        "aoi_id": visualization["aoi_id"],
        "visualization_id": visualization["id"],
        "dates": [sorted(visualization["legend"])[0].replace("_", "-")],
        "destination": str(env.tmp_path),
        **overrides,
    }
    return PixxelGenerateSldOperator(**arguments)


def download_assets(env: Env, **overrides: Any) -> PixxelDownloadAssetsOperator:
    arguments: dict[str, Any] = {
        "task_id": "download_assets",
        "aoi_id": env.visualization["aoi_id"],
        "asset_ids": ["asset-1"],
        "destination": str(env.tmp_path),
        **FAST,
        **overrides,
    }
    return PixxelDownloadAssetsOperator(**arguments)


def download_job(env: Env, **overrides: Any) -> PixxelDownloadJobOperator:
    arguments: dict[str, Any] = {
        "task_id": "download_job",
        "workflow_id": env.workflow_id,
        "job_id": "job-1",
        "destination": str(env.tmp_path),
        **FAST,
        **overrides,
    }
    return PixxelDownloadJobOperator(**arguments)


def job_sensor(env: Env, **overrides: Any) -> PixxelJobSensor:
    arguments: dict[str, Any] = {
        "task_id": "wait_job",
        "workflow_id": env.workflow_id,
        "job_id": "job-1",
        "poke_interval": 0.01,
        "timeout": 5,
        **overrides,
    }
    return PixxelJobSensor(**arguments)


def with_connection(**fields: Any) -> Callable[[Env], Any]:
    """A row whose task is fine but whose connection is not."""

    def build(env: Env) -> Any:
        env.use_connection(**fields)
        return job_sensor(env)

    return build


def store(env: Env, **overrides: Any) -> PixxelCreateStoreOperator:
    env.monkeypatch.setenv(
        "AIRFLOW_CONN_BUCKET",
        json.dumps({"conn_type": "aws", "login": "AKIAEXAMPLE", "password": "bucket-secret"}),
    )
    arguments: dict[str, Any] = {
        "task_id": "create_store",
        "name": "agri-deliveries",
        "type": "s3",
        "configs": {"bucket": "agri", "region": "ap-south-1"},
        "secrets_conn_id": "bucket",
        **overrides,
    }
    return PixxelCreateStoreOperator(**arguments)


@dataclass(frozen=True)
class BadInput:
    """One invalid input: how to build it, the field the error must name, and a word of the fix."""

    case: str
    build: Callable[[Env], Any]
    field: str
    fix: str


def _without_project(env: Env, factory: Callable[..., Any]) -> Any:
    env.use_connection()  # no project_id extra: the task must name one itself
    return factory(env, project_id=None)


BAD_INPUTS = [
    # -- geometry ------------------------------------------------------------------------------------
    BadInput("aoi open ring", lambda env: create_aoi(env, geometry=OPEN_RING), "geometry", "close"),
    BadInput("aoi swapped lat/lon", lambda env: create_aoi(env, geometry=SWAPPED), "geometry", "swap"),
    BadInput("aoi longitude > 180", lambda env: create_aoi(env, geometry=OUT_OF_RANGE), "geometry", "180"),
    BadInput("aoi self-intersecting", lambda env: create_aoi(env, geometry=BOWTIE), "geometry", "cross"),
    BadInput("aoi empty polygon", lambda env: create_aoi(env, geometry=EMPTY_POLYGON), "geometry", "ring"),
    BadInput("aoi no geometry", lambda env: create_aoi(env, geometry=None), "geometry", "Polygon"),
    BadInput("aoi line, not area", lambda env: create_aoi(env, geometry=LINE), "geometry", "Polygon"),
    BadInput("aoi geometry not JSON", lambda env: create_aoi(env, geometry="{not json"), "geometry", "JSON"),
    BadInput("search open ring", lambda env: search_images(env, geometry=OPEN_RING), "geometry", "close"),
    BadInput(
        "order item self-intersecting",
        lambda env: create_order(env, tasking_item(env, geometry=BOWTIE)),
        "geometry",
        "cross",
    ),
    BadInput(
        "order item swapped lat/lon",
        lambda env: create_order(env, tasking_item(env, geometry=SWAPPED)),
        "geometry",
        "swap",
    ),
    # -- dates ---------------------------------------------------------------------------------------
    BadInput(
        "order tasking start in the past",
        lambda env: create_order(env, tasking_item(env, start_date=days_from_today(-10))),
        "start_date",
        "earliest valid",
    ),
    BadInput(
        "order tasking end before start",
        lambda env: create_order(
            env, tasking_item(env, start_date=days_from_today(10), end_date=days_from_today(5))
        ),
        "end_date",
        "after",
    ),
    BadInput(
        "order tasking date format",
        lambda env: create_order(env, tasking_item(env, start_date="12/05/2031")),
        "start_date",
        "YYYY-MM-DD",
    ),
    BadInput(
        "search end before start",
        lambda env: search_images(env, start_date="2024-06-30", end_date="2024-01-01"),
        "end_date",
        "swap them",
    ),
    BadInput(
        "search date format", lambda env: search_images(env, start_date="yesterday"), "start_date", "YYYY"
    ),
    BadInput(
        "visualization dates format",
        lambda env: update_metadata(
            env,
            dynamic_bins=None,
            rollback=True,
            index_id=env.visualization["index_id"],
            dates=["31/12/2024"],
        ),
        "dates",
        "YYYY",
    ),
    BadInput("index png date format", lambda env: index_png(env, date="2024-13-45"), "date", "YYYY"),
    # -- visualization modes -------------------------------------------------------------------------
    BadInput(
        "metadata unknown mode",
        lambda env: update_metadata(env, visualization_mode="static"),
        "visualization_mode",
        "dynamic",
    ),
    BadInput(
        "png unknown mode",
        lambda env: index_png(env, visualization_mode="fancy"),
        "visualization_mode",
        "dynamic",
    ),
    BadInput(
        "sld unknown mode",
        lambda env: sld(env, visualization_modes=["dynamic", "absolute"]),
        "visualization_modes",
        "theoretical",
    ),
    # -- money ---------------------------------------------------------------------------------------
    BadInput("order max_cost zero", lambda env: create_order(env, max_cost=0), "max_cost", "positive"),
    BadInput("order max_cost negative", lambda env: create_order(env, max_cost=-5), "max_cost", "positive"),
    BadInput(
        "order max_cost not a number", lambda env: create_order(env, max_cost="lots"), "max_cost", "number"
    ),
    BadInput("job max_cost zero", lambda env: run_job(env, max_cost=0), "max_cost", "positive"),
    BadInput(
        "insights max_cost negative", lambda env: create_insights(env, max_cost=-1), "max_cost", "positive"
    ),
    # -- project -------------------------------------------------------------------------------------
    BadInput(
        "aoi without project",
        lambda env: _without_project(env, create_aoi),
        "project_id",
        "'project_id' extra",
    ),
    BadInput(
        "job without project",
        lambda env: _without_project(env, run_job),
        "project_id",
        "'project_id' extra",
    ),
    # -- ids -----------------------------------------------------------------------------------------
    BadInput(
        "job without workflow_id", lambda env: run_job(env, workflow_id=None), "workflow_id", "required"
    ),
    BadInput("job sensor blank job_id", lambda env: job_sensor(env, job_id="   "), "job_id", "missing"),
    BadInput(
        "order sensor with no id", lambda env: PixxelOrderSensor(task_id="wait"), "order_id", "order_item_id"
    ),
    BadInput(
        "visualization sensor empty id",
        lambda env: PixxelVisualizationSensor(
            task_id="wait", aoi_id=env.visualization["aoi_id"], visualization_id=""
        ),
        "visualization_id",
        "missing",
    ),
    BadInput(
        "delivery with blank store_id",
        lambda env: PixxelCreateDeliveryOperator(task_id="deliver", store_id=" ", catalog_ids=["c1"], **FAST),
        "store_id",
        "list_stores",
    ),
    BadInput("download job without job_id", lambda env: download_job(env, job_id=""), "job_id", "non-empty"),
    # -- destinations --------------------------------------------------------------------------------
    BadInput(
        "download file_name climbs out",
        lambda env: download_assets(env, file_name="../../etc/cron.d/x.zip"),
        "../../etc/cron.d/x.zip",
        "climbs out",
    ),
    BadInput(
        "download file_name absolute",
        lambda env: download_assets(env, file_name="/etc/passwd"),
        "/etc/passwd",
        "relative to",
    ),
    BadInput(
        "download destination empty", lambda env: download_job(env, destination=""), "destination", "path"
    ),
    # -- other arguments -----------------------------------------------------------------------------
    BadInput("order without items", lambda env: create_order(env, order_items=[]), "order_items", "item"),
    BadInput("store unknown type", lambda env: store(env, type="dropbox"), "type", "S3"),
    BadInput(
        "wait poll_interval zero", lambda env: run_job(env, poll_interval=0), "poll_interval", "positive"
    ),
    # -- connections ---------------------------------------------------------------------------------
    BadInput("connection without key", with_connection(password=""), "API key", "password"),
    BadInput(
        "connection plain http to a remote host",
        with_connection(host="http://api.pixxel.space"),
        "http",
        "https://",
    ),
    BadInput("connection ftp host", with_connection(host="ftp://example.com"), "host", "https://"),
    BadInput(
        "connection negative max_retries",
        with_connection(extra={"max_retries": -1}),
        "max_retries",
        "0 or more",
    ),
    BadInput("connection zero timeout", with_connection(extra={"timeout": 0}), "timeout", "positive"),
]


def _case(row: Any) -> str:
    return row.case if isinstance(row, BadInput) else row.id


def test_the_table_is_at_least_forty_rows_and_each_is_distinct() -> None:
    assert len(BAD_INPUTS) >= 40
    assert len({_case(row) for row in BAD_INPUTS}) == len(BAD_INPUTS)


@pytest.mark.parametrize("row", BAD_INPUTS, ids=[_case(row) for row in BAD_INPUTS])
def test_bad_input_is_refused_by_name_before_any_request(
    row: BadInput, sim: SimulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Env(sim=sim, tmp_path=tmp_path, monkeypatch=monkeypatch)
    task = row.build(env)

    with pytest.raises(PixxelConfigError) as refused:
        run_task(task, make_context(task_state_store=DictTaskStateStore()))

    message = str(refused.value)
    assert row.field in message, f"the error does not name {row.field!r}: {message}"
    assert row.fix.lower() in message.lower(), (
        f"the error does not say how to fix it ({row.fix!r}): {message}"
    )
    assert sim.state.requests() == [], "a request was sent for invalid input"
    assert list(tmp_path.iterdir()) == [], "a file was written for invalid input"
