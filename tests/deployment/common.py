"""What both legs of the deployment suite share: the report, the DAGs, and waits on runs and tasks."""

from __future__ import annotations

import datetime
import hashlib
import json
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from scripts.deployment.stack import AirflowApi, AirflowSite, DeploymentError, wait_for

FLAGSHIP = "pixxel_tasking_to_delivery"
DAILY_PNG = "pixxel_daily_index_png"
RUN_TIMEOUT_SECONDS = 480.0
SQLITE_LOCKED_ATTEMPTS = 3


@dataclass
class Outcome:
    leg: str
    name: str
    status: str  # passed, failed, skipped
    seconds: float
    detail: str


class Report:
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.on_failure: Callable[[], None] | None = None

    @contextmanager
    def check(self, leg: str, name: str) -> Iterator[dict[str, str]]:
        """Times the block; an exception fails the check (and is printed), the suite goes on.

        A passed check about runs that went on alongside others gives their own duration in
        ``note["seconds"]`` instead of the time the block took to check them.
        """
        note: dict[str, str] = {"detail": ""}
        started = time.monotonic()
        try:
            yield note
        except Exception as error:
            seconds = time.monotonic() - started
            self.add(Outcome(leg, name, "failed", seconds, f"{type(error).__name__}: {error}"))
            traceback.print_exc()
            if self.on_failure is not None:
                self.on_failure()
        else:
            seconds = float(note["seconds"]) if note.get("seconds") else time.monotonic() - started
            self.add(Outcome(leg, name, "passed", seconds, note["detail"]))

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        first_line = outcome.detail.splitlines()[0] if outcome.detail else ""
        status = outcome.status.upper()
        print(f"[{outcome.leg}] {status:7} {outcome.name} ({outcome.seconds:.0f} s) {first_line}")
        sys.stdout.flush()

    def skip(self, leg: str, name: str, reason: str) -> None:
        self.add(Outcome(leg, name, "skipped", 0.0, reason))

    def print_table(self, total_seconds: float) -> int:
        width = max(len(o.name) for o in self.outcomes) if self.outcomes else 10
        print()
        print("=" * 120)
        print(f"{'leg':12} {'check':{width}} {'outcome':8} {'seconds':>7}  detail")
        for o in self.outcomes:
            detail = (o.detail.splitlines()[0] if o.detail else "")[:160]
            print(f"{o.leg:12} {o.name:{width}} {o.status:8} {o.seconds:7.0f}  {detail}")
        print("=" * 120)
        passed = sum(o.status == "passed" for o in self.outcomes)
        failed = sum(o.status == "failed" for o in self.outcomes)
        skipped = sum(o.status == "skipped" for o in self.outcomes)
        print(f"whole suite: {total_seconds:.0f} s")
        closing = f"{passed} passed, {failed} failed"
        print(closing + (f", {skipped} skipped" if skipped else ""))
        return 1 if failed else 0


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def today_midnight() -> str:
    """The flagship's logical date: tasking must start in the future, and it starts ds + 2 days."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT00:00:00Z")


def task_states(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, str]:
    return {
        f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]: str(ti["state"])
        for ti in api.task_instances(dag_id, run_id)
    }


def wait_for_task_state(
    api: AirflowApi, dag_id: str, run_id: str, task_id: str, state: str, timeout: float
) -> None:
    def reached() -> bool:
        current = task_states(api, dag_id, run_id).get(task_id)
        if current in ("failed", "upstream_failed"):
            raise DeploymentError(f"{task_id} of {run_id} is {current}, waiting for {state}")
        return current == state

    wait_for(reached, timeout=timeout, what=f"{task_id} of {run_id} to be {state}", interval=0.5)


def expect_success(api: AirflowApi, dag_id: str, run_id: str) -> None:
    state = api.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT_SECONDS)
    if state != "success":
        raise DeploymentError(f"run {run_id} of {dag_id} ended {state}: {task_states(api, dag_id, run_id)}")


def creates_in(entries: list[dict[str, Any]], kind: str) -> list[str]:
    return [e["id"] for e in entries if e["event"] == "created" and e["kind"] == kind]


def write_command(site: AirflowSite, *args: str) -> None:
    """An ``airflow`` CLI command that writes to the metadata database, sent again while SQLite is locked.

    :raises DeploymentError: when the command fails otherwise, or is still locked out after
        :data:`SQLITE_LOCKED_ATTEMPTS` attempts.
    """
    for attempt in range(1, SQLITE_LOCKED_ATTEMPTS + 1):
        try:
            site.run(*args)
            return
        except DeploymentError as error:
            # SQLite has one writer: the CLI's transaction can lose to the scheduler's ("database is
            # locked" after sqlite3's 5 s busy wait) and is rolled back whole, so sending it again is safe.
            if "database is locked" not in str(error) or attempt == SQLITE_LOCKED_ATTEMPTS:
                raise
            print(
                f"{' '.join(args[:2])}: SQLite was locked (attempt {attempt}); sending it again", flush=True
            )


def backfill(
    site: AirflowSite,
    dag_id: str,
    first_day: str,
    last_day: str,
    *,
    conf: dict[str, Any],
    max_active_runs: int | None = None,
) -> list[dict[str, Any]]:
    """``airflow backfill create`` over ``first_day..last_day`` with ``conf`` for every run; the
    backfill's runs once all finished.

    :raises DeploymentError: when the command fails or a run does not succeed.
    """
    options = ["--dag-run-conf", json.dumps(conf)]
    if max_active_runs:
        options += ["--max-active-runs", str(max_active_runs)]
    write_command(
        site,
        "backfill",
        "create",
        "--dag-id",
        dag_id,
        "--from-date",
        first_day,
        "--to-date",
        last_day,
        *options,
    )
    days = (datetime.date.fromisoformat(last_day) - datetime.date.fromisoformat(first_day)).days + 1
    api = site.api()

    def finished() -> list[dict[str, Any]] | None:
        runs = [r for r in api.runs(dag_id) if r["run_type"] == "backfill"]
        if len(runs) == days and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        return None

    runs = wait_for(finished, timeout=RUN_TIMEOUT_SECONDS, what=f"the {days} backfill runs", interval=2)
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    if failed:
        raise DeploymentError(f"backfill runs not successful: {failed}")
    return runs


def resumed_not_retried(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> None:
    """The task succeeded in its first try: its deferred wait resumed rather than being run again.

    :raises DeploymentError: naming the task's state and try when it did not.
    """
    (task,) = [ti for ti in api.task_instances(dag_id, run_id) if ti["task_id"] == task_id]
    if (task["state"], task["try_number"]) != ("success", 1):
        raise DeploymentError(
            f"{task_id} of {run_id} is {task['state']} in try {task['try_number']}: its wait was not resumed"
        )
