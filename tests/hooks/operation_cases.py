"""One example call per API operation, with the exact request it must send.

Shared by the hook's unit tests (``test_pixxel.py``, ``test_pixxel_async.py``) and the contract test,
which checks each request against ``openapi.json``. The values are valid for the spec, so the same
table serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
CSV_TEXT = "order_id,status\norder-1,PAID\n"

SATELLITE_ID = "0005c5bb-0bd2-4c80-9393-4a808341c54c"
POLYGON = {
    "type": "Polygon",
    "coordinates": [[[77.5, 12.9], [77.6, 12.9], [77.6, 13.0], [77.5, 13.0], [77.5, 12.9]]],
}
ORDER_ITEM = {
    "project_id": "proj-1",
    "usecase": "agriculture",
    "geometry": {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": POLYGON, "properties": {}}],
    },
    "item_ids": ["TD2_000650_20230404_L2A_20240405_01001067"],
}
LEGEND_ITEM = {"min": 0, "max": 1, "color": "#2b83ba", "label": "Low"}


@dataclass(frozen=True)
class OperationCase:
    """A hook call and the request the API must receive for it."""

    name: str
    method: str
    route: str  # the path template as written in the spec
    path: str  # the concrete path the call sends
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    status: int = 200
    content: bytes = b'{"id": "result-1"}'
    content_type: str = "application/json"
    returns: Any = field(default_factory=lambda: {"id": "result-1"})
    creates: bool = False

    @property
    def id(self) -> str:
        return self.name


def _case(name: str, method: str, route: str, path: str, *args: Any, **options: Any) -> OperationCase:
    return OperationCase(name, method, route, path, args=args, **options)


OPERATION_CASES: list[OperationCase] = [
    _case("ping", "GET", "/ping", "/ping", content=b'"pong"', returns="pong"),
    # Project
    _case(
        "list_projects",
        "GET",
        "/v0/projects",
        "/v0/projects",
        kwargs={"page_num": 2, "page_size": 5},
        query={"page_num": "2", "page_size": "5"},
    ),
    _case("get_project", "GET", "/v0/projects/{id}", "/v0/projects/proj-1", "proj-1"),
    # AOI
    _case(
        "list_aois",
        "GET",
        "/v0/aois",
        "/v0/aois",
        kwargs={"offset": 10, "limit": 5, "aoi_name": "field", "project_ids": ["p1", "p2"]},
        query={"offset": "10", "limit": "5", "aoi_name": "field", "project_ids": "p1,p2"},
    ),
    _case(
        "create_aoi",
        "POST",
        "/v0/aois",
        "/v0/aois",
        kwargs={
            "name": "field",
            "description": "a field",
            "satellite_id": SATELLITE_ID,
            "provider": "pixxel",
            "project_id": "proj-1",
            "geometry": POLYGON,
            "item_ids": ["TD2_1"],
        },
        body={
            "name": "field",
            "description": "a field",
            "satellite_id": SATELLITE_ID,
            "provider": "pixxel",
            "project_id": "proj-1",
            "geometry": POLYGON,
            "item_ids": ["TD2_1"],
        },
        status=201,
        creates=True,
    ),
    _case("get_aoi", "GET", "/v0/aoi/{aoi_id}", "/v0/aoi/aoi-1", "aoi-1"),
    _case("list_satellites", "GET", "/v0/satellites", "/v0/satellites"),
    # Search
    _case(
        "search_images",
        "POST",
        "/v0/search",
        "/v0/search",
        kwargs={
            "start_date": "2023-04-18T11:56:49.865Z",
            "end_date": "2023-05-03T11:56:49.865Z",
            "satellites": [{"collection_id": "sentinel-2-l2a", "satellite_id": SATELLITE_ID}],
            "geometry": POLYGON,
            "filters": [{"id": "eo:cloud_cover", "min": 0, "max": 20}],
            "limit": 10,
        },
        body={
            "start_date": "2023-04-18T11:56:49.865Z",
            "end_date": "2023-05-03T11:56:49.865Z",
            "satellites": [{"collection_id": "sentinel-2-l2a", "satellite_id": SATELLITE_ID}],
            "geometry": POLYGON,
            "filters": [{"id": "eo:cloud_cover", "min": 0, "max": 20}],
            "limit": 10,
        },
    ),
    # Indices
    _case(
        "list_indices",
        "GET",
        "/v0/indices",
        "/v0/indices",
        kwargs={"offset": 0, "limit": 10, "satellite_id": SATELLITE_ID, "expression_type": "index"},
        query={"offset": "0", "limit": "10", "satellite_id": SATELLITE_ID, "expression_type": "index"},
    ),
    _case(
        "create_index",
        "POST",
        "/v0/indices",
        "/v0/indices",
        kwargs={
            "name": "NDVI",
            "description": "vegetation",
            "rescale": [0, 1],
            "expression": "(B08-B04)/(B08+B04)",
            "colormap": "rdylgn",
            "satellite_id": SATELLITE_ID,
            "expression_type": "Index",
        },
        body={
            "name": "NDVI",
            "description": "vegetation",
            "rescale": [0, 1],
            "expression": "(B08-B04)/(B08+B04)",
            "colormap": "rdylgn",
            "satellite_id": SATELLITE_ID,
            "expression_type": "index",
        },
        status=201,
        creates=True,
    ),
    # Visualizations
    _case(
        "list_visualizations",
        "GET",
        "/v0/aois/{aoi_id}/visualizations",
        "/v0/aois/aoi-1/visualizations",
        "aoi-1",
        kwargs={"limit": 5, "index_id": "idx-1"},
        query={"limit": "5", "index_id": "idx-1"},
    ),
    _case(
        "create_visualization",
        "POST",
        "/v0/aois/{aoi_id}/visualizations",
        "/v0/aois/aoi-1/visualizations",
        "aoi-1",
        kwargs={"index_id": "idx-1", "src_asset_ids": ["asset-1"], "resolution": 10},
        body={"index_id": "idx-1", "src_asset_ids": ["asset-1"], "resolution": 10},
        status=201,
        creates=True,
    ),
    _case(
        "update_visualization_metadata",
        "PUT",
        "/v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata",
        "/v0/aois/aoi-1/visualizations/vis-1/metadata",
        "aoi-1",
        "vis-1",
        kwargs={"visualization_mode": "dynamic", "legend": {"2024-05-06": [LEGEND_ITEM]}, "dynamic_bins": 5},
        body={"visualization_mode": "dynamic", "legend": {"2024_05_06": [LEGEND_ITEM]}, "dynamic_bins": 5},
    ),
    _case(
        "rollback_visualization_metadata",
        "PATCH",
        "/v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata",
        "/v0/aois/aoi-1/visualizations/vis-1/metadata",
        "aoi-1",
        "vis-1",
        kwargs={"index_id": "idx-1", "dates": [date(2024, 5, 6)], "visualization_mode": "theoretical"},
        body={"index_id": "idx-1", "dates": ["2024_05_06"], "visualization_mode": "theoretical"},
    ),
    _case(
        "generate_index_png",
        "POST",
        "/v0/aois/{aoi_id}/visualizations/{visualization_id}/png",
        "/v0/aois/aoi-1/visualizations/vis-1/png",
        "aoi-1",
        "vis-1",
        kwargs={"index_id": "idx-1", "date": "2024-05-06", "visualization_mode": "dynamic"},
        body={"index_id": "idx-1", "date": "2024_05_06", "visualization_mode": "dynamic"},
        content=PNG_BYTES,
        content_type="image/png",
        returns=PNG_BYTES,
    ),
    _case(
        "generate_visualization_sld",
        "POST",
        "/v0/aois/{aoi_id}/visualizations/{visualization_id}/sld",
        "/v0/aois/aoi-1/visualizations/vis-1/sld",
        "aoi-1",
        "vis-1",
        kwargs={"dates": ["2024_05_06"], "visualization_modes": ["dynamic", "theoretical"]},
        body={"dates": ["2024_05_06"], "visualization_modes": ["dynamic", "theoretical"]},
    ),
    # Blocks
    _case(
        "list_blocks",
        "GET",
        "/v0/blocks",
        "/v0/blocks",
        kwargs={"mode": "released"},
        query={"mode": "released"},
    ),
    _case("get_block_versions", "GET", "/v0/blocks/{name}", "/v0/blocks/ndvi", "ndvi"),
    _case(
        "get_block_version",
        "GET",
        "/v0/blocks/{name}/versions/{version}",
        "/v0/blocks/ndvi/versions/1.0.0",
        "ndvi",
        "1.0.0",
    ),
    # Insights
    _case(
        "create_insights",
        "POST",
        "/v0/aoi/{aoi_id}/insights",
        "/v0/aoi/aoi-1/insights",
        "aoi-1",
        kwargs={
            "block": {"name": "ndvi", "version": "1.0.0"},
            "input": [{"asset_id": "asset-1"}],
            "name": "ndvi run",
            "project_id": "proj-1",
            "metadata": {"team": "agri"},
        },
        body={
            "name": "ndvi run",
            "block": {"name": "ndvi", "version": "1.0.0"},
            "input": [{"asset_id": "asset-1"}],
            "project_id": "proj-1",
            "metadata": {"team": "agri"},
        },
        status=201,
        creates=True,
    ),
    _case(
        "list_insights",
        "GET",
        "/v0/aoi/{aoiId}/insights",
        "/v0/aoi/aoi-1/insights",
        "aoi-1",
        kwargs={"id": "ins-1", "status": "running"},
        query={"id": "ins-1", "status": "running"},
    ),
    _case(
        "download_insights",
        "PUT",
        "/v0/aoi/{aoi_id}/insights/{insight_id}/download",
        "/v0/aoi/aoi-1/insights/ins-1/download",
        "aoi-1",
        "ins-1",
        kwargs={"outputs": ["ndvi.tif"]},
        body={"outputs": ["ndvi.tif"]},
    ),
    _case(
        "delete_insights",
        "DELETE",
        "/v0/aoi/{aoi_id}/insights/{insight_id}",
        "/v0/aoi/aoi-1/insights/ins-1",
        "aoi-1",
        "ins-1",
        kwargs={"project_id": "proj-1"},
        query={"project_id": "proj-1"},
        content=b"",
        content_type="",
        returns=None,
    ),
    # Assets and downloads
    _case(
        "list_assets",
        "GET",
        "/v0/aois/{aoi_id}/assets",
        "/v0/aois/aoi-1/assets",
        "aoi-1",
        kwargs={"offset": 0, "limit": 10},
        query={"offset": "0", "limit": "10"},
    ),
    _case(
        "create_aoi_download",
        "POST",
        "/v0/aois/{aoi_id}/downloads",
        "/v0/aois/aoi-1/downloads",
        "aoi-1",
        kwargs={"asset_ids": ["asset-1", "asset-2"]},
        body={"asset_ids": ["asset-1", "asset-2"]},
        status=201,
    ),
    _case(
        "get_aoi_download",
        "GET",
        "/v0/aois/{aoi_id}/downloads/{download_id}",
        "/v0/aois/aoi-1/downloads/dl-1",
        "aoi-1",
        "dl-1",
    ),
    # Workflows and jobs
    _case(
        "list_workflows",
        "GET",
        "/v0/workflows",
        "/v0/workflows",
        kwargs={"project_id": "proj-1", "name": "wf", "offset": 0, "limit": 50},
        query={"project_id": "proj-1", "name": "wf", "offset": "0", "limit": "50"},
    ),
    _case(
        "get_workflow",
        "GET",
        "/v0/workflows/{workflow_id}",
        "/v0/workflows/wf-1",
        "wf-1",
        kwargs={"project_id": "proj-1"},
        query={"project_id": "proj-1"},
    ),
    _case(
        "get_workflow_cost_estimate",
        "GET",
        "/v0/workflows/{workflow_id}/estimate",
        "/v0/workflows/wf-1/estimate",
        "wf-1",
    ),
    _case(
        "list_jobs",
        "GET",
        "/v0/workflows/{workflow_id}/jobs",
        "/v0/workflows/wf-1/jobs",
        "wf-1",
        kwargs={"status": "running"},
        query={"status": "running"},
    ),
    _case(
        "create_job",
        "POST",
        "/v0/workflows/{workflow_id}/jobs",
        "/v0/workflows/wf-1/jobs",
        "wf-1",
        kwargs={"project_id": "proj-1"},
        query={"project_id": "proj-1"},
        creates=True,
    ),
    _case(
        "get_job",
        "GET",
        "/v0/workflows/{workflow_id}/jobs/{job_id}",
        "/v0/workflows/wf-1/jobs/job-1",
        "wf-1",
        "job-1",
    ),
    _case(
        "download_job",
        "PUT",
        "/v0/workflows/{workflow_id}/jobs/{job_id}/download",
        "/v0/workflows/wf-1/jobs/job-1/download",
        "wf-1",
        "job-1",
    ),
    _case(
        "download_task",
        "PUT",
        "/v0/workflows/{workflow_id}/jobs/{job_id}/tasks/{task_id}/download",
        "/v0/workflows/wf-1/jobs/job-1/tasks/task-1/download",
        "wf-1",
        "job-1",
        "task-1",
    ),
    # Bandsets and orders
    _case("list_bandsets", "GET", "/v0/bandsets", "/v0/bandsets"),
    _case(
        "list_orders",
        "GET",
        "/v0/orders",
        "/v0/orders",
        kwargs={"user_id": "user-1", "limit": 20, "offset": 40},
        query={"user_id": "user-1", "limit": "20", "offset": "40"},
    ),
    _case(
        "create_order",
        "POST",
        "/v0/orders",
        "/v0/orders",
        kwargs={"order_items": [ORDER_ITEM]},
        body={"dry_run": False, "order_items": [ORDER_ITEM]},
        status=201,
        creates=True,
    ),
    _case("get_order", "GET", "/v0/orders/{id}", "/v0/orders/order-1", "order-1"),
    _case(
        "list_order_items",
        "GET",
        "/v0/order-items",
        "/v0/order-items",
        kwargs={"type": "ARCHIVE", "status": "ACTIVE", "order_ids": ["o1", "o2"], "limit": 10, "offset": 0},
        query={"type": "ARCHIVE", "status": "ACTIVE", "order_ids": "o1,o2", "limit": "10", "offset": "0"},
    ),
    _case("get_order_item", "GET", "/v0/order-items/{id}", "/v0/order-items/oi-1", "oi-1"),
    # Archives
    _case(
        "list_collections",
        "GET",
        "/v0/archives/collections",
        "/v0/archives/collections",
        kwargs={"ids": ["pixxel-td2"]},
        query={"ids": "pixxel-td2"},
    ),
    _case(
        "get_collection",
        "GET",
        "/v0/archives/collections/{cid}",
        "/v0/archives/collections/pixxel-td2",
        "pixxel-td2",
    ),
    _case(
        "list_collection_items",
        "GET",
        "/v0/archives/collections/{cid}/items",
        "/v0/archives/collections/pixxel-td2/items",
        "pixxel-td2",
        kwargs={"limit": 10, "offset": 20},
        query={"limit": "10", "offset": "20"},
    ),
    _case(
        "get_collection_item",
        "GET",
        "/v0/archives/collections/{cid}/items/{id}",
        "/v0/archives/collections/pixxel-td2/items/TD2_1",
        "pixxel-td2",
        "TD2_1",
    ),
    _case(
        "search_archive",
        "POST",
        "/v0/archives/search",
        "/v0/archives/search",
        kwargs={
            "collections": ["pixxel-td2"],
            "bbox": [77.5, 12.9, 77.6, 13.0],
            "datetime": "2024-01-01T00:00:00Z/..",
            "limit": 10,
            "offset": 0,
            "query": {"eo:cloud_cover": {"lt": 10}},
            "sortby": [{"field": "datetime", "direction": "desc"}],
        },
        body={
            "collections": ["pixxel-td2"],
            "bbox": [77.5, 12.9, 77.6, 13.0],
            "datetime": "2024-01-01T00:00:00Z/..",
            "limit": 10,
            "offset": 0,
            "query": {"eo:cloud_cover": {"lt": 10}},
            "sortby": [{"field": "datetime", "direction": "desc"}],
        },
    ),
    # Report
    _case(
        "download_order_report",
        "GET",
        "/v0/reports",
        "/v0/reports",
        kwargs={"tz": "Asia/Kolkata"},
        query={"tz": "Asia/Kolkata"},
        content=CSV_TEXT.encode(),
        content_type="text/csv",
        returns=CSV_TEXT,
    ),
    # Stores
    _case("list_stores", "GET", "/v0/stores", "/v0/stores"),
    _case(
        "create_store",
        "POST",
        "/v0/stores",
        "/v0/stores",
        kwargs={
            "name": "bucket",
            "type": "s3",
            "configs": {"bucket": "my-bucket", "region": "us-east-2"},
            "secrets": {"access_key_id": "AKIAEXAMPLE0001", "secret_access_key": "store-secret-9d8c7b6a"},
            "labels": {"env": "test"},
        },
        body={
            "name": "bucket",
            "type": "S3",
            "configs": {"bucket": "my-bucket", "region": "us-east-2"},
            "secrets": {"access_key_id": "AKIAEXAMPLE0001", "secret_access_key": "store-secret-9d8c7b6a"},
            "labels": {"env": "test"},
        },
        creates=True,
    ),
    _case(
        "delete_store",
        "DELETE",
        "/v0/stores/{id}",
        "/v0/stores/store-1",
        "store-1",
        status=204,
        content=b"",
        content_type="",
        returns=None,
    ),
    # Catalogs, deliveries, catalog downloads
    _case(
        "list_deliveries",
        "GET",
        "/v0/catalogs/deliveries",
        "/v0/catalogs/deliveries",
        kwargs={"order_item_id": "oi-1"},
        query={"order_item_id": "oi-1"},
    ),
    _case(
        "create_deliveries",
        "POST",
        "/v0/catalogs/deliveries",
        "/v0/catalogs/deliveries",
        kwargs={
            "deliveries": [
                {"catalog_ids": ["cat-1"], "order_item_ids": [], "cloud_info": {"config": "store-1"}}
            ]
        },
        body={
            "deliveries": [
                {"catalog_ids": ["cat-1"], "order_item_ids": [], "cloud_info": {"config": "store-1"}}
            ]
        },
        status=201,
    ),
    _case(
        "create_catalog_download",
        "POST",
        "/v0/catalogs/download",
        "/v0/catalogs/download",
        kwargs={"catalog_ids": ["cat-1"], "order_item_ids": []},
        body={"catalog_ids": ["cat-1"], "order_item_ids": []},
        status=201,
    ),
    _case(
        "get_catalog_download",
        "GET",
        "/v0/catalogs/download/{download_id}",
        "/v0/catalogs/download/dl-2",
        "dl-2",
    ),
    _case(
        "search_catalogs",
        "POST",
        "/v0/catalogs/search",
        "/v0/catalogs/search",
        kwargs={"order_item_ids": ["oi-1"], "limit": 50, "offset": 0},
        body={"order_item_ids": ["oi-1"], "limit": 50, "offset": 0},
    ),
    _case("get_catalog", "GET", "/v0/catalogs/{id}", "/v0/catalogs/cat-1", "cat-1"),
]

CASES_BY_NAME = {case.name: case for case in OPERATION_CASES}
