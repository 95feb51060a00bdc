"""Download operators against the simulator: verified bytes, fresh URLs, safe destinations, one request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelWaitTimeoutError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.hooks.retry import RetryPolicy
from airflow_provider_pixxel.operators.downloads import (
    PixxelDownloadAssetsOperator,
    PixxelDownloadCatalogsOperator,
    PixxelDownloadInsightsOperator,
    PixxelDownloadJobOperator,
    PixxelDownloadTaskOperator,
)
from airflow_provider_pixxel.simulator import progress
from airflow_provider_pixxel.simulator.faults import FaultRule
from tests.operators.pixxel_sim import context, fulfilled_order
from tests.task_runner import DictTaskStateStore, requires_task_state_store, run_task


def no_wait_hook(op: Any) -> Any:
    """Give the operator a hook whose retries do not sleep (the download uses its policy)."""
    op.__dict__["hook"] = PixxelHook(retry_policy=RetryPolicy(max_retries=3, initial_delay=0.0))
    return op


def artifact_sha256(handle: Any, artifact_id: str) -> str:
    return handle.state.files.get(artifact_id).sha256()


def seeded_aoi(handle: Any) -> tuple[str, list[str]]:
    aoi_id = next(a for a, aoi in handle.state.aois.items() if aoi.get("seeded"))
    assets = [a["id"] for a in handle.state.assets.values() if a["aoi_id"] == aoi_id]
    return aoi_id, assets[:2]


def completed_job(handle: Any) -> dict[str, Any]:
    workflow = next(iter(handle.state.workflows.values()))
    with PixxelHook() as hook:
        job = hook.create_job(workflow["id"], project_id=workflow["project_id"])
        job = hook.get_job(workflow["id"], job["id"])
    assert job["status"] == "completed"
    handle.state.clear_records()
    return job


def test_catalog_download_matches_the_simulator_bytes(sim, tmp_path):
    order = fulfilled_order(sim)
    op = PixxelDownloadCatalogsOperator(
        task_id="fetch", order_item_ids=order["order_item_ids"], destination=str(tmp_path), poll_interval=0.01
    )

    result = run_task(op, context()).result

    download_id = result["download_id"]
    path = Path(result["path"])
    assert path == tmp_path / f"catalog-download-{download_id}.zip"
    assert result["sha256"] == artifact_sha256(sim, download_id)
    assert result["size"] == path.stat().st_size
    assert "signed" not in json.dumps(result)
    assert "X-Amz" not in json.dumps(result)


def test_expired_signed_url_mid_download_recovers_with_a_fresh_url(sim, tmp_path):
    order = fulfilled_order(sim)
    # The body is cut half way, then the resumed request finds the URL expired.
    sim.faults.add(FaultRule(kind="truncate", path="^/files/", times=1))
    sim.faults.add(FaultRule(kind="expire", path="^/files/", times=1))
    op = no_wait_hook(
        PixxelDownloadCatalogsOperator(
            task_id="fetch", catalog_ids=order["catalog_ids"], destination=str(tmp_path), poll_interval=0.01
        )
    )

    result = run_task(op, context()).result

    assert result["sha256"] == artifact_sha256(sim, result["download_id"])
    file_requests = sim.state.requests("GET", "/files/*")
    # A cut body, then the resume finds the URL expired (the final 206 may be recorded later).
    assert [r.status for r in file_requests][:2] == [200, 403]
    # Reads of the download: the status check, the first URL, and the fresh URL after the refusal.
    assert len(sim.state.requests("GET", f"/v0/catalogs/download/{result['download_id']}")) == 3


def test_extracted_package_lists_its_files(sim, tmp_path):
    order = fulfilled_order(sim)
    op = PixxelDownloadCatalogsOperator(
        task_id="fetch",
        catalog_ids=order["catalog_ids"],
        destination=str(tmp_path),
        file_name="imagery/{{ ds }}",
        extract=True,
        poll_interval=0.01,
    )
    op.file_name = "imagery/2024-05-06"  # as rendered

    result = run_task(op, context()).result

    assert Path(result["path"]) == tmp_path / "imagery" / "2024-05-06"
    assert result["files"]
    for entry in result["files"]:
        assert (Path(result["path"]) / entry["path"]).stat().st_size == entry["size"]


@pytest.mark.parametrize("file_name", ["../outside.zip", "/etc/passwd", "a/../../b.zip"])
def test_destination_escaping_its_base_is_refused_before_any_request(sim, tmp_path, file_name):
    op = PixxelDownloadCatalogsOperator(
        task_id="fetch", catalog_ids=["c-1"], destination=str(tmp_path), file_name=file_name
    )
    with pytest.raises(PixxelConfigError, match="Destination"):
        run_task(op, context())
    assert sim.state.requests() == []


def test_catalog_download_needs_exactly_one_source(sim, tmp_path):
    op = PixxelDownloadCatalogsOperator(task_id="fetch", destination=str(tmp_path))
    with pytest.raises(PixxelConfigError, match="exactly one of catalog_ids or order_item_ids"):
        run_task(op, context())
    assert sim.state.requests() == []


def test_failed_catalog_download_fails_the_task(sim, tmp_path):
    order = fulfilled_order(sim)
    sim.state.scenarios.fail("catalog_download")
    op = PixxelDownloadCatalogsOperator(
        task_id="fetch", catalog_ids=order["catalog_ids"], destination=str(tmp_path)
    )
    with pytest.raises(AirflowFailException, match="failed"):
        run_task(op, context())
    assert list(tmp_path.iterdir()) == []


@requires_task_state_store
def test_stalled_download_times_out_and_a_retry_reuses_the_same_download(sim, tmp_path):
    order = fulfilled_order(sim)
    sim.state.scenarios.stall("catalog_download")
    store = DictTaskStateStore()
    for _ in range(2):
        op = PixxelDownloadCatalogsOperator(
            task_id="fetch",
            catalog_ids=order["catalog_ids"],
            destination=str(tmp_path),
            timeout=0.05,
            poll_interval=0.01,
        )
        with pytest.raises(PixxelWaitTimeoutError, match="catalog download"):
            run_task(op, context(store))
    assert len(sim.state.requests("POST", "/v0/catalogs/download")) == 1


@pytest.mark.parametrize("deferrable", [True, False])
def test_aoi_assets_download(slow_sim, tmp_path, deferrable):
    aoi_id, asset_ids = seeded_aoi(slow_sim)
    op = PixxelDownloadAssetsOperator(
        task_id="fetch",
        aoi_id=aoi_id,
        asset_ids=asset_ids,
        destination=str(tmp_path),
        deferrable=deferrable,
        poll_interval=0.01,
    )

    run = run_task(op, context())

    result = run.result
    assert result["aoi_id"] == aoi_id
    assert result["sha256"] == artifact_sha256(slow_sim, result["download_id"])
    assert (len(run.deferrals) == 1) is deferrable
    (post,) = slow_sim.state.requests("POST", f"/v0/aois/{aoi_id}/downloads")
    assert post.body == {"asset_ids": asset_ids}


def test_job_package_is_polled_with_put_and_extracted(sim, tmp_path):
    job = completed_job(sim)
    op = PixxelDownloadJobOperator(
        task_id="fetch",
        workflow_id=job["workflow_id"] if "workflow_id" in job else next(iter(sim.state.workflows)),
        job_id=job["id"],
        destination=str(tmp_path),
        extract=True,
        poll_interval=0.01,
    )

    result = run_task(op, context()).result

    package = next(p for p in sim.state.packages.values() if p["source"].get("job_id") == job["id"])
    assert result["sha256"] == artifact_sha256(sim, package["id"])
    assert Path(result["path"]) == tmp_path / f"job-{job['id']}"
    assert result["files"]
    assert sim.state.requests("PUT", "*/download")


def test_task_package_download(sim, tmp_path):
    job = completed_job(sim)
    workflow_id = next(iter(sim.state.workflows))
    job_task_id = job["tasks"][0]["id"]
    op = PixxelDownloadTaskOperator(
        task_id="fetch",
        workflow_id=workflow_id,
        job_id=job["id"],
        job_task_id=job_task_id,
        destination=str(tmp_path),
        poll_interval=0.01,
    )

    result = run_task(op, context()).result

    assert Path(result["path"]).name == f"job-{job['id']}-task-{job_task_id}.zip"
    package = next(p for p in sim.state.packages.values() if p["source"].get("task_id") == job_task_id)
    assert result["sha256"] == artifact_sha256(sim, package["id"])


def test_insight_package_download(sim, tmp_path):
    aoi_id, _ = seeded_aoi(sim)
    state = sim.state
    insight_id = state.new_id()
    state.insights[insight_id] = {
        "id": insight_id,
        "name": "crop",
        "aoi_id": aoi_id,
        "project_id": state.aois[aoi_id]["project_id"],
        "block": {"name": "cropclassification", "version": "1.0.0"},
        "input": [],
        "outputs": [{"name": "classes", "format": "raster", "type": "url", "value": "s3://x/classes.tif"}],
        "metadata": {},
        "cost": 10,
        "estimated_time_in_min": 5,
        "created_by": state.user_id,
        "created_at": "2026-01-01T00:00:00Z",
    }
    state.start_lifecycle(
        "insight", insight_id, last_step=progress.SIMPLE_STEPS, resource=state.insights[insight_id]
    )
    op = PixxelDownloadInsightsOperator(
        task_id="fetch", aoi_id=aoi_id, insight_id=insight_id, destination=str(tmp_path), poll_interval=0.01
    )

    result = run_task(op, context()).result

    assert Path(result["path"]).name == f"insight-{insight_id}.zip"
    package = next(p for p in state.packages.values() if insight_id in json.dumps(p["source"]))
    assert result["sha256"] == artifact_sha256(sim, package["id"])


def test_url_destination(sim, tmp_path):
    order = fulfilled_order(sim)
    op = PixxelDownloadCatalogsOperator(
        task_id="fetch",
        catalog_ids=order["catalog_ids"],
        destination=tmp_path.as_uri(),
        file_name="deliveries/imagery.zip",
        poll_interval=0.01,
    )

    result = run_task(op, context()).result

    stored = tmp_path / "deliveries" / "imagery.zip"
    assert stored.stat().st_size == result["size"]
    assert result["sha256"] == artifact_sha256(sim, result["download_id"])


def completed_insight(handle: Any) -> tuple[str, str]:
    aoi_id, _ = seeded_aoi(handle)
    state = handle.state
    insight_id = state.new_id()
    state.insights[insight_id] = {
        "id": insight_id,
        "name": "crop",
        "aoi_id": aoi_id,
        "project_id": state.aois[aoi_id]["project_id"],
        "block": {"name": "cropclassification", "version": "1.0.0"},
        "input": [{"name": "imagery", "format": "raster", "type": "url", "value": "s3://x/in.tif"}],
        "outputs": [
            {"name": "classes", "format": "raster", "type": "url", "value": "s3://x/classes.tif"},
            {"name": "confidence", "format": "raster", "type": "url", "value": "s3://x/conf.tif"},
        ],
        "metadata": {},
        "cost": 10,
        "estimated_time_in_min": 5,
        "created_by": state.user_id,
        "created_at": "2026-01-01T00:00:00Z",
    }
    state.start_lifecycle("insight", insight_id, last_step=0, resource=state.insights[insight_id])
    state.clear_records()
    return aoi_id, insight_id


@pytest.mark.parametrize("deferrable", [True, False])
def test_insight_selection_is_re_sent_on_every_read(slow_sim, tmp_path, deferrable):
    aoi_id, insight_id = completed_insight(slow_sim)
    op = PixxelDownloadInsightsOperator(
        task_id="fetch",
        aoi_id=aoi_id,
        insight_id=insight_id,
        outputs="classes",
        destination=str(tmp_path),
        poll_interval=0.01,
        deferrable=deferrable,
    )

    run = run_task(op, context(DictTaskStateStore()))

    puts = slow_sim.state.requests("PUT", f"/v0/aoi/{aoi_id}/insights/{insight_id}/download")
    assert len(puts) >= 2  # the first request, at least one status read, and the URL read
    assert all(request.body == {"outputs": ["classes"]} for request in puts)
    assert run.result["outputs"] == "classes"
    package = next(p for p in slow_sim.state.packages.values() if insight_id in json.dumps(p["source"]))
    assert run.result["sha256"] == artifact_sha256(slow_sim, package["id"])


def test_download_progress_goes_to_the_task_log(sim, tmp_path, monkeypatch):
    # The operators import the routine when they run (not at DAG parse time): patch it at its source.
    from airflow_provider_pixxel.hooks import download as module

    loggers = []
    real_download = module.download

    def recording_download(*args: Any, **kwargs: Any) -> Any:
        loggers.append(kwargs.get("log"))
        return real_download(*args, **kwargs)

    monkeypatch.setattr(module, "download", recording_download)
    order = fulfilled_order(sim)
    op = PixxelDownloadCatalogsOperator(
        task_id="fetch", catalog_ids=order["catalog_ids"], destination=str(tmp_path), poll_interval=0.01
    )

    run_task(op, context())

    assert loggers == [op.log]
