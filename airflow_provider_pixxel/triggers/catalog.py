"""Event-driven scheduling on Pixxel deliveries: one asset event per newly delivered catalog.

:class:`PixxelNewCatalogTrigger` goes in an ``AssetWatcher``. Each capture of a recurring tasking order
is delivered as a catalog; the trigger polls the catalog search of the watched order items and emits
one event per catalog it has not emitted before, so a DAG scheduled on the asset runs once per new
capture instead of polling on a timetable::

    from airflow.sdk import DAG, Asset, AssetWatcher

    from airflow_provider_pixxel.triggers.catalog import PixxelNewCatalogTrigger

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
        ...  # read the catalog id from context["triggering_asset_events"][captures][-1].extra["payload"]
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


class PixxelNewCatalogTrigger(BaseEventTrigger):
    """Emit one event per catalog newly delivered to the watched order items; never one twice.

    Every ``poll_interval`` seconds the trigger walks all pages of ``search_catalogs`` for each order
    item (one HTTP client per run; the hook's retry policy on each request) and emits, page by page and
    oldest first within a page, ``{"catalog_id", "order_item_id", "task_id", "created_at"}`` for each
    catalog not emitted before.
    Catalogs already delivered when the watcher starts are emitted too, once.

    **At most once.** A catalog is recorded as emitted *before* its event is yielded. On Airflow 3.3+
    the record lives in the watched asset's ``asset_state_store``, so a restarted triggerer does not
    emit it again; if the triggerer dies between the record and the event reaching the database, that
    one capture gets no event (its catalog id is in the triggerer log: send an asset event by hand to
    process it). Without an asset state store (older Airflow, or the trigger used outside an
    ``AssetWatcher``) the record is kept in memory only, and a restart emits every catalog again; a
    warning says so once.

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

    async def _record_emitted(self, event: dict[str, Any]) -> None:
        store = self._store()
        if store is not None:
            await store.aset(
                EMITTED_KEY_PREFIX + event["catalog_id"],
                {
                    "order_item_id": event["order_item_id"],
                    "emitted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                },
            )
        self._emitted.add(event["catalog_id"])

    # -- polling -------------------------------------------------------------------------------------

    async def _delivered_pages(self, hook: PixxelAsyncHook) -> AsyncIterator[list[dict[str, Any]]]:
        """The catalogs of each watched order item, one search page at a time, as event payloads.

        Page by page so that a long result is never held whole, and what a page brings is emitted
        before the next is fetched; within a page, oldest first.
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
                found.sort(key=lambda event: (str(event["created_at"] or ""), event["catalog_id"]))
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
            try:
                async for delivered in self._delivered_pages(hook):
                    for event in delivered:
                        if await self._already_emitted(event["catalog_id"]):
                            continue
                        # Recorded before it is yielded: at most once, never twice.
                        await self._record_emitted(event)
                        self.log.info(
                            "New catalog %s delivered for order item %s",
                            event["catalog_id"],
                            event["order_item_id"],
                        )
                        yield TriggerEvent(event)
            except PixxelError as error:
                # A bad answer (an error, the wrong shape, a walk that would not end) ends this poll
                # only; what earlier pages brought is already emitted.
                self._log_error(error)
            else:
                self._last_error = None
            await sleep(self.poll_interval)
