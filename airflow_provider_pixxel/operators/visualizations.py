"""Visualizations of an index over an AOI, their legends, and their PNG and SLD renderings.

* :class:`PixxelCreateVisualizationOperator` - compute an index over an AOI and wait for it.
* :class:`PixxelUpdateVisualizationMetadataOperator` - set a legend (PUT) or recompute it (PATCH).
* :class:`PixxelGenerateIndexPngOperator` - render one date as a PNG file.
* :class:`PixxelGenerateSldOperator` - write GeoServer SLD styles, one file per mode and date.

Files are written atomically (a ``.part`` file renamed into place, a ``.sha256`` beside it), so a
re-run of a day replaces the file whole and a crash never leaves a half-written one under the final
name. Destinations are local paths or ``ObjectStoragePath`` URLs (``s3://...``, ``gs://...``).
"""

from __future__ import annotations

import datetime
import math
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowSkipException

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelError, PixxelValidationError
from airflow_provider_pixxel.links import PixxelAuroraVisualizationLink
from airflow_provider_pixxel.operators.base import PixxelBaseOperator, PixxelResumableOperator
from airflow_provider_pixxel.operators.get_or_create import Existing, create_or_adopt
from airflow_provider_pixxel.spec import enum_values
from airflow_provider_pixxel.utils.arguments import (
    decode_json_text,
    non_empty_list,
    one_of,
    require_text,
    require_text_list,
    whole_number,
)
from airflow_provider_pixxel.utils.dates import DateLike, parse_date, visualization_date
from airflow_provider_pixxel.utils.lazy_import import lazy_import

if TYPE_CHECKING:
    import xml.etree.ElementTree as ElementTree

    from airflow.sdk import Context

    from airflow_provider_pixxel.hooks.download import Destination
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook
else:
    # Needed to check a generated SLD, not while a DAG file is parsed (see utils/lazy_import.py).
    ElementTree = lazy_import("xml.etree.ElementTree")

MAX_DYNAMIC_BINS = 15
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_LEGEND_FIELDS = ("min", "max", "color", "label")
# Fields of a legend item as the API returns it that an update does not take: dropped, not refused,
# so a legend read from the API can be edited and sent back.
_READ_ONLY_LEGEND_FIELDS = ("area", "area_percentage")
_SLD_ROOT = "StyledLayerDescriptor"


def _dates(field: str, value: Any) -> list[str]:
    """``YYYY_MM_DD`` strings from one date or a list of dates (``{{ ds }}``, date objects...)."""
    value = decode_json_text(field, value)
    days = non_empty_list(
        field, [value] if isinstance(value, (str, datetime.date)) else value, of="dates, or one date"
    )
    converted = [visualization_date(day, field=f"{field}[{n}]") for n, day in enumerate(days)]
    return list(dict.fromkeys(converted))


def _is_directory(destination: Destination) -> bool:
    text = str(destination)
    if text.endswith(("/", "\\")):
        return True
    return "://" not in text and Path(text).expanduser().is_dir()


# -- create --------------------------------------------------------------------------------------------


class PixxelCreateVisualizationOperator(PixxelResumableOperator):
    """Compute an index over an AOI's assets and wait until the visualization is ready.

    The visualization id is kept in ``task_state_store`` as soon as it exists, so a retried task
    reconnects instead of computing it again. Returns ``{"aoi_id", "visualization_id", "status"}``.

    An AOI has one visualization of an index per set of source assets and resolution: the API answers
    another with 409. With ``reuse_existing=True`` that visualization is adopted instead (returned and
    waited on as if created; see :mod:`~airflow_provider_pixxel.operators.get_or_create`).

    :param aoi_id: the AOI, once processed (see ``PixxelCreateAOIOperator``).
    :param index_id: a preset or custom index id.
    :param src_asset_ids: only these assets of the AOI (default: all).
    :param resolution: output resolution in metres (default: the satellite's).
    :param reuse_existing: adopt the AOI's visualization of the index for these assets instead of failing.

    Waiting (``wait_for_completion``, ``poll_interval``, ``timeout``, ``deferrable``,
    ``allow_partial`` for ``partial_success``) works as in every Pixxel waiting operator.

    Example::

        visualization = PixxelCreateVisualizationOperator(
            task_id="ndvi",
            aoi_id="{{ ti.xcom_pull('create_aoi')['aoi_id'] }}",
            index_id=NDVI_INDEX_ID,
            resolution=10,
            reuse_existing=True,
            deferrable=True,
        )
    """

    operator_extra_links = (PixxelAuroraVisualizationLink(),)
    watch_kind = "visualization"
    external_id_key = "pixxel_visualization_ids"
    template_fields: Sequence[str] = (
        *PixxelBaseOperator.template_fields,
        "aoi_id",
        "index_id",
        "src_asset_ids",
        "resolution",
    )
    template_fields_renderers = {"src_asset_ids": "json"}

    def __init__(
        self,
        *,
        aoi_id: str,
        index_id: str,
        src_asset_ids: Sequence[str] | None = None,
        resolution: float | None = None,
        reuse_existing: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aoi_id = aoi_id
        self.index_id = index_id
        self.src_asset_ids = src_asset_ids
        self.resolution = resolution
        self.reuse_existing = reuse_existing

    def _resolution(self) -> float | None:
        if self.resolution in (None, ""):
            return None
        try:
            value = float(self.resolution)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(self.resolution, bool) or not math.isfinite(value) or value <= 0:
            raise PixxelConfigError(
                f"resolution must be a positive number of metres, e.g. 10; got {self.resolution!r}"
            )
        return value

    def build_request(self) -> dict[str, Any]:
        """The ``create_visualization`` arguments, checked; raises before any request."""
        return {
            "aoi_id": require_text("aoi_id", self.aoi_id),
            "index_id": require_text("index_id", self.index_id),
            "src_asset_ids": None
            if self.src_asset_ids is None
            else require_text_list("src_asset_ids", self.src_asset_ids),
            "resolution": self._resolution(),
        }

    def lineage_inputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"aoi/{ids['aoi_id']}"]

    def lineage_outputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"aoi/{ids['aoi_id']}/visualization/{ids['visualization_id']}"]

    def start(self, context: Context) -> dict[str, str]:
        from airflow_provider_pixxel.hooks.reconcile import create_exactly_once, visualization_lookup

        request = self.build_request()
        aoi_id = request.pop("aoi_id")
        created, adopted = create_or_adopt(
            self.log,
            self._existing(aoi_id, request["index_id"]),
            lambda: create_exactly_once(
                self.hook,
                lambda: self.hook.create_visualization(aoi_id, **request),
                visualization_lookup(self.hook, aoi_id, request["index_id"]),
                journal=self.creation_journal(context),
            ),
            reuse_existing=self.reuse_existing,
        )
        visualization_id = (created or {}).get("id")
        if not visualization_id:
            raise PixxelError(
                f"The API created a visualization on AOI {aoi_id} but returned no id: {created!r}"
            )
        if not adopted:
            self.log.info(
                "Created visualization %s of index %s on AOI %s, status %s",
                visualization_id,
                request["index_id"],
                aoi_id,
                created.get("status"),
            )
        return {"aoi_id": aoi_id, "visualization_id": str(visualization_id)}

    def _existing(self, aoi_id: str, index_id: str) -> Existing:
        """The visualization the API says clashes: of this index on this AOI, for the same assets.

        A listed visualization does not show its source assets or resolution, so it is found only once
        the API has answered 409 (no look before creating): as the id the answer names, when it names
        one, else as the AOI's only visualization of the index.
        """

        def find(conflict: PixxelValidationError | None) -> list[Mapping[str, Any]]:
            candidates = [
                visualization
                for visualization in self.hook.iter_visualizations(aoi_id, index_id=index_id)
                if str(visualization.get("index_id")) == index_id
            ]
            details = conflict.details if conflict is not None else None
            named = details.get("visualization_id") if isinstance(details, Mapping) else None
            chosen = [v for v in candidates if named is not None and str(v.get("id")) == str(named)]
            return chosen or candidates

        return Existing(
            description=f"the visualization of index {index_id} on AOI {aoi_id} for these assets",
            conflict=f"AOI {aoi_id} already has a visualization of index {index_id} for these assets",
            rule="an AOI has one visualization of an index per set of source assets and resolution",
            fix=(
                "wait on that one (PixxelVisualizationSensor), or change src_asset_ids/resolution "
                "to compute another"
            ),
            find=find,
            look_first=False,
        )


# -- legend metadata -----------------------------------------------------------------------------------


def _legend_number(field: str, value: Any, *, nullable: bool) -> float | None:
    if value is None:
        if nullable:
            return None
        raise PixxelConfigError(f"{field} is required in theoretical mode (only dynamic mode computes it)")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PixxelConfigError(f"{field} must be a number; got {value!r}")
    return value


def _legend_item(field: str, item: Any, mode: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise PixxelConfigError(f"{field} must be a mapping with min, max, color and label; got {item!r}")
    unknown = sorted(set(item) - set(_LEGEND_FIELDS) - set(_READ_ONLY_LEGEND_FIELDS))
    if unknown:
        raise PixxelConfigError(
            f"{field}: unknown keys {unknown}; a legend item takes {', '.join(_LEGEND_FIELDS)}"
        )
    nullable = mode == "dynamic"
    low = _legend_number(f"{field}.min", item.get("min"), nullable=nullable)
    high = _legend_number(f"{field}.max", item.get("max"), nullable=nullable)
    if low is not None and high is not None and high < low:
        raise PixxelConfigError(f"{field}: max {high} is below min {low}")
    # A bound left to Pixxel is left out rather than sent as null: the schema types it as a number.
    checked: dict[str, Any] = {
        key: bound for key, bound in (("min", low), ("max", high)) if bound is not None
    }
    color = item.get("color")
    if color is not None:
        if not isinstance(color, str) or not _HEX_COLOR.fullmatch(color.strip()):
            raise PixxelConfigError(
                f"{field}.color must be a #rrggbb colour such as '#2b83ba'; got {color!r}"
            )
        checked["color"] = color.strip()
    label = item.get("label")
    if label is not None:
        checked["label"] = require_text(f"{field}.label", label)
    return checked


def _legend(value: Any, mode: str) -> dict[str, list[dict[str, Any]]]:
    value = decode_json_text("legend", value)
    if not isinstance(value, Mapping) or not value:
        raise PixxelConfigError(
            "legend must map dates to lists of classes, e.g. {'2024_05_06': [{'min': 0, 'max': 0.5, "
            f"'color': '#2b83ba', 'label': 'Low'}}, ...]}}; got {value!r}"
        )
    legend: dict[str, list[dict[str, Any]]] = {}
    for key, items in value.items():
        day = visualization_date(key, field=f"legend key {key!r}")
        field = f"legend[{day}]"
        if day in legend:
            raise PixxelConfigError(f"{field}: the date is given twice (as {key!r} and another spelling)")
        classes = non_empty_list(field, items, of="legend classes")
        legend[day] = [_legend_item(f"{field}[{n}]", item, mode) for n, item in enumerate(classes)]
    return legend


class PixxelUpdateVisualizationMetadataOperator(PixxelBaseOperator):
    """Set a visualization's legend for one mode, or recompute it from the data.

    * With ``legend``: ``PUT .../metadata`` replaces the classes of each date given, for
      ``visualization_mode`` only (the other mode is kept). ``dynamic_bins`` (1-15) is required in
      dynamic mode, where ``min``/``max`` may be ``None`` to let Pixxel compute them.
    * With ``rollback=True`` or ``dates``: ``PATCH .../metadata`` recomputes the legend of those dates
      from the source data; this needs ``index_id``.

    Dates accept ``date``/``datetime`` objects, ``{{ ds }}`` (``YYYY-MM-DD``), ``YYYY_MM_DD`` and ISO
    date-times such as ``{{ ts }}`` (their UTC date). Returns
    ``{"aoi_id", "visualization_id", "visualization_mode", "dates", "action"}``.

    Example::

        legend = PixxelUpdateVisualizationMetadataOperator(
            task_id="legend",
            aoi_id=AOI_ID,
            visualization_id=VISUALIZATION_ID,
            visualization_mode="theoretical",
            # Airflow templates dict values, not keys: give the date literally (or build the
            # legend in an upstream task).
            legend={"2024-05-06": [
                {"min": -1, "max": 0.2, "color": "#d7191c", "label": "Bare"},
                {"min": 0.2, "max": 1, "color": "#1a9641", "label": "Vegetated"},
            ]},
        )
        reset = PixxelUpdateVisualizationMetadataOperator(
            task_id="reset_legend",
            aoi_id=AOI_ID,
            visualization_id=VISUALIZATION_ID,
            index_id=NDVI_INDEX_ID,
            visualization_mode="dynamic",
            dates=["{{ ds }}"],
        )
    """

    template_fields: Sequence[str] = (
        *PixxelBaseOperator.template_fields,
        "aoi_id",
        "visualization_id",
        "visualization_mode",
        "legend",
        "dynamic_bins",
        "index_id",
        "dates",
    )
    template_fields_renderers = {"legend": "json", "dates": "json"}

    def __init__(
        self,
        *,
        aoi_id: str,
        visualization_id: str,
        visualization_mode: str,
        legend: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        dynamic_bins: int | None = None,
        rollback: bool = False,
        index_id: str | None = None,
        dates: Sequence[DateLike] | DateLike | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aoi_id = aoi_id
        self.visualization_id = visualization_id
        self.visualization_mode = visualization_mode
        self.legend = legend
        self.dynamic_bins = dynamic_bins
        self.rollback = rollback
        self.index_id = index_id
        self.dates = dates

    @property
    def recomputes(self) -> bool:
        return bool(self.rollback) or self.dates not in (None, "", [])

    def build_request(self) -> dict[str, Any]:
        """The hook call's arguments, checked; raises :class:`PixxelConfigError` before any request."""
        request: dict[str, Any] = {
            "aoi_id": require_text("aoi_id", self.aoi_id),
            "visualization_id": require_text("visualization_id", self.visualization_id),
            "visualization_mode": one_of(
                "visualization_mode", self.visualization_mode, enum_values("atlas.VisualizationMode")
            ),
        }
        if self.recomputes:
            if self.legend is not None or self.dynamic_bins is not None:
                raise PixxelConfigError(
                    "legend/dynamic_bins set a legend while rollback/dates recompute it: pass one or the "
                    "other"
                )
            if self.dates in (None, "", []):
                raise PixxelConfigError("rollback=True needs dates: the dates whose legend to recompute")
            request["index_id"] = require_text("index_id (needed to recompute a legend)", self.index_id)
            request["dates"] = _dates("dates", self.dates)
            return request
        if self.legend is None:
            raise PixxelConfigError(
                "pass legend to set a legend, or rollback=True with dates and index_id to recompute it"
            )
        mode = request["visualization_mode"]
        request["legend"] = _legend(self.legend, mode)
        if mode == "dynamic":
            if self.dynamic_bins in (None, ""):
                raise PixxelConfigError(
                    "dynamic_bins is required in dynamic mode: a number of classes from 1 to "
                    f"{MAX_DYNAMIC_BINS}"
                )
            request["dynamic_bins"] = whole_number(
                "dynamic_bins", self.dynamic_bins, low=1, high=MAX_DYNAMIC_BINS
            )
        elif self.dynamic_bins is not None:
            raise PixxelConfigError("dynamic_bins applies to dynamic mode only; drop it for theoretical mode")
        return request

    def execute(self, context: Context) -> dict[str, Any]:
        request = self.build_request()
        aoi_id = request.pop("aoi_id")
        visualization_id = request.pop("visualization_id")
        summary = {
            "aoi_id": aoi_id,
            "visualization_id": visualization_id,
            "visualization_mode": request["visualization_mode"],
        }
        if self.recomputes:
            self.hook.rollback_visualization_metadata(aoi_id, visualization_id, **request)
            self.log.info(
                "Recomputed the %s legend of visualization %s for %s",
                request["visualization_mode"],
                visualization_id,
                ", ".join(request["dates"]),
            )
            return {**summary, "dates": request["dates"], "action": "rollback"}
        self.hook.update_visualization_metadata(aoi_id, visualization_id, **request)
        dates = sorted(request["legend"])
        self.log.info(
            "Updated the %s legend of visualization %s for %s",
            request["visualization_mode"],
            visualization_id,
            ", ".join(dates),
        )
        return {**summary, "dates": dates, "action": "update"}


# -- which image date to render ------------------------------------------------------------------------

DATE_POLICIES = ("exact", "on_or_before")
_NO_AGE_LIMIT_TEXT = ("", "none", "null")


def visualization_image_dates(hook: PixxelHook, aoi_id: str, visualization_id: str) -> list[datetime.date]:
    """The dates a visualization has an image for, oldest first, from the AOI's asset list.

    A visualization is listed among its AOI's assets (``GET /v0/aois/{aoi_id}/assets``) as one asset of
    type ``visualization`` per image date, carrying its ``visualization_id``. Those dates, rather than
    the AOI's mosaics, are the ones it can render: it may have been computed from some of the AOI's
    assets only (``src_asset_ids``). Assets whose computation failed are left out.

    :raises PixxelError: when the AOI lists no image of that visualization at all (a wrong id, or a
        visualization computed on another AOI): there is nothing to choose from on any date.
    """
    dates: set[datetime.date] = set()
    for asset in hook.iter_assets(aoi_id):
        if (
            asset.get("asset_type") != "visualization"
            or str(asset.get("visualization_id")) != visualization_id
        ):
            continue
        if asset.get("status") == "failed" or not asset.get("date"):
            continue
        dates.add(
            parse_date(asset["date"], field=f"the date of asset {asset.get('id')} (as the API listed it)")
        )
    if not dates:
        raise PixxelError(
            f"AOI {aoi_id} lists no image of visualization {visualization_id} among its assets; check that "
            "the visualization belongs to this AOI and has finished (PixxelVisualizationSensor)"
        )
    return sorted(dates)


def _max_image_age_days(value: Any) -> int | None:
    # A template rendering a null param gives the text "None": that means no limit too.
    if value is None or (isinstance(value, str) and value.strip().lower() in _NO_AGE_LIMIT_TEXT):
        return None
    return whole_number("max_image_age_days", value, low=0)


class _DatePolicyMixin:
    """``date_policy`` and ``max_image_age_days``: which image date renders a date that has none."""

    date_policy: str
    max_image_age_days: int | str | None

    def _check_date_policy(self) -> tuple[str, int | None]:
        """The policy and age limit, checked; raises :class:`PixxelConfigError` before any request."""
        policy = one_of("date_policy", self.date_policy, DATE_POLICIES)
        max_age = _max_image_age_days(self.max_image_age_days)
        if policy == "exact" and max_age is not None:
            raise PixxelConfigError(
                "max_image_age_days applies to date_policy='on_or_before' only; set that policy or drop "
                "max_image_age_days"
            )
        return policy, max_age

    def image_dates_for(
        self,
        hook: PixxelHook,
        aoi_id: str,
        visualization_id: str,
        wanted: Sequence[datetime.date],
        max_age: int | None,
    ) -> dict[datetime.date, datetime.date | str]:
        """For each wanted date, the newest image date on or before it, or why there is none (a text).

        One listing of the AOI's assets serves every date.
        """
        images = visualization_image_dates(hook, aoi_id, visualization_id)
        chosen: dict[datetime.date, datetime.date | str] = {}
        for day in wanted:
            earlier = [image for image in images if image <= day]
            if not earlier:
                chosen[day] = (
                    f"visualization {visualization_id} has no image on or before {day.isoformat()}: its "
                    f"first is {images[0].isoformat()}"
                )
                continue
            newest = earlier[-1]
            age = (day - newest).days
            if max_age is not None and age > max_age:
                chosen[day] = (
                    f"the newest image of visualization {visualization_id} on or before {day.isoformat()} "
                    f"is {newest.isoformat()}, {age} days earlier, more than max_image_age_days={max_age}"
                )
                continue
            chosen[day] = newest
        return chosen


def _skip(reasons: Sequence[str]) -> NoReturn:
    # A skip, not a failure: a day without a recent enough capture has nothing to render, which is
    # normal (satellites do not pass every day) and must not fail a backfill.
    raise AirflowSkipException(f"Nothing to render: {'; '.join(reasons)}")


# -- PNG -----------------------------------------------------------------------------------------------


def png_dimensions(content: bytes) -> tuple[int, int]:
    """Width and height of a complete PNG; :class:`PixxelError` when ``content`` is not one.

    Checks the signature, the IHDR chunk (with its CRC) and the closing IEND chunk, which catches an
    error message served as the body and a body cut short.
    """
    if not content.startswith(PNG_SIGNATURE):
        snippet = content[:120].decode("utf-8", errors="replace")
        raise PixxelError(
            f"The PNG endpoint answered {len(content)} bytes that are not a PNG (no PNG signature); "
            f"they start with {snippet!r}"
        )
    header = content[8:33]
    if len(header) < 25 or header[4:8] != b"IHDR" or struct.unpack(">I", header[:4])[0] != 13:
        raise PixxelError("The PNG from the API has no valid IHDR header chunk; refusing to write it")
    if zlib.crc32(header[4:21]) != struct.unpack(">I", header[21:25])[0]:
        raise PixxelError(
            "The PNG from the API has a corrupt IHDR chunk (CRC mismatch); refusing to write it"
        )
    if not content.endswith(_PNG_IEND):
        raise PixxelError(
            f"The PNG from the API ({len(content)} bytes) does not end with an IEND chunk: it was cut "
            "short; refusing to write it"
        )
    width, height = struct.unpack(">II", header[8:16])
    if width == 0 or height == 0:
        raise PixxelError(f"The PNG from the API is {width}x{height} pixels; refusing an empty image")
    return width, height


class PixxelGenerateIndexPngOperator(_DatePolicyMixin, PixxelBaseOperator):
    """Render one date of a visualization as a PNG (with legend) and write it to a file.

    The answer is checked to be a complete PNG before anything is written; the file is replaced
    atomically, so re-running a day overwrites it whole, and its SHA-256 is written beside it to
    ``<file>.sha256`` (``sha256sum`` format), as for downloads. ``destination`` is a file path or URL,
    or a directory (an existing one, or any path ending in ``/``) in which the file is named
    ``<visualization_id>_<YYYY_MM_DD>_<mode>.png`` after the image date rendered. Returns
    ``{"path", "size", "sha256", "image_date"}``, ``image_date`` (``YYYY-MM-DD``) being the date of
    the image actually rendered.

    Satellites do not pass every day, so most dates have no image of their own. With
    ``date_policy="on_or_before"`` the newest image date of the visualization on or before ``date``
    is rendered; when there is none, or it is more than ``max_image_age_days`` older than ``date``,
    the task is **skipped** (``AirflowSkipException`` naming the date asked for and the newest image
    found), never failed.

    :param aoi_id: the AOI.
    :param visualization_id: the visualization.
    :param index_id: the visualization's index.
    :param date: the date to render: ``{{ ds }}``, ``YYYY_MM_DD``, an ISO date-time or a date object.
    :param visualization_mode: ``dynamic`` (default) or ``theoretical`` legend.
    :param destination: local path, ``ObjectStoragePath`` or URL such as ``s3://bucket/ndvi/{{ ds }}.png``.
    :param date_policy: ``exact`` (default: ``date`` itself, which the API refuses if it has no image)
        or ``on_or_before`` (the newest image date on or before ``date``).
    :param max_image_age_days: with ``on_or_before``, skip when the newest such image is older than
        this many days (``None``, the default: any age).

    Example::

        png = PixxelGenerateIndexPngOperator(
            task_id="ndvi_png",
            aoi_id=AOI_ID,
            visualization_id=VISUALIZATION_ID,
            index_id=NDVI_INDEX_ID,
            date="{{ ds }}",
            date_policy="on_or_before",
            max_image_age_days=7,
            destination="/data/ndvi/{{ ds }}.png",
        )
    """

    template_fields: Sequence[str] = (
        *PixxelBaseOperator.template_fields,
        "aoi_id",
        "visualization_id",
        "index_id",
        "date",
        "visualization_mode",
        "destination",
        "max_image_age_days",
    )

    def __init__(
        self,
        *,
        aoi_id: str,
        visualization_id: str,
        index_id: str,
        date: DateLike,
        destination: Destination,
        visualization_mode: str = "dynamic",
        date_policy: str = "exact",
        max_image_age_days: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aoi_id = aoi_id
        self.visualization_id = visualization_id
        self.index_id = index_id
        self.date = date
        self.visualization_mode = visualization_mode
        self.destination = destination
        self.date_policy = one_of("date_policy", date_policy, DATE_POLICIES)
        self.max_image_age_days = max_image_age_days

    def target(self, visualization_id: str, day: str, mode: str) -> Destination:
        from airflow_provider_pixxel.hooks.download import resolve_destination

        if _is_directory(self.destination):
            return resolve_destination(self.destination, f"{visualization_id}_{day}_{mode}.png")
        return self.destination

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.download import write_bytes_atomically

        aoi_id = require_text("aoi_id", self.aoi_id)
        visualization_id = require_text("visualization_id", self.visualization_id)
        index_id = require_text("index_id", self.index_id)
        asked = parse_date(self.date, field="date")
        mode = one_of("visualization_mode", self.visualization_mode, enum_values("atlas.VisualizationMode"))
        # Checked before the asset listing, so a bad destination fails before any request.
        if self.destination in (None, ""):
            raise PixxelConfigError("destination must name a file or directory for the PNG")
        policy, max_age = self._check_date_policy()
        image_date = asked
        if policy == "on_or_before":
            chosen = self.image_dates_for(self.hook, aoi_id, visualization_id, [asked], max_age)[asked]
            if isinstance(chosen, str):
                _skip([chosen])
            image_date = chosen
            if image_date != asked:
                self.log.info(
                    "%s has no image of its own; rendering the newest earlier one, %s",
                    asked.isoformat(),
                    image_date.isoformat(),
                )
        day = visualization_date(image_date, field="date")
        target = self.target(visualization_id, day, mode)
        content = self.hook.generate_index_png(
            aoi_id, visualization_id, index_id=index_id, date=day, visualization_mode=mode
        )
        width, height = png_dimensions(content)
        written = write_bytes_atomically(content, target)
        self.log.info(
            "Wrote the %s PNG of visualization %s for %s (%dx%d, %d bytes, sha256 %s) to %s",
            mode,
            visualization_id,
            day,
            width,
            height,
            written.size,
            written.sha256,
            written.path,
        )
        return {
            "path": written.path,
            "size": written.size,
            "sha256": written.sha256,
            "image_date": image_date.isoformat(),
        }


# -- SLD -----------------------------------------------------------------------------------------------


def check_sld(text: Any, where: str) -> bytes:
    """The SLD as UTF-8 bytes, once it parses as XML with a ``StyledLayerDescriptor`` root."""
    if not isinstance(text, str) or not text.strip():
        raise PixxelError(f"The API returned no SLD text for {where}; got {text!r}")
    data = text.encode("utf-8")
    try:
        # The standard parser's expat (2.4+) refuses entity-expansion bombs.
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise PixxelError(
            f"The SLD for {where} is not well-formed XML ({error}); refusing to write it"
        ) from None
    if root.tag.rsplit("}", 1)[-1] != _SLD_ROOT:
        raise PixxelError(f"The SLD for {where} has root element {root.tag!r}, not {_SLD_ROOT}")
    return data


class PixxelGenerateSldOperator(_DatePolicyMixin, PixxelBaseOperator):
    """Write a visualization's GeoServer SLD styles: one ``.sld`` file per mode and date.

    ``destination`` is either a directory (local, ``ObjectStoragePath`` or URL), in which the files
    are named ``<visualization_id>_<mode>_<YYYY_MM_DD>.sld``, or a path template using
    ``{mode}``, ``{date}``, ``{visualization_id}`` and ``{aoi_id}``; the date is that of the image
    styled. Each SLD is checked to be well-formed XML and written atomically, with its SHA-256 in
    ``<file>.sha256`` beside it. Returns the manifest: ``{"aoi_id", "visualization_id", "image_dates",
    "files": [{"mode", "date", "path", "size", "sha256"}]}``, where ``image_dates`` maps each date
    asked for (``YYYY-MM-DD``) to the image date styled for it (``None``: left out, see below).

    ``date_policy`` and ``max_image_age_days`` work as in :class:`PixxelGenerateIndexPngOperator`, for
    each date: with ``on_or_before`` a date with no image recent enough is left out (a warning says
    why), and the task is **skipped** when that leaves none.

    :param aoi_id: the AOI.
    :param visualization_id: the visualization.
    :param dates: dates to style (``{{ ds }}``, ``YYYY_MM_DD`` or date objects; one or a list).
    :param visualization_modes: ``["dynamic"]``, ``["theoretical"]`` or both (default).
    :param destination: directory or path template.
    :param date_policy: ``exact`` (default) or ``on_or_before``.
    :param max_image_age_days: with ``on_or_before``, the oldest image accepted, in days before the
        date asked for (``None``, the default: any age).

    Example::

        sld = PixxelGenerateSldOperator(
            task_id="ndvi_sld",
            aoi_id=AOI_ID,
            visualization_id=VISUALIZATION_ID,
            dates=["{{ ds }}"],
            date_policy="on_or_before",
            visualization_modes=["dynamic"],
            destination="s3://styles/ndvi/{mode}/{date}.sld",
        )
    """

    template_fields: Sequence[str] = (
        *PixxelBaseOperator.template_fields,
        "aoi_id",
        "visualization_id",
        "dates",
        "visualization_modes",
        "destination",
        "max_image_age_days",
    )
    template_fields_renderers = {"dates": "json", "visualization_modes": "json"}

    def __init__(
        self,
        *,
        aoi_id: str,
        visualization_id: str,
        dates: Sequence[DateLike] | DateLike,
        destination: Destination,
        visualization_modes: Sequence[str] | None = None,
        date_policy: str = "exact",
        max_image_age_days: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aoi_id = aoi_id
        self.visualization_id = visualization_id
        self.dates = dates
        self.visualization_modes = visualization_modes
        self.destination = destination
        self.date_policy = one_of("date_policy", date_policy, DATE_POLICIES)
        self.max_image_age_days = max_image_age_days

    def targets(
        self, aoi_id: str, visualization_id: str, modes: list[str], dates: list[str]
    ) -> dict[tuple[str, str], Destination]:
        """Where each (mode, date) goes; a template that maps two of them to one file is refused."""
        from airflow_provider_pixxel.hooks.download import resolve_destination

        destination = self.destination
        if destination in (None, ""):
            raise PixxelConfigError("destination must name a directory or a path template for the SLD files")
        text = str(destination)
        is_template = isinstance(destination, str) and re.search(
            r"\{(mode|date|visualization_id|aoi_id)\}", text
        )
        targets: dict[tuple[str, str], Destination] = {}
        for mode in modes:
            for day in dates:
                if is_template:
                    try:
                        targets[(mode, day)] = text.format(
                            mode=mode, date=day, visualization_id=visualization_id, aoi_id=aoi_id
                        )
                    except (KeyError, IndexError, ValueError) as error:
                        raise PixxelConfigError(
                            f"destination template {text!r} is not usable ({error!r}); it may use "
                            "{mode}, {date}, {visualization_id} and {aoi_id}"
                        ) from None
                else:
                    targets[(mode, day)] = resolve_destination(
                        destination, f"{visualization_id}_{mode}_{day}.sld"
                    )
        if len({str(path) for path in targets.values()}) < len(targets):
            raise PixxelConfigError(
                f"destination template {text!r} gives the same file for different modes or dates; include "
                "{mode} and {date} in it"
            )
        return targets

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.download import write_bytes_atomically

        aoi_id = require_text("aoi_id", self.aoi_id)
        visualization_id = require_text("visualization_id", self.visualization_id)
        dates = _dates("dates", self.dates)
        modes = list(
            dict.fromkeys(
                one_of(f"visualization_modes[{n}]", mode, enum_values("atlas.VisualizationMode"))
                for n, mode in enumerate(
                    require_text_list(
                        "visualization_modes",
                        # None: every mode of the contract (read when the task runs, not at DAG parse)
                        enum_values("atlas.VisualizationMode")
                        if self.visualization_modes is None
                        else self.visualization_modes,
                    )
                )
            )
        )
        # Checked with the dates asked for before any request; built again below for the image dates.
        targets = self.targets(aoi_id, visualization_id, modes, dates)
        policy, max_age = self._check_date_policy()
        asked = [parse_date(day, field="dates") for day in dates]
        image_dates: dict[str, str | None] = {day.isoformat(): day.isoformat() for day in asked}
        if policy == "on_or_before":
            chosen = self.image_dates_for(self.hook, aoi_id, visualization_id, asked, max_age)
            reasons = [reason for reason in chosen.values() if isinstance(reason, str)]
            if len(reasons) == len(chosen):
                _skip(reasons)
            for reason in reasons:
                self.log.warning("Leaving a date out: %s", reason)
            image_dates = {
                day.isoformat(): None if isinstance(image, str) else image.isoformat()
                for day, image in chosen.items()
            }
            dates = list(dict.fromkeys(visualization_date(image) for image in image_dates.values() if image))
            targets = self.targets(aoi_id, visualization_id, modes, dates)
        answer = self.hook.generate_visualization_sld(
            aoi_id, visualization_id, dates=dates, visualization_modes=modes
        )
        styles = (answer or {}).get("sld") or {}
        missing = [f"{mode}/{day}" for mode, day in targets if not (styles.get(mode) or {}).get(day)]
        if missing:
            raise PixxelError(
                f"The SLD answer for visualization {visualization_id} lacks {', '.join(missing)}; nothing "
                "was written"
            )
        # Check every SLD before writing any, so a bad answer leaves no partial set of files behind.
        contents = {key: check_sld(styles[key[0]][key[1]], f"{key[0]}/{key[1]}") for key in targets}
        files = []
        for (mode, day), target in targets.items():
            written = write_bytes_atomically(contents[(mode, day)], target)
            self.log.info("Wrote the %s SLD for %s (%d bytes) to %s", mode, day, written.size, written.path)
            files.append(
                {
                    "mode": mode,
                    "date": day,
                    "path": written.path,
                    "size": written.size,
                    "sha256": written.sha256,
                }
            )
        return {
            "aoi_id": aoi_id,
            "visualization_id": visualization_id,
            "image_dates": image_dates,
            "files": files,
        }
