"""Indices and AOI visualizations, including legend editing, index PNGs and SLD styles."""

from __future__ import annotations

import re
import zlib
from typing import Any

from fastapi import APIRouter

from airflow_provider_pixxel.simulator import files, progress
from airflow_provider_pixxel.simulator.routes_aois import get_aoi, require_processed
from airflow_provider_pixxel.simulator.routing import (
    Binary,
    Call,
    check_visualization_date,
    operation,
    paginate,
)
from airflow_provider_pixxel.simulator.seed import LEGEND_COLORS, LEGEND_LABELS, legend_for
from airflow_provider_pixxel.simulator.state import (
    SimulatorState,
    bad_request,
    conflict,
    format_space,
    not_found,
)

HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
BAND_TOKEN = re.compile(r"\bB[0-9]{2,3}[A]?\b")
PNG_SIZE = 256


def _band_names(state: SimulatorState, satellite_id: str) -> set[str]:
    return {b["name"] for b in state.satellites[satellite_id]["bands"]}


def _modes_for(index: dict[str, Any]) -> tuple[str, ...]:
    """Legend modes computed for an index: both for preset indices, dynamic only for custom ``index``
    expressions, none for composites and grayscale (as the API documents)."""
    if index["type"] == "preset" and index["expression_type"] == "index":
        return ("dynamic", "theoretical")
    if index["expression_type"] == "index":
        return ("dynamic",)
    return ()


def _initial_legend(index: dict[str, Any], dates: list[str], salt: int) -> dict[str, dict[str, Any]]:
    modes = _modes_for(index)
    rescale = (float(index["rescale"][0]), float(index["rescale"][1]))
    return {
        date: {mode: legend_for(salt + n * 3 + m, rescale) for m, mode in enumerate(modes)}
        for n, date in enumerate(dates)
    }


def _get_visualization(state: SimulatorState, call: Call) -> dict[str, Any]:
    aoi = get_aoi(state, call.path_params["aoi_id"])
    visualization = state.visualizations.get(call.path_params["visualization_id"])
    if visualization is None or visualization["aoi_id"] != aoi["aoi_id"]:
        raise not_found("visualization", call.path_params["visualization_id"])
    return visualization


def _require_finished(state: SimulatorState, visualization: dict[str, Any]) -> None:
    status, progress_value = progress.visualization_status(state, visualization)
    if status not in ("success", "partial_success"):
        raise bad_request(
            f"visualization {visualization['id']!r} is {status} ({progress_value}%); wait for success",
            details={"status": status},
        )


def _legend_entry(visualization: dict[str, Any], date: str, mode: str, field: str) -> list[dict[str, Any]]:
    check_visualization_date(date, field)
    if date not in visualization["legend"]:
        raise bad_request(
            f"{field}: the visualization has no image on {date}; "
            f"dates: {', '.join(sorted(visualization['legend']))}"
        )
    legend = visualization["legend"][date].get(mode)
    if not legend:
        raise bad_request(
            f"the visualization has no {mode} legend (custom index expressions have a dynamic legend only; "
            f"composite and grayscale indices have none)"
        )
    return legend


def _check_index_matches(visualization: dict[str, Any], index_id: str) -> None:
    if index_id != visualization["index_id"]:
        raise bad_request(
            f"index_id: {index_id!r} is not the index of this visualization ({visualization['index_id']})"
        )


def register(router: APIRouter, state: SimulatorState) -> None:
    @operation(router, state, "GET", "/v0/indices")
    def list_indices(state: SimulatorState, call: Call) -> Any:
        query = call.query
        if query.get("type") and query["type"] not in ("custom", "preset"):
            raise bad_request("query parameter 'type' must be custom or preset")
        if query.get("expression_type") and query["expression_type"] not in (
            "composite",
            "index",
            "grayscale",
        ):
            raise bad_request("query parameter 'expression_type' must be composite, index or grayscale")
        indices = [
            i
            for i in state.indices.values()
            if all(
                not query.get(key) or i[field] == query[key]
                for key, field in (
                    ("satellite_id", "satellite_id"),
                    ("type", "type"),
                    ("expression_type", "expression_type"),
                    ("index_id", "id"),
                )
            )
        ]
        page, pagination = paginate(indices, call.int_query("offset", 0), call.int_query("limit", 10))
        return {"indices": page, "pagination": pagination}

    @operation(router, state, "POST", "/v0/indices", status=201)
    def create_index(state: SimulatorState, call: Call) -> Any:
        body = call.body
        name = body["name"].strip()
        if not name:
            raise bad_request("name: must not be empty")
        if body["satellite_id"] not in state.satellites:
            raise bad_request(f"satellite_id: unknown satellite {body['satellite_id']!r}")
        rescale = body["rescale"]
        if len(rescale) != 2 or rescale[0] >= rescale[1]:
            raise bad_request("rescale: expected [min, max] with min < max")
        bands = sorted(set(BAND_TOKEN.findall(body["expression"])))
        if not bands:
            raise bad_request("expression: uses no band; write it with band names, e.g. (B08-B04)/(B08+B04)")
        unknown = [b for b in bands if b not in _band_names(state, body["satellite_id"])]
        if unknown:
            raise bad_request(
                f"expression: {', '.join(unknown)} not a band of satellite "
                f"{state.satellites[body['satellite_id']]['name']}"
            )
        if body["expression_type"] == "composite" and len(body["expression"].split(",")) != 3:
            raise bad_request("expression: a composite is three comma-separated bands, e.g. B04,B03,B02")
        if any(i["name"].lower() == name.lower() for i in state.indices.values()):
            raise conflict(f"an index named {name!r} already exists", details={"name": name})
        index_id = state.new_id()
        now = format_space(state.now())
        index = {
            "id": index_id,
            "name": name,
            "description": body["description"],
            "expression": body["expression"],
            "expression_type": body["expression_type"],
            "rescale": list(rescale),
            "colormap": body["colormap"],
            "satellite_id": body["satellite_id"],
            "type": "custom",
            "bands": bands,
            "created_at": now,
            "updated_at": now,
        }
        state.indices[index_id] = index
        state.record_created("index", index_id, index)
        return index

    @operation(router, state, "GET", "/v0/aois/{aoi_id}/visualizations")
    def list_visualizations(state: SimulatorState, call: Call) -> Any:
        aoi = get_aoi(state, call.path_params["aoi_id"])
        query = call.query
        found = []
        for visualization in state.visualizations.values():
            index = state.indices[visualization["index_id"]]
            if visualization["aoi_id"] != aoi["aoi_id"]:
                continue
            if query.get("visualization_id") and visualization["id"] != query["visualization_id"]:
                continue
            if query.get("index_id") and visualization["index_id"] != query["index_id"]:
                continue
            if query.get("user_id") and visualization["user_id"] != query["user_id"]:
                continue
            if query.get("expression_type") and index["expression_type"] != query["expression_type"]:
                continue
            if query.get("type") and query["type"] != "custom":
                continue
            found.append(visualization)
        page, pagination = paginate(found, call.int_query("offset", 0), call.int_query("limit", 10))
        return {
            "visualization": [progress.visualization_list_item(state, v) for v in page],
            "pagination": pagination,
        }

    @operation(router, state, "POST", "/v0/aois/{aoi_id}/visualizations", status=201)
    def create_visualization(state: SimulatorState, call: Call) -> Any:
        aoi = get_aoi(state, call.path_params["aoi_id"])
        body = call.body
        index = state.indices.get(body["index_id"])
        if index is None:
            raise not_found("index", body["index_id"])
        require_processed(state, aoi)
        imagery = {
            a["id"]: a
            for a in state.assets.values()
            if a["aoi_id"] == aoi["aoi_id"] and a["asset_type"] in ("mosaic", "stac_item")
        }
        source_ids = body.get("src_asset_ids") or [
            i for i, a in imagery.items() if a["asset_type"] == "mosaic"
        ]
        unknown = [i for i in source_ids if i not in imagery]
        if unknown:
            raise bad_request(f"src_asset_ids: {', '.join(unknown)} are not imagery assets of this AOI")
        resolution = body.get("resolution") or max(imagery[i]["resolution"] for i in source_ids)
        if resolution <= 0:
            raise bad_request("resolution: must be a positive number of metres")
        for existing in state.visualizations.values():
            if (
                existing["aoi_id"] == aoi["aoi_id"]
                and existing["index_id"] == index["id"]
                and sorted(existing["src_asset_ids"]) == sorted(source_ids)
                and existing["resolution"] == resolution
            ):
                raise conflict(
                    "this AOI already has a visualization of that index for these assets",
                    details={"visualization_id": existing["id"]},
                )
        dates = sorted({imagery[i]["date"].replace("-", "_") for i in source_ids})
        visualization_id = state.new_id()
        now = format_space(state.now())
        salt = zlib.crc32(visualization_id.encode()) % 97
        visualization = {
            "id": visualization_id,
            "aoi_id": aoi["aoi_id"],
            "index_id": index["id"],
            "src_asset_ids": list(source_ids),
            "resolution": float(resolution),
            "tenant_id": state.org_id,
            "user_id": state.user_id,
            "created_at": now,
            "updated_at": now,
            "legend": _initial_legend(index, dates, salt),
            "salt": salt,
        }
        state.visualizations[visualization_id] = visualization
        state.start_lifecycle(
            "visualization",
            visualization_id,
            last_step=progress.SIMPLE_STEPS,
            keys=[index["name"], aoi["aoi_id"], aoi["name"]],
            resource=visualization,
        )
        state.record_created("visualization", visualization_id, visualization)
        return progress.visualization_detail(state, visualization)

    @operation(router, state, "PUT", "/v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata")
    def update_visualization_metadata(state: SimulatorState, call: Call) -> Any:
        visualization = _get_visualization(state, call)
        _require_finished(state, visualization)
        body = call.body
        mode = body["visualization_mode"]
        bins = body.get("dynamic_bins")
        if mode == "dynamic" and bins is None:
            raise bad_request("dynamic_bins: required when visualization_mode is dynamic (1-15)")
        if bins is not None and not 1 <= bins <= 15:
            raise bad_request(f"dynamic_bins: {bins} is outside 1-15")
        if not body["legend"]:
            raise bad_request("legend: give the breakpoints of at least one date")
        updated: dict[str, list[dict[str, Any]]] = {}
        for date, entries in body["legend"].items():
            current = _legend_entry(visualization, date, mode, f"legend.{date}")
            if not entries:
                raise bad_request(f"legend.{date}: needs at least one class")
            low = min(e["min"] for e in current)
            high = max(e["max"] for e in current)
            count = bins if mode == "dynamic" and bins else len(entries)
            width = (high - low) / count
            classes = []
            for n in range(count):
                entry = entries[n] if n < len(entries) else {}
                color = entry.get("color") or LEGEND_COLORS[n % len(LEGEND_COLORS)]
                if not HEX_COLOR.match(color):
                    raise bad_request(f"legend.{date}[{n}].color: {color!r} is not a #rrggbb colour")
                minimum = entry.get("min")
                maximum = entry.get("max")
                if mode == "theoretical" and (minimum is None or maximum is None):
                    raise bad_request(f"legend.{date}[{n}]: theoretical classes need min and max")
                minimum = low + n * width if minimum is None else minimum
                maximum = low + (n + 1) * width if maximum is None else maximum
                if maximum < minimum:
                    raise bad_request(f"legend.{date}[{n}]: max is below min")
                classes.append(
                    {
                        "min": round(float(minimum), 4),
                        "max": round(float(maximum), 4),
                        "color": color,
                        "label": entry.get("label") or LEGEND_LABELS[n % len(LEGEND_LABELS)],
                        "area": round(4_000_000.0 / count, 2),
                        "area_percentage": round(100.0 / count, 2),
                    }
                )
            updated[date] = classes
        for date, classes in updated.items():
            visualization["legend"][date][mode] = classes
        visualization["updated_at"] = format_space(state.now())
        return {"legend": visualization["legend"]}

    @operation(router, state, "PATCH", "/v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata")
    def rollback_visualization_metadata(state: SimulatorState, call: Call) -> Any:
        visualization = _get_visualization(state, call)
        _require_finished(state, visualization)
        body = call.body
        _check_index_matches(visualization, body["index_id"])
        if not body["dates"]:
            raise bad_request("dates: name at least one date")
        mode = body["visualization_mode"]
        index = state.indices[visualization["index_id"]]
        original = _initial_legend(index, sorted(visualization["legend"]), visualization.get("salt", 1))
        for n, date in enumerate(body["dates"]):
            _legend_entry(visualization, date, mode, f"dates[{n}]")
        for date in body["dates"]:
            visualization["legend"][date][mode] = original[date][mode]
        visualization["updated_at"] = format_space(state.now())
        return progress.visualization_detail(state, visualization)

    @operation(router, state, "POST", "/v0/aois/{aoi_id}/visualizations/{visualization_id}/png")
    def generate_index_png(state: SimulatorState, call: Call) -> Any:
        visualization = _get_visualization(state, call)
        body = call.body
        _check_index_matches(visualization, body["index_id"])
        check_visualization_date(body["date"], "date")
        _require_finished(state, visualization)
        legend = _legend_entry(visualization, body["date"], body["visualization_mode"], "date")
        seed = zlib.crc32(f"{visualization['id']}/{body['date']}".encode())
        return Binary(
            files.render_index_png(width=PNG_SIZE, height=PNG_SIZE, legend=legend, seed=seed), "image/png"
        )

    @operation(router, state, "POST", "/v0/aois/{aoi_id}/visualizations/{visualization_id}/sld")
    def generate_visualization_sld(state: SimulatorState, call: Call) -> Any:
        visualization = _get_visualization(state, call)
        body = call.body
        if not body["dates"] or not body["visualization_modes"]:
            raise bad_request("dates and visualization_modes: name at least one of each")
        for n, date in enumerate(body["dates"]):
            check_visualization_date(date, f"dates[{n}]")
        _require_finished(state, visualization)
        index = state.indices[visualization["index_id"]]
        styles: dict[str, dict[str, str]] = {}
        for mode in body["visualization_modes"]:
            styles[mode] = {}
            for n, date in enumerate(body["dates"]):
                legend = _legend_entry(visualization, date, mode, f"dates[{n}]")
                styles[mode][date] = files.render_sld(
                    layer_name=f"{index['name']}_{date}_{mode}", legend=legend
                )
        return {"sld": styles}
