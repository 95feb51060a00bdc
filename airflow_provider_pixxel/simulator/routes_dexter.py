"""Blocks, workflows, jobs (with their tasks), insights and their download packages."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter

from airflow_provider_pixxel.simulator import progress
from airflow_provider_pixxel.simulator.routes_aois import get_aoi, require_processed
from airflow_provider_pixxel.simulator.routing import (
    Call,
    operation,
    paginate,
    parse_instant,
    polygons_area_m2,
)
from airflow_provider_pixxel.simulator.state import SimulatorState, bad_request, format_t, not_found

BLOCK_MODES = ("insight", "workflow")
JOB_LIST_FIELDS = (
    "id",
    "workflow_id",
    "created_by",
    "cost",
    "created_at",
    "updated_at",
    "finished_at",
    "estimated_duration",
    "progress",
    "status",
    "time_taken",
)


def _workflow(state: SimulatorState, workflow_id: str) -> dict[str, Any]:
    workflow = state.workflows.get(workflow_id)
    if workflow is None:
        raise not_found("workflow", workflow_id)
    return workflow


def _job(state: SimulatorState, call: Call) -> dict[str, Any]:
    workflow = _workflow(state, call.path_params["workflow_id"])
    job = state.jobs.get(call.path_params["job_id"])
    if job is None or job["workflow_id"] != workflow["id"]:
        raise not_found("job", call.path_params["job_id"])
    return job


def _same_day(timestamp_text: str, wanted: float) -> bool:
    created = parse_instant(timestamp_text, "created_at")
    day = datetime.fromtimestamp(wanted, timezone.utc).date()
    return datetime.fromtimestamp(created, timezone.utc).date() == day


def _package(
    state: SimulatorState,
    key: str,
    *,
    filename: str,
    title: str,
    source: dict[str, Any],
    extra: dict[str, Any],
    base_url: str,
) -> dict[str, Any]:
    """The download package for ``key``: created by the first PUT, re-read (advanced) by later ones."""
    package = next((p for p in state.packages.values() if p["key"] == key), None)
    if package is None:
        package_id = state.new_id()
        package = {
            "id": package_id,
            "key": key,
            "filename": filename,
            "title": title,
            "source": source,
            "extra": extra,
        }
        state.packages[package_id] = package
        state.start_lifecycle(
            "package",
            package_id,
            last_step=progress.SIMPLE_STEPS,
            keys=list(source.values()),
            resource=package,
        )
        state.record_created("package", package_id, package)
    return progress.package_view(state, package, base_url)


def _find_block(state: SimulatorState, block: dict[str, Any]) -> dict[str, Any]:
    version = block["version"]
    for candidate in state.blocks:
        spec = candidate["spec"]
        if spec["version"] == version and (
            spec["name"] == block.get("name")
            or spec["id"] == block.get("string")
            or spec["id"] == block.get("id")
        ):
            if spec["kind"] != "insight":
                raise bad_request(
                    f"block: {spec['name']} is a workflow block; insights need an insight block"
                )
            return candidate
    known = sorted(
        {
            f"{b['spec']['name']}@{b['spec']['version']}"
            for b in state.blocks
            if b["spec"]["kind"] == "insight"
        }
    )
    raise bad_request(
        f"block: no insight block {block.get('name') or block.get('string')!r} version {version!r}; "
        f"available: {', '.join(known)}",
        details={"available": known},
    )


def _check_inputs(block: dict[str, Any], inputs: Any) -> None:
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise bad_request(
            "input: expected an array of input objects (copy each of the block's spec.inputs and add a value)"
        )
    given = {}
    for n, entry in enumerate(inputs):
        if not isinstance(entry.get("name"), str):
            raise bad_request(f"input[{n}].name: required field missing")
        if "value" in entry and not isinstance(entry["value"], str):
            raise bad_request(f'input[{n}].value: values are always strings (e.g. "0.8" for a number)')
        given[entry["name"]] = entry
    missing = []
    for expected in block["spec"]["inputs"]:
        entry = given.get(expected["name"])
        if entry is None:
            missing.append(expected["name"])
        elif expected["format"] == "raster":
            if not (entry.get("stac_url") or entry.get("value")):
                raise bad_request(
                    f"input {expected['name']!r}: a raster input needs stac_url (AOI imagery) or value"
                )
        elif not entry.get("value"):
            raise bad_request(f"input {expected['name']!r}: needs a value")
    if missing:
        raise bad_request(
            f"input: missing {', '.join(missing)} required by the block", details={"missing": missing}
        )
    unknown = [name for name in given if name not in {i["name"] for i in block["spec"]["inputs"]}]
    if unknown:
        raise bad_request(f"input: the block has no input named {', '.join(unknown)}")


def register(router: APIRouter, state: SimulatorState) -> None:
    @operation(router, state, "GET", "/v0/blocks")
    def list_blocks(state: SimulatorState, call: Call) -> Any:
        mode = call.query.get("mode")
        if mode and mode not in BLOCK_MODES:
            raise bad_request("query parameter 'mode' must be insight or workflow")
        return {"blocks": [b for b in state.blocks if not mode or b["spec"]["kind"] == mode]}

    @operation(router, state, "GET", "/v0/blocks/{name}")
    def get_block_versions(state: SimulatorState, call: Call) -> Any:
        found = [b for b in state.blocks if b["spec"]["name"] == call.path_params["name"]]
        if not found:
            raise not_found("block", call.path_params["name"])
        return {"blocks": found}

    @operation(router, state, "GET", "/v0/blocks/{name}/versions/{version}")
    def get_block_version(state: SimulatorState, call: Call) -> Any:
        name, version = call.path_params["name"], call.path_params["version"]
        for block in state.blocks:
            if block["spec"]["name"] == name and block["spec"]["version"] == version:
                return block
        raise not_found("block version", f"{name}@{version}")

    @operation(router, state, "GET", "/v0/workflows")
    def list_workflows(state: SimulatorState, call: Call) -> Any:
        query = call.query
        found = []
        for workflow in state.workflows.values():
            if query.get("project_id") and workflow["project_id"] != query["project_id"]:
                continue
            if query.get("id") and workflow["id"] != query["id"]:
                continue
            if query.get("name") and query["name"].lower() not in workflow["name"].lower():
                continue
            if query.get("created_by") and workflow["created_by"] != query["created_by"]:
                continue
            if query.get("created_on") and not workflow["created_at"].startswith(query["created_on"][:10]):
                continue
            if query.get("updated_at") and not workflow["updated_at"].startswith(query["updated_at"][:10]):
                continue
            found.append(workflow)
        page, pagination = paginate(found, call.int_query("offset", 0), call.int_query("limit", 50))
        fields = (
            "id",
            "project_id",
            "legacy_project_id",
            "name",
            "created_by",
            "description",
            "created_at",
            "updated_at",
        )
        return {"workflows": [{f: w[f] for f in fields} for w in page], "pagination": pagination}

    @operation(router, state, "GET", "/v0/workflows/{workflow_id}")
    def get_workflow(state: SimulatorState, call: Call) -> Any:
        workflow = _workflow(state, call.path_params["workflow_id"])
        if workflow["project_id"] != call.query["project_id"]:
            raise not_found("workflow", workflow["id"])
        fields = (
            "id",
            "estimated_cost",
            "name",
            "created_by",
            "description",
            "spec",
            "created_at",
            "updated_at",
            "val_errors",
            "project_id",
        )
        return {f: workflow[f] for f in fields}

    @operation(router, state, "GET", "/v0/workflows/{workflow_id}/estimate")
    def get_workflow_cost_estimate(state: SimulatorState, call: Call) -> Any:
        return {"estimated_cost": _workflow(state, call.path_params["workflow_id"])["estimated_cost"]}

    @operation(router, state, "GET", "/v0/workflows/{workflow_id}/jobs")
    def list_jobs(state: SimulatorState, call: Call) -> Any:
        workflow = _workflow(state, call.path_params["workflow_id"])
        query = call.query
        created_on = parse_instant(query["created_on"], "created_on") if query.get("created_on") else None
        jobs = []
        for job in state.jobs.values():
            if job["workflow_id"] != workflow["id"]:
                continue
            if query.get("id") and job["id"] != query["id"]:
                continue
            if query.get("created_by") and job["created_by"] != query["created_by"]:
                continue
            if created_on is not None and not _same_day(job["created_at"], created_on):
                continue
            view = progress.job_view(state, job)
            if query.get("status") and view["status"].lower() != query["status"].lower():
                continue
            jobs.append({f: view[f] for f in JOB_LIST_FIELDS})
        return {"jobs": jobs}

    @operation(router, state, "POST", "/v0/workflows/{workflow_id}/jobs")
    def create_job(state: SimulatorState, call: Call) -> Any:
        workflow = _workflow(state, call.path_params["workflow_id"])
        project_id = call.query["project_id"]
        if project_id not in state.projects:
            raise bad_request(f"project_id: project {project_id!r} does not exist or is not shared with you")
        if workflow["project_id"] != project_id:
            raise bad_request(f"workflow {workflow['id']} does not belong to project {project_id}")
        # Runs are paid when they start, like orders: the wallet pays or the request is refused.
        state.charge(workflow["estimated_cost"], kind="job")
        job_id = state.new_id()
        task_ids: dict[str, str] = {}
        tasks = []
        for node in workflow["spec"]:
            task_id = state.new_id()
            task_ids[node["name"]] = task_id
            tasks.append(
                {
                    "id": task_id,
                    "name": node["name"],
                    "block_info": dict(node["block"]),
                    "depends_on": [task_ids[d] for d in node["depends_on"]],
                    "estimated_time_duration": node["estimated_time_duration"],
                    "inputs": [
                        {
                            "name": "input_image",
                            "format": "raster",
                            "type": "url",
                            "value": f"s3://pixxel-dexter/jobs/{job_id}/input.tif",
                        }
                    ],
                }
            )
        job = {
            "id": job_id,
            "workflow_id": workflow["id"],
            "project_id": project_id,
            "created_by": state.user_id,
            "created_at": format_t(state.now()),
            "tasks": tasks,
            "spec": workflow["spec"],
            "cost": workflow["estimated_cost"],
            "estimated_duration": sum(t["estimated_time_duration"] for t in tasks),
            "val_errors": [],
        }
        lifecycle = state.start_lifecycle(
            "job", job_id, last_step=len(tasks), keys=[workflow["id"], workflow["name"]], resource=job
        )
        if lifecycle.rule is not None and lifecycle.outcome.value == "failed":
            job["failing_task"] = len(tasks) // 2
            lifecycle.last_step = job["failing_task"] + 1
            lifecycle.stall_step = max(lifecycle.last_step - 1, 0)
            job["val_errors"] = list(lifecycle.rule.val_errors or [])
        state.jobs[job_id] = job
        state.record_created("job", job_id, job)
        state.record_spend("job", job_id, project_id, job["cost"])
        return progress.job_view(state, job)

    @operation(router, state, "GET", "/v0/workflows/{workflow_id}/jobs/{job_id}")
    def get_job(state: SimulatorState, call: Call) -> Any:
        return progress.job_view(state, _job(state, call))

    @operation(router, state, "PUT", "/v0/workflows/{workflow_id}/jobs/{job_id}/download")
    def download_job(state: SimulatorState, call: Call) -> Any:
        job = _job(state, call)
        view = progress.job_view(state, job)
        if view["status"] != "completed":
            raise bad_request(f"job {job['id']} is {view['status']}; only completed jobs can be downloaded")
        return _package(
            state,
            f"job:{job['id']}",
            filename=f"job_{job['id'][:8]}.zip",
            title="Workflow job outputs",
            source={"job_id": job["id"], "workflow_id": job["workflow_id"]},
            extra={"workflowId": job["workflow_id"]},
            base_url=call.base_url,
        )

    @operation(router, state, "PUT", "/v0/workflows/{workflow_id}/jobs/{job_id}/tasks/{task_id}/download")
    def download_task(state: SimulatorState, call: Call) -> Any:
        job = _job(state, call)
        view = progress.job_view(state, job)
        task = next((t for t in view["tasks"] if t["id"] == call.path_params["task_id"]), None)
        if task is None:
            raise not_found("task", call.path_params["task_id"])
        if task["status"] != "completed":
            raise bad_request(
                f"task {task['id']} is {task['status']}; only completed tasks can be downloaded"
            )
        return _package(
            state,
            f"task:{task['id']}",
            filename=f"task_{task['name']}_{task['id'][:8]}.zip",
            title=f"Task {task['name']} outputs",
            source={"task_id": task["id"], "job_id": job["id"]},
            extra={"job_id": job["id"], "workflow_id": job["workflow_id"]},
            base_url=call.base_url,
        )

    @operation(router, state, "POST", "/v0/aoi/{aoi_id}/insights", status=201)
    def create_insights(state: SimulatorState, call: Call) -> Any:
        aoi = get_aoi(state, call.path_params["aoi_id"])
        body = call.body
        block = _find_block(state, body["block"])
        _check_inputs(block, body["input"])
        if body.get("project_id") and body["project_id"] not in state.projects:
            raise bad_request(f"project_id: project {body['project_id']!r} does not exist")
        require_processed(state, aoi)
        area_km2 = polygons_area_m2([aoi["geometry"]["coordinates"]]) / 1e6
        cost = max(10, round(area_km2 * 2))
        if body.get("estimate"):
            return 200, {"estimate": cost}
        state.charge(cost, kind="insight")
        insight_id = state.new_id()
        name = body.get("name") or f"{block['spec']['name']}-{insight_id[:8]}"
        insight = {
            "id": insight_id,
            "name": name,
            "aoi_id": aoi["aoi_id"],
            "project_id": body.get("project_id") or aoi["project_id"],
            "block": {"name": block["spec"]["name"], "version": block["spec"]["version"]},
            "input": body["input"],
            "outputs": [
                dict(output, value=f"s3://pixxel-insights/{insight_id}/{output['name']}.tif")
                for output in block["spec"]["outputs"]
            ],
            "metadata": dict(body.get("metadata") or {}),
            "cost": cost,
            "estimated_time_in_min": 5,
            "created_by": state.user_id,
            "created_at": format_t(state.now()),
        }
        state.insights[insight_id] = insight
        state.start_lifecycle(
            "insight",
            insight_id,
            last_step=progress.SIMPLE_STEPS,
            keys=[name, block["spec"]["name"]],
            resource=insight,
        )
        state.record_created("insight", insight_id, insight)
        state.record_spend("insight", insight_id, insight["project_id"], cost)
        return {"id": insight_id, "message": "insight created"}

    @operation(router, state, "GET", "/v0/aoi/{aoiId}/insights")
    def list_insights(state: SimulatorState, call: Call) -> Any:
        aoi = get_aoi(state, call.path_params["aoiId"])
        query = call.query
        created_on = parse_instant(query["created_on"], "created_on") if query.get("created_on") else None
        found = []
        for insight in state.insights.values():
            if insight["aoi_id"] != aoi["aoi_id"]:
                continue
            if query.get("id") and insight["id"] != query["id"]:
                continue
            if query.get("created_by") and insight["created_by"] != query["created_by"]:
                continue
            if created_on is not None and not _same_day(insight["created_at"], created_on):
                continue
            view = progress.insight_view(state, insight)
            if query.get("status") and view["status"].lower() != query["status"].lower():
                continue
            found.append(view)
        return {"insights": found}

    @operation(router, state, "PUT", "/v0/aoi/{aoi_id}/insights/{insight_id}/download")
    def download_insights(state: SimulatorState, call: Call) -> Any:
        aoi = get_aoi(state, call.path_params["aoi_id"])
        insight = state.insights.get(call.path_params["insight_id"])
        if insight is None or insight["aoi_id"] != aoi["aoi_id"] or insight.get("deleted_at"):
            raise not_found("insight", call.path_params["insight_id"])
        view = progress.insight_view(state, insight)
        if view["status"] != "completed":
            raise bad_request(
                f"insight {insight['id']} is {view['status']}; only completed insights can be downloaded"
            )
        body = call.body or {}
        chosen_inputs = body.get("inputs") or []
        chosen_outputs = body.get("outputs") or []
        input_names = {i["name"] for i in insight["input"]}
        output_names = {o["name"] for o in insight["outputs"]}
        unknown = [n for n in chosen_inputs if n not in input_names] + [
            n for n in chosen_outputs if n not in output_names
        ]
        if unknown:
            raise bad_request(
                f"{', '.join(unknown)}: not an input or output of this insight "
                f"(inputs: {', '.join(sorted(input_names))}; outputs: {', '.join(sorted(output_names))})"
            )
        selection = ",".join(sorted(chosen_inputs)) + "|" + ",".join(sorted(chosen_outputs))
        return _package(
            state,
            f"insight:{insight['id']}:{selection}",
            filename=f"insight_{insight['id'][:8]}.zip",
            title=f"Insight {insight['name']}",
            source={"insight_id": insight["id"], "aoi_id": aoi["aoi_id"]},
            extra={},
            base_url=call.base_url,
        )

    @operation(router, state, "DELETE", "/v0/aoi/{aoi_id}/insights/{insight_id}")
    def delete_insights(state: SimulatorState, call: Call) -> Any:
        aoi = get_aoi(state, call.path_params["aoi_id"])
        insight = state.insights.get(call.path_params["insight_id"])
        if insight is None or insight["aoi_id"] != aoi["aoi_id"] or insight.get("deleted_at"):
            raise not_found("insight", call.path_params["insight_id"])
        if call.query["project_id"] != insight["project_id"]:
            raise bad_request(f"project_id: the insight belongs to project {insight['project_id']}")
        insight["deleted_at"] = format_t(state.now())
        return None
