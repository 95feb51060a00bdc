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
longitude/latitude (as RFC 7946 does). Exterior rings come out counter-clockwise and holes clockwise;
reorienting a ring is normalisation, never an error.

Distances (:func:`check_multipolygon_spacing`) and areas (:func:`geometry_area_km2`) are computed on
a sphere of the Earth's mean radius. Both are approximations, good to well under 1 %, which is plenty
for a 200 km spacing rule and for logging the billed area.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, NoReturn

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
]

EARTH_MEAN_RADIUS_KM = 6371.0088
"""IUGG mean Earth radius, used for every distance and area here."""

MIN_BILLED_AREA_KM2 = 100.0
"""Pixxel bills an order geometry smaller than this as this much."""

MAX_MULTIPOLYGON_GAP_KM = 200.0
"""Largest allowed distance between the closest boundaries of the polygons in one order geometry."""

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
    """The positions as given (copied), closed: first == last."""
    points: list[Point]
    """Distinct corners as floats, consecutive duplicates and the closing repeat removed."""
    source_index: list[int]
    """For each entry of ``points``, its index in ``positions`` (for error messages)."""

    def position_path(self, corner: int) -> str:
        return f"{self.path}[{self.source_index[corner % len(self.points)]}]"


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


@dataclass
class _Geometry:
    type: str
    path: str
    polygons: list[_Polygon]

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


# --- exact planar predicates ----------------------------------------------------------------------

_EPSILON = 2.0**-53
_ORIENT_ERROR_BOUND = (3.0 + 16.0 * _EPSILON) * _EPSILON


def _orient(a: Point, b: Point, c: Point) -> int:
    """Sign of the turn a → b → c: 1 counter-clockwise, -1 clockwise, 0 collinear. Exact.

    Shewchuk's floating-point filter decides almost every case; the rest (near-collinear triples,
    common with axis-aligned edges) are settled with exact rational arithmetic, so a point just off
    an edge is never mistaken for one on it.
    """
    det_left = (a[0] - c[0]) * (b[1] - c[1])
    det_right = (a[1] - c[1]) * (b[0] - c[0])
    det = det_left - det_right
    bound = _ORIENT_ERROR_BOUND * (abs(det_left) + abs(det_right))
    if det > bound:
        return 1
    if -det > bound:
        return -1
    ax, ay, bx, by, cx, cy = (Fraction(v) for v in (*a, *b, *c))
    exact = (ax - cx) * (by - cy) - (ay - cy) * (bx - cx)
    return (exact > 0) - (exact < 0)


def _in_box(p: Point, q: Point, r: Point) -> bool:
    return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])


_Contact = Literal["none", "touch", "cross", "overlap"]


def _segment_contact(a: Point, b: Point, c: Point, d: Point) -> _Contact:
    """How segments ab and cd meet: not at all, at one point, crossing properly, or along a stretch."""
    o1, o2 = _orient(a, b, c), _orient(a, b, d)
    if o1 == 0 and o2 == 0:
        axis = 0 if abs(b[0] - a[0]) >= abs(b[1] - a[1]) else 1
        low = max(min(a[axis], b[axis]), min(c[axis], d[axis]))
        high = min(max(a[axis], b[axis]), max(c[axis], d[axis]))
        if low < high:
            return "overlap"
        return "touch" if low == high else "none"
    o3, o4 = _orient(c, d, a), _orient(c, d, b)
    if o1 * o2 < 0 and o3 * o4 < 0:
        return "cross"
    if (
        (o1 == 0 and _in_box(a, b, c))
        or (o2 == 0 and _in_box(a, b, d))
        or (o3 == 0 and _in_box(c, d, a))
        or (o4 == 0 and _in_box(c, d, b))
    ):
        return "touch"
    return "none"


def _meeting_point(a: Point, b: Point, c: Point, d: Point) -> Point:
    """Approximate point where ab meets cd, only for error messages."""
    denominator = (b[0] - a[0]) * (d[1] - c[1]) - (b[1] - a[1]) * (d[0] - c[0])
    if denominator == 0:
        candidates = [p for p in (c, d) if _in_box(a, b, p)] or [p for p in (a, b) if _in_box(c, d, p)] or [a]
        return candidates[0]
    t = ((c[0] - a[0]) * (d[1] - c[1]) - (c[1] - a[1]) * (d[0] - c[0])) / denominator
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


def _on_boundary(point: Point, ring: _Ring) -> bool:
    points = ring.points
    count = len(points)
    return any(
        _orient(points[i], points[(i + 1) % count], point) == 0
        and _in_box(points[i], points[(i + 1) % count], point)
        for i in range(count)
    )


def _strictly_inside(point: Point, ring: _Ring) -> bool:
    """Even-odd ray cast; callers make sure ``point`` is not on the ring."""
    inside = False
    points = ring.points
    x, y = point
    previous = points[-1]
    for current in points:
        if (current[1] > y) != (previous[1] > y):
            crossing_x = current[0] + (y - current[1]) * (previous[0] - current[0]) / (
                previous[1] - current[1]
            )
            if x < crossing_x:
                inside = not inside
        previous = current
    return inside


def _sample_point(ring: _Ring, other: _Ring) -> Point | None:
    """A point of ``ring`` (a corner, else an edge midpoint) that is not on ``other``'s boundary."""
    for point in ring.points:
        if not _on_boundary(point, other):
            return point
    count = len(ring.points)
    for index in range(count):
        a, b = ring.points[index], ring.points[(index + 1) % count]
        midpoint = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        if not _on_boundary(midpoint, other):
            return midpoint
    return None


def _signed_area_deg2(points: list[Point]) -> float:
    """Planar shoelace area in square degrees; positive when counter-clockwise."""
    x0, y0 = points[0]
    count = len(points)
    terms = []
    for index in range(count):
        x1, y1 = points[index]
        x2, y2 = points[(index + 1) % count]
        terms.append((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0))
    return math.fsum(terms) / 2


def _ring_box(ring: _Ring) -> tuple[float, float, float, float]:
    xs = [p[0] for p in ring.points]
    ys = [p[1] for p in ring.points]
    return min(xs), min(ys), max(xs), max(ys)


def _box_within(inner: tuple[float, ...], outer: tuple[float, ...]) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


# --- topology -------------------------------------------------------------------------------------


def _check_not_collinear(ring: _Ring) -> None:
    first = ring.points[0]
    second = ring.points[1]
    if all(_orient(first, second, point) == 0 for point in ring.points[2:]):
        _fail(
            ring.path,
            f"{ring.label} has zero area: all its corners lie on one line",
            "Give corners that enclose an area",
        )


def _check_crossings(rings: list[_Ring], owner: dict[int, int]) -> None:
    """Refuse rings that cross or touch themselves, and rings that cross or overlap each other.

    Rings of the same polygon, and polygons of one MultiPolygon, may touch at single points (OGC);
    a ring may not touch itself anywhere except at its shared corners. Segments are swept in order of
    their west edge, so only pairs whose bounding boxes overlap are tested.
    """
    segments: list[tuple[float, float, float, float, int, int, Point, Point]] = []
    for ring_number, ring in enumerate(rings):
        count = len(ring.points)
        for index in range(count):
            a, b = ring.points[index], ring.points[(index + 1) % count]
            segments.append(
                (min(a[0], b[0]), max(a[0], b[0]), min(a[1], b[1]), max(a[1], b[1]), ring_number, index, a, b)
            )
    segments.sort(key=lambda segment: segment[0])
    total = len(segments)
    for i in range(total):
        _, east, south, north, ring_i, index_i, a, b = segments[i]
        for j in range(i + 1, total):
            other = segments[j]
            if other[0] > east:
                break
            if other[2] > north or other[3] < south:
                continue
            ring_j, index_j, c, d = other[4], other[5], other[6], other[7]
            contact = _segment_contact(a, b, c, d)
            if contact == "none":
                continue
            if ring_i == ring_j:
                _check_self_contact(rings[ring_i], index_i, index_j, contact, (a, b, c, d))
            elif contact in ("cross", "overlap"):
                first, second = (ring_i, index_i), (ring_j, index_j)
                if first > second:
                    first, second = second, first
                _report_ring_contact(rings, owner, first, second, contact, _meeting_point(a, b, c, d))


def _check_self_contact(
    ring: _Ring, index_i: int, index_j: int, contact: _Contact, ends: tuple[Point, ...]
) -> None:
    count = len(ring.points)
    low, high = sorted((index_i, index_j))
    if high - low == 1 or (low == 0 and high == count - 1):
        return  # neighbours share a corner; folding back over each other is caught by _check_spikes
    where = _format_point(_meeting_point(*ends))
    edge_low = f"{ring.position_path(low)}→{ring.position_path(low + 1)}"
    edge_high = f"{ring.position_path(high)}→{ring.position_path(high + 1)}"
    verb = {"cross": "crosses", "touch": "touches", "overlap": "runs along"}[contact]
    _fail(
        ring.path,
        f"{ring.label} intersects itself near {where}: edge {edge_low} {verb} edge {edge_high}",
        "Reorder the positions so the boundary does not cross itself (a 'bow-tie' needs reordering), "
        "or split the shape into separate polygons of a MultiPolygon",
    )


def _check_spikes(ring: _Ring) -> None:
    """Refuse a corner where the boundary turns straight back over the edge it came along."""
    points = ring.points
    count = len(points)
    for corner in range(count):
        before, tip, after = points[corner - 1], points[corner], points[(corner + 1) % count]
        if _orient(before, tip, after) != 0:
            continue
        axis = 0 if abs(before[0] - tip[0]) >= abs(before[1] - tip[1]) else 1
        if (before[axis] - tip[axis] > 0) == (after[axis] - tip[axis] > 0):
            _fail(
                ring.position_path(corner),
                f"{ring.label} doubles back on itself at position {ring.source_index[corner]} "
                f"{_format_point(tip)}: the edges before and after it run over each other (a spike)",
                "Remove the corner at the tip of the spike",
            )


def _report_ring_contact(
    rings: list[_Ring],
    owner: dict[int, int],
    first: tuple[int, int],
    second: tuple[int, int],
    contact: _Contact,
    where: Point,
) -> NoReturn:
    ring_a, ring_b = rings[first[0]], rings[second[0]]
    edge_a = f"{ring_a.position_path(first[1])}→{ring_a.position_path(first[1] + 1)}"
    edge_b = f"{ring_b.position_path(second[1])}→{ring_b.position_path(second[1] + 1)}"
    verb = "crosses" if contact == "cross" else "shares a stretch of boundary with"
    problem = (
        f"{ring_a.label} {verb} {ring_b.label} near {_format_point(where)} (edges {edge_a} and {edge_b})"
    )
    if owner[first[0]] != owner[second[0]]:
        _fail(
            ring_a.path,
            problem,
            "Polygons of a MultiPolygon must not overlap: merge overlapping parts into one polygon",
        )
    _fail(ring_a.path, problem, "A hole must lie inside its exterior ring and must not cross other holes")


def _check_holes(polygon: _Polygon) -> None:
    exterior = polygon.exterior
    exterior_box = _ring_box(exterior)
    for hole in polygon.holes:
        sample = _sample_point(hole, exterior)
        if sample is None or not (
            _box_within(_ring_box(hole), exterior_box) and _strictly_inside(sample, exterior)
        ):
            _fail(
                hole.path,
                f"{hole.label} is not inside {exterior.label}",
                "A hole must lie inside its polygon's exterior ring (the first ring); "
                "to add a separate area, use a MultiPolygon",
            )
    for hole in polygon.holes:
        for other in polygon.holes:
            if other is hole or not _box_within(_ring_box(hole), _ring_box(other)):
                continue
            sample = _sample_point(hole, other)
            if sample is None or _strictly_inside(sample, other):
                _fail(
                    hole.path,
                    f"{hole.label} lies inside {other.label}",
                    "Holes may not be nested: remove the inner one, or make it a separate polygon",
                )


def _check_parts_disjoint(geometry: _Geometry) -> None:
    for part in geometry.polygons:
        part_box = _ring_box(part.exterior)
        for other in geometry.polygons:
            if other is part or not _box_within(part_box, _ring_box(other.exterior)):
                continue
            sample = _sample_point(part.exterior, other.exterior)
            if sample is None or not _strictly_inside(sample, other.exterior):
                continue
            in_a_hole = any(
                (hole_sample := _sample_point(part.exterior, hole)) is None
                or _strictly_inside(hole_sample, hole)
                for hole in other.holes
            )
            if not in_a_hole:
                _fail(
                    part.path,
                    f"{part.label} lies inside {other.label} of the MultiPolygon",
                    "Polygons of a MultiPolygon must not overlap: drop the inner one (it is already covered)",
                )


def _orient_rings(polygon: _Polygon) -> None:
    """RFC 7946 winding: exterior counter-clockwise, holes clockwise."""
    for number, ring in enumerate(polygon.rings):
        counter_clockwise = _signed_area_deg2(ring.points) > 0
        if counter_clockwise != (number == 0):
            ring.positions.reverse()
            ring.points.reverse()
            last = len(ring.positions) - 1
            ring.source_index = [last - index for index in reversed(ring.source_index)]


def _check_topology(parsed: _Parsed) -> None:
    for feature in parsed.features:
        rings: list[_Ring] = []
        owner: dict[int, int] = {}
        for part_number, polygon in enumerate(feature.geometry.polygons):
            for ring in polygon.rings:
                _check_not_collinear(ring)
                _check_spikes(ring)
                owner[len(rings)] = part_number
                rings.append(ring)
        _check_crossings(rings, owner)
        for polygon in feature.geometry.polygons:
            _check_holes(polygon)
        _check_parts_disjoint(feature.geometry)
        for polygon in feature.geometry.polygons:
            _orient_rings(polygon)


# --- sphere ---------------------------------------------------------------------------------------

Vector = tuple[float, float, float]


def _unit_vector(point: Point) -> Vector:
    lon, lat = math.radians(point[0]), math.radians(point[1])
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def _cross(u: Vector, v: Vector) -> Vector:
    return (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])


def _dot(u: Vector, v: Vector) -> float:
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def _angle(u: Vector, v: Vector) -> float:
    cross = _cross(u, v)
    return math.atan2(math.sqrt(_dot(cross, cross)), _dot(u, v))


@dataclass
class _Arc:
    start: Vector
    end: Vector
    normal: Vector | None


_CHUNK_SIZE = 32


@dataclass
class _Chunk:
    """Consecutive boundary vertices and the arcs between them, inside a spherical cap.

    The cap (centre, angular radius) bounds the distance to anything in the chunk from below, so
    far-apart chunk pairs are skipped without looking at their vertices.
    """

    centre: Vector
    radius: float
    points: list[Vector]
    arcs: list[_Arc]


def _make_arc(start: Vector, end: Vector) -> _Arc:
    normal = _cross(start, end)
    length = math.sqrt(_dot(normal, normal))
    if not length:
        return _Arc(start, end, None)
    return _Arc(start, end, (normal[0] / length, normal[1] / length, normal[2] / length))


def _chunks(polygon: _Polygon) -> list[_Chunk]:
    chunks = []
    for ring in polygon.rings:
        vectors = [_unit_vector(point) for point in ring.points]
        count = len(vectors)
        for first in range(0, count, _CHUNK_SIZE):
            corners = [vectors[index % count] for index in range(first, min(first + _CHUNK_SIZE, count) + 1)]
            arcs = [_make_arc(a, b) for a, b in itertools.pairwise(corners)]
            total = (sum(v[0] for v in corners), sum(v[1] for v in corners), sum(v[2] for v in corners))
            norm = math.sqrt(_dot(total, total))
            centre = (total[0] / norm, total[1] / norm, total[2] / norm) if norm else corners[0]
            radius = max(_angle(centre, corner) for corner in corners) if norm else math.pi
            # An arc stays inside a cap that holds its ends only while the cap is under a hemisphere.
            chunks.append(_Chunk(centre, radius if radius < math.pi / 2 else math.pi, corners[:-1], arcs))
    return chunks


def _point_arc_angle(point: Vector, arc: _Arc) -> float:
    """Angular distance from a point to a great-circle arc (radians)."""
    if arc.normal is not None:
        normal = arc.normal
        sine = _dot(point, normal)
        foot = (point[0] - sine * normal[0], point[1] - sine * normal[1], point[2] - sine * normal[2])
        if _dot(_cross(arc.start, foot), normal) >= 0 and _dot(_cross(foot, arc.end), normal) >= 0:
            return math.asin(min(1.0, abs(sine)))
    return min(_angle(point, arc.start), _angle(point, arc.end))


def _boundary_gap_km(first: list[_Chunk], second: list[_Chunk], stop_at_km: float) -> float:
    """Smallest distance between two polygon boundaries, vertex-to-arc both ways.

    Returns early with a distance at or below ``stop_at_km`` as soon as one is found (the caller only
    needs to know the gap is small enough); otherwise the result is the exact minimum.
    """
    stop_angle = stop_at_km / EARTH_MEAN_RADIUS_KM
    candidates = sorted(
        (
            (_angle(chunk_a.centre, chunk_b.centre) - chunk_a.radius - chunk_b.radius, index_a, index_b)
            for index_a, chunk_a in enumerate(first)
            for index_b, chunk_b in enumerate(second)
        ),
    )
    best = math.inf
    for lower_bound, index_a, index_b in candidates:
        if lower_bound >= best:
            break
        chunk_a, chunk_b = first[index_a], second[index_b]
        for points, arcs in ((chunk_a.points, chunk_b.arcs), (chunk_b.points, chunk_a.arcs)):
            for point in points:
                for arc in arcs:
                    distance = _point_arc_angle(point, arc)
                    if distance < best:
                        best = distance
                        if best <= stop_angle:
                            return best * EARTH_MEAN_RADIUS_KM
    return best * EARTH_MEAN_RADIUS_KM


def _check_spacing(polygons: list[_Polygon], max_gap_km: float) -> None:
    if len(polygons) < 2:
        return
    chunks = [_chunks(polygon) for polygon in polygons]
    gaps: dict[tuple[int, int], float] = {}

    def gap(i: int, j: int) -> float:
        key = (min(i, j), max(i, j))
        if key not in gaps:
            gaps[key] = _boundary_gap_km(chunks[i], chunks[j], max_gap_km)
        return gaps[key]

    for number, polygon in enumerate(polygons):
        others = [other for other in range(len(polygons)) if other != number]
        if any(gap(number, other) <= max_gap_km for other in others):
            continue
        # Every gap computed here exceeded the limit, so none stopped early: each is the exact minimum.
        nearest_km, nearest = min((gap(number, other), other) for other in others)
        _fail(
            polygon.path,
            f"this polygon (number {number} of {len(polygons)}) is {nearest_km:.1f} km from the nearest "
            f"other polygon ({polygons[nearest].path}); in one order geometry the closest polygon "
            f"boundaries must be at most {max_gap_km:g} km apart",
            "Move the polygons closer together, or order the far one as a separate order item",
        )


def _ring_area_km2(points: list[Point]) -> float:
    # Chamberlain & Duquette, "Some algorithms for polygons on a sphere" (JPL, 2007).
    count = len(points)
    terms = [
        (math.radians(points[(index + 1) % count][0]) - math.radians(points[index - 1][0]))
        * math.sin(math.radians(points[index][1]))
        for index in range(count)
    ]
    return abs(math.fsum(terms)) * EARTH_MEAN_RADIUS_KM**2 / 2


def _polygon_area_km2(polygon: _Polygon) -> float:
    return _ring_area_km2(polygon.exterior.points) - sum(
        _ring_area_km2(hole.points) for hole in polygon.holes
    )


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
    nearest other polygon. Distances are great-circle distances on a sphere from each boundary vertex
    to the other polygon's boundary edges, an approximation within about 0.5 % of the ellipsoidal one.

    :raises PixxelConfigError: naming the far polygon, its distance to the nearest other, and the limit.
    """
    _check_spacing(_parse(geometry, field).polygons, max_gap_km)


def geometry_area_km2(geometry: Any, *, field: str = "geometry") -> float:
    """Area of a Polygon/MultiPolygon/Feature/FeatureCollection in km², holes subtracted.

    Spherical approximation (mean Earth radius); overlapping features are counted twice.
    """
    return sum(_polygon_area_km2(polygon) for polygon in _parse(geometry, field).polygons)


def billed_area_km2(geometry: Any, *, field: str = "geometry") -> float:
    """The area Pixxel bills for an order geometry: its area, but at least 100 km²."""
    return max(geometry_area_km2(geometry, field=field), MIN_BILLED_AREA_KM2)


def bbox(geometry: Any, *, field: str = "geometry") -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a geometry in degrees (antimeridian crossings are refused)."""
    points = [point for polygon in _parse(geometry, field).polygons for point in polygon.exterior.points]
    longitudes = [point[0] for point in points]
    latitudes = [point[1] for point in points]
    return min(longitudes), min(latitudes), max(longitudes), max(latitudes)
