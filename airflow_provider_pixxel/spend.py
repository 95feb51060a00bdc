"""``pixxel-spend``: what a project spent, from the API, and what dry runs priced, from Airflow.

Two reports:

* spend (the default): every order item, workflow job and insight of ``--project`` created since
  ``--since`` (until ``--until``, default now), read from the API with the provider's hook
  (:func:`airflow_provider_pixxel.hooks.spend.iter_purchases`), summed per UTC day (``--by day``), per
  DAG (``--by dag``) or per DAG and task (``--by task``). Purchases the provider made carry the task
  that made them (order item names, insight metadata); the others, jobs included (they have no field
  to carry it), are summed under ``-``.
* ``--priced DAG_ID``: the prices the purchase operators pushed to XCom (``pixxel_price``) in runs of
  that DAG, chosen by ``--run-id`` or by logical date (``--since``/``--until``), summed: step one of
  the backfill recipe (backfill with ``pixxel_dry_run`` on, read the total, then backfill for real).
  It reads Airflow's metadata database, so run it where the ``airflow`` command works (scheduler or
  API server host), with the same ``AIRFLOW_HOME``/configuration.

A plain table by default, ``--json`` for machines.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_pixxel.hooks import DEFAULT_CONN_ID
from airflow_provider_pixxel.hooks.spend import Purchase, token_amount
from airflow_provider_pixxel.utils.arguments import one_of

BY_CHOICES = ("day", "dag", "task")
UNATTRIBUTED = "-"


@dataclass(frozen=True)
class SpendRow:
    """One line of the spend report."""

    key: tuple[str, ...]
    purchases: int
    order_items: float
    jobs: float
    insights: float

    @property
    def total(self) -> float:
        return math.fsum((self.order_items, self.jobs, self.insights))


def _key(purchase: Purchase, by: str) -> tuple[str, ...]:
    if by == "day":
        return (f"{purchase.created_at:%Y-%m-%d}",)
    attribution = purchase.attribution
    if by == "dag":
        return (attribution.dag_id if attribution else UNATTRIBUTED,)
    if attribution is None:
        return (UNATTRIBUTED, UNATTRIBUTED)
    return (attribution.dag_id, attribution.task_id)


def summarise(purchases: Iterable[Purchase], by: str) -> list[SpendRow]:
    """Spend per UTC day, per DAG or per (DAG, task), sorted by key."""
    # A PixxelConfigError is a ValueError, so a caller catching ValueError for a bad grouping still does.
    by = one_of("by", by, BY_CHOICES, case="exact")
    sums: dict[tuple[str, ...], dict[str, float]] = {}
    for purchase in purchases:
        entry = sums.setdefault(_key(purchase, by), {"n": 0, "order_item": 0.0, "job": 0.0, "insight": 0.0})
        entry["n"] += 1
        entry[purchase.kind] += purchase.amount
    return [
        SpendRow(key, int(entry["n"]), entry["order_item"], entry["job"], entry["insight"])
        for key, entry in sorted(sums.items())
    ]


def _amount(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table, numbers right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    numeric = [
        all(str(row[i]).replace(",", "").replace(".", "").isdigit() for row in rows)
        for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(cell).rjust(width) if is_number else str(cell).ljust(width)
            for cell, width, is_number in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * width for width in widths]), *map(line, rows)])


def spend_report(rows: Sequence[SpendRow], by: str) -> tuple[str, dict[str, Any]]:
    """The table and the JSON document of a spend report."""
    key_names = {"day": ["day"], "dag": ["dag_id"], "task": ["dag_id", "task_id"]}[by]
    grand_total = math.fsum(row.total for row in rows)
    document = {
        "by": by,
        "rows": [
            {
                **dict(zip(key_names, row.key, strict=True)),
                "purchases": row.purchases,
                "order_items": row.order_items,
                "jobs": row.jobs,
                "insights": row.insights,
                "total": row.total,
            }
            for row in rows
        ],
        "total": grand_total,
    }
    headers = [*key_names, "purchases", "order items", "jobs", "insights", "total"]
    lines = [
        [
            *row.key,
            str(row.purchases),
            _amount(row.order_items),
            _amount(row.jobs),
            _amount(row.insights),
            _amount(row.total),
        ]
        for row in rows
    ]
    lines.append(
        [
            "total",
            *[""] * (len(key_names) - 1),
            str(sum(row.purchases for row in rows)),
            "",
            "",
            "",
            _amount(grand_total),
        ]
    )
    return render_table(headers, lines), document


# -- prices of dry runs, from Airflow's metadata database -------------------------------------------


@dataclass(frozen=True)
class PricedTask:
    run_id: str
    task_id: str
    map_index: int
    price: float | None
    dry_run: bool
    subject: str


def priced_tasks(
    dag_id: str,
    *,
    run_ids: Sequence[str] = (),
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    dry_runs_only: bool = True,
) -> list[PricedTask]:
    """The ``pixxel_price`` XComs of a DAG's runs (chosen by id, or by logical date in ``[since, until)``)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_pixxel.operators.purchase import PRICE_XCOM_KEY

    query = (
        select(XComModel, DagRun.run_id)
        .join(DagRun, XComModel.dag_run_id == DagRun.id)
        .where(XComModel.dag_id == dag_id, XComModel.key == PRICE_XCOM_KEY)
    )
    if run_ids:
        query = query.where(DagRun.run_id.in_(list(run_ids)))
    if since is not None:
        query = query.where(DagRun.logical_date >= since)
    if until is not None:
        query = query.where(DagRun.logical_date < until)
    found = []
    with create_session() as session:
        for xcom, run_id in session.execute(query.order_by(DagRun.run_id, XComModel.task_id)):
            value = XComModel.deserialize_value(xcom)
            if not isinstance(value, Mapping):
                continue
            entry = PricedTask(
                run_id,
                xcom.task_id,
                xcom.map_index,
                token_amount(value.get("price")),
                bool(value.get("dry_run")),
                str(value.get("subject") or ""),
            )
            if entry.dry_run or not dry_runs_only:
                found.append(entry)
    return found


def priced_report(tasks: Sequence[PricedTask]) -> tuple[str, dict[str, Any]]:
    unknown = [task for task in tasks if task.price is None]
    total = math.fsum(task.price for task in tasks if task.price is not None)
    document = {
        "tasks": [task.__dict__ for task in tasks],
        "runs": len({task.run_id for task in tasks}),
        "total": total,
        "unpriced": len(unknown),
    }
    rows = [
        [
            task.run_id,
            task.task_id + (f"[{task.map_index}]" if task.map_index >= 0 else ""),
            task.subject,
            "unknown" if task.price is None else _amount(task.price),
        ]
        for task in tasks
    ]
    rows.append(
        [
            "total",
            f"{document['runs']} runs",
            f"{len(unknown)} without a price" if unknown else "",
            _amount(total),
        ]
    )
    return render_table(["run_id", "task_id", "purchase", "price"], rows), document


# -- the command --------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixxel-spend",
        description="What a Pixxel project spent (order items, workflow jobs, insights), read from the "
        "API; or, with --priced, what dry runs of a DAG priced.",
    )
    parser.add_argument(
        "--project", action="append", default=[], help="project id (repeatable); default: the connection's"
    )
    parser.add_argument(
        "--since",
        help="start, inclusive: a date (UTC) or an RFC 3339 date-time; default: the start of this month",
    )
    parser.add_argument("--until", help="end, exclusive; default: now")
    parser.add_argument(
        "--by", choices=BY_CHOICES, default="day", help="group by UTC day (default), DAG, or DAG and task"
    )
    parser.add_argument(
        "--conn-id", default=DEFAULT_CONN_ID, help=f"Airflow connection (default {DEFAULT_CONN_ID})"
    )
    parser.add_argument(
        "--no-insights", action="store_true", help="skip insights (one request per AOI of the project)"
    )
    parser.add_argument(
        "--priced",
        metavar="DAG_ID",
        help="sum the prices dry runs of this DAG pushed instead (Airflow metadata DB)",
    )
    parser.add_argument("--run-id", action="append", default=[], help="with --priced: this run (repeatable)")
    parser.add_argument(
        "--all-runs",
        action="store_true",
        help="with --priced: count real runs' prices too, not only dry runs",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _window(since: str | None, until: str | None) -> tuple[datetime.datetime, datetime.datetime]:
    from airflow_provider_pixxel.hooks.spend import period_bounds
    from airflow_provider_pixxel.utils.dates import parse_datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    start = parse_datetime(since, field="--since") if since else period_bounds("month", now)[0]
    end = parse_datetime(until, field="--until") if until else now
    return start, end


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    from airflow_provider_pixxel.exceptions import PixxelError

    try:
        if arguments.priced:
            since = until = None
            if arguments.since or arguments.until:
                since, until = _window(arguments.since, arguments.until)
            tasks = priced_tasks(
                arguments.priced,
                run_ids=arguments.run_id,
                since=since,
                until=until,
                dry_runs_only=not arguments.all_runs,
            )
            table, document = priced_report(tasks)
        else:
            from airflow_provider_pixxel.hooks.pixxel import PixxelHook
            from airflow_provider_pixxel.hooks.spend import iter_purchases

            start, end = _window(arguments.since, arguments.until)
            hook = PixxelHook(arguments.conn_id)
            projects = arguments.project or [hook.resolve_project_id(None)]
            purchases = list(
                iter_purchases(hook, projects, start, end, include_insights=not arguments.no_insights)
            )
            table, document = spend_report(summarise(purchases, arguments.by), arguments.by)
            document.update(projects=projects, since=start.isoformat(), until=end.isoformat())
            span = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
            table = f"Spend of project(s) {', '.join(projects)} from {span}\n{table}"
    except PixxelError as error:
        print(f"pixxel-spend: {error}", file=sys.stderr)
        return 2
    print(json.dumps(document, indent=2, default=str) if arguments.json else table)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
