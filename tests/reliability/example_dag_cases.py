"""The example DAGs as the reliability tests run them: discovery, each one's run_conf and set-up.

The DAGs are discovered in ``example_dags/``; each one's ``run_conf`` is read from its own test
(``tests/example_dags/test_<dag file>``), so a new example DAG joins with no change here. DAGs whose test
sets something up before the run (an order to watch, an asset event, a pool) have that set-up in
``PREPARATIONS``.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.example_dags.dag_runner import EXAMPLE_DAGS, load_dag

TESTS_OF_EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "example_dags"


@dataclass
class ChaosCase:
    """What a DAG's own test does before ``dag.test()`` and what one run of it creates."""

    #: ``(sim, monkeypatch, output_dir) -> extra dag.test() keyword arguments``
    prepare: Callable[[SimulatorHandle, pytest.MonkeyPatch, Path], dict[str, Any]] | None = None
    #: Resources of ``COUNTED_KINDS`` one run creates; kinds not named here: none.
    creates: dict[str, int] = field(default_factory=dict)


def _watch_a_fulfilled_recurring_order(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, output_dir: Path
) -> dict[str, Any]:
    """As test_pixxel_capture_events.py: two captures delivered, found by one poll, so named by one event
    (the trigger's payload shape), handed to one asset-triggered run."""
    from tests.example_dags.example_runs import asset_triggered_runs
    from tests.operators.pixxel_sim import fulfilled_order, recurring_item

    # The order the watcher watches is the test's own set-up, not part of the run under faults.
    with sim.faults.paused():
        order = fulfilled_order(sim, [recurring_item(sim, occurrences=2)])
    monkeypatch.setenv("PIXXEL_CAPTURE_ORDER_ITEM_IDS", ",".join(order["order_item_ids"]))
    catalogs = [
        {"catalog_id": c, "order_item_id": order["order_item_ids"][0], "task_id": "t", "created_at": "x"}
        for c in order["catalog_ids"]
    ]
    asset_triggered_runs(monkeypatch, "pixxel_recurring_captures", [{"catalogs": catalogs}])
    return {"logical_date": None}


def _create_the_api_pool(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, output_dir: Path
) -> dict[str, Any]:
    from airflow.models.pool import Pool

    Pool.create_or_update_pool("pixxel_api", slots=4, description="Pixxel API calls", include_deferred=False)
    return {}


PREPARATIONS: dict[str, ChaosCase] = {
    "pixxel_tasking_to_delivery.py": ChaosCase(creates={"order": 1, "aoi": 1, "visualization": 1}),
    "pixxel_archive_purchase.py": ChaosCase(creates={"order": 1}),
    "pixxel_insights.py": ChaosCase(creates={"insight": 1, "aoi": 1}),
    "pixxel_workflow_job.py": ChaosCase(creates={"job": 1}),
    "pixxel_capture_events.py": ChaosCase(prepare=_watch_a_fulfilled_recurring_order),
    "pixxel_fan_out.py": ChaosCase(prepare=_create_the_api_pool, creates={"aoi": 5}),
}


def example_dag_files() -> list[str]:
    return sorted(
        path.name
        for path in EXAMPLE_DAGS.glob("*.py")
        if re.search(r"^\s*(with DAG\(|@dag\b|dag = DAG\()", path.read_text(), re.MULTILINE)
    )


def run_conf_of(dag_file: str, output_dir: Path) -> dict[str, Any]:
    """The first ``run_conf`` the DAG's own test passes to ``run_dag`` (with ``tmp_path`` made ours)."""
    test_file = TESTS_OF_EXAMPLE_DAGS / f"test_{dag_file}"
    conf: dict[str, Any] = {"output_dir": str(output_dir)}
    if test_file.exists():
        match = re.search(r"run_conf=(\{[^}]*\})", test_file.read_text())
        if match:
            literal = match.group(1).replace("str(tmp_path)", repr(str(output_dir)))
            conf = ast.literal_eval(literal)
    return conf


def run_xcoms(dag_run: Any) -> dict[tuple[str, int, str], Any]:
    """Every XCom of the run, decoded, by ``(task_id, map_index, key)``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    values: dict[tuple[str, int, str], Any] = {}
    with create_session() as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.map_index, XComModel.key, XComModel.value).where(
                XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id
            )
        ).all()
    for task_id, map_index, key, value in rows:
        try:
            values[(task_id, map_index, key)] = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            values[(task_id, map_index, key)] = value
    return values


def failure_details(records: list[logging.LogRecord], output: str) -> str:
    """Why tasks failed: the errors logged (dag.test() logs a task's exception and carries on), from
    the log records and from what the task loggers wrote (the final line of each traceback)."""
    lines = []
    for record in records:
        if record.levelno >= logging.ERROR:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                text += f" -- {type(error).__name__}: {error}"
            lines.append(text)
    lines += [
        line
        for line in output.splitlines()
        if re.match(r"^[\w.]+(Error|Exception): ", line) or "Task failed with exception" in line
    ]
    return "\n".join(lines[-8:]) or "(no error logged)"


def load_without_retries(dag_file: str) -> Any:
    """The DAG with Airflow task retries off: a failing task fails the run at once (no 5-minute delay)."""
    dag = load_dag(dag_file)
    for task in dag.tasks:
        task.retries = 0
    return dag
