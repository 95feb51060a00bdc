"""Checks of AOI and order geometries, run on the client before anything is sent or paid for.

Pixxel refuses (or, worse, bills) geometries that a few local checks would have caught, so every
geometry an operator sends goes through :func:`normalize_aoi_geometry` first. It accepts what users
naturally have at hand (a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection, as a dict, a
JSON string from a template, or any object with ``__geo_interface__``), checks it, and returns the
form the endpoint needs:

* ``want="polygon"``: a bare Polygon, for ``POST /v0/aois`` (whose ``geometry`` is ``atlas.Polygon``);
* ``want="feature_collection"``: a FeatureCollection of Polygon/MultiPolygon features, for
  ``order_items[].geometry`` of tasking and archive orders;
* ``want="any"``: the same form as given, e.g. for search filters.

Validity follows RFC 7946 and the OGC simple-features rules, with edges taken as straight lines in
longitude/latitude (as RFC 7946 does). The parsing and the messages are this module's; whether rings
cross, touch or nest, and which way they wind, is decided by shapely (GEOS), whose reason and location
are turned into a message naming the ring and positions at fault. Exterior rings come out
counter-clockwise and holes clockwise; reorienting a ring is normalisation, never an error.

Distances (:func:`check_multipolygon_spacing`) and areas (:func:`geometry_area_km2`) are computed on
a sphere of the Earth's mean radius, which is plenty for a 200 km spacing rule and for the 100 km²
minimum billing. Against WGS 84 (geodesic figures from pyproj's ``Geod``) the sphere is off by up to
0.45 % in area at the equator and 0.9 % at 80° latitude (too large near the equator, too small towards
the poles), and by up to 0.6 % in distance; the computations themselves add next to nothing (areas are
exact on the sphere for latitude/longitude rectangles, gaps within 0.012 % of the exact great-circle
figure).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NoReturn

import numpy as np
import shapely

from airflow_provider_pixxel.exceptions import PixxelConfigError

__all__ = [
    "EARTH_MEAN_RADIUS_KM",
    "MAX_MULTIPOLYGON_GAP_KM",
    "MIN_BILLED_AREA_KM2",
    "GeometryForm",
    "bbox",
    "billed_area_km2",
    "check_multipolygon_spacing",
    "geometry_area_km2",
    "normalize_aoi_geometry",
    "same_area",
]

EARTH_MEAN_RADIUS_KM = 6371.0088
"""IUGG mean Earth radius, used for every distance and area here."""

MIN_BILLED_AREA_KM2 = 100.0
"""Pixxel bills an order geometry smaller than this as this much."""

MAX_MULTIPOLYGON_GAP_KM = 200.0
"""Largest allowed distance between the closest boundaries of the polygons in one order geometry."""

SAME_AREA_TOLERANCE_DEG = 1e-7
"""How far (in degrees, about 1 cm) corners may be apart for :func:`same_area` to call two areas one."""

GeometryForm = Literal["polygon", "feature_collection", "any"]

_AREA_TYPES = ("Polygon", "MultiPolygon")
_NON_AREA_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString")
_KNOWN_TYPES = (*_AREA_TYPES, "Feature", "FeatureCollection", "GeometryCollection", *_NON_AREA_TYPES)
_WGS84_CRS_NAMES = (
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "urn:ogc:def:crs:EPSG::4326",
    "EPSG:4326",
)

Point = tuple[float, float]


def _fail(path: str, problem: str, fix: str = "") -> NoReturn:
    message = f"{path}: {problem}"
    if fix:
        message += f". {fix}"
    raise PixxelConfigError(message)


def _format_point(point: Sequence[float]) -> str:
    return "[" + ", ".join(f"{value:.6g}" for value in point) + "]"


@dataclass
class _Ring:
    path: str
    label: str
    positions: list[list[Any]]
    """The positions as given (copied), closed: first == last; reversed if the ring winds the wrong way."""
    points: list[Point]
    """Distinct corners as floats, consecutive duplicates and the closing repeat removed, as given."""
    source_index: list[int]
    """For each entry of ``points``, its index in ``positions`` as given (for error messages)."""

    def position_path(self, corner: int) -> str:
        return f"{self.path}[{self.source_index[corner % len(self.points)]}]"

    @cached_property
    def line(self) -> shapely.LinearRing:
        return shapely.LinearRing(self.points)

    @cached_property
    def edges(self) -> np.ndarray:
        """The ring's edges as shapely LineStrings: edge k runs from corner k to corner k + 1."""
        corners = np.asarray(self.points, dtype=float)
        return shapely.linestrings(np.stack((corners, np.roll(corners, -1, axis=0)), axis=1))


@dataclass
class _Polygon:
    path: str
    label: str
    rings: list[_Ring]

    @property
    def exterior(self) -> _Ring:
        return self.rings[0]

    @property
    def holes(self) -> list[_Ring]:
        return self.rings[1:]

    def coordinates(self) -> list[list[list[Any]]]:
        return [ring.positions for ring in self.rings]

    @cached_property
    def shape(self) -> shapely.Polygon:
        return shapely.Polygon(self.exterior.line, [hole.line for hole in self.holes])

    @cached_property
    def boundary(self) -> shapely.Geometry:
        return shapely.boundary(self.shape)

    @cached_property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` in degrees."""
        west, south, east, north = shapely.bounds(self.shape)
        return float(west), float(south), float(east), float(north)


@dataclass
class _Geometry:
    type: str
    path: str
    polygons: list[_Polygon]

    @cached_property
    def shape(self) -> shapely.Geometry:
        if self.type == "Polygon":
            return self.polygons[0].shape
        return shapely.MultiPolygon([polygon.shape for polygon in self.polygons])

    def to_geojson(self) -> dict[str, Any]:
        if self.type == "Polygon":
            return {"type": "Polygon", "coordinates": self.polygons[0].coordinates()}
        return {"type": "MultiPolygon", "coordinates": [polygon.coordinates() for polygon in self.polygons]}


@dataclass
class _Feature:
    geometry: _Geometry
    properties: dict[str, Any] | None = None
    id: Any = None
    has_id: bool = False

    def to_geojson(self) -> dict[str, Any]:
        feature: dict[str, Any] = {"type": "Feature"}
        if self.has_id:
            feature["id"] = self.id
        feature["properties"] = dict(self.properties) if self.properties is not None else {}
        feature["geometry"] = self.geometry.to_geojson()
        return feature


@dataclass
class _Parsed:
    top_type: str
    features: list[_Feature]

    @property
    def polygons(self) -> list[_Polygon]:
        return [polygon for feature in self.features for polygon in feature.geometry.polygons]


# --- decoding and structure -------------------------------------------------------------------


def _decode(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        _fail(
            path,
            "no geometry was given",
            "Pass a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection",
        )
    geo_interface = getattr(value, "__geo_interface__", None)
    if geo_interface is not None and not isinstance(value, Mapping):
        value = geo_interface
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            _fail(path, "the geometry is an empty string", "Pass GeoJSON (a dict or a JSON string)")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as json_error:
            # A Jinja template that renders a dict without ``render_template_as_native_obj`` produces
            # its Python repr (single quotes); accept that too rather than fail on a quoting detail.
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                _fail(
                    path,
                    f"the string is not valid JSON ({json_error.msg} at line {json_error.lineno} "
                    f"column {json_error.colno}): {text[:80]!r}",
                    "Pass a GeoJSON object or its JSON text",
                )
    if not isinstance(value, Mapping):
        _fail(
            path,
            f"expected a GeoJSON object, got {type(value).__name__}",
            'Pass e.g. {"type": "Polygon", "coordinates": [[[lon, lat], ...]]}',
        )
    return value


def _type_of(obj: Mapping[str, Any], path: str) -> str:
    geo_type = obj.get("type")
    if not isinstance(geo_type, str) or not geo_type:
        _fail(
            f"{path}.type",
            f"missing or not a string ({geo_type!r})",
            "Set 'type' to Polygon, MultiPolygon, Feature or FeatureCollection",
        )
    if geo_type not in _KNOWN_TYPES:
        by_lower = {known.lower(): known for known in _KNOWN_TYPES}
        if geo_type.lower() in by_lower:
            _fail(
                f"{path}.type",
                f"unknown GeoJSON type {geo_type!r}",
                f"GeoJSON type names are case-sensitive: use {by_lower[geo_type.lower()]!r}",
            )
        _fail(
            f"{path}.type",
            f"unknown GeoJSON type {geo_type!r}",
            "Use Polygon, MultiPolygon, Feature or FeatureCollection",
        )
    return geo_type


def _check_crs(obj: Mapping[str, Any], path: str) -> None:
    crs = obj.get("crs")
    if crs is None:
        return
    name = crs.get("properties", {}).get("name") if isinstance(crs, Mapping) else None
    if name not in _WGS84_CRS_NAMES:
        _fail(
            f"{path}.crs",
            f"coordinates in {name or crs!r} are not supported",
            "Pixxel takes WGS 84 longitude/latitude (RFC 7946): reproject to EPSG:4326 and drop 'crs'",
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_array(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _nesting_depth(value: Any) -> int:
    depth = 0
    while _is_array(value):
        depth += 1
        if not value:
            break
        value = value[0]
    return depth


def _check_nesting(coordinates: Any, geo_type: str, path: str) -> None:
    expected = 3 if geo_type == "Polygon" else 4
    if not _is_array(coordinates):
        _fail(
            path,
            f"{geo_type} coordinates must be an array, got {type(coordinates).__name__}",
            'A Polygon is {"type": "Polygon", "coordinates": [[[lon, lat], [lon, lat], ...]]}',
        )
    if not coordinates:
        _fail(
            path,
            f"the {geo_type} is empty (no coordinates)",
            "Give at least one ring of 4 or more [longitude, latitude] positions",
        )
    depth = _nesting_depth(coordinates)
    if depth == expected or (depth < expected and not _is_number(_innermost(coordinates))):
        return
    if depth > expected:
        if geo_type == "Polygon" and depth == 4:
            fix = (
                "These look like MultiPolygon coordinates: set type to MultiPolygon, or remove a level of []"
            )
        else:
            fix = f"Remove {depth - expected} level(s) of []"
        _fail(path, f"{geo_type} coordinates are nested {depth} deep, expected {expected}", fix)
    shape = "[[[lon, lat], ...]]" if geo_type == "Polygon" else "[[[[lon, lat], ...]]]"
    _fail(
        path,
        f"{geo_type} coordinates are nested {depth} deep, expected {expected} ({shape})",
        f"Wrap them in {expected - depth} more level(s) of []",
    )


def _innermost(value: Any) -> Any:
    while _is_array(value) and value:
        value = value[0]
    return value


def _read_position(position: Any, path: str, where: str) -> list[Any]:
    if not _is_array(position):
        _fail(
            path, f"{where} is {position!r}, not a [longitude, latitude] array", "Each position is [lon, lat]"
        )
    if len(position) < 2 or len(position) > 3:
        _fail(
            path,
            f"{where} has {len(position)} values {list(position)!r}",
            "A position is [longitude, latitude] or [longitude, latitude, altitude]",
        )
    for axis, number in zip(("longitude", "latitude", "altitude"), position, strict=False):
        if not _is_number(number):
            _fail(
                path,
                f"{where}: {axis} is {number!r} ({type(number).__name__}), not a number",
                "Write coordinates as JSON numbers without quotes",
            )
        if not math.isfinite(number):
            _fail(
                path,
                f"{where}: {axis} is {number!r}",
                "Coordinates must be finite numbers (no NaN or Infinity)",
            )
    lon, lat = position[0], position[1]
    if not -90 <= lat <= 90:
        if abs(lon) <= 90:
            _fail(
                path,
                f"{where}: latitude {lat!r} is outside [-90, 90]; the values look swapped",
                f"GeoJSON positions are [longitude, latitude]: write {_format_point([lat, lon])} "
                "(swap every position, not just this one)",
            )
        _fail(path, f"{where}: latitude {lat!r} is outside [-90, 90]", "Latitude is the second value")
    if not -180 <= lon <= 180:
        _fail(
            path,
            f"{where}: longitude {lon!r} is outside [-180, 180]",
            "Normalise longitudes to [-180, 180] (subtract 360 from values above 180)",
        )
    return list(position)


def _read_ring(raw: Any, path: str, label: str) -> _Ring:
    if not _is_array(raw):
        _fail(path, f"{label} is {raw!r}, not an array of positions", "A ring is [[lon, lat], ...]")
    positions = [
        _read_position(item, f"{path}[{index}]", f"position {index} of {label}")
        for index, item in enumerate(raw)
    ]
    if len(positions) < 4:
        _fail(
            path,
            f"{label} has {len(positions)} position(s); a ring needs at least 4",
            "Give three or more corners and repeat the first position at the end",
        )
    if positions[0] != positions[-1]:
        _fail(
            path,
            f"{label} is not closed: the first position {_format_point(positions[0])} differs from "
            f"the last {_format_point(positions[-1])} (position {len(positions) - 1})",
            f"Append {_format_point(positions[0])} at the end of the ring",
        )
    for index in range(len(positions) - 1):
        lon_from, lon_to = positions[index][0], positions[index + 1][0]
        if abs(lon_to - lon_from) > 180:
            _fail(
                path,
                f"{label} crosses the antimeridian (±180° longitude) between position {index} "
                f"(longitude {lon_from!r}) and position {index + 1} (longitude {lon_to!r})",
                "Split the area at 180° into two polygons, one with longitudes up to 180 and one from -180, "
                "and send them as a MultiPolygon (or, for an AOI, as two AOIs)",
            )
    points: list[Point] = []
    source_index: list[int] = []
    for index, position in enumerate(positions[:-1]):
        point = (float(position[0]), float(position[1]))
        if points and points[-1] == point:
            continue
        points.append(point)
        source_index.append(index)
    if len(points) > 1 and points[-1] == points[0]:
        points.pop()
        source_index.pop()
    if len(points) < 3:
        _fail(
            path,
            f"{label} has only {len(points)} distinct corner(s)",
            "A ring needs at least three distinct corners that enclose an area",
        )
    return _Ring(path=path, label=label, positions=positions, points=points, source_index=source_index)


def _read_polygon(raw: Any, path: str, label: str) -> _Polygon:
    if not _is_array(raw) or not raw:
        _fail(path, f"{label} has no rings", "A polygon is [exterior ring, hole, ...]")
    single = label == "the polygon"
    rings = [
        _read_ring(
            item,
            f"{path}[{index}]",
            ("" if single else f"{label}'s ")
            + (
                "the exterior ring"
                if single and index == 0
                else "exterior ring"
                if index == 0
                else f"hole {index}"
            ),
        )
        for index, item in enumerate(raw)
    ]
    return _Polygon(path=path, label=label, rings=rings)


def _read_area_geometry(obj: Any, path: str) -> _Geometry:
    if obj is None:
        _fail(
            path, "the feature has no geometry (null)", "Give the feature a Polygon or MultiPolygon geometry"
        )
    if not isinstance(obj, Mapping):
        _fail(path, f"expected a GeoJSON geometry object, got {type(obj).__name__}", "")
    _check_crs(obj, path)
    geo_type = _type_of(obj, path)
    if geo_type not in _AREA_TYPES:
        if geo_type in ("Feature", "FeatureCollection"):
            _fail(
                path, f"a {geo_type} cannot be nested here", "Put the Polygon or MultiPolygon geometry here"
            )
        if geo_type == "GeometryCollection":
            _fail(path, "GeometryCollection is not supported", "Use a MultiPolygon, or a FeatureCollection")
        _fail(
            path,
            f"a {geo_type} has no area",
            "An AOI must be a Polygon or MultiPolygon; buffer points or lines into polygons first",
        )
    if "coordinates" not in obj:
        _fail(f"{path}.coordinates", f"the {geo_type} has no 'coordinates'", "")
    coordinates = obj["coordinates"]
    coordinates_path = f"{path}.coordinates"
    _check_nesting(coordinates, geo_type, coordinates_path)
    if geo_type == "Polygon":
        polygons = [_read_polygon(coordinates, coordinates_path, "the polygon")]
    else:
        polygons = [
            _read_polygon(item, f"{coordinates_path}[{index}]", f"polygon {index}")
            for index, item in enumerate(coordinates)
        ]
    return _Geometry(type=geo_type, path=path, polygons=polygons)


def _read_feature(obj: Any, path: str) -> _Feature:
    if not isinstance(obj, Mapping):
        _fail(path, f"expected a GeoJSON Feature object, got {type(obj).__name__}", "")
    geo_type = _type_of(obj, path)
    if geo_type != "Feature":
        _fail(
            f"{path}.type", f"expected 'Feature', got {geo_type!r}", "Each entry of 'features' is a Feature"
        )
    properties = obj.get("properties")
    if properties is not None and not isinstance(properties, Mapping):
        _fail(f"{path}.properties", f"must be an object or null, got {type(properties).__name__}", "")
    return _Feature(
        geometry=_read_area_geometry(obj.get("geometry"), f"{path}.geometry"),
        properties=dict(properties) if properties is not None else None,
        id=obj.get("id"),
        has_id="id" in obj,
    )


def _parse(value: Any, path: str) -> _Parsed:
    obj = _decode(value, path)
    _check_crs(obj, path)
    top_type = _type_of(obj, path)
    if top_type == "FeatureCollection":
        features = obj.get("features")
        if not _is_array(features):
            _fail(f"{path}.features", f"must be an array of Features, got {features!r}", "")
        if not features:
            _fail(
                f"{path}.features",
                "the FeatureCollection is empty",
                "Add at least one Feature with a Polygon or MultiPolygon geometry",
            )
        return _Parsed(
            top_type,
            [_read_feature(item, f"{path}.features[{index}]") for index, item in enumerate(features)],
        )
    if top_type == "Feature":
        return _Parsed(top_type, [_read_feature(obj, path)])
    return _Parsed(top_type, [_Feature(geometry=_read_area_geometry(obj, path))])


# --- validity, on shapely -------------------------------------------------------------------------

_VALID = "Valid Geometry"
_REASON = re.compile(r"^(?P<kind>[^\[]+)\[(?P<x>\S+) (?P<y>\S+)[^\]]*\]$")
_LOCATION_TOLERANCE_DEG = 1e-9
"""How far (in degrees, about 0.1 mm) an edge may be from the point shapely reports and still be named."""


def _check_valid(geometry: _Geometry) -> None:
    """Refuse a geometry that is not a valid (multi)polygon under the OGC rules GEOS implements.

    shapely decides validity; this only turns its terse reason ("Self-intersection[0.5 0.5]") into a
    message that names the ring, the positions and the fix. The shapes a user most often gets wrong
    (a ring on one line, a spike) are named before the location-based reasons.
    """
    reason = shapely.is_valid_reason(geometry.shape)
    if reason == _VALID:
        return
    rings = [ring for polygon in geometry.polygons for ring in polygon.rings]
    for ring in rings:
        _check_not_collinear(ring)
    for ring in rings:
        _check_spikes(ring)
    match = _REASON.match(reason)
    if match is not None:
        kind, where = match["kind"], (float(match["x"]), float(match["y"]))
        touching = [ring for ring in rings if _edges_at(ring, where)]
        if kind == "Hole lies outside shell":
            _report_hole_outside(geometry, touching)
        elif kind == "Holes are nested":
            _report_nested(geometry, touching, where, holes=True)
        elif kind == "Nested shells":
            _report_nested(geometry, touching, where, holes=False)
        elif kind == "Interior is disconnected":
            _report_disconnected(geometry, touching, where)
        elif kind in ("Self-intersection", "Ring Self-intersection") and touching:
            _report_contact(geometry, touching, where)
    _fail(
        geometry.path,
        f"the {geometry.type} is not a valid area ({reason})",
        "Repair it, e.g. with shapely.make_valid(shape), and check the result is the area you meant",
    )


def _check_not_collinear(ring: _Ring) -> None:
    if shapely.area(shapely.convex_hull(shapely.multipoints(ring.points))) == 0:
        _fail(
            ring.path,
            f"{ring.label} has zero area: all its corners lie on one line",
            "Give corners that enclose an area",
        )


def _check_spikes(ring: _Ring) -> None:
    """Refuse a corner where the boundary turns straight back over the edge it came along."""
    edges = ring.edges
    # Edge k runs from corner k to corner k + 1: it and the next edge overlap only if they fold back.
    folded = shapely.length(shapely.intersection(edges, np.roll(edges, -1))) > 0
    if folded.any():
        corner = (int(np.argmax(folded)) + 1) % len(ring.points)
        _fail(
            ring.position_path(corner),
            f"{ring.label} doubles back on itself at position {ring.source_index[corner]} "
            f"{_format_point(ring.points[corner])}: the edges before and after it run over each other "
            "(a spike)",
            "Remove the corner at the tip of the spike",
        )


def _edges_at(ring: _Ring, where: Point) -> list[int]:
    """Indices of the ring's edges (edge k from corner k to k + 1) that pass through ``where``."""
    distances = shapely.distance(ring.edges, shapely.Point(where))
    return [int(edge) for edge in np.flatnonzero(distances <= _LOCATION_TOLERANCE_DEG)]


def _edge_name(ring: _Ring, edge: int) -> str:
    return f"{ring.position_path(edge)}→{ring.position_path(edge + 1)}"


_Contact = Literal["cross", "touch", "overlap"]


def _contact(ring_a: _Ring, edge_a: int, ring_b: _Ring, edge_b: int, where: Point) -> _Contact:
    """How two edges that both pass through ``where`` meet there."""
    first, second = ring_a.edges[edge_a], ring_b.edges[edge_b]
    if shapely.length(shapely.intersection(first, second)) > 0:
        return "overlap"
    ends = shapely.get_coordinates([first, second])
    if (np.abs(ends - where).max(axis=1) <= _LOCATION_TOLERANCE_DEG).any():
        return "touch"
    return "cross"


_SEVERITY: dict[_Contact, int] = {"overlap": 0, "cross": 1, "touch": 2}


def _meeting(ring_a: _Ring, ring_b: _Ring, where: Point) -> tuple[int, int, _Contact] | None:
    """An edge of each ring through ``where`` and how they meet, the worst contact first.

    A ring may be met with itself: then neighbouring edges, which always share a corner, are skipped.
    """
    count = len(ring_a.points)
    meetings = sorted(
        (_SEVERITY[contact], edge_a, edge_b, contact)
        for edge_a in _edges_at(ring_a, where)
        for edge_b in _edges_at(ring_b, where)
        if ring_a is not ring_b or (edge_b - edge_a) % count not in (0, 1, count - 1)
        for contact in [_contact(ring_a, edge_a, ring_b, edge_b, where)]
    )
    if not meetings:
        return None
    _, edge_a, edge_b, contact = meetings[0]
    return edge_a, edge_b, contact


def _report_contact(geometry: _Geometry, touching: list[_Ring], where: Point) -> NoReturn:
    """Boundaries meet at ``where`` where they may not: a ring meets itself, or two rings cross or overlap.

    Another ring may merely pass through the point where one ring touches itself, so the ring that
    meets itself is looked for first.
    """
    for ring in touching:
        meeting = _meeting(ring, ring, where)
        if meeting is not None:
            _report_self_contact(ring, where, meeting)
    if len(touching) > 1:
        _report_ring_contact(geometry, touching[0], touching[1], where)
    _report_self_contact(touching[0], where, None)


def _report_self_contact(ring: _Ring, where: Point, meeting: tuple[int, int, _Contact] | None) -> NoReturn:
    detail = ""
    if meeting is not None:
        edge_a, edge_b, contact = meeting
        low, high = sorted((edge_a, edge_b))
        verb = {"cross": "crosses", "touch": "touches", "overlap": "runs along"}[contact]
        detail = f": edge {_edge_name(ring, low)} {verb} edge {_edge_name(ring, high)}"
    _fail(
        ring.path,
        f"{ring.label} intersects itself near {_format_point(where)}{detail}",
        "Reorder the positions so the boundary does not cross itself (a 'bow-tie' needs reordering), "
        "or split the shape into separate polygons of a MultiPolygon (shapely.make_valid(shape) does that)",
    )


def _report_ring_contact(geometry: _Geometry, ring_a: _Ring, ring_b: _Ring, where: Point) -> NoReturn:
    # The rings may share a stretch elsewhere than at the point shapely reports: ask about the whole rings.
    shared = shapely.length(shapely.intersection(ring_a.line, ring_b.line)) > 0
    verb = "shares a stretch of boundary with" if shared else "crosses"
    problem = f"{ring_a.label} {verb} {ring_b.label} near {_format_point(where)}"
    meeting = _meeting(ring_a, ring_b, where)
    if meeting is not None:
        problem += f" (edges {_edge_name(ring_a, meeting[0])} and {_edge_name(ring_b, meeting[1])})"
    if _owner(geometry, ring_a) is not _owner(geometry, ring_b):
        _fail(
            ring_a.path,
            problem,
            "Polygons of a MultiPolygon must not overlap: merge overlapping parts into one polygon "
            "(shapely.union_all does that)",
        )
    _fail(ring_a.path, problem, "A hole must lie inside its exterior ring and must not cross other holes")


def _owner(geometry: _Geometry, ring: _Ring) -> _Polygon:
    return next(polygon for polygon in geometry.polygons if any(r is ring for r in polygon.rings))


def _report_hole_outside(geometry: _Geometry, touching: list[_Ring]) -> None:
    for hole in touching:
        polygon = _owner(geometry, hole)
        if hole is not polygon.exterior:
            _fail(
                hole.path,
                f"{hole.label} is not inside {polygon.exterior.label}",
                "A hole must lie inside its polygon's exterior ring (the first ring); "
                "to add a separate area, use a MultiPolygon",
            )


def _report_nested(geometry: _Geometry, touching: list[_Ring], where: Point, *, holes: bool) -> None:
    """A hole inside another hole, or a part inside another part; shapely points at the inner one."""
    point = shapely.Point(where)
    for inner in touching:
        polygon = _owner(geometry, inner)
        if holes:
            for outer_hole in polygon.holes:
                if outer_hole is not inner and shapely.covers(shapely.Polygon(outer_hole.points), point):
                    _fail(
                        inner.path,
                        f"{inner.label} lies inside {outer_hole.label}",
                        "Holes may not be nested: remove the inner one, or make it a separate polygon",
                    )
            continue
        for other in geometry.polygons:
            if other is not polygon and shapely.covers(shapely.Polygon(other.exterior.points), point):
                _fail(
                    polygon.path,
                    f"{polygon.label} lies inside {other.label} of the MultiPolygon",
                    "Polygons of a MultiPolygon must not overlap: drop the inner one (it is already covered)",
                )


def _report_disconnected(geometry: _Geometry, touching: list[_Ring], where: Point) -> None:
    if touching:
        polygon = _owner(geometry, touching[0])
        _fail(
            polygon.path,
            f"the holes of {polygon.label} cut its interior in two near {_format_point(where)}",
            "A hole may touch the exterior ring or another hole at single points, but the area must stay "
            "in one piece: make the pieces separate polygons of a MultiPolygon "
            "(shapely.make_valid(shape) does that)",
        )


def _orient_rings(polygon: _Polygon) -> None:
    """RFC 7946 winding: exterior counter-clockwise, holes clockwise."""
    counter_clockwise = shapely.is_ccw([ring.line for ring in polygon.rings])
    for number, (ring, is_ccw) in enumerate(zip(polygon.rings, counter_clockwise, strict=True)):
        if bool(is_ccw) != (number == 0):
            ring.positions.reverse()


def _check_topology(parsed: _Parsed) -> None:
    for feature in parsed.features:
        _check_valid(feature.geometry)
        for polygon in feature.geometry.polygons:
            _orient_rings(polygon)


# --- sphere ---------------------------------------------------------------------------------------


_MIN_LONGITUDE_SCALE = 0.01
"""Keeps the rough plane of :func:`_boundary_gap_km` from collapsing for polygons at a pole (cos 89.4°)."""


def _azimuthal_equidistant_km(centre: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The azimuthal equidistant projection of the sphere centred on ``centre`` (degrees), in km.

    Distances from the centre are true and the map only stretches across the radius, by c / sin c at
    angular distance c: between points within d of the centre, distances are true to (d/R)²/6 (0.01 %
    at d = 150 km), and straight lines there are great-circle arcs to the same order.
    """
    lon_0, lat_0 = np.radians(centre)

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = np.radians(xy[:, 0]) - lon_0, np.radians(xy[:, 1])
        east = np.cos(lat) * np.sin(lon)
        north = np.cos(lat_0) * np.sin(lat) - np.sin(lat_0) * np.cos(lat) * np.cos(lon)
        cos_c = np.sin(lat_0) * np.sin(lat) + np.cos(lat_0) * np.cos(lat) * np.cos(lon)
        c = np.arccos(np.clip(cos_c, -1.0, 1.0))
        sin_c = np.sin(c)
        stretch = np.divide(c, sin_c, out=np.ones_like(c), where=sin_c > 1e-15)
        x, y = stretch * east, stretch * north
        # The antipode has no direction from the centre; it is as far as anything can be.
        antipodal = (sin_c <= 1e-15) & (c > 1)
        x[antipodal], y[antipodal] = np.pi, 0.0
        return np.column_stack((x, y)) * EARTH_MEAN_RADIUS_KM

    return project


def _closest_pair(
    first: shapely.Geometry, second: shapely.Geometry, project: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """The ends of the shortest line between two geometries drawn in a plane, as a (2, 2) array there."""
    line = shapely.shortest_line(shapely.transform(first, project), shapely.transform(second, project))
    return shapely.get_coordinates(line)


def _boundary_gap_km(first: _Polygon, second: _Polygon) -> float:
    """Distance on the sphere between the closest points of two polygon boundaries, in two passes.

    1. Roughly where they are closest, in a plane of longitude scaled by the cosine of the pair's middle
       latitude. ``second`` is shifted by whole turns to the side of ``first`` it is nearest from, so
       the halves of an area split at the antimeridian are 0 km apart, not 360°.
    2. The shortest line in the azimuthal equidistant projection centred on that place is the gap,
       with edges taken as great-circle arcs (see :func:`_azimuthal_equidistant_km` for the error).
    """
    turns = round(((second.bounds[0] + second.bounds[2]) - (first.bounds[0] + first.bounds[2])) / 720)
    shifted = shapely.transform(second.boundary, lambda xy: xy - (360.0 * turns, 0.0))
    south = min(first.bounds[1], second.bounds[1])
    north = max(first.bounds[3], second.bounds[3])
    factors = np.array([max(math.cos(math.radians((south + north) / 2)), _MIN_LONGITUDE_SCALE), 1.0])
    rough = _closest_pair(first.boundary, shifted, lambda xy: xy * factors) / factors
    ends = _closest_pair(first.boundary, second.boundary, _azimuthal_equidistant_km(rough.mean(axis=0)))
    return float(np.hypot(*(ends[1] - ends[0])))


def _check_spacing(polygons: list[_Polygon], max_gap_km: float) -> None:
    if len(polygons) < 2:
        return
    gaps: dict[tuple[int, int], float] = {}

    def gap(i: int, j: int) -> float:
        key = (min(i, j), max(i, j))
        if key not in gaps:
            gaps[key] = _boundary_gap_km(polygons[key[0]], polygons[key[1]])
        return gaps[key]

    for number, polygon in enumerate(polygons):
        others = [other for other in range(len(polygons)) if other != number]
        if any(gap(number, other) <= max_gap_km for other in others):
            continue
        nearest_km, nearest = min((gap(number, other), other) for other in others)
        _fail(
            polygon.path,
            f"this polygon (number {number} of {len(polygons)}) is {nearest_km:.1f} km from the nearest "
            f"other polygon ({polygons[nearest].path}); in one order geometry the closest polygon "
            f"boundaries must be at most {max_gap_km:g} km apart",
            "Move the polygons closer together, or order the far one as a separate order item",
        )


def _to_equal_area(xy: np.ndarray) -> np.ndarray:
    """Longitude/latitude in degrees to the Lambert cylindrical equal-area plane of the unit sphere."""
    radians = np.radians(xy)
    return np.column_stack((radians[:, 0], np.sin(radians[:, 1])))


def _area_km2(polygons: list[_Polygon]) -> float:
    # The Lambert cylindrical projection (λ, sin φ) keeps areas, so a polygon's planar area there is
    # its area on the sphere: exact for latitude/longitude rectangles (Chamberlain & Duquette, "Some
    # algorithms for polygons on a sphere", JPL 2007, is the same sum written out).
    projected = shapely.transform([polygon.shape for polygon in polygons], _to_equal_area)
    return float(shapely.area(projected).sum()) * EARTH_MEAN_RADIUS_KM**2


# --- public API -----------------------------------------------------------------------------------


def normalize_aoi_geometry(
    value: Any,
    *,
    field: str = "geometry",
    want: GeometryForm = "polygon",
    max_gap_km: float = MAX_MULTIPOLYGON_GAP_KM,
) -> dict[str, Any]:
    """Check a GeoJSON area and return it in the form an endpoint takes.

    :param value: a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection: a dict, its JSON text
        (what a templated field holds), or an object with ``__geo_interface__`` (e.g. a shapely shape).
    :param field: the argument's name, used in every error message (e.g. ``order_items[0].geometry``).
    :param want: ``"polygon"`` for ``create_aoi`` (a single Polygon: one-feature collections and
        Features are unwrapped, a multi-part MultiPolygon is refused); ``"feature_collection"`` for
        order items (bare geometries are wrapped, and the polygons must be at most ``max_gap_km``
        apart); ``"any"`` to keep the form given.
    :returns: a new dict (the input is never modified) with rings wound per RFC 7946.
    :raises PixxelConfigError: naming the field, ring and position at fault and how to fix it.
    """
    parsed = _parse(value, field)
    _check_topology(parsed)
    if want == "polygon":
        return _as_single_polygon(parsed, field)
    if want == "feature_collection":
        _check_spacing(parsed.polygons, max_gap_km)
        return {
            "type": "FeatureCollection",
            "features": [feature.to_geojson() for feature in parsed.features],
        }
    if want == "any":
        if parsed.top_type == "FeatureCollection":
            return {
                "type": "FeatureCollection",
                "features": [feature.to_geojson() for feature in parsed.features],
            }
        if parsed.top_type == "Feature":
            return parsed.features[0].to_geojson()
        return parsed.features[0].geometry.to_geojson()
    raise PixxelConfigError(f"want must be 'polygon', 'feature_collection' or 'any', not {want!r}")


def _as_single_polygon(parsed: _Parsed, field: str) -> dict[str, Any]:
    if len(parsed.features) != 1:
        _fail(
            f"{field}.features",
            f"an AOI is a single Polygon, but this FeatureCollection has {len(parsed.features)} features",
            "Create one AOI per polygon, or pass a single Polygon",
        )
    geometry = parsed.features[0].geometry
    if len(geometry.polygons) != 1:
        _fail(
            geometry.path,
            f"an AOI is a single Polygon, but this MultiPolygon has {len(geometry.polygons)} parts",
            "Create one AOI per part, or pass one Polygon that covers them all",
        )
    return {"type": "Polygon", "coordinates": geometry.polygons[0].coordinates()}


def check_multipolygon_spacing(
    geometry: Any, max_gap_km: float = MAX_MULTIPOLYGON_GAP_KM, *, field: str = "geometry"
) -> None:
    """Refuse an area whose polygons are too far apart for one Pixxel order item.

    Pixxel requires the closest boundaries of the polygons in a multi-polygon AOI to be at most
    200 km apart. Each polygon (across all parts and features) must be within ``max_gap_km`` of its
    nearest other polygon. Distances are between the closest boundary points on a sphere, with edges
    taken as great-circle arcs (see :func:`_boundary_gap_km`), within 0.6 % of the ellipsoidal ones.

    :raises PixxelConfigError: naming the far polygon, its distance to the nearest other, and the limit.
    """
    _check_spacing(_parse(geometry, field).polygons, max_gap_km)


def geometry_area_km2(geometry: Any, *, field: str = "geometry") -> float:
    """Area of a Polygon/MultiPolygon/Feature/FeatureCollection in km², holes subtracted.

    On the mean-radius sphere (within 0.9 % of WGS 84 up to 80° latitude, see the module docstring),
    edges straight in longitude/latitude; overlapping features are counted twice.
    """
    return _area_km2(_parse(geometry, field).polygons)


def billed_area_km2(geometry: Any, *, field: str = "geometry") -> float:
    """The area Pixxel bills for an order geometry: its area, but at least 100 km²."""
    return max(geometry_area_km2(geometry, field=field), MIN_BILLED_AREA_KM2)


def same_area(
    first: Any,
    second: Any,
    *,
    first_field: str = "geometry",
    second_field: str = "geometry",
    tolerance_deg: float = SAME_AREA_TOLERANCE_DEG,
) -> bool:
    """Whether two GeoJSON areas cover the same ground, however each is written.

    Compared as shapes, not as JSON: the winding, the corner a ring starts at, the order of the parts
    and extra corners along a straight edge do not matter, and corners may be up to ``tolerance_deg``
    apart (the rounding of a round trip through a service). Both must be areas this module reads.
    """
    shapes = [
        shapely.union_all([polygon.shape for polygon in _parse(value, field).polygons])
        for value, field in ((first, first_field), (second, second_field))
    ]
    if shapely.equals(*shapes):
        return True
    normalized = [shapely.normalize(shape) for shape in shapes]
    return bool(shapely.equals_exact(*normalized, tolerance=tolerance_deg))


def bbox(geometry: Any, *, field: str = "geometry") -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a geometry in degrees (antimeridian crossings are refused)."""
    points = [point for polygon in _parse(geometry, field).polygons for point in polygon.exterior.points]
    longitudes = [point[0] for point in points]
    latitudes = [point[1] for point in points]
    return min(longitudes), min(latitudes), max(longitudes), max(latitudes)
