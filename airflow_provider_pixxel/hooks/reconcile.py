"""Creating a resource exactly once over a network that loses answers.

The Pixxel API has no idempotency key; its documentation says not to re-send an order, job or insight
blindly but to check for the created resource first. When the answer to a create request is lost after
the request may have reached the server (a 5xx, a reset after sending, a cut body, a read timeout), the
hook raises :class:`~airflow_provider_pixxel.exceptions.PixxelOutcomeUnknownError` instead of re-sending.
:func:`create_exactly_once` does the checking: before sending it notes which resources that the request
could have made already exist; after such a failure it looks again, over the retry policy's
``settle_delays`` (a server may still be finishing the request), for resources that are new:

* exactly one: the request went through. That resource is adopted (read back in the shape of the
  create's answer) and nothing is sent again;
* more than one: something else created a matching resource at the same moment and there is no telling
  which is ours, so the outcome stays unknown and the error is raised with the candidates' ids;
* none by the end of the settle delays: the request did not go through, and it is sent again, at most
  ``max_retries`` times.

A lookup that itself fails leaves the outcome unknown: the original error is raised.

A worker can also die while the request is on its way, before the answer (and with it the id) is
stored; Airflow's ``ResumableJobMixin`` names that window as its known limitation. With a
:class:`CreationJournal` (``task_state_store`` of the task), :func:`create_exactly_once` records,
before sending, a :class:`Watermark`: the newest creation time among the matching resources (the
server's clock) and the ids created at that instant, a few bytes however many resources exist. The
next try of the task, finding that record, first looks for resources newer than the watermark: one
is adopted without sending anything, several fail the task naming them, none means the request never
arrived and it is sent as usual.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelError, PixxelOutcomeUnknownError
from airflow_provider_pixxel.utils.dates import parse_datetime

if TYPE_CHECKING:
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook

__all__ = [
    "PENDING_CREATION_KEY",
    "CreationJournal",
    "CreationLookup",
    "Watermark",
    "aoi_lookup",
    "create_exactly_once",
    "insight_lookup",
    "job_lookup",
    "order_lookup",
    "store_lookup",
    "visualization_lookup",
]


#: The ``task_state_store`` key of a create request sent by a try that has not stored its answer yet.
PENDING_CREATION_KEY = "pixxel_pending_creation"

#: id -> creation time as the API wrote it (None when a record has none).
Matching = Mapping[str, "str | None"]


@dataclass(frozen=True)
class CreationLookup:
    """Where the resource a create request makes shows up, and how to read it back.

    :param description: what the request creates, for messages (``"a job of workflow wf-1"``).
    :param matching: every existing resource this request could have made: id -> its ``created_at``.
    :param read: one of those resources, shaped like the create request's answer.
    """

    description: str
    matching: Callable[[], Matching]
    read: Callable[[str], Any]


class CreationJournal(Protocol):
    """Where a try notes the create request it is about to send (``task_state_store``)."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


def _instant(text: str | None) -> datetime.datetime | None:
    """A ``created_at`` of any of the API's forms (``T`` or space, ``Z`` or offset) in UTC, or None."""
    if not text:
        return None
    try:
        return parse_datetime(text, field="created_at")
    except PixxelConfigError:
        return None


@dataclass(frozen=True)
class Watermark:
    """What existed before a create was sent, small enough for ``task_state_store``.

    ``latest`` is the newest creation time among the matching resources, ``ids_at_latest`` the ids
    created at exactly that instant. A record without a readable creation time is never taken as new.
    """

    latest: str | None
    ids_at_latest: tuple[str, ...] = ()

    @classmethod
    def of(cls, matching: Matching) -> Watermark:
        instants = {resource_id: _instant(created) for resource_id, created in matching.items()}
        known = [instant for instant in instants.values() if instant is not None]
        if not known:
            return cls(None)
        latest = max(known)
        return cls(
            latest.isoformat(), tuple(sorted(i for i, instant in instants.items() if instant == latest))
        )

    def newer(self, matching: Matching) -> list[str]:
        """The ids in ``matching`` created after this watermark was taken."""
        latest = _instant(self.latest)
        found = []
        for resource_id, created in matching.items():
            instant = _instant(created)
            if instant is None:
                continue
            if (
                latest is None
                or instant > latest
                or (instant == latest and resource_id not in self.ids_at_latest)
            ):
                found.append(resource_id)
        return sorted(found)

    def to_json(self, description: str) -> dict[str, Any]:
        return {"creates": description, "latest": self.latest, "ids_at_latest": list(self.ids_at_latest)}

    @classmethod
    def from_json(cls, value: Any) -> Watermark | None:
        if not isinstance(value, Mapping) or "latest" not in value:
            return None
        return cls(value.get("latest"), tuple(str(i) for i in value.get("ids_at_latest") or ()))


def create_exactly_once(
    hook: PixxelHook,
    send: Callable[[], Any],
    lookup: CreationLookup,
    *,
    journal: CreationJournal | None = None,
) -> Any:
    """``send()`` the create request; after an unknown outcome adopt what it made or send it again.

    :param journal: the task's ``task_state_store``: a try that died with the request on its way is
        resolved by the next one. The caller deletes :data:`PENDING_CREATION_KEY` once it has stored
        the created resource's id.
    :return: the create's answer, or the adopted resource read back in the same shape.
    :raises PixxelOutcomeUnknownError: the resource could not be told apart from another new one, a
        lookup failed, or it was still absent after ``max_retries`` re-sends.
    """
    policy = hook.retry_policy
    existing_before = lookup.matching()
    if journal is not None:
        adopted = _resolve_interrupted_try(hook, lookup, journal, existing_before)
        if adopted is not None:
            return lookup.read(adopted)
        journal.set(PENDING_CREATION_KEY, Watermark.of(existing_before).to_json(lookup.description))
    sends = 0
    while True:
        sends += 1
        try:
            return send()
        except PixxelOutcomeUnknownError as error:
            found = _look_for_new(lookup, frozenset(existing_before), policy.settle_delays, hook.sleep, error)
            if found is not None:
                hook.log.warning(
                    "The answer to the request for %s was lost, but it was made: adopting %s "
                    "instead of sending the request again",
                    lookup.description,
                    found,
                )
                return lookup.read(found)
            if sends > policy.max_retries:
                raise
            hook.log.warning(
                "The answer to the request for %s was lost and nothing new appeared within %.0f s: it "
                "was not made; sending it again (%d of %d)",
                lookup.description,
                sum(policy.settle_delays),
                sends,
                policy.max_retries,
            )


def _resolve_interrupted_try(
    hook: PixxelHook, lookup: CreationLookup, journal: CreationJournal, existing: Matching
) -> str | None:
    """The resource an earlier try sent for but never recorded, if there is exactly one."""
    watermark = Watermark.from_json(journal.get(PENDING_CREATION_KEY))
    if watermark is None:
        return None
    candidates = watermark.newer(existing)
    if len(candidates) == 1:
        hook.log.warning(
            "An earlier try sent the request for %s and stopped before storing the answer; adopting %s, "
            "made since, instead of sending it again",
            lookup.description,
            candidates[0],
        )
        return candidates[0]
    if candidates:
        raise PixxelOutcomeUnknownError(
            f"An earlier try of this task sent the request for {lookup.description} and stopped before "
            f"storing the answer; since then {len(candidates)} matching resources were made "
            f"({', '.join(candidates)}), so which one is this task's cannot be told. Nothing was sent "
            f"again; check them, then clear the task's state (key {PENDING_CREATION_KEY!r}) to go on.",
            method="POST",
            url=lookup.description,
        )
    hook.log.info(
        "An earlier try sent the request for %s but nothing was made since: sending it", lookup.description
    )
    return None


def _look_for_new(
    lookup: CreationLookup,
    existing_before: frozenset[str],
    settle_delays: Sequence[float],
    sleep: Callable[[float], None],
    error: PixxelOutcomeUnknownError,
) -> str | None:
    """The id of the one new matching resource, or None when none appeared during the settle delays."""
    for delay in settle_delays:
        if delay > 0:
            sleep(delay)
        try:
            new_ids = sorted(set(lookup.matching()) - existing_before)
        except PixxelError as lookup_error:
            raise PixxelOutcomeUnknownError(
                f"{error} Looking for {lookup.description} afterwards failed too ({lookup_error}), so "
                "whether it was made is unknown.",
                method=error.method,
                url=error.url,
                cause=error.cause,
            ) from lookup_error
        if len(new_ids) == 1:
            return new_ids[0]
        if len(new_ids) > 1:
            raise PixxelOutcomeUnknownError(
                f"{error} Afterwards {len(new_ids)} new resources match {lookup.description} "
                f"({', '.join(new_ids)}), made at the same time by something else too; which one is this "
                "task's cannot be told, so none is adopted and nothing is sent again.",
                method=error.method,
                url=error.url,
                cause=error.cause,
            )
    return None


# -- lookups, one per kind of create request -------------------------------------------------------


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _records(answer: Any, key: str) -> Iterable[Mapping[str, Any]]:
    records = answer.get(key) if isinstance(answer, Mapping) else None
    return [record for record in records or [] if isinstance(record, Mapping)]


def order_lookup(hook: PixxelHook, order_items: Sequence[Mapping[str, Any]]) -> CreationLookup:
    """Orders whose items are in the request's projects, as many as requested, with the names asked for.

    Orders carry no name of their own, so they are found through their order items.
    """
    projects = sorted({str(item["project_id"]) for item in order_items if item.get("project_id")})
    wanted_names = Counter(str(item["name"]) for item in order_items if item.get("name"))

    def matching() -> dict[str, str | None]:
        items_by_order: dict[str, list[Mapping[str, Any]]] = {}
        for item in hook.iter_order_items(project_ids=",".join(projects)):
            order_id = _text(item.get("order_id"))
            if order_id is not None:
                items_by_order.setdefault(order_id, []).append(item)
        return {
            order_id: min((_text(item.get("created_at")) or "" for item in items), default="") or None
            for order_id, items in items_by_order.items()
            if len(items) == len(order_items)
            and not wanted_names - Counter(str(item["name"]) for item in items if item.get("name"))
        }

    return CreationLookup(
        f"an order of {len(order_items)} item(s) in project(s) {', '.join(projects)}",
        matching,
        lambda order_id: hook.get_order(order_id),
    )


def _by_id(records: Iterable[Mapping[str, Any]], id_field: str = "id") -> dict[str, str | None]:
    return {str(r[id_field]): _text(r.get("created_at")) for r in records if r.get(id_field)}


def job_lookup(hook: PixxelHook, workflow_id: str) -> CreationLookup:
    """Jobs of the workflow (a job request has no body: the workflow is all that tells them apart)."""

    def matching() -> dict[str, str | None]:
        return _by_id(_records(hook.list_jobs(workflow_id), "jobs"))

    return CreationLookup(
        f"a job of workflow {workflow_id}", matching, lambda job_id: hook.get_job(workflow_id, job_id)
    )


def insight_lookup(hook: PixxelHook, aoi_id: str, *, name: str | None, block_name: str) -> CreationLookup:
    """Insights on the AOI with the request's name (when it has one), not deleted."""

    def matching() -> dict[str, str | None]:
        return _by_id(
            insight
            for insight in _records(hook.list_insights(aoi_id), "insights")
            if not insight.get("deleted_at") and (name is None or insight.get("name") == name)
        )

    def read(insight_id: str) -> dict[str, str]:
        # The create's answer is only {id, message}: the id is all there is to adopt.
        return {"id": insight_id}

    return CreationLookup(f"an insight {name or block_name!r} on AOI {aoi_id}", matching, read)


def aoi_lookup(hook: PixxelHook, name: str) -> CreationLookup:
    """AOIs named exactly ``name`` (AOI names are unique)."""

    def matching() -> dict[str, str | None]:
        return _by_id((aoi for aoi in hook.iter_aois(aoi_name=name) if aoi.get("name") == name), "aoi_id")

    return CreationLookup(f"an AOI named {name!r}", matching, lambda aoi_id: hook.get_aoi(aoi_id))


def visualization_lookup(hook: PixxelHook, aoi_id: str, index_id: str) -> CreationLookup:
    """Visualizations of the index on the AOI."""

    def matching() -> dict[str, str | None]:
        return _by_id(hook.iter_visualizations(aoi_id, index_id=index_id))

    def read(visualization_id: str) -> Any:
        found = _records(hook.list_visualizations(aoi_id, visualization_id=visualization_id), "visualization")
        return next(iter(found), {"id": visualization_id})

    return CreationLookup(f"a visualization of index {index_id} on AOI {aoi_id}", matching, read)


def store_lookup(hook: PixxelHook, name: str) -> CreationLookup:
    """Stores named exactly ``name`` (store names are unique)."""

    def stores() -> dict[str, Mapping[str, Any]]:
        return {
            str(store["id"]): store
            for store in _records(hook.list_stores(), "stores")
            if store.get("name") == name and store.get("id")
        }

    def read(store_id: str) -> Mapping[str, Any]:
        return stores()[store_id]

    return CreationLookup(f"a store named {name!r}", lambda: _by_id(stores().values()), read)
