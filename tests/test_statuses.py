"""The status vocabulary: every table, aliases, case-insensitivity, unknown values and secondary signals."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_pixxel import statuses
from airflow_provider_pixxel.statuses import (
    MAX_REASON_TEXT,
    STATUS_TABLES,
    Phase,
    Resource,
    classify,
    failure_reason,
    phase_of,
)

S, F, P, R = Phase.SUCCESS, Phase.FAILURE, Phase.PARTIAL, Phase.RUNNING

# (resource, status, phase): the spec's enums, and the spellings the Pixxel docs use for each
# resource's statuses.
DOCUMENTED = [
    (Resource.AOI, "success", S),
    (Resource.AOI, "failed", F),
    (Resource.AOI, "partial_success", P),
    (Resource.AOI, "started", R),
    (Resource.AOI, "running", R),
    (Resource.AOI, "updating", R),
    (Resource.ASSET, "success", S),
    (Resource.ASSET, "failed", F),
    (Resource.ASSET, "started", R),
    (Resource.ASSET, "creating", R),
    (Resource.VISUALIZATION, "success", S),
    (Resource.VISUALIZATION, "failed", F),
    (Resource.VISUALIZATION, "partial_success", P),
    (Resource.VISUALIZATION, "creating", R),
    (Resource.AOI_DOWNLOAD, "SUCCESS", S),
    (Resource.AOI_DOWNLOAD, "success", S),
    (Resource.AOI_DOWNLOAD, "failed", F),
    (Resource.AOI_DOWNLOAD, "in_progress", R),
    (Resource.CATALOG_DOWNLOAD, "success", S),
    (Resource.CATALOG_DOWNLOAD, "failed", F),
    (Resource.CATALOG_DOWNLOAD, "created", R),
    (Resource.CATALOG_DOWNLOAD, "in_progress", R),
    (Resource.DELIVERY, "SUCCESS", S),
    (Resource.DELIVERY, "SUCCESSFUL", S),
    (Resource.DELIVERY, "FAILED", F),
    (Resource.DELIVERY, "CREATED", R),
    (Resource.DELIVERY, "IN_PROGRESS", R),
    (Resource.DELIVERY, "UNSPECIFIED", R),
    (Resource.ORDER_ITEM, "FULFILLED", S),
    (Resource.ORDER_ITEM, "COMPLETED", S),
    (Resource.ORDER_ITEM, "FAILED", F),
    (Resource.ORDER_ITEM, "CANCELLED", F),
    (Resource.ORDER_ITEM, "PARTIALLY_FULFILLED", P),
    (Resource.ORDER_ITEM, "PARTIALLY_COMPLETED", P),
    (Resource.ORDER_ITEM, "ACTIVE", R),
    (Resource.ORDER_ITEM, "DRAFT", R),
    (Resource.ORDER_ITEM_TASK, "FULFILLED", S),
    (Resource.ORDER_ITEM_TASK, "COMPLETED", S),
    (Resource.ORDER_ITEM_TASK, "FAILED", F),
    (Resource.ORDER_ITEM_TASK, "CANCELLED", F),
    (Resource.ORDER_ITEM_TASK, "EXPIRED", F),
    (Resource.ORDER_ITEM_TASK, "PARTIALLY_FULFILLED", P),
    (Resource.ORDER_ITEM_TASK, "SUBMITTED", R),
    (Resource.ORDER_ITEM_TASK, "IN_PROGRESS", R),
    (Resource.ORDER_ITEM_TASK, "DRAFT", R),
    (Resource.JOB, "completed", S),
    (Resource.JOB, "succeeded", S),
    (Resource.JOB, "failed", F),
    (Resource.JOB, "error", F),
    (Resource.JOB, "cancelled", F),
    (Resource.JOB, "canceled", F),
    (Resource.JOB, "aborted", F),
    (Resource.JOB, "running", R),
    (Resource.JOB, "pending", R),
    (Resource.JOB_TASK, "completed", S),
    (Resource.JOB_TASK, "failed", F),
    (Resource.JOB_TASK, "running", R),
    (Resource.INSIGHT, "completed", S),
    (Resource.INSIGHT, "failed", F),
    (Resource.INSIGHT, "running", R),
    (Resource.DOWNLOAD_PACKAGE, "ready", S),
    (Resource.DOWNLOAD_PACKAGE, "pending", R),
    (Resource.DOWNLOAD_PACKAGE, "failed", F),
]


@pytest.mark.parametrize(("resource", "status", "phase"), DOCUMENTED, ids=lambda v: getattr(v, "value", v))
def test_documented_statuses(resource: Resource, status: str, phase: Phase) -> None:
    assert classify(resource, status) is phase


@pytest.mark.parametrize(("resource", "status", "phase"), DOCUMENTED, ids=lambda v: getattr(v, "value", v))
def test_comparison_ignores_case_and_surrounding_space(resource: Resource, status: str, phase: Phase) -> None:
    assert classify(resource, f"  {status.swapcase()} ") is phase
    assert classify(resource, status.upper()) is phase
    assert classify(resource, status.lower()) is phase


def test_every_resource_has_a_table_and_tables_do_not_overlap() -> None:
    assert set(STATUS_TABLES) == set(Resource)
    for resource, table in STATUS_TABLES.items():
        groups = [table.success, table.failure, table.partial, table.running]
        assert table.success, resource
        assert table.failure, resource
        for index, group in enumerate(groups):
            for other in groups[index + 1 :]:
                assert not group & other, (resource, group & other)


def test_only_running_is_not_terminal() -> None:
    assert [phase for phase in Phase if not phase.terminal] == [Phase.RUNNING]


@pytest.mark.parametrize("status", [None, "", "   "])
def test_missing_status_counts_as_running(status: str | None) -> None:
    assert classify(Resource.JOB, status) is Phase.RUNNING


def test_unknown_status_is_running_and_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statuses, "_logged_unknown", set())
    caplog.set_level(logging.WARNING, logger=statuses.__name__)
    assert classify(Resource.JOB, "Teleporting") is Phase.RUNNING
    assert classify(Resource.JOB, "teleporting ") is Phase.RUNNING
    assert classify(Resource.INSIGHT, "teleporting") is Phase.RUNNING
    warnings = [r.getMessage() for r in caplog.records if r.name == statuses.__name__]
    assert warnings == [
        "Unknown job status 'Teleporting': treating it as still in progress",
        "Unknown insight status 'teleporting': treating it as still in progress",
    ]


def test_a_status_of_one_resource_is_not_assumed_for_another(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statuses, "_logged_unknown", set())
    assert classify(Resource.ORDER_ITEM_TASK, "EXPIRED") is Phase.FAILURE
    assert classify(Resource.ORDER_ITEM, "EXPIRED") is Phase.RUNNING


# -- phase_of: secondary signals -----------------------------------------------------------------------


@pytest.mark.parametrize("resource", [Resource.JOB, Resource.JOB_TASK, Resource.INSIGHT])
@pytest.mark.parametrize("field", ["err_msg", "failure_type"])
def test_an_error_message_means_failure(resource: Resource, field: str) -> None:
    assert phase_of(resource, {"status": "running", field: "OOM"}) is Phase.FAILURE
    assert phase_of(resource, {"status": "running", field: "  "}) is Phase.RUNNING
    assert phase_of(resource, {"status": "completed", field: "warning only"}) is Phase.SUCCESS


def test_a_deleted_insight_is_a_failure() -> None:
    assert (
        phase_of(Resource.INSIGHT, {"status": "running", "deleted_at": "2025-01-01T00:00:00Z"})
        is Phase.FAILURE
    )
    assert phase_of(Resource.INSIGHT, {"status": "running", "deleted_at": None}) is Phase.RUNNING


@pytest.mark.parametrize(
    ("resource", "status"),
    [
        (Resource.AOI_DOWNLOAD, "SUCCESS"),
        (Resource.CATALOG_DOWNLOAD, "success"),
        (Resource.DOWNLOAD_PACKAGE, "ready"),
    ],
)
def test_downloads_succeed_only_with_a_signed_url(resource: Resource, status: str) -> None:
    assert phase_of(resource, {"status": status}) is Phase.RUNNING
    assert phase_of(resource, {"status": status, "signed_url": ""}) is Phase.RUNNING
    assert phase_of(resource, {"status": status, "signed_url": "https://b/f?sig=1"}) is Phase.SUCCESS


def test_a_package_with_a_url_and_an_undocumented_status_is_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statuses, "_logged_unknown", set())
    assert (
        phase_of(Resource.DOWNLOAD_PACKAGE, {"status": "packaged", "signed_url": "https://b/f"})
        is Phase.SUCCESS
    )
    assert (
        phase_of(Resource.DOWNLOAD_PACKAGE, {"status": "pending", "signed_url": "https://b/f"})
        is Phase.RUNNING
    )
    assert (
        phase_of(Resource.AOI_DOWNLOAD, {"status": "packaged", "signed_url": "https://b/f"}) is Phase.RUNNING
    )


def test_other_resources_use_the_status_alone() -> None:
    assert phase_of(Resource.ORDER_ITEM, {"status": "FULFILLED", "err_msg": "ignored"}) is Phase.SUCCESS
    assert phase_of(Resource.AOI, {"status": "failed"}) is Phase.FAILURE


# -- failure_reason ----------------------------------------------------------------------------------------


def test_failure_reason_gathers_every_field() -> None:
    payload: dict[str, Any] = {
        "err_msg": " out of memory ",
        "failure_type": "infra",
        "state_msg": "killed",
        "message": "see logs",
        "val_errors": [{"field": "aoi"}],
        "tasks": [
            {"name": "ingest", "status": "completed"},
            {"name": "ndvi", "status": "failed"},
            {"id": "task-3", "status": "error"},
            {"name": "no-status"},
            "not a task",
        ],
    }
    assert failure_reason(payload) == (
        "err_msg=out of memory; failure_type=infra; state_msg=killed; message=see logs; "
        "val_errors: field: aoi; failed tasks: ndvi; task-3"
    )


def test_failure_reason_without_any_field() -> None:
    assert failure_reason({"status": "failed", "err_msg": ""}) == "no reason given by the API"


def test_failure_reason_names_each_failed_job_task_with_its_error() -> None:
    job = {
        "status": "failed",
        "tasks": [
            {"name": "ingest", "status": "completed"},
            {"name": "ndvi", "status": "failed", "err_msg": "out of memory", "failure_type": "OOMKilled"},
            {"name": "mask", "status": "running", "err_msg": "bad band"},
        ],
    }
    assert failure_reason(job, Resource.JOB) == (
        "failed tasks: ndvi (err_msg=out of memory, failure_type=OOMKilled); mask (err_msg=bad band)"
    )


def test_failure_reason_classifies_order_item_tasks_with_their_own_table() -> None:
    # EXPIRED ends a capture task (clerk.TaskStatus) but is no word a workflow task uses.
    item = {
        "status": "FAILED",
        "validation_errors": [{"capture": ["persistent cloud cover"]}],
        "tasks": [
            {"id": "t1", "type": "TASKING", "status": "EXPIRED"},
            {"id": "t2", "type": "TASKING", "status": "FULFILLED"},
        ],
    }
    assert failure_reason(item, Resource.ORDER_ITEM) == (
        "validation_errors: capture: persistent cloud cover; failed tasks: t1 (TASKING, EXPIRED)"
    )
    assert "failed tasks" not in failure_reason(item, Resource.JOB)


def test_failure_reason_keeps_each_text_short() -> None:
    reason = failure_reason({"err_msg": "Traceback " + "x" * 5000}, Resource.JOB)
    assert reason.startswith("err_msg=Traceback x")
    assert len(reason) <= len("err_msg=") + MAX_REASON_TEXT
