"""What every Pixxel operator shares: the hook, waiting on remote work, and never paying twice.

:class:`PixxelBaseOperator` gives a lazily created hook (nothing touches the API while a DAG file is
parsed). :class:`PixxelWaitingOperator` starts remote work and waits for it the same way everywhere:
check once, finish at once if already terminal, otherwise defer to
:class:`~airflow_provider_pixxel.triggers.status.PixxelStatusTrigger` or run that same loop inline.
:class:`PixxelResumableOperator` adds Airflow 3.3's ``ResumableJobMixin``: the remote ids are kept in
``task_state_store`` the moment they exist, so a retried or restarted task reconnects to its order or
job instead of buying it again.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_pixxel.compat import default_deferrable
from airflow_provider_pixxel.exceptions import (
    PixxelConfigError,
    PixxelError,
    PixxelOutcomeUnknownError,
    PixxelWaitTimeoutError,
)
from airflow_provider_pixxel.hooks import DEFAULT_CONN_ID
from airflow_provider_pixxel.lineage import PixxelLineageMixin
from airflow_provider_pixxel.links import IDS_XCOM_KEY
from airflow_provider_pixxel.utils.lazy_import import lazy_import

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_pixxel import resources, statuses
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook
    from airflow_provider_pixxel.hooks.reconcile import CreationJournal
    from airflow_provider_pixxel.triggers import status as status_trigger
else:
    # Needed once the task runs, not while a DAG file is parsed (see utils/lazy_import.py).
    resources = lazy_import("airflow_provider_pixxel.resources")
    statuses = lazy_import("airflow_provider_pixxel.statuses")
    status_trigger = lazy_import("airflow_provider_pixxel.triggers.status")

try:  # Airflow 3.3+
    from airflow.sdk import ResumableJobMixin
except ImportError:  # pragma: no cover - exercised on the Airflow floor only
    from airflow_provider_pixxel.compat import ResumableJobMixin  # type: ignore[assignment]

DEFAULT_POLL_INTERVAL = 30.0
DEFAULT_TIMEOUT = 7 * 24 * 3600.0


def check_max_cost(max_cost: Any, *, field: str = "max_cost") -> float | None:
    """``max_cost`` as a number of tokens, or None for no limit.

    None or an empty (templated) string means no limit; a number or numeric text must be finite and
    above zero. Anything else is a :class:`PixxelConfigError` raised before any API call.
    """
    if max_cost is None or (isinstance(max_cost, str) and not max_cost.strip()):
        return None
    number: float | None = None
    if isinstance(max_cost, numbers.Real) and not isinstance(max_cost, bool):
        number = float(max_cost)
    elif isinstance(max_cost, str):
        try:
            number = float(max_cost.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise PixxelConfigError(
            f"{field} must be a positive number of tokens, got {max_cost!r}; leave it unset for no limit"
        )
    return number


def refuse_above_max_cost(
    price: Any, max_cost: float | None, *, subject: str, consequence: str, field: str = "max_cost"
) -> float | None:
    """Fail the task (nothing bought) when ``price`` is above ``max_cost`` or cannot be compared with it.

    :param price: what the API quoted (dry run, cost estimate, insight estimate).
    :param max_cost: from :func:`check_max_cost`; None means no limit.
    :param subject: what is priced, e.g. ``"workflow wf-1"``.
    :param consequence: what was therefore not done, e.g. ``"no job was created"``.
    :return: the price as a number, or None when the API gave none (accepted only without a limit).
    """
    usable = isinstance(price, numbers.Real) and not isinstance(price, bool) and math.isfinite(float(price))
    amount = float(price) if usable else None
    if max_cost is None:
        return amount
    if amount is None:
        raise AirflowFailException(
            f"the API gave no usable price for {subject} ({price!r}), so {field}={max_cost:g} cannot be "
            f"checked; {consequence}"
        )
    if amount > max_cost:
        raise AirflowFailException(
            f"{subject} is priced at {amount:g} tokens, more than {field}={max_cost:g}; {consequence}. "
            f"Raise {field} to go ahead."
        )
    return amount


class PixxelBaseOperator(BaseOperator):
    """Base of every Pixxel operator: a connection id and a hook created on first use."""

    template_fields: Sequence[str] = ("pixxel_conn_id",)
    ui_color = "#e8f1fb"

    def __init__(self, *, pixxel_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pixxel_conn_id = pixxel_conn_id

    @cached_property
    def hook(self) -> PixxelHook:
        # Imported on first use: DAG files import operators, and parsing them needs no HTTP client.
        from airflow_provider_pixxel.hooks.pixxel import PixxelHook

        return PixxelHook(self.pixxel_conn_id)


class PixxelWaitingOperator(PixxelLineageMixin, PixxelBaseOperator):
    """An operator that starts remote work of kind :attr:`watch_kind` and (optionally) waits for it.

    Subclasses implement :meth:`start` (create the remote work, return its ids) and may override
    :meth:`finish` (what to return once it succeeded; by default the ids).

    :param wait_for_completion: wait until the remote work is terminal (default True).
    :param poll_interval: seconds between status reads.
    :param timeout: seconds to wait before failing with a retryable timeout (default 7 days).
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param allow_partial: accept a partial result (``partial_success``, ``PARTIALLY_FULFILLED``).
    """

    watch_kind: str = ""
    stop_on_kill: bool = False

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        deferrable: bool | None = None,
        allow_partial: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.allow_partial = allow_partial

    # -- to implement --------------------------------------------------------------------------------

    def start(self, context: Context) -> dict[str, str]:
        raise NotImplementedError(f"{type(self).__name__} must implement start()")

    def finish(self, context: Context, ids: Mapping[str, str], event: Mapping[str, Any]) -> Any:
        """The task's return value (XCom) once the work succeeded: small JSON."""
        return {**ids, "status": event.get("remote_status")}

    def project_id_for_stop(self) -> str | None:
        return None

    def creation_journal(self, context: Context) -> CreationJournal | None:
        """Where a create request is noted before it is sent: only resumable operators have one."""
        return None

    # -- the shared flow -----------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        if self.wait_for_completion:
            # Refused before start(): a bad wait setting must not leave paid-for work unwatched.
            self.check_timing()
        ids = self.start_once(context)
        self.remember_ids(context, ids)
        return self.wait_for(context, ids)

    def start_once(self, context: Context) -> dict[str, str]:
        """:meth:`start`, never followed by an Airflow retry when the create may have gone through.

        The hook does not re-send a create whose outcome is unknown (a cut answer, a 5xx); an Airflow
        retry would re-send it all the same, so such a failure ends the task for a person to check.
        """
        try:
            return self.start(context)
        except PixxelOutcomeUnknownError as error:
            raise AirflowFailException(
                f"{error} This task is not retried automatically, so nothing is created twice."
            ) from error

    def remember_ids(self, context: Context, ids: Mapping[str, str]) -> None:
        """Push the remote ids to XCom as soon as they exist (extra links read them there)."""
        self.lineage_ids = dict(ids)
        context["ti"].xcom_push(key=IDS_XCOM_KEY, value=dict(ids))

    def check_timing(self) -> None:
        if self.poll_interval <= 0:
            raise PixxelConfigError(
                f"poll_interval must be a positive number of seconds, got {self.poll_interval}"
            )
        if self.timeout <= 0:
            raise PixxelConfigError(f"timeout must be a positive number of seconds, got {self.timeout}")

    def wait_for(self, context: Context, ids: Mapping[str, str]) -> Any:
        """Check once; return at once if terminal, else defer or wait inline with the same trigger."""
        if not self.wait_for_completion:
            return {**ids, "status": None}
        self.check_timing()
        spec = resources.watchable(self.watch_kind)
        observation = resources.read_sync(self.hook, self.watch_kind, ids)
        self.log.info("%s is %s", spec.describe(ids), observation.status)
        if observation.phase.terminal:
            event = {"status": observation.phase.value, "kind": self.watch_kind, "ids": dict(ids)}
            event.update(observation.as_event())
            return self.conclude(context, event)
        trigger = status_trigger.PixxelStatusTrigger(
            kind=self.watch_kind,
            ids=ids,
            pixxel_conn_id=self.pixxel_conn_id,
            poll_interval=self.poll_interval,
            deadline=time.time() + self.timeout,
            stop_on_kill=self.stop_on_kill,
            project_id=self.project_id_for_stop(),
        )
        if self.deferrable:
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                # A little beyond the trigger's own deadline: the trigger reports the timeout itself.
                timeout=timedelta(seconds=self.timeout + max(60.0, 2 * self.poll_interval)),
            )
        return self.conclude(context, status_trigger.wait_inline(trigger))

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Resume after deferral: validate the event, then conclude as the inline path does."""
        return self.conclude(context, event)

    def conclude(self, context: Context, event: Any) -> Any:
        event = status_trigger.validate_event(event, kind=self.watch_kind)
        ids = event["ids"]
        # A task resumed after deferral is a new operator instance: its lineage comes from the event.
        self.lineage_ids = dict(ids)
        description = resources.watchable(self.watch_kind).describe(ids)
        status = event["status"]
        if status == statuses.Phase.SUCCESS.value:
            return self.finish(context, ids, event)
        if status == statuses.Phase.PARTIAL.value:
            if self.allow_partial:
                self.log.warning(
                    "%s ended partially (%s); accepted as allow_partial=True",
                    description,
                    event.get("reason"),
                )
                return self.finish(context, ids, event)
            raise AirflowFailException(
                f"{description} ended partially ({event.get('remote_status')}): {event.get('reason')}. "
                "Set allow_partial=True to accept partial results."
            )
        if status == statuses.Phase.FAILURE.value:
            # AirflowFailException: a dead remote job does not come back by retrying the task.
            raise AirflowFailException(
                f"{description} failed with status {event.get('remote_status')}: {event.get('reason')}"
            )
        if status == "timeout":
            raise PixxelWaitTimeoutError(
                f"{description} was still {event.get('remote_status')} when the {self.timeout:g} s wait "
                "ran out. Retrying the task resumes waiting on the same resource."
            )
        raise PixxelError(f"waiting on {description} failed: {event.get('message')}")

    def on_kill(self) -> None:
        ids = getattr(self, "_killable_ids", None)
        if self.stop_on_kill and ids:
            self.stop_remote_work(ids)

    def stop_remote_work(self, ids: Mapping[str, str]) -> None:
        """Stop remote work when the task is killed; only kinds whose API offers a stop override it."""


class PixxelResumableOperator(ResumableJobMixin, PixxelWaitingOperator):
    """A waiting operator whose created resource survives task retries and worker crashes.

    ``task_state_store`` (Airflow 3.3+) keeps the remote ids; a retry reconnects to running work,
    returns at once for succeeded work, and creates anew only after a terminal failure.
    """

    external_id_key = "pixxel_resource_ids"

    def execute(self, context: Context) -> Any:
        if self.wait_for_completion:
            # Refused before start(): a bad wait setting must not leave paid-for work unwatched.
            self.check_timing()
        return self.execute_resumable(context)

    def creation_journal(self, context: Context) -> CreationJournal | None:
        """The ``task_state_store`` that ``create_exactly_once`` notes a request in before sending it."""
        return context.get("task_state_store") if self.durable else None

    def submit_job(self, context: Context) -> Any:
        from airflow_provider_pixxel.hooks.reconcile import PENDING_CREATION_KEY

        store = self.creation_journal(context)
        try:
            ids = self.start_once(context)
        except Exception as error:
            unknown = isinstance(error, PixxelOutcomeUnknownError) or isinstance(
                error.__cause__, PixxelOutcomeUnknownError
            )
            if store is not None and not unknown:
                # Answered (or refused, or never sent): a later try must not look for what it made.
                store.delete(PENDING_CREATION_KEY)
            raise
        if store is not None:
            # The ids go in before the pending request comes out (the mixin stores them once more), so
            # at no moment is neither recorded: a try killed in between still finds one of them.
            store.set(self.external_id_key, dict(ids))
            store.delete(PENDING_CREATION_KEY)
        self.remember_ids(context, ids)
        self._killable_ids = ids
        return ids

    def get_job_status(self, external_id: Any, context: Context) -> str:
        ids = resources.watchable(self.watch_kind).check_ids(external_id)
        return resources.read_sync(self.hook, self.watch_kind, ids).phase.value

    def is_job_active(self, status: str) -> bool:
        return status == statuses.Phase.RUNNING.value

    def is_job_succeeded(self, status: str) -> bool:
        return status == statuses.Phase.SUCCESS.value or (
            self.allow_partial and status == statuses.Phase.PARTIAL.value
        )

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        ids = resources.watchable(self.watch_kind).check_ids(external_id)
        # A reconnecting try starts with no XCom of its own: extra links and lineage read the ids there.
        self.remember_ids(context, ids)
        self._killable_ids = ids
        self._result = self.wait_for(context, ids)
        return self._result

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        if hasattr(self, "_result"):
            return self._result
        # Reached when a retry finds the work already succeeded: read it once more to build the result.
        ids = resources.watchable(self.watch_kind).check_ids(external_id)
        self.log.info(
            "%s already succeeded in an earlier try; not creating it again",
            resources.watchable(self.watch_kind).describe(ids),
        )
        self.remember_ids(context, ids)
        observation = resources.read_sync(self.hook, self.watch_kind, ids)
        event = {
            "status": observation.phase.value,
            "kind": self.watch_kind,
            "ids": dict(ids),
            **observation.as_event(),
        }
        return self.conclude(context, event)
