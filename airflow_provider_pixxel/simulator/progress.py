"""What each progressing resource looks like right now.

Resources are stored as they were created; their ``status``, ``progress`` and everything that depends on
them (job tasks, order-item tasks, the catalogs a fulfilled task yields, automatic deliveries, signed
URLs of finished downloads) are worked out here from the resource's :class:`~.state.Lifecycle` step at
the moment of the read. The status sequences are the API's documented ones (the enums of the spec, e.g.
``atlas.VisualizationStatus``: creating, then success, failed or partial_success).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_pixxel.simulator import files
from airflow_provider_pixxel.simulator.state import (
    Lifecycle,
    Outcome,
    SimulatorState,
    format_offset,
    format_t,
)

AOI_STEPS = 2
SIMPLE_STEPS = 2
DEFAULT_FAILURE_TYPE = "BlockExecutionError"


def _message(lifecycle: Lifecycle, default: str) -> str:
    return lifecycle.message or default


# --------------------------------------------------------------------------- AOIs and assets


def aoi_status(state: SimulatorState, aoi: dict[str, Any]) -> tuple[str, int]:
    lifecycle = state.lifecycles.get(aoi["aoi_id"])
    if lifecycle is None:
        return "success", 100
    step = state.step(lifecycle)
    progress = round(100 * state.fraction(lifecycle, step))
    if step < lifecycle.last_step:
        return ("started" if step == 0 else "running"), min(progress, 99)
    return {
        Outcome.FAILED: ("failed", progress),
        Outcome.PARTIAL: ("partial_success", 100),
    }.get(lifecycle.outcome, ("success", 100))


def aoi_view(state: SimulatorState, aoi: dict[str, Any]) -> dict[str, Any]:
    status, progress = aoi_status(state, aoi)
    polygons = [aoi["geometry"]["coordinates"]]
    from airflow_provider_pixxel.simulator.routing import centroid_of, polygons_area_m2

    items = [state.items[i] for i in aoi["item_ids"] if i in state.items]
    bands = sorted({b["name"] for i in items for b in i["assets"]["data"].get("eo:bands", [])})
    return {
        "aoi_id": aoi["aoi_id"],
        "name": aoi["name"],
        "description": aoi["description"],
        "satellite_id": aoi["satellite_id"],
        "project_id": aoi["project_id"],
        "images": {
            i["id"]: {"datetime": i["properties"]["datetime"], "collection": i["collection"]} for i in items
        }
        if status in ("success", "partial_success")
        else {},
        "eo_bands": bands,
        "geometry": aoi["geometry"],
        "progress": progress,
        "status": status,
        "is_favourite": aoi["is_favourite"],
        "created_at": aoi["created_at"],
        "updated_at": aoi["updated_at"] if status in ("started",) else format_offset(state.now()),
        "user_id": aoi["user_id"],
        "area_in_sq_m": round(polygons_area_m2(polygons), 2),
        "centroid": centroid_of(polygons),
    }


def asset_view(state: SimulatorState, asset: dict[str, Any]) -> dict[str, Any]:
    aoi = state.aois[asset["aoi_id"]]
    aoi_state, progress = aoi_status(state, aoi)
    status = {"started": "started", "running": "creating", "failed": "failed"}.get(aoi_state, "success")
    if aoi_state == "partial_success" and asset.get("fails_on_partial"):
        status = "failed"
    from airflow_provider_pixxel.simulator.routing import centroid_of, polygons_area_m2

    polygons = [aoi["geometry"]["coordinates"]]
    return {
        "id": asset["id"],
        "aoi_id": asset["aoi_id"],
        "asset_type": asset["asset_type"],
        "name": asset["name"],
        "description": asset["description"],
        "date": asset["date"],
        "band_list": asset["band_list"],
        "resolution": asset["resolution"],
        "path": asset["path"] if status == "success" else "",
        "progress": 100 if status in ("success", "failed") else progress,
        "status": status,
        "visualization_id": asset.get("visualization_id", ""),
        "geometry": aoi["geometry"],
        "area_in_sq_m": round(polygons_area_m2(polygons), 2),
        "centroid": centroid_of(polygons),
        "created_at": asset["created_at"],
        "updated_at": asset["updated_at"],
    }


# --------------------------------------------------------------------------- visualizations


def visualization_status(state: SimulatorState, visualization: dict[str, Any]) -> tuple[str, int]:
    lifecycle = state.lifecycles.get(visualization["id"])
    if lifecycle is None:
        return "success", 100
    step = state.step(lifecycle)
    if step < lifecycle.last_step:
        return "creating", min(round(100 * state.fraction(lifecycle, step)), 99)
    return {
        Outcome.FAILED: ("failed", round(100 * state.fraction(lifecycle, step))),
        Outcome.PARTIAL: ("partial_success", 100),
    }.get(lifecycle.outcome, ("success", 100))


def visualization_dates(state: SimulatorState, visualization: dict[str, Any]) -> list[str]:
    return sorted(visualization["legend"])


def visualization_assets(
    state: SimulatorState, visualization: dict[str, Any], status: str
) -> list[dict[str, Any]]:
    aoi = state.aois[visualization["aoi_id"]]
    dates = visualization_dates(state, visualization)
    asset_status = {"creating": "creating", "failed": "failed"}.get(status, "success")
    assets = []
    for n, date in enumerate(dates):
        this_status = "failed" if status == "partial_success" and n == len(dates) - 1 else asset_status
        assets.append(
            {
                "id": f"{visualization['id'][:24]}{n:012d}",
                "aoi_id": aoi["aoi_id"],
                "asset_type": "visualization",
                "name": f"{date}_visualization",
                "description": "Index visualization",
                "date": date.replace("_", "-"),
                "band_list": state.indices[visualization["index_id"]]["bands"],
                "resolution": visualization["resolution"],
                "path": (
                    f"https://tiles.pixxel.space/visualizations/{visualization['id']}/{date}.tif"
                    if this_status == "success"
                    else ""
                ),
                "progress": 100 if this_status in ("success", "failed") else 50,
                "status": this_status,
                "visualization_id": visualization["id"],
                "geometry": aoi["geometry"],
                "created_at": visualization["created_at"],
                "updated_at": visualization["updated_at"],
            }
        )
    return assets


def visualization_detail(state: SimulatorState, visualization: dict[str, Any]) -> dict[str, Any]:
    status, progress = visualization_status(state, visualization)
    index = state.indices[visualization["index_id"]]
    return {
        "id": visualization["id"],
        "aoi_id": visualization["aoi_id"],
        "index_id": index["id"],
        "index_name": index["name"],
        "expression": index["expression"],
        "expression_type": index["expression_type"],
        "rescale": index["rescale"],
        "type": "custom",
        "status": status,
        "progress": progress,
        "assets": visualization_assets(state, visualization, status),
        "metadata": {"legend": visualization["legend"] if status in ("success", "partial_success") else {}},
        "tenant_id": visualization["tenant_id"],
        "user_id": visualization["user_id"],
        "created_at": visualization["created_at"],
        "updated_at": visualization["updated_at"],
    }


def visualization_list_item(state: SimulatorState, visualization: dict[str, Any]) -> dict[str, Any]:
    status, progress = visualization_status(state, visualization)
    return {
        "id": visualization["id"],
        "aoi_id": visualization["aoi_id"],
        "index_id": visualization["index_id"],
        "status": status,
        "progress": progress,
        "tenant_id": visualization["tenant_id"],
        "user_id": visualization["user_id"],
        "created_at": visualization["created_at"],
        "updated_at": visualization["updated_at"],
    }


# --------------------------------------------------------------------------- jobs


def job_view(state: SimulatorState, job: dict[str, Any]) -> dict[str, Any]:
    lifecycle = state.lifecycles[job["id"]]
    step = state.step(lifecycle)
    task_count = len(job["tasks"])
    failing_task = job.get("failing_task")
    terminal = step >= lifecycle.last_step
    tasks = []
    for n, template in enumerate(job["tasks"]):
        started_at = state.step_time(lifecycle, n)
        if failing_task is not None and n == failing_task and step > n:
            status, progress = "failed", 40.0
        elif failing_task is not None and n > failing_task and step > failing_task:
            status, progress = "skipped", 0.0
        elif step > n:
            status, progress = "completed", 100.0
        elif step == n:
            status = "running"
            progress = round(100 * min(max(state.fraction(lifecycle, step) * task_count - n, 0.05), 0.95), 1)
        else:
            status, progress = "pending", 0.0
        finished = status in ("completed", "failed")
        failed = status == "failed"
        tasks.append(
            {
                "id": template["id"],
                "name": template["name"],
                "block_info": template["block_info"],
                "depends_on": template["depends_on"],
                "status": status,
                "progress": progress,
                "state_msg": {
                    "pending": "waiting for dependencies",
                    "running": "processing",
                    "completed": "done",
                    "failed": "block execution failed",
                    "skipped": "not run: an upstream task failed",
                }[status],
                "err_msg": _message(lifecycle, "block exited with status 137 (out of memory)")
                if failed
                else "",
                "failure_type": (
                    (
                        lifecycle.rule.failure_type
                        if lifecycle.rule and lifecycle.rule.failure_type
                        else DEFAULT_FAILURE_TYPE
                    )
                    if failed
                    else ""
                ),
                "estimated_time_duration": template["estimated_time_duration"],
                "time_taken": f"{template['estimated_time_duration']}s" if finished else "",
                "created_at": job["created_at"],
                "updated_at": format_t(state.now()),
                "recv_time": format_t(started_at) if status != "pending" else "",
                "send_time": format_t(started_at) if status != "pending" else "",
                "block_inf_start_time": format_t(started_at) if status not in ("pending", "skipped") else "",
                "block_inf_end_time": format_t(state.step_time(lifecycle, n + 1)) if finished else "",
                "finished_at": format_t(state.step_time(lifecycle, n + 1)) if finished else "",
                "inputs": template["inputs"],
                "result": (
                    [
                        {
                            "format": "raster",
                            "name": "output",
                            "type": "url",
                            "value": f"s3://pixxel-dexter/jobs/{job['id']}/{template['name']}/output.tif",
                        }
                    ]
                    if status == "completed"
                    else []
                ),
                "info_logs": [{"level": "info", "msg": f"{template['name']} {status}"}],
                "disclaimer": [],
            }
        )
    status = ("failed" if lifecycle.outcome is Outcome.FAILED else "completed") if terminal else "running"
    progress = 100 if terminal else int(100 * state.fraction(lifecycle, step))
    if status == "failed":
        progress = int(100 * (failing_task or 0) / max(task_count, 1))
    finished_at = format_t(state.step_time(lifecycle, lifecycle.last_step)) if terminal else ""
    return {
        "id": job["id"],
        "workflow_id": job["workflow_id"],
        "created_by": job["created_by"],
        "status": status,
        "progress": str(progress),
        "tasks": tasks,
        "val_errors": job["val_errors"],
        "spec": job["spec"],
        "cost": job["cost"],
        "estimated_duration": job["estimated_duration"],
        "time_taken": f"{int(state.step_time(lifecycle, lifecycle.last_step) - lifecycle.created_at)}s"
        if terminal
        else "",
        "created_at": job["created_at"],
        "updated_at": format_t(state.now()),
        "exec_created_at": job["created_at"],
        "exec_updated_at": format_t(state.now()),
        "finished_at": finished_at,
    }


# --------------------------------------------------------------------------- insights


def insight_view(state: SimulatorState, insight: dict[str, Any]) -> dict[str, Any]:
    lifecycle = state.lifecycles[insight["id"]]
    step = state.step(lifecycle)
    if step < lifecycle.last_step:
        status, progress = "running", round(100 * state.fraction(lifecycle, step), 1)
    elif lifecycle.outcome is Outcome.FAILED:
        status, progress = "failed", round(100 * state.fraction(lifecycle, step - 1), 1)
    else:
        status, progress = "completed", 100.0
    outputs = insight["outputs"] if status == "completed" else []
    return {
        "id": insight["id"],
        "name": insight["name"],
        "aoi_id": insight["aoi_id"],
        "status": status,
        "progress": progress,
        "err_msg": _message(lifecycle, "insight block failed: no valid pixels in the input image")
        if status == "failed"
        else "",
        "estimated_time_in_min": insight["estimated_time_in_min"],
        "cost": insight["cost"],
        "input": insight["input"],
        "output": outputs,
        "metadata": insight["metadata"],
        "created_by": insight["created_by"],
        "created_at": insight["created_at"],
        "deleted_at": insight.get("deleted_at", ""),
    }


# --------------------------------------------------------------------------- signed files


def publish(state: SimulatorState, artifact: files.Artifact, filename: str, base_url: str) -> str:
    """Put an artefact in the file store (once) and return a fresh absolute signed URL for it."""
    if artifact.artifact_id not in state.files:
        state.files.register(artifact)
    return base_url + state.signer.sign(artifact.artifact_id, filename)


def package_url(
    state: SimulatorState,
    artifact_id: str,
    filename: str,
    title: str,
    metadata: dict[str, Any],
    base_url: str,
) -> str:
    if artifact_id in state.files:
        return base_url + state.signer.sign(artifact_id, filename)
    options: dict[str, Any] = {"filename": filename, "title": title, "seed": state.seed, "metadata": metadata}
    try:
        artifact = files.make_package(artifact_id, size_bytes=state.package_size_bytes, **options)
    except ValueError:
        # Asked for fewer bytes than the smallest valid package: serve that smallest package.
        artifact = files.make_package(artifact_id, **options)
    return publish(state, artifact, filename, base_url)


def simple_status(
    state: SimulatorState, resource_id: str, sequence: tuple[str, str, str], failed: str
) -> str:
    """Status of a three-step resource (``sequence[0]`` -> ``sequence[1]`` -> ``sequence[2]``)."""
    lifecycle = state.lifecycles[resource_id]
    step = state.step(lifecycle)
    if step >= lifecycle.last_step:
        return failed if lifecycle.outcome is Outcome.FAILED else sequence[2]
    return sequence[min(step, 1)]


def package_view(state: SimulatorState, package: dict[str, Any], base_url: str) -> dict[str, Any]:
    status = simple_status(state, package["id"], ("pending", "pending", "ready"), "failed")
    url = ""
    if status == "ready":
        url = package_url(
            state,
            package["id"],
            package["filename"],
            package["title"],
            {"source": package["source"]},
            base_url,
        )
    view = {"id": package["id"], "status": status, "signed_url": url}
    view.update(package["extra"])
    return view


def aoi_download_view(state: SimulatorState, download: dict[str, Any], base_url: str) -> dict[str, Any]:
    status = simple_status(state, download["download_id"], ("PENDING", "IN_PROGRESS", "SUCCESS"), "FAILED")
    url = ""
    if status == "SUCCESS":
        url = package_url(
            state,
            download["download_id"],
            f"aoi_{download['aoi_id'][:8]}_assets.zip",
            "AOI assets",
            {"aoi_id": download["aoi_id"], "asset_ids": download["asset_ids"]},
            base_url,
        )
    return {"download_id": download["download_id"], "status": status, "signed_url": url}


def catalog_download_view(state: SimulatorState, download: dict[str, Any], base_url: str) -> dict[str, Any]:
    status = simple_status(state, download["id"], ("created", "in_progress", "success"), "failed")
    url = ""
    if status == "success":
        url = package_url(
            state,
            download["id"],
            f"catalogs_{download['id'][:8]}.zip",
            "Pixxel catalog download",
            {"catalog_ids": download["catalog_ids"]},
            base_url,
        )
    return {"id": download["id"], "status": status, "signed_url": url}


# --------------------------------------------------------------------------- orders


def _task_offsets(item: dict[str, Any]) -> list[int]:
    return [0 if item["type"] == "ARCHIVE" else n for n in range(len(item["task_plan"]))]


def order_item_terminal_step(item: dict[str, Any]) -> int:
    return max(_task_offsets(item), default=0) + 2


def _task_status(lifecycle: Lifecycle, step: int, offset: int, n: int, count: int) -> str:
    terminal = step >= offset + 2
    if lifecycle.outcome is Outcome.CANCELLED and step >= 1:
        return "CANCELLED"
    if step < offset + 1:
        return "SUBMITTED"
    if not terminal:
        return "IN_PROGRESS"
    if lifecycle.outcome is Outcome.FAILED:
        return "FAILED"
    if lifecycle.outcome is Outcome.PARTIAL:
        if count == 1:
            return "PARTIALLY_FULFILLED"
        return "FAILED" if n == count - 1 else "FULFILLED"
    return "FULFILLED"


# ``clerk.Task.delivery_status`` has its own enum (PENDING, SUCCESSFUL, FAILED, NOT_APPLICABLE) next to
# the ``clerk.DeliveryStatus`` it also references; tasks use their own, deliveries and catalogs the other.
TASK_DELIVERY_STATUS = {
    "UNSPECIFIED": "NOT_APPLICABLE",
    "CREATED": "PENDING",
    "IN_PROGRESS": "PENDING",
    "SUCCESS": "SUCCESSFUL",
    "FAILED": "FAILED",
}


def _auto_delivery_status(
    state: SimulatorState, item: dict[str, Any], step: int, offset: int, task_status: str
) -> str:
    if not item.get("cloud_delivery"):
        return "UNSPECIFIED"
    if task_status not in ("FULFILLED", "PARTIALLY_FULFILLED"):
        return "CREATED" if task_status in ("SUBMITTED", "IN_PROGRESS") else "UNSPECIFIED"
    delivery_lifecycle = state.lifecycles.get(f"auto-delivery:{item['id']}:{offset}")
    if step <= offset + 2:
        return "IN_PROGRESS"
    if delivery_lifecycle is not None and delivery_lifecycle.outcome is Outcome.FAILED:
        return "FAILED"
    if delivery_lifecycle is not None and delivery_lifecycle.outcome is Outcome.STALL:
        return "IN_PROGRESS"
    return "SUCCESS"


def sync_order_item(state: SimulatorState, item: dict[str, Any]) -> dict[str, Any]:
    """Work out an order item's status, tasks, catalogs and automatic deliveries as of now."""
    lifecycle = state.lifecycles[item["id"]]
    step = state.step(lifecycle)
    offsets = _task_offsets(item)
    count = len(offsets)
    tasks = []
    delivery_states: dict[str, str] = {}
    for n, (plan, offset) in enumerate(zip(item["task_plan"], offsets, strict=False)):
        status = _task_status(lifecycle, step, offset, n, count)
        delivery_status = _auto_delivery_status(state, item, step, offset, status)
        task = {
            "id": plan["id"],
            "order_item_id": item["id"],
            "type": plan["type"],
            "status": status,
            "delivery_status": TASK_DELIVERY_STATUS[delivery_status],
            "start_date": plan["start_date"],
            "end_date": plan["end_date"],
            "number_of_strips": plan["number_of_strips"],
            "tokens_used": plan["tokens_used"],
            "transaction_id": plan["transaction_id"],
            "created_at": item["created_at"],
            "created_by": item["created_by"],
            "updated_at": format_t(state.step_time(lifecycle, min(step, offset + 2))),
            "updated_by": item["created_by"],
        }
        tasks.append(task)
        delivery_states[plan["id"]] = delivery_status
        if status in ("FULFILLED", "PARTIALLY_FULFILLED"):
            _ensure_catalog(state, item, plan, task, lifecycle, offset)
    terminal_step = order_item_terminal_step(item)
    if lifecycle.outcome is Outcome.CANCELLED and step >= 1:
        status = "CANCELLED"
    elif step < terminal_step:
        status = "ACTIVE"
    else:
        status = {
            Outcome.FAILED: "FAILED",
            Outcome.PARTIAL: "PARTIALLY_FULFILLED",
        }.get(lifecycle.outcome, "FULFILLED")
    validation_errors: list[dict[str, list[str]]] = []
    if status == "FAILED":
        validation_errors = [
            {"capture": [_message(lifecycle, "capture failed: persistent cloud cover above the limit")]}
        ]
    elif status == "CANCELLED":
        validation_errors = [{"status": [_message(lifecycle, "order item cancelled by Pixxel operations")]}]
    feasibility = item["feasibility_status"]
    if item["type"] != "ARCHIVE" and status == "FAILED":
        feasibility = "FAILED"
    return {
        "status": status,
        "tasks": tasks,
        "validation_errors": validation_errors,
        "feasibility_status": feasibility,
        "delivery_states": delivery_states,
    }


def _ensure_catalog(
    state: SimulatorState,
    item: dict[str, Any],
    plan: dict[str, Any],
    task: dict[str, Any],
    lifecycle: Lifecycle,
    offset: int,
) -> None:
    if plan.get("catalog_id"):
        return
    catalog_id = state.new_id()
    plan["catalog_id"] = catalog_id
    created = format_t(state.step_time(lifecycle, offset + 2))
    stac = plan["stac_item"]
    state.catalogs[catalog_id] = {
        "id": catalog_id,
        "task_id": plan["id"],
        "order_id": item["order_id"],
        "order_item_id": item["id"],
        "bandset_id": (item.get("bandset") or {}).get("bandset_id", ""),
        "area": float(item["area"]),
        "org_id": state.org_id,
        "created_by": item["created_by"],
        "updated_by": item["created_by"],
        "created_at": created,
        "updated_at": created,
        "stac_item": stac,
    }
    if item.get("cloud_delivery"):
        delivery_id = state.new_id()
        key = f"auto-delivery:{item['id']}:{offset}"
        rule = state.scenarios.claim(
            "delivery", delivery_id, [catalog_id, item["id"]], {"catalog_id": catalog_id}
        )
        state.lifecycles[key] = Lifecycle(
            kind="delivery",
            resource_id=delivery_id,
            created_at=lifecycle.created_at,
            last_step=0,
            outcome=rule.outcome if rule else Outcome.SUCCESS,
            rule=rule,
        )
        state.deliveries[delivery_id] = {
            "delivery_id": delivery_id,
            "catalog_id": catalog_id,
            "task_id": plan["id"],
            "order_item_id": item["id"],
            "auto_key": key,
            "auto_offset": offset,
            "cloud_delivery": dict(item["cloud_delivery"]),
            "target_path": f"{item['order_id']}/{stac['id']}.zip",
            "created_by": item["created_by"],
            "created_at": created,
        }


def catalog_stac(state: SimulatorState, stac: dict[str, Any]) -> dict[str, Any]:
    """A STAC item as ``clerk.STACItem`` (numeric bbox, integer gsd, clerk properties)."""
    props = stac["properties"]
    return {
        "id": stac["id"],
        "type": "Feature",
        "collection": stac["collection"],
        "stac_version": stac["stac_version"],
        "stac_extensions": list(stac["stac_extensions"]),
        "bbox": [float(v) for v in stac["bbox"]],
        "geometry": stac["geometry"],
        "properties": {
            "datetime": props["datetime"],
            "created": props["created"],
            "updated": props["updated"],
            "platform": props["platform"],
            "constellation": props["constellation"],
            "instruments": props["instruments"],
            "eo:cloud_cover": props["eo:cloud_cover"],
            "gsd": int(props["gsd"]),
            "proj:epsg": 4326,
            "proj:shape": props["proj:shape"],
            "proj:transform": props["proj:transform"],
            "view:off_nadir": props["view:off_nadir"],
            "view:sun_azimuth": props["view:sun_azimuth"],
            "view:sun_elevation": props["view:sun_elevation"],
        },
        "assets": {
            key: {k: v for k, v in asset.items() if k in ("href", "type", "title", "roles", "eo:bands")}
            for key, asset in stac["assets"].items()
        },
        "links": [dict(link) for link in stac["links"]],
    }


def delivery_status(state: SimulatorState, delivery: dict[str, Any]) -> str:
    if "auto_key" in delivery:
        item = state.order_items[delivery["order_item_id"]]
        synced = sync_order_item(state, item)
        return str(synced["delivery_states"][delivery["task_id"]])
    return simple_status(state, delivery["delivery_id"], ("CREATED", "IN_PROGRESS", "SUCCESS"), "FAILED")


def delivery_view(state: SimulatorState, delivery: dict[str, Any]) -> dict[str, Any]:
    status = delivery_status(state, delivery)
    return {
        "delivery_id": delivery["delivery_id"],
        "catalog_id": delivery["catalog_id"],
        "task_id": delivery["task_id"],
        "cloud_delivery": delivery["cloud_delivery"],
        "status": status,
        "target_path": delivery["target_path"],
        "created_by": delivery["created_by"],
        "created_at": delivery["created_at"],
        "updated_by": delivery["created_by"],
        "updated_at": format_t(state.now()),
    }


def catalog_view(state: SimulatorState, catalog: dict[str, Any]) -> dict[str, Any]:
    deliveries = [d for d in state.deliveries.values() if d["catalog_id"] == catalog["id"]]
    status = delivery_status(state, deliveries[-1]) if deliveries else "UNSPECIFIED"
    return {
        "id": catalog["id"],
        "task_id": catalog["task_id"],
        "bandset_id": catalog["bandset_id"],
        "area": catalog["area"],
        "org_id": catalog["org_id"],
        "delivery_status": status,
        "details": catalog_stac(state, catalog["stac_item"]),
        "created_by": catalog["created_by"],
        "updated_by": catalog["updated_by"],
        "created_at": catalog["created_at"],
        "updated_at": catalog["updated_at"],
    }


def sync_all_order_items(state: SimulatorState) -> None:
    """Bring every order item up to date (so fulfilled tasks have yielded their catalogs)."""
    for item in list(state.order_items.values()):
        if item["id"] in state.lifecycles:
            sync_order_item(state, item)


def cosmos_item(item: dict[str, Any]) -> dict[str, Any]:
    """A STAC item as ``cosmos.Item``, whose ``bbox`` the spec types as strings."""
    view = dict(item)
    view["bbox"] = [repr(float(v)) for v in item["bbox"]]
    return view
