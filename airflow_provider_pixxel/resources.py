"""What can be waited on, how to read it, and how far along it is.

Each :class:`Watchable` says which API call reads one remote resource and how to pick the object out
of the answer. The call goes through ``PixxelPollingOperations``, so one description serves the sync
hook (sensor pokes, an operator's first check) and the async hook (the trigger's polling loop).
:func:`observe` classifies the object with the status table in :mod:`airflow_provider_pixxel.statuses`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelNotFoundError
from airflow_provider_pixxel.hooks.operations import PixxelPollingOperations
from airflow_provider_pixxel.statuses import Phase, Resource, failure_reason, phase_of

Ids = Mapping[str, str]
Fetch = Callable[[PixxelPollingOperations[Any], Ids], Any]


def _first_match(key: str, id_field: str, id_name: str) -> Callable[[Any, Ids], Mapping[str, Any] | None]:
    """Pick the object whose ``id_field`` equals ``ids[id_name]`` from the list at ``answer[key]``."""

    def extract(answer: Any, ids: Ids) -> Mapping[str, Any] | None:
        for item in (answer or {}).get(key) or []:
            if isinstance(item, Mapping) and str(item.get(id_field)) == str(ids[id_name]):
                return item
        return None

    return extract


def _whole(answer: Any, ids: Ids) -> Mapping[str, Any] | None:
    return answer if isinstance(answer, Mapping) else None


@dataclass(frozen=True)
class Watchable:
    """One kind of remote resource that operators, sensors and triggers wait on."""

    kind: str
    label: str
    resource: Resource
    id_names: tuple[str, ...]
    fetch: Fetch
    extract: Callable[[Any, Ids], Mapping[str, Any] | None] = _whole
    web_path: str | None = None

    def check_ids(self, ids: Mapping[str, Any]) -> dict[str, str]:
        """The ids this kind needs, as strings; a clear error naming any that is missing."""
        missing = [name for name in self.id_names if not str(ids.get(name) or "").strip()]
        if missing:
            raise PixxelConfigError(
                f"waiting on a {self.label} needs {', '.join(self.id_names)}; missing or empty: "
                f"{', '.join(missing)}"
            )
        return {name: str(ids[name]).strip() for name in self.id_names}

    def describe(self, ids: Ids) -> str:
        return f"{self.label} " + " / ".join(f"{name}={ids[name]}" for name in self.id_names)


WATCHABLES: dict[str, Watchable] = {
    w.kind: w
    for w in (
        Watchable("aoi", "AOI", Resource.AOI, ("aoi_id",), lambda ops, ids: ops.get_aoi(ids["aoi_id"])),
        Watchable(
            "visualization",
            "visualization",
            Resource.VISUALIZATION,
            ("aoi_id", "visualization_id"),
            lambda ops, ids: ops.list_visualizations(ids["aoi_id"], visualization_id=ids["visualization_id"]),
            _first_match("visualization", "id", "visualization_id"),
        ),
        Watchable(
            "insight",
            "insight",
            Resource.INSIGHT,
            ("aoi_id", "insight_id"),
            lambda ops, ids: ops.list_insights(ids["aoi_id"], id=ids["insight_id"]),
            _first_match("insights", "id", "insight_id"),
        ),
        Watchable(
            "aoi_download",
            "AOI download",
            Resource.AOI_DOWNLOAD,
            ("aoi_id", "download_id"),
            lambda ops, ids: ops.get_aoi_download(ids["aoi_id"], ids["download_id"]),
        ),
        Watchable(
            "catalog_download",
            "catalog download",
            Resource.CATALOG_DOWNLOAD,
            ("download_id",),
            lambda ops, ids: ops.get_catalog_download(ids["download_id"]),
        ),
        Watchable(
            "delivery",
            "delivery",
            Resource.DELIVERY,
            ("delivery_id",),
            lambda ops, ids: ops.list_deliveries(delivery_id=ids["delivery_id"]),
            _first_match("deliveries", "delivery_id", "delivery_id"),
        ),
        Watchable(
            "job",
            "workflow job",
            Resource.JOB,
            ("workflow_id", "job_id"),
            lambda ops, ids: ops.get_job(ids["workflow_id"], ids["job_id"]),
        ),
        Watchable(
            "order_item",
            "order item",
            Resource.ORDER_ITEM,
            ("order_item_id",),
            lambda ops, ids: ops.get_order_item(ids["order_item_id"]),
        ),
        Watchable(
            "order",
            "order",
            Resource.ORDER_ITEM,
            ("order_id",),
            lambda ops, ids: ops.get_order(ids["order_id"]),
        ),
        Watchable(
            "job_package",
            "job download package",
            Resource.DOWNLOAD_PACKAGE,
            ("workflow_id", "job_id"),
            lambda ops, ids: ops.download_job(ids["workflow_id"], ids["job_id"]),
        ),
        Watchable(
            "task_package",
            "task download package",
            Resource.DOWNLOAD_PACKAGE,
            ("workflow_id", "job_id", "task_id"),
            lambda ops, ids: ops.download_task(ids["workflow_id"], ids["job_id"], ids["task_id"]),
        ),
        Watchable(
            "insight_package",
            "insight download package",
            Resource.DOWNLOAD_PACKAGE,
            ("aoi_id", "insight_id"),
            lambda ops, ids: ops.download_insights(ids["aoi_id"], ids["insight_id"]),
        ),
    )
}


def watchable(kind: str) -> Watchable:
    try:
        return WATCHABLES[kind]
    except KeyError:
        raise PixxelConfigError(
            f"unknown resource kind {kind!r}; expected one of {', '.join(sorted(WATCHABLES))}"
        ) from None


@dataclass(frozen=True)
class Observation:
    """One reading of a remote resource: small, JSON-able, enough to log and to decide."""

    phase: Phase
    status: str | None
    progress: float | None
    reason: str | None
    detail: dict[str, Any]

    def as_event(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "remote_status": self.status,
            "progress": self.progress,
            "reason": self.reason,
            "detail": self.detail,
        }


def _progress(value: Any) -> float | None:
    # Progress is an int, a float or a string depending on the resource (FACTS.md §2).
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _order_observation(order: Mapping[str, Any]) -> Observation:
    """A whole order is done when every order item is: failed if any failed, partial if any was."""
    items = [item for item in order.get("order_items") or [] if isinstance(item, Mapping)]
    phases = {str(item.get("id")): phase_of(Resource.ORDER_ITEM, item) for item in items}
    if not phases or Phase.RUNNING in phases.values():
        phase = Phase.RUNNING
    elif Phase.FAILURE in phases.values():
        phase = Phase.FAILURE
    elif Phase.PARTIAL in phases.values():
        phase = Phase.PARTIAL
    else:
        phase = Phase.SUCCESS
    counts: dict[str, int] = {}
    for item_phase in phases.values():
        counts[item_phase.value] = counts.get(item_phase.value, 0) + 1
    summary = ", ".join(f"{n} {p}" for p, n in sorted(counts.items())) or "no order items"
    failed = [item for item in items if phases[str(item.get("id"))] is Phase.FAILURE]
    reason = None
    if failed:
        reason = "; ".join(
            f"order item {item.get('id')} {item.get('status')}: {failure_reason(item)}" for item in failed
        )
    return Observation(
        phase=phase,
        status=summary,
        progress=None,
        reason=reason,
        detail={"order_item_ids": list(phases), "order_status": order.get("status")},
    )


def observe(kind: str, obj: Mapping[str, Any] | None, ids: Ids) -> Observation:
    """Classify one API object of ``kind``. A missing object is a not-found error."""
    spec = watchable(kind)
    if obj is None:
        raise PixxelNotFoundError(
            status=404,
            method="GET",
            url=spec.describe(ids),
            message=f"the API returned no {spec.label} with these ids",
        )
    if kind == "order":
        return _order_observation(obj)
    phase = phase_of(spec.resource, obj)
    status = obj.get("status")
    reason = failure_reason(obj) if phase in (Phase.FAILURE, Phase.PARTIAL) else None
    # Signed URLs stay out: observations travel in trigger events, which the metadata DB stores.
    detail: dict[str, Any] = {"has_signed_url": bool(obj.get("signed_url"))} if "signed_url" in obj else {}
    for key in ("target_path", "cost", "estimated_duration", "estimated_time_in_min"):
        if obj.get(key) not in (None, ""):
            detail[key] = obj[key]
    return Observation(
        phase=phase,
        status=None if status is None else str(status),
        progress=_progress(obj.get("progress")),
        reason=reason,
        detail=detail,
    )


def read_sync(hook: PixxelPollingOperations[Any], kind: str, ids: Ids) -> Observation:
    """Read and classify a resource with the sync hook."""
    spec = watchable(kind)
    return observe(kind, spec.extract(spec.fetch(hook, ids), ids), ids)


async def read_async(hook: PixxelPollingOperations[Any], kind: str, ids: Ids) -> Observation:
    """Read and classify a resource with the async hook."""
    spec = watchable(kind)
    return observe(kind, spec.extract(await spec.fetch(hook, ids), ids), ids)
