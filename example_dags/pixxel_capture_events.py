"""Process each new delivery of a recurring tasking order as it arrives, and never leave one waiting.

An Asset is fed by :class:`~airflow_provider_pixxel.triggers.catalog.PixxelNewCatalogTrigger` in an
``AssetWatcher``: the triggerer polls the order items' catalogs and emits one asset event per poll that
found new captures, naming all of them (never the same one twice, across triggerer restarts on Airflow
3.3+). The DAG is scheduled on that asset, so it runs when captures land instead of on a timetable.

Two lines of defence keep a delivered capture from waiting for a later one. Airflow gives an
asset-triggered run only the events registered before the DAG's asset-queue row was created; an event
registered between that moment and the run's creation belongs to no run until the asset's *next* event.
1. The trigger puts every capture one poll finds into one event, so captures found together are
   processed together.
2. That still leaves an event of the next poll landing while the run is queued but not yet created (a
   scheduler slower than a poll interval, or stopped), a poll split over several events, the DAG
   paused while events arrived, or an event lost to a triggerer crash. So each run also processes
   every capture of the watched order items that has no finished output yet: any such capture was
   delivered before the run was created, so the run's catalog search sees it. A capture is finished
   when ``<output_dir>/<dag_id>/<catalog id>/quicklook.png`` exists (the run's last write, after the
   package's manifest) and the package's manifest does too, checked where the outputs are (a local
   folder or object storage). ``max_active_runs=1`` keeps two runs from taking up the same unfinished
   capture at once; an event's capture that an earlier run already finished is skipped.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, Param, task
from pixxel_example_settings import DEFAULT_ARGS, OUTPUT_DIR, SHORT_WAIT_SECONDS, poll_interval_seconds

from airflow_provider_pixxel.operators import PixxelDownloadCatalogsOperator
from airflow_provider_pixxel.triggers.catalog import PixxelNewCatalogTrigger, catalogs_of_events

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
DAG_ID = "pixxel_capture_events"
# At most this many captures in one run (each is a mapped download and render; Airflow's default
# [core] max_map_length is 1024). More unfinished at once (a watcher started on an order with a long
# history) are left, oldest first, to the next run, with a warning: trigger the DAG by hand for them.
MAX_CAPTURES_PER_RUN = 100
QUICKLOOK_NAME = "quicklook.png"


# [START howto_capture_unfinished]
def capture_is_finished(output_dir: str, catalog_id: str) -> bool:
    """Whether a run already processed the capture: its quicklook (written last) and its package's
    manifest both exist under ``<output_dir>/<dag_id>/<catalog id>/``, locally or in object storage."""
    from airflow_provider_pixxel.hooks.download import MANIFEST_NAME, resolve_destination

    folder = resolve_destination(output_dir, f"{DAG_ID}/{catalog_id}")
    return bool((folder / QUICKLOOK_NAME).exists() and (folder / "package" / MANIFEST_NAME).exists())


def unfinished_captures(output_dir: str, order_item_ids: list[str]) -> list[str]:
    """The catalog ids of every capture of the order items without a finished output, oldest first.

    One paged catalog search and one or two existence checks per delivered capture: a recurring
    order's captures number its occurrences, so this stays small.
    """
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook

    if not order_item_ids:
        return []
    with PixxelHook() as hook:
        delivered = sorted(
            (str(catalog.get("created_at") or ""), str(catalog["id"]))
            for catalog in hook.iter_catalogs(order_item_ids=order_item_ids)
            if isinstance(catalog, dict) and catalog.get("id")
        )
    return [catalog_id for _, catalog_id in delivered if not capture_is_finished(output_dir, catalog_id)]


def captures_to_take_up(output_dir: str, announced: list[dict[str, Any]]) -> list[str]:
    """The catalog ids a run processes: those its events name, unless an earlier run finished them, then
    every other unfinished capture of the watched order items (an event held back by Airflow's asset
    queue, a poll split over events, an event lost), oldest first.

    :raises ValueError: when no event names a catalog and no capture is unfinished (a manual run with
        nothing to do).
    """
    # The order items watched where this task runs, and any an event names (should the variable be
    # unset on this worker).
    order_item_ids = list(
        dict.fromkeys(
            [*ORDER_ITEM_IDS, *(str(c["order_item_id"]) for c in announced if c.get("order_item_id"))]
        )
    )
    unfinished = unfinished_captures(output_dir, order_item_ids)
    from_events: list[str] = []
    for catalog_id in (str(c["catalog_id"]) for c in announced):
        if catalog_id in unfinished or not capture_is_finished(output_dir, catalog_id):
            from_events.append(catalog_id)
        else:
            print(f"Capture {catalog_id} was processed by an earlier run: skipped")
    held_back = [c for c in unfinished if c not in from_events]
    if held_back:
        print(f"Delivered but processed by no run yet, processed now: {held_back}")
    if not announced and not held_back:
        raise ValueError(
            "nothing to process: no triggering asset event, an empty catalog_ids param and no "
            f"unfinished capture of the watched order items {order_item_ids}"
        )
    return [*from_events, *held_back]


# [END howto_capture_unfinished]


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
### Every capture, as it is delivered

Scheduled on the asset `pixxel_recurring_captures`, whose watcher (`PixxelNewCatalogTrigger`) emits one
event per poll that finds newly delivered catalogs of the order items in `PIXXEL_CAPTURE_ORDER_ITEM_IDS`,
naming all of them (comma-separated; set it where the dag-processor, triggerer and workers run, polled
every `PIXXEL_CAPTURE_POLL_INTERVAL` seconds, default 900). Runs the watcher triggers have no conf: they
write under `PIXXEL_CAPTURE_OUTPUT_DIR` (a local path or an object-storage URL) when it is set.

1. **captures_to_process** reads every catalog of every triggering asset event (`payload["catalogs"]`,
   or the single-catalog `payload["catalog_id"]` of earlier provider versions and hand-sent events),
   and adds every capture of the watched order items that has no finished output yet
   (`quicklook.png` and the package manifest under `output_dir/<dag_id>/<catalog id>/`): Airflow gives
   a run only the events registered before its asset-queue row was created, so an event landing just
   after would otherwise wait for the asset's next event, days later for a recurring order. Captures
   already finished are skipped; at most 100 per run (more: a warning, the rest go to the next run).
   A manual run may name catalogs in the `catalog_ids` param: exactly those are processed, finished or
   not; a manual run without it processes the unfinished ones.
2. **download_capture** (one mapped task per capture) requests the catalog's package, waits for it
   (deferrable) and extracts it under `output_dir/<dag_id>/<catalog id>/`.
3. **render_quicklook** renders the capture's reflectance GeoTIFF as an 8-bit PNG (2-98 % stretch)
   next to it: `quicklook.png`, in object storage too. Needs Pillow on the workers.

Each capture is downloaded and rendered once: the trigger never emits a catalog twice, a finished
capture is skipped, one run at a time (`max_active_runs=1`), and the download id survives task retries.
To process a capture again, delete its folder and trigger a run.
"""

with DAG(
    dag_id=DAG_ID,
    description="Download and render each new capture of a recurring tasking order as it is delivered",
    doc_md=DOC_MD,
    schedule=[new_captures],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    # One at a time: a run takes up every unfinished capture, so a second run alongside would take up
    # the ones the first is still downloading.
    max_active_runs=1,
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
    # [START howto_capture_every_catalog]
    @task
    def captures_to_process(
        triggering_asset_events: Any = None, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        assert params is not None
        announced = catalogs_of_events((triggering_asset_events or {}).get(new_captures, []))
        for catalog in announced:
            print(f"Capture {catalog['catalog_id']} of order item {catalog.get('order_item_id')}")
        # Named by hand: exactly these, finished or not (a manual run to a new output_dir must not
        # take up the order's whole history).
        requested = list(dict.fromkeys(str(c) for c in params["catalog_ids"]))
        if requested:
            print(f"Processing the catalogs the catalog_ids param names: {requested}")
        catalog_ids = requested or captures_to_take_up(str(params["output_dir"]), announced)
        if len(catalog_ids) > MAX_CAPTURES_PER_RUN:
            logging.getLogger(__name__).warning(
                "%d captures to process: this run takes the first %d, the next run the others "
                "(trigger the DAG by hand to process them now)",
                len(catalog_ids),
                MAX_CAPTURES_PER_RUN,
            )
            catalog_ids = catalog_ids[:MAX_CAPTURES_PER_RUN]
        return [
            {"catalog_ids": [catalog_id], "file_name": f"{catalog_id}/package"} for catalog_id in catalog_ids
        ]

    # [END howto_capture_every_catalog]

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
        target = resolve_destination(posixpath.dirname(folder.rstrip("/")), QUICKLOOK_NAME)
        written = write_bytes_atomically(buffer.getvalue(), target)
        return {
            "scene": str(scene_path),
            "path": str(written.path),
            "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
            "size": list(band.size),
        }

    render_quicklook.expand(download=download_capture.output)
