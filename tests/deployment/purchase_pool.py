"""The single-machine leg's proof that a one-slot pool makes a spend budget exact across concurrent runs.

``dag.test()`` does not enforce pools, so the unit tests stand a lock in for one; here the scheduler
does it. The deployment runs with ``PIXXEL_PURCHASE_POOL=pixxel_purchases`` (so ``place_order`` of
``pixxel_archive_purchase``, and of the flagship, is parsed into that pool), and the pool is created with
one slot before the leg's first run (:func:`create_purchase_pool`). The check prices the order a run
buys with a dry run, reads what the project spent this month as the operator does, and
triggers five runs at once with ``budget_tokens = spent + 2 x price + 1``. Room for exactly two: two
orders are bought, three ``place_order`` tries fail on the budget (no retry), and no two ``place_order``
tries ever ran at the same time, while the executor did run other tasks side by side.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scripts.deployment.simulator_log import read_log
from scripts.deployment.stack import REPO, AirflowApi, AirflowSite, DeploymentError, wait_for
from tests.deployment.common import FLAGSHIP, RUN_TIMEOUT_SECONDS, expect_success, write_command

ARCHIVE = "pixxel_archive_purchase"
PURCHASE_TASK = "place_order"
PURCHASE_POOL = "pixxel_purchases"
# The example DAGs whose place_order takes PIXXEL_PURCHASE_POOL: the flagship's runs first in the leg.
PURCHASING_DAGS = (FLAGSHIP, ARCHIVE)
CONCURRENT_RUNS = 5
AFFORDABLE = 2
# The budget refusal's own words (operators/purchase.py), as the task log shows them.
REFUSAL = "budget exceeded; nothing was bought"
LOGICAL_DATES = [f"2025-04-0{day}T00:00:00Z" for day in range(1, CONCURRENT_RUNS + 1)]


def _instant(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _interval(ti: Mapping[str, Any]) -> tuple[datetime.datetime, datetime.datetime]:
    return _instant(str(ti["start_date"])), _instant(str(ti["end_date"]))


def peak_concurrency(intervals: Sequence[tuple[datetime.datetime, datetime.datetime]]) -> int:
    """The most intervals that were open at one instant (an end and a start at the same instant: apart)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def quote(site: AirflowSite, conf: Mapping[str, Any]) -> dict[str, Any]:
    """``scripts/deployment/purchase_quote.py`` in the deployment's environment: price and spend."""
    result = subprocess.run(
        [sys.executable, "-m", "scripts.deployment.purchase_quote", "--conf", json.dumps(dict(conf))],
        env=site.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise DeploymentError(
            f"pricing the order failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
        )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def create_purchase_pool(api: AirflowApi, site: AirflowSite, note: dict[str, str]) -> None:
    """The one-slot pool, created before any run that uses it: the scheduler leaves a task whose pool
    does not exist unscheduled. The deployment was started with the pool variable, so the dag-processor
    parsed the purchases of both example DAGs that buy into it.

    :raises DeploymentError: when a purchase was parsed into another pool or one of the DAGs ran already.
    """
    for dag_id in PURCHASING_DAGS:
        parsed_pool = api.get(f"/api/v2/dags/{dag_id}/tasks/{PURCHASE_TASK}")["pool"]
        if parsed_pool != PURCHASE_POOL:
            raise DeploymentError(f"{dag_id}.{PURCHASE_TASK} was parsed into pool {parsed_pool!r}")
        earlier = api.runs(dag_id)
        if earlier:
            raise DeploymentError(
                f"{dag_id} ran before its pool existed: {[r['dag_run_id'] for r in earlier]}"
            )
    write_command(site, "pools", "set", PURCHASE_POOL, "1", "Pixxel purchases: one at a time")
    slots = api.get(f"/api/v2/pools/{PURCHASE_POOL}")["slots"]
    if slots != 1:
        raise DeploymentError(f"pool {PURCHASE_POOL} has {slots} slots, not 1")
    note["detail"] = f"{PURCHASE_TASK} of {' and '.join(PURCHASING_DAGS)} parsed into it; no run yet"


def check_budget_pool(
    api: AirflowApi, site: AirflowSite, simulator_log: Path, output_dir: Path, note: dict[str, str]
) -> None:
    """Five runs of the archive purchase at once under a budget with room for two; see the module doc.

    :raises DeploymentError: naming what differed from "exactly two bought, three refused, never two
        purchases in the pool at once".
    """
    # The pool, not Airflow's other limits, must be what serializes the purchases.
    parallelism = int(site.run("config", "get-value", "core", "parallelism").stdout.strip())
    details = api.get(f"/api/v2/dags/{ARCHIVE}/details")
    limits = {
        "[core] parallelism": parallelism,
        "max_active_runs": details["max_active_runs"],
        "max_active_tasks": details["max_active_tasks"],
    }
    if min(limits.values()) < CONCURRENT_RUNS:
        raise DeploymentError(f"Airflow would serialize the runs by itself: {limits}")
    slots = api.get(f"/api/v2/pools/{PURCHASE_POOL}")["slots"]
    if slots != 1:
        raise DeploymentError(f"pool {PURCHASE_POOL} has {slots} slots, not 1")

    conf: dict[str, Any] = {"max_items": 1, "output_dir": str(output_dir)}
    priced = quote(site, conf)
    price, spent = float(priced["price"]), float(priced["spent"])
    if price <= 1:
        raise DeploymentError(f"a price of {price} leaves no room between two and three purchases")
    budget = math.floor(spent + AFFORDABLE * price) + 1
    conf["budget_tokens"] = budget
    print(
        f"[pool] price {price:g} (items {priced['item_ids']}), spent {spent:g} this month in "
        f"{priced['purchases']} purchases: budget_tokens {budget}",
        flush=True,
    )

    log_mark = len(read_log(simulator_log))
    run_ids = [f"deploy-budget-pool-{n}" for n in range(1, CONCURRENT_RUNS + 1)]
    for run_id, logical_date in zip(run_ids, LOGICAL_DATES, strict=True):
        api.trigger(ARCHIVE, logical_date=logical_date, conf=conf, run_id=run_id)

    def purchase_tries() -> dict[str, dict[str, Any]] | None:
        tries = {}
        for run_id in run_ids:
            (ti,) = [t for t in api.task_instances(ARCHIVE, run_id) if t["task_id"] == PURCHASE_TASK]
            if ti["state"] not in ("success", "failed", "upstream_failed"):
                return None
            tries[run_id] = ti
        return tries

    tries = wait_for(
        purchase_tries, timeout=RUN_TIMEOUT_SECONDS, what=f"{PURCHASE_TASK} of the 5 runs to end", interval=2
    )
    bought = sorted(r for r, ti in tries.items() if ti["state"] == "success")
    refused = sorted(r for r, ti in tries.items() if ti["state"] == "failed")
    if len(bought) != AFFORDABLE or len(refused) != CONCURRENT_RUNS - AFFORDABLE:
        states = {r: ti["state"] for r, ti in tries.items()}
        raise DeploymentError(f"{PURCHASE_TASK}: {states}; expected {AFFORDABLE} success, the rest failed")
    for run_id, ti in tries.items():
        if ti["try_number"] != 1 or ti["pool"] != PURCHASE_POOL:
            raise DeploymentError(
                f"{PURCHASE_TASK} of {run_id} ran as try {ti['try_number']} in pool {ti['pool']!r}; "
                f"expected try 1 (a refusal is not retried) in {PURCHASE_POOL}"
            )
    for run_id in refused:
        text = api.task_log(ARCHIVE, run_id, PURCHASE_TASK, 1)
        if REFUSAL not in text or f"> budget {budget:,}" not in text:
            raise DeploymentError(
                f"{PURCHASE_TASK} of {run_id} failed, but not on the budget:\n{text[-2000:]}"
            )
        if api.wait_for_run(ARCHIVE, run_id, timeout=RUN_TIMEOUT_SECONDS) != "failed":
            raise DeploymentError(f"run {run_id} did not fail after its purchase was refused")

    # The pool: no two place_order tries open at one instant, sorted by start.
    intervals = sorted(_interval(ti) for ti in tries.values())
    gaps = [(later[0] - earlier[1]).total_seconds() for earlier, later in itertools.pairwise(intervals)]
    if min(gaps) < 0:
        raise DeploymentError(
            f"{PURCHASE_TASK} tries overlapped: {[(s.isoformat(), e.isoformat()) for s, e in intervals]}"
        )
    # The executor: the runs' other tasks did run side by side (so it was the pool that held them apart).
    others = [
        _interval(ti)
        for run_id in run_ids
        for ti in api.task_instances(ARCHIVE, run_id)
        if ti["task_id"] != PURCHASE_TASK and ti["start_date"] and ti["end_date"]
    ]
    side_by_side = peak_concurrency(others)
    if side_by_side < 2:
        raise DeploymentError(f"the executor never ran two of the runs' tasks at once ({len(others)} tasks)")

    for run_id in bought:
        expect_success(api, ARCHIVE, run_id)
    # What the simulator sold, once every run ended: five prices, exactly two orders, and those the
    # two bought runs name in their summaries (written by their last task).
    entries = read_log(simulator_log)[log_mark:]
    answered = [
        e
        for e in entries
        if e["event"] == "request"
        and (e["method"], e["path"]) == ("POST", "/v0/orders")
        and 200 <= int(e["status"] or 0) < 300
    ]
    priced_posts = [e for e in answered if e.get("dry_run") is True]
    bought_posts = [e for e in answered if e.get("dry_run") is False]
    orders = sorted(e["id"] for e in entries if e["event"] == "created" and e["kind"] == "order")
    summaries = [json.loads(p.read_text()) for p in output_dir.glob(f"{ARCHIVE}/*/summary.json")]
    placed = sorted(str(summary["order_id"]) for summary in summaries)
    if len(bought_posts) != AFFORDABLE or len(priced_posts) != CONCURRENT_RUNS or orders != placed:
        raise DeploymentError(
            f"the simulator answered {len(priced_posts)} dry runs and {len(bought_posts)} purchases and "
            f"created orders {orders}; the bought runs' summaries name {placed}"
        )
    note["detail"] = (
        f"budget {budget} = {spent:g} spent + 2 x {price:g} + 1: {len(bought_posts)} bought, "
        f"{len(refused)} refused by the budget (try 1); {PURCHASE_TASK} never overlapped "
        f"(gaps {min(gaps):.1f}-{max(gaps):.1f} s); other tasks {side_by_side} at once"
    )
