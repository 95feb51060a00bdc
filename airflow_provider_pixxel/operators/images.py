"""Finding imagery: Pixxel image search and the STAC archive search, each returning item ids.

* :class:`PixxelSearchImagesOperator` - ``POST /v0/search``; returns the matching item ids.
* :class:`PixxelArchiveSearchOperator` - ``POST /v0/archives/search`` over every page; returns item
  ids, optionally only the least cloudy ones.

Every argument is checked in ``execute`` before the first request, so a bad template value fails the
task with a message naming the field, and nothing is sent.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks import MAX_IMAGE_SEARCH_LIMIT
from airflow_provider_pixxel.operators.base import PixxelBaseOperator
from airflow_provider_pixxel.utils.arguments import (
    bare_geometry,
    bounding_box,
    decode_json_text,
    list_of_mappings,
    non_empty_list,
    one_of,
    require_text,
    require_text_list,
    whole_number,
)
from airflow_provider_pixxel.utils.dates import (
    DateLike,
    check_date_range,
    datetime_interval,
    search_timestamp,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_MAX_RETURNED_IDS = 1000
CLOUD_COVER_PROPERTY = "eo:cloud_cover"
_SORT_DIRECTIONS = ("asc", "desc")
_LINE_AND_POINT_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString")


# -- image search ------------------------------------------------------------------------------------


def _satellites(value: Any) -> list[dict[str, str]]:
    example = "{'collection_id': ..., 'satellite_id': ...}"
    entries = non_empty_list(
        "satellites",
        list_of_mappings("satellites", value, example=example),
        of=example,
        hint="list them with PixxelHook().list_satellites()",
    )
    checked = []
    for position, entry in enumerate(entries):
        checked.append(
            {
                "collection_id": require_text(
                    f"satellites[{position}].collection_id", entry.get("collection_id")
                ),
                "satellite_id": require_text(
                    f"satellites[{position}].satellite_id", entry.get("satellite_id")
                ),
            }
        )
    return checked


def _filters(value: Any) -> list[dict[str, Any]] | None:
    """``[{"id": "eo:cloud_cover", "min": 0, "max": 20}]``; ``{"eo:cloud_cover": [0, 20]}`` also works."""
    value = decode_json_text("filters", value)
    if isinstance(value, Mapping):
        value = [{"id": key, "min": bounds[0], "max": bounds[1]} for key, bounds in _pairs(value)]
    entries = list_of_mappings("filters", value, example="{'id': 'eo:cloud_cover', 'min': 0, 'max': 20}")
    if entries is None:
        return None
    checked = []
    for position, entry in enumerate(entries):
        low = whole_number(f"filters[{position}].min", entry.get("min"))
        high = whole_number(f"filters[{position}].max", entry.get("max"))
        if low > high:
            raise PixxelConfigError(f"filters[{position}]: min {low} is greater than max {high}")
        checked.append(
            {"id": require_text(f"filters[{position}].id", entry.get("id")), "min": low, "max": high}
        )
    return checked


def _pairs(value: Mapping[str, Any]) -> list[tuple[str, Sequence[Any]]]:
    pairs = []
    for key, bounds in value.items():
        if not isinstance(bounds, Sequence) or isinstance(bounds, str) or len(bounds) != 2:
            raise PixxelConfigError(f"filters[{key!r}] must be a [min, max] pair; got {bounds!r}")
        pairs.append((str(key), bounds))
    return pairs


def _cap_ids(log: Any, ids: list[str], total: int | None, cap: int, what: str) -> list[str]:
    """At most ``cap`` ids, with a warning saying how many were left out and how to see them."""
    if len(ids) <= cap:
        return ids
    log.warning(
        "%s matched %s items; returning only the first %d ids to keep the XCom small. Narrow the "
        "search, or raise max_returned_ids if downstream tasks really need more",
        what,
        total if total is not None else f"more than {cap}",
        cap,
    )
    return ids[:cap]


class PixxelSearchImagesOperator(PixxelBaseOperator):
    """Search Pixxel and open-data imagery over a geometry and dates, and return the item ids.

    Dates accept ``date``/``datetime`` objects, ``YYYY-MM-DD`` (``{{ ds }}``), ``YYYY_MM_DD`` and ISO
    date-times; a date-only ``end_date`` includes that whole day. The ids (at most
    ``max_returned_ids``) are the task's XCom, ready for :class:`PixxelCreateAOIOperator`'s
    ``item_ids``.

    :param start_date: start of the capture window (kept as ``search_start_date``: ``start_date`` is
        the task's own schedule bound in Airflow).
    :param end_date: end of the capture window, not before ``start_date`` (kept as ``search_end_date``).
    :param satellites: ``[{"collection_id": "sentinel-2-l2a", "satellite_id": "<uuid>"}]``.
    :param geometry: GeoJSON Polygon/MultiPolygon (or one Feature), checked before sending.
    :param filters: ``[{"id": "eo:cloud_cover", "min": 0, "max": 20}]`` (or ``{"eo:cloud_cover": [0, 20]}``).
    :param limit: how many images the API returns, 1-10000 (the endpoint has no further pages).
    :param max_returned_ids: cap on the ids returned as XCom; a warning names what was left out.

    Example::

        search = PixxelSearchImagesOperator(
            task_id="search",
            start_date="{{ macros.ds_add(ds, -30) }}",
            end_date="{{ ds }}",
            satellites=[{"collection_id": "sentinel-2-l2a", "satellite_id": S2_SATELLITE_ID}],
            geometry=FIELD_POLYGON,
            filters=[{"id": "eo:cloud_cover", "min": 0, "max": 20}],
            limit=50,
        )
    """

    template_fields: Sequence[str] = (
        *PixxelBaseOperator.template_fields,
        "search_start_date",
        "search_end_date",
        "satellites",
        "filters",
        "geometry",
        "limit",
    )
    template_fields_renderers = {"satellites": "json", "filters": "json", "geometry": "json"}

    def __init__(
        self,
        *,
        start_date: DateLike,
        end_date: DateLike,
        satellites: Sequence[Mapping[str, str]],
        geometry: Any,
        filters: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[int]] | None = None,
        limit: int = 100,
        max_returned_ids: int = DEFAULT_MAX_RETURNED_IDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # BaseOperator.start_date/end_date are the task's schedule bounds (datetimes the scheduler
        # reads), so the search window lives under other attribute names.
        self.search_start_date = start_date
        self.search_end_date = end_date
        default_args = kwargs.get("default_args") or {}
        # default_args fills any constructor argument of the same name, so a DAG's
        # default_args["start_date"] would silently become the search start when it is not passed.
        self._dates_like_default_args = [
            name
            for name, value in (("start_date", start_date), ("end_date", end_date))
            if name in default_args and default_args[name] is value
        ]
        self.satellites = satellites
        self.geometry = geometry
        self.filters = filters
        self.limit = limit
        self.max_returned_ids = max_returned_ids

    def build_criteria(self) -> dict[str, Any]:
        """The request body fields, checked; raises :class:`PixxelConfigError` before any request."""
        for name in self._dates_like_default_args:
            self.log.warning(
                "%s is the DAG's default_args[%r] (the schedule's bound, filled in when the argument "
                "is not passed). If that is not the search window you meant, pass %s explicitly",
                name,
                name,
                name,
            )
        check_date_range(self.search_start_date, self.search_end_date)
        return {
            "start_date": search_timestamp(self.search_start_date, field="start_date"),
            "end_date": search_timestamp(self.search_end_date, field="end_date", end_of_day=True),
            "satellites": _satellites(self.satellites),
            "geometry": bare_geometry(self.geometry, "geometry"),
            "filters": _filters(self.filters),
            "limit": whole_number("limit", self.limit, low=1, high=MAX_IMAGE_SEARCH_LIMIT),
        }

    def execute(self, context: Context) -> list[str]:
        criteria = self.build_criteria()
        cap = whole_number("max_returned_ids", self.max_returned_ids, low=1)
        self.log.info(
            "Searching images from %s to %s in %s",
            criteria["start_date"],
            criteria["end_date"],
            ", ".join(s["collection_id"] for s in criteria["satellites"]),
        )
        ids = [str(item.get("id")) for item in self.hook.iter_images(**criteria) if item.get("id")]
        self.log.info("The image search returned %d images", len(ids))
        return _cap_ids(self.log, ids, len(ids), cap, "The image search")


# -- STAC archive search -----------------------------------------------------------------------------


def _intersects(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping) and value.get("type") in _LINE_AND_POINT_TYPES:
        if not isinstance(value.get("coordinates"), Sequence) or not value.get("coordinates"):
            raise PixxelConfigError(
                f"intersects: a {value['type']} needs non-empty coordinates; got {value!r}"
            )
        return {"type": value["type"], "coordinates": value["coordinates"]}
    return bare_geometry(value, "intersects")


def _sortby(value: Any) -> list[dict[str, str]] | None:
    entries = list_of_mappings(
        "sortby", value, example="{'field': \"properties->>'datetime'\", 'direction': 'desc'}"
    )
    if entries is None:
        return None
    checked = []
    for position, entry in enumerate(entries):
        direction = one_of(
            f"sortby[{position}].direction",
            entry.get("direction", "asc"),
            _SORT_DIRECTIONS,
            hint="asc or desc as the STAC sort extension spells them, not ascending or descending",
        )
        checked.append(
            {"field": require_text(f"sortby[{position}].field", entry.get("field")), "direction": direction}
        )
    return checked


def cloud_cover(item: Mapping[str, Any]) -> float | None:
    """An item's ``eo:cloud_cover`` percentage, or None when it does not give a usable one."""
    value: Any = (item.get("properties") or {}).get(CLOUD_COVER_PROPERTY)
    if isinstance(value, bool):
        return None
    try:
        cover = float(value)
    except (TypeError, ValueError):
        return None
    return cover if math.isfinite(cover) else None


class PixxelArchiveSearchOperator(PixxelBaseOperator):
    """Search the STAC archive of purchasable imagery, walking every page, and return item ids.

    With ``max_items`` the task returns only the ``max_items`` least cloudy items (by the
    ``eo:cloud_cover`` property; items without one come last), keeping just that many in memory
    while it walks the pages. Without it, the ids come in the API's order, at most
    ``max_returned_ids`` of them.

    :param collections: collection ids to search, e.g. ``["pixxel-td1"]``.
    :param bbox: ``[west, south, east, north]``; not together with ``intersects``.
    :param intersects: GeoJSON geometry the items must intersect.
    :param datetime: an RFC 3339 instant or ``start/end`` interval (``..`` for an open end).
    :param start: instead of ``datetime``: the start of the interval (a date or date-time).
    :param end: instead of ``datetime``: the end (a date-only end includes that day).
    :param ids: only these item ids.
    :param query: STAC property filters, e.g. ``{"eo:cloud_cover": {"lt": 20}}``.
    :param sortby: ``[{"field": "properties->>'datetime'", "direction": "desc"}]``.
    :param limit: page size asked of the API (1-10000).
    :param max_items: return only this many items, the least cloudy first.
    :param max_returned_ids: without ``max_items``, stop after this many ids (a warning says so).

    Example::

        best = PixxelArchiveSearchOperator(
            task_id="archive_search",
            collections=["pixxel-td1"],
            intersects=FIELD_POLYGON,
            start="{{ macros.ds_add(ds, -90) }}",
            end="{{ ds }}",
            max_items=3,
        )
    """

    template_fields: Sequence[str] = (
        *PixxelBaseOperator.template_fields,
        "collections",
        "bbox",
        "intersects",
        "datetime",
        "start",
        "end",
        "ids",
        "query",
        "sortby",
        "limit",
        "max_items",
    )
    template_fields_renderers = {
        "collections": "json",
        "bbox": "json",
        "intersects": "json",
        "ids": "json",
        "query": "json",
        "sortby": "json",
    }

    def __init__(
        self,
        *,
        collections: Sequence[str] | None = None,
        bbox: Sequence[float] | None = None,
        intersects: Any = None,
        datetime: str | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
        ids: Sequence[str] | None = None,
        query: Mapping[str, Any] | None = None,
        sortby: Sequence[Mapping[str, str]] | None = None,
        limit: int = 100,
        max_items: int | None = None,
        max_returned_ids: int = DEFAULT_MAX_RETURNED_IDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collections = collections
        self.bbox = bbox
        self.intersects = intersects
        self.datetime = datetime
        self.start = start
        self.end = end
        self.ids = ids
        self.query = query
        self.sortby = sortby
        self.limit = limit
        self.max_items = max_items
        self.max_returned_ids = max_returned_ids

    def _datetime_filter(self) -> str | None:
        has_range = self.start is not None or self.end is not None
        if self.datetime not in (None, "") and has_range:
            raise PixxelConfigError(
                "give either datetime or start/end, not both (start/end build the datetime interval)"
            )
        if has_range:
            return datetime_interval(self.start, self.end)
        if self.datetime in (None, ""):
            return None
        return require_text("datetime", self.datetime)

    def build_filters(self) -> dict[str, Any]:
        """The search body (without paging), checked; raises :class:`PixxelConfigError` before any request."""
        bbox = bounding_box("bbox", self.bbox)
        intersects = _intersects(self.intersects)
        if bbox is not None and intersects is not None:
            raise PixxelConfigError(
                "bbox and intersects cannot be combined in one STAC search; pass one of them"
            )
        query = decode_json_text("query", self.query)
        if query is not None and not isinstance(query, Mapping):
            raise PixxelConfigError(
                f"query must be a mapping such as {{'eo:cloud_cover': {{'lt': 20}}}}; got {query!r}"
            )
        filters: dict[str, Any] = {
            "collections": None
            if self.collections is None
            else require_text_list("collections", self.collections),
            "bbox": bbox,
            "intersects": intersects,
            "datetime": self._datetime_filter(),
            "ids": None if self.ids is None else require_text_list("ids", self.ids),
            "query": None if query is None else dict(query),
            "sortby": _sortby(self.sortby),
        }
        return {key: value for key, value in filters.items() if value is not None}

    def execute(self, context: Context) -> list[str]:
        filters = self.build_filters()
        page_size = whole_number("limit", self.limit, low=1, high=MAX_IMAGE_SEARCH_LIMIT)
        cap = whole_number("max_returned_ids", self.max_returned_ids, low=1)
        best = None if self.max_items is None else whole_number("max_items", self.max_items, low=1, high=cap)
        self.log.info("Searching the STAC archive with %s", sorted(filters))
        items = self.hook.iter_archive_items(page_size=page_size, **filters)
        if best is not None:
            return self._least_cloudy(items, best)
        ids: list[str] = []
        for item in items:
            if item.get("id"):
                ids.append(str(item["id"]))
            if len(ids) > cap:
                # One more than the cap proves there are more; stop paging instead of walking them all.
                break
        self.log.info("The archive search found %d items", len(ids))
        return _cap_ids(self.log, ids, None, cap, "The archive search")

    def _least_cloudy(self, items: Iterable[Mapping[str, Any]], count: int) -> list[str]:
        def ranked() -> Iterator[tuple[tuple[bool, float, int], str]]:
            # Items without a cloud cover sort last; the position keeps the API's order among equals.
            for position, item in enumerate(items):
                if item.get("id"):
                    cover = cloud_cover(item)
                    yield (cover is None, 0.0 if cover is None else cover, position), str(item["id"])

        # nsmallest keeps only `count` entries in memory however many pages are walked.
        chosen = heapq.nsmallest(count, ranked())
        for (no_cover, cover, _), item_id in chosen:
            self.log.info("Chose %s (cloud cover %s)", item_id, "unknown" if no_cover else f"{cover:g} %")
        return [item_id for _, item_id in chosen]
