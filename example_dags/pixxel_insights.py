"""Insights: run a processing block over an AOI built from archive imagery, then download its outputs."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from pixxel_example_settings import (
    DEFAULT_ARGS,
    FIELD_AREA,
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
    PixxelCreateInsightsOperator,
    PixxelDownloadInsightsOperator,
    PixxelSearchImagesOperator,
)

POLL_INTERVAL_SECONDS = poll_interval_seconds()  # read each time this file is parsed

DOC_MD = """
### Insights

Runs one of Pixxel's insight blocks (crop classification, water-body detection...) over an area:

1. **validate_aoi** checks the `aoi_geojson` param locally; **resolve_workspace** turns the project and
   satellite names into ids.
2. **search_images** finds archive scenes of the area between `start_date` and `end_date`;
   **create_aoi** builds an AOI from them and waits until it is processed.
3. **choose_block** picks `block_name` at `block_version` (empty: its newest version), reads the
   block's input spec and fills every input: rasters from the AOI's newest scene, date inputs from
   `start_date`/`end_date`, the rest from `input_values`. A name the block does not know fails here.
4. **run_insight** asks for the price first (`estimate=true`), refuses it above `max_cost`, runs it and
   waits; a retry reconnects to the same insight instead of paying again.
5. **download_outputs** fetches the block's outputs as one verified zip, extracted under
   `output_dir/<dag_id>/<ds>/insight/`.

Waits defer to the triggerer when `[operators] default_deferrable` is true. Example:
`airflow dags trigger pixxel_insights -c '{"block_name": "cropclassification", "input_values": {}}'`.
"""

with DAG(
    dag_id="pixxel_insights",
    description="Run an insight block over an AOI and download its outputs",
    doc_md=DOC_MD,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["pixxel", "example", "insights"],
    params={
        "aoi_geojson": Param(FIELD_AREA, type="object", description="GeoJSON of the area to analyse"),
        "aoi_name": Param("bengaluru-east-farms-insights", type="string", minLength=1),
        "project": Param("", type="string", description="project id or name; empty: the connection's"),
        "satellite": Param("Pixxel-TD2", type="string", description="satellite id or name"),
        "collection": Param("pixxel-td2", type="string", description="STAC collection of its images"),
        "start_date": Param("2024-10-01", type="string", format="date"),
        "end_date": Param("2025-03-31", type="string", format="date"),
        "block_name": Param("waterbodydetection", type="string", minLength=1),
        "block_version": Param("", type="string", description="empty: the newest version"),
        "input_values": Param(
            {"threshold": 0.3},
            type="object",
            description="values of the block's non-raster, non-date inputs, by input name",
        ),
        "max_cost": Param(500, type="number", exclusiveMinimum=0, description="wallet tokens"),
        "output_dir": Param(OUTPUT_DIR, type="string", description="local path or object-storage URL"),
    },
) as dag:

    @task(multiple_outputs=True)
    def validate_aoi(params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert params is not None
        area = check_area(params["aoi_geojson"])
        if area["polygon"] is None:
            raise ValueError("aoi_geojson must hold one polygon: an AOI is a single Polygon")
        print(f"AOI {params['aoi_name']}: {area['area_km2']} km²")
        return area

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

    area = validate_aoi()
    workspace = resolve_workspace()

    # [START howto_operator_search_images]
    search_images = PixxelSearchImagesOperator(
        task_id="search_images",
        start_date="{{ params.start_date }}",
        end_date="{{ params.end_date }}",
        satellites=workspace["satellites"],
        geometry=area["polygon"],
        filters=[{"id": "eo:cloud_cover", "min": 0, "max": 30}],
        limit=10,
    )
    # [END howto_operator_search_images]
    # [START howto_operator_create_aoi]
    create_aoi = PixxelCreateAOIOperator(
        task_id="create_aoi",
        name="{{ params.aoi_name }}-" + run_date_template("ts_nodash"),
        description="Insight area",
        satellite_id=workspace["satellite_id"],
        provider="pixxel",
        geometry=area["polygon"],
        item_ids=search_images.output,
        project_id=workspace["project_id"],
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    )
    # [END howto_operator_create_aoi]

    @task(multiple_outputs=True)
    def choose_block(aoi: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The block to run, the value of each of its inputs, and the names of its outputs."""
        from airflow_provider_pixxel.hooks.pixxel import PixxelHook

        assert params is not None
        name = params["block_name"]
        with PixxelHook() as hook:
            versions = [b["spec"]["version"] for b in hook.get_block_versions(name)["blocks"]]
            version = params["block_version"] or max(
                versions, key=lambda v: tuple(int(p) if p.isdigit() else 0 for p in v.split("."))
            )
            if version not in versions:
                raise ValueError(f"block {name} has no version {version!r}; it has {', '.join(versions)}")
            spec = hook.get_block_version(name, version)["spec"]
            scenes = sorted(
                (a for a in hook.iter_assets(aoi["aoi_id"]) if a.get("asset_type") == "stac_item"),
                key=lambda a: a.get("date") or "",
            )
        if not scenes:
            raise ValueError(f"AOI {aoi['aoi_id']} has no scene to run {name} on")
        newest = scenes[-1]
        values: dict[str, Any] = {}
        for item in spec["inputs"]:
            if item["format"] == "raster":
                values[item["name"]] = {
                    "stac_url": f"https://stac.pixxel.space/collections/{params['collection']}/items/"
                    f"{newest['name']}",
                    "asset_source": {"id": newest["id"], "type": "raw_mosaic"},
                }
            elif item["format"] == "date" and item["name"] in ("start_date", "end_date"):
                values[item["name"]] = params[item["name"]]
            elif item["name"] in params["input_values"]:
                values[item["name"]] = params["input_values"][item["name"]]
        print(f"Running {name} {version} on scene {newest['name']} with inputs {sorted(values)}")
        return {
            "block": {"name": name, "version": version},
            "input_values": values,
            "outputs": [o["name"] for o in spec.get("outputs") or []],
        }

    block = choose_block(create_aoi.output)
    # [START howto_operator_create_insights]
    run_insight = PixxelCreateInsightsOperator(
        task_id="run_insight",
        aoi_id="{{ ti.xcom_pull(task_ids='create_aoi')['aoi_id'] }}",
        block=block["block"],
        input_values=block["input_values"],
        name="{{ params.block_name }}-" + run_date_template("ds_nodash"),
        project_id=workspace["project_id"],
        metadata={"dag_run": "{{ run_id }}"},
        max_cost="{{ params.max_cost }}",
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    )
    # [END howto_operator_create_insights]
    # [START howto_operator_download_insights]
    download_outputs = PixxelDownloadInsightsOperator(
        task_id="download_outputs",
        aoi_id="{{ ti.xcom_pull(task_ids='run_insight')['aoi_id'] }}",
        insight_id="{{ ti.xcom_pull(task_ids='run_insight')['insight_id'] }}",
        outputs=block["outputs"],
        destination=output_path(),
        file_name="insight",
        extract=True,
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    )
    # [END howto_operator_download_insights]
    run_insight >> download_outputs
