"""Every response the simulator gives validates against the Pixxel OpenAPI contract.

One scripted session over real HTTP walks all 55 operations (happy path) plus the error answers the
simulator produces, and checks each response with ``openapi-core``.

The contract is the vendored spec with the overlay's corrections (``airflow_provider_pixxel/spec``):
the raw-JSON dexter fields (``spec``, ``inputs``, ``outputs``, ``input``, ``output``, ``result``,
``info_logs``, typed ``array<integer>`` by the spec generator) accept any JSON, and a task's
``delivery_status`` takes the values of both enums the spec gives it. Everything else is checked as
the spec declares it. Error statuses an operation does not declare (the API answers 403 for a bad key
and 404 for unknown ids everywhere) are checked against ``common.ErrorResponse`` instead and must be
403 or 404.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from airflow_provider_pixxel.simulator import ManualClock, SimulatorHandle, run_simulator
from airflow_provider_pixxel.simulator.seed import TD2_ID
from airflow_provider_pixxel.spec import contract

START = 1_780_000_000.0
UNDECLARED_ALLOWED = {403, 404}
# The spec declares this operation's error bodies as ``image/png`` with the JSON error schema (the
# service answers errors as JSON everywhere); the simulator sends them as ``application/json``, so
# only their JSON shape is checked.
JSON_ERRORS_DECLARED_AS_PNG = {"POST /v0/aois/{aoi_id}/visualizations/{visualization_id}/png"}


def _served_locally(spec: Any) -> dict[str, Any]:
    local: dict[str, Any] = copy.deepcopy(dict(spec))
    local["servers"] = [{"url": "/"}]
    return local


class Walker:
    """Sends requests and validates every response; remembers which operations it covered."""

    def __init__(self, spec: Mapping[str, Any], sim: SimulatorHandle) -> None:
        self.api = OpenAPI.from_dict(_served_locally(spec))
        self.error_schema = {
            **spec["components"]["schemas"]["common.ErrorResponse"],
            "definitions": {},
        }
        self.error_schema["properties"] = {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
            }
        }
        self.error_schema["required"] = ["error"]
        self.sim = sim
        self.covered: set[str] = set()
        self.statuses: dict[str, set[int]] = {}
        self.operations = {
            f"{method.upper()} {path}": op
            for path, item in spec["paths"].items()
            for method, op in item.items()
            if method in ("get", "post", "put", "patch", "delete")
        }

    def __call__(
        self,
        method: str,
        template: str,
        *values: str,
        expect: int,
        auth: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        key = f"{method} {template}"
        assert key in self.operations, key
        path = template
        for value in values:
            path = path[: path.index("{")] + value + path[path.index("}") + 1 :]
        headers = self.sim.headers() if auth else {}
        response = requests.request(method, self.sim.url(path), headers=headers, timeout=10, **kwargs)
        assert response.status_code == expect, f"{key}: {response.status_code} {response.text[:500]}"
        declared = str(response.status_code) in self.operations[key]["responses"]
        content = self.operations[key]["responses"].get(str(response.status_code), {}).get("content", {})
        # openapi-core cannot decode a body declared as ``*/*`` (the DELETE insight errors): those
        # JSON bodies are checked against the error envelope below, like the PNG errors.
        if list(content) == ["*/*"] or (response.status_code >= 400 and key in JSON_ERRORS_DECLARED_AS_PNG):
            assert response.headers["content-type"] == "application/json"
            declared = False
            UNDECLARED_ALLOWED.add(response.status_code)
        if declared:
            try:
                self.api.validate_response(
                    RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
                )
            except Exception as error:
                detail = getattr(error, "__cause__", None) or error
                raise AssertionError(f"{key} {response.status_code}: {str(detail)[-1500:]}") from error
        else:
            assert response.status_code in UNDECLARED_ALLOWED, key
        if response.status_code >= 400:
            jsonschema.validate(response.json(), self.error_schema)
        if 200 <= response.status_code < 300:
            self.covered.add(key)
        self.statuses.setdefault(key, set()).add(response.status_code)
        return response


@pytest.fixture(scope="module")
def walked() -> Iterator[Walker]:
    with run_simulator(
        api_key="conformance-key", clock=ManualClock(START), package_size_bytes=64 * 1024
    ) as sim:
        walker = Walker(contract(), sim)
        _walk(walker, sim)
        yield walker


def _stamp(offset_days: float) -> str:
    moment = datetime.fromtimestamp(START, timezone.utc) + timedelta(days=offset_days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _walk(call: Walker, sim: SimulatorHandle) -> None:
    # --- workspace
    assert call("GET", "/ping", expect=200, auth=False).json() == "pong"
    projects = call("GET", "/v0/projects", expect=200, params={"page_num": 1, "page_size": 2}).json()
    project_id = projects["projects"][0]["id"]
    call("GET", "/v0/projects/{id}", project_id, expect=200)
    call("GET", "/v0/projects/{id}", "nope", expect=404)
    call("GET", "/v0/projects", expect=400, params={"page_num": "x"})
    call("GET", "/v0/satellites", expect=200)
    call("GET", "/v0/satellites", expect=403, auth=False)
    bandset_id = call("GET", "/v0/bandsets", expect=200).json()["bandsets"][0]["id"]
    call("GET", "/v0/stores", expect=200)
    store_body = {
        "name": "walk-store",
        "type": "S3",
        "configs": {"bucket": "b", "region": "us-east-2"},
        "secrets": {"access_key_id": "a", "secret_access_key": "s"},
    }
    store_id = call("POST", "/v0/stores", expect=200, json=store_body).json()["id"]
    call("POST", "/v0/stores", expect=409, json=store_body)
    call("POST", "/v0/stores", expect=400, json={**store_body, "name": "other", "secrets": {}})
    call("POST", "/v0/stores", expect=400, json={**store_body, "type": "FTP"})
    doomed = call("POST", "/v0/stores", expect=200, json={**store_body, "name": "doomed"}).json()["id"]
    call("DELETE", "/v0/stores/{id}", doomed, expect=204)
    call("DELETE", "/v0/stores/{id}", doomed, expect=404)

    # --- indices
    indices = call("GET", "/v0/indices", expect=200, params={"type": "preset"}).json()["indices"]
    ndvi = next(i for i in indices if i["name"] == "NDVI")
    index_body = {
        "name": "Red edge",
        "description": "red edge ratio",
        "rescale": [0, 1],
        "expression": "(B08-B05)/(B08+B05)",
        "colormap": "viridis",
        "satellite_id": ndvi["satellite_id"],
        "expression_type": "index",
    }
    call("POST", "/v0/indices", expect=201, json=index_body)
    call("POST", "/v0/indices", expect=409, json=index_body)
    call("POST", "/v0/indices", expect=400, json={**index_body, "name": "x", "expression_type": "ratio"})

    # --- search and AOIs
    geometry = {
        "type": "Polygon",
        "coordinates": [[[77.5, 12.9], [77.6, 12.9], [77.6, 13.0], [77.5, 13.0], [77.5, 12.9]]],
    }
    found = call(
        "POST",
        "/v0/search",
        expect=200,
        json={
            "start_date": "2020-01-01T00:00:00Z",
            "end_date": "2030-01-01T00:00:00Z",
            "satellites": [{"collection_id": "pixxel-td2", "satellite_id": TD2_ID}],
            "geometry": geometry,
            "filters": [{"id": "eo:cloud_cover", "min": 0, "max": 100}],
            "limit": 5,
        },
    ).json()
    item_ids = list(found["items"])[:1]
    assert item_ids
    aoi_body = {
        "name": "walk-aoi",
        "description": "conformance",
        "satellite_id": TD2_ID,
        "provider": "pixxel",
        "project_id": project_id,
        "geometry": geometry,
        "item_ids": item_ids,
    }
    aoi = call("POST", "/v0/aois", expect=201, json=aoi_body).json()
    assert aoi["status"] == "started"
    aoi_id = aoi["aoi_id"]
    call("POST", "/v0/aois", expect=409, json=aoi_body)
    open_ring = {"type": "Polygon", "coordinates": [[[77.5, 12.9], [77.6, 12.9], [77.6, 13.0], [77.5, 13.0]]]}
    call("POST", "/v0/aois", expect=400, json={**aoi_body, "name": "bad", "geometry": open_ring})
    assert call("GET", "/v0/aoi/{aoi_id}", aoi_id, expect=200).json()["status"] == "success"
    call("GET", "/v0/aoi/{aoi_id}", "missing", expect=404)
    call("GET", "/v0/aois", expect=200, params={"aoi_name": "walk"})
    assets = call("GET", "/v0/aois/{aoi_id}/assets", aoi_id, expect=200).json()["assets"]
    download = call(
        "POST", "/v0/aois/{aoi_id}/downloads", aoi_id, expect=201, json={"asset_ids": [assets[0]["id"]]}
    ).json()
    ready = call(
        "GET", "/v0/aois/{aoi_id}/downloads/{download_id}", aoi_id, download["download_id"], expect=200
    )
    assert ready.json()["signed_url"].startswith(sim.base_url)
    call("GET", "/v0/aois/{aoi_id}/downloads/{download_id}", aoi_id, "missing", expect=404)

    # --- visualizations
    visualization = call(
        "POST", "/v0/aois/{aoi_id}/visualizations", aoi_id, expect=201, json={"index_id": ndvi["id"]}
    ).json()
    visualization_id = visualization["id"]
    call("POST", "/v0/aois/{aoi_id}/visualizations", aoi_id, expect=409, json={"index_id": ndvi["id"]})
    call("POST", "/v0/aois/{aoi_id}/visualizations", aoi_id, expect=404, json={"index_id": "missing"})
    listed = call(
        "GET",
        "/v0/aois/{aoi_id}/visualizations",
        aoi_id,
        expect=200,
        params={"visualization_id": visualization_id},
    ).json()
    assert listed["visualization"][0]["status"] == "success"
    dates = _legend_dates(sim, aoi_id, visualization_id)
    date = dates[0]
    metadata_path = "/v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata"
    call(
        "PUT",
        metadata_path,
        aoi_id,
        visualization_id,
        expect=200,
        json={"visualization_mode": "dynamic", "dynamic_bins": 3, "legend": {date: [{"color": "#112233"}]}},
    )
    call(
        "PUT",
        metadata_path,
        aoi_id,
        visualization_id,
        expect=400,
        json={"visualization_mode": "dynamic", "legend": {date: []}},
    )
    call(
        "PATCH",
        metadata_path,
        aoi_id,
        visualization_id,
        expect=200,
        json={"index_id": ndvi["id"], "dates": [date], "visualization_mode": "dynamic"},
    )
    png_path = "/v0/aois/{aoi_id}/visualizations/{visualization_id}/png"
    png = call(
        "POST",
        png_path,
        aoi_id,
        visualization_id,
        expect=200,
        json={"index_id": ndvi["id"], "date": date, "visualization_mode": "theoretical"},
    )
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    call(
        "POST",
        png_path,
        aoi_id,
        visualization_id,
        expect=400,
        json={"index_id": ndvi["id"], "date": date.replace("_", "-"), "visualization_mode": "dynamic"},
    )
    call(
        "POST",
        png_path,
        aoi_id,
        visualization_id,
        expect=400,
        json={"index_id": ndvi["id"], "date": date, "visualization_mode": "vivid"},
    )
    call(
        "POST",
        png_path,
        aoi_id,
        "missing",
        expect=404,
        json={"index_id": ndvi["id"], "date": date, "visualization_mode": "dynamic"},
    )
    sld = call(
        "POST",
        "/v0/aois/{aoi_id}/visualizations/{visualization_id}/sld",
        aoi_id,
        visualization_id,
        expect=200,
        json={"dates": [date], "visualization_modes": ["dynamic", "theoretical"]},
    ).json()
    assert "StyledLayerDescriptor" in sld["sld"]["dynamic"][date]
    call(
        "POST",
        "/v0/aois/{aoi_id}/visualizations/{visualization_id}/sld",
        aoi_id,
        visualization_id,
        expect=400,
        json={"dates": ["2024-05-06"], "visualization_modes": ["dynamic"]},
    )

    # --- blocks and insights
    blocks = call("GET", "/v0/blocks", expect=200, params={"mode": "insight"}).json()["blocks"]
    block = blocks[0]["spec"]
    call("GET", "/v0/blocks/{name}", block["name"], expect=200)
    call("GET", "/v0/blocks/{name}", "nope", expect=404)
    call("GET", "/v0/blocks/{name}/versions/{version}", block["name"], block["version"], expect=200)
    call("GET", "/v0/blocks/{name}/versions/{version}", block["name"], "9.9.9", expect=404)
    inputs = []
    for spec_input in block["inputs"]:
        entry = dict(spec_input)
        if entry["format"] == "raster":
            entry["stac_url"] = f"https://stac.pixxel.space/collections/pixxel-td2/items/{item_ids[0]}"
            entry["asset_source"] = {"id": assets[0]["id"], "type": "raw_mosaic"}
        else:
            entry["value"] = "2024-01-01"
        inputs.append(entry)
    insight_body = {
        "name": "walk-insight",
        "block": {"name": block["name"], "version": block["version"]},
        "input": inputs,
    }
    insights_path = "/v0/aoi/{aoi_id}/insights"
    estimate = call("POST", insights_path, aoi_id, expect=200, json={**insight_body, "estimate": True}).json()
    assert estimate["estimate"] > 0
    insight_id = call("POST", insights_path, aoi_id, expect=201, json=insight_body).json()["id"]
    call("POST", insights_path, aoi_id, expect=400, json={**insight_body, "input": inputs[:1]})
    listed = call("GET", "/v0/aoi/{aoiId}/insights", aoi_id, expect=200, params={"id": insight_id}).json()
    assert listed["insights"][0]["status"] == "completed"
    insight_download = "/v0/aoi/{aoi_id}/insights/{insight_id}/download"
    first = call(
        "PUT", insight_download, aoi_id, insight_id, expect=200, json={"outputs": ["crop_map"]}
    ).json()
    assert first["status"] == "pending"
    assert call(
        "PUT", insight_download, aoi_id, insight_id, expect=200, json={"outputs": ["crop_map"]}
    ).json()["signed_url"]
    call(
        "DELETE",
        "/v0/aoi/{aoi_id}/insights/{insight_id}",
        aoi_id,
        insight_id,
        expect=400,
        params={"project_id": "x"},
    )
    call("DELETE", "/v0/aoi/{aoi_id}/insights/{insight_id}", aoi_id, insight_id, expect=400)
    call(
        "DELETE",
        "/v0/aoi/{aoi_id}/insights/{insight_id}",
        aoi_id,
        insight_id,
        expect=200,
        params={"project_id": project_id},
    )
    call(
        "DELETE",
        "/v0/aoi/{aoi_id}/insights/{insight_id}",
        aoi_id,
        insight_id,
        expect=404,
        params={"project_id": project_id},
    )

    # --- workflows and jobs
    workflows = call("GET", "/v0/workflows", expect=200).json()["workflows"]
    workflow = workflows[0]
    call(
        "GET",
        "/v0/workflows/{workflow_id}",
        workflow["id"],
        expect=200,
        params={"project_id": workflow["project_id"]},
    )
    call("GET", "/v0/workflows/{workflow_id}", workflow["id"], expect=400)
    call("GET", "/v0/workflows/{workflow_id}/estimate", workflow["id"], expect=200)
    jobs_path = "/v0/workflows/{workflow_id}/jobs"
    job = call(
        "POST", jobs_path, workflow["id"], expect=200, params={"project_id": workflow["project_id"]}
    ).json()
    assert job["status"] == "running"
    call("POST", jobs_path, workflow["id"], expect=400)
    call("POST", jobs_path, "missing", expect=404, params={"project_id": workflow["project_id"]})
    finished = call(
        "GET", "/v0/workflows/{workflow_id}/jobs/{job_id}", workflow["id"], job["id"], expect=200
    ).json()
    assert finished["status"] == "completed"
    call("GET", "/v0/workflows/{workflow_id}/jobs/{job_id}", workflow["id"], "missing", expect=404)
    call("GET", jobs_path, workflow["id"], expect=200, params={"status": "completed"})
    job_download = "/v0/workflows/{workflow_id}/jobs/{job_id}/download"
    call("PUT", job_download, workflow["id"], job["id"], expect=200)
    assert call("PUT", job_download, workflow["id"], job["id"], expect=200).json()["status"] == "ready"
    task_download = "/v0/workflows/{workflow_id}/jobs/{job_id}/tasks/{task_id}/download"
    task_id = finished["tasks"][0]["id"]
    call("PUT", task_download, workflow["id"], job["id"], task_id, expect=200)
    assert call("PUT", task_download, workflow["id"], job["id"], task_id, expect=200).json()["signed_url"]
    call("PUT", task_download, workflow["id"], job["id"], "missing", expect=404)

    # --- archive
    call("GET", "/v0/archives/collections", expect=200)
    call("GET", "/v0/archives/collections/{cid}", "pixxel-td2", expect=200)
    call("GET", "/v0/archives/collections/{cid}", "nope", expect=404)
    call("GET", "/v0/archives/collections/{cid}/items", "pixxel-td2", expect=200, params={"limit": 3})
    call("GET", "/v0/archives/collections/{cid}/items/{id}", "pixxel-td2", item_ids[0], expect=200)
    call("GET", "/v0/archives/collections/{cid}/items/{id}", "pixxel-td2", "nope", expect=404)
    call(
        "POST",
        "/v0/archives/search",
        expect=200,
        json={"collections": ["pixxel-td2"], "query": {"cloudcover": {"lt": 50}}},
    )
    call("POST", "/v0/archives/search", expect=400, json={"datetime": "yesterday"})

    # --- orders
    feature_collection = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": geometry}],
    }
    archive_item = {
        "project_id": project_id,
        "usecase": "agriculture",
        "geometry": feature_collection,
        "item_ids": item_ids,
    }
    tasking_item = {
        "project_id": project_id,
        "usecase": "agriculture",
        "geometry": feature_collection,
        "bandset": {"bandset_id": bandset_id},
        "recurrence": "ONCE",
        "start_date": _stamp(2),
        "end_date": _stamp(9),
        "cloud_delivery": {"config": store_id, "path": "walk/"},
    }
    dry = call("POST", "/v0/orders", expect=201, json={"dry_run": True, "order_items": [tasking_item]}).json()
    assert dry["total_amount"] > 0
    order = call("POST", "/v0/orders", expect=201, json={"order_items": [archive_item, tasking_item]}).json()
    call(
        "POST", "/v0/orders", expect=400, json={"order_items": [{**tasking_item, "start_date": _stamp(0.5)}]}
    )
    call("POST", "/v0/orders", expect=400, json={"order_items": [{**archive_item, "item_ids": ["TD9_nope"]}]})
    call("GET", "/v0/orders", expect=200)
    call("GET", "/v0/orders/{id}", order["id"], expect=200)
    call("GET", "/v0/orders/{id}", "missing", expect=404)
    call("GET", "/v0/order-items", expect=200, params={"order_ids": order["id"]})
    item_view = call("GET", "/v0/order-items/{id}", order["order_items"][1]["id"], expect=200).json()
    assert item_view["status"] == "FULFILLED"
    call("GET", "/v0/order-items/{id}", "missing", expect=404)
    report = call("GET", "/v0/reports", expect=200, params={"tz": "Asia/Kolkata"})
    assert order["id"] in report.text
    call("GET", "/v0/reports", expect=400, params={"tz": "Mars/Olympus"})

    # --- catalogs, deliveries, catalog downloads
    search = call("POST", "/v0/catalogs/search", expect=200, json={"order_ids": [order["id"]]}).json()
    assert search["pagination"]["limit"] == 2
    catalog_id = search["catalogs"][0]["id"]
    call("GET", "/v0/catalogs/{id}", catalog_id, expect=200)
    call("GET", "/v0/catalogs/{id}", "missing", expect=404)
    sim.state.scenarios.stall("delivery", match=catalog_id, times=1)
    delivery = call(
        "POST",
        "/v0/catalogs/deliveries",
        expect=201,
        json={
            "deliveries": [
                {"catalog_ids": [catalog_id], "cloud_info": {"config": store_id, "path": "manual/"}}
            ]
        },
    ).json()["deliveries"][0]
    call(
        "POST",
        "/v0/catalogs/deliveries",
        expect=409,
        json={
            "deliveries": [
                {"catalog_ids": [catalog_id], "cloud_info": {"config": store_id, "path": "manual/"}}
            ]
        },
    )
    call(
        "POST",
        "/v0/catalogs/deliveries",
        expect=400,
        json={
            "deliveries": [
                {"catalog_ids": [catalog_id], "order_item_ids": ["x"], "cloud_info": {"config": store_id}}
            ]
        },
    )
    call("DELETE", "/v0/stores/{id}", store_id, expect=409)
    call("GET", "/v0/catalogs/deliveries", expect=200, params={"delivery_id": delivery["delivery_id"]})
    download = call("POST", "/v0/catalogs/download", expect=201, json={"catalog_ids": [catalog_id]}).json()
    assert download["status"] == "created"
    assert download["signed_url"] == ""
    assert (
        call("GET", "/v0/catalogs/download/{download_id}", download["id"], expect=200).json()["status"]
        == "success"
    )
    call("GET", "/v0/catalogs/download/{download_id}", "missing", expect=404)
    call("POST", "/v0/catalogs/download", expect=400, json={})


def _legend_dates(sim: SimulatorHandle, aoi_id: str, visualization_id: str) -> list[str]:
    """Dates of a visualization, read from its assets through the API."""
    response = requests.get(
        sim.url(f"/v0/aois/{aoi_id}/assets"), headers=sim.headers(), params={"limit": 100}, timeout=10
    )
    return sorted(
        a["date"].replace("-", "_")
        for a in response.json()["assets"]
        if a["visualization_id"] == visualization_id
    )


def test_every_operation_answers_per_spec(walked: Walker) -> None:
    assert set(walked.operations) - walked.covered == set()
    assert len(walked.covered) == 55


def test_error_statuses_were_exercised(walked: Walker) -> None:
    produced = {status for statuses in walked.statuses.values() for status in statuses}
    assert {400, 403, 404, 409} <= produced
