"""Orders (tasking and archive, dry run and real), order items and the order report."""

from __future__ import annotations

import copy
import math
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter

from airflow_provider_pixxel.simulator import files, progress
from airflow_provider_pixxel.simulator.routing import (
    Binary,
    Call,
    bbox_of,
    boxes_intersect,
    check_polygon,
    comma_list,
    operation,
    paginate,
    parse_instant,
    polygons_area_m2,
)
from airflow_provider_pixxel.simulator.state import (
    Outcome,
    SimulatorState,
    bad_request,
    format_offset,
    format_seconds,
    format_t,
    not_found,
)

MIN_LEAD_TIME_SECONDS = 24 * 3600
MIN_BILLED_KM2 = 100.0
TASKING_TOKENS_PER_KM2 = 4.0
ARCHIVE_TOKENS_PER_KM2 = 1.5
RECURRENCE_MONTHS = {"MONTHLY": 1, "BIMONTHLY": 2, "QUARTERLY": 3}
MAX_OCCURRENCES = 12
ORDER_ITEM_FIELDS = (
    "area",
    "bandset",
    "base_amount",
    "cloud_cover",
    "cloud_delivery",
    "created_at",
    "created_by",
    "delivery_speed",
    "end_date",
    "feasibility_status",
    "final_amount",
    "id",
    "image_type",
    "images",
    "last_feasibility_check",
    "name",
    "no_of_occurrences",
    "number_of_bands",
    "occurrences",
    "off_nadir",
    "order_id",
    "org_id",
    "payment_status",
    "project_id",
    "recurrence",
    "start_date",
    "status",
    "tokens_used",
    "transaction_id",
    "type",
    "updated_at",
    "updated_by",
    "uplifts",
    "usecase",
    "user_id",
)


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year = moment.year + month // 12
    month = month % 12 + 1
    day = min(
        moment.day, [31, 29 if year % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    )
    return moment.replace(year=year, month=month, day=day)


def _order_polygons(geometry: dict[str, Any], where: str) -> list[list[list[list[float]]]]:
    if geometry.get("type") != "FeatureCollection":
        raise bad_request(f"{where}: expected a GeoJSON FeatureCollection")
    features = geometry.get("features") or []
    if not features:
        raise bad_request(f"{where}.features: needs at least one Polygon or MultiPolygon feature")
    polygons = []
    for n, feature in enumerate(features):
        polygons += check_polygon(
            feature.get("geometry"), f"{where}.features[{n}].geometry", allow_multi=True
        )
    return polygons


class _ItemPlan:
    """One requested order item, checked and priced (nothing stored yet)."""

    def __init__(self, state: SimulatorState, raw: dict[str, Any], where: str, placed_at: float) -> None:
        self.raw = raw
        self.bandset: dict[str, Any] | None = None
        if raw["project_id"] not in state.projects:
            raise bad_request(
                f"{where}.project_id: project {raw['project_id']!r} does not exist or is not shared with you"
            )
        if not raw["usecase"].strip():
            raise bad_request(f"{where}.usecase: must not be empty")
        self.polygons = _order_polygons(raw["geometry"], f"{where}.geometry")
        area_km2 = polygons_area_m2(self.polygons) / 1e6
        self.billed_km2 = max(area_km2, MIN_BILLED_KM2)
        store_id = (raw.get("cloud_delivery") or {}).get("config")
        if raw.get("cloud_delivery") is not None and store_id not in state.stores:
            raise bad_request(
                f"{where}.cloud_delivery.config: store {store_id!r} does not exist; see GET /v0/stores"
            )
        tasking_fields = [f for f in ("bandset", "recurrence", "start_date", "end_date") if raw.get(f)]
        if raw.get("item_ids"):
            if tasking_fields:
                raise bad_request(
                    f"{where}: an archive item (item_ids) cannot also have {', '.join(tasking_fields)}"
                )
            self._archive(state, raw, where)
        elif tasking_fields:
            self._tasking(state, raw, where, placed_at)
        else:
            raise bad_request(
                f"{where}: give item_ids for an archive order, or bandset, recurrence, start_date and "
                "end_date for a tasking order"
            )
        self.uplifts = []
        if self.type != "ARCHIVE":
            if self.cloud_cover < 10:
                self.uplifts.append(("Assured low cloud cover", 15))
            if self.off_nadir < 10:
                self.uplifts.append(("Near-nadir capture", 10))
        uplift_amounts = [round(self.base_amount * pct / 100) for _, pct in self.uplifts]
        self.uplift_rows = [
            {"title": title, "subtitle": f"+{pct}%", "percentage": pct, "amount": amount, "item_id": ""}
            for (title, pct), amount in zip(self.uplifts, uplift_amounts, strict=False)
        ]
        self.final_amount = float(self.base_amount + sum(uplift_amounts))

    def _archive(self, state: SimulatorState, raw: dict[str, Any], where: str) -> None:
        self.type = "ARCHIVE"
        footprint = bbox_of(self.polygons)
        self.items = []
        for n, item_id in enumerate(dict.fromkeys(raw["item_ids"])):
            item = state.items.get(item_id)
            if item is None:
                raise bad_request(
                    f"{where}.item_ids[{n}]: archive item {item_id!r} not found; "
                    "search with POST /v0/archives/search"
                )
            if not item["collection"].startswith("pixxel-"):
                raise bad_request(f"{where}.item_ids[{n}]: {item_id!r} is open data and cannot be ordered")
            if not boxes_intersect(item["bbox"], footprint):
                raise bad_request(f"{where}.item_ids[{n}]: the geometry does not overlap image {item_id!r}")
            self.items.append(item)
        self.recurrence = "NOT_APPLICABLE"
        self.delivery_speed = "NOT_APPLICABLE"
        self.cloud_cover = 0
        self.off_nadir = 0
        self.windows: list[tuple[datetime, datetime]] = []
        self.start_date = self.end_date = ""
        self.no_of_occurrences = 0
        self.number_of_bands = 24
        self.feasibility_status = "NOT_APPLICABLE"
        self.base_amount = round(self.billed_km2 * ARCHIVE_TOKENS_PER_KM2 * len(self.items))

    def _tasking(self, state: SimulatorState, raw: dict[str, Any], where: str, placed_at: float) -> None:
        bandset_id = (raw.get("bandset") or {}).get("bandset_id")
        if not bandset_id:
            raise bad_request(f"{where}.bandset.bandset_id: required for tasking; see GET /v0/bandsets")
        self.bandset = state.bandsets.get(bandset_id)
        if self.bandset is None:
            raise bad_request(f"{where}.bandset.bandset_id: bandset {bandset_id!r} does not exist")
        self.recurrence = str(raw.get("recurrence") or "")
        if not self.recurrence or self.recurrence == "NOT_APPLICABLE":
            raise bad_request(
                f"{where}.recurrence: required for tasking (ONCE, MONTHLY, BIMONTHLY or QUARTERLY)"
            )
        if not raw.get("start_date"):
            raise bad_request(f"{where}.start_date: required for tasking")
        start = parse_instant(raw["start_date"], f"{where}.start_date")
        if start < placed_at + MIN_LEAD_TIME_SECONDS:
            earliest = format_seconds(placed_at + MIN_LEAD_TIME_SECONDS)
            raise bad_request(
                f"{where}.start_date: tasking must start at least 24 hours after the order is placed "
                f"(earliest {earliest})"
            )
        start_day = datetime.fromtimestamp(start, timezone.utc).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        occurrences = raw.get("no_of_occurrences") or 0
        end_day = None
        if raw.get("end_date"):
            end = parse_instant(raw["end_date"], f"{where}.end_date")
            end_day = datetime.fromtimestamp(end, timezone.utc).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            if end_day <= start_day:
                raise bad_request(f"{where}.end_date: must be after start_date (the end date is exclusive)")
        if self.recurrence == "ONCE":
            if end_day is None:
                raise bad_request(f"{where}.end_date: required for a ONCE tasking order")
            self.windows = [(start_day, end_day)]
        else:
            months = RECURRENCE_MONTHS[self.recurrence]
            if occurrences < 0:
                raise bad_request(f"{where}.no_of_occurrences: must be 1 or more")
            if not occurrences:
                if end_day is None:
                    raise bad_request(f"{where}: a recurring order needs end_date or no_of_occurrences")
                occurrences = 0
                while _add_months(start_day, occurrences * months) < end_day:
                    occurrences += 1
            if occurrences > MAX_OCCURRENCES:
                raise bad_request(f"{where}: at most {MAX_OCCURRENCES} occurrences per recurring order")
            self.windows = [
                (_add_months(start_day, n * months), _add_months(start_day, (n + 1) * months))
                for n in range(occurrences)
            ]
        self.cloud_cover = raw.get("cloud_cover", 20)
        self.off_nadir = raw.get("off_nadir", 20)
        if not 0 <= self.cloud_cover <= 100:
            raise bad_request(f"{where}.cloud_cover: a percentage 0-100")
        if not 0 <= self.off_nadir <= 45:
            raise bad_request(f"{where}.off_nadir: degrees 0-45")
        self.delivery_speed = raw.get("delivery_speed") or "STANDARD"
        if self.delivery_speed == "NOT_APPLICABLE":
            raise bad_request(f"{where}.delivery_speed: STANDARD for tasking")
        self.type = "TASKING" if self.recurrence == "ONCE" else "RECURRING"
        self.items = []
        self.start_date = format_seconds(start_day.timestamp())
        self.end_date = format_seconds(self.windows[-1][1].timestamp())
        self.no_of_occurrences = len(self.windows) if self.type == "RECURRING" else 0
        self.number_of_bands = len(self.bandset["bands"])
        self.feasibility_status = "WEAK_SUCCESS" if self.cloud_cover < 10 else "SUCCESS"
        per_capture = self.billed_km2 * TASKING_TOKENS_PER_KM2 * self.bandset["captures"]
        self.base_amount = round(per_capture * len(self.windows))


def _capture_item(
    state: SimulatorState, plan: _ItemPlan, window: tuple[datetime, datetime]
) -> dict[str, Any]:
    """A new STAC item for a tasking capture inside ``window``."""
    template = next(i for i in state.items.values() if i["collection"] == "pixxel-td2")
    item = copy.deepcopy(template)
    captured = window[0] + timedelta(days=min(1, (window[1] - window[0]).days - 1), hours=5, minutes=41)
    processed = captured + timedelta(days=1)
    item_id = f"TD2_{state.rng().randint(100, 999_999):06d}_{captured:%Y%m%d}_L2A_{processed:%Y%m%d}_00501024"
    polygon = plan.polygons[0]
    item.update(id=item_id, bbox=bbox_of([polygon]), geometry={"type": "Polygon", "coordinates": polygon})
    lon, lat = (sum(v) / 2 for v in zip(item["bbox"][:2], item["bbox"][2:], strict=False))
    item["properties"].update(
        title=item_id,
        datetime=format_seconds(captured.timestamp()),
        created=format_seconds(processed.timestamp()),
        updated=format_seconds(processed.timestamp()),
        **{
            "eo:cloud_cover": float(min(plan.cloud_cover, 7)),
            "view:off_nadir": float(min(plan.off_nadir, 8)),
        },
        **{"view:scene_center_lat": lat, "view:scene_center_lon": lon},
    )
    href_base = f"https://data.pixxel.space/pixxel-td2/{item_id}"
    for asset in item["assets"].values():
        asset["href"] = f"{href_base}/{item_id}{asset['href'].rsplit(template['id'], 1)[-1]}"
    item["links"] = [
        {"rel": "self", "href": f"https://stac.pixxel.space/collections/pixxel-td2/items/{item_id}"},
        {"rel": "collection", "href": "https://stac.pixxel.space/collections/pixxel-td2"},
    ]
    return item


def _build_item(
    state: SimulatorState, plan: _ItemPlan, order_id: str, now: float, paid: bool
) -> dict[str, Any]:
    item_id = state.new_id()
    transaction_id = state.new_id() if paid else ""
    tokens = round(plan.final_amount) if paid else 0
    task_plan = []
    if plan.type == "ARCHIVE":
        for archive_item in plan.items:
            task_plan.append(
                {
                    "id": state.new_id(),
                    "type": "ARCHIVE",
                    "start_date": "",
                    "end_date": "",
                    "number_of_strips": 1,
                    "tokens_used": tokens // max(len(plan.items), 1),
                    "transaction_id": transaction_id,
                    "stac_item": archive_item,
                }
            )
    else:
        for window in plan.windows:
            task_plan.append(
                {
                    "id": state.new_id(),
                    "type": "TASKING",
                    "start_date": window[0].strftime("%d-%m-%Y"),
                    "end_date": window[1].strftime("%d-%m-%Y"),
                    "number_of_strips": 1 + int(plan.billed_km2 // 250),
                    "tokens_used": tokens // len(plan.windows),
                    "transaction_id": state.new_id() if paid and plan.type == "RECURRING" else transaction_id,
                    "stac_item": _capture_item(state, plan, window) if paid else None,
                }
            )
    raw = plan.raw
    bandset: dict[str, Any] = (
        {"bandset_id": plan.bandset["id"], "bands": plan.bandset["bands"], "custom": []}
        if plan.bandset
        else {}
    )
    return {
        "id": item_id,
        "order_id": order_id,
        "name": raw.get("name") or f"{plan.type.lower()}-{item_id[:8]}",
        "type": plan.type,
        "project_id": raw["project_id"],
        "usecase": raw["usecase"],
        "geometry": raw["geometry"],
        "area": round(plan.billed_km2),
        "bandset": bandset,
        "base_amount": float(plan.base_amount),
        "final_amount": plan.final_amount,
        "uplifts": plan.uplift_rows,
        "cloud_cover": plan.cloud_cover,
        "off_nadir": plan.off_nadir,
        "cloud_delivery": dict(raw["cloud_delivery"]) if raw.get("cloud_delivery") else None,
        "delivery_speed": plan.delivery_speed,
        "recurrence": plan.recurrence,
        "start_date": plan.start_date,
        "end_date": plan.end_date,
        "no_of_occurrences": plan.no_of_occurrences,
        "occurrences": [
            {"start": format_offset(a.timestamp()), "end": format_offset(b.timestamp())}
            for a, b in plan.windows
        ],
        "number_of_bands": plan.number_of_bands,
        "image_type": "VNIR",
        "feasibility_status": plan.feasibility_status,
        "last_feasibility_check": format_t(now) if plan.type != "ARCHIVE" else "",
        "payment_status": "PAID" if paid else "UNPAID",
        "tokens_used": tokens,
        "transaction_id": transaction_id,
        "org_id": state.org_id,
        "user_id": state.user_id,
        "created_by": state.user_id,
        "updated_by": state.user_id,
        "created_at": format_t(now),
        "updated_at": format_t(now),
        "task_plan": task_plan,
    }


def order_item_view(state: SimulatorState, item: dict[str, Any], *, with_tasks: bool) -> dict[str, Any]:
    """``clerk.OrderItemResponse`` (with tasks) or ``clerk.OrderItem`` (without), as of now."""
    view = {field: item[field] for field in ORDER_ITEM_FIELDS if field in item}
    if view.get("cloud_delivery") is None:
        view.pop("cloud_delivery", None)
    if item["id"] in state.lifecycles:
        synced = progress.sync_order_item(state, item)
        view["status"] = synced["status"]
        view["feasibility_status"] = synced["feasibility_status"]
        tasks = synced["tasks"]
        validation_errors = synced["validation_errors"]
    else:
        view["status"] = "DRAFT"
        tasks, validation_errors = [], []
    delivered = [p for p in item["task_plan"] if p.get("catalog_id")]
    view["images"] = [
        {"item_id": p["stac_item"]["id"], "geometry": p["stac_item"]["geometry"]}
        for p in (item["task_plan"] if item["type"] == "ARCHIVE" else delivered)
        if p.get("stac_item")
    ]
    if with_tasks:
        view["tasks"] = tasks
        view["validation_errors"] = validation_errors
    return view


def order_view(state: SimulatorState, order: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": order["id"],
        "status": order["status"],
        "paid_at": order["paid_at"],
        "transaction_id": order["transaction_id"],
        "total_amount": order["total_amount"],
        "org_id": state.org_id,
        "user_id": order["user_id"],
        "created_by": order["user_id"],
        "updated_by": order["user_id"],
        "created_at": order["created_at"],
        "updated_at": order["updated_at"],
        "order_items": [order_item_view(state, i, with_tasks=False) for i in items],
    }


def _order_item_matches(view: dict[str, Any], query: dict[str, str]) -> bool:
    checks = {
        "user_id": lambda v: view["user_id"] == v,
        "created_by": lambda v: view["created_by"] == v,
        "type": lambda v: view["type"].upper() == v.upper(),
        "status": lambda v: view["status"].upper() in {s.upper() for s in comma_list(v)},
        "order_ids": lambda v: view["order_id"] in comma_list(v),
        "project_ids": lambda v: view["project_id"] in comma_list(v),
        "ids": lambda v: view["id"] in comma_list(v),
    }
    if query.get("created_at"):
        low, high = _created_at_range(query["created_at"])
        if not low <= parse_instant(view["created_at"], "created_at") < high:
            return False
    return all(check(query[name]) for name, check in checks.items() if query.get(name))


def _created_at_range(value: str) -> tuple[float, float]:
    """``created_at`` of ``GET /v0/order-items`` ("Created At Range"): ``start,end`` RFC 3339 instants.

    Like ``area`` ("Area Range", ``min,max``) it is a comma-separated pair: start inclusive, end
    exclusive, either side empty for an open end. One instant alone means from that instant on.
    """
    start, _, end = value.partition(",")
    low = parse_instant(start.strip(), "created_at") if start.strip() else -math.inf
    high = parse_instant(end.strip(), "created_at") if end.strip() else math.inf
    if low >= high:
        raise bad_request(f"created_at: the range {value!r} ends before it starts")
    return low, high


def get_order_item(state: SimulatorState, item_id: str) -> dict[str, Any]:
    item = state.order_items.get(item_id)
    if item is None:
        raise not_found("order item", item_id)
    return item


def register(router: APIRouter, state: SimulatorState) -> None:
    @operation(router, state, "POST", "/v0/orders", status=201)
    def create_order(state: SimulatorState, call: Call) -> Any:
        body = call.body
        if not body["order_items"]:
            raise bad_request("order_items: an order needs at least one item")
        now = state.now()
        plans = [_ItemPlan(state, raw, f"order_items[{n}]", now) for n, raw in enumerate(body["order_items"])]
        total = float(sum(p.final_amount for p in plans))
        dry_run = bool(body.get("dry_run"))
        order: dict[str, Any]
        if dry_run:
            order = {
                "id": "",
                "status": "UNPAID",
                "paid_at": "",
                "transaction_id": "",
                "total_amount": total,
                "user_id": state.user_id,
                "created_at": format_offset(now),
                "updated_at": format_offset(now),
            }
            items = [_build_item(state, p, "", now, paid=False) for p in plans]
            for item in items:
                item["id"] = ""
            return order_view(state, order, items)
        state.charge(total)
        order_id = state.new_id()
        order = {
            "id": order_id,
            "status": "PAID",
            "paid_at": format_offset(now),
            "transaction_id": state.new_id(),
            "total_amount": total,
            "user_id": state.user_id,
            "created_at": format_offset(now),
            "updated_at": format_offset(now),
            "item_ids": [],
        }
        items = []
        for plan in plans:
            item = _build_item(state, plan, order_id, now, paid=True)
            terminal = progress.order_item_terminal_step(item)
            lifecycle = state.start_lifecycle(
                "order_item",
                item["id"],
                last_step=terminal + (1 if item["cloud_delivery"] else 0),
                stall_step=terminal - 1,
                keys=[item["name"], order_id],
                resource=item,
            )
            if lifecycle.outcome is Outcome.CANCELLED:
                lifecycle.last_step = 1
            state.order_items[item["id"]] = item
            order["item_ids"].append(item["id"])
            items.append(item)
        state.orders[order_id] = order
        state.record_created("order", order_id, order)
        for item in items:
            state.record_created("order_item", item["id"], item)
            state.record_spend("order_item", item["id"], item["project_id"], item["tokens_used"])
        return order_view(state, order, items)

    @operation(router, state, "GET", "/v0/orders")
    def list_orders(state: SimulatorState, call: Call) -> Any:
        orders = [
            o
            for o in state.orders.values()
            if not call.query.get("user_id") or o["user_id"] == call.query["user_id"]
        ]
        page, pagination = paginate(orders, call.int_query("offset", 0), call.int_query("limit", 10))
        return {
            "orders": [order_view(state, o, [state.order_items[i] for i in o["item_ids"]]) for o in page],
            "pagination": pagination,
        }

    @operation(router, state, "GET", "/v0/orders/{id}")
    def get_order(state: SimulatorState, call: Call) -> Any:
        order = state.orders.get(call.path_params["id"])
        if order is None:
            raise not_found("order", call.path_params["id"])
        return order_view(state, order, [state.order_items[i] for i in order["item_ids"]])

    @operation(router, state, "GET", "/v0/order-items")
    def list_order_items(state: SimulatorState, call: Call) -> Any:
        query = call.query
        found = []
        area_range = comma_list(query.get("area"))
        for item in state.order_items.values():
            view = order_item_view(state, item, with_tasks=True)
            if not _order_item_matches(view, query):
                continue
            if area_range:
                try:
                    low, high = float(area_range[0]), float(area_range[-1])
                except ValueError:
                    raise bad_request("query parameter 'area' is a range 'min,max' in km²") from None
                if not low <= view["area"] <= high:
                    continue
            found.append(view)
        page, pagination = paginate(found, call.int_query("offset", 0), call.int_query("limit", 10))
        return {"order_items": page, "pagination": pagination}

    @operation(router, state, "GET", "/v0/order-items/{id}")
    def get_order_item_by_id(state: SimulatorState, call: Call) -> Any:
        return order_item_view(state, get_order_item(state, call.path_params["id"]), with_tasks=True)

    @operation(router, state, "GET", "/v0/reports")
    def download_order_report(state: SimulatorState, call: Call) -> Any:
        tz_name = call.query.get("tz") or "UTC"
        try:
            zone = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise bad_request(
                f"tz: unknown time zone {tz_name!r}; use an IANA name such as Asia/Kolkata"
            ) from None
        rows = []
        for order in state.orders.values():
            for item_id in order["item_ids"]:
                item = order_item_view(state, state.order_items[item_id], with_tasks=False)
                created = datetime.fromtimestamp(parse_instant(item["created_at"], "created_at"), zone)
                rows.append(
                    {
                        "order_id": order["id"],
                        "order_item_id": item["id"],
                        "order_item_name": item["name"],
                        "order_type": item["type"],
                        "status": item["status"],
                        "project_id": item["project_id"],
                        "area_km2": item["area"],
                        "total_amount": order["total_amount"],
                        "tokens_used": item["tokens_used"],
                        "created_at": created.isoformat(timespec="seconds"),
                        "paid_at": order["paid_at"],
                    }
                )
        return Binary(files.render_order_report(rows), "text/csv")
