"""Benchmark: batched polling (issue #14), side by side with every wait polling on its own.

Job waits run as :class:`~airflow_provider_pixxel.triggers.status.PixxelStatusTrigger` runs in one
event loop, as Airflow's triggerer runs them, started spread over one poll interval; once through the
shared poller (the default) and once with the connection extra ``batch_polling: false``. The
simulator runs in its own process and counts every request it receives (``GET /_simulator/requests``):
status reads per interval, TCP connections, and how late each completion event came after its job
finished (``finished_at``).

Cases (all by default, ``--cases`` picks):

* ``one-workflow``: 200 job waits on one workflow, both modes;
* ``mixed``: 1,000 order-item waits and 1,000 job waits over 10 workflows in one loop, both modes;
* ``large``: 10,000 job waits, batched only (peak RSS, CPU per interval);
* ``orders-aois``: 200 order waits and 200 AOI waits in one loop, both modes (the order-item list by
  ``order_ids=``, the bounded walk of the AOI list);
* ``chaos``: 500 batched job waits while the simulator fails reads (5xx, 429 in both forms, resets,
  cut bodies, slow answers): every wait must end with its one correct event.

    python -m benchmarks.bench_batched_polling [--cases one-workflow chaos] [--scale 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks._common import (
    API_KEY,
    Row,
    airflow_environment,
    api_session,
    cpu_seconds,
    emit,
    peak_rss_mib,
    percentile,
    python_worker,
    run_worker,
    simulator_process,
    worker_result,
)

#: What the status reads of these waits have in their paths: a job's own read or its workflow's job
#: list; an order item's own read or the order-item list (which order waits read too); an order's
#: own read; an AOI's own read or the AOI list.
READ_MARKERS = ("/jobs", "/order-items", "/v0/orders/", "/v0/aoi")
CASES = ("one-workflow", "mixed", "large", "chaos", "orders-aois")
#: The id that names each kind's wait (a job's workflow is its scope, not its name).
WAIT_KEYS = ("job_id", "order_item_id", "order_id", "aoi_id")
#: Order items one order holds here (and so one POST creates).
ITEMS_PER_ORDER = 100


# -- set-up (plain requests, never the code under test) ----------------------------------------------


def create_jobs_over_workflows(
    base_url: str, count: int, workflows: int, *, spread_seconds: float
) -> list[dict[str, str]]:
    """``count`` new jobs spread round-robin over the first ``workflows`` seeded workflows, created
    evenly over at least ``spread_seconds``.

    Every job of a workflow runs as long, so the jobs finish as they were created: spread over two
    poll intervals, their completions fall on every phase of the pollers' rounds. Created in one
    burst, they would all finish within a fraction of a second, and the lateness measured would be
    that one moment's distance to the next round: lucky or unlucky, never the distribution.
    """
    session = api_session()
    began = time.monotonic()
    response = session.get(f"{base_url}/v0/workflows", params={"limit": 100}, timeout=30)
    response.raise_for_status()
    chosen = response.json()["workflows"][:workflows]
    watches = []
    for index in range(count):
        ahead = began + index * spread_seconds / count - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        workflow = chosen[index % len(chosen)]
        created = session.post(
            f"{base_url}/v0/workflows/{workflow['id']}/jobs",
            params={"project_id": workflow["project_id"]},
            timeout=30,
        )
        created.raise_for_status()
        watches.append({"kind": "job", "workflow_id": workflow["id"], "job_id": created.json()["id"]})
    return watches


def _archive_order_item(session: Any, base_url: str) -> dict[str, Any]:
    """One order item of the first archive image (the body ``POST /v0/orders`` takes per item)."""
    found = session.get(
        f"{base_url}/v0/archives/collections/pixxel-td2/items", params={"limit": 1}, timeout=30
    )
    found.raise_for_status()
    image = found.json()["features"][0]
    workflows = session.get(f"{base_url}/v0/workflows", timeout=30)
    workflows.raise_for_status()
    return {
        "project_id": workflows.json()["workflows"][0]["project_id"],
        "usecase": "batched polling benchmark",
        "geometry": {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": image["geometry"]}],
        },
        "item_ids": [image["id"]],
    }


def create_order_items(base_url: str, count: int) -> list[dict[str, str]]:
    """``count`` new order items, ordered ``ITEMS_PER_ORDER`` to an order, of one archive image."""
    session = api_session()
    item = _archive_order_item(session, base_url)
    watches = []
    while len(watches) < count:
        size = min(ITEMS_PER_ORDER, count - len(watches))
        order = session.post(f"{base_url}/v0/orders", json={"order_items": [item] * size}, timeout=60)
        order.raise_for_status()
        watches += [{"kind": "order_item", "order_item_id": i["id"]} for i in order.json()["order_items"]]
    return watches


def create_orders(base_url: str, count: int) -> list[dict[str, str]]:
    """``count`` new one-item archive orders (each its own order wait)."""
    session = api_session()
    item = _archive_order_item(session, base_url)
    watches = []
    for _ in range(count):
        order = session.post(f"{base_url}/v0/orders", json={"order_items": [item]}, timeout=60)
        order.raise_for_status()
        watches.append({"kind": "order", "order_id": order.json()["id"]})
    return watches


def create_aois(base_url: str, count: int) -> list[dict[str, str]]:
    """``count`` new AOIs over the seeded AOI's area and images, each processing from its creation."""
    session = api_session()
    listed = session.get(f"{base_url}/v0/aois", params={"limit": 1}, timeout=30)
    listed.raise_for_status()
    seeded = listed.json()["aois"][0]
    watches = []
    run = time.time_ns()  # names are unique in a project: each mode's run makes its own AOIs
    for index in range(count):
        created = session.post(
            f"{base_url}/v0/aois",
            json={
                "name": f"batched polling benchmark {run} {index}",
                "description": "batched polling benchmark",
                "project_id": seeded["project_id"],
                "satellite_id": seeded["satellite_id"],
                "provider": "pixxel",
                # A processed AOI lists its images by id; the new AOIs are made of the same ones.
                "item_ids": list(seeded["images"]),
                "geometry": seeded["geometry"],
            },
            timeout=30,
        )
        created.raise_for_status()
        watches.append({"kind": "aoi", "aoi_id": created.json()["aoi_id"]})
    return watches


def _key(watch: dict[str, str]) -> str:
    return next(watch[name] for name in WAIT_KEYS if name in watch)


def _ids(watch: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in watch.items() if name != "kind"}


def finished_at(base_url: str, watches: list[dict[str, str]]) -> dict[str, float]:
    """Each job's ``finished_at`` (epoch seconds), from its workflow's job list."""
    session = api_session()
    found: dict[str, float] = {}
    for workflow_id in sorted({w["workflow_id"] for w in watches if w["kind"] == "job"}):
        for _ in range(20):  # the chaos case's faults apply to these reads too
            response = session.get(f"{base_url}/v0/workflows/{workflow_id}/jobs", timeout=60)
            if response.status_code == 200:
                break
        response.raise_for_status()
        for job in response.json()["jobs"]:
            if job.get("finished_at"):
                found[job["id"]] = datetime.fromisoformat(
                    job["finished_at"].replace("Z", "+00:00")
                ).timestamp()
    return found


def request_stats(base_url: str, since: float) -> dict[str, Any]:
    session = api_session()
    response = session.get(f"{base_url}/_simulator/requests", params={"since": since}, timeout=120)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


# -- the worker: the waits in one event loop ---------------------------------------------------------


async def _run(watches: list[dict[str, str]], interval: float, deadline: float) -> dict[str, Any]:
    from airflow_provider_pixxel.triggers.status import PixxelStatusTrigger

    spread = random.Random(0)
    # Per job: when its wait started, and every event its trigger yields (a second is a duplicate).
    waits: dict[str, dict[str, Any]] = {_key(w): {"start": None, "events": []} for w in watches}

    async def one(watch: dict[str, str], delay: float) -> None:
        await asyncio.sleep(delay)
        wait = waits[_key(watch)]
        wait["start"] = time.time()
        trigger = PixxelStatusTrigger(
            kind=watch["kind"], ids=_ids(watch), poll_interval=interval, deadline=deadline
        )
        async for event in trigger.run():
            wait["events"].append((event.payload["status"], time.time()))

    await asyncio.gather(*(one(watch, spread.uniform(0, interval)) for watch in watches))
    return waits


def _work(watches_file: str, interval: float, wait_limit: float) -> None:
    # Imported before the clock starts: what is measured is the waiting, not Airflow's import.
    from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook  # noqa: F401
    from airflow_provider_pixxel.triggers.poller import SharedPoller  # noqa: F401

    watches = json.loads(Path(watches_file).read_text())
    started = time.time()
    cpu_before = cpu_seconds()
    events = asyncio.run(_run(watches, interval, started + wait_limit))
    worker_result(
        {
            "started": started,
            "ended": time.time(),
            "cpu_seconds": cpu_seconds() - cpu_before,
            "peak_rss_mib": peak_rss_mib(),
            "events": events,
        }
    )


# -- one measured run --------------------------------------------------------------------------------


def measure_run(
    base_url: str, watches: list[dict[str, str]], *, batched: bool, interval: float, wait_limit: float
) -> dict[str, Any]:
    connection = {
        "conn_type": "pixxel",
        "host": base_url,
        "password": API_KEY,
        "extra": {"batch_polling": batched},
    }
    env = airflow_environment({"AIRFLOW_CONN_PIXXEL_DEFAULT": json.dumps(connection)})
    with tempfile.TemporaryDirectory(prefix="pixxel-bench-batched-") as scratch:
        watches_file = os.path.join(scratch, "watches.json")
        Path(watches_file).write_text(json.dumps(watches))
        run = run_worker(
            python_worker("bench_batched_polling", "--worker", watches_file, str(interval), str(wait_limit)),
            env=env,
            timeout=wait_limit + 600,
        )
    result = run.result
    stats = request_stats(base_url, result["started"])
    reads = [
        r
        for r in stats["requests"]
        if r[1] == "GET" and any(m in r[2] for m in READ_MARKERS) and r[0] <= result["ended"]
    ]
    # Reads per interval, over the intervals the run lasted (the first one, while the waits start,
    # included); the busiest interval too.
    buckets = Counter(int((r[0] - result["started"]) // interval) for r in reads)
    intervals = max(1, int((result["ended"] - result["started"]) // interval) + 1)
    finished = finished_at(base_url, watches)
    outcomes = Counter()
    lateness = []
    for job_id, wait in result["events"].items():
        events = wait["events"]
        if len(events) != 1:
            outcomes["duplicate or missing event"] += 1
            continue
        status, at = events[0]
        outcomes[status] += 1
        if status == "success" and job_id in finished:
            # From when the job finished, or its wait started if it had already finished by then.
            lateness.append(at - max(finished[job_id], wait["start"]))
    return {
        "waits": len(watches),
        "outcomes": dict(outcomes),
        "reads": len(reads),
        "reads_per_interval": len(reads) / intervals,
        "busiest_interval": max(buckets.values(), default=0),
        "intervals": intervals,
        "connections": len({r[4] for r in stats["requests"] if r[0] <= result["ended"] and r[4]}),
        "lateness_p50": percentile(lateness, 0.5),
        "lateness_p99": percentile(lateness, 0.99),
        "cpu_seconds": result["cpu_seconds"],
        "cpu_per_interval": result["cpu_seconds"] / intervals,
        "peak_rss_mib": run.peak_rss_mib,
        "wall_seconds": result["ended"] - result["started"],
    }


def _described(watches: list[dict[str, str]]) -> str:
    """``200 job waits on 1 workflow(s) + 1000 order-item waits``: what a run waited on."""
    jobs = [w for w in watches if w["kind"] == "job"]
    parts = [f"{len(jobs)} job waits on {len({w['workflow_id'] for w in jobs})} workflow(s)"] if jobs else []
    labels = {"order_item": "order-item", "order": "order", "aoi": "AOI"}
    for kind, label in labels.items():
        count = sum(1 for w in watches if w["kind"] == kind)
        if count:
            parts.append(f"{count} {label} waits")
    return " + ".join(parts)


def _lateness(run: dict[str, Any]) -> str:
    # Only jobs carry when they finished (``finished_at``): orders and AOIs have no such time.
    if math.isnan(run["lateness_p99"]):
        return "lateness not measured (no finish time)"
    return f"lateness p99 {run['lateness_p99']:.2f} s"


def _summary(run: dict[str, Any]) -> str:
    outcomes = ", ".join(f"{n} {status}" for status, n in sorted(run["outcomes"].items()))
    return (
        f"{run['reads_per_interval']:.1f} reads/interval (busiest {run['busiest_interval']}), "
        f"{run['connections']} connections, {_lateness(run)}, "
        f"{run['peak_rss_mib']:.0f} MiB, {run['cpu_per_interval'] * 1000:.0f} ms CPU/interval; {outcomes}"
    )


STEP_SECONDS = {"one-workflow": 10.0, "mixed": 20.0, "large": 60.0, "chaos": 10.0, "orders-aois": 10.0}


def measure(cases: list[str], scale: float, interval: float, step_seconds: float | None) -> None:
    rows: list[Row] = []
    details: dict[str, Any] = {}

    def waits(count: int) -> int:
        return max(2, int(count * scale))

    for case in cases:
        chaos = case == "chaos"
        step = step_seconds or STEP_SECONDS[case]
        # Both modes' order items are bought from one wallet: 1,000 cost 260,000 at the simulator's prices.
        with simulator_process(speed=step, chaos_reads=chaos, workflows=10, wallet=1e7) as simulator:
            base_url = simulator.base_url
            count = {"one-workflow": 200, "mixed": 1000, "large": 10_000, "chaos": 500, "orders-aois": 200}[
                case
            ]
            workflows = 10 if case == "mixed" else 1
            modes = [True, False] if case in ("one-workflow", "mixed", "orders-aois") else [True]
            for batched in modes:
                if case == "orders-aois":
                    watches = create_orders(base_url, waits(count)) + create_aois(base_url, waits(count))
                else:
                    watches = create_jobs_over_workflows(
                        base_url, waits(count), workflows, spread_seconds=2 * interval
                    )
                if case == "mixed":
                    watches += create_order_items(base_url, waits(count))
                wait_limit = step * 10 + 120
                run = measure_run(
                    base_url, watches, batched=batched, interval=interval, wait_limit=wait_limit
                )
                mode = "batched" if batched else "unbatched"
                details[f"{case}/{mode}"] = run
                rows.append(Row("batched_polling", f"{case}: {_described(watches)}, {mode}", _summary(run)))
            if case == "one-workflow":
                batched_run = details["one-workflow/batched"]
                rows.append(
                    Row(
                        "batched_polling",
                        "one-workflow: status reads per interval, batched",
                        f"{batched_run['reads_per_interval']:.1f}",
                        "<= 10",
                        batched_run["reads_per_interval"] <= 10,
                    )
                )
                rows.append(
                    Row(
                        "batched_polling",
                        "one-workflow: p99 lateness of the completion event, batched",
                        f"{batched_run['lateness_p99']:.2f} s",
                        f"< {interval:g} s",
                        batched_run["lateness_p99"] < interval,
                    )
                )
            if case == "orders-aois":
                runs = details["orders-aois/batched"], details["orders-aois/unbatched"]
                share = runs[0]["reads"] / max(1, runs[1]["reads"])
                rows.append(Row("batched_polling", "orders-aois: reads batched / unbatched", f"{share:.1%}"))
            if case == "mixed":
                share = details["mixed/batched"]["reads"] / max(1, details["mixed/unbatched"]["reads"])
                rows.append(
                    Row(
                        "batched_polling",
                        "mixed: reads batched / unbatched",
                        f"{share:.1%}",
                        "<= 5 %",
                        share <= 0.05,
                    )
                )
                connections = details["mixed/batched"]["connections"]
                rows.append(
                    Row(
                        "batched_polling",
                        "mixed: TCP connections, batched",
                        str(connections),
                        "<= 2",
                        connections <= 2,
                    )
                )
            if case == "large":
                rss = details["large/batched"]["peak_rss_mib"]
                rows.append(
                    Row("batched_polling", "large: peak RSS", f"{rss:.0f} MiB", "<= 500 MiB", rss <= 500)
                )
            if case == "chaos":
                outcomes = details["chaos/batched"]["outcomes"]
                correct = outcomes.get("success", 0) == details["chaos/batched"]["waits"]
                rows.append(
                    Row(
                        "batched_polling",
                        "chaos: every wait ends with its one success event",
                        str(outcomes),
                        "all",
                        correct,
                    )
                )
    emit(rows, interval=interval, step_seconds=step_seconds, scale=scale, runs=details)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=3, metavar=("WATCHES", "INTERVAL", "LIMIT"), help=argparse.SUPPRESS)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every case's number of waits")
    parser.add_argument("--poll-interval", type=float, default=3.0, help="seconds between polls")
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=None,
        help="simulator seconds per status step (default: per case, so that resources finish while "
        "their waits run: 10, or 20 for mixed and 60 for large, whose set-up takes longer)",
    )
    args = parser.parse_args()
    if args.worker:
        watches_file, interval, limit = args.worker
        _work(watches_file, float(interval), float(limit))
        return
    measure(args.cases, args.scale, args.poll_interval, args.step_seconds)


if __name__ == "__main__":
    main()
