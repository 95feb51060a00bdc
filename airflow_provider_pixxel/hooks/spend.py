"""What a project has spent, read from the API: the one source of truth every worker shares.

The API has no balance endpoint, but every purchase reports its price where it is listed:

* order items (``GET /v0/order-items``, filtered by ``project_ids`` and the ``created_at`` range
  ``start,end``): ``tokens_used`` once paid, else ``final_amount`` for an item whose payment status
  says it was paid; refunded and unpaid items cost nothing;
* workflow jobs (``GET /v0/workflows?project_id=`` then ``GET /v0/workflows/{id}/jobs``): ``cost``;
* insights (``GET /v0/aois?project_ids=`` then ``GET /v0/aoi/{id}/insights``): ``cost``.

Jobs and insights are listed without a date filter (``created_on`` takes one day, not a range) and
kept when their ``created_at`` falls in the period. Every walk goes through the one pager, bounded by
``max_pages``.

The provider marks what it buys (:class:`Attribution`) so that spend can be told per DAG and task:
order items carry ``@airflow:<dag_id>/<task_id>/<run_id>`` at the end of their name (the spec allows
100 characters; a run id that does not fit is shortened to ``#`` and 10 hex digits of its SHA-256),
insights carry ``airflow_dag_id``/``airflow_task_id``/``airflow_run_id`` in their ``metadata``. Jobs
have no field of their own to carry it.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.pagination import DEFAULT_MAX_PAGES, page_object, unexpected_answer
from airflow_provider_pixxel.utils.arguments import one_of, whole_number
from airflow_provider_pixxel.utils.dates import parse_datetime, rfc3339

if TYPE_CHECKING:
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook

#: UTC calendar periods a budget can cover; a week starts on Monday (ISO 8601).
BUDGET_PERIODS = ("day", "week", "month")
DEFAULT_BUDGET_PERIOD = "month"
#: Order items whose payment status means the tokens were taken (``tokens_used`` may still be 0).
PAID_STATUSES = frozenset({"PAID", "PARTIAL-MONTHLY"})
ORDER_ITEM_NAME_MAX = 100
ATTRIBUTION_PREFIX = "@airflow:"
METADATA_KEYS = ("airflow_dag_id", "airflow_task_id", "airflow_run_id")
_NAME_TAG = re.compile(r"(?:^|\s)@airflow:([^/\s]+)/([^/\s]+)/(\S+)$")


@dataclass(frozen=True)
class Attribution:
    """The Airflow task instance that made a purchase."""

    dag_id: str
    task_id: str
    run_id: str

    def name_tag(self, *, room: int) -> str | None:
        """``@airflow:dag/task/run`` in at most ``room`` characters (run id hashed if need be), or None."""
        tag = f"{ATTRIBUTION_PREFIX}{self.dag_id}/{self.task_id}/{self.run_id}"
        if len(tag) > room:
            digest = hashlib.sha256(self.run_id.encode()).hexdigest()[:10]
            tag = f"{ATTRIBUTION_PREFIX}{self.dag_id}/{self.task_id}/#{digest}"
        return tag if len(tag) <= room else None

    def metadata(self) -> dict[str, str]:
        return dict(zip(METADATA_KEYS, (self.dag_id, self.task_id, self.run_id), strict=True))


def attribution_from_name(name: Any) -> Attribution | None:
    """The attribution at the end of an order item's name, if the provider put one there."""
    match = _NAME_TAG.search(name) if isinstance(name, str) else None
    return Attribution(*match.groups()) if match else None


def attribution_from_metadata(metadata: Any) -> Attribution | None:
    """The attribution in an insight's metadata, if the provider put one there."""
    if not isinstance(metadata, Mapping):
        return None
    values = [metadata.get(key) for key in METADATA_KEYS]
    texts = [value for value in values if isinstance(value, str) and value]
    return Attribution(*texts) if len(texts) == len(METADATA_KEYS) else None


def name_with_attribution(name: str | None, attribution: Attribution) -> str | None:
    """``name`` with the attribution appended (a space between), or None when it cannot fit."""
    base = name or ""
    room = ORDER_ITEM_NAME_MAX - len(base) - (1 if base else 0)
    tag = attribution.name_tag(room=room)
    if tag is None:
        return None
    return f"{base} {tag}" if base else tag


# -- budget arguments -----------------------------------------------------------------------------


def check_budget(tokens: Any, period: Any, *, where: str = "") -> tuple[int, str] | None:
    """``(budget_tokens, budget_period)`` checked, or None when no budget is set.

    ``tokens`` is a whole number of tokens, 1 or more (None or an empty templated string: no budget);
    ``period`` is ``day``, ``week`` or ``month`` (None or empty: month). Raises :class:`PixxelConfigError`
    before any API call.
    """
    prefix = f"{where}: " if where else ""
    if period is not None and not (isinstance(period, str) and not period.strip()):
        period = one_of(f"{prefix}budget_period", period, BUDGET_PERIODS, hint="UTC calendar periods")
    else:
        period = DEFAULT_BUDGET_PERIOD
    if tokens is None or (isinstance(tokens, str) and not tokens.strip()):
        return None
    return whole_number(f"{prefix}budget_tokens", tokens, low=1), period


def period_bounds(period: str, now: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """The UTC calendar ``period`` (day, week from Monday, month) holding ``now``: ``[start, end)``."""
    period = one_of("budget_period", period, BUDGET_PERIODS, case="exact")
    now = now.astimezone(datetime.timezone.utc)
    day = datetime.datetime(now.year, now.month, now.day, tzinfo=datetime.timezone.utc)
    if period == "day":
        return day, day + datetime.timedelta(days=1)
    if period == "week":
        start = day - datetime.timedelta(days=day.weekday())
        return start, start + datetime.timedelta(days=7)
    # month, the one left
    start = day.replace(day=1)
    following = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start, following


# -- reading spend ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Purchase:
    """One thing the project paid for, as the API lists it."""

    kind: str  # "order_item", "job" or "insight"
    id: str
    project_id: str
    amount: float
    created_at: datetime.datetime
    label: str  # the order item's name, the job's workflow, the insight's name
    attribution: Attribution | None = None

    def describe(self) -> str:
        return f"{self.kind} {self.id} ({self.label}, {self.created_at:%Y-%m-%d %H:%M} UTC): {self.amount:g}"


def token_amount(value: Any) -> float | None:
    """A finite JSON number as a float; None for anything else (booleans, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def order_item_amount(item: Mapping[str, Any]) -> float:
    """What an order item cost: ``tokens_used`` once paid, else ``final_amount`` if its payment went
    through (refunded and unpaid items: nothing)."""
    used = token_amount(item.get("tokens_used"))
    if used is not None and used > 0:
        return used
    if str(item.get("payment_status") or "").upper() in PAID_STATUSES:
        return token_amount(item.get("final_amount")) or 0.0
    return 0.0


def _created_at(record: Mapping[str, Any], kind: str) -> datetime.datetime:
    value = record.get("created_at")
    try:
        if not isinstance(value, str):
            raise TypeError(value)
        return parse_datetime(value, field=f"{kind} {record.get('id')} created_at")
    except (PixxelConfigError, TypeError) as error:
        # Spend that cannot be dated cannot be put in a period: refuse to guess (a budget must not
        # pass because a purchase was left out).
        raise unexpected_answer(
            f"the API listed {kind} {record.get('id')!r} with created_at {value!r}, which is not a date"
        ) from error


def _records(payload: Any, key: str) -> list[Mapping[str, Any]]:
    _, items = page_object(payload, key)
    return [item for item in items if isinstance(item, Mapping)]


def iter_purchases(
    hook: PixxelHook,
    project_ids: Sequence[str],
    since: datetime.datetime,
    until: datetime.datetime,
    *,
    include_insights: bool = True,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Iterator[Purchase]:
    """Every purchase of ``project_ids`` created in ``[since, until)``, with what it cost."""
    projects = sorted(set(project_ids))

    def in_period(moment: datetime.datetime) -> bool:
        return since <= moment < until

    for item in hook.iter_order_items(
        project_ids=",".join(projects), created_at=f"{rfc3339(since)},{rfc3339(until)}", max_pages=max_pages
    ):
        if not isinstance(item, Mapping):
            continue
        created = _created_at(item, "order item")
        # Filtered again here: a server that ignored the range must not make old spend count.
        if not in_period(created) or str(item.get("project_id")) not in projects:
            continue
        yield Purchase(
            "order_item",
            str(item.get("id")),
            str(item.get("project_id")),
            order_item_amount(item),
            created,
            str(item.get("name") or ""),
            attribution_from_name(item.get("name")),
        )
    for project_id in projects:
        for workflow in hook.iter_workflows(project_id=project_id, max_pages=max_pages):
            workflow_id = workflow.get("id") if isinstance(workflow, Mapping) else None
            if workflow_id:
                jobs = _records(hook.list_jobs(str(workflow_id)), "jobs")
                yield from _costed("job", jobs, project_id, in_period, _job_label)
        if not include_insights:
            continue
        for aoi in hook.iter_aois(project_ids=project_id, max_pages=max_pages):
            aoi_id = (aoi.get("aoi_id") or aoi.get("id")) if isinstance(aoi, Mapping) else None
            if aoi_id:
                insights = _records(hook.list_insights(str(aoi_id)), "insights")
                yield from _costed(
                    "insight", insights, project_id, in_period, lambda insight: str(insight.get("name") or "")
                )


def _job_label(job: Mapping[str, Any]) -> str:
    return f"workflow {job.get('workflow_id')}"


def _costed(
    kind: str,
    records: Iterable[Mapping[str, Any]],
    project_id: str,
    in_period: Callable[[datetime.datetime], bool],
    label: Callable[[Mapping[str, Any]], str],
) -> Iterator[Purchase]:
    """Jobs or insights (each with its ``cost``) created in the period; insights with their attribution."""
    for record in records:
        created = _created_at(record, kind)
        if in_period(created):
            yield Purchase(
                kind,
                str(record.get("id")),
                project_id,
                token_amount(record.get("cost")) or 0.0,
                created,
                label(record),
                attribution_from_metadata(record.get("metadata")),
            )


def total(purchases: Iterable[Purchase]) -> float:
    return math.fsum(purchase.amount for purchase in purchases)
