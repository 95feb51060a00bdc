"""Wait for a workflow job that something else started."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_pixxel.sensors.base import PixxelStatusSensor


class PixxelJobSensor(PixxelStatusSensor):
    """Wait until a workflow job is terminal: succeed on completion, fail with the remote reason.

    A failed job raises ``AirflowFailException`` naming its failed tasks (``soft_fail=True`` skips
    instead); a partial result fails unless ``allow_partial=True``. Pushes
    ``{"workflow_id", "job_id", "status"}``.

    .. code-block:: python

        wait = PixxelJobSensor(
            task_id="wait_for_job",
            workflow_id="{{ var.value.field_boundaries_workflow }}",
            job_id="{{ ti.xcom_pull('start_job')['job_id'] }}",
            mode="reschedule",
            poke_interval=120,
            timeout=6 * 3600,
        )

    :param workflow_id: the workflow the job belongs to.
    :param job_id: the job to wait for.
    """

    watch_kind = "job"
    id_fields: Sequence[str] = ("workflow_id", "job_id")
    template_fields: Sequence[str] = (*PixxelStatusSensor.template_fields, "workflow_id", "job_id")

    def __init__(self, *, workflow_id: str, job_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workflow_id = workflow_id
        self.job_id = job_id
