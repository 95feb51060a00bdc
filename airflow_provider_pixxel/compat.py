"""Stand-ins for Airflow features newer than the provider's floor (3.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf
from airflow.sdk.bases.operator import BaseOperatorMeta

if TYPE_CHECKING:
    from airflow.sdk import Context


class ResumableJobMixin:
    """``airflow.sdk.ResumableJobMixin`` for Airflow < 3.3, which has no ``task_state_store``.

    Same interface and the same flow on a first try: submit, poll, build the result. Without a task
    state store a retry cannot find the earlier try's remote ids, so it warns that crash recovery
    needs Airflow 3.3.
    """

    external_id_key: str = "remote_job_id"

    # Wrapped like Airflow's own mixin, so operator arguments flow through Airflow's default_args
    # handling whichever class in the MRO receives them first.
    @BaseOperatorMeta._apply_defaults  # type: ignore[type-var]
    def __init__(self, *, durable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.durable = durable

    def execute_resumable(self, context: Context) -> Any:
        if self.durable:
            self.log.warning(  # type: ignore[attr-defined]
                "This Airflow has no task_state_store (3.3+): a retried task cannot reconnect to the "
                "remote work an earlier try created"
            )
        external_id = self.submit_job(context)
        self.poll_until_complete(external_id, context)
        return self.get_job_result(external_id, context)

    def submit_job(self, context: Context) -> Any:
        raise NotImplementedError

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        raise NotImplementedError

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        raise NotImplementedError


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read when a task is built (not once at import)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)
