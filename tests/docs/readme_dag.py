"""The README's example DAG; tests/test_readme.py checks the README shows exactly this and runs it."""

# [START readme_example]
from airflow.sdk import DAG, task

from airflow_provider_pixxel.operators import (
    PixxelArchiveSearchOperator,
    PixxelCreateOrderOperator,
    PixxelDownloadCatalogsOperator,
)

FIELD = {
    "type": "Polygon",
    "coordinates": [[[77.52, 12.92], [77.58, 12.92], [77.58, 12.98], [77.52, 12.98], [77.52, 12.92]]],
}

with DAG("pixxel_quickstart", schedule=None) as dag:
    scenes = PixxelArchiveSearchOperator(
        task_id="search", collections=["pixxel-td1", "pixxel-td2"], intersects=FIELD, max_items=2
    )

    @task
    def archive_order(item_ids: list[str]) -> list[dict]:
        return [{"name": "field-42", "geometry": FIELD, "usecase": "agriculture", "item_ids": item_ids}]

    order = PixxelCreateOrderOperator(  # priced by a dry run first; refused above max_cost
        task_id="order", order_items=archive_order(scenes.output), max_cost=900
    )
    order >> PixxelDownloadCatalogsOperator(
        task_id="download",
        order_item_ids="{{ ti.xcom_pull('order')['order_item_ids'] }}",
        destination="/tmp/pixxel-quickstart",
    )
# [END readme_example]
