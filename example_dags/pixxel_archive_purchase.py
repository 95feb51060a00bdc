"""Archive purchase: buy the least cloudy archive scenes of an area and download them.

Search the STAC archive for a date window, order the best few scenes (priced first, capped by
``max_cost``), wait for the order, then download its catalogs as one verified zip.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from pixxel_example_settings import (
    DEFAULT_ARGS,
    FIELD_AREA,
    OUTPUT_DIR,
    RUN_DATE,
    SHORT_WAIT_SECONDS,
    check_area,
    output_path,
    poll_interval_seconds,
    resolve_project,
)

from airflow_provider_pixxel.operators import (
    PixxelArchiveSearchOperator,
    PixxelCreateOrderOperator,
    PixxelDownloadCatalogsOperator,
    PixxelSearchCatalogsOperator,
)
from airflow_provider_pixxel.sensors import PixxelOrderSensor

POLL_INTERVAL_SECONDS = poll_interval_seconds()  # read each time this file is parsed
# [START howto_budget_pool]
# Purchases run in a one-slot pool so that the budget check and the purchase of two runs never
# interleave: create it with `airflow pools set pixxel_purchases 1 "Pixxel purchases"` and set
# PIXXEL_PURCHASE_POOL=pixxel_purchases. Without it, two runs checking at the same instant can both
# pass, and the budget can be overshot by at most the price of the purchases running at once.
PURCHASE_POOL = os.environ.get("PIXXEL_PURCHASE_POOL", "default_pool")
# [END howto_budget_pool]

ORDER_ID = "{{ ti.xcom_pull(task_ids='place_order')['order_id'] }}"

DOC_MD = """
### Archive purchase

Buys the best existing scenes of an area instead of tasking new captures:

1. **prepare_search** checks the `aoi_geojson` param locally and resolves the project.
2. **archive_search** walks every page of the STAC archive (`collections`, `search_start`..`search_end`,
   at most `max_cloud_cover` % cloud) and keeps the `max_items` least cloudy scenes.
3. **build_archive_order** turns them into one archive order item; **place_order** prices it with a dry
   run (nothing is bought), refuses it above `max_cost` or when it and what the project already spent
   this month exceed `budget_tokens`, then places it. The order id survives task retries, so a retry
   never buys twice.
4. **wait_for_order** waits until every item is fulfilled (deferrable: in the triggerer).
5. **find_catalogs** lists the delivered catalogs; **download_imagery** fetches them as one zip
   (SHA-256 checked, written atomically) under `output_dir/<dag_id>/<ds>/imagery/`.
6. **summarize** writes `summary.json` beside it: scenes, cost, file size and SHA-256.

Run it on demand, e.g. `airflow dags trigger pixxel_archive_purchase -c '{"max_items": 1, "max_cost": 300}'`.
With `"pixxel_dry_run": true` in the conf the run prices the order and buys nothing (place_order and
everything after it are skipped); `pixxel-spend --priced pixxel_archive_purchase` sums such runs.
"""

with DAG(
    dag_id="pixxel_archive_purchase",
    description="Order the least cloudy archive scenes of an area and download them",
    doc_md=DOC_MD,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["pixxel", "example", "archive", "orders", "download"],
    params={
        "aoi_geojson": Param(FIELD_AREA, type="object", description="GeoJSON of the area to buy"),
        "order_name": Param("bengaluru-east-farms-archive", type="string", minLength=1),
        "project": Param("", type="string", description="project id or name; empty: the connection's"),
        "usecase": Param("agriculture", type="string"),
        "collections": Param(["pixxel-td1", "pixxel-td2"], type="array", minItems=1),
        "search_start": Param("2024-10-01", type="string", format="date"),
        "search_end": Param("2025-03-31", type="string", format="date"),
        "max_cloud_cover": Param(20, type="number", minimum=0, maximum=100, description="percent"),
        "max_items": Param(2, type="integer", minimum=1, description="scenes to buy, least cloudy first"),
        "max_cost": Param(1000, type="number", exclusiveMinimum=0, description="wallet tokens"),
        # [START howto_budget_params]
        "budget_tokens": Param(
            50_000, type="integer", minimum=1, description="the project's monthly spend, this order included"
        ),
        "pixxel_dry_run": Param(False, type="boolean", description="price the order, buy nothing"),
        # [END howto_budget_params]
        "output_dir": Param(OUTPUT_DIR, type="string", description="local path or object-storage URL"),
    },
) as dag:

    @task(multiple_outputs=True)
    def prepare_search(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.pixxel import PixxelHook

        assert params is not None
        area = check_area(params["aoi_geojson"])
        print(f"AOI {params['order_name']}: {area['area_km2']} km², bbox {area['bbox']}")
        with PixxelHook() as hook:
            project_id = resolve_project(hook, params["project"])
        return {
            "feature_collection": area["feature_collection"],
            "bbox": area["bbox"],
            "project_id": project_id,
            # Passed on from here rather than templated, so lists and numbers keep their types.
            "collections": list(params["collections"]),
            "query": {"eo:cloud_cover": {"lte": params["max_cloud_cover"]}},
            "max_items": params["max_items"],
        }

    search = prepare_search()
    # [START howto_operator_archive_search]
    archive_search = PixxelArchiveSearchOperator(
        task_id="archive_search",
        collections=search["collections"],
        bbox=search["bbox"],
        start="{{ params.search_start }}",
        end="{{ params.search_end }}",
        query=search["query"],
        max_items=search["max_items"],
    )
    # [END howto_operator_archive_search]

    # [START howto_archive_search_into_order]
    @task
    def build_archive_order(
        item_ids: list[str],
        area: dict[str, Any],
        project_id: str,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        assert params is not None
        if not item_ids:
            raise ValueError(
                f"no archive scene of {params['collections']} between {params['search_start']} and "
                f"{params['search_end']} has at most {params['max_cloud_cover']} % cloud; widen the search"
            )
        print(f"Ordering {len(item_ids)} scene(s): {', '.join(item_ids)}")
        return [
            {
                "project_id": project_id,
                "name": params["order_name"],
                "geometry": area,
                "usecase": params["usecase"],
                "item_ids": item_ids,
            }
        ]

    order_items = build_archive_order(
        archive_search.output, search["feature_collection"], search["project_id"]
    )
    place_order = PixxelCreateOrderOperator(
        task_id="place_order",
        order_items=order_items,
        max_cost="{{ params.max_cost }}",
        budget_tokens="{{ params.budget_tokens }}",
        budget_period="month",
        pool=PURCHASE_POOL,
        # The sensor waits, so the triggerer (not a worker slot) holds the wait when deferrable.
        wait_for_completion=False,
    )
    # [END howto_archive_search_into_order]
    # [START howto_sensor_order]
    wait_for_order = PixxelOrderSensor(
        task_id="wait_for_order",
        order_id=ORDER_ID,
        poke_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    )
    # [END howto_sensor_order]
    # [START howto_operator_search_catalogs]
    find_catalogs = PixxelSearchCatalogsOperator(
        task_id="find_catalogs", order_ids=ORDER_ID, fail_if_empty=True
    )
    # [END howto_operator_search_catalogs]
    # [START howto_operator_download_catalogs]
    download_imagery = PixxelDownloadCatalogsOperator(
        task_id="download_imagery",
        catalog_ids="{{ ti.xcom_pull(task_ids='find_catalogs')['catalog_ids'] }}",
        destination=output_path("imagery"),
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    )
    # [END howto_operator_download_catalogs]

    @task
    def summarize(
        item_ids: list[str],
        placed: dict[str, Any],
        fulfilled: dict[str, Any],
        imagery: dict[str, Any],
        params: dict[str, Any] | None = None,
        run_date: str | None = None,
        dag: Any = None,
        dag_run: Any = None,
    ) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.download import resolve_destination, write_bytes_atomically

        assert params is not None
        summary = {
            "item_ids": item_ids,
            "order_id": placed["order_id"],
            "order_item_ids": placed["order_item_ids"],
            "order_cost_tokens": placed["total_amount"],
            "order_status": fulfilled.get("status"),
            "files": [{key: imagery[key] for key in ("path", "size", "sha256")}],
        }
        target = resolve_destination(f"{params['output_dir']}/{dag.dag_id}/{run_date}", "summary.json")
        written = write_bytes_atomically(json.dumps(summary, indent=2).encode(), target)
        print(f"Summary written to {written.path}:\n{json.dumps(summary, indent=2)}")
        return summary

    summarize(
        archive_search.output,
        place_order.output,
        wait_for_order.output,
        download_imagery.output,
        run_date=RUN_DATE,
    )

    place_order >> wait_for_order >> find_catalogs >> download_imagery
