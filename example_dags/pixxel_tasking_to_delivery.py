"""Tasking to delivery: order new captures of a field, then download, deliver and preview them.

The flagship example DAG, and what ``make demo`` runs against the local simulator.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from pixxel_example_settings import (
    DEFAULT_ARGS,
    FIELD_AREA,
    LONG_WAIT_SECONDS,
    OUTPUT_DIR,
    RUN_DATE,
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
    PixxelCreateDeliveryOperator,
    PixxelCreateOrderOperator,
    PixxelCreateStoreOperator,
    PixxelCreateVisualizationOperator,
    PixxelDownloadCatalogsOperator,
    PixxelGenerateIndexPngOperator,
    PixxelSearchCatalogsOperator,
    PixxelSearchImagesOperator,
)
from airflow_provider_pixxel.sensors import PixxelDeliverySensor, PixxelOrderSensor

POLL_INTERVAL_SECONDS = poll_interval_seconds()  # read each time this file is parsed
# A one-slot pool makes the budget check exact across runs (see pixxel_archive_purchase.py).
PURCHASE_POOL = os.environ.get("PIXXEL_PURCHASE_POOL", "default_pool")

ORDER_ID = "{{ ti.xcom_pull(task_ids='place_order')['order_id'] }}"
CATALOG_IDS = "{{ ti.xcom_pull(task_ids='find_catalogs')['catalog_ids'] }}"

DOC_MD = """
### Tasking to delivery

Orders new captures of an area, waits for them, and puts them where they are used:

1. **validate_aoi** checks the `aoi_geojson` param locally (ring closure, winding, self-intersections,
   polygons at most 200 km apart) and logs its area; **resolve_workspace** turns the names in the params
   (project, bandset, satellite, index) into ids.
2. **place_order** prices the tasking order with a dry run (nothing is bought), refuses it above
   `max_cost` or when it and this month's spend of the project exceed `budget_tokens`, then places it;
   the order id survives task retries, so a retry never buys twice.
3. **wait_for_order** waits until every order item is fulfilled (deferrable: in the triggerer).
4. **find_catalogs** lists the captured imagery; **download_imagery** fetches it as one verified zip under
   `output_dir/<dag_id>/<ds>/`; **register_store** + **deliver** copy it to the cloud store.
5. **Index preview**: an AOI over the same polygon from archive images (`preview_start`..`preview_end`),
   an `index` visualization of it, and its PNG for the newest image date.
6. **summarize** writes `summary.json` beside the files: cost, files with sizes and SHA-256, PNG, deliveries.

Waits defer to the triggerer when `[operators] default_deferrable` is true. Trigger it with a config
to override any param, e.g. `airflow dags trigger pixxel_tasking_to_delivery -c '{"max_cost": 800}'`.
Price before buying: with `-c '{"pixxel_dry_run": true}'` a run prices the order and buys nothing (the
order and delivery tasks are skipped); `pixxel-spend --priced pixxel_tasking_to_delivery` sums the
prices of such runs, then run for real.
"""

with DAG(
    dag_id="pixxel_tasking_to_delivery",
    description="Price, place and receive a tasking order; download, deliver and preview the imagery",
    doc_md=DOC_MD,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["pixxel", "example", "tasking", "orders", "delivery"],
    params={
        "aoi_geojson": Param(FIELD_AREA, type="object", description="GeoJSON of the area to capture"),
        "order_name": Param("bengaluru-east-farms", type="string", minLength=1),
        "project": Param("", type="string", description="project id or name; empty: the connection's"),
        "usecase": Param("agriculture", type="string"),
        "bandset": Param("Agriculture", type="string", description="bandset id or name"),
        "capture_starts_in_days": Param(2, type="integer", minimum=2, description="days after ds"),
        "capture_window_days": Param(7, type="integer", minimum=1),
        "cloud_cover": Param(20, type="integer", minimum=0, maximum=100),
        "off_nadir": Param(25, type="integer", minimum=0, maximum=90),
        "max_cost": Param(1000, type="number", exclusiveMinimum=0, description="wallet tokens"),
        "budget_tokens": Param(
            50_000, type="integer", minimum=1, description="the project's monthly spend, this order included"
        ),
        "pixxel_dry_run": Param(False, type="boolean", description="price the order, buy nothing"),
        "output_dir": Param(OUTPUT_DIR, type="string", description="local path or object-storage URL"),
        "store_name": Param("analytics-landing-zone", type="string"),
        "store_bucket": Param("acme-eo-landing", type="string"),
        "store_region": Param("ap-south-1", type="string"),
        "store_secrets_conn_id": Param("pixxel_delivery_bucket", type="string"),
        "delivery_prefix": Param("tasking/", type="string"),
        "index": Param("NDVI", type="string", description="index id or name for the preview PNG"),
        "preview_satellite": Param("Pixxel-TD2", type="string"),
        "preview_collection": Param("pixxel-td2", type="string"),
        "preview_start": Param("2024-10-01", type="string", format="date"),
        "preview_end": Param("2025-03-31", type="string", format="date"),
    },
) as dag:

    @task(multiple_outputs=True)
    def validate_aoi(params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert params is not None
        area = check_area(params["aoi_geojson"])
        print(f"AOI {params['order_name']}: {area['area_km2']} km² (billed {area['billed_area_km2']} km²)")
        return area

    @task(multiple_outputs=True)
    def resolve_workspace(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.pixxel import PixxelHook

        assert params is not None
        with PixxelHook() as hook:
            satellite_id = pick(
                hook.list_satellites()["satellites"], params["preview_satellite"], "satellite"
            )
            return {
                "project_id": resolve_project(hook, params["project"]),
                "bandset_id": pick(hook.list_bandsets()["bandsets"], params["bandset"], "bandset"),
                "satellite_id": satellite_id,
                "preview_satellites": [
                    {"collection_id": params["preview_collection"], "satellite_id": satellite_id}
                ],
                "index_id": pick(hook.iter_indices(), params["index"], "index"),
            }

    # [START howto_operator_create_order_tasking]
    @task
    def build_tasking_order(
        area: dict[str, Any],
        project_id: str,
        bandset_id: str,
        run_date: str | None = None,
        params: dict[str, Any] | None = None,
        dag_run: Any = None,
    ) -> list[dict[str, Any]]:
        assert run_date is not None
        assert params is not None
        start = datetime.date.fromisoformat(run_date) + datetime.timedelta(
            days=params["capture_starts_in_days"]
        )
        end = start + datetime.timedelta(days=params["capture_window_days"])
        return [
            {
                "project_id": project_id,
                "name": params["order_name"],
                "geometry": area,
                "usecase": params["usecase"],
                "bandset": {"bandset_id": bandset_id},
                "recurrence": "ONCE",
                "start_date": start.isoformat(),
                "end_date": end.isoformat(),
                "cloud_cover": params["cloud_cover"],
                "off_nadir": params["off_nadir"],
            }
        ]

    # [END howto_operator_create_order_tasking]

    area = validate_aoi()
    workspace = resolve_workspace()
    order_items = build_tasking_order(
        area["feature_collection"], workspace["project_id"], workspace["bandset_id"], run_date=RUN_DATE
    )

    # [START howto_operator_create_order]
    place_order = PixxelCreateOrderOperator(
        task_id="place_order",
        order_items=order_items,
        max_cost="{{ params.max_cost }}",
        budget_tokens="{{ params.budget_tokens }}",
        budget_period="month",
        pool=PURCHASE_POOL,
        # Waiting is the sensor's job, so the triggerer (not a worker slot) holds the days of tasking.
        wait_for_completion=False,
    )
    # [END howto_operator_create_order]
    wait_for_order = PixxelOrderSensor(
        task_id="wait_for_order",
        order_id=ORDER_ID,
        poke_interval=POLL_INTERVAL_SECONDS,
        timeout=LONG_WAIT_SECONDS,
    )
    find_catalogs = PixxelSearchCatalogsOperator(
        task_id="find_catalogs", order_ids=ORDER_ID, fail_if_empty=True
    )
    download_imagery = PixxelDownloadCatalogsOperator(
        task_id="download_imagery",
        catalog_ids=CATALOG_IDS,
        destination=output_path("imagery"),
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    )
    # [START howto_operator_create_store]
    register_store = PixxelCreateStoreOperator(
        task_id="register_store",
        name="{{ params.store_name }}",
        type="S3",
        configs={"bucket": "{{ params.store_bucket }}", "region": "{{ params.store_region }}"},
        secrets_conn_id="{{ params.store_secrets_conn_id }}",
        reuse_existing=True,
    )
    # [END howto_operator_create_store]
    # [START howto_operator_create_delivery]
    deliver = PixxelCreateDeliveryOperator(
        task_id="deliver",
        catalog_ids=CATALOG_IDS,
        store_id="{{ ti.xcom_pull(task_ids='register_store')['store_id'] }}",
        path="{{ params.delivery_prefix }}" + RUN_DATE + "/",
        # One sensor per delivery waits below, each deferrable on its own.
        wait_for_completion=False,
    )
    # [END howto_operator_create_delivery]

    # [START howto_sensor_delivery]
    @task
    def delivery_ids(requested: dict[str, Any]) -> list[str]:
        return list(requested["delivery_ids"])

    wait_for_deliveries = PixxelDeliverySensor.partial(
        task_id="wait_for_deliveries", poke_interval=POLL_INTERVAL_SECONDS, timeout=SHORT_WAIT_SECONDS
    ).expand(delivery_id=delivery_ids(deliver.output))
    # [END howto_sensor_delivery]

    search_preview_images = PixxelSearchImagesOperator(
        task_id="search_preview_images",
        start_date="{{ params.preview_start }}",
        end_date="{{ params.preview_end }}",
        satellites=workspace["preview_satellites"],
        geometry=area["polygon"],
        filters=[{"id": "eo:cloud_cover", "min": 0, "max": 30}],
        limit=5,
    )
    create_preview_aoi = PixxelCreateAOIOperator(
        task_id="create_preview_aoi",
        name="{{ params.order_name }}-preview-" + run_date_template("ts_nodash"),
        description="Index preview of the tasking order's area from archive imagery",
        satellite_id=workspace["satellite_id"],
        provider="pixxel",
        geometry=area["polygon"],
        item_ids=search_preview_images.output,
        project_id=workspace["project_id"],
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    )
    # [START howto_operator_create_visualization]
    create_visualization = PixxelCreateVisualizationOperator(
        task_id="create_visualization",
        aoi_id="{{ ti.xcom_pull(task_ids='create_preview_aoi')['aoi_id'] }}",
        index_id=workspace["index_id"],
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    )
    # [END howto_operator_create_visualization]

    @task
    def newest_image_date(aoi: dict[str, Any]) -> str:
        from airflow_provider_pixxel.hooks.pixxel import PixxelHook

        with PixxelHook() as hook:
            dates = sorted(a["date"][:10] for a in hook.iter_assets(aoi["aoi_id"]) if a.get("date"))
        if not dates:
            raise ValueError(f"AOI {aoi['aoi_id']} has no dated imagery to render")
        return dates[-1]

    preview_date = newest_image_date(create_preview_aoi.output)
    render_png = PixxelGenerateIndexPngOperator(
        task_id="render_index_png",
        aoi_id="{{ ti.xcom_pull(task_ids='create_visualization')['aoi_id'] }}",
        visualization_id="{{ ti.xcom_pull(task_ids='create_visualization')['visualization_id'] }}",
        index_id=workspace["index_id"],
        date=preview_date,
        destination=output_path("{{ params.index | lower }}_preview.png"),
    )

    @task
    def summarize(
        placed: dict[str, Any],
        fulfilled: dict[str, Any],
        imagery: dict[str, Any],
        delivery: dict[str, Any],
        delivered: list[dict[str, Any]],
        png: dict[str, Any],
        png_date: str,
        params: dict[str, Any] | None = None,
        run_date: str | None = None,
        dag: Any = None,
        dag_run: Any = None,
    ) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.download import resolve_destination, write_bytes_atomically

        assert params is not None
        summary = {
            "order_id": placed["order_id"],
            "order_item_ids": placed["order_item_ids"],
            "order_cost_tokens": placed["total_amount"],
            "order_status": fulfilled.get("status"),
            "files": [{key: imagery[key] for key in ("path", "size", "sha256")}],
            "index_png": {**png, "date": png_date, "index": params["index"]},
            "deliveries": {
                "store_id": delivery.get("store_id"),
                "delivery_ids": delivery.get("delivery_ids"),
                "target_paths": delivery.get("target_paths"),
                "statuses": [entry.get("status") for entry in delivered],
            },
        }
        target = resolve_destination(f"{params['output_dir']}/{dag.dag_id}/{run_date}", "summary.json")
        written = write_bytes_atomically(json.dumps(summary, indent=2).encode(), target)
        print(f"Summary written to {written.path}:\n{json.dumps(summary, indent=2)}")
        return summary

    summarize(
        place_order.output,
        wait_for_order.output,
        download_imagery.output,
        deliver.output,
        wait_for_deliveries.output,
        render_png.output,
        preview_date,
        run_date=RUN_DATE,
    )

    place_order >> wait_for_order >> find_catalogs >> [download_imagery, deliver]
    register_store >> deliver
    create_preview_aoi >> create_visualization >> render_png
