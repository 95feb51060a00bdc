"""Paging: the generic offset pager, each page reader, and every ``iter_*`` of the hook."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests_mock as requests_mock_module

from airflow_provider_pixxel.exceptions import PixxelApiError, PixxelConfigError, PixxelPagingError
from airflow_provider_pixxel.hooks.pagination import (
    DEFAULT_MAX_PAGES,
    OffsetPage,
    OffsetWalk,
    aiter_offset_pages,
    check_page_size,
    feature_collection_page,
    iter_offset_pages,
    paginated_list_page,
)
from airflow_provider_pixxel.hooks.pixxel import PixxelHook

ANY_URL = requests_mock_module.ANY


def query_of(request: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(request.url).query))


def offset_limit(request: Any) -> tuple[int, int | None]:
    """The offset and limit a request asked for, from its query string or its JSON body."""
    source = request.json() if request.body else query_of(request)
    limit = source.get("limit")
    return int(source.get("offset", 0)), None if limit is None else int(limit)


def list_server(
    items_key: str, items: list[Any], *, default_limit: int = 10, max_limit: int | None = None
) -> Callable[..., Any]:
    """A fake endpoint answering ``{items_key: [...], pagination: {limit, offset, total}}``."""

    def respond(request: Any, context: Any) -> dict[str, Any]:
        offset, limit = offset_limit(request)
        limit = default_limit if limit is None else limit
        if max_limit is not None:
            limit = min(limit, max_limit)
        return {
            items_key: items[offset : offset + limit],
            "pagination": {"limit": limit, "offset": offset, "total": len(items)},
        }

    return respond


def feature_server(items: list[Any], *, with_next_links: bool = False) -> Callable[..., Any]:
    """A fake STAC endpoint answering FeatureCollections with no total."""

    def respond(request: Any, context: Any) -> dict[str, Any]:
        offset, limit = offset_limit(request)
        limit = 10 if limit is None else limit
        page: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": items[offset : offset + limit],
            "links": [],
        }
        if with_next_links and offset + limit < len(items):
            page["links"] = [
                {"rel": "self", "href": "https://api.pixxel.space/v0/archives/search"},
                {"rel": "next", "href": f"https://stac.example/search?offset={offset + limit}&limit={limit}"},
            ]
        return page

    return respond


# -- the generic pager --------------------------------------------------------------------------------


def pages_from(pages: list[Any]) -> tuple[Callable[[int, int], Any], list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []

    def fetch(offset: int, limit: int) -> Any:
        calls.append((offset, limit))
        return pages[len(calls) - 1]

    return fetch, calls


def test_pager_stops_at_the_total() -> None:
    fetch, calls = pages_from(
        [OffsetPage([1, 2], total=5), OffsetPage([3, 4], total=5), OffsetPage([5], total=5)]
    )
    assert list(iter_offset_pages(fetch, lambda page: page, page_size=2)) == [1, 2, 3, 4, 5]
    assert calls == [(0, 2), (2, 2), (4, 2)]


def test_pager_stops_at_an_empty_page_even_if_the_total_says_more() -> None:
    fetch, calls = pages_from([OffsetPage([1, 2], total=10), OffsetPage([], total=10)])
    assert list(iter_offset_pages(fetch, lambda page: page, page_size=2)) == [1, 2]
    assert len(calls) == 2


def test_pager_without_total_stops_at_a_short_page() -> None:
    fetch, calls = pages_from([OffsetPage([1, 2, 3]), OffsetPage([4])])
    assert list(iter_offset_pages(fetch, lambda page: page, page_size=3)) == [1, 2, 3, 4]
    assert calls == [(0, 3), (3, 3)]


def test_pager_without_total_asks_again_after_a_full_page() -> None:
    fetch, calls = pages_from([OffsetPage([1, 2]), OffsetPage([])])
    assert list(iter_offset_pages(fetch, lambda page: page, page_size=2)) == [1, 2]
    assert calls == [(0, 2), (2, 2)]


def test_pager_follows_next_links_past_short_pages_and_takes_their_offset() -> None:
    fetch, calls = pages_from([OffsetPage([1], more=True, next_offset=5), OffsetPage([6])])
    assert list(iter_offset_pages(fetch, lambda page: page, page_size=3)) == [1, 6]
    assert calls == [(0, 3), (5, 3)]


def test_pager_stops_at_the_first_page_without_a_next_link_once_pages_had_one() -> None:
    fetch, calls = pages_from([OffsetPage([1, 2], more=True), OffsetPage([3, 4])])
    assert list(iter_offset_pages(fetch, lambda page: page, page_size=2)) == [1, 2, 3, 4]
    assert calls == [(0, 2), (2, 2)]


def test_pager_counts_received_items_when_the_server_caps_the_limit() -> None:
    fetch, calls = pages_from([OffsetPage([1, 2], total=4), OffsetPage([3, 4], total=4)])
    assert list(iter_offset_pages(fetch, lambda page: page, page_size=100)) == [1, 2, 3, 4]
    assert calls == [(0, 100), (2, 100)]


def test_pager_fetches_lazily() -> None:
    fetch, calls = pages_from([OffsetPage([1, 2], total=4), OffsetPage([3, 4], total=4)])
    items = iter_offset_pages(fetch, lambda page: page, page_size=2)
    assert calls == []
    assert next(items) == 1
    assert next(items) == 2
    assert calls == [(0, 2)]


@pytest.mark.parametrize("page_size", [0, -1, 1.5, True, "10"])
def test_page_size_must_be_a_positive_whole_number(page_size: Any) -> None:
    with pytest.raises(PixxelConfigError, match="page_size"):
        check_page_size(page_size)


def test_page_size_maximum() -> None:
    with pytest.raises(PixxelConfigError, match="at most 5"):
        check_page_size(6, maximum=5)


def test_readers() -> None:
    assert paginated_list_page("aois")({"aois": [1], "pagination": {"total": "7"}}) == OffsetPage(
        [1], total=7
    )
    assert paginated_list_page("aois")({"aois": None}) == OffsetPage([])
    assert paginated_list_page("aois")(None) == OffsetPage([])
    assert feature_collection_page({"features": [1], "links": [{"rel": "self", "href": "x"}]}) == OffsetPage(
        [1]
    )
    assert feature_collection_page(
        {"features": [1], "links": [{"rel": "next", "href": "https://x/search", "body": {"offset": 30}}]}
    ) == OffsetPage([1], more=True, next_offset=30)
    assert feature_collection_page(
        {"features": [1], "links": [{"rel": "Next", "href": "https://x/items?limit=2&offset=12"}]}
    ) == OffsetPage([1], more=True, next_offset=12)
    assert feature_collection_page(
        {"features": [1], "links": [{"rel": "next", "href": "https://x/p/2"}]}
    ) == OffsetPage([1], more=True)


@pytest.mark.parametrize(
    ("reader", "payload", "message"),
    [
        (paginated_list_page("aois"), [{"id": "a"}], "a page of 'aois' must be a JSON object"),
        (paginated_list_page("aois"), "aois", "a page of 'aois' must be a JSON object"),
        (paginated_list_page("aois"), {"aois": "a1"}, "'aois' must be a list, got a str"),
        (paginated_list_page("aois"), {"aois": {"id": "a"}}, "'aois' must be a list, got an object"),
        (feature_collection_page, [], "a page of 'features' must be a JSON object"),
        (feature_collection_page, {"features": [], "links": "next"}, "'links' must be a list"),
    ],
)
def test_readers_refuse_pages_of_the_wrong_shape(reader: Any, payload: Any, message: str) -> None:
    with pytest.raises(PixxelApiError, match=message) as refused:
        reader(payload)
    assert refused.value.code == "unexpected_answer"
    assert str(refused.value).startswith("Pixxel API answer failed with HTTP 200 [unexpected_answer]")


def test_a_total_too_large_for_a_number_reads_as_no_total() -> None:
    assert paginated_list_page("aois")({"aois": [1], "pagination": {"total": float("inf")}}).total is None


def test_a_walk_stops_at_max_pages_which_defaults_to_ten_thousand() -> None:
    assert OffsetWalk().max_pages == DEFAULT_MAX_PAGES == 10_000
    fetch, calls = pages_from([OffsetPage([n, n], total=10**12) for n in range(10)])
    items = iter_offset_pages(fetch, lambda page: page, page_size=2, max_pages=3)
    with pytest.raises(PixxelPagingError, match="after 3 pages \\(6 items\\)"):
        list(items)
    assert len(calls) == 3


def test_a_walk_that_ends_on_its_last_allowed_page_is_not_an_error() -> None:
    fetch, calls = pages_from([OffsetPage([1, 2], total=4), OffsetPage([3, 4], total=4)])
    assert list(iter_offset_pages(fetch, lambda page: page, page_size=2, max_pages=2)) == [1, 2, 3, 4]
    assert len(calls) == 2


@pytest.mark.parametrize("max_pages", [0, -1, 2.5, "9", True])
def test_max_pages_must_be_a_positive_whole_number(max_pages: Any) -> None:
    with pytest.raises(PixxelConfigError, match="max_pages must be a whole number"):
        OffsetWalk(max_pages=max_pages)


def test_the_same_next_link_twice_is_a_repeated_page() -> None:
    link = {"features": [1, 2], "links": [{"rel": "next", "href": "https://x/search", "body": {"offset": 2}}]}
    fetch, calls = pages_from([link, link, link])
    with pytest.raises(PixxelPagingError, match="same next link again after 2 pages"):
        list(iter_offset_pages(fetch, feature_collection_page, page_size=2))
    assert len(calls) == 2


def test_equal_pages_with_different_next_links_are_walked() -> None:
    pages = [
        {"features": [1, 1], "links": [{"rel": "next", "href": f"https://x/items?offset={offset}"}]}
        for offset in (2, 4)
    ] + [{"features": [1, 1], "links": []}]
    fetch, calls = pages_from(pages)
    assert list(iter_offset_pages(fetch, feature_collection_page, page_size=2)) == [1] * 6
    assert calls == [(0, 2), (2, 2), (4, 2)]


# -- the async pager: the same walk over a coroutine fetch ------------------------------------------------

# (pages served in turn, page_size, items expected, (offset, limit) asked for): one case per stop rule.
WALKS = [
    (
        [OffsetPage([1, 2], total=5), OffsetPage([3, 4], total=5), OffsetPage([5], total=5)],
        2,
        [1, 2, 3, 4, 5],
        [(0, 2), (2, 2), (4, 2)],
    ),
    ([OffsetPage([1, 2], total=10), OffsetPage([], total=10)], 2, [1, 2], [(0, 2), (2, 2)]),
    ([OffsetPage([1, 2, 3]), OffsetPage([4])], 3, [1, 2, 3, 4], [(0, 3), (3, 3)]),
    ([OffsetPage([1], more=True, next_offset=5), OffsetPage([6])], 3, [1, 6], [(0, 3), (5, 3)]),
    ([OffsetPage([1, 2], more=True), OffsetPage([3, 4])], 2, [1, 2, 3, 4], [(0, 2), (2, 2)]),
    ([OffsetPage([1, 2], total=4), OffsetPage([3, 4], total=4)], 100, [1, 2, 3, 4], [(0, 100), (2, 100)]),
]


@pytest.mark.parametrize(("pages", "page_size", "items", "requests"), WALKS)
async def test_async_pager_walks_exactly_like_the_sync_one(
    pages: list[OffsetPage], page_size: int, items: list[int], requests: list[tuple[int, int]]
) -> None:
    async_calls: list[tuple[int, int]] = []

    async def fetch(offset: int, limit: int) -> OffsetPage:
        async_calls.append((offset, limit))
        return pages[len(async_calls) - 1]

    assert [item async for item in aiter_offset_pages(fetch, lambda page: page, page_size=page_size)] == items
    assert async_calls == requests

    sync_fetch, sync_calls = pages_from(pages)
    assert list(iter_offset_pages(sync_fetch, lambda page: page, page_size=page_size)) == items
    assert sync_calls == requests


async def test_async_pager_fetches_lazily() -> None:
    calls: list[tuple[int, int]] = []

    async def fetch(offset: int, limit: int) -> dict[str, Any]:
        calls.append((offset, limit))
        return {"catalogs": [offset, offset + 1], "pagination": {"total": 4}}

    items = aiter_offset_pages(fetch, paginated_list_page("catalogs"), page_size=2)
    assert calls == []
    assert [await anext(items), await anext(items)] == [0, 1]
    assert calls == [(0, 2)]
    assert [item async for item in items] == [2, 3]
    assert calls == [(0, 2), (2, 2)]


async def test_async_pager_checks_the_page_size_before_fetching() -> None:
    async def fetch(offset: int, limit: int) -> Any:
        raise AssertionError("nothing may be fetched with a bad page size")

    with pytest.raises(PixxelConfigError, match="page_size"):
        [item async for item in aiter_offset_pages(fetch, lambda page: page, page_size=0)]


def test_offset_walk_state() -> None:
    walk = OffsetWalk(page_size=2)
    assert (walk.offset, walk.limit, walk.done) == (0, 2, False)
    walk.advance(OffsetPage([1, 2], total=3))
    assert (walk.offset, walk.done) == (2, False)
    walk.advance(OffsetPage([3], total=3))
    assert walk.done
    assert walk.offset == 2  # the last page asked for; no further offset is invented


# -- the hook's iterators -------------------------------------------------------------------------------

OFFSET_ITERATORS = [
    ("iter_aois", (), "GET", "/v0/aois", "aois"),
    ("iter_indices", (), "GET", "/v0/indices", "indices"),
    ("iter_visualizations", ("aoi-1",), "GET", "/v0/aois/aoi-1/visualizations", "visualization"),
    ("iter_assets", ("aoi-1",), "GET", "/v0/aois/aoi-1/assets", "assets"),
    ("iter_workflows", (), "GET", "/v0/workflows", "workflows"),
    ("iter_orders", (), "GET", "/v0/orders", "orders"),
    ("iter_order_items", (), "GET", "/v0/order-items", "order_items"),
    ("iter_catalogs", (), "POST", "/v0/catalogs/search", "catalogs"),
]


@pytest.mark.parametrize(
    ("name", "args", "method", "route", "items_key"),
    OFFSET_ITERATORS,
    ids=lambda v: v if isinstance(v, str) and v.startswith("iter") else "",
)
def test_offset_iterators_walk_every_page(
    hook: PixxelHook,
    requests_mock: Any,
    name: str,
    args: tuple[str, ...],
    method: str,
    route: str,
    items_key: str,
) -> None:
    items = [{"id": f"item-{n}"} for n in range(7)]
    requests_mock.register_uri(method, f"https://api.pixxel.space{route}", json=list_server(items_key, items))

    assert list(getattr(hook, name)(*args, page_size=3)) == items

    assert [offset_limit(request) for request in requests_mock.request_history] == [(0, 3), (3, 3), (6, 3)]


def test_iterators_pass_filters_through(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.get(ANY_URL, json=list_server("order_items", [{"id": 1}]))
    assert list(hook.iter_order_items(status="ACTIVE", order_ids=["o1", "o2"])) == [{"id": 1}]
    assert query_of(requests_mock.last_request) == {
        "status": "ACTIVE",
        "order_ids": "o1,o2",
        "offset": "0",
        "limit": "100",
    }

    requests_mock.post(ANY_URL, json=list_server("catalogs", [{"id": 1}]))
    assert list(hook.iter_catalogs(order_item_ids=["oi-1"])) == [{"id": 1}]
    assert requests_mock.last_request.json() == {"order_item_ids": ["oi-1"], "offset": 0, "limit": 100}


@pytest.mark.parametrize("paging", [{"offset": 5}, {"limit": 5}])
def test_iterators_refuse_offset_and_limit(
    hook: PixxelHook, requests_mock: Any, paging: dict[str, int]
) -> None:
    with pytest.raises(PixxelConfigError, match="page_size"):
        hook.iter_aois(**paging)
    assert requests_mock.call_count == 0


def test_catalog_search_defaults_to_two_per_page_but_the_iterator_asks_for_more(
    hook: PixxelHook, requests_mock: Any
) -> None:
    catalogs = [{"id": f"cat-{n}"} for n in range(5)]
    requests_mock.post(ANY_URL, json=list_server("catalogs", catalogs, default_limit=2))

    first_page = hook.search_catalogs()
    assert first_page["catalogs"] == catalogs[:2]
    assert "limit" not in requests_mock.last_request.json()

    requests_mock.reset_mock()
    assert list(hook.iter_catalogs()) == catalogs
    assert requests_mock.call_count == 1
    assert requests_mock.last_request.json() == {"offset": 0, "limit": 100}


def test_catalog_iterator_with_the_api_default_page_size_walks_two_at_a_time(
    hook: PixxelHook, requests_mock: Any
) -> None:
    catalogs = [{"id": f"cat-{n}"} for n in range(5)]
    requests_mock.post(ANY_URL, json=list_server("catalogs", catalogs, default_limit=2))
    assert list(hook.iter_catalogs(page_size=2)) == catalogs
    assert [offset_limit(r) for r in requests_mock.request_history] == [(0, 2), (2, 2), (4, 2)]


def test_archive_search_iterator_with_next_links_needs_no_extra_request(
    hook: PixxelHook, requests_mock: Any
) -> None:
    features = [{"id": n} for n in range(4)]
    requests_mock.post(ANY_URL, json=feature_server(features, with_next_links=True))
    assert list(hook.iter_archive_items(page_size=2)) == features
    assert [offset_limit(r) for r in requests_mock.request_history] == [(0, 2), (2, 2)]


def test_iterator_keeps_up_when_the_server_caps_the_page(hook: PixxelHook, requests_mock: Any) -> None:
    aois = [{"aoi_id": n} for n in range(25)]
    requests_mock.get(ANY_URL, json=list_server("aois", aois, max_limit=10))
    assert list(hook.iter_aois(page_size=100)) == aois
    assert [offset_limit(r)[0] for r in requests_mock.request_history] == [0, 10, 20]


def test_iterator_holds_one_page_at_a_time(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.get(ANY_URL, json=list_server("orders", [{"id": n} for n in range(6)]))
    orders = hook.iter_orders(page_size=2)
    assert [next(orders), next(orders)] == [{"id": 0}, {"id": 1}]
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("with_next_links", [False, True], ids=["short-page", "next-links"])
def test_archive_search_iterator(hook: PixxelHook, requests_mock: Any, with_next_links: bool) -> None:
    features = [{"id": f"TD2_{n}"} for n in range(7)]
    requests_mock.post(
        "https://api.pixxel.space/v0/archives/search",
        json=feature_server(features, with_next_links=with_next_links),
    )
    assert list(hook.iter_archive_items(collections=["pixxel-td2"], page_size=3)) == features
    bodies = [r.json() for r in requests_mock.request_history]
    assert bodies == [{"collections": ["pixxel-td2"], "offset": o, "limit": 3} for o in (0, 3, 6)]
    # Next links name another host: only their offset is used, the key goes to the API alone.
    assert {urlsplit(r.url).netloc for r in requests_mock.request_history} == {"api.pixxel.space"}


def test_archive_search_iterator_asks_once_more_after_an_exactly_full_page(
    hook: PixxelHook, requests_mock: Any
) -> None:
    features = [{"id": n} for n in range(4)]
    requests_mock.post(ANY_URL, json=feature_server(features))
    assert list(hook.iter_archive_items(page_size=2)) == features
    assert [offset_limit(r) for r in requests_mock.request_history] == [(0, 2), (2, 2), (4, 2)]


def test_collection_items_iterator(hook: PixxelHook, requests_mock: Any) -> None:
    features = [{"id": n} for n in range(5)]
    requests_mock.get(
        "https://api.pixxel.space/v0/archives/collections/pixxel-td2/items", json=feature_server(features)
    )
    assert list(hook.iter_collection_items("pixxel-td2", page_size=2)) == features
    assert [query_of(r) for r in requests_mock.request_history] == [
        {"limit": "2", "offset": str(o)} for o in (0, 2, 4)
    ]


# -- projects: page_num / page_size --------------------------------------------------------------------


def project_server(projects: list[Any], *, with_count: bool = True) -> Callable[..., Any]:
    def respond(request: Any, context: Any) -> dict[str, Any]:
        query = query_of(request)
        size, number = int(query["page_size"]), int(query["page_num"])
        page: dict[str, Any] = {"projects": projects[(number - 1) * size : number * size]}
        if with_count:
            page["count"] = len(projects)
        return page

    return respond


@pytest.mark.parametrize("with_count", [True, False], ids=["count", "no-count"])
def test_projects_iterator_walks_page_numbers(hook: PixxelHook, requests_mock: Any, with_count: bool) -> None:
    projects = [{"id": f"p{n}"} for n in range(5)]
    requests_mock.get(
        "https://api.pixxel.space/v0/projects", json=project_server(projects, with_count=with_count)
    )
    assert list(hook.iter_projects(page_size=2)) == projects
    assert [query_of(r) for r in requests_mock.request_history] == [
        {"page_num": str(n), "page_size": "2"} for n in (1, 2, 3)
    ]


def test_projects_iterator_stops_at_count_without_an_extra_request(
    hook: PixxelHook, requests_mock: Any
) -> None:
    projects = [{"id": f"p{n}"} for n in range(4)]
    requests_mock.get(ANY_URL, json=project_server(projects))
    assert list(hook.iter_projects(page_size=2)) == projects
    assert requests_mock.call_count == 2


def test_projects_iterator_stops_at_an_empty_page(hook: PixxelHook, requests_mock: Any) -> None:
    requests_mock.get(
        ANY_URL, [{"json": {"count": 10, "projects": [{"id": 1}]}}, {"json": {"count": 10, "projects": []}}]
    )
    assert list(hook.iter_projects(page_size=1)) == [{"id": 1}]
    assert requests_mock.call_count == 2


# -- image search: one request ----------------------------------------------------------------------------

IMAGE_CRITERIA = {
    "start_date": "2024-01-01T00:00:00Z",
    "end_date": "2024-02-01T00:00:00Z",
    "satellites": [{"collection_id": "pixxel-td2", "satellite_id": "sat"}],
    "geometry": {"type": "Polygon", "coordinates": []},
}


def test_image_iterator_sends_one_request_and_yields_the_map_values(
    hook: PixxelHook, requests_mock: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    items = {"A": {"id": "A"}, "B": {"id": "B"}}
    requests_mock.post(ANY_URL, json={"items": items, "pagination": {"limit": 10000, "skip": 0, "total": 2}})
    caplog.set_level(logging.WARNING)
    assert list(hook.iter_images(**IMAGE_CRITERIA)) == [{"id": "A"}, {"id": "B"}]
    assert requests_mock.call_count == 1
    assert requests_mock.last_request.json() == {**IMAGE_CRITERIA, "limit": 10000}
    captured = capfd.readouterr()
    assert "no way to fetch" not in caplog.text + captured.out + captured.err


def test_image_iterator_warns_when_more_matched_than_came_back(
    hook: PixxelHook, requests_mock: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    requests_mock.post(
        ANY_URL, json={"items": {"A": {"id": "A"}}, "pagination": {"limit": 1, "skip": 0, "total": 40}}
    )
    caplog.set_level(logging.WARNING)
    assert list(hook.iter_images(limit=1, **IMAGE_CRITERIA)) == [{"id": "A"}]
    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert "matched 40 images but returned 1" in logged
    assert "Narrow the filters" in logged
    assert json.loads(requests_mock.last_request.body)["limit"] == 1


def test_image_iterator_checks_the_limit(hook: PixxelHook, requests_mock: Any) -> None:
    with pytest.raises(PixxelConfigError, match="limit must be a whole number from 1 to 10000"):
        list(hook.iter_images(limit=20000, **IMAGE_CRITERIA))
    assert requests_mock.call_count == 0
