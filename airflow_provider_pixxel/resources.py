"""What can be waited on, how to read it, and how far along it is.

Each :class:`Watchable` says which API call reads one remote resource and how to pick the object out
of the answer. The call goes through ``PixxelPollingOperations``, so one description serves the sync
hook (sensor pokes, an operator's first check) and the async hook (the trigger's polling loop).
:func:`observe` classifies the object with the status table in :mod:`airflow_provider_pixxel.statuses`.

A kind the API can list many of at once also has a :class:`ListForm`: :func:`read_many_async` reads
every watched resource of one scope (one workflow's jobs, any number of order items...) with as few
list calls as the API allows, and falls back to each resource's own read for what a list leaves out.
Kinds read one by one have no list the poller could use: a delivery wait carries only its delivery id,
and ``GET /v0/catalogs/deliveries`` filters by one id at a time and is unpaged; downloads and download
packages have no list call at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast
from urllib.parse import quote

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelError, PixxelNotFoundError
from airflow_provider_pixxel.hooks.operations import PixxelPollingOperations
from airflow_provider_pixxel.hooks.pagination import (
    DEFAULT_PAGE_SIZE,
    aiter_offset_pages,
    aiter_pages,
    page_object,
    paginated_list_page,
)
from airflow_provider_pixxel.statuses import Phase, Resource, failure_reason, phase_of

Ids = Mapping[str, str]
Fetch = Callable[[PixxelPollingOperations[Any], Ids], Any]

log = logging.getLogger(__name__)

# Lists carried in a watch's ids (e.g. an insight package's chosen outputs) are joined with this, so
# ids stay a flat JSON-able mapping of strings that triggers serialize and task_state_store keeps.
LIST_SEPARATOR = ","


def _first_match(key: str, id_field: str, id_name: str) -> Callable[[Any, Ids], Mapping[str, Any] | None]:
    """Pick the object whose ``id_field`` equals ``ids[id_name]`` from the list at ``answer[key]``."""

    def extract(answer: Any, ids: Ids) -> Mapping[str, Any] | None:
        for item in (answer or {}).get(key) or []:
            if isinstance(item, Mapping) and str(item.get(id_field)) == str(ids[id_name]):
                return item
        return None

    return extract


# What reading an answer of the wrong shape raises (a list where an object is documented...).
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)

#: The most characters of ids one ``GET /v0/order-items?ids=`` (or ``?order_ids=``) read sends
#: (URL-encoded, commas included). Servers and proxies commonly refuse request lines over 8 KiB
#: (nginx's default ``large_client_header_buffers``, Apache's ``LimitRequestLine`` of 8190); half of
#: that leaves room for the path and the other parameters. About a hundred UUIDs fit.
MAX_IDS_QUERY_CHARS = 4000
#: The most ids one list read asks for (and so an ``ids=`` read's page size): the pager's default.
MAX_IDS_PER_LIST_READ = DEFAULT_PAGE_SIZE
#: Single reads one batch runs at the same time (the shared client bounds requests in flight too).
SINGLE_READ_CONCURRENCY = 8

#: Page size of the AOI list walk. ListAOIs documents no maximum ``limit`` (its default is 10) and
#: the simulator enforces none; the pager's default (``PixxelHook.iter_aois`` pages by it too) keeps a
#: page of AOIs, geometries included, far below the hook's response size cap.
AOI_LIST_PAGE_SIZE = DEFAULT_PAGE_SIZE

ListRead = Callable[[PixxelPollingOperations[Any], Ids, Sequence[str]], Awaitable[list[Any]]]
Combine = Callable[[str, list[Mapping[str, Any]]], Mapping[str, Any]]


@dataclass(frozen=True)
class ListForm:
    """How many resources of one kind are read at once.

    ``scope`` names the ids every resource of one list call shares (a job list is per workflow);
    ``key`` names the id that tells them apart, found in each listed object's ``item_id_field``.
    ``read(ops, scope_ids, keys)`` returns the listed objects for those keys (it may return more, or
    fewer: a key left out is read on its own). A listed object whose phase is in ``confirm`` is read
    on its own as well, because the list form lacks what the event reports for it (a failed job's
    reason lives in its tasks, which the job list leaves out).

    Where one resource is listed as several objects (an order as its order items, each carrying the
    ``order_id``), ``combine(key, objects)`` builds from the objects sharing one key the object
    :func:`observe` reads for that resource. Without it a key's first listed object is the resource.
    """

    scope: tuple[str, ...]
    key: str
    read: ListRead
    item_id_field: str = "id"
    confirm: frozenset[Phase] = field(default_factory=frozenset)
    combine: Combine | None = None
    #: The list lacks part of what a running resource's event reports (an order's own payment
    #: status): a wait's last poll, whose timeout event reports the resource as it then is, is read
    #: on its own.
    last_poll_alone: bool = False
    #: Rounds an interval a shared poller may run for waits of this kind (see
    #: :mod:`airflow_provider_pixxel.triggers.poller`): two where one list call answers for every
    #: wait of a round, one where a round can cost more than the waits' own reads would (the AOI walk
    #: pages the account's AOIs and reads what it did not reach on its own).
    rounds_per_interval: int = 2

    def resource_of(self, key: str, objects: list[Mapping[str, Any]]) -> Mapping[str, Any]:
        """The object standing for the resource ``key`` among the listed ``objects`` sharing it."""
        return self.combine(key, objects) if self.combine is not None else objects[0]


async def _workflow_jobs(ops: PixxelPollingOperations[Any], scope: Ids, keys: Sequence[str]) -> list[Any]:
    # listJobs has no paging: one call answers for every job of the workflow.
    return page_object(await ops.list_jobs(scope["workflow_id"]), "jobs")[1]


async def _aoi_insights(ops: PixxelPollingOperations[Any], scope: Ids, keys: Sequence[str]) -> list[Any]:
    # The insight list has no paging either; the single read is this same call filtered by id.
    return page_object(await ops.list_insights(scope["aoi_id"]), "insights")[1]


async def _aoi_visualizations(
    ops: PixxelPollingOperations[Any], scope: Ids, keys: Sequence[str]
) -> list[Any]:
    pages = aiter_offset_pages(
        lambda offset, limit: ops.list_visualizations(scope["aoi_id"], offset=offset, limit=limit),
        paginated_list_page("visualization"),
    )
    return [item async for item in pages]


async def _account_aois(ops: PixxelPollingOperations[Any], scope: Ids, keys: Sequence[str]) -> list[Any]:
    """The AOIs ``keys`` name, as far as a bounded walk of ``GET /v0/aois`` finds them.

    ListAOIs filters by one ``aoi_id`` at most, so reading many means paging through the account's
    AOIs. The walk stops as soon as every wanted AOI was seen, and after ``ceil(n / page size) + 1``
    pages for ``n`` wanted AOIs in any case; those it did not reach are read on their own. So a round
    costs at most that many pages more than single reads would (an account with thousands of AOIs
    whose watched ones sit past the budget), and usually ``ceil(n / page size)`` calls instead of ``n``.
    """
    wanted = set(keys)
    budget = math.ceil(len(wanted) / AOI_LIST_PAGE_SIZE) + 1
    found: list[Any] = []
    pages = aiter_pages(
        lambda offset, limit: ops.list_aois(offset=offset, limit=limit),
        paginated_list_page("aois"),
        page_size=AOI_LIST_PAGE_SIZE,
    )
    # Closed at once on an early stop (aiter_pages is an async generator), not whenever it is
    # collected: the walk never asks for a page past the one it stopped at.
    async with contextlib.aclosing(cast(AsyncGenerator[Sequence[Any], None], pages)):
        read = 0
        async for page in pages:
            read += 1
            for aoi in page:
                if isinstance(aoi, Mapping) and str(aoi.get("aoi_id")) in wanted:
                    wanted.discard(str(aoi["aoi_id"]))
                    found.append(aoi)
            if not wanted or read >= budget:
                break
    return found


def id_chunks(keys: Sequence[str]) -> list[list[str]]:
    """``keys`` in groups that each fit one ``ids=`` or ``order_ids=`` filter of the order-item list
    (:data:`MAX_IDS_PER_LIST_READ` ids and :data:`MAX_IDS_QUERY_CHARS` characters once URL-encoded, a
    comma being ``%2C``)."""
    chunks: list[list[str]] = []
    chunk: list[str] = []
    length = 0
    for key in dict.fromkeys(keys):
        size = len(quote(key, safe="")) + 3
        if chunk and (len(chunk) >= MAX_IDS_PER_LIST_READ or length + size > MAX_IDS_QUERY_CHARS):
            chunks.append(chunk)
            chunk, length = [], 0
        chunk.append(key)
        length += size
    if chunk:
        chunks.append(chunk)
    return chunks


def _order_items_page(
    ops: PixxelPollingOperations[Any], where: Mapping[str, Any], offset: int, limit: int
) -> Awaitable[Any]:
    return ops.list_order_items(**where, offset=offset, limit=limit)  # type: ignore[no-any-return]


async def _order_items_where(
    filter_name: str, ops: PixxelPollingOperations[Any], scope: Ids, keys: Sequence[str]
) -> list[Any]:
    """Every order item whose ``filter_name`` (``ids`` or ``order_ids``) is one of ``keys``."""
    found: list[Any] = []
    for chunk in id_chunks(keys):
        # An ``ids=`` chunk asks for one page's worth, an ``order_ids=`` chunk for any number of items
        # (an order has one or more). Paged through either way: a server that caps ``limit`` lower
        # than asked still answers for every id, and an order's items may span pages.
        pages = aiter_offset_pages(
            functools.partial(_order_items_page, ops, {filter_name: chunk}),
            paginated_list_page("order_items"),
            page_size=len(chunk) if filter_name == "ids" else MAX_IDS_PER_LIST_READ,
        )
        found.extend([item async for item in pages])
    return found


def _order_of_items(order_id: str, items: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    # The order as _order_observation reads it. The item list lacks the order's own fields: its
    # payment status stays unknown until the order's own read, which confirms every terminal phase
    # and serves a wait's last poll (so a timeout event reports it too).
    return {"id": order_id, "order_items": items}


def _whole(answer: Any, ids: Ids) -> Mapping[str, Any] | None:
    return answer if isinstance(answer, Mapping) else None


def param_list(ids: Ids, name: str) -> list[str] | None:
    """A list param carried in ``ids`` (see :attr:`Watchable.params`), or None when absent."""
    parts = [part.strip() for part in str(ids.get(name) or "").split(LIST_SEPARATOR) if part.strip()]
    return parts or None


def insight_selection(ids: Ids) -> dict[str, list[str] | None]:
    """The ``inputs``/``outputs`` an insight package was requested with, to re-send on every read."""
    return {"inputs": param_list(ids, "inputs"), "outputs": param_list(ids, "outputs")}


@dataclass(frozen=True)
class Watchable:
    """One kind of remote resource that operators, sensors and triggers wait on.

    A kind is named by its :class:`~airflow_provider_pixxel.statuses.Resource`: the ``kind`` strings
    operators, sensors and triggers carry are those resources' values (``"job"``, ``"order"``...).
    """

    resource: Resource
    label: str
    id_names: tuple[str, ...]
    fetch: Fetch
    extract: Callable[[Any, Ids], Mapping[str, Any] | None] = _whole
    #: Optional values a watch carries beside its ids and every read re-sends (list values are
    #: joined with :data:`LIST_SEPARATOR`). Absent or empty ones are dropped.
    params: tuple[str, ...] = ()
    #: How the API lists many of this kind at once (None: each is read on its own).
    list_form: ListForm | None = None

    def scope_of(self, ids: Ids) -> tuple[str, ...]:
        """The ids one list read of this kind shares (empty for kinds read one by one)."""
        return tuple(ids[name] for name in self.list_form.scope) if self.list_form else ()

    @property
    def kind(self) -> str:
        """The kind as triggers serialize it: the resource's value, a plain string."""
        return str(self.resource.value)

    def check_ids(self, ids: Mapping[str, Any]) -> dict[str, str]:
        """The ids (and given params) this kind needs, as strings; a clear error naming any missing."""
        missing = [name for name in self.id_names if not str(ids.get(name) or "").strip()]
        if missing:
            raise PixxelConfigError(
                f"waiting on a {self.label} needs {', '.join(self.id_names)}; missing or empty: "
                f"{', '.join(missing)}"
            )
        checked = {name: str(ids[name]).strip() for name in self.id_names}
        for name in self.params:
            value = ids.get(name)
            if isinstance(value, (list, tuple)):
                value = LIST_SEPARATOR.join(str(part).strip() for part in value)
            if value is not None and str(value).strip():
                checked[name] = str(value).strip()
        return checked

    def describe(self, ids: Ids) -> str:
        return f"{self.label} " + " / ".join(f"{name}={ids[name]}" for name in self.id_names)


WATCHABLES: dict[Resource, Watchable] = {
    w.resource: w
    for w in (
        Watchable(
            Resource.AOI,
            "AOI",
            ("aoi_id",),
            lambda ops, ids: ops.get_aoi(ids["aoi_id"]),
            list_form=ListForm((), "aoi_id", _account_aois, item_id_field="aoi_id", rounds_per_interval=1),
        ),
        Watchable(
            Resource.VISUALIZATION,
            "visualization",
            ("aoi_id", "visualization_id"),
            lambda ops, ids: ops.list_visualizations(ids["aoi_id"], visualization_id=ids["visualization_id"]),
            _first_match("visualization", "id", "visualization_id"),
            list_form=ListForm(("aoi_id",), "visualization_id", _aoi_visualizations),
        ),
        Watchable(
            Resource.INSIGHT,
            "insight",
            ("aoi_id", "insight_id"),
            lambda ops, ids: ops.list_insights(ids["aoi_id"], id=ids["insight_id"]),
            _first_match("insights", "id", "insight_id"),
            list_form=ListForm(("aoi_id",), "insight_id", _aoi_insights),
        ),
        Watchable(
            Resource.AOI_DOWNLOAD,
            "AOI download",
            ("aoi_id", "download_id"),
            lambda ops, ids: ops.get_aoi_download(ids["aoi_id"], ids["download_id"]),
        ),
        Watchable(
            Resource.CATALOG_DOWNLOAD,
            "catalog download",
            ("download_id",),
            lambda ops, ids: ops.get_catalog_download(ids["download_id"]),
        ),
        Watchable(
            Resource.DELIVERY,
            "delivery",
            ("delivery_id",),
            lambda ops, ids: ops.list_deliveries(delivery_id=ids["delivery_id"]),
            _first_match("deliveries", "delivery_id", "delivery_id"),
        ),
        Watchable(
            Resource.JOB,
            "workflow job",
            ("workflow_id", "job_id"),
            lambda ops, ids: ops.get_job(ids["workflow_id"], ids["job_id"]),
            list_form=ListForm(
                ("workflow_id",), "job_id", _workflow_jobs, confirm=frozenset({Phase.FAILURE, Phase.PARTIAL})
            ),
        ),
        Watchable(
            Resource.ORDER_ITEM,
            "order item",
            ("order_item_id",),
            lambda ops, ids: ops.get_order_item(ids["order_item_id"]),
            list_form=ListForm((), "order_item_id", functools.partial(_order_items_where, "ids")),
        ),
        Watchable(
            Resource.ORDER,
            "order",
            ("order_id",),
            lambda ops, ids: ops.get_order(ids["order_id"]),
            list_form=ListForm(
                (),
                "order_id",
                functools.partial(_order_items_where, "order_ids"),
                item_id_field="order_id",
                confirm=frozenset({Phase.SUCCESS, Phase.FAILURE, Phase.PARTIAL}),
                combine=_order_of_items,
                last_poll_alone=True,
            ),
        ),
        Watchable(
            Resource.JOB_PACKAGE,
            "job download package",
            ("workflow_id", "job_id"),
            lambda ops, ids: ops.download_job(ids["workflow_id"], ids["job_id"]),
        ),
        Watchable(
            Resource.TASK_PACKAGE,
            "task download package",
            ("workflow_id", "job_id", "task_id"),
            lambda ops, ids: ops.download_task(ids["workflow_id"], ids["job_id"], ids["task_id"]),
        ),
        Watchable(
            Resource.INSIGHT_PACKAGE,
            "insight download package",
            ("aoi_id", "insight_id"),
            # The package depends on the selection: a read without it would check (or start) another.
            lambda ops, ids: ops.download_insights(
                ids["aoi_id"], ids["insight_id"], **insight_selection(ids)
            ),
            params=("inputs", "outputs"),
        ),
    )
}


def watchable(kind: str) -> Watchable:
    """The one place a kind is looked up: a :class:`Resource` or its value (``"job"``, ``"order"``...).

    Triggers serialized by earlier versions carry these same strings in their kwargs, so a triggerer
    restarted after an upgrade finds every kind it holds.
    """
    try:
        return WATCHABLES[Resource(kind)]
    except (ValueError, KeyError):
        known = ", ".join(sorted(w.kind for w in WATCHABLES.values()))
        raise PixxelConfigError(f"unknown resource kind {kind!r}; expected one of {known}") from None


@dataclass(frozen=True)
class Observation:
    """One reading of a remote resource: small, JSON-able, enough to log and to decide."""

    phase: Phase
    status: str | None
    progress: float | None
    reason: str | None
    detail: dict[str, Any]

    def as_event(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "remote_status": self.status,
            "progress": self.progress,
            "reason": self.reason,
            "detail": self.detail,
        }


def _progress(value: Any) -> float | None:
    # Progress is an int, a float or a string depending on the resource (the API is not uniform).
    # "nan" and "inf" read as floats but are no progress: the wait would log and compare them.
    try:
        progress = None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None
    return progress if progress is not None and math.isfinite(progress) else None


def _order_observation(order: Mapping[str, Any]) -> Observation:
    """A whole order is done when every order item is: failed if any failed, partial if any was."""
    items = [item for item in order.get("order_items") or [] if isinstance(item, Mapping)]
    phases = {str(item.get("id")): phase_of(Resource.ORDER_ITEM, item) for item in items}
    if not phases or Phase.RUNNING in phases.values():
        phase = Phase.RUNNING
    elif Phase.FAILURE in phases.values():
        phase = Phase.FAILURE
    elif Phase.PARTIAL in phases.values():
        phase = Phase.PARTIAL
    else:
        phase = Phase.SUCCESS
    counts: dict[str, int] = {}
    for item_phase in phases.values():
        counts[item_phase.value] = counts.get(item_phase.value, 0) + 1
    summary = "order items: " + (", ".join(f"{n} {p}" for p, n in sorted(counts.items())) or "none yet")
    unfinished = [item for item in items if phases[str(item.get("id"))] in (Phase.FAILURE, Phase.PARTIAL)]
    return Observation(
        phase=phase,
        status=summary,
        progress=None,
        reason=order_item_reasons(unfinished) if phase in (Phase.FAILURE, Phase.PARTIAL) else None,
        detail={
            "order_item_ids": list(phases),
            "order_status": order.get("status"),
            "unfinished_order_item_ids": [str(item.get("id")) for item in unfinished],
        },
    )


def order_item_reasons(items: Sequence[Mapping[str, Any]]) -> str | None:
    """Why each failed or partial order item ended so: ``order item <id> <STATUS>: <reason>``."""
    reasons = [
        f"order item {item.get('id')} {item.get('status')}: {failure_reason(item, Resource.ORDER_ITEM)}"
        for item in items
        if phase_of(Resource.ORDER_ITEM, item) in (Phase.FAILURE, Phase.PARTIAL)
    ]
    return "; ".join(reasons) or None


def _items_to_explain(kind: str, observation: Observation) -> list[str]:
    """Order items whose own record must be read for a reason: ``GET /v0/orders/{id}`` gives none."""
    if watchable(kind).resource is not Resource.ORDER or observation.phase not in (
        Phase.FAILURE,
        Phase.PARTIAL,
    ):
        return []
    return [str(item_id) for item_id in observation.detail.get("unfinished_order_item_ids") or []]


def _explained(observation: Observation, items: list[Any]) -> Observation:
    reason = order_item_reasons([item for item in items if isinstance(item, Mapping)])
    return replace(observation, reason=reason) if reason else observation


def _unreadable_item(item_id: str, error: PixxelError) -> None:
    # The outcome is already known; a missing reason must not turn it into a polling error.
    log.warning("Could not read order item %s for its failure reason: %s", item_id, error)


def observe(kind: str, obj: Mapping[str, Any] | None, ids: Ids) -> Observation:
    """Classify one API object of ``kind``. A missing object is a not-found error."""
    spec = watchable(kind)
    if obj is None:
        raise PixxelNotFoundError(
            status=404,
            method="GET",
            url=spec.describe(ids),
            message=f"the API returned no {spec.label} with these ids",
        )
    if spec.resource is Resource.ORDER:
        return _order_observation(obj)
    phase = phase_of(spec.resource, obj)
    status = obj.get("status")
    reason = failure_reason(obj, spec.resource) if phase in (Phase.FAILURE, Phase.PARTIAL) else None
    # Signed URLs stay out: observations travel in trigger events, which the metadata DB stores.
    detail: dict[str, Any] = {"has_signed_url": bool(obj.get("signed_url"))} if "signed_url" in obj else {}
    for key in ("target_path", "cost", "estimated_duration", "estimated_time_in_min"):
        if obj.get(key) not in (None, ""):
            detail[key] = obj[key]
    return Observation(
        phase=phase,
        status=None if status is None else str(status),
        progress=_progress(obj.get("progress")),
        reason=reason,
        detail=detail,
    )


def read_sync(hook: PixxelPollingOperations[Any], kind: str, ids: Ids) -> Observation:
    """Read and classify a resource with the sync hook (a failed order's items are read for reasons)."""
    spec = watchable(kind)
    observation = observe(kind, spec.extract(spec.fetch(hook, ids), ids), ids)
    items: list[Any] = []
    for item_id in _items_to_explain(kind, observation):
        try:
            items.append(hook.get_order_item(item_id))
        except PixxelError as error:
            _unreadable_item(item_id, error)
    return _explained(observation, items)


async def read_async(hook: PixxelPollingOperations[Any], kind: str, ids: Ids) -> Observation:
    """Read and classify a resource with the async hook (a failed order's items are read for reasons)."""
    spec = watchable(kind)
    observation = observe(kind, spec.extract(await spec.fetch(hook, ids), ids), ids)
    items: list[Any] = []
    for item_id in _items_to_explain(kind, observation):
        try:
            items.append(await hook.get_order_item(item_id))
        except PixxelError as error:
            _unreadable_item(item_id, error)
    return _explained(observation, items)


async def read_many_async(
    hook: PixxelPollingOperations[Any], kind: str, watches: Sequence[Ids], last_polls: Sequence[bool] = ()
) -> list[Observation | BaseException]:
    """Read many resources of one kind and one scope (see :meth:`Watchable.scope_of`): one result per
    watch, in order, either its observation or the error its own read raised.

    A single watch is read on its own. The list read's own errors are raised for all (a 401 is
    every watch's 401; a 5xx or an answer of the wrong shape is retried by each waiter's next poll),
    except a 404: a list that is not found says nothing about each resource, so each is read on its
    own, and only that read may say "not found". A resource the list leaves out, or lists in a shape
    :func:`observe` cannot read, is read on its own too. ``last_polls`` says which watches are at
    their wait's last poll: where the list form reads those alone (:attr:`ListForm.last_poll_alone`),
    they are.
    """
    spec = watchable(kind)
    form = spec.list_form
    listed: dict[str, list[Mapping[str, Any]]] = {}
    last = list(last_polls) or [False] * len(watches)
    # Which watches the list may answer for (a last poll the form reads alone is not one of them).
    by_list = [form is not None and not (final and form.last_poll_alone) for final in last]
    listable = [ids for ids, listed_here in zip(watches, by_list, strict=True) if listed_here]
    # A lone resource is cheaper to read on its own than with a list (a job list is every job of the
    # workflow): the list form pays off from two resources of one scope due together.
    if form is not None and len(listable) > 1:
        scope = {name: listable[0][name] for name in form.scope}
        try:
            items = await form.read(hook, scope, [ids[form.key] for ids in listable])
        except PixxelNotFoundError as error:
            log.warning("Listing %ss failed (%s); reading each on its own", spec.label, error)
            items = []
        for item in items:
            if isinstance(item, Mapping) and item.get(form.item_id_field) is not None:
                listed.setdefault(str(item[form.item_id_field]), []).append(item)
    results: list[Observation | BaseException | None] = [None] * len(watches)
    alone: list[int] = []
    for index, ids in enumerate(watches):
        objects = listed.get(ids[form.key]) if form is not None and by_list[index] else None
        if objects and form is not None:
            try:
                observation = observe(kind, form.resource_of(ids[form.key], objects), ids)
            except SHAPE_ERRORS:
                observation = None
            if observation is not None and observation.phase not in form.confirm:
                results[index] = observation
                continue
        alone.append(index)
    slots = asyncio.Semaphore(SINGLE_READ_CONCURRENCY)

    async def read_alone(index: int) -> None:
        async with slots:
            try:
                results[index] = await read_async(hook, kind, watches[index])
            except (PixxelError, *SHAPE_ERRORS) as error:
                results[index] = error

    await asyncio.gather(*(read_alone(index) for index in alone))
    return cast(list[Observation | BaseException], results)  # every index was filled above
