"""What can be waited on, how to read it, and how far along it is.

Each :class:`Watchable` says which API call reads one remote resource and how to pick the object out
of the answer. The call goes through ``PixxelPollingOperations``, so one description serves the sync
hook (sensor pokes, an operator's first check) and the async hook (the trigger's polling loop).
:func:`observe` classifies the object with the status table in :mod:`airflow_provider_pixxel.statuses`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelError, PixxelNotFoundError
from airflow_provider_pixxel.hooks.operations import PixxelPollingOperations
from airflow_provider_pixxel.statuses import Phase, Resource, failure_reason, phase_of

Ids = Mapping[str, str]
Fetch = Callable[[PixxelPollingOperations[Any], Ids], Any]

log = logging.getLogger(__name__)

# Lists carried in a watch's ids (e.g. an insight package's chosen outputs) are joined with this, so
# ids stay a flat JSON-able mapping of strings that triggers serialize and task_state_store keeps.
LIST_SEPARATOR = ","


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


def param_list(ids: Ids, name: str) -> list[str] | None:
    """A list param carried in ``ids`` (see :attr:`Watchable.params`), or None when absent."""
    parts = [part.strip() for part in str(ids.get(name) or "").split(LIST_SEPARATOR) if part.strip()]
    return parts or None


def insight_selection(ids: Ids) -> dict[str, list[str] | None]:
    """The ``inputs``/``outputs`` an insight package was requested with, to re-send on every read."""
    return {"inputs": param_list(ids, "inputs"), "outputs": param_list(ids, "outputs")}


@dataclass(frozen=True)
class Watchable:
    """One kind of remote resource that operators, sensors and triggers wait on.

    A kind is named by its :class:`~airflow_provider_pixxel.statuses.Resource`: the ``kind`` strings
    operators, sensors and triggers carry are those resources' values (``"job"``, ``"order"``...).
    """

    resource: Resource
    label: str
    id_names: tuple[str, ...]
    fetch: Fetch
    extract: Callable[[Any, Ids], Mapping[str, Any] | None] = _whole
    #: Optional values a watch carries beside its ids and every read re-sends (list values are
    #: joined with :data:`LIST_SEPARATOR`). Absent or empty ones are dropped.
    params: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """The kind as triggers serialize it: the resource's value, a plain string."""
        return str(self.resource.value)

    def check_ids(self, ids: Mapping[str, Any]) -> dict[str, str]:
        """The ids (and given params) this kind needs, as strings; a clear error naming any missing."""
        missing = [name for name in self.id_names if not str(ids.get(name) or "").strip()]
        if missing:
            raise PixxelConfigError(
                f"waiting on a {self.label} needs {', '.join(self.id_names)}; missing or empty: "
                f"{', '.join(missing)}"
            )
        checked = {name: str(ids[name]).strip() for name in self.id_names}
        for name in self.params:
            value = ids.get(name)
            if isinstance(value, (list, tuple)):
                value = LIST_SEPARATOR.join(str(part).strip() for part in value)
            if value is not None and str(value).strip():
                checked[name] = str(value).strip()
        return checked

    def describe(self, ids: Ids) -> str:
        return f"{self.label} " + " / ".join(f"{name}={ids[name]}" for name in self.id_names)


WATCHABLES: dict[Resource, Watchable] = {
    w.resource: w
    for w in (
        Watchable(Resource.AOI, "AOI", ("aoi_id",), lambda ops, ids: ops.get_aoi(ids["aoi_id"])),
        Watchable(
            Resource.VISUALIZATION,
            "visualization",
            ("aoi_id", "visualization_id"),
            lambda ops, ids: ops.list_visualizations(ids["aoi_id"], visualization_id=ids["visualization_id"]),
            _first_match("visualization", "id", "visualization_id"),
        ),
        Watchable(
            Resource.INSIGHT,
            "insight",
            ("aoi_id", "insight_id"),
            lambda ops, ids: ops.list_insights(ids["aoi_id"], id=ids["insight_id"]),
            _first_match("insights", "id", "insight_id"),
        ),
        Watchable(
            Resource.AOI_DOWNLOAD,
            "AOI download",
            ("aoi_id", "download_id"),
            lambda ops, ids: ops.get_aoi_download(ids["aoi_id"], ids["download_id"]),
        ),
        Watchable(
            Resource.CATALOG_DOWNLOAD,
            "catalog download",
            ("download_id",),
            lambda ops, ids: ops.get_catalog_download(ids["download_id"]),
        ),
        Watchable(
            Resource.DELIVERY,
            "delivery",
            ("delivery_id",),
            lambda ops, ids: ops.list_deliveries(delivery_id=ids["delivery_id"]),
            _first_match("deliveries", "delivery_id", "delivery_id"),
        ),
        Watchable(
            Resource.JOB,
            "workflow job",
            ("workflow_id", "job_id"),
            lambda ops, ids: ops.get_job(ids["workflow_id"], ids["job_id"]),
        ),
        Watchable(
            Resource.ORDER_ITEM,
            "order item",
            ("order_item_id",),
            lambda ops, ids: ops.get_order_item(ids["order_item_id"]),
        ),
        Watchable(
            Resource.ORDER,
            "order",
            ("order_id",),
            lambda ops, ids: ops.get_order(ids["order_id"]),
        ),
        Watchable(
            Resource.JOB_PACKAGE,
            "job download package",
            ("workflow_id", "job_id"),
            lambda ops, ids: ops.download_job(ids["workflow_id"], ids["job_id"]),
        ),
        Watchable(
            Resource.TASK_PACKAGE,
            "task download package",
            ("workflow_id", "job_id", "task_id"),
            lambda ops, ids: ops.download_task(ids["workflow_id"], ids["job_id"], ids["task_id"]),
        ),
        Watchable(
            Resource.INSIGHT_PACKAGE,
            "insight download package",
            ("aoi_id", "insight_id"),
            # The package depends on the selection: a read without it would check (or start) another.
            lambda ops, ids: ops.download_insights(
                ids["aoi_id"], ids["insight_id"], **insight_selection(ids)
            ),
            params=("inputs", "outputs"),
        ),
    )
}


def watchable(kind: str) -> Watchable:
    """The one place a kind is looked up: a :class:`Resource` or its value (``"job"``, ``"order"``...).

    Triggers serialized by earlier versions carry these same strings in their kwargs, so a triggerer
    restarted after an upgrade finds every kind it holds.
    """
    try:
        return WATCHABLES[Resource(kind)]
    except (ValueError, KeyError):
        known = ", ".join(sorted(w.kind for w in WATCHABLES.values()))
        raise PixxelConfigError(f"unknown resource kind {kind!r}; expected one of {known}") from None


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
    # Progress is an int, a float or a string depending on the resource (the API is not uniform).
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
    summary = "order items: " + (", ".join(f"{n} {p}" for p, n in sorted(counts.items())) or "none yet")
    unfinished = [item for item in items if phases[str(item.get("id"))] in (Phase.FAILURE, Phase.PARTIAL)]
    return Observation(
        phase=phase,
        status=summary,
        progress=None,
        reason=order_item_reasons(unfinished) if phase in (Phase.FAILURE, Phase.PARTIAL) else None,
        detail={
            "order_item_ids": list(phases),
            "order_status": order.get("status"),
            "unfinished_order_item_ids": [str(item.get("id")) for item in unfinished],
        },
    )


def order_item_reasons(items: Sequence[Mapping[str, Any]]) -> str | None:
    """Why each failed or partial order item ended so: ``order item <id> <STATUS>: <reason>``."""
    reasons = [
        f"order item {item.get('id')} {item.get('status')}: {failure_reason(item, Resource.ORDER_ITEM)}"
        for item in items
        if phase_of(Resource.ORDER_ITEM, item) in (Phase.FAILURE, Phase.PARTIAL)
    ]
    return "; ".join(reasons) or None


def _items_to_explain(kind: str, observation: Observation) -> list[str]:
    """Order items whose own record must be read for a reason: ``GET /v0/orders/{id}`` gives none."""
    if watchable(kind).resource is not Resource.ORDER or observation.phase not in (
        Phase.FAILURE,
        Phase.PARTIAL,
    ):
        return []
    return [str(item_id) for item_id in observation.detail.get("unfinished_order_item_ids") or []]


def _explained(observation: Observation, items: list[Any]) -> Observation:
    reason = order_item_reasons([item for item in items if isinstance(item, Mapping)])
    return replace(observation, reason=reason) if reason else observation


def _unreadable_item(item_id: str, error: PixxelError) -> None:
    # The outcome is already known; a missing reason must not turn it into a polling error.
    log.warning("Could not read order item %s for its failure reason: %s", item_id, error)


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
    if spec.resource is Resource.ORDER:
        return _order_observation(obj)
    phase = phase_of(spec.resource, obj)
    status = obj.get("status")
    reason = failure_reason(obj, spec.resource) if phase in (Phase.FAILURE, Phase.PARTIAL) else None
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
    """Read and classify a resource with the sync hook (a failed order's items are read for reasons)."""
    spec = watchable(kind)
    observation = observe(kind, spec.extract(spec.fetch(hook, ids), ids), ids)
    items: list[Any] = []
    for item_id in _items_to_explain(kind, observation):
        try:
            items.append(hook.get_order_item(item_id))
        except PixxelError as error:
            _unreadable_item(item_id, error)
    return _explained(observation, items)


async def read_async(hook: PixxelPollingOperations[Any], kind: str, ids: Ids) -> Observation:
    """Read and classify a resource with the async hook (a failed order's items are read for reasons)."""
    spec = watchable(kind)
    observation = observe(kind, spec.extract(await spec.fetch(hook, ids), ids), ids)
    items: list[Any] = []
    for item_id in _items_to_explain(kind, observation):
        try:
            items.append(await hook.get_order_item(item_id))
        except PixxelError as error:
            _unreadable_item(item_id, error)
    return _explained(observation, items)
