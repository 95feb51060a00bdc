"""Walking the Pixxel API's paginated results, one page in memory at a time.

Every offset-based style of the API goes through :func:`iter_offset_pages` (or its async twin
:func:`aiter_offset_pages`; both follow :class:`OffsetWalk`); what differs between them is only how a
page is read, which the ``*_page`` readers below describe:

* ``{<items>: [...], pagination: {limit, offset, total}}`` (AOIs, indices, visualizations, assets,
  workflows, orders, order items, catalog search): :func:`paginated_list_page`;
* STAC ``FeatureCollection {features, links}`` with no total (archive search, collection items):
  :func:`feature_collection_page`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_pixxel.exceptions import PixxelApiError, PixxelConfigError, PixxelPagingError

DEFAULT_PAGE_SIZE = 100
#: The most pages one walk fetches (a million items at the default page size): a server reporting a
#: total of 10**12, or linking to a next page for ever, ends in a PixxelPagingError instead.
DEFAULT_MAX_PAGES = 10_000


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
    #: The next link exactly as sent (href and body): a server sending the same one twice is looping.
    next_link: str | None = field(default=None, compare=False)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _json_type(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__} ({str(value)[:40]!r})"


def unexpected_answer(message: str) -> PixxelApiError:
    """The error for a successful answer that is not shaped as the API documents it."""
    return PixxelApiError(status=200, method="", url="", code="unexpected_answer", message=message)


def page_object(payload: Any, items_key: str) -> tuple[Mapping[str, Any], list[Any]]:
    """A page's JSON object and its list at ``items_key`` (absent: empty); a PixxelApiError otherwise.

    A page that is a list, or whose items are not a list, would otherwise surface as an
    AttributeError or a walk over the characters of a string.
    """
    if payload is None:
        return {}, []
    if not isinstance(payload, Mapping):
        raise unexpected_answer(
            f"a page of {items_key!r} must be a JSON object with a {items_key!r} list, "
            f"got {_json_type(payload)}"
        )
    items = payload.get(items_key)
    if items is None:
        return payload, []
    if not isinstance(items, list):
        raise unexpected_answer(f"a page's {items_key!r} must be a list, got {_json_type(items)}")
    return payload, items


def paginated_list_page(items_key: str) -> Callable[[Any], OffsetPage]:
    """A reader for ``{items_key: [...], "pagination": {"total": ...}}`` pages."""

    def read(payload: Any) -> OffsetPage:
        payload, items = page_object(payload, items_key)
        pagination = payload.get("pagination") or {}
        return OffsetPage(
            items=items,
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
    payload, features = page_object(payload, "features")
    links = payload.get("links") or []
    if not isinstance(links, list):
        raise unexpected_answer(f"a feature collection's 'links' must be a list, got {_json_type(links)}")
    next_links = [
        link for link in links if isinstance(link, Mapping) and str(link.get("rel", "")).lower() == "next"
    ]
    if not next_links:
        return OffsetPage(items=features)
    link = next_links[0]
    fingerprint = json.dumps([link.get("href"), link.get("body")], sort_keys=True, default=str)
    return OffsetPage(items=features, more=True, next_offset=_link_offset(link), next_link=fingerprint)


def check_page_size(page_size: int, *, maximum: int | None = None) -> int:
    """``page_size`` if it is a usable page size, else a :class:`PixxelConfigError` with the range."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise PixxelConfigError(f"page_size must be a whole number of 1 or more, got {page_size!r}")
    if maximum is not None and page_size > maximum:
        raise PixxelConfigError(f"page_size must be at most {maximum}, got {page_size}")
    return page_size


def check_max_pages(max_pages: int) -> int:
    """``max_pages`` if it is a usable page cap, else a :class:`PixxelConfigError`."""
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
        raise PixxelConfigError(f"max_pages must be a whole number of 1 or more, got {max_pages!r}")
    return max_pages


def too_many_pages(max_pages: int, items: int) -> PixxelPagingError:
    """The error ending a walk that reached ``max_pages`` with the server still offering more."""
    return PixxelPagingError(
        f"Stopped paging after {max_pages} pages ({items} items) although the server still offered "
        "more: it may be repeating pages or reporting a wrong total. Narrow the filters, or pass a "
        "larger max_pages if the result really is that large"
    )


class OffsetWalk:
    """Where an offset/limit walk stands, and when it is over: the one paging rule of both pagers.

    Ask for ``limit`` items at ``offset`` until ``done``; hand each page read to :meth:`advance`.
    Walking stops at the first empty page; otherwise at the server's ``total`` when it gives one, at
    the first page without a next link once earlier pages had one, and else at the first page
    shorter than ``limit``. The next offset counts the items actually received (or takes the offset
    the server's next link names), so a server that caps ``limit`` below the page size skips nothing
    when it reports a total.

    A walk never loops: a next link the server already sent (the same href and body) means it is
    repeating itself, and a walk still going after ``max_pages`` pages is stopped; both raise a
    :class:`PixxelPagingError`. Equal items at different offsets are not a repeat: they are what
    was asked for.
    """

    def __init__(self, page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES) -> None:
        self.limit = check_page_size(page_size)
        self.max_pages = check_max_pages(max_pages)
        self.offset = 0
        self.done = False
        self.pages = 0
        self.items = 0
        self._server_links_pages = False
        self._next_links: set[str] = set()

    def advance(self, page: OffsetPage) -> None:
        """Move past ``page``: set the next ``offset``, or ``done`` when it was the last page."""
        self.pages += 1
        self.items += len(page.items)
        if page.next_link is not None:
            if page.next_link in self._next_links:
                raise PixxelPagingError(
                    f"The server sent the same next link again after {self.pages} pages ({self.items} "
                    "items): it is repeating pages, so the walk stopped instead of looping"
                )
            self._next_links.add(page.next_link)
        self._advance(page)
        if not self.done and self.pages >= self.max_pages:
            raise too_many_pages(self.max_pages, self.items)

    def _advance(self, page: OffsetPage) -> None:
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
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Iterator[Any]:
    """Every item of an offset/limit-paginated result, fetching the next page only when needed.

    ``fetch(offset, limit)`` returns one raw page; :class:`OffsetWalk` decides where to go next and
    when to stop, and stops a walk that repeats or exceeds ``max_pages``.
    """
    walk = OffsetWalk(page_size, max_pages)
    while not walk.done:
        page = read_page(fetch(walk.offset, walk.limit))
        yield from page.items
        walk.advance(page)


async def aiter_offset_pages(
    fetch: Callable[[int, int], Awaitable[Any]],
    read_page: Callable[[Any], OffsetPage],
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> AsyncIterator[Any]:
    """:func:`iter_offset_pages` for a coroutine ``fetch(offset, limit)``, e.g. a ``PixxelAsyncHook`` call."""
    async for page in aiter_pages(fetch, read_page, page_size=page_size, max_pages=max_pages):
        for item in page:
            yield item


async def aiter_pages(
    fetch: Callable[[int, int], Awaitable[Any]],
    read_page: Callable[[Any], OffsetPage],
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> AsyncIterator[Sequence[Any]]:
    """The items of each page in turn, for callers that act once per page (the catalog trigger)."""
    walk = OffsetWalk(page_size, max_pages)
    while not walk.done:
        page = read_page(await fetch(walk.offset, walk.limit))
        yield page.items
        walk.advance(page)
