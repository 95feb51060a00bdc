"""A user's daily DAG, not one of ours: named resources get-or-create, PNGs rendered for a logical date.

The DAG below is what a data engineer writes from the docs alone: one AOI name for every run (created
by two tasks, both with ``reuse_existing=True``), its NDVI visualization get-or-create, and two PNGs of
the run's date with ``date_policy="on_or_before"``, one of any age and one at most a few days old.
Run for two logical dates after the field's last capture, it must leave one AOI and one visualization
in all, render a valid PNG of the earlier image on both days, and skip the too-old one, never fail it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import pytest

from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.example_dags.dag_runner import load_dag_in_own_bundle, run_dag, task_states
from tests.operators.imagery import FIELD, TD2, td2_item_ids

pytestmark = pytest.mark.e2e

DAILY_FIELD_DAG = """
import pendulum
from airflow.sdk import DAG

from airflow_provider_pixxel.operators import (
    PixxelCreateAOIOperator,
    PixxelCreateVisualizationOperator,
    PixxelGenerateIndexPngOperator,
    PixxelSearchImagesOperator,
)

AOI = {
    "name": "field-42",
    "description": "Field 42, monitored daily",
    "satellite_id": "{{ params.satellites[0].satellite_id }}",
    "provider": "pixxel",
    "geometry": "{{ params.field }}",
    "item_ids": "{{ ti.xcom_pull(task_ids='search_images') }}",
    "reuse_existing": True,
    "poll_interval": 0.01,
}
AOI_ID = "{{ ti.xcom_pull(task_ids='field_aoi')['aoi_id'] }}"
VISUALIZATION_ID = "{{ ti.xcom_pull(task_ids='ndvi')['visualization_id'] }}"
PARTITION = "{{ params.output_dir }}/{{ ds }}"

with DAG(
    "daily_field_ndvi",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
    params={"field": {}, "satellites": [], "index_id": "", "output_dir": ""},
) as dag:
    search = PixxelSearchImagesOperator(
        task_id="search_images",
        start_date="2025-01-01",
        end_date="{{ ds }}",
        satellites="{{ params.satellites }}",
        geometry="{{ params.field }}",
    )
    field_aoi = PixxelCreateAOIOperator(task_id="field_aoi", **AOI)
    # Another task of the same DAG asks for the same AOI: it adopts it too.
    field_aoi_again = PixxelCreateAOIOperator(task_id="field_aoi_again", **AOI)
    ndvi = PixxelCreateVisualizationOperator(
        task_id="ndvi",
        aoi_id=AOI_ID,
        index_id="{{ params.index_id }}",
        resolution=10,
        reuse_existing=True,
        poll_interval=0.01,
    )
    png_any_age = PixxelGenerateIndexPngOperator(
        task_id="png_any_age",
        aoi_id=AOI_ID,
        visualization_id=VISUALIZATION_ID,
        index_id="{{ params.index_id }}",
        date="{{ ds }}",
        date_policy="on_or_before",
        destination=PARTITION + "/ndvi.png",
    )
    png_recent_only = PixxelGenerateIndexPngOperator(
        task_id="png_recent_only",
        aoi_id=AOI_ID,
        visualization_id=VISUALIZATION_ID,
        index_id="{{ params.index_id }}",
        date="{{ ds }}",
        date_policy="on_or_before",
        max_image_age_days=3,
        destination=PARTITION + "/ndvi_recent.png",
    )
    search >> field_aoi >> field_aoi_again >> ndvi >> [png_any_age, png_recent_only]
"""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_two_daily_runs_share_one_aoi_and_render_the_newest_earlier_image(
    sim: SimulatorHandle, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.state.steps_per_poll = 1
    capture_days = sorted(
        datetime.date.fromisoformat(sim.state.items[item_id]["properties"]["datetime"][:10])
        for item_id in td2_item_ids(sim)
    )
    last_capture = capture_days[-1]
    ndvi_index_id = next(iter(sim.state.visualizations.values()))["index_id"]
    dag = load_dag_in_own_bundle(DAILY_FIELD_DAG, tmp_path / "dags", monkeypatch)
    output_dir = tmp_path / "out"
    conf = {"field": FIELD, "satellites": TD2, "index_id": ndvi_index_id, "output_dir": str(output_dir)}
    # Both days come after the last capture: neither has an image of its own; the newest is 10+ days old.
    run_days = [last_capture + datetime.timedelta(days=10), last_capture + datetime.timedelta(days=11)]

    for day in run_days:
        logical_date = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)
        dag_run = run_dag(dag, logical_date=logical_date, run_conf=conf)

        states = task_states(dag_run)
        assert states == {
            "search_images": "success",
            "field_aoi": "success",
            "field_aoi_again": "success",
            "ndvi": "success",
            "png_any_age": "success",
            "png_recent_only": "skipped",
        }, states
        png = dag_run.get_task_instance("png_any_age").xcom_pull(task_ids="png_any_age")
        rendered = Path(png["path"])
        assert rendered == output_dir / day.isoformat() / "ndvi.png"
        data = rendered.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert (png["size"], png["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert png["image_date"] == last_capture.isoformat() < day.isoformat()
        sidecar = rendered.with_name(rendered.name + ".sha256").read_text()
        assert sidecar.split()[0] == png["sha256"]
        assert not (output_dir / day.isoformat() / "ndvi_recent.png").exists()

    # One AOI and one visualization in all, for four create tasks and two runs.
    assert len(sim.state.created("aoi")) == 1
    assert len(sim.state.created("visualization")) == 1
    aoi_posts = sim.state.requests("POST", "/v0/aois")
    assert [request.status for request in aoi_posts] == [201], json.dumps(
        [(r.method, r.path, r.status) for r in aoi_posts]
    )
