"""Walking the Pixxel API's paginated results, one page in memory at a time.

Every offset-based style (FACTS.md §4) goes through :func:`iter_offset_pages` (or its async twin
:func:`aiter_offset_pages`; both follow :class:`OffsetWalk`); what differs between them is only how a
page is read, which the ``*_page`` readers below describe:

* ``{<items>: [...], pagination: {limit, offset, total}}`` (AOIs, indices, visualizations, assets,
  workflows, orders, order items, catalog search): :func:`paginated_list_page`;
* STAC ``FeatureCollection {features, links}`` with no total (archive search, collection items):
  :func:`feature_collection_page`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_pixxel.exceptions import PixxelConfigError

DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True)
class OffsetPage:
    """What one page says about itself.

    ``total`` is the server's count of all matches, when it gives one. ``more`` is True when the page
    links to a next page (None: the page does not say). ``next_offset`` is the offset the server's
    next link asks for, when it names one.
    """

    items: Sequence[Any]
    total: int | None = None
    more: bool | None = None
    next_offset: int | None = None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def paginated_list_page(items_key: str) -> Callable[[Any], OffsetPage]:
    """A reader for ``{items_key: [...], "pagination": {"total": ...}}`` pages."""

    def read(payload: Any) -> OffsetPage:
        payload = payload or {}
        pagination = payload.get("pagination") or {}
        return OffsetPage(
            items=payload.get(items_key) or [],
            total=_as_int(pagination.get("total")) if isinstance(pagination, Mapping) else None,
        )

    return read


def _link_offset(link: Mapping[str, Any]) -> int | None:
    """The offset a STAC next link asks for, from its POST body or its href's query string."""
    link_body = link.get("body")
    if isinstance(link_body, Mapping) and _as_int(link_body.get("offset")) is not None:
        return _as_int(link_body.get("offset"))
    href = link.get("href")
    if isinstance(href, str):
        values = parse_qs(urlsplit(href).query).get("offset")
        if values:
            return _as_int(values[0])
    return None


def feature_collection_page(payload: Any) -> OffsetPage:
    """A reader for STAC ``FeatureCollection`` pages: no total, maybe a ``rel=next`` link.

    The next link is followed by taking its offset only: the request itself is always re-sent to the
    API with the hook's own credentials, never to whatever host the link names.
    """
    payload = payload or {}
    next_links = [
        link
        for link in payload.get("links") or []
        if isinstance(link, Mapping) and str(link.get("rel", "")).lower() == "next"
    ]
    if not next_links:
        return OffsetPage(items=payload.get("features") or [])
    return OffsetPage(items=payload.get("features") or [], more=True, next_offset=_link_offset(next_links[0]))


def check_page_size(page_size: int, *, maximum: int | None = None) -> int:
    """``page_size`` if it is a usable page size, else a :class:`PixxelConfigError` with the range."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise PixxelConfigError(f"page_size must be a whole number of 1 or more, got {page_size!r}")
    if maximum is not None and page_size > maximum:
        raise PixxelConfigError(f"page_size must be at most {maximum}, got {page_size}")
    return page_size


class OffsetWalk:
    """Where an offset/limit walk stands, and when it is over: the one paging rule of both pagers.

    Ask for ``limit`` items at ``offset`` until ``done``; hand each page read to :meth:`advance`.
    Walking stops at the first empty page; otherwise at the server's ``total`` when it gives one, at
    the first page without a next link once earlier pages had one, and else at the first page
    shorter than ``limit``. The next offset counts the items actually received (or takes the offset
    the server's next link names), so a server that caps ``limit`` below the page size skips nothing
    when it reports a total.
    """

    def __init__(self, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self.limit = check_page_size(page_size)
        self.offset = 0
        self.done = False
        self._server_links_pages = False

    def advance(self, page: OffsetPage) -> None:
        """Move past ``page``: set the next ``offset``, or ``done`` when it was the last page."""
        count = len(page.items)
        if count == 0:
            self.done = True
            return
        if page.next_offset is not None and page.next_offset > self.offset:
            following = page.next_offset
        else:
            following = self.offset + count
        if page.total is not None:
            finished = following >= page.total
        elif page.more is not None:
            finished = not page.more
            self._server_links_pages = True
        elif self._server_links_pages:
            # A server that linked its earlier pages marks the last one by leaving the link out.
            finished = True
        else:
            finished = count < self.limit
        if finished:
            self.done = True
        else:
            self.offset = following


def iter_offset_pages(
    fetch: Callable[[int, int], Any],
    read_page: Callable[[Any], OffsetPage],
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Iterator[Any]:
    """Every item of an offset/limit-paginated result, fetching the next page only when needed.

    ``fetch(offset, limit)`` returns one raw page; :class:`OffsetWalk` decides where to go next and
    when to stop.
    """
    walk = OffsetWalk(page_size)
    while not walk.done:
        page = read_page(fetch(walk.offset, walk.limit))
        yield from page.items
        walk.advance(page)


async def aiter_offset_pages(
    fetch: Callable[[int, int], Awaitable[Any]],
    read_page: Callable[[Any], OffsetPage],
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> AsyncIterator[Any]:
    """:func:`iter_offset_pages` for a coroutine ``fetch(offset, limit)``, e.g. a ``PixxelAsyncHook`` call."""
    walk = OffsetWalk(page_size)
    while not walk.done:
        page = read_page(await fetch(walk.offset, walk.limit))
        for item in page.items:
            yield item
        walk.advance(page)
