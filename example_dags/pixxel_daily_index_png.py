"""Daily index PNG: one index PNG and its SLD styles per logical date, in a date-partitioned path.

A scheduled DAG with ``catchup=True``: ``airflow backfill create`` over a date range produces one
partition per day, and re-running a day replaces its files atomically. A manual run without a logical
date renders for the day it runs (``RUN_DATE``).
"""

from __future__ import annotations

import json
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from pixxel_example_settings import DEFAULT_ARGS, OUTPUT_DIR, RUN_DATE, pick

from airflow_provider_pixxel.operators import PixxelGenerateIndexPngOperator, PixxelGenerateSldOperator

VISUALIZATION = "ti.xcom_pull(task_ids='find_visualization')"
# <output_dir>/<dag_id>/<visualization_id>/<run date>/: one partition per visualization and logical date.
PARTITION = (
    "{{ params.output_dir }}/{{ dag.dag_id }}/{{ " + VISUALIZATION + "['visualization_id'] }}/" + RUN_DATE
)

DOC_MD = """
### Daily index PNG

For each logical date `ds`, renders an index visualization of an AOI (by default the NDVI of the
"Bengaluru rural farms" AOI) and writes, under `output_dir/<dag_id>/<visualization_id>/<ds>/`:
`<index>.png` (the dynamic legend's PNG), `<index>_<mode>.sld` (GeoServer styles, one per
`visualization_modes`) and `manifest.json` (the image date used, sizes and SHA-256 of every file);
each file has its SHA-256 beside it in `<file>.sha256`.

1. **find_visualization** resolves the `aoi` and `index` params (names or ids) to the AOI's
   visualization of that index.
2. **render_png** and **write_sld** render the newest image date on or before `ds`
   (`date_policy="on_or_before"`). Satellites do not pass every day, so when `ds` has no image of its
   own the newest earlier one is used, if it is at most `max_image_age_days` old (`null`: any age);
   otherwise the day is **skipped**, not failed. Each file is checked (a complete PNG, well-formed
   XML) and replaced atomically, so re-running a day overwrites its partition whole and never leaves
   a half-written file.
3. **write_manifest** records what was written and the image date rendered.

`catchup=True` from the start date: once unpaused, the scheduler runs every day since. To fill a range:
`airflow backfill create --dag-id pixxel_daily_index_png --from-date 2025-03-02 --to-date 2025-03-04`
(add `--reprocess-behavior completed` to redo days that already ran). A run triggered without
`--logical-date` has no `ds`: it renders for the date it runs (its `run_after`).
"""

with DAG(
    dag_id="pixxel_daily_index_png",
    description="Per logical date: an AOI's index PNG and SLD styles in a date-partitioned path",
    doc_md=DOC_MD,
    schedule="@daily",
    start_date=pendulum.datetime(2025, 2, 1, tz="UTC"),
    catchup=True,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["pixxel", "example", "visualizations", "index", "backfill"],
    params={
        "aoi": Param("Bengaluru rural farms", type="string", minLength=1, description="AOI name or id"),
        "index": Param("NDVI", type="string", minLength=1, description="index name or id"),
        "max_image_age_days": Param(
            7,
            type=["null", "integer"],
            minimum=0,
            description="use an image at most this many days older than ds; null: any age",
        ),
        "visualization_modes": Param(
            ["dynamic", "theoretical"],
            type="array",
            minItems=1,
            items={"type": "string", "enum": ["dynamic", "theoretical"]},
        ),
        "output_dir": Param(OUTPUT_DIR, type="string", description="local path or object-storage URL"),
    },
) as dag:

    @task(multiple_outputs=True)
    def find_visualization(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.pixxel import PixxelHook

        assert params is not None
        with PixxelHook() as hook:
            aoi_id = pick(hook.iter_aois(), params["aoi"], "AOI", id_key="aoi_id")
            index_id = pick(hook.iter_indices(), params["index"], "index")
            visualizations = [
                v
                for v in hook.iter_visualizations(aoi_id, index_id=index_id)
                if v.get("index_id") == index_id
            ]
        if not visualizations:
            raise ValueError(
                f"AOI {params['aoi']!r} has no {params['index']} visualization; create one first "
                "(PixxelCreateVisualizationOperator)"
            )
        return {
            "aoi_id": aoi_id,
            "index_id": index_id,
            "visualization_id": str(visualizations[0]["id"]),
            # Passed on from here rather than templated, so the operator gets a list.
            "visualization_modes": list(params["visualization_modes"]),
        }

    visualization = find_visualization()
    # [START howto_render_for_a_date]
    # [START howto_operator_generate_index_png]
    render_png = PixxelGenerateIndexPngOperator(
        task_id="render_png",
        aoi_id=visualization["aoi_id"],
        visualization_id=visualization["visualization_id"],
        index_id=visualization["index_id"],
        date=RUN_DATE,
        # The newest image on or before the run date; skipped if it is older than the limit.
        date_policy="on_or_before",
        max_image_age_days="{{ params.max_image_age_days }}",
        destination=PARTITION + "/{{ params.index | lower }}.png",
    )
    # [END howto_operator_generate_index_png]
    # [START howto_operator_generate_sld]
    write_sld = PixxelGenerateSldOperator(
        task_id="write_sld",
        aoi_id=visualization["aoi_id"],
        visualization_id=visualization["visualization_id"],
        dates=[RUN_DATE],
        date_policy="on_or_before",
        max_image_age_days="{{ params.max_image_age_days }}",
        visualization_modes=visualization["visualization_modes"],
        # {mode} is filled in by the operator, one file per visualization mode.
        destination=PARTITION + "/{{ params.index | lower }}_{mode}.sld",
    )
    # [END howto_operator_generate_sld]
    # [END howto_render_for_a_date]

    @task
    def write_manifest(
        visualization: dict[str, Any],
        png: dict[str, Any],
        sld: dict[str, Any],
        run_date: str,
        params: dict[str, Any] | None = None,
        dag: Any = None,
        dag_run: Any = None,
    ) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.download import resolve_destination, write_bytes_atomically

        assert params is not None
        manifest = {
            "ds": run_date,
            # The date of the image rendered: the run date itself, or the newest earlier one.
            "image_date": png["image_date"],
            "aoi": params["aoi"],
            "index": params["index"],
            "visualization_id": visualization["visualization_id"],
            "png": png,
            "sld": sld["files"],
        }
        partition = f"{params['output_dir']}/{dag.dag_id}/{visualization['visualization_id']}/{run_date}"
        written = write_bytes_atomically(
            json.dumps(manifest, indent=2).encode(), resolve_destination(partition, "manifest.json")
        )
        print(f"Manifest written to {written.path}")
        return manifest

    # [START howto_run_date_task_argument]
    write_manifest(visualization, render_png.output, write_sld.output, run_date=RUN_DATE)
    # [END howto_run_date_task_argument]
