"""The documentation's examples of operators, sensors and triggers no example DAG uses, run on the simulator.

The how-to pages include the code between each ``# [START howto_...]`` / ``# [END howto_...]`` pair below,
so every example a user reads is code that ran here against the simulator over loopback HTTP.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import PokeReturnValue

from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.operators import (
    PixxelCreateIndexOperator,
    PixxelCreateInsightsOperator,
    PixxelCreateStoreOperator,
    PixxelDeleteInsightsOperator,
    PixxelDeleteStoreOperator,
    PixxelResumableOperator,
    PixxelUpdateVisualizationMetadataOperator,
)
from airflow_provider_pixxel.operators.base import PixxelBaseOperator
from airflow_provider_pixxel.sensors import (
    PixxelAOIDownloadSensor,
    PixxelAOISensor,
    PixxelCatalogDownloadSensor,
    PixxelInsightSensor,
    PixxelJobSensor,
    PixxelVisualizationSensor,
)
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from airflow_provider_pixxel.triggers import PixxelStatusTrigger
from tests.operators.test_insights import BLOCK, VALUES
from tests.sensors.test_downloads import create_aoi_download, create_catalog_download
from tests.task_runner import DictTaskStateStore, make_context, run_task

FAST = {"poll_interval": 0.01, "timeout": 10.0}


def poke_until_done(sensor: Any, pokes: int = 10) -> Any:
    """What a reschedule-mode sensor returns once done: each poke is one status read, as in a worker."""
    for _ in range(pokes):
        answer = sensor.poke(make_context())
        if isinstance(answer, PokeReturnValue) and answer.is_done:
            return answer.xcom_value
    raise AssertionError(f"{sensor.task_id} was not done after {pokes} pokes")


@pytest.fixture
def seeded(sim: SimulatorHandle) -> dict[str, Any]:
    """The simulator's processed AOI, its NDVI visualization and index, one image date, Sentinel-2's id."""
    visualization = next(iter(sim.state.visualizations.values()))
    return {
        "AOI_ID": visualization["aoi_id"],
        "VISUALIZATION_ID": visualization["id"],
        "NDVI_INDEX_ID": visualization["index_id"],
        "DAY": sorted(visualization["legend"])[0].replace("_", "-"),
        "S2_SATELLITE_ID": next(
            s_id for s_id, s in sim.state.satellites.items() if "sentinel" in json.dumps(s).lower()
        ),
    }


def test_create_index(sim: SimulatorHandle, seeded: dict[str, Any]) -> None:
    S2_SATELLITE_ID = seeded["S2_SATELLITE_ID"]
    # [START howto_operator_create_index]
    index = PixxelCreateIndexOperator(
        task_id="create_index",
        name="red-edge",
        description="Red edge ratio",
        expression="(B08-B05)/(B08+B05)",
        expression_type="index",
        rescale=[-1, 1],
        colormap="rdylgn",
        satellite_id=S2_SATELLITE_ID,
        reuse_existing=True,
    )
    # [END howto_operator_create_index]
    index_id = run_task(index).result
    assert sim.state.indices[index_id]["name"] == "red-edge"
    # reuse_existing: the same index again returns the one made above, nothing new.
    assert run_task(index).result == index_id


def test_update_visualization_legend(sim: SimulatorHandle, seeded: dict[str, Any]) -> None:
    AOI_ID, VISUALIZATION_ID, DAY = seeded["AOI_ID"], seeded["VISUALIZATION_ID"], seeded["DAY"]
    # [START howto_operator_update_visualization_metadata]
    legend = PixxelUpdateVisualizationMetadataOperator(
        task_id="legend",
        aoi_id=AOI_ID,
        visualization_id=VISUALIZATION_ID,
        visualization_mode="theoretical",
        legend={
            DAY: [
                {"min": -1, "max": 0.2, "color": "#d7191c", "label": "Bare"},
                {"min": 0.2, "max": 1, "color": "#1a9641", "label": "Vegetated"},
            ]
        },
    )
    # [END howto_operator_update_visualization_metadata]
    result = run_task(legend).result
    assert result["action"] == "update"
    assert result["visualization_id"] == VISUALIZATION_ID
    (put,) = sim.state.requests("PUT")
    assert put.path.endswith("/metadata")


def test_create_then_delete_store(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_PIXXEL_DELIVERY",
        json.dumps({"conn_type": "aws", "login": "AKIAEXAMPLEKEY123456", "password": "example-secret"}),
    )
    store = PixxelCreateStoreOperator(
        task_id="create_store",
        name="agri-deliveries",
        type="S3",
        configs={"bucket": "my-bucket", "region": "eu-west-1", "path_prefix": "pixxel/"},
        secrets_conn_id="aws_pixxel_delivery",
    )
    store_id = run_task(store).result["store_id"]
    # [START howto_operator_delete_store]
    drop = PixxelDeleteStoreOperator(task_id="drop_store", store_id=store_id, missing_ok=True)
    # [END howto_operator_delete_store]
    assert run_task(drop).result == {"store_id": store_id, "deleted": True}
    assert run_task(drop).result == {"store_id": store_id, "deleted": False}
    assert store_id not in sim.state.stores


def test_delete_insights(sim: SimulatorHandle, seeded: dict[str, Any]) -> None:
    crops = PixxelCreateInsightsOperator(
        task_id="crop_classification", aoi_id=seeded["AOI_ID"], block=BLOCK, input_values=VALUES, **FAST
    )
    insight = run_task(crops, make_context(task_state_store=DictTaskStateStore())).result
    # [START howto_operator_delete_insights]
    delete = PixxelDeleteInsightsOperator(
        task_id="delete_crops", aoi_id=insight["aoi_id"], insight_id=insight["insight_id"]
    )
    # [END howto_operator_delete_insights]
    ids = {"aoi_id": insight["aoi_id"], "insight_id": insight["insight_id"]}
    assert run_task(delete).result == {**ids, "deleted": True}
    (request,) = sim.state.requests("DELETE")
    assert insight["insight_id"] in request.path


def test_sensors(sim: SimulatorHandle, seeded: dict[str, Any]) -> None:
    AOI_ID, VISUALIZATION_ID = seeded["AOI_ID"], seeded["VISUALIZATION_ID"]
    sim.state.steps_per_poll = 1
    # [START howto_sensor_aoi]
    wait_aoi = PixxelAOISensor(
        task_id="wait_aoi", aoi_id=AOI_ID, mode="reschedule", poke_interval=60, timeout=6 * 3600
    )
    # [END howto_sensor_aoi]
    # [START howto_sensor_visualization]
    wait_ndvi = PixxelVisualizationSensor(
        task_id="wait_ndvi", aoi_id=AOI_ID, visualization_id=VISUALIZATION_ID, deferrable=True
    )
    # [END howto_sensor_visualization]
    assert poke_until_done(wait_aoi)["aoi_id"] == AOI_ID
    assert run_task(wait_ndvi).result["visualization_id"] == VISUALIZATION_ID


def test_job_and_insight_sensors(sim: SimulatorHandle, seeded: dict[str, Any]) -> None:
    AOI_ID = seeded["AOI_ID"]
    WORKFLOW_ID = next(iter(sim.state.workflows))
    with PixxelHook() as hook:
        job_id = hook.create_job(WORKFLOW_ID)["id"]
    crops = PixxelCreateInsightsOperator(
        task_id="crop_classification", aoi_id=AOI_ID, block=BLOCK, input_values=VALUES, **FAST
    )
    insight_id = run_task(crops, make_context(task_state_store=DictTaskStateStore())).result["insight_id"]
    params = {"job_id": job_id, "insight_id": insight_id}
    # [START howto_sensor_job_insight]
    wait_job = PixxelJobSensor(
        task_id="wait_job",
        workflow_id=WORKFLOW_ID,
        job_id="{{ params.job_id }}",
        mode="reschedule",
        poke_interval=120,
        timeout=6 * 3600,
    )
    wait_insight = PixxelInsightSensor(
        task_id="wait_insight",
        aoi_id=AOI_ID,
        insight_id="{{ params.insight_id }}",
        deferrable=True,
        poke_interval=60,
    )
    # [END howto_sensor_job_insight]
    for sensor in (wait_job, wait_insight):
        sensor.render_template_fields({"params": params})
    assert poke_until_done(wait_job) == {"workflow_id": WORKFLOW_ID, "job_id": job_id, "status": "completed"}
    assert run_task(wait_insight).result["insight_id"] == insight_id


def test_download_sensors(sim: SimulatorHandle) -> None:
    aoi_download = create_aoi_download(sim)
    AOI_ID, AOI_DOWNLOAD_ID = aoi_download["aoi_id"], aoi_download["download_id"]
    CATALOG_DOWNLOAD_ID = create_catalog_download(sim)["download_id"]
    # [START howto_sensor_downloads]
    wait_download = PixxelAOIDownloadSensor(
        task_id="wait_download", aoi_id=AOI_ID, download_id=AOI_DOWNLOAD_ID
    )
    wait_package = PixxelCatalogDownloadSensor(task_id="wait_package", download_id=CATALOG_DOWNLOAD_ID)
    # [END howto_sensor_downloads]
    assert run_task(wait_download).result["download_id"] == AOI_DOWNLOAD_ID
    assert run_task(wait_package).result["download_id"] == CATALOG_DOWNLOAD_ID


# [START howto_trigger_status]
class RunAndWaitOperator(PixxelBaseOperator):
    """Runs a workflow job and waits for it in the triggerer."""

    def __init__(self, *, workflow_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workflow_id = workflow_id

    def execute(self, context: Any) -> None:
        job_id = str(self.hook.create_job(self.workflow_id)["id"])
        self.defer(
            trigger=PixxelStatusTrigger(
                kind="job",
                ids={"workflow_id": self.workflow_id, "job_id": job_id},
                poll_interval=60,
                deadline=time.time() + 6 * 3600,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        if event["status"] != "success":
            raise RuntimeError(f"job {event['ids']['job_id']} ended {event['status']}: {event.get('reason')}")
        return event["ids"]


# [END howto_trigger_status]


def test_status_trigger_in_your_own_operator(sim: SimulatorHandle) -> None:
    workflow_id = next(iter(sim.state.workflows))
    run = run_task(RunAndWaitOperator(task_id="run", workflow_id=workflow_id))
    assert run.deferrals, "the operator did not defer to PixxelStatusTrigger"
    assert run.result["workflow_id"] == workflow_id
    assert run.result["job_id"] in sim.state.jobs


# [START howto_base_resumable]
class RunWorkflowOperator(PixxelResumableOperator):
    """Runs a saved workflow; the shared wait, deferral and retry-reconnect come from the base."""

    watch_kind = "job"

    def __init__(self, *, workflow_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workflow_id = workflow_id

    def start(self, context: Any) -> dict[str, str]:
        job = self.hook.create_job(self.workflow_id)
        return {"workflow_id": self.workflow_id, "job_id": str(job["id"])}


# [END howto_base_resumable]


def test_your_own_resumable_operator(sim: SimulatorHandle) -> None:
    workflow_id = next(iter(sim.state.workflows))
    operator = RunWorkflowOperator(task_id="run", workflow_id=workflow_id, **FAST)
    result = run_task(operator, make_context(task_state_store=DictTaskStateStore())).result
    assert result["workflow_id"] == workflow_id
    assert result["status"] == "completed"
    assert len(sim.state.created("job")) == 1
