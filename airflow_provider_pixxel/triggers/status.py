"""The provider's one polling loop: wait until a Pixxel resource reaches a terminal status.

:class:`PixxelStatusTrigger` runs in the triggerer for deferrable operators and sensors, and inline
(:func:`wait_inline`) for non-deferrable operators, so every wait behaves the same way:

* one shared poller per connection, kind and scope in an event loop (:mod:`.poller`): due waits are
  read together with the API's list calls over one HTTP client; a connection with the extra
  ``batch_polling: false`` gives each wait its own client and reads instead. Either way each poll goes
  through the async hook's retry policy;
* a wall-clock deadline (``time.time()``), with one last poll at the deadline before a timeout is
  declared;
* a sleep between polls on every path, errors included (a 500 never turns into a busy loop);
* state changes logged once each, with progress where the API gives it (in steps of
  :data:`PROGRESS_LOG_STEP` percent);
* an event that :func:`validate_event` checks when the task resumes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_pixxel.exceptions import (
    PixxelApiError,
    PixxelAuthError,
    PixxelConfigError,
    PixxelError,
    PixxelNotFoundError,
    PixxelValidationError,
)
from airflow_provider_pixxel.hooks.pagination import unexpected_answer
from airflow_provider_pixxel.resources import SHAPE_ERRORS, Observation, read_async, watchable
from airflow_provider_pixxel.statuses import Phase

EVENT_STATUSES = frozenset({"success", "partial", "failure", "timeout", "error"})

#: Progress is logged when it enters a new step of this many percent (and on every status change):
#: a long job polled every few seconds would otherwise log a line per poll, in the task log and in
#: the triggerer's CPU (10,000 waits log 10,000 lines a round).
PROGRESS_LOG_STEP = 10.0

# Errors no amount of polling fixes: report them at once instead of polling until the deadline.
_FATAL_ERRORS = (PixxelAuthError, PixxelNotFoundError, PixxelValidationError, PixxelConfigError)


def _wrong_shape(description: str, error: Exception) -> PixxelApiError:
    return unexpected_answer(
        f"the answer for {description} is not shaped as the API documents it "
        f"({type(error).__name__}: {str(error)[:200]})"
    )


class _Reader(Protocol):
    """How one wait polls: its own reads (:class:`_OwnReads`) or a shared poller (:class:`_SharedReads`)."""

    @property
    def final(self) -> bool:
        """Whether the last read was at or after the deadline (the wait's last poll)."""

    async def read(self) -> Observation: ...

    async def pause(self) -> None: ...


class _OwnReads:
    """One client and one read per poll for this wait alone (``batch_polling: false``)."""

    def __init__(self, hook: Any, trigger: PixxelStatusTrigger) -> None:
        self.hook = hook
        self.trigger = trigger
        self.final = False

    async def read(self) -> Observation:
        self.final = time.time() >= self.trigger.deadline
        return await read_async(self.hook, self.trigger.kind, self.trigger.ids)

    async def pause(self) -> None:
        trigger = self.trigger
        await asyncio.sleep(max(0.0, min(trigger.poll_interval, trigger.deadline - time.time())))


class _SharedReads:
    """Polls served by the loop's shared poller for this connection, kind and scope."""

    def __init__(self, poller: Any, member: Any) -> None:
        self.poller = poller
        self.member = member

    @property
    def final(self) -> bool:
        return bool(self.member.final)

    async def read(self) -> Observation:
        observation: Observation = await self.poller.observe(self.member)
        return observation

    async def pause(self) -> None:
        # The wait itself happens in the next read(), in the round this member is next due in.
        self.poller.schedule_next(self.member)


class _ReaderContext:
    """The shared poller of this loop, connection, kind and scope; or reads of the wait's own when
    the connection says ``batch_polling: false``. A class rather than an async generator (see
    :class:`~airflow_provider_pixxel.hooks.pixxel_async.SharedAsyncHook`)."""

    def __init__(self, trigger: PixxelStatusTrigger) -> None:
        self.trigger = trigger
        self._inner: Any = None

    async def __aenter__(self) -> _Reader:
        # Imported here: DAG files import this module (through operators) and never need httpx.
        from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook
        from airflow_provider_pixxel.triggers.poller import PollerMembership

        trigger = self.trigger
        hook = PixxelAsyncHook(trigger.pixxel_conn_id)
        if not (await hook.get_settings()).batch_polling:
            self._inner = hook
            return _OwnReads(await hook.__aenter__(), trigger)
        self._inner = PollerMembership(
            trigger.pixxel_conn_id,
            trigger.kind,
            trigger.ids,
            interval=trigger.poll_interval,
            deadline=trigger.deadline,
        )
        poller, member = await self._inner.__aenter__()
        return _SharedReads(poller, member)

    async def __aexit__(self, *exc: object) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            await inner.__aexit__(*exc)


class PixxelStatusTrigger(BaseTrigger):
    """Poll one Pixxel resource until it is terminal, the deadline passes, or a fatal error occurs.

    :param kind: a key of :data:`airflow_provider_pixxel.resources.WATCHABLES` (``"job"``, ``"order"``...).
    :param ids: the ids that kind needs, e.g. ``{"workflow_id": ..., "job_id": ...}``.
    :param pixxel_conn_id: the Airflow connection.
    :param poll_interval: seconds between polls.
    :param deadline: wall-clock time (``time.time()``) after which the wait ends with ``timeout``.
    :param stop_on_kill: cancel the remote work when a user kills the task (insights only: the API
        offers no other way to stop work).
    :param project_id: needed by the stop call for insights.
    """

    def __init__(
        self,
        *,
        kind: str,
        ids: Mapping[str, str],
        pixxel_conn_id: str = "pixxel_default",
        poll_interval: float = 30.0,
        deadline: float,
        stop_on_kill: bool = False,
        project_id: str | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.ids = watchable(kind).check_ids(ids)
        self.pixxel_conn_id = pixxel_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline)
        self.stop_on_kill = stop_on_kill
        self.project_id = project_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "kind": self.kind,
                "ids": dict(self.ids),
                "pixxel_conn_id": self.pixxel_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "stop_on_kill": self.stop_on_kill,
                "project_id": self.project_id,
            },
        )

    def _event(self, status: str, **fields: Any) -> TriggerEvent:
        return TriggerEvent({"status": status, "kind": self.kind, "ids": dict(self.ids), **fields})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        spec = watchable(self.kind)
        description = spec.describe(self.ids)
        last: Observation | None = None
        logged: tuple[str | None, float | None] | None = None
        last_error: PixxelError | None = None
        async with self._reader() as reader:
            while True:
                try:
                    observation = await reader.read()
                except _FATAL_ERRORS as error:
                    yield self._event("error", message=str(error))
                    return
                except (PixxelError, *SHAPE_ERRORS) as error:
                    # Already retried by the hook: log, sleep and poll again until the deadline. An
                    # answer of the wrong shape is treated the same: the next one may be right.
                    last_error = error if isinstance(error, PixxelError) else _wrong_shape(description, error)
                    self.log.warning("Could not read %s (will poll again): %s", description, last_error)
                else:
                    last_error = None
                    if _log_key(observation) != logged:
                        self._log_change(description, observation)
                        logged = _log_key(observation)
                    last = observation
                    if observation.phase.terminal:
                        yield self._event(observation.phase.value, **observation.as_event())
                        return
                if reader.final:
                    seen = f"; the last poll failed: {last_error}" if last_error is not None else ""
                    yield self._event(
                        "timeout",
                        message=f"{description} is still {last.status if last else 'unknown'!s} "
                        f"after the wait's deadline{seen}",
                        **(last.as_event() if last else {}),
                    )
                    return
                await reader.pause()

    def _reader(self) -> _ReaderContext:
        return _ReaderContext(self)

    def _log_change(self, description: str, observation: Observation) -> None:
        progress = "" if observation.progress is None else f" ({observation.progress:g}%)"
        self.log.info("%s is %s%s", description, observation.status, progress)

    async def on_kill(self) -> None:
        if not (self.stop_on_kill and self.kind == "insight"):
            return
        from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook

        async with PixxelAsyncHook(self.pixxel_conn_id) as hook:
            await hook.delete_insights(self.ids["aoi_id"], self.ids["insight_id"], project_id=self.project_id)
        self.log.info("Deleted insight %s after the task was killed", self.ids["insight_id"])


def _log_key(observation: Observation) -> tuple[str | None, float | None]:
    """What a logged line shows of an observation: its status and its progress step."""
    progress = observation.progress
    step = None if progress is None else math.floor(progress / PROGRESS_LOG_STEP)
    return observation.status, step


def validate_event(event: Any, *, kind: str, ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Check a trigger event before acting on it; anything unexpected fails loudly."""
    if not isinstance(event, Mapping):
        raise PixxelError(f"Pixxel trigger returned {type(event).__name__} instead of an event dict")
    status = event.get("status")
    if status not in EVENT_STATUSES:
        raise PixxelError(
            f"Pixxel trigger event has a missing or unknown status {status!r}; expected one of "
            f"{', '.join(sorted(EVENT_STATUSES))}"
        )
    if event.get("kind") != kind:
        raise PixxelError(f"Pixxel trigger event is for {event.get('kind')!r}, expected {kind!r}")
    if ids is not None and dict(event.get("ids") or {}) != dict(ids):
        raise PixxelError(f"Pixxel trigger event is for ids {event.get('ids')}, expected {dict(ids)}")
    if status in ("success", "partial", "failure") and event.get("phase") != status:
        raise PixxelError(
            f"Pixxel trigger event is inconsistent: status {status!r}, phase {event.get('phase')!r}"
        )
    return dict(event)


async def _first_event(trigger: BaseTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise PixxelError("Pixxel trigger ended without an event")


def wait_inline(trigger: PixxelStatusTrigger) -> dict[str, Any]:
    """Run the trigger's loop in this process (non-deferrable waits) and return its event."""
    return asyncio.run(_first_event(trigger))


def phase_from_event(event: Mapping[str, Any]) -> Phase | None:
    """The terminal phase an event reports, or None for timeout/error events."""
    try:
        return Phase(event["status"])
    except (KeyError, ValueError):
        return None
