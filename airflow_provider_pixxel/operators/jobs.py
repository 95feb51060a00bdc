"""Run a saved Aurora workflow as a job and wait for it.

A job runs the workflow exactly as it is saved in Aurora: the API takes no inputs,
only the workflow and the project. Runs are billable, so the operator prices the workflow first
(``get_workflow_cost_estimate``) and refuses to start it above ``max_cost``; the job's ids are kept in
``task_state_store`` so that a retried task reconnects to its job instead of paying for another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelError
from airflow_provider_pixxel.links import PixxelAuroraJobLink
from airflow_provider_pixxel.operators.base import (
    PixxelResumableOperator,
    check_max_cost,
    refuse_above_max_cost,
)
from airflow_provider_pixxel.operators.purchase import BUDGET_TEMPLATE_FIELDS, PixxelPurchaseMixin
from airflow_provider_pixxel.utils.arguments import require_text
from airflow_provider_pixxel.utils.lazy_import import lazy_import

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_pixxel import resources, statuses
    from airflow_provider_pixxel.triggers import status as status_trigger
else:
    # Needed once the task runs, not while a DAG file is parsed (see utils/lazy_import.py).
    resources = lazy_import("airflow_provider_pixxel.resources")
    statuses = lazy_import("airflow_provider_pixxel.statuses")
    status_trigger = lazy_import("airflow_provider_pixxel.triggers.status")


def describe_job_failure(job: Mapping[str, Any]) -> str:
    """Why a job failed: its own error fields, its validation errors and each failed task's reason."""
    return statuses.failure_reason(job, statuses.Resource.JOB)


class PixxelRunJobOperator(PixxelResumableOperator, PixxelPurchaseMixin):
    """Run a saved Aurora workflow as a job, after checking its price, and wait until it ends.

    The workflow's cost estimate is logged and compared with ``max_cost`` and, with a budget
    (``budget_tokens``), with what the project has left this period, before anything is created;
    with ``pixxel_dry_run`` on, the estimate is pushed to XCom and the task skipped.
    A job the API creates with validation errors fails the task at once, with those errors. The job's
    ids are stored in ``task_state_store`` as soon as it exists, so a retried task reconnects to the
    same job (or returns at once if it already completed) instead of paying for a new one; a job that
    failed is run again on retry.

    A terminal failure raises ``AirflowFailException`` naming the job's errors, validation errors and
    the failed tasks with their ``err_msg``/``failure_type``; a wait that runs out of ``timeout`` raises
    a retryable error, and the retry resumes waiting on the same job.

    Returns ``{"workflow_id", "job_id", "status", "task_ids"}``; download the results with the job and
    task download operators.

    .. code-block:: python

        run = PixxelRunJobOperator(
            task_id="run_field_boundaries",
            workflow_id="{{ var.value.field_boundaries_workflow }}",
            max_cost=200,
            deferrable=True,
        )

    :param workflow_id: the workflow to run (``GET /v0/workflows`` lists them).
    :param project_id: the project the workflow belongs to; defaults to the connection's ``project_id``.
    :param max_cost: the most tokens this run may cost; the task fails before creating the job when
        the estimate is higher. Unset: no limit (the estimate is still logged).
    :param budget_tokens, budget_period: the project's spend budget across runs, see
        :class:`~airflow_provider_pixxel.operators.purchase.PixxelPurchaseMixin`.
    :param wait_for_completion, poll_interval, timeout, deferrable, allow_partial: see
        :class:`~airflow_provider_pixxel.operators.base.PixxelWaitingOperator`.
    """

    operator_extra_links = (PixxelAuroraJobLink(),)
    watch_kind = "job"
    external_id_key = "pixxel_workflow_job"
    template_fields: Sequence[str] = (
        *PixxelResumableOperator.template_fields,
        "workflow_id",
        "project_id",
        "max_cost",
        *BUDGET_TEMPLATE_FIELDS,
    )

    def __init__(
        self,
        *,
        workflow_id: str,
        project_id: str | None = None,
        max_cost: float | None = None,
        budget_tokens: int | str | None = None,
        budget_period: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workflow_id = workflow_id
        self.project_id = project_id
        self.max_cost = max_cost
        self.budget_tokens = budget_tokens
        self.budget_period = budget_period

    def execute(self, context: Context) -> Any:
        # Every argument is checked before the first request, reconnect reads included.
        self.workflow_id = require_text(
            "workflow_id", self.workflow_id, hint="list workflows with PixxelHook.list_workflows()"
        )
        if self.project_id is not None:
            self.project_id = require_text(
                "project_id",
                self.project_id,
                hint="or leave it unset to use the connection's project_id extra",
            )
        check_max_cost(self.max_cost)
        self.budget()
        return super().execute(context)

    def lineage_outputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"workflow/{ids['workflow_id']}/job/{ids['job_id']}"]

    def start(self, context: Context) -> dict[str, str]:
        max_cost = check_max_cost(self.max_cost)
        # Resolved before the (free) estimate so a missing project fails with no request sent at all.
        project_id = self.hook.resolve_project_id(self.project_id)
        estimate = self.hook.get_workflow_cost_estimate(self.workflow_id)
        estimated_cost = estimate.get("estimated_cost") if isinstance(estimate, Mapping) else None
        self.log.info(
            "Workflow %s is estimated to cost %s tokens per run (max_cost=%s)",
            self.workflow_id,
            estimated_cost,
            max_cost,
        )
        price = refuse_above_max_cost(
            estimated_cost,
            max_cost,
            subject=f"a run of workflow {self.workflow_id}",
            consequence="no job was created",
        )
        self.before_purchase(
            context, price, subject=f"a run of workflow {self.workflow_id}", project_ids=[project_id]
        )
        from airflow_provider_pixxel.hooks.reconcile import create_exactly_once, job_lookup

        job = create_exactly_once(
            self.hook,
            lambda: self.hook.create_job(self.workflow_id, project_id=project_id),
            job_lookup(self.hook, self.workflow_id),
            journal=self.creation_journal(context),
        )
        job_id = job.get("id") if isinstance(job, Mapping) else None
        if not job_id:
            # A retry would create another job: a person has to look first.
            raise AirflowFailException(
                f"the API answered the job creation for workflow {self.workflow_id} without a job id; "
                f"look for the job with list_jobs({self.workflow_id!r}) before running again"
            )
        self.log.info(
            "Created job %s of workflow %s (status %s)", job_id, self.workflow_id, job.get("status")
        )
        if job.get("val_errors"):
            # A job with validation errors never runs: waiting on it would only reach the timeout.
            raise AirflowFailException(
                f"workflow job workflow_id={self.workflow_id} / job_id={job_id} was refused with "
                f"validation errors: {statuses.describe_val_errors(job['val_errors'])}. "
                "Fix the workflow in Aurora."
            )
        return {"workflow_id": self.workflow_id, "job_id": str(job_id)}

    def conclude(self, context: Context, event: Any) -> Any:
        checked = status_trigger.validate_event(event, kind=self.watch_kind)
        if checked["status"] == statuses.Phase.FAILURE.value or (
            checked["status"] == statuses.Phase.PARTIAL.value and not self.allow_partial
        ):
            # The event carries the job-level reason only; the tasks' own errors need the whole job.
            ids = checked["ids"]
            description = resources.watchable(self.watch_kind).describe(ids)
            try:
                reason = describe_job_failure(self.hook.get_job(ids["workflow_id"], ids["job_id"]))
            except PixxelError as error:
                reason = f"{checked.get('reason')} (the job's details could not be read: {error})"
            ended = "failed" if checked["status"] == statuses.Phase.FAILURE.value else "ended partially"
            hint = " Set allow_partial=True to accept partial results." if ended != "failed" else ""
            raise AirflowFailException(
                f"{description} {ended} with status {checked.get('remote_status')}: {reason}.{hint}"
            )
        return super().conclude(context, checked)

    def finish(self, context: Context, ids: Mapping[str, str], event: Mapping[str, Any]) -> dict[str, Any]:
        job = self.hook.get_job(ids["workflow_id"], ids["job_id"])
        task_ids = [
            str(task["id"]) for task in job.get("tasks") or [] if isinstance(task, Mapping) and task.get("id")
        ]
        return {
            "workflow_id": ids["workflow_id"],
            "job_id": ids["job_id"],
            "status": event.get("remote_status"),
            "task_ids": task_ids,
        }
