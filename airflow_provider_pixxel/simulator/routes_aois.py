"""AOIs, their assets and asset downloads, and image search (``POST /v0/search``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from airflow_provider_pixxel.simulator import progress
from airflow_provider_pixxel.simulator.routing import (
    Call,
    bbox_of,
    boxes_intersect,
    check_polygon,
    comma_list,
    operation,
    paginate,
    parse_instant,
)
from airflow_provider_pixxel.simulator.state import (
    SimulatorState,
    bad_request,
    conflict,
    format_offset,
    format_space,
    not_found,
)

PROVIDERS = ("pixxel", "planetary")


def get_aoi(state: SimulatorState, aoi_id: str) -> dict[str, Any]:
    aoi = state.aois.get(aoi_id)
    if aoi is None:
        raise not_found("AOI", aoi_id)
    return aoi


def require_processed(state: SimulatorState, aoi: dict[str, Any]) -> None:
    status, progress_value = progress.aoi_status(state, aoi)
    if status not in ("success", "partial_success"):
        raise bad_request(
            f"AOI {aoi['aoi_id']!r} is {status} ({progress_value}%); wait until its status is success",
            details={"aoi_id": aoi["aoi_id"], "status": status},
        )


def aoi_assets(state: SimulatorState, aoi_id: str) -> list[dict[str, Any]]:
    """All assets of an AOI as ``atlas.AssetReadModel``: imagery first, then visualizations."""
    assets = [progress.asset_view(state, a) for a in state.assets.values() if a["aoi_id"] == aoi_id]
    for visualization in state.visualizations.values():
        if visualization["aoi_id"] == aoi_id:
            status, _ = progress.visualization_status(state, visualization)
            assets.extend(progress.visualization_assets(state, visualization, status))
    return assets


def register(router: APIRouter, state: SimulatorState) -> None:
    @operation(router, state, "GET", "/v0/aois")
    def list_aois(state: SimulatorState, call: Call) -> Any:
        aois = list(state.aois.values())
        query = call.query
        if query.get("aoi_id"):
            aois = [a for a in aois if a["aoi_id"] == query["aoi_id"]]
        if query.get("aoi_name"):
            aois = [a for a in aois if query["aoi_name"].lower() in a["name"].lower()]
        if query.get("project_ids"):
            wanted = set(comma_list(query["project_ids"]))
            aois = [a for a in aois if a["project_id"] in wanted]
        for field in ("created_at", "updated_at"):
            if query.get(field):
                aois = [a for a in aois if a[field].startswith(query[field])]
        page, pagination = paginate(aois, call.int_query("offset", 0), call.int_query("limit", 10))
        return {"aois": [progress.aoi_view(state, a) for a in page], "pagination": pagination}

    @operation(router, state, "POST", "/v0/aois", status=201)
    def create_aoi(state: SimulatorState, call: Call) -> Any:
        body = call.body
        name = body["name"].strip()
        if not name:
            raise bad_request("name: must not be empty")
        if body["project_id"] not in state.projects:
            raise bad_request(
                f"project_id: project {body['project_id']!r} does not exist or is not shared with you"
            )
        satellite = state.satellites.get(body["satellite_id"])
        if satellite is None:
            raise bad_request(
                f"satellite_id: unknown satellite {body['satellite_id']!r}; see GET /v0/satellites",
                details={"known": sorted(state.satellites)},
            )
        if body["provider"] not in PROVIDERS:
            raise bad_request(f"provider: {body['provider']!r} is not one of {', '.join(PROVIDERS)}")
        check_polygon(body["geometry"], "geometry")
        if not body["item_ids"]:
            raise bad_request("item_ids: at least one image is needed")
        collections = {c["id"] for c in satellite["collections"]}
        for n, item_id in enumerate(body["item_ids"]):
            item = state.items.get(item_id)
            if item is None:
                raise bad_request(
                    f"item_ids[{n}]: image {item_id!r} not found; find images with POST /v0/search"
                )
            if item["collection"] not in collections:
                raise bad_request(
                    f"item_ids[{n}]: image {item_id!r} was not taken by satellite {satellite['name']}"
                )
        if any(a["name"] == name and a["project_id"] == body["project_id"] for a in state.aois.values()):
            raise conflict(f"an AOI named {name!r} already exists in this project", details={"name": name})
        aoi_id = state.new_id()
        now = state.now()
        aoi = {
            "aoi_id": aoi_id,
            "name": name,
            "description": body["description"],
            "satellite_id": body["satellite_id"],
            "provider": body["provider"],
            "project_id": body["project_id"],
            "item_ids": list(dict.fromkeys(body["item_ids"])),
            "geometry": {"type": "Polygon", "coordinates": body["geometry"]["coordinates"]},
            "is_favourite": False,
            "created_at": format_offset(now),
            "updated_at": format_offset(now),
            "user_id": state.user_id,
        }
        state.aois[aoi_id] = aoi
        for item_id in aoi["item_ids"]:
            item = state.items[item_id]
            bands = [b["name"] for b in item["assets"]["data"].get("eo:bands", [])]
            for asset_type in ("stac_item", "mosaic"):
                asset_id = state.new_id()
                state.assets[asset_id] = {
                    "id": asset_id,
                    "aoi_id": aoi_id,
                    "asset_type": asset_type,
                    "name": item_id + ("_mosaic" if asset_type == "mosaic" else ""),
                    "description": "This asset is mosaic file" if asset_type == "mosaic" else "Source scene",
                    "date": item["properties"]["datetime"][:10],
                    "band_list": bands,
                    "resolution": float(item["properties"]["gsd"]),
                    "path": f"https://storage.pixxel.space/aois/{aoi_id}/{asset_id}.tif",
                    "visualization_id": "",
                    "created_at": format_space(now),
                    "updated_at": format_space(now),
                }
        last_asset = list(state.assets.values())[-1]
        last_asset["fails_on_partial"] = True
        state.start_lifecycle("aoi", aoi_id, last_step=progress.AOI_STEPS, keys=[name], resource=aoi)
        state.record_created("aoi", aoi_id, aoi)
        return progress.aoi_view(state, aoi)

    @operation(router, state, "GET", "/v0/aoi/{aoi_id}")
    def get_aoi_by_id(state: SimulatorState, call: Call) -> Any:
        return progress.aoi_view(state, get_aoi(state, call.path_params["aoi_id"]))

    @operation(router, state, "GET", "/v0/aois/{aoi_id}/assets")
    def list_assets(state: SimulatorState, call: Call) -> Any:
        aoi = get_aoi(state, call.path_params["aoi_id"])
        page, pagination = paginate(
            aoi_assets(state, aoi["aoi_id"]), call.int_query("offset", 0), call.int_query("limit", 10)
        )
        return {"assets": page, "pagination": pagination}

    @operation(router, state, "POST", "/v0/aois/{aoi_id}/downloads", status=201)
    def create_aoi_download(state: SimulatorState, call: Call) -> Any:
        aoi = get_aoi(state, call.path_params["aoi_id"])
        asset_ids = call.body["asset_ids"]
        if not asset_ids:
            raise bad_request("asset_ids: name at least one asset of the AOI")
        require_processed(state, aoi)
        known = {a["id"]: a for a in aoi_assets(state, aoi["aoi_id"])}
        unknown = [a for a in asset_ids if a not in known]
        if unknown:
            raise bad_request(
                f"asset_ids: {', '.join(unknown)} not found in AOI {aoi['aoi_id']}",
                details={"unknown": unknown},
            )
        not_ready = [a for a in asset_ids if known[a]["status"] != "success"]
        if not_ready:
            raise bad_request(f"asset_ids: {', '.join(not_ready)} are not ready to download")
        download_id = state.new_id()
        download = {"download_id": download_id, "aoi_id": aoi["aoi_id"], "asset_ids": list(asset_ids)}
        state.aoi_downloads[download_id] = download
        state.start_lifecycle(
            "aoi_download",
            download_id,
            last_step=progress.SIMPLE_STEPS,
            keys=[aoi["aoi_id"]],
            resource=download,
        )
        state.record_created("aoi_download", download_id, download)
        return progress.aoi_download_view(state, download, call.base_url)

    @operation(router, state, "GET", "/v0/aois/{aoi_id}/downloads/{download_id}")
    def get_aoi_download(state: SimulatorState, call: Call) -> Any:
        aoi = get_aoi(state, call.path_params["aoi_id"])
        download = state.aoi_downloads.get(call.path_params["download_id"])
        if download is None or download["aoi_id"] != aoi["aoi_id"]:
            raise not_found("download", call.path_params["download_id"])
        return progress.aoi_download_view(state, download, call.base_url)

    @operation(router, state, "POST", "/v0/search")
    def search_images(state: SimulatorState, call: Call) -> Any:
        body = call.body
        start = parse_instant(body["start_date"], "start_date")
        end = parse_instant(body["end_date"], "end_date")
        if end < start:
            raise bad_request("end_date: must not be before start_date")
        if not body["satellites"]:
            raise bad_request("satellites: name at least one {collection_id, satellite_id}")
        collections = set()
        for n, wanted in enumerate(body["satellites"]):
            satellite = state.satellites.get(wanted["satellite_id"])
            if satellite is None:
                raise bad_request(
                    f"satellites[{n}].satellite_id: unknown satellite {wanted['satellite_id']!r}"
                )
            known = {c["id"] for c in satellite["collections"]}
            if wanted["collection_id"] not in known:
                raise bad_request(
                    f"satellites[{n}].collection_id: {wanted['collection_id']!r} is not a collection of "
                    f"{satellite['name']} (one of {', '.join(sorted(known))})"
                )
            collections.add(wanted["collection_id"])
        area = bbox_of(check_polygon(body["geometry"], "geometry", allow_multi=True))
        filters = body.get("filters") or []
        for n, condition in enumerate(filters):
            if condition["id"] not in ("eo:cloud_cover", "view:off_nadir"):
                raise bad_request(
                    f"filters[{n}].id: cannot filter on {condition['id']!r}; "
                    "use eo:cloud_cover or view:off_nadir"
                )
            if condition["min"] > condition["max"]:
                raise bad_request(f"filters[{n}]: min is greater than max")
        found = []
        for item in state.items.values():
            if item["collection"] not in collections:
                continue
            moment = parse_instant(item["properties"]["datetime"], "datetime")
            if not start <= moment <= end or not boxes_intersect(item["bbox"], area):
                continue
            if all(c["min"] <= item["properties"][c["id"]] <= c["max"] for c in filters):
                found.append(item)
        found.sort(key=lambda i: i["properties"]["datetime"], reverse=True)
        limit = body.get("limit") or 10
        page = found[:limit]
        return {
            "items": {item["id"]: progress.cosmos_item(item) for item in page},
            "pagination": {"limit": limit, "skip": 0, "total": len(found)},
        }
