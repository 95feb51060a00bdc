"""Fan-out at scale: one AOI per field of a GeoJSON file, built and downloaded in parallel, API-friendly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from pixxel_example_settings import (
    DEFAULT_ARGS,
    OUTPUT_DIR,
    SHORT_WAIT_SECONDS,
    check_area,
    output_path,
    pick,
    poll_interval_seconds,
    resolve_project,
    run_date_template,
)

from airflow_provider_pixxel.operators import (
    PixxelCreateAOIOperator,
    PixxelDownloadAssetsOperator,
    PixxelSearchImagesOperator,
)

POLL_INTERVAL_SECONDS = poll_interval_seconds()  # read each time this file is parsed

# Every task that calls the API runs in this pool. Size it to what the account's rate limit allows
# at once, e.g. `airflow pools set pixxel_api 4 "Pixxel API calls"`: 4 slots keep a fan-out over
# hundreds of fields at 4 concurrent requests, and the long waits do not hold slots (they defer).
PIXXEL_POOL = "pixxel_api"
SAMPLE_FIELDS = str(Path(__file__).resolve().parent / "data" / "fields.geojson")

DOC_MD = f"""
### Fan-out over many fields

Reads the fields (one GeoJSON Feature per field, with a `name` property) from the file at
`fields_path` (default: the 5 sample fields shipped in `example_dags/data/fields.geojson`), then for
every field, as mapped tasks:

1. **search_images** finds archive scenes of the field between `start_date` and `end_date`;
2. **create_aoi** builds an AOI from them and waits until it is processed (deferred to the triggerer);
3. **choose_assets** lists the AOI's mosaics; **download_assets** fetches them as one verified zip,
   extracted under `output_dir/<dag_id>/<ds>/<field name>/` (the wait deferred).

Every API-calling task runs in the `{PIXXEL_POOL}` pool, so however many fields the file holds, at
most pool-size requests go out at once. Create it first: `airflow pools set {PIXXEL_POOL} 4 "Pixxel API"`.
"""

with DAG(
    dag_id="pixxel_fan_out",
    description="Build and download an AOI for every field of a GeoJSON file, throttled by a pool",
    doc_md=DOC_MD,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    default_args={**DEFAULT_ARGS, "pool": PIXXEL_POOL},
    max_active_tasks=16,
    tags=["pixxel", "example", "fan-out", "dynamic-task-mapping"],
    params={
        "fields_path": Param(SAMPLE_FIELDS, type="string", description="GeoJSON FeatureCollection file"),
        "project": Param("", type="string", description="project id or name; empty: the connection's"),
        "satellite": Param("Pixxel-TD2", type="string", description="satellite id or name"),
        "collection": Param("pixxel-td2", type="string"),
        "start_date": Param("2024-10-01", type="string", format="date"),
        "end_date": Param("2025-03-31", type="string", format="date"),
        "output_dir": Param(OUTPUT_DIR, type="string", description="local path or object-storage URL"),
    },
) as dag:

    @task(pool="default_pool")  # reads a local file: no API call, no pixxel_api slot
    def load_fields(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Each field's name and checked polygon; a bad field fails here, naming it, before any API call."""
        assert params is not None
        collection = json.loads(Path(params["fields_path"]).read_text())
        fields = []
        for number, feature in enumerate(collection.get("features") or []):
            name = str((feature.get("properties") or {}).get("name") or f"field-{number}")
            area = check_area(feature)
            if area["polygon"] is None:
                raise ValueError(f"field {name!r} must be one Polygon (an AOI is a single polygon)")
            fields.append({"name": name, "geometry": area["polygon"]})
        if not fields:
            raise ValueError(f"{params['fields_path']} holds no features")
        names = [f["name"] for f in fields]
        if len(set(names)) != len(names):
            raise ValueError(f"field names must be unique (they name the AOIs and folders): {names}")
        print(f"{len(fields)} fields: {', '.join(names)}")
        return fields

    @task(multiple_outputs=True)
    def resolve_workspace(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.pixxel import PixxelHook

        assert params is not None
        with PixxelHook() as hook:
            satellite_id = pick(hook.list_satellites()["satellites"], params["satellite"], "satellite")
            return {
                "project_id": resolve_project(hook, params["project"]),
                "satellite_id": satellite_id,
                "satellites": [{"collection_id": params["collection"], "satellite_id": satellite_id}],
            }

    fields = load_fields()
    workspace = resolve_workspace()

    @task(pool="default_pool")
    def search_requests(fields: list[dict[str, Any]], params: dict[str, Any] | None = None) -> list[dict]:
        # The window goes per field, not in .partial(): there start_date/end_date would be read as the
        # task's own schedule bounds.
        assert params is not None
        return [
            {
                "geometry": field["geometry"],
                "start_date": params["start_date"],
                "end_date": params["end_date"],
            }
            for field in fields
        ]

    search_images = PixxelSearchImagesOperator.partial(
        task_id="search_images", satellites=workspace["satellites"], limit=5
    ).expand_kwargs(search_requests(fields))

    @task(pool="default_pool")
    def aoi_requests(
        fields: list[dict[str, Any]], item_ids: list[list[str]], run_stamp: str | None = None
    ) -> list[dict]:
        return [
            {"name": f"{field['name']}-{run_stamp}", "geometry": field["geometry"], "item_ids": list(ids)}
            for field, ids in zip(fields, item_ids, strict=True)
        ]

    create_aoi = PixxelCreateAOIOperator.partial(
        task_id="create_aoi",
        description="Fan-out field",
        satellite_id=workspace["satellite_id"],
        provider="pixxel",
        project_id=workspace["project_id"],
        deferrable=True,
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    ).expand_kwargs(aoi_requests(fields, search_images.output, run_stamp=run_date_template("ts_nodash")))

    @task
    def choose_assets(aoi: dict[str, Any], fields: list[dict[str, Any]], ti: Any = None) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.pixxel import PixxelHook

        with PixxelHook() as hook:
            mosaics = [a["id"] for a in hook.iter_assets(aoi["aoi_id"]) if a.get("asset_type") == "mosaic"]
        if not mosaics:
            raise ValueError(f"AOI {aoi['aoi_id']} has no mosaic to download")
        # Mapped in the same order as create_aoi, so map index n is field n.
        return {"aoi_id": aoi["aoi_id"], "asset_ids": mosaics, "file_name": fields[ti.map_index]["name"]}

    # [START howto_operator_download_assets]
    download_assets = PixxelDownloadAssetsOperator.partial(
        task_id="download_assets",
        destination=output_path(),
        extract=True,
        deferrable=True,
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    ).expand_kwargs(choose_assets.partial(fields=fields).expand(aoi=create_aoi.output))
    # [END howto_operator_download_assets]
