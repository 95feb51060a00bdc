"""The STAC archive, purchased catalogs, cloud deliveries and catalog downloads."""

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
    parse_instant,
    parse_interval,
)
from airflow_provider_pixxel.simulator.state import SimulatorState, bad_request, conflict, format_t, not_found

CATALOG_SEARCH_DEFAULT_LIMIT = 2
ARCHIVE_SEARCH_DEFAULT_LIMIT = 10
QUERY_ALIASES = {
    "cloudcover": "eo:cloud_cover",
    "cloud_cover": "eo:cloud_cover",
    "off_nadir": "view:off_nadir",
}
QUERY_OPERATORS = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


def _feature_collection(
    items: list[dict[str, Any]], offset: int, limit: int, total: int, href: str
) -> dict[str, Any]:
    links = [{"rel": "self", "href": f"{href}?offset={offset}&limit={limit}", "type": "application/geo+json"}]
    if offset + limit < total:
        links.append(
            {
                "rel": "next",
                "href": f"{href}?offset={offset + limit}&limit={limit}",
                "type": "application/geo+json",
            }
        )
    return {"type": "FeatureCollection", "features": [progress.cosmos_item(i) for i in items], "links": links}


def _matches_query(properties: dict[str, Any], query: dict[str, Any] | None, where: str) -> bool:
    for name, conditions in (query or {}).items():
        key = QUERY_ALIASES.get(name, name)
        if not isinstance(conditions, dict):
            raise bad_request(f'{where}.{name}: expected an object such as {{"gt": 0, "lt": 10}}')
        value = properties.get(key)
        for operator, operand in conditions.items():
            compare = QUERY_OPERATORS.get(operator)
            if compare is None:
                raise bad_request(
                    f"{where}.{name}.{operator}: unknown operator; use {', '.join(QUERY_OPERATORS)}"
                )
            if value is None:
                return False
            try:
                if not compare(value, operand):
                    return False
            except TypeError:
                raise bad_request(
                    f"{where}.{name}.{operator}: cannot compare {operand!r} with {value!r}"
                ) from None
    return True


def _spatial_filter(body: dict[str, Any]) -> list[float] | None:
    if body.get("bbox") is not None:
        box = body["bbox"]
        if len(box) != 4:
            raise bad_request("bbox: expected four numbers [west, south, east, north]")
        return box
    if body.get("intersects") is not None:
        return bbox_of(check_polygon(body["intersects"], "intersects", allow_multi=True))
    return None


def _stac_filter(
    items: list[dict[str, Any]], body: dict[str, Any], query_field: str = "query"
) -> list[dict[str, Any]]:
    box = _spatial_filter(body)
    interval = parse_interval(body["datetime"], "datetime") if body.get("datetime") else None
    found = []
    for item in items:
        if body.get("collections") and item["collection"] not in body["collections"]:
            continue
        if box is not None and not boxes_intersect(item["bbox"], box):
            continue
        if interval is not None:
            moment = parse_instant(item["properties"]["datetime"], "datetime")
            if not interval[0] <= moment <= interval[1]:
                continue
        if not _matches_query(item["properties"], body.get(query_field), query_field):
            continue
        found.append(item)
    return found


def _page_bounds(body: dict[str, Any], default_limit: int) -> tuple[int, int]:
    offset = body.get("offset") or 0
    limit = body.get("limit") or default_limit
    if offset < 0:
        raise bad_request("offset: must be 0 or more")
    if limit < 1:
        raise bad_request("limit: must be 1 or more")
    return offset, limit


def _catalogs_of_items(state: SimulatorState, item_ids: list[str], field: str) -> list[str]:
    catalog_ids = []
    for n, item_id in enumerate(item_ids):
        if item_id not in state.order_items:
            raise bad_request(f"{field}[{n}]: order item {item_id!r} does not exist")
        found = [c["id"] for c in state.catalogs.values() if c["order_item_id"] == item_id]
        if not found:
            raise bad_request(f"{field}[{n}]: order item {item_id!r} has no delivered images yet")
        catalog_ids += found
    return catalog_ids


def _one_source(entry: dict[str, Any], where: str) -> tuple[str, list[str]]:
    catalog_ids = entry.get("catalog_ids") or []
    item_ids = entry.get("order_item_ids") or []
    if bool(catalog_ids) == bool(item_ids):
        raise bad_request(f"{where}: give exactly one of catalog_ids or order_item_ids")
    return ("catalog_ids", catalog_ids) if catalog_ids else ("order_item_ids", item_ids)


def register(router: APIRouter, state: SimulatorState) -> None:
    @operation(router, state, "GET", "/v0/archives/collections")
    def list_collections(state: SimulatorState, call: Call) -> Any:
        wanted = set(comma_list(call.query.get("ids")))
        return {"collections": [c for c in state.collections.values() if not wanted or c["id"] in wanted]}

    @operation(router, state, "GET", "/v0/archives/collections/{cid}")
    def get_collection(state: SimulatorState, call: Call) -> Any:
        collection = state.collections.get(call.path_params["cid"])
        if collection is None:
            raise not_found("collection", call.path_params["cid"])
        return collection

    @operation(router, state, "GET", "/v0/archives/collections/{cid}/items")
    def list_collection_items(state: SimulatorState, call: Call) -> Any:
        cid = call.path_params["cid"]
        if cid not in state.collections:
            raise not_found("collection", cid)
        offset, limit = _page_bounds(
            {
                "offset": call.int_query("offset", 0),
                "limit": call.int_query("limit", ARCHIVE_SEARCH_DEFAULT_LIMIT),
            },
            ARCHIVE_SEARCH_DEFAULT_LIMIT,
        )
        items = [i for i in state.items.values() if i["collection"] == cid]
        return _feature_collection(
            items[offset : offset + limit],
            offset,
            limit,
            len(items),
            f"{call.base_url}/v0/archives/collections/{cid}/items",
        )

    @operation(router, state, "GET", "/v0/archives/collections/{cid}/items/{id}")
    def get_collection_item(state: SimulatorState, call: Call) -> Any:
        item = state.items.get(call.path_params["id"])
        if item is None or item["collection"] != call.path_params["cid"]:
            raise not_found("item", call.path_params["id"])
        return progress.cosmos_item(item)

    @operation(router, state, "POST", "/v0/archives/search")
    def search_archive(state: SimulatorState, call: Call) -> Any:
        body = call.body
        for collection in body.get("collections") or []:
            if collection not in state.collections:
                raise not_found("collection", collection)
        offset, limit = _page_bounds(body, ARCHIVE_SEARCH_DEFAULT_LIMIT)
        items = list(state.items.values())
        if body.get("ids"):
            items = [i for i in items if i["id"] in set(body["ids"])]
        found = _stac_filter(items, body)
        for order in body.get("sortby") or []:
            field = (
                (order.get("field") or "").replace("properties->>", "").strip("'").replace("properties.", "")
            )
            if field:
                found.sort(
                    key=lambda i, f=field: str(i["properties"].get(f, i.get(f, ""))),  # type: ignore[misc]
                    reverse=order.get("direction", "asc").lower() == "desc",
                )
        return _feature_collection(
            found[offset : offset + limit], offset, limit, len(found), f"{call.base_url}/v0/archives/search"
        )

    @operation(router, state, "POST", "/v0/catalogs/search")
    def search_catalogs(state: SimulatorState, call: Call) -> Any:
        body = call.body
        offset, limit = _page_bounds(body, CATALOG_SEARCH_DEFAULT_LIMIT)
        progress.sync_all_order_items(state)
        catalogs = list(state.catalogs.values())
        for field, key in (("ids", "id"), ("order_ids", "order_id"), ("order_item_ids", "order_item_id")):
            if body.get(field):
                wanted = set(body[field])
                catalogs = [c for c in catalogs if c[key] in wanted]
        if body.get("item_ids"):
            wanted = set(body["item_ids"])
            catalogs = [c for c in catalogs if c["stac_item"]["id"] in wanted]
        kept = {id(i) for i in _stac_filter([c["stac_item"] for c in catalogs], body)}
        catalogs = [c for c in catalogs if id(c["stac_item"]) in kept]
        for order in reversed(body.get("sort_by") or []):
            for field, direction in order.items():
                catalogs.sort(
                    key=lambda c, f=field: str(  # type: ignore[misc]
                        c.get(f, c["stac_item"]["properties"].get(f.split(".")[-1], ""))
                    ),
                    reverse=direction == "DESC",
                )
        page = catalogs[offset : offset + limit]
        return {
            "catalogs": [progress.catalog_view(state, c) for c in page],
            "pagination": {"limit": limit, "offset": offset, "total": len(catalogs)},
        }

    @operation(router, state, "GET", "/v0/catalogs/deliveries")
    def list_deliveries(state: SimulatorState, call: Call) -> Any:
        progress.sync_all_order_items(state)
        query = call.query
        found = []
        for delivery in state.deliveries.values():
            catalog = state.catalogs[delivery["catalog_id"]]
            if query.get("delivery_id") and delivery["delivery_id"] != query["delivery_id"]:
                continue
            if query.get("catalog_id") and delivery["catalog_id"] != query["catalog_id"]:
                continue
            if query.get("task_id") and delivery["task_id"] != query["task_id"]:
                continue
            if query.get("order_item_id") and catalog["order_item_id"] != query["order_item_id"]:
                continue
            found.append(progress.delivery_view(state, delivery))
        return {"deliveries": found}

    @operation(router, state, "POST", "/v0/catalogs/deliveries", status=201)
    def create_deliveries(state: SimulatorState, call: Call) -> Any:
        progress.sync_all_order_items(state)
        requested = []
        for n, entry in enumerate(call.body["deliveries"]):
            where = f"deliveries[{n}]"
            field, ids = _one_source(entry, where)
            store_id = entry["cloud_info"]["config"]
            if store_id not in state.stores:
                raise bad_request(
                    f"{where}.cloud_info.config: store {store_id!r} does not exist; see GET /v0/stores"
                )
            if field == "catalog_ids":
                for m, catalog_id in enumerate(ids):
                    if catalog_id not in state.catalogs:
                        raise bad_request(f"{where}.catalog_ids[{m}]: catalog {catalog_id!r} does not exist")
                catalog_ids = list(ids)
            else:
                catalog_ids = _catalogs_of_items(state, ids, f"{where}.order_item_ids")
            path = entry["cloud_info"].get("path", "")
            for catalog_id in catalog_ids:
                for existing in state.deliveries.values():
                    if (
                        existing["catalog_id"] == catalog_id
                        and existing["cloud_delivery"] == {"config": store_id, "path": path}
                        and progress.delivery_status(state, existing) in ("CREATED", "IN_PROGRESS")
                    ):
                        raise conflict(
                            f"catalog {catalog_id} is already being delivered to this store and path",
                            details={"delivery_id": existing["delivery_id"]},
                        )
                requested.append((catalog_id, store_id, path))
        created = []
        for catalog_id, store_id, path in requested:
            catalog = state.catalogs[catalog_id]
            delivery_id = state.new_id()
            delivery = {
                "delivery_id": delivery_id,
                "catalog_id": catalog_id,
                "task_id": "",
                "order_item_id": catalog["order_item_id"],
                "cloud_delivery": {"config": store_id, "path": path},
                "target_path": f"{catalog['order_id']}/{catalog['stac_item']['id']}.zip",
                "created_by": state.user_id,
                "created_at": format_t(state.now()),
            }
            state.deliveries[delivery_id] = delivery
            state.start_lifecycle(
                "delivery",
                delivery_id,
                last_step=progress.SIMPLE_STEPS,
                keys=[catalog_id, store_id, state.stores[store_id]["name"]],
                resource=delivery,
            )
            state.record_created("delivery", delivery_id, delivery)
            created.append(progress.delivery_view(state, delivery))
        return {"deliveries": created}

    @operation(router, state, "POST", "/v0/catalogs/download", status=201)
    def create_catalog_download(state: SimulatorState, call: Call) -> Any:
        progress.sync_all_order_items(state)
        field, ids = _one_source(call.body, "body")
        if field == "catalog_ids":
            for n, catalog_id in enumerate(ids):
                if catalog_id not in state.catalogs:
                    raise bad_request(f"catalog_ids[{n}]: catalog {catalog_id!r} does not exist")
            catalog_ids = list(ids)
        else:
            catalog_ids = _catalogs_of_items(state, ids, "order_item_ids")
        download_id = state.new_id()
        download = {"id": download_id, "catalog_ids": catalog_ids, field: list(ids)}
        state.catalog_downloads[download_id] = download
        state.start_lifecycle(
            "catalog_download",
            download_id,
            last_step=progress.SIMPLE_STEPS,
            keys=list(ids),
            resource=download,
        )
        state.record_created("catalog_download", download_id, download)
        return progress.catalog_download_view(state, download, call.base_url)

    @operation(router, state, "GET", "/v0/catalogs/download/{download_id}")
    def get_catalog_download(state: SimulatorState, call: Call) -> Any:
        download = state.catalog_downloads.get(call.path_params["download_id"])
        if download is None:
            raise not_found("download", call.path_params["download_id"])
        return progress.catalog_download_view(state, download, call.base_url)

    @operation(router, state, "GET", "/v0/catalogs/{id}")
    def get_catalog(state: SimulatorState, call: Call) -> Any:
        progress.sync_all_order_items(state)
        catalog = state.catalogs.get(call.path_params["id"])
        if catalog is None:
            raise not_found("catalog", call.path_params["id"])
        return progress.catalog_view(state, catalog)
