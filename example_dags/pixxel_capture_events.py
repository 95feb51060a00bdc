"""One run per capture: process each new delivery of a recurring tasking order as it arrives.

An Asset is fed by :class:`~airflow_provider_pixxel.triggers.catalog.PixxelNewCatalogTrigger` in an
``AssetWatcher``: the triggerer polls the order items' catalogs and emits one asset event per newly
delivered capture (never the same one twice, across triggerer restarts on Airflow 3.3+). The DAG is
scheduled on that asset, so it runs when a capture lands instead of polling on a timetable.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, Param, task
from pixxel_example_settings import DEFAULT_ARGS, OUTPUT_DIR, SHORT_WAIT_SECONDS, poll_interval_seconds

from airflow_provider_pixxel.operators import PixxelDownloadCatalogsOperator
from airflow_provider_pixxel.triggers.catalog import PixxelNewCatalogTrigger

POLL_INTERVAL_SECONDS = poll_interval_seconds()  # read each time this file is parsed

# The watcher is built when the file is parsed, before any run and its params exist, so what it
# watches comes from the deployment's environment (no connection or Variable is read while parsing):
# PIXXEL_CAPTURE_ORDER_ITEM_IDS - comma-separated order item ids of the recurring tasking order;
# PIXXEL_CAPTURE_POLL_INTERVAL - seconds between catalog searches (default 900).
ORDER_ITEM_IDS = [
    i.strip() for i in os.environ.get("PIXXEL_CAPTURE_ORDER_ITEM_IDS", "").split(",") if i.strip()
]
CATALOG_POLL_SECONDS = float(os.environ.get("PIXXEL_CAPTURE_POLL_INTERVAL", "900"))
# PIXXEL_CAPTURE_OUTPUT_DIR - the output_dir of the runs the watcher triggers, which carry no conf (a
# local path or an object-storage URL such as s3://bucket/prefix; default: the examples' OUTPUT_DIR).
CAPTURE_OUTPUT_DIR = os.environ.get("PIXXEL_CAPTURE_OUTPUT_DIR", "").strip() or OUTPUT_DIR

# [START howto_trigger_new_catalog]
new_captures = Asset(
    name="pixxel_recurring_captures",
    uri="pixxel://order-items/captures",
    # Without order item ids there is nothing to watch; asset events can still be sent by hand (UI/API).
    watchers=[
        AssetWatcher(
            name="pixxel_new_catalogs",
            trigger=PixxelNewCatalogTrigger(
                order_item_ids=ORDER_ITEM_IDS, poll_interval=CATALOG_POLL_SECONDS
            ),
        )
    ]
    if ORDER_ITEM_IDS
    else [],
)
# [END howto_trigger_new_catalog]

DOC_MD = """
### One run per capture

Scheduled on the asset `pixxel_recurring_captures`, whose watcher (`PixxelNewCatalogTrigger`) emits one
event per newly delivered catalog of the order items in `PIXXEL_CAPTURE_ORDER_ITEM_IDS`
(comma-separated; set it where the scheduler and triggerer run, polled every
`PIXXEL_CAPTURE_POLL_INTERVAL` seconds, default 900). Runs the watcher triggers have no conf: they write
under `PIXXEL_CAPTURE_OUTPUT_DIR` (a local path or an object-storage URL) when it is set.

1. **captures_to_process** reads the catalog ids from the run's triggering asset events (`catalog_id`
   in each event's payload). When events arrive faster than runs start, one run gets several: each is
   processed. A manual run may name catalogs in the `catalog_ids` param instead.
2. **download_capture** (one mapped task per capture) requests the catalog's package, waits for it
   (deferrable) and extracts it under `output_dir/<dag_id>/<catalog id>/`.
3. **render_quicklook** renders the capture's reflectance GeoTIFF as an 8-bit PNG (2-98 % stretch)
   next to it: `quicklook.png`, in object storage too. Needs Pillow on the workers.

Each capture is downloaded and rendered once: the trigger never emits a catalog twice, and the
download id survives task retries.
"""

with DAG(
    dag_id="pixxel_capture_events",
    description="Download and render each new capture of a recurring tasking order as it is delivered",
    doc_md=DOC_MD,
    schedule=[new_captures],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["pixxel", "example", "tasking", "event-driven"],
    params={
        "output_dir": Param(
            CAPTURE_OUTPUT_DIR, type="string", description="local path or object-storage URL"
        ),
        "catalog_ids": Param(
            [], type="array", description="manual runs only: catalogs to process when no asset event did"
        ),
    },
) as dag:

    @task
    def captures_to_process(
        triggering_asset_events: Any = None, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        assert params is not None
        payloads = [
            event.extra["payload"]
            for event in (triggering_asset_events or {}).get(new_captures, [])
            if isinstance((event.extra or {}).get("payload"), dict)
        ]
        catalog_ids = list(dict.fromkeys(str(p["catalog_id"]) for p in payloads if p.get("catalog_id")))
        if not catalog_ids:
            catalog_ids = [str(c) for c in params["catalog_ids"]]
            print(f"No asset event names a catalog; using the catalog_ids param: {catalog_ids}")
        if not catalog_ids:
            raise ValueError("nothing to process: no triggering asset event and an empty catalog_ids param")
        for payload in payloads:
            print(f"Capture {payload['catalog_id']} of order item {payload.get('order_item_id')}")
        return [
            {"catalog_ids": [catalog_id], "file_name": f"{catalog_id}/package"} for catalog_id in catalog_ids
        ]

    download_capture = PixxelDownloadCatalogsOperator.partial(
        task_id="download_capture",
        destination="{{ params.output_dir }}/{{ dag.dag_id }}",
        extract=True,
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    ).expand_kwargs(captures_to_process())

    @task
    def render_quicklook(download: dict[str, Any]) -> dict[str, Any]:
        import hashlib
        import io
        import posixpath

        from PIL import Image

        from airflow_provider_pixxel.hooks.download import resolve_destination, write_bytes_atomically

        # A local directory or an object-storage URL: both are read and written through the provider's
        # destinations (pathlib.Path would mangle "s3://").
        folder = str(download["path"])
        scenes = [
            f["path"]
            for f in download["files"]
            if f["path"].endswith(".tif") and not f["path"].endswith(".mask.tif")
        ]
        if not scenes:
            raise ValueError(f"the package in {folder} holds no reflectance GeoTIFF to render")
        scene_path = resolve_destination(folder, scenes[0])
        with scene_path.open("rb") as handle, Image.open(io.BytesIO(handle.read())) as scene:
            band = scene.convert("I")  # 16-bit reflectance as plain integers
        pixels = list(band.getdata())
        ordered = sorted(pixels)
        low = ordered[len(ordered) * 2 // 100]
        high = ordered[min(len(ordered) - 1, len(ordered) * 98 // 100)]
        span = max(high - low, 1)
        quicklook = Image.new("L", band.size)
        quicklook.putdata([max(0, min(255, (value - low) * 255 // span)) for value in pixels])
        buffer = io.BytesIO()
        quicklook.save(buffer, format="PNG")
        target = resolve_destination(posixpath.dirname(folder.rstrip("/")), "quicklook.png")
        written = write_bytes_atomically(buffer.getvalue(), target)
        return {
            "scene": str(scene_path),
            "path": str(written.path),
            "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
            "size": list(band.size),
        }

    render_quicklook.expand(download=download_capture.output)
