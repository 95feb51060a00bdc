"""Finding imagery and turning it into an AOI: image search, STAC archive search, AOIs and indices.

* :class:`PixxelSearchImagesOperator` - ``POST /v0/search``; returns the matching item ids.
* :class:`PixxelArchiveSearchOperator` - ``POST /v0/archives/search`` over every page; returns item
  ids, optionally only the least cloudy ones.
* :class:`PixxelCreateAOIOperator` - ``POST /v0/aois`` and wait until the AOI is processed.
* :class:`PixxelCreateIndexOperator` - ``POST /v0/indices`` (a custom band expression).

Every argument is checked in ``execute`` before the first request, so a bad template value fails the
task with a message naming the field, and nothing is sent.
"""

from __future__ import annotations

import ast
import heapq
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelValidationError
from airflow_provider_pixxel.links import PixxelAuroraAOILink
from airflow_provider_pixxel.operators.base import PixxelBaseOperator, PixxelResumableOperator
from airflow_provider_pixxel.utils.dates import (
    DateLike,
    check_date_range,
    datetime_interval,
    search_timestamp,
)
from airflow_provider_pixxel.utils.lazy_import import lazy_import

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_pixxel.utils import geometry
else:
    # Needed once the task runs, not while a DAG file is parsed (see utils/lazy_import.py).
    geometry = lazy_import("airflow_provider_pixxel.utils.geometry")

MAX_IMAGE_SEARCH_LIMIT = 10000
DEFAULT_MAX_RETURNED_IDS = 1000
EXPRESSION_TYPES = ("index", "composite", "grayscale")
CLOUD_COVER_PROPERTY = "eo:cloud_cover"
_SORT_DIRECTIONS = ("asc", "desc")
_LINE_AND_POINT_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString")


# -- argument checks shared by the AOI and visualization operators ------------------------------------


def require_text(field: str, value: Any) -> str:
    """``value`` stripped; a :class:`PixxelConfigError` naming ``field`` unless a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise PixxelConfigError(f"{field} must be a non-empty string; got {value!r}")
    return value.strip()


def decode_json_text(field: str, value: Any) -> Any:
    """A list or mapping given as text (a template rendered without native objects) decoded again."""
    if isinstance(value, str) and value.strip().startswith(("[", "{")):
        text = value.strip()
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise PixxelConfigError(
                    f"{field} looks like a list or mapping but is neither JSON nor a Python literal: "
                    f"{text[:80]!r}"
                ) from None
    return value


def require_text_list(field: str, value: Any) -> list[str]:
    """A list of non-empty strings (one string counts as a list of one), each stripped."""
    value = decode_json_text(field, value)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, (bytes, Mapping)):
        raise PixxelConfigError(f"{field} must be a list of strings; got {type(value).__name__} {value!r}")
    items = list(value)
    if not items:
        raise PixxelConfigError(f"{field} must name at least one value; got an empty list")
    return [require_text(f"{field}[{position}]", item) for position, item in enumerate(items)]


def require_count(field: str, value: Any, low: int, high: int | None = None) -> int:
    """A whole number in ``[low, high]``; numeric strings (rendered templates) are accepted."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"from {low} to {high}" if high is not None else f"of {low} or more"
        raise PixxelConfigError(f"{field} must be a whole number {bounds}; got {value!r}")
    return value


def bare_geometry(value: Any, field: str) -> dict[str, Any]:
    """A checked GeoJSON Polygon or MultiPolygon; one Feature (or a collection of one) is unwrapped."""
    normalized = geometry.normalize_aoi_geometry(value, field=field, want="any")
    if normalized["type"] == "FeatureCollection":
        features = normalized["features"]
        if len(features) != 1:
            raise PixxelConfigError(
                f"{field}: a FeatureCollection of {len(features)} features cannot be sent as one geometry. "
                "Pass a single Polygon or MultiPolygon (merge the features into a MultiPolygon)"
            )
        normalized = features[0]
    if normalized["type"] == "Feature":
        normalized = normalized["geometry"]
    return dict(normalized)


# -- image search ------------------------------------------------------------------------------------


def _satellites(value: Any) -> list[dict[str, str]]:
    value = decode_json_text("satellites", value)
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise PixxelConfigError(
            "satellites must be a non-empty list of {'collection_id': ..., 'satellite_id': ...}; "
            f"got {value!r}. List them with PixxelHook().list_satellites()"
        )
    checked = []
    for position, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise PixxelConfigError(
                f"satellites[{position}] must be a mapping with collection_id and satellite_id; got {entry!r}"
            )
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
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = [{"id": key, "min": bounds[0], "max": bounds[1]} for key, bounds in _pairs(value)]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise PixxelConfigError(
            "filters must be a list of {'id': 'eo:cloud_cover', 'min': 0, 'max': 20}; "
            f"got {type(value).__name__} {value!r}"
        )
    checked = []
    for position, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise PixxelConfigError(
                f"filters[{position}] must be a mapping with id, min and max; got {entry!r}"
            )
        low = _whole_number(f"filters[{position}].min", entry.get("min"))
        high = _whole_number(f"filters[{position}].max", entry.get("max"))
        if low > high:
            raise PixxelConfigError(f"filters[{position}]: min {low} is greater than max {high}")
        checked.append(
            {"id": require_text(f"filters[{position}].id", entry.get("id")), "min": low, "max": high}
        )
    return checked


def _whole_number(field: str, value: Any) -> int:
    """An integer; a rendered template's ``"20"`` is accepted, ``20.5`` or ``True`` are not."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PixxelConfigError(f"{field} must be a whole number (the API takes integers); got {value!r}")
    return value


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
            "limit": require_count("limit", self.limit, 1, MAX_IMAGE_SEARCH_LIMIT),
        }

    def execute(self, context: Context) -> list[str]:
        criteria = self.build_criteria()
        cap = require_count("max_returned_ids", self.max_returned_ids, 1)
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


def _bbox(value: Any) -> list[float] | None:
    value = decode_json_text("bbox", value)
    if value is None:
        return None
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) not in (4, 6)
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
        )
    ):
        raise PixxelConfigError(
            f"bbox must be [west, south, east, north] in degrees (or 6 numbers with heights); got {value!r}"
        )
    numbers = [float(v) for v in value]
    half = len(numbers) // 2
    west, south, east, north = numbers[0], numbers[1], numbers[half], numbers[half + 1]
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise PixxelConfigError(f"bbox longitudes must be within -180..180; got west={west}, east={east}")
    if not (-90 <= south <= north <= 90):
        raise PixxelConfigError(
            f"bbox latitudes must be within -90..90 with south <= north; got south={south}, north={north}"
        )
    # west > east is allowed: STAC uses it for a box that crosses the antimeridian.
    return numbers


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
    value = decode_json_text("sortby", value)
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise PixxelConfigError(
            "sortby must be a list such as [{'field': \"properties->>'datetime'\", 'direction': 'desc'}]; "
            f"got {value!r}"
        )
    checked = []
    for position, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise PixxelConfigError(
                f"sortby[{position}] must be a mapping with field and direction; got {entry!r}"
            )
        direction = str(entry.get("direction", "asc")).strip().lower()
        if direction not in _SORT_DIRECTIONS:
            raise PixxelConfigError(
                f"sortby[{position}].direction must be asc or desc; got {entry.get('direction')!r}"
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
        bbox = _bbox(self.bbox)
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
        page_size = require_count("limit", self.limit, 1, MAX_IMAGE_SEARCH_LIMIT)
        cap = require_count("max_returned_ids", self.max_returned_ids, 1)
        best = None if self.max_items is None else require_count("max_items", self.max_items, 1, cap)
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


# -- AOI ---------------------------------------------------------------------------------------------


class PixxelCreateAOIOperator(PixxelResumableOperator):
    """Create an AOI over a polygon from chosen images and wait until Pixxel has processed it.

    The geometry is checked and normalised (closed rings, RFC 7946 winding, one Polygon) before
    anything is sent. The AOI id is kept in ``task_state_store`` as soon as it exists, so a retried
    task reconnects to it instead of creating a second AOI. Returns ``{"aoi_id", "status"}``.

    :param name: AOI name (unique in the workspace: the API answers 409 for a duplicate).
    :param description: what the AOI is for.
    :param satellite_id: the satellite's UUID (``PixxelHook().list_satellites()``).
    :param provider: ``pixxel`` (TD, Firefly) or ``planetary`` (open data).
    :param geometry: a GeoJSON Polygon (or a Feature / one-feature collection holding one).
    :param item_ids: STAC item ids to include, e.g. the XCom of :class:`PixxelSearchImagesOperator`.
    :param project_id: the project; defaults to the connection's ``project_id`` extra.

    Waiting (``wait_for_completion``, ``poll_interval``, ``timeout``, ``deferrable``,
    ``allow_partial`` for ``partial_success``) works as in every Pixxel waiting operator.

    Example::

        aoi = PixxelCreateAOIOperator(
            task_id="create_aoi",
            name="field-42-{{ ds_nodash }}",
            description="Field 42 monitoring",
            satellite_id=S2_SATELLITE_ID,
            provider="planetary",
            geometry=FIELD_POLYGON,
            item_ids=search.output,
            deferrable=True,
        )
    """

    operator_extra_links = (PixxelAuroraAOILink(),)
    watch_kind = "aoi"
    external_id_key = "pixxel_aoi_ids"
    template_fields: Sequence[str] = (
        *PixxelBaseOperator.template_fields,
        "name",
        "description",
        "satellite_id",
        "provider",
        "project_id",
        "geometry",
        "item_ids",
    )
    template_fields_renderers = {"geometry": "json", "item_ids": "json"}

    def __init__(
        self,
        *,
        name: str,
        description: str,
        satellite_id: str,
        provider: str,
        geometry: Any,
        item_ids: Sequence[str],
        project_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.description = description
        self.satellite_id = satellite_id
        self.provider = provider
        self.geometry = geometry
        self.item_ids = item_ids
        self.project_id = project_id

    def build_request(self) -> dict[str, Any]:
        """The ``create_aoi`` arguments, checked; raises :class:`PixxelConfigError` before any request."""
        return {
            "name": require_text("name", self.name),
            "description": require_text("description", self.description),
            "satellite_id": require_text("satellite_id", self.satellite_id),
            "provider": require_text("provider", self.provider).lower(),
            "geometry": geometry.normalize_aoi_geometry(self.geometry, field="geometry", want="polygon"),
            "item_ids": require_text_list("item_ids", self.item_ids),
            "project_id": self.hook.resolve_project_id(
                None if self.project_id in (None, "") else require_text("project_id", self.project_id)
            ),
        }

    def lineage_outputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"aoi/{ids['aoi_id']}"]

    def start(self, context: Context) -> dict[str, str]:
        from airflow_provider_pixxel.hooks.reconcile import aoi_lookup, create_exactly_once

        request = self.build_request()
        try:
            aoi = create_exactly_once(
                self.hook,
                lambda: self.hook.create_aoi(**request),
                aoi_lookup(self.hook, request["name"]),
                journal=self.creation_journal(context),
            )
        except PixxelValidationError as error:
            if error.status == 409:
                raise AirflowFailException(
                    f"An AOI named {request['name']!r} already exists (AOI names are unique): choose "
                    f"another name, e.g. one that includes {{{{ ds_nodash }}}}. API said: {error.message}"
                ) from error
            raise
        aoi_id = (aoi or {}).get("aoi_id")
        if not aoi_id:
            raise AirflowFailException(
                f"The API created AOI {request['name']!r} but returned no aoi_id: {aoi!r}"
            )
        self.log.info("Created AOI %s (%s), status %s", aoi_id, request["name"], aoi.get("status"))
        return {"aoi_id": str(aoi_id)}


# -- indices -----------------------------------------------------------------------------------------


def _rescale(value: Any) -> list[int]:
    value = decode_json_text("rescale", value)
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise PixxelConfigError(f"rescale must be [min, max] whole numbers, e.g. [0, 1]; got {value!r}")
    low, high = value
    if low >= high:
        raise PixxelConfigError(f"rescale min must be below max; got [{low}, {high}]")
    return [low, high]


def _same_expression(first: Any, second: Any) -> bool:
    return re.sub(r"\s+", "", str(first or "")) == re.sub(r"\s+", "", str(second or ""))


class PixxelCreateIndexOperator(PixxelBaseOperator):
    """Create a custom spectral index (a band expression) and return its id.

    Index names are unique: a second index with the same name is refused with HTTP 409. By default
    that fails the task with a message saying so; with ``reuse_existing=True`` the task looks the
    index up by name and returns its id instead, provided its expression and type match.

    :param name: index name, e.g. ``"NDVI-custom"``.
    :param description: what the index shows.
    :param expression: band expression, e.g. ``"(B08-B04)/(B08+B04)"``.
    :param expression_type: ``index``, ``composite`` or ``grayscale``.
    :param rescale: ``[min, max]`` whole numbers.
    :param colormap: colormap name, e.g. ``"rdylgn"``.
    :param satellite_id: the satellite whose band names the expression uses.
    :param reuse_existing: return the id of an existing index of this name instead of failing.

    Example::

        index = PixxelCreateIndexOperator(
            task_id="create_index",
            name="ndvi-custom",
            description="NDVI",
            expression="(B08-B04)/(B08+B04)",
            expression_type="index",
            rescale=[-1, 1],
            colormap="rdylgn",
            satellite_id=S2_SATELLITE_ID,
            reuse_existing=True,
        )
    """

    template_fields: Sequence[str] = (
        *PixxelBaseOperator.template_fields,
        "name",
        "description",
        "expression",
        "expression_type",
        "rescale",
        "colormap",
        "satellite_id",
    )
    template_fields_renderers = {"rescale": "json"}

    def __init__(
        self,
        *,
        name: str,
        description: str,
        expression: str,
        expression_type: str,
        rescale: Sequence[int],
        colormap: str,
        satellite_id: str,
        reuse_existing: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.description = description
        self.expression = expression
        self.expression_type = expression_type
        self.rescale = rescale
        self.colormap = colormap
        self.satellite_id = satellite_id
        self.reuse_existing = reuse_existing

    def build_request(self) -> dict[str, Any]:
        """The ``create_index`` arguments, checked; raises :class:`PixxelConfigError` before any request."""
        expression_type = require_text("expression_type", self.expression_type).lower()
        if expression_type not in EXPRESSION_TYPES:
            raise PixxelConfigError(
                f"expression_type must be one of {', '.join(EXPRESSION_TYPES)}; got {self.expression_type!r}"
            )
        return {
            "name": require_text("name", self.name),
            "description": require_text("description", self.description),
            "expression": require_text("expression", self.expression),
            "expression_type": expression_type,
            "rescale": _rescale(self.rescale),
            "colormap": require_text("colormap", self.colormap),
            "satellite_id": require_text("satellite_id", self.satellite_id),
        }

    def execute(self, context: Context) -> str:
        request = self.build_request()
        try:
            created = self.hook.create_index(**request)
        except PixxelValidationError as error:
            if error.status != 409:
                raise
            return self._existing_index(request, error)
        index_id = (created or {}).get("id")
        if not index_id:
            raise AirflowFailException(
                f"The API created index {request['name']!r} but returned no id: {created!r}"
            )
        self.log.info("Created index %s (%s)", index_id, request["name"])
        return str(index_id)

    def _existing_index(self, request: Mapping[str, Any], conflict: PixxelValidationError) -> str:
        name = request["name"]
        existing = next((index for index in self.hook.iter_indices() if index.get("name") == name), None)
        found = f" (id {existing.get('id')})" if existing else ""
        if not self.reuse_existing:
            raise AirflowFailException(
                f"An index named {name!r} already exists{found}: index names are unique. Choose another "
                f"name, or set reuse_existing=True to use the existing index. API said: {conflict.message}"
            ) from conflict
        if existing is None or not existing.get("id"):
            raise AirflowFailException(
                f"Creating index {name!r} was refused as a conflict ({conflict.message}), but no index of "
                "that name is visible to this service user, so there is nothing to reuse"
            ) from conflict
        mismatched = [
            field
            for field in ("expression", "expression_type")
            if not _same_expression(existing.get(field), request[field])
        ]
        if mismatched:
            details = ", ".join(
                f"{f}: existing {existing.get(f)!r} vs requested {request[f]!r}" for f in mismatched
            )
            raise AirflowFailException(
                f"An index named {name!r} already exists{found} but differs ({details}); reusing it would "
                "compute something else. Choose another name"
            ) from conflict
        self.log.info("Index %r already exists; reusing it%s", name, found)
        return str(existing["id"])
