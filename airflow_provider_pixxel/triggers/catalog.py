"""Event-driven scheduling on Pixxel deliveries: one asset event per poll, naming every new catalog.

:class:`PixxelNewCatalogTrigger` goes in an ``AssetWatcher``. Each capture of a recurring tasking order
is delivered as a catalog; the trigger polls the catalog search of the watched order items and emits
one event per poll that found catalogs it has not emitted before, listing all of them, so a DAG
scheduled on the asset runs when captures land instead of polling on a timetable::

    from airflow.sdk import DAG, Asset, AssetWatcher

    from airflow_provider_pixxel.triggers.catalog import PixxelNewCatalogTrigger, catalogs_of_events

    captures = Asset(
        "pixxel-field-42-captures",
        watchers=[
            AssetWatcher(
                name="pixxel_new_catalogs",
                trigger=PixxelNewCatalogTrigger(order_item_ids=["<order item id>"], poll_interval=900),
            )
        ],
    )

    with DAG("process_capture", schedule=[captures]):
        ...  # catalogs_of_events(context["triggering_asset_events"][captures]): every catalog named

Why one event per poll and not one per catalog. Airflow (3.3.2, ``SchedulerJobRunner`` and
``AssetManager``) does not hand a run "every event so far": an asset event queues the DAG by inserting
one row per (asset, DAG) in ``asset_dag_run_queue``, and an event that finds the row already there adds
nothing (the insert is skipped, the row keeps its first ``created_at``). When the scheduler creates
the run it takes the events whose timestamp is at or before that row's ``created_at`` (and after the
previous asset-triggered run), then deletes the row. So an event registered after the row was created
but before the run was, even milliseconds later, belongs to no run: it waits until the asset's next
event queues the DAG again, which for a recurring order can be days. Two captures found by one poll and
emitted as two events were split exactly so. One event carrying both goes into one run. What a single
event cannot cover (the next poll's event landing while the previous run is still queued, a poll too
large for one event, an event lost to a triggerer crash) is what the DAG's own look for unfinished
captures is for (see ``example_dags/pixxel_capture_events.py``).
"""

from __future__ import annotations

import datetime
from asyncio import sleep
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowNotFoundException
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_pixxel.exceptions import (
    PixxelAuthError,
    PixxelConfigError,
    PixxelError,
    PixxelNotFoundError,
    PixxelValidationError,
)
from airflow_provider_pixxel.hooks.pagination import aiter_pages, paginated_list_page
from airflow_provider_pixxel.hooks.transport import DEFAULT_CONN_ID

# The API's catalog search answers 2 per page unless asked: ask for many.
CATALOG_PAGE_SIZE = 100
# At most this many catalogs in one event: a poll that finds more (the first poll of a watcher started
# on a long-running order) emits an event each time it has this many, so what it holds stays bounded.
MAX_CATALOGS_PER_EVENT = 100
DEFAULT_POLL_INTERVAL = 600.0
# Asset-state key of one emitted catalog; a key per catalog keeps each write independent of the others.
EMITTED_KEY_PREFIX = "pixxel_catalog_emitted:"

# Errors that polling again cannot fix without someone changing the connection or the order item ids.
_NEEDS_ATTENTION = (
    PixxelAuthError,
    PixxelNotFoundError,
    PixxelValidationError,
    PixxelConfigError,
    AirflowNotFoundException,
)

if TYPE_CHECKING:
    from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook


def _order_item_ids(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise PixxelConfigError(
            f"order_item_ids must be a list of order item id strings, got {type(value).__name__} {value!r}"
        )
    ids = [item.strip() for item in value if isinstance(item, str) and item.strip()]
    if len(ids) != len(value) or not ids:
        raise PixxelConfigError(
            f"order_item_ids must list at least one non-empty order item id string, got {value!r}"
        )
    return list(dict.fromkeys(ids))


def catalogs_in_payload(payload: Any) -> list[dict[str, Any]]:
    """The catalogs one event payload names: ``payload["catalogs"]``, or the payload itself when it is
    the single-catalog shape ``{"catalog_id", "order_item_id", ...}`` that provider versions before
    the per-poll events emitted (and that an asset event sent by hand may still use).

    Entries without a ``catalog_id`` are left out; anything that is not a payload names nothing.
    """
    if not isinstance(payload, dict):
        return []
    listed = payload.get("catalogs")
    entries = listed if isinstance(listed, list) else [payload]
    return [entry for entry in entries if isinstance(entry, dict) and entry.get("catalog_id")]


def catalogs_of_events(asset_events: Any) -> list[dict[str, Any]]:
    """Every catalog the watcher's events name, in event order, each catalog id once.

    ``asset_events`` are a run's triggering asset events of the watched asset (each ``extra`` holds
    the trigger's payload under ``"payload"``).
    """
    found: dict[str, dict[str, Any]] = {}
    for event in asset_events or []:
        for catalog in catalogs_in_payload((getattr(event, "extra", None) or {}).get("payload")):
            found.setdefault(str(catalog["catalog_id"]), catalog)
    return list(found.values())


class PixxelNewCatalogTrigger(BaseEventTrigger):
    """Emit, per poll, one event naming every catalog newly delivered to the watched order items.

    Every ``poll_interval`` seconds the trigger walks all pages of ``search_catalogs`` for each order
    item (one HTTP client per run; the hook's retry policy on each request) and emits one event
    ``{"catalogs": [{"catalog_id", "order_item_id", "task_id", "created_at"}, ...]}`` listing, oldest
    first, every catalog not emitted before; a poll that finds nothing new emits nothing. Catalogs
    already delivered when the watcher starts are emitted too, once. Read the payloads with
    :func:`catalogs_of_events`, which also accepts the single-catalog payload
    ``{"catalog_id", ...}`` of earlier versions. There is no top-level ``catalog_id`` any more, on
    purpose: a consumer reading only that would silently skip every catalog but the first.

    One event per poll because Airflow gives an asset-triggered run only the events registered before
    its queue row was created (see the module docstring): captures found together must travel
    together. A poll that finds more than :data:`MAX_CATALOGS_PER_EVENT` catalogs emits an event each
    time it has that many (memory stays bounded), so such a poll can still be split over runs.

    **Never twice, at most once.** Every catalog of an event is recorded as emitted *before* the event
    is yielded. On Airflow 3.3+ the record lives in the watched asset's ``asset_state_store``, so a
    restarted triggerer does not emit it again; if the triggerer dies between the record and the event
    reaching the database, those captures get no event (their catalog ids are in the triggerer log; the
    example capture DAG's runs also process any capture without a finished output). Without an asset
    state store (older Airflow, or the trigger used outside an ``AssetWatcher``) the record is kept in
    memory only, and a restart emits every catalog again; a warning says so once.

    Errors never end the watch and never make it spin: each poll, failed or not, is followed by
    ``poll_interval`` seconds of sleep. Errors a retry cannot fix (bad API key, unknown order item)
    are logged at ERROR level once until the error changes.

    :param order_item_ids: the order items to watch, e.g. the items of a recurring tasking order.
    :param pixxel_conn_id: the Airflow connection.
    :param poll_interval: seconds between polls (default 600).
    """

    def __init__(
        self,
        *,
        order_item_ids: Sequence[str],
        pixxel_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__()
        self.order_item_ids = _order_item_ids(order_item_ids)
        self.pixxel_conn_id = pixxel_conn_id
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, (int, float))
            or poll_interval <= 0
        ):
            raise PixxelConfigError(
                f"poll_interval must be a positive number of seconds, got {poll_interval!r}"
            )
        self.poll_interval = float(poll_interval)
        self._emitted: set[str] = set()
        self._memory_only_warned = False
        self._last_error: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "order_item_ids": list(self.order_item_ids),
                "pixxel_conn_id": self.pixxel_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    # -- the record of emitted catalogs --------------------------------------------------------------

    def _store(self) -> Any:
        # Injected by the Airflow 3.3 triggerer into watchers; absent before 3.3.
        store = getattr(self, "asset_state_store", None)
        if store is None and not self._memory_only_warned:
            self._memory_only_warned = True
            self.log.warning(
                "No asset_state_store (it needs Airflow 3.3+ and an AssetWatcher): catalogs already "
                "emitted are remembered in memory only, so a triggerer restart emits them again"
            )
        return store

    async def _already_emitted(self, catalog_id: str) -> bool:
        if catalog_id in self._emitted:
            return True
        store = self._store()
        if store is not None and await store.aget(EMITTED_KEY_PREFIX + catalog_id, None) is not None:
            self._emitted.add(catalog_id)
            return True
        return False

    async def _record_emitted(self, catalog: dict[str, Any]) -> None:
        store = self._store()
        if store is not None:
            await store.aset(
                EMITTED_KEY_PREFIX + catalog["catalog_id"],
                {
                    "order_item_id": catalog["order_item_id"],
                    "emitted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                },
            )
        self._emitted.add(catalog["catalog_id"])

    async def _event_for(self, catalogs: list[dict[str, Any]]) -> TriggerEvent:
        """The event naming ``catalogs``, each recorded as emitted first (never twice)."""
        catalogs.sort(key=lambda catalog: (str(catalog["created_at"] or ""), catalog["catalog_id"]))
        for catalog in catalogs:
            await self._record_emitted(catalog)
        self.log.info(
            "%d new catalog(s) delivered: %s",
            len(catalogs),
            ", ".join(f"{c['catalog_id']} (order item {c['order_item_id']})" for c in catalogs),
        )
        return TriggerEvent({"catalogs": catalogs})

    # -- polling -------------------------------------------------------------------------------------

    async def _delivered_pages(self, hook: PixxelAsyncHook) -> AsyncIterator[list[dict[str, Any]]]:
        """The catalogs of each watched order item, one search page at a time, as event entries.

        Page by page so that a long result is never held whole: a full event is emitted before the
        next page is fetched.
        """
        for order_item_id in self.order_item_ids:
            # One search per item: a catalog does not name its order item, the search filter does.
            pages = aiter_pages(
                partial(self._search_page, hook, order_item_id),
                paginated_list_page("catalogs"),
                page_size=CATALOG_PAGE_SIZE,
            )
            async for catalogs in pages:
                found = [
                    {
                        "catalog_id": str(catalog["id"]),
                        "order_item_id": order_item_id,
                        "task_id": catalog.get("task_id"),
                        "created_at": catalog.get("created_at"),
                    }
                    for catalog in catalogs
                    if isinstance(catalog, dict) and catalog.get("id")
                ]
                yield found

    @staticmethod
    async def _search_page(hook: PixxelAsyncHook, order_item_id: str, offset: int, limit: int) -> Any:
        return await hook.search_catalogs(order_item_ids=[order_item_id], offset=offset, limit=limit)

    def _log_error(self, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        if isinstance(error, _NEEDS_ATTENTION):
            if message != self._last_error:
                self.log.error(
                    "Cannot search the catalogs of order items %s (polling again every %g s until fixed): %s",
                    ", ".join(self.order_item_ids),
                    self.poll_interval,
                    message,
                )
        else:
            self.log.warning(
                "Catalog search failed (will poll again in %g s): %s", self.poll_interval, message
            )
        self._last_error = message

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Imported here: DAG files build this trigger while parsing and never need httpx.
        from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook

        while True:
            try:
                async with PixxelAsyncHook(self.pixxel_conn_id) as hook:
                    async for event in self._watch(hook):
                        yield event
            except (PixxelError, AirflowNotFoundException) as error:
                # Only opening the client gets here (a missing or bad connection): polls handle their own.
                self._log_error(error)
                await sleep(self.poll_interval)

    async def _watch(self, hook: PixxelAsyncHook) -> AsyncIterator[TriggerEvent]:
        while True:
            # This poll's new catalogs by id: a catalog seen on two pages (the search shifted under
            # the walk) or under two order items is named once.
            new: dict[str, dict[str, Any]] = {}
            try:
                async for delivered in self._delivered_pages(hook):
                    for catalog in delivered:
                        if catalog["catalog_id"] in new or await self._already_emitted(catalog["catalog_id"]):
                            continue
                        new[catalog["catalog_id"]] = catalog
                        if len(new) == MAX_CATALOGS_PER_EVENT:
                            yield await self._event_for(list(new.values()))
                            new.clear()
            except PixxelError as error:
                # A bad answer (an error, the wrong shape, a walk that would not end) ends this poll
                # only; what earlier pages brought is still emitted, below.
                self._log_error(error)
            else:
                self._last_error = None
            if new:
                yield await self._event_for(list(new.values()))
            await sleep(self.poll_interval)
