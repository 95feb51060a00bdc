"""The one sensor behaviour every Pixxel sensor shares.

A poke is one status read classified by the status table. Poke and reschedule modes use Airflow's own
sensor loop; ``deferrable=True`` checks once and then hands the wait to
:class:`~airflow_provider_pixxel.triggers.status.PixxelStatusTrigger`. A terminal failure raises
``AirflowFailException`` (``soft_fail=True`` turns it into a skip, as Airflow's sensor base does).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
)

from airflow_provider_pixxel.compat import default_deferrable
from airflow_provider_pixxel.exceptions import PixxelError
from airflow_provider_pixxel.hooks import DEFAULT_CONN_ID
from airflow_provider_pixxel.utils.lazy_import import lazy_import

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_pixxel import resources, statuses
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook
    from airflow_provider_pixxel.triggers import status as status_trigger
else:
    # Needed once the sensor runs, not while a DAG file is parsed (see utils/lazy_import.py).
    resources = lazy_import("airflow_provider_pixxel.resources")
    statuses = lazy_import("airflow_provider_pixxel.statuses")
    status_trigger = lazy_import("airflow_provider_pixxel.triggers.status")


class PixxelStatusSensor(BaseSensorOperator):
    """Wait until a Pixxel resource of :attr:`watch_kind` is terminal.

    Subclasses name their id arguments after the API fields and list them in :attr:`id_fields`.

    :param allow_partial: succeed on a partial result instead of failing.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    """

    watch_kind: str = ""
    id_fields: Sequence[str] = ()
    template_fields: Sequence[str] = ("pixxel_conn_id",)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        pixxel_conn_id: str = DEFAULT_CONN_ID,
        allow_partial: bool = False,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pixxel_conn_id = pixxel_conn_id
        self.allow_partial = allow_partial
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    @cached_property
    def hook(self) -> PixxelHook:
        # Imported on first use: DAG files import operators, and parsing them needs no HTTP client.
        from airflow_provider_pixxel.hooks.pixxel import PixxelHook

        return PixxelHook(self.pixxel_conn_id)

    def resource_ids(self) -> dict[str, str]:
        return resources.watchable(self.watch_kind).check_ids(
            {name: getattr(self, name) for name in self.id_fields}
        )

    def _judge(self, ids: dict[str, str], phase: statuses.Phase, status: Any, reason: Any) -> bool:
        """True when done, False to keep waiting; raises on a failure."""
        description = resources.watchable(self.watch_kind).describe(ids)
        if phase is statuses.Phase.RUNNING:
            return False
        if phase is statuses.Phase.SUCCESS or (phase is statuses.Phase.PARTIAL and self.allow_partial):
            return True
        hint = " Set allow_partial=True to accept partial results." if phase is statuses.Phase.PARTIAL else ""
        raise AirflowFailException(f"{description} ended with status {status}: {reason}.{hint}")

    def poke(self, context: Context) -> PokeReturnValue | bool:
        ids = self.resource_ids()
        observation: resources.Observation = resources.read_sync(self.hook, self.watch_kind, ids)
        self.log.info("%s is %s", resources.watchable(self.watch_kind).describe(ids), observation.status)
        done = self._judge(ids, observation.phase, observation.status, observation.reason)
        return (
            PokeReturnValue(is_done=True, xcom_value={**ids, "status": observation.status}) if done else False
        )

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        ids = self.resource_ids()
        first = self.poke(context)
        if first:
            return first.xcom_value if isinstance(first, PokeReturnValue) else None
        self.defer(
            trigger=status_trigger.PixxelStatusTrigger(
                kind=self.watch_kind,
                ids=ids,
                pixxel_conn_id=self.pixxel_conn_id,
                poll_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + max(60.0, 2 * self.poke_interval)),
        )

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        event = status_trigger.validate_event(event, kind=self.watch_kind, ids=self.resource_ids())
        ids = event["ids"]
        if event["status"] == "timeout":
            raise AirflowSensorTimeout(
                event.get("message") or f"{resources.watchable(self.watch_kind).describe(ids)} timed out"
            )
        if event["status"] == "error":
            raise PixxelError(event.get("message") or "the Pixxel trigger reported an error")
        self._judge(ids, statuses.Phase(event["status"]), event.get("remote_status"), event.get("reason"))
        return {**ids, "status": event.get("remote_status")}
