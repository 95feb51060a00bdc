"""Coalesced polling: the waits of one event loop on one connection, kind and scope share a poller.

A triggerer runs every deferred wait in one event loop. Polling each on its own sends one request per
wait per interval over a client of its own; here :class:`SharedPoller` collects the waits that are
due, reads them with as few list calls as the API allows
(:func:`~airflow_provider_pixxel.resources.read_many_async`) over the connection's one shared client
(:func:`~airflow_provider_pixxel.hooks.pixxel_async.SharedAsyncHook`), and hands each wait its own
observation or error. Each :class:`~airflow_provider_pixxel.triggers.status.PixxelStatusTrigger`
keeps its own deadline, event, logging and fatal-error handling; nothing of the poller is serialized,
so a restarted triggerer rebuilds it from the triggers it runs.

Rounds run on a grid of the shortest poll interval among the poller's waits, so waits that started
at different moments fall into the same round after their first poll, and a wait whose interval is
longer is simply left out of the rounds it is not due in. Where one list call answers for the waits
(:attr:`~airflow_provider_pixxel.resources.Watchable.list_form`, whose ``rounds_per_interval`` says so:
not the AOI walk, which can cost more) and there are at least two waits' worth of polls per interval,
the grid is half the interval and each wait is read every half interval: two list calls an interval
then cost no more than the waits' own reads would, and a completion is seen within half an interval
instead of a whole one. A wait's last poll, at its deadline, gets a round at
that moment. A rate-limited round (429, after the hook's own retries) holds the whole poller back for
the ``Retry-After`` the API asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_pixxel.exceptions import PixxelApiError, PixxelError
from airflow_provider_pixxel.hooks.retry import RetryPolicy
from airflow_provider_pixxel.resources import Observation, read_many_async, watchable

log = logging.getLogger(__name__)

# Two moments closer than this are one round (float sums of intervals never land exactly).
_SAME_MOMENT = 1e-3

#: How long a new poller waits before its first round (never longer than its interval), so waits
#: started together (a triggerer picking up its triggers after a restart) share that round too.
FIRST_ROUND_GATHER_SECONDS = 0.1

PollerKey = tuple[str, str, tuple[str, ...]]


@dataclass(eq=False)
class Member:
    """One wait in a :class:`SharedPoller`: its ids, its own schedule, and the poll it waits for."""

    ids: dict[str, str]
    interval: float
    #: The wait's deadline on the loop's clock; a poll at or after it is the wait's last.
    deadline: float
    #: When the wait is next due for a poll (loop clock).
    due: float
    #: The moment of the round that served the last poll (loop clock).
    served_at: float = -math.inf
    reply: asyncio.Future[Observation] | None = field(default=None, repr=False)

    @property
    def final(self) -> bool:
        """Whether the last poll was at or after the deadline."""
        return self.served_at >= self.deadline - _SAME_MOMENT


class SharedPoller:
    """Reads every due :class:`Member` of one (connection, kind, scope) in rounds, in one task."""

    def __init__(self, key: PollerKey, hook: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.kind = key[1]
        self.hook = hook
        self.loop = loop
        self.members: set[Member] = set()
        # Members by poll interval (few distinct values): the grid is planned from these counts, so
        # a join or leave costs the same with ten thousand members as with two.
        self._intervals: Counter[float] = Counter()
        self.rounds = 0
        form = watchable(self.kind).list_form
        #: Rounds an interval the kind's list read affords (1 for kinds read one by one).
        self._list_rounds = form.rounds_per_interval if form is not None else 1
        #: Rounds per shortest interval now: :attr:`_list_rounds` or 1 (see :meth:`_replan`).
        self.rounds_per_interval = 1
        self._anchor = loop.time()
        self._period = math.inf
        self._held_until = -math.inf
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- membership -------------------------------------------------------------------------------
    def join(self, member: Member) -> None:
        self.members.add(member)
        self._intervals[member.interval] += 1
        self._replan()
        if self._task is None:
            self._anchor = self.loop.time() + min(FIRST_ROUND_GATHER_SECONDS, member.interval)
            self._task = self.loop.create_task(self._run(), name=f"pixxel-poller-{self.kind}")
        self._wake.set()

    def leave(self, member: Member) -> None:
        if member in self.members:
            self.members.discard(member)
            self._intervals[member.interval] -= 1
            if not self._intervals[member.interval]:
                del self._intervals[member.interval]
        if member.reply is not None and not member.reply.done():
            member.reply.cancel()
        self._replan()

    def _replan(self) -> None:
        """The grid for the current members: the shortest interval, divided by the rounds it holds.

        Waits read with a list call share each round's call, so the poller runs the rounds the kind's
        list affords (:attr:`~airflow_provider_pixxel.resources.ListForm.rounds_per_interval`, two)
        once the members would poll at least that many times an interval on their own (a wait counts
        as the shortest interval over its own: two 3 s waits count 2, a 3 s and a 300 s wait 1.01). A
        lone wait, or a kind read one by one, keeps one round an interval: more rounds would cost
        more reads than polling alone.
        """
        shortest = min(self._intervals, default=math.inf)
        polls_per_interval = sum(count * shortest / interval for interval, count in self._intervals.items())
        afforded = self._list_rounds
        self.rounds_per_interval = afforded if polls_per_interval >= afforded - _SAME_MOMENT else 1
        self._period = shortest / self.rounds_per_interval

    def schedule_next(self, member: Member) -> None:
        """Due again a round's share of its interval after the round that served it (one interval,
        or half of it when the poller runs two rounds an interval), or at its deadline if sooner."""
        member.due = min(member.served_at + member.interval / self.rounds_per_interval, member.deadline)

    async def close(self) -> None:
        """Stop the round task (the last member has left) and wait until it has stopped."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # wait() never raises the task's own CancelledError; a cancel of the caller still does.
            await asyncio.wait([task])

    async def observe(self, member: Member) -> Observation:
        """The member's next observation, read in the first round it is due in (raises its error)."""
        member.reply = self.loop.create_future()
        if self._task is not None and self._task.done():
            # The round task died (its error went to every waiting member): start a new one rather
            # than leave this member waiting on nothing.
            self._task = self.loop.create_task(self._run(), name=f"pixxel-poller-{self.kind}")
        self._wake.set()
        return await member.reply

    # -- rounds -----------------------------------------------------------------------------------
    def _round_time(self, member: Member) -> float:
        """When ``member`` is served: its deadline poll at once, any other at the first grid tick."""
        if member.due >= member.deadline - _SAME_MOMENT:
            return member.due
        if member.due <= self._anchor + _SAME_MOMENT:
            return self._anchor
        return (
            self._anchor + math.ceil((member.due - self._anchor - _SAME_MOMENT) / self._period) * self._period
        )

    async def _run(self) -> None:
        try:
            while True:
                waiting = [m for m in self.members if m.reply is not None and not m.reply.done()]
                if not waiting:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                natural = min(self._round_time(m) for m in waiting)
                moment = max(natural, self._held_until)
                delay = moment - self.loop.time()
                if delay > 0:
                    self._wake.clear()
                    # A new member may need an earlier round: wake for it, then look again.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
                    continue
                due = [m for m in waiting if self._round_time(m) <= moment + _SAME_MOMENT]
                await self._serve(moment, due)
                if moment > natural + _SAME_MOMENT:
                    # A held-back round: the grid starts again from it, so the waits it served
                    # (every one that was due) stay together.
                    self._anchor = moment
        except BaseException as error:
            # Never leave a wait hanging on a poller that stopped (cancelled with its last member,
            # or a bug): each waiting member gets the error, and its trigger handles it as today.
            for member in self.members:
                if member.reply is not None and not member.reply.done():
                    member.served_at = self.loop.time()
                    member.reply.set_exception(
                        error if isinstance(error, Exception) else PixxelError("the shared poller stopped")
                    )
            raise

    async def _serve(self, moment: float, due: list[Member]) -> None:
        self.rounds += 1
        results: list[Any]
        try:
            last_polls = [moment >= m.deadline - _SAME_MOMENT for m in due]
            results = await read_many_async(self.hook, self.kind, [m.ids for m in due], last_polls)
        except Exception as error:  # the list read's own error is every member's error
            results = [error] * len(due)
            self._hold_back(error)
        for member, result in zip(due, results, strict=True):
            member.served_at = moment
            if member.reply is None or member.reply.done():
                continue  # the member left (its trigger was cancelled) while the round ran
            if isinstance(result, BaseException):
                member.reply.set_exception(result)
            else:
                member.reply.set_result(result)

    def _hold_back(self, error: BaseException) -> None:
        """A 429 that outlived the hook's retries: no round before the API's ``Retry-After``."""
        if isinstance(error, PixxelApiError) and error.status == 429:
            cap = RetryPolicy().max_retry_after
            interval = self._period * self.rounds_per_interval
            wait = min(float(error.retry_after or interval), cap)
            self._held_until = self.loop.time() + max(wait, min(interval, cap))
            log.warning(
                "The Pixxel API rate-limited the shared %s poller; its next round is in %.1f s",
                self.kind,
                self._held_until - self.loop.time(),
            )


# One registry per event loop: a loop that is gone takes its pollers with it.
_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PollerKey, SharedPoller]] = (
    weakref.WeakKeyDictionary()
)


def pollers_of(loop: asyncio.AbstractEventLoop) -> dict[PollerKey, SharedPoller]:
    """The pollers running in ``loop``, by (connection, kind, scope)."""
    return _POLLERS.get(loop, {})


class PollerMembership:
    """Join the loop's poller for this wait (created with the connection's shared client if none runs
    yet); leave it on exit, cancellation included, closing it when the last member leaves.

    ``deadline`` is wall-clock (``time.time()``), as triggers serialize it. A class rather than an
    async generator, like :class:`~airflow_provider_pixxel.hooks.pixxel_async.SharedAsyncHook`.
    """

    def __init__(
        self, pixxel_conn_id: str, kind: str, ids: Mapping[str, str], *, interval: float, deadline: float
    ) -> None:
        from airflow_provider_pixxel.hooks.pixxel_async import SharedAsyncHook

        self.key: PollerKey = (pixxel_conn_id, kind, watchable(kind).scope_of(ids))
        self.ids = dict(ids)
        self.interval = interval
        self.deadline = deadline
        self._client = SharedAsyncHook(pixxel_conn_id)
        self._joined: tuple[dict[PollerKey, SharedPoller], SharedPoller, Member] | None = None

    async def __aenter__(self) -> tuple[SharedPoller, Member]:
        hook = await self._client.__aenter__()
        loop = asyncio.get_running_loop()
        pollers = _POLLERS.setdefault(loop, {})
        poller = pollers.get(self.key)
        if poller is None:
            poller = pollers[self.key] = SharedPoller(self.key, hook, loop)
        now = loop.time()
        member = Member(
            ids=self.ids, interval=self.interval, deadline=now + (self.deadline - time.time()), due=now
        )
        poller.join(member)
        self._joined = (pollers, poller, member)
        return poller, member

    async def __aexit__(self, *exc: object) -> None:
        joined, self._joined = self._joined, None
        if joined is None:
            return
        pollers, poller, member = joined
        # The bookkeeping first, with no await: a leave interrupted by the loop's own shutdown must
        # still leave the registries right.
        poller.leave(member)
        last = not poller.members
        if last and pollers.get(self.key) is poller:
            del pollers[self.key]
        try:
            if last:
                await poller.close()
        finally:
            await self._client.__aexit__(*exc)
