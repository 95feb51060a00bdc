"""What one ``pixxel_archive_purchase`` run would buy, priced with a dry run, and what is spent already.

``python -m scripts.deployment.purchase_quote [--conf JSON]``, run with a deployment's environment (its
``AIRFLOW_HOME`` and ``pixxel_default``), prints one JSON object::

    {"project_id": ..., "item_ids": [...], "price": ..., "spent": ..., "purchases": ...,
     "period": [start, end]}

The order is the one the DAG builds from its params (their defaults, overridden by ``--conf``, the run's
conf): the DAG's own archive search (``PixxelArchiveSearchOperator`` with the same arguments, the
``max_items`` least cloudy scenes) and the same order item, priced by ``PixxelHook.create_order(...,
dry_run=True)``, which buys nothing. ``spent`` is what the project spent this UTC month, read as the
purchase operators read it before buying (``hooks/spend.py``). The deployment suite sets the budget of
its concurrent runs from these two figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Sequence
from typing import Any

from scripts.deployment.stack import EXAMPLE_DAGS_FOLDER

ARCHIVE_DAG_FILE = "pixxel_archive_purchase"


def quote(conf: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(EXAMPLE_DAGS_FOLDER))
    from pixxel_archive_purchase import dag
    from pixxel_example_settings import check_area, resolve_project

    from airflow_provider_pixxel.hooks import spend
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook
    from airflow_provider_pixxel.operators import PixxelArchiveSearchOperator

    params = {**{name: dag.params[name] for name in dag.params}, **conf}
    area = check_area(params["aoi_geojson"])
    search = PixxelArchiveSearchOperator(
        task_id="quote_archive_search",
        collections=list(params["collections"]),
        bbox=area["bbox"],
        start=params["search_start"],
        end=params["search_end"],
        query={"eo:cloud_cover": {"lte": params["max_cloud_cover"]}},
        max_items=params["max_items"],
    )
    item_ids = search.execute({})  # type: ignore[arg-type]  # the search reads no context
    with PixxelHook() as hook:
        project_id = resolve_project(hook, params["project"])
        order_item = {
            "project_id": project_id,
            "name": params["order_name"],
            "geometry": area["feature_collection"],
            "usecase": params["usecase"],
            "item_ids": item_ids,
        }
        priced = hook.create_order(order_items=[order_item], dry_run=True)
        start, end = spend.period_bounds("month", datetime.datetime.now(datetime.timezone.utc))
        purchases = list(spend.iter_purchases(hook, [project_id], start, end))
    return {
        "project_id": project_id,
        "item_ids": item_ids,
        "price": float(priced["total_amount"]),
        "spent": spend.total(purchases),
        "purchases": len(purchases),
        "period": [start.isoformat(), end.isoformat()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="purchase_quote", description=__doc__.splitlines()[0])
    parser.add_argument("--conf", default="{}", help="the run's conf, as JSON")
    args = parser.parse_args(argv)
    print(json.dumps(quote(json.loads(args.conf))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
