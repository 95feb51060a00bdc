"""The status vocabulary of every Pixxel resource, and the only place that classifies a status.

Operators, sensors and triggers ask :func:`phase_of` (or :func:`classify`) whether a resource is done,
failed, partially done or still running. Values are compared case-insensitively and include the
aliases the docs show beside the spec's enums (``COMPLETED`` for ``FULFILLED``,
``SUCCESSFUL`` for ``SUCCESS``...). A status nobody documented counts as still running, and is logged
once, so a wait times out rather than declaring a wrong outcome.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class Phase(str, enum.Enum):
    """Where a remote resource stands."""

    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILURE = "failure"

    @property
    def terminal(self) -> bool:
        return self is not Phase.RUNNING


class Resource(str, enum.Enum):
    """The kinds of Pixxel resources that carry a status: also the kinds operators, sensors and triggers
    wait on (:data:`airflow_provider_pixxel.resources.WATCHABLES` is keyed by them)."""

    AOI = "aoi"
    ASSET = "asset"
    VISUALIZATION = "visualization"
    AOI_DOWNLOAD = "aoi_download"
    CATALOG_DOWNLOAD = "catalog_download"
    DELIVERY = "delivery"
    ORDER = "order"
    ORDER_ITEM = "order_item"
    ORDER_ITEM_TASK = "order_item_task"
    JOB = "job"
    JOB_TASK = "job_task"
    INSIGHT = "insight"
    DOWNLOAD_PACKAGE = "download_package"
    # The download packages of one job, one job task and one insight: three endpoints (each read with
    # its own ids), one status vocabulary.
    JOB_PACKAGE = "job_package"
    TASK_PACKAGE = "task_package"
    INSIGHT_PACKAGE = "insight_package"


DOWNLOAD_PACKAGES = frozenset(
    {Resource.DOWNLOAD_PACKAGE, Resource.JOB_PACKAGE, Resource.TASK_PACKAGE, Resource.INSIGHT_PACKAGE}
)


@dataclass(frozen=True)
class StatusTable:
    """Status values of one resource, lower-cased, by phase."""

    success: frozenset[str]
    failure: frozenset[str]
    partial: frozenset[str] = frozenset()
    running: frozenset[str] = frozenset()

    def classify(self, status: str) -> Phase | None:
        value = status.strip().lower()
        for phase, values in (
            (Phase.SUCCESS, self.success),
            (Phase.FAILURE, self.failure),
            (Phase.PARTIAL, self.partial),
            (Phase.RUNNING, self.running),
        ):
            if value in values:
                return phase
        return None


def _table(success: str, failure: str, partial: str = "", running: str = "") -> StatusTable:
    def words(text: str) -> frozenset[str]:
        return frozenset(text.lower().split())

    return StatusTable(words(success), words(failure), words(partial), words(running))


# The free-string dexter statuses (jobs, tasks, insights) have only documented examples; the extra
# spellings are the usual ones for those words (inferred, not documented).
_DEXTER = _table(
    success="completed complete success succeeded successful done finished",
    failure="failed failure error errored cancelled canceled aborted killed rejected",
    partial="partial_success partially_completed",
    running="running pending queued created started submitted in_progress processing scheduled",
)

_ORDER_ITEM = _table(
    success="fulfilled completed",
    failure="failed cancelled canceled",
    partial="partially_fulfilled partially_completed",
    running="active draft",
)
_DOWNLOAD_PACKAGE = _table(
    success="ready success completed",
    failure="failed error",
    running="pending created in_progress processing preparing",
)

STATUS_TABLES: Mapping[Resource, StatusTable] = {
    Resource.AOI: _table(
        success="success", failure="failed", partial="partial_success", running="started running updating"
    ),
    Resource.ASSET: _table(success="success", failure="failed", running="started creating"),
    Resource.VISUALIZATION: _table(
        success="success", failure="failed", partial="partial_success", running="creating"
    ),
    Resource.AOI_DOWNLOAD: _table(
        success="success successful completed ready",
        failure="failed failure error",
        running="created pending in_progress started running processing",
    ),
    Resource.CATALOG_DOWNLOAD: _table(success="success", failure="failed", running="created in_progress"),
    # UNSPECIFIED is what a catalog or task without a configured delivery reports: nothing to wait on
    # yet, so it stays "running" and a wait on it times out rather than succeeding.
    Resource.DELIVERY: _table(
        success="success successful",
        failure="failed",
        running="unspecified created in_progress",
    ),
    # DRAFT items are not placed or paid and will not move by themselves: a wait on one times out
    # with the status named in the error.
    Resource.ORDER_ITEM: _ORDER_ITEM,
    # An order's own status is its payment (PAID, UNPAID): how far along it is, is how far its order
    # items are, each read with this table (see resources.observe).
    Resource.ORDER: _ORDER_ITEM,
    Resource.ORDER_ITEM_TASK: _table(
        success="fulfilled completed",
        failure="failed cancelled canceled expired",
        partial="partially_fulfilled partially_completed",
        running="draft submitted in_progress",
    ),
    Resource.JOB: _DEXTER,
    Resource.JOB_TASK: _DEXTER,
    Resource.INSIGHT: _DEXTER,
    **dict.fromkeys(DOWNLOAD_PACKAGES, _DOWNLOAD_PACKAGE),
}

_logged_unknown: set[tuple[Resource, str]] = set()
_logged_lock = threading.Lock()


def classify(resource: Resource, status: str | None) -> Phase:
    """The phase of ``status`` for ``resource``; unknown or missing values count as running."""
    if status is None or not str(status).strip():
        return Phase.RUNNING
    phase = STATUS_TABLES[resource].classify(str(status))
    if phase is not None:
        return phase
    key = (resource, str(status).strip().lower())
    with _logged_lock:
        first_time = key not in _logged_unknown
        _logged_unknown.add(key)
    if first_time:
        log.warning("Unknown %s status %r: treating it as still in progress", resource.value, str(status))
    return Phase.RUNNING


def _has_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def phase_of(resource: Resource, payload: Mapping[str, Any]) -> Phase:
    """The phase of a resource from its API object: its status plus the secondary signals the API gives.

    * a non-empty ``err_msg`` / ``failure_type`` on a dexter object (job, task, insight) means failure;
    * downloads are successful only once their ``signed_url`` is there (no file before it), and a
      download package with a signed URL but an undocumented status counts as ready;
    * an insight with ``deleted_at`` set was deleted: a failure for whoever waits on it.
    """
    status = payload.get("status")
    phase = classify(resource, status)
    if resource in (Resource.JOB, Resource.JOB_TASK, Resource.INSIGHT):
        if phase is not Phase.SUCCESS and (
            _has_text(payload.get("err_msg")) or _has_text(payload.get("failure_type"))
        ):
            return Phase.FAILURE
        if resource is Resource.INSIGHT and payload.get("deleted_at"):
            return Phase.FAILURE
    if resource in (Resource.AOI_DOWNLOAD, Resource.CATALOG_DOWNLOAD) or resource in DOWNLOAD_PACKAGES:
        has_url = _has_text(payload.get("signed_url"))
        if phase is Phase.SUCCESS and not has_url:
            return Phase.RUNNING
        if (
            resource in DOWNLOAD_PACKAGES
            and phase is Phase.RUNNING
            and has_url
            and STATUS_TABLES[resource].classify(str(status or "")) is None
        ):
            return Phase.SUCCESS
    return phase


_REASON_FIELDS = ("err_msg", "failure_type", "state_msg", "message")
_VAL_ERROR_FIELDS = ("component_name", "from", "to", "err", "reason")
# Reasons end up in task logs and exception texts: a runaway stack trace must not drown the rest.
MAX_REASON_TEXT = 200


def _short(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_REASON_TEXT else text[: MAX_REASON_TEXT - 1] + "…"


def _val_error_text(error: Any) -> str:
    if not isinstance(error, Mapping):
        return _short(error)
    parts = [f"{key}={_short(error[key])}" for key in _VAL_ERROR_FIELDS if error.get(key)]
    if parts:
        return "(" + ", ".join(parts) + ")"
    # Order items give ``{"<field>": ["<problem>", ...]}``.
    return ", ".join(
        f"{field}: {_short('; '.join(map(str, problems)) if isinstance(problems, list) else problems)}"
        for field, problems in error.items()
    )


def describe_val_errors(val_errors: Any) -> str:
    """Validation errors of a workflow or job (``[{component_name, err, reason...}]``), one entry each."""
    if not isinstance(val_errors, (list, tuple)):
        val_errors = [val_errors]
    return "; ".join(_val_error_text(error) for error in val_errors)


def _task_failure(task: Mapping[str, Any], task_resource: Resource) -> str:
    name = str(task.get("name") or task.get("id"))
    details = [f"{key}={_short(task[key])}" for key in _REASON_FIELDS if _has_text(task.get(key))]
    if task_resource is Resource.ORDER_ITEM_TASK:
        # Capture/archive tasks carry no error text; their status (EXPIRED, CANCELLED...) and type are it.
        details = [str(value) for value in (task.get("type"), task.get("status")) if value] + details
    return f"{name} ({', '.join(details)})" if details else name


def failure_reason(payload: Mapping[str, Any], resource: Resource | None = None) -> str:
    """The remote reason for a failure, from whatever fields the resource carries, kept short.

    Failed sub-tasks are named with their own ``err_msg``/``failure_type``/``state_msg``. An order
    item's ``tasks`` are capture/archive tasks (``FAILED``, ``EXPIRED``...), classified with their own
    table; any other resource's ``tasks`` are workflow tasks.
    """
    parts = [f"{key}={_short(payload[key])}" for key in _REASON_FIELDS if _has_text(payload.get(key))]
    if payload.get("val_errors"):
        parts.append(f"val_errors: {describe_val_errors(payload['val_errors'])}")
    if payload.get("validation_errors"):
        parts.append(f"validation_errors: {describe_val_errors(payload['validation_errors'])}")
    task_resource = Resource.ORDER_ITEM_TASK if resource is Resource.ORDER_ITEM else Resource.JOB_TASK
    failed_tasks = [
        _task_failure(task, task_resource)
        for task in payload.get("tasks") or []
        if isinstance(task, Mapping)
        and task.get("status") is not None
        and phase_of(task_resource, task) is Phase.FAILURE
    ]
    if failed_tasks:
        parts.append(f"failed tasks: {'; '.join(failed_tasks)}")
    return "; ".join(parts) or "no reason given by the API"
