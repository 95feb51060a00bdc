"""``pixxel-spend`` against the simulator: its totals are the simulator's own ledger."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_pixxel.spend import main, summarise
from tests.operators.test_purchase import insight_op, job_op, order_op, run_context
from tests.task_runner import run_task

SINCE, UNTIL = "2026-05-01", "2026-06-01"  # the simulator's clock starts on 2026-05-28


@pytest.fixture
def purchases(sim: Any) -> Any:
    """An order and an insight bought by two DAGs' tasks, and a job (which carries no attribution)."""
    run_task(order_op(sim), run_context(dag_id="farms", run_id="scheduled__2026-05-28"))
    run_task(insight_op(sim), run_context(dag_id="water", run_id="manual__1"))
    run_task(job_op(sim), run_context(dag_id="farms", run_id="scheduled__2026-05-28"))
    assert sorted(entry.kind for entry in sim.state.ledger) == ["insight", "job", "order_item"]
    return sim


def report(capsys: pytest.CaptureFixture[str], *arguments: str) -> Any:
    assert main(["--since", SINCE, "--until", UNTIL, "--json", *arguments]) == 0
    return json.loads(capsys.readouterr().out)


def test_totals_match_the_simulators_ledger(purchases: Any, capsys: pytest.CaptureFixture[str]) -> None:
    by_day = report(capsys)

    ledger = {entry.kind: entry.amount for entry in purchases.state.ledger}
    assert by_day["total"] == pytest.approx(purchases.state.spent())
    (day,) = by_day["rows"]
    assert day["day"] == "2026-05-28"
    assert (day["order_items"], day["jobs"], day["insights"]) == (
        ledger["order_item"],
        ledger["job"],
        ledger["insight"],
    )
    assert day["purchases"] == 3


def test_spend_per_dag_and_task_from_what_the_provider_recorded(
    purchases: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    by_task = report(capsys, "--by", "task")

    ledger = {entry.kind: entry.amount for entry in purchases.state.ledger}
    rows = {(row["dag_id"], row["task_id"]): row["total"] for row in by_task["rows"]}
    assert rows == {
        ("farms", "place_order"): ledger["order_item"],
        ("water", "insight"): ledger["insight"],
        ("-", "-"): ledger["job"],  # jobs have no field to carry the task that ran them
    }
    by_dag = report(capsys, "--by", "dag")
    assert {row["dag_id"]: row["purchases"] for row in by_dag["rows"]} == {"-": 1, "farms": 1, "water": 1}


def test_a_plain_table_by_default(purchases: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--since", SINCE, "--until", UNTIL, "--by", "dag"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Spend of project(s) ")
    assert lines[1].split() == ["dag_id", "purchases", "order", "items", "jobs", "insights", "total"]
    assert lines[-1].split()[0] == "total"
    assert lines[-1].split()[-1] == f"{purchases.state.spent():,.0f}"


def test_nothing_outside_the_window(purchases: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--since", "2026-06-01", "--until", "2026-07-01", "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["total"] == 0


def test_a_bad_date_is_refused_with_the_accepted_forms(sim: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--since", "last tuesday"]) == 2

    assert "--since" in capsys.readouterr().err
    assert sim.state.requests() == []


def test_summarise_refuses_an_unknown_grouping_with_a_value_error() -> None:
    """``--by`` is limited by argparse; a caller of summarise() gets a ValueError naming the choices."""
    with pytest.raises(ValueError, match=r"^by must be one of day, dag, task; got 'week'$"):
        summarise([], "week")
