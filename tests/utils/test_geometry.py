from __future__ import annotations

import copy
import itertools
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.operators.orders import PixxelCreateOrderOperator
from airflow_provider_pixxel.simulator.seed import REGIONS
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from airflow_provider_pixxel.utils.geometry import (
    EARTH_MEAN_RADIUS_KM,
    MIN_BILLED_AREA_KM2,
    bbox,
    billed_area_km2,
    check_multipolygon_spacing,
    geometry_area_km2,
    normalize_aoi_geometry,
    same_area,
)
from tests.operators.pixxel_sim import context, tasking_item
from tests.operators.test_aoi import create_aoi_operator
from tests.task_runner import run_task

KM_PER_DEGREE = math.radians(1) * EARTH_MEAN_RADIUS_KM


def ring(*corners: tuple[float, float]) -> list[list[float]]:
    return [list(corner) for corner in (*corners, corners[0])]


def square_ring(
    west: float, south: float, size: float = 1.0, *, clockwise: bool = False
) -> list[list[float]]:
    corners = [(west, south), (west + size, south), (west + size, south + size), (west, south + size)]
    if clockwise:
        corners[1:] = reversed(corners[1:])
    return ring(*corners)


def polygon(*rings: list[list[Any]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def multipolygon(*exteriors: list[list[float]]) -> dict[str, Any]:
    """A MultiPolygon of hole-free parts, one per exterior ring given."""
    return {"type": "MultiPolygon", "coordinates": [[exterior] for exterior in exteriors]}


def feature(geometry: Any, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def signed_area(points: list[list[float]]) -> float:
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in itertools.pairwise(points)) / 2


SQUARE = polygon(square_ring(10, 20))
SQUARE_CW = polygon(square_ring(10, 20, clockwise=True))


class GeoInterface:
    def __init__(self, mapping: dict[str, Any]) -> None:
        self.__geo_interface__ = mapping


# --- accepted inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(SQUARE, SQUARE, id="ccw-polygon-unchanged"),
        pytest.param(SQUARE_CW, SQUARE, id="clockwise-exterior-reversed"),
        pytest.param(json.dumps(SQUARE_CW), SQUARE, id="json-string"),
        pytest.param(f"  {json.dumps(SQUARE)}\n", SQUARE, id="json-string-with-whitespace"),
        pytest.param(str(SQUARE), SQUARE, id="python-repr-from-non-native-template"),
        pytest.param(feature(SQUARE, {"name": "field"}), SQUARE, id="feature-unwrapped"),
        pytest.param(collection(feature(SQUARE)), SQUARE, id="single-feature-collection-unwrapped"),
        pytest.param(multipolygon(square_ring(10, 20)), SQUARE, id="single-part-multipolygon-unwrapped"),
        pytest.param(GeoInterface(SQUARE_CW), SQUARE, id="geo-interface-object"),
        pytest.param(
            {"type": "Polygon", "coordinates": (tuple(tuple(p) for p in square_ring(10, 20)),)},
            {"type": "Polygon", "coordinates": [[list(p) for p in square_ring(10, 20)]]},
            id="tuples-become-lists",
        ),
        pytest.param(
            polygon([[10, 20, 5], [11, 20, 5], [11, 21, 5], [10, 21, 5], [10, 20, 5]]),
            polygon([[10, 20, 5], [11, 20, 5], [11, 21, 5], [10, 21, 5], [10, 20, 5]]),
            id="altitude-kept",
        ),
        pytest.param(
            polygon(ring((10, 20), (10.5, 20), (11, 20), (11, 21), (10, 21))),
            polygon(ring((10, 20), (10.5, 20), (11, 20), (11, 21), (10, 21))),
            id="collinear-corner-on-an-edge",
        ),
        pytest.param(
            polygon(ring((10, 20), (11, 20), (11, 20), (11, 21), (10, 21))),
            polygon(ring((10, 20), (11, 20), (11, 20), (11, 21), (10, 21))),
            id="repeated-position",
        ),
        pytest.param(
            polygon(square_ring(0, 0, 10), ring((0, 5), (3, 6), (3, 4))),
            polygon(square_ring(0, 0, 10), ring((0, 5), (3, 6), (3, 4))),
            id="hole-touching-exterior-at-one-point",
        ),
        pytest.param(
            polygon(ring((179, 0), (180, 0), (180, 1), (179, 1))),
            polygon(ring((179, 0), (180, 0), (180, 1), (179, 1))),
            id="touching-antimeridian-from-the-west",
        ),
    ],
)
def test_accepted_as_aoi_polygon(value: Any, expected: dict[str, Any]) -> None:
    assert normalize_aoi_geometry(value) == expected


def test_winding_normalised_for_exterior_and_holes_both_ways() -> None:
    wrong = polygon(square_ring(0, 0, 10, clockwise=True), square_ring(2, 2, 2), square_ring(6, 6, 2))
    right = polygon(
        square_ring(0, 0, 10), square_ring(2, 2, 2, clockwise=True), square_ring(6, 6, 2, clockwise=True)
    )

    assert normalize_aoi_geometry(wrong) == right
    assert normalize_aoi_geometry(right) == right
    exterior, *holes = normalize_aoi_geometry(wrong)["coordinates"]
    assert signed_area(exterior) > 0
    assert all(signed_area(hole) < 0 for hole in holes)


def test_input_is_not_modified() -> None:
    value = collection(feature(SQUARE_CW, {"k": 1}))
    before = copy.deepcopy(value)

    normalize_aoi_geometry(value, want="feature_collection")

    assert value == before


def test_order_geometry_wraps_bare_geometries_into_a_feature_collection() -> None:
    parts = multipolygon(square_ring(0, 0, 0.5), square_ring(1, 0, 0.5, clockwise=True))

    result = normalize_aoi_geometry(parts, field="order_items[0].geometry", want="feature_collection")

    assert result == collection(
        feature(multipolygon(square_ring(0, 0, 0.5), square_ring(1, 0, 0.5)), properties={})
    )


def test_order_geometry_keeps_features_their_properties_and_ids() -> None:
    first = {**feature(SQUARE_CW, {"name": "north"}), "id": "f1"}
    second = feature(polygon(square_ring(11.5, 20)), None)

    result = normalize_aoi_geometry(collection(first, second), want="feature_collection")

    assert result == collection(
        {"type": "Feature", "id": "f1", "properties": {"name": "north"}, "geometry": SQUARE},
        feature(polygon(square_ring(11.5, 20)), {}),
    )


@pytest.mark.parametrize(
    "value",
    [
        SQUARE_CW,
        multipolygon(square_ring(0, 0), square_ring(2, 0)),
        feature(SQUARE_CW, {"a": 1}),
        collection(feature(SQUARE)),
    ],
    ids=["polygon", "multipolygon", "feature", "feature-collection"],
)
def test_want_any_keeps_the_form(value: dict[str, Any]) -> None:
    result = normalize_aoi_geometry(value, want="any")

    assert result["type"] == value["type"]
    assert normalize_aoi_geometry(result, want="any") == result


def test_large_polygon_is_checked_quickly_enough() -> None:
    count = 3000
    circle = [
        [
            round(77.5 + 0.5 * math.cos(2 * math.pi * k / count), 9),
            round(12.9 + 0.5 * math.sin(2 * math.pi * k / count), 9),
        ]
        for k in range(count)
    ]
    circle.append(circle[0])

    result = normalize_aoi_geometry(polygon(circle))

    assert len(result["coordinates"][0]) == count + 1


# --- refused inputs -------------------------------------------------------------------------------


def rejected(value: Any, *fragments: str, want: str = "polygon", field: str = "geometry") -> str:
    with pytest.raises(PixxelConfigError) as caught:
        normalize_aoi_geometry(value, field=field, want=want)  # type: ignore[arg-type]
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        pytest.param(
            polygon([[10, 20], [11, 20], [11, 21], [10, 21]]),
            ["geometry.coordinates[0]:", "not closed", "position 3", "Append [10, 20]"],
            id="open-ring",
        ),
        pytest.param(
            polygon([[10, 20], [11, 20], [10, 20]]),
            ["geometry.coordinates[0]:", "3 position(s)", "at least 4"],
            id="fewer-than-4-positions",
        ),
        pytest.param(
            polygon([[10, 20], [11, 20], [10, 20], [10, 20]]),
            ["only 2 distinct corner(s)"],
            id="only-two-distinct-corners",
        ),
        pytest.param(
            polygon(square_ring(45, 95)),
            [
                "geometry.coordinates[0][0]:",
                "latitude 95",
                "look swapped",
                "[longitude, latitude]",
                "[95, 45]",
            ],
            id="swapped-lat-lon",
        ),
        pytest.param(
            polygon(square_ring(120, 95)),
            ["latitude 95 is outside [-90, 90]"],
            id="latitude-out-of-range",
        ),
        pytest.param(
            polygon(ring((190, 10), (191, 10), (191, 11))),
            ["geometry.coordinates[0][0]:", "longitude 190 is outside [-180, 180]"],
            id="longitude-out-of-range",
        ),
        pytest.param(
            polygon([[10, 20], [11, 20], [11, float("nan")], [10, 21], [10, 20]]),
            ["geometry.coordinates[0][2]:", "latitude is nan", "finite"],
            id="nan",
        ),
        pytest.param(
            polygon([[10, 20], [float("inf"), 20], [11, 21], [10, 20]]),
            ["coordinates[0][1]", "longitude is inf"],
            id="infinity",
        ),
        pytest.param(
            polygon([[10, 20], ["11", 20], [11, 21], [10, 20]]),
            ["coordinates[0][1]", "'11' (str), not a number"],
            id="string-coordinate",
        ),
        pytest.param(
            polygon([[10, 20], [True, 20], [11, 21], [10, 20]]),
            ["coordinates[0][1]", "not a number"],
            id="boolean-coordinate",
        ),
        pytest.param(
            polygon([[10, 20, 0, 0], [11, 20], [11, 21], [10, 20]]),
            ["coordinates[0][0]", "has 4 values"],
            id="position-with-4-values",
        ),
        pytest.param(
            polygon(ring((0, 0), (1, 1), (1, 0), (0, 1))),
            ["intersects itself near [0.5, 0.5]", "crosses", "bow-tie"],
            id="bow-tie",
        ),
        pytest.param(
            polygon(ring((0, 0), (2, 0), (1, 1), (2, 2), (0, 2), (1, 1))),
            ["intersects itself near [1, 1]", "touches"],
            id="figure-eight-touching-itself",
        ),
        pytest.param(
            polygon(ring((0, 0), (2, 0), (2, 2), (3, 2), (2, 2), (0, 2))),
            ["geometry.coordinates[0][3]:", "doubles back", "position 3 [3, 2]", "spike"],
            id="spike",
        ),
        pytest.param(
            polygon(ring((0, 0), (1, 1), (2, 2))),
            ["zero area", "on one line"],
            id="zero-area",
        ),
        pytest.param(polygon(), ["empty"], id="empty-coordinates"),
        pytest.param(polygon([]), ["0 position(s)"], id="empty-ring"),
        pytest.param(collection(), ["geometry.features:", "empty"], id="empty-feature-collection"),
        pytest.param("", ["empty string"], id="empty-string"),
        pytest.param(None, ["no geometry"], id="none"),
        pytest.param(
            feature(None), ["geometry.geometry:", "no geometry (null)"], id="feature-without-geometry"
        ),
        pytest.param(
            polygon(square_ring(0, 0, 10), square_ring(20, 20, 1)),
            ["geometry.coordinates[1]:", "hole 1 is not inside the exterior ring"],
            id="hole-outside",
        ),
        pytest.param(
            polygon(square_ring(0, 0, 10), square_ring(8, 8, 4)),
            ["the exterior ring crosses hole 1"],
            id="hole-crossing-exterior",
        ),
        pytest.param(
            polygon(square_ring(0, 0, 10), square_ring(2, 2, 6), square_ring(4, 4, 1)),
            ["geometry.coordinates[2]:", "hole 2 lies inside hole 1"],
            id="nested-holes",
        ),
        pytest.param(
            polygon(square_ring(0, 0, 10), square_ring(0, 0, 10)),
            ["shares a stretch of boundary"],
            id="hole-equal-to-exterior",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": square_ring(0, 0)},
            ["nested 2 deep, expected 3", "Wrap them in 1 more level"],
            id="ring-without-outer-list",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[square_ring(0, 0)]]},
            ["nested 4 deep", "MultiPolygon"],
            id="multipolygon-nesting-under-polygon-type",
        ),
        pytest.param(
            {"type": "MultiPolygon", "coordinates": [square_ring(0, 0)]},
            ["nested 3 deep, expected 4"],
            id="polygon-nesting-under-multipolygon-type",
        ),
        pytest.param({"type": "Polygon", "coordinates": 5}, ["must be an array"], id="coordinates-not-array"),
        pytest.param({"coordinates": [square_ring(0, 0)]}, ["geometry.type:", "missing"], id="missing-type"),
        pytest.param(
            {"type": "Polygn", "coordinates": []}, ["unknown GeoJSON type 'Polygn'"], id="unknown-type"
        ),
        pytest.param(
            {"type": "polygon", "coordinates": []}, ["case-sensitive", "'Polygon'"], id="lowercase-type"
        ),
        pytest.param({"type": "Point", "coordinates": [1, 2]}, ["a Point has no area"], id="point"),
        pytest.param(
            {"type": "GeometryCollection", "geometries": []}, ["not supported"], id="geometry-collection"
        ),
        pytest.param({"type": "Polygon"}, ["geometry.coordinates:", "no 'coordinates'"], id="no-coordinates"),
        pytest.param('{"type": "Polygon", "coordinates": [', ["not valid JSON"], id="bad-json"),
        pytest.param([[0, 0], [1, 1]], ["expected a GeoJSON object, got list"], id="not-an-object"),
        pytest.param(
            {**SQUARE, "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}},
            ["geometry.crs:", "EPSG:3857", "reproject"],
            id="projected-crs",
        ),
        pytest.param(
            polygon(ring((179, 0), (-179, 0), (-179, 1), (179, 1))),
            ["crosses the antimeridian", "position 0", "position 1", "Split", "MultiPolygon"],
            id="antimeridian",
        ),
        pytest.param(
            multipolygon(square_ring(0, 0), square_ring(3, 0)),
            ["single Polygon", "2 parts", "one AOI per part"],
            id="multipolygon-for-aoi",
        ),
        pytest.param(
            collection(feature(SQUARE), feature(SQUARE)),
            ["geometry.features:", "2 features"],
            id="two-features-for-aoi",
        ),
        pytest.param(
            collection({"type": "Polygon", "coordinates": []}),
            ["geometry.features[0].type:", "expected 'Feature'"],
            id="collection-of-bare-geometries",
        ),
        pytest.param(
            collection(feature(polygon([[10, 20], [11, 20], [11, 21], [10, 21]]))),
            ["geometry.features[0].geometry.coordinates[0]:", "not closed"],
            id="error-path-inside-collection",
        ),
    ],
)
def test_refused_with_precise_message(value: Any, fragments: list[str]) -> None:
    rejected(value, *fragments)


def test_error_names_the_given_field() -> None:
    bad = collection(feature(multipolygon(square_ring(0, 0), [[0, 0], [1, 0], [1, 1], [0, 0], [5, 5]])))

    message = rejected(bad, want="feature_collection", field="order_items[2].geometry")

    assert message.startswith("order_items[2].geometry.features[0].geometry.coordinates[1][0]: ")
    assert "polygon 1's exterior ring is not closed" in message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param(
            multipolygon(square_ring(0, 0, 2), square_ring(1, 1, 2)),
            "polygon 0's exterior ring crosses polygon 1's exterior ring",
            id="overlapping-parts",
        ),
        pytest.param(
            multipolygon(square_ring(0, 0, 10), square_ring(2, 2, 1)),
            "polygon 1 lies inside polygon 0",
            id="part-inside-another",
        ),
        pytest.param(
            multipolygon(square_ring(0, 0, 1), square_ring(0, 1, 1)),
            "shares a stretch of boundary",
            id="parts-sharing-an-edge",
        ),
    ],
)
def test_overlapping_multipolygon_parts_refused(value: dict[str, Any], fragment: str) -> None:
    rejected(value, fragment, "must not overlap", want="any")


def test_multipolygon_part_inside_a_hole_of_another_is_valid() -> None:
    lake = [square_ring(0, 0, 1), square_ring(0.2, 0.2, 0.6, clockwise=True)]
    island = [square_ring(0.4, 0.4, 0.2)]
    island_in_lake = {"type": "MultiPolygon", "coordinates": [lake, island]}

    result = normalize_aoi_geometry(island_in_lake, want="feature_collection")

    assert result["features"][0]["geometry"] == island_in_lake


def test_unknown_want_refused() -> None:
    with pytest.raises(PixxelConfigError, match="want must be"):
        normalize_aoi_geometry(SQUARE, want="bbox")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        pytest.param(
            polygon(square_ring(0, 0, 10), ring((0, 5), (5, 10), (10, 5), (5, 0))),
            [
                "geometry.coordinates:",
                "the holes of the polygon cut its interior in two near",
                "MultiPolygon",
            ],
            id="hole-touching-the-exterior-at-four-points",
        ),
        pytest.param(
            polygon(square_ring(0, 0, 10), square_ring(2, 2, 3), square_ring(4, 4, 3)),
            ["geometry.coordinates[1]:", "hole 1 crosses hole 2 near", "edges geometry.coordinates[1]"],
            id="holes-crossing",
        ),
        pytest.param(
            polygon(square_ring(0, 0, 10), square_ring(2, 2, 2), square_ring(4, 2, 2)),
            ["hole 1 shares a stretch of boundary with hole 2 near [4, "],
            id="holes-sharing-an-edge",
        ),
        pytest.param(
            polygon(square_ring(0, 0, 10), ring((2, 2), (4, 2), (4, 4), (5, 4), (4, 4), (2, 4))),
            ["geometry.coordinates[1][3]:", "hole 1 doubles back", "position 3 [5, 4]", "spike"],
            id="spike-in-a-hole",
        ),
        pytest.param(
            polygon(ring((0, 0), (4, 0), (4, 1), (3, 1), (3, 0), (1, 0), (1, 1), (0, 1))),
            ["intersects itself near [3, 0]", "coordinates[0][0]→geometry.coordinates[0][1] runs along"],
            id="edge-running-back-along-another",
        ),
        pytest.param(
            # Hole 2 touches itself at [4, 4] (a figure eight); hole 1 may touch it there, from outside.
            polygon(
                square_ring(0, 0, 10),
                ring((4, 4), (1, 3.5), (1, 4.5)),
                ring((2, 2), (6, 2), (4, 4), (6, 6), (2, 6), (4, 4)),
            ),
            ["geometry.coordinates[2]:", "hole 2 intersects itself near [4, 4]", "touches"],
            id="ring-touching-itself-where-another-ring-passes",
        ),
    ],
)
def test_shapes_shapely_refuses_get_a_message_naming_rings_and_positions(
    value: dict[str, Any], fragments: list[str]
) -> None:
    rejected(value, *fragments, want="any")


def test_aoi_whose_holes_cut_it_in_two_is_refused_before_any_request(sim: SimulatorHandle) -> None:
    # The test AOI's square (around the first seeded region), with a diamond-shaped hole touching all
    # four sides: four triangles, not one area.
    _, lon, lat = REGIONS[0]
    west, south, size = lon - 0.05, lat - 0.05, 0.1
    half = size / 2
    diamond = ring(
        (west, south + half), (west + half, south + size), (west + size, south + half), (west + half, south)
    )
    operator = create_aoi_operator(sim, geometry=polygon(square_ring(west, south, size), diamond))

    with pytest.raises(PixxelConfigError, match="cut its interior in two"):
        run_task(operator, context())
    assert sim.state.requests() == []


# --- multipolygon spacing ---------------------------------------------------------------------------


def two_squares_at_equator(gap_km: float, size: float = 0.1) -> dict[str, Any]:
    second_west = size + gap_km / KM_PER_DEGREE
    return multipolygon(square_ring(0, -size / 2, size), square_ring(second_west, -size / 2, size))


def test_parts_150_km_apart_are_accepted_for_an_order() -> None:
    result = normalize_aoi_geometry(two_squares_at_equator(150), want="feature_collection")

    assert len(result["features"][0]["geometry"]["coordinates"]) == 2


def test_parts_300_km_apart_are_refused_for_an_order() -> None:
    message = rejected(
        two_squares_at_equator(300),
        "order_items[0].geometry.coordinates[0]:",
        "300.0 km from the nearest other polygon",
        "at most 200 km apart",
        "separate order item",
        want="feature_collection",
        field="order_items[0].geometry",
    )
    assert "geometry.coordinates[1]" in message


def test_spacing_is_measured_to_edges_not_only_to_corners() -> None:
    # The tall strip's corners are over 250 km from the small square, its nearest edge only 150 km.
    strip = ring((0, -2), (0.1, -2), (0.1, 2), (0, 2))
    small_west = 0.1 + 150 / KM_PER_DEGREE

    check_multipolygon_spacing(multipolygon(strip, square_ring(small_west, -0.05, 0.1)))


def test_spacing_checked_across_features_and_names_the_far_one() -> None:
    near = feature(polygon(square_ring(0.3, 0, 0.1)))
    far = feature(polygon(square_ring(10, 0, 0.1)))
    value = collection(feature(polygon(square_ring(0, 0, 0.1))), near, far)

    with pytest.raises(
        PixxelConfigError, match=r"^geometry\.features\[2\]\.geometry\.coordinates: .* km from"
    ):
        check_multipolygon_spacing(value)


def squares_across_the_antimeridian(gap_km: float, size: float = 0.1) -> dict[str, Any]:
    half_gap = gap_km / KM_PER_DEGREE / 2
    west = square_ring(180 - half_gap - size, -size / 2, size)
    east = square_ring(-180 + half_gap, -size / 2, size)
    return multipolygon(west, east)


def test_halves_of_an_area_split_at_the_antimeridian_are_0_km_apart() -> None:
    west_half = ring((179, 0), (180, 0), (180, 1), (179, 1))
    east_half = ring((-180, 0), (-179, 0), (-179, 1), (-180, 1))

    check_multipolygon_spacing(multipolygon(west_half, east_half), max_gap_km=1e-6)


def test_spacing_is_measured_across_the_antimeridian() -> None:
    check_multipolygon_spacing(squares_across_the_antimeridian(150))
    with pytest.raises(PixxelConfigError, match=r"300\.0 km from the nearest other polygon"):
        check_multipolygon_spacing(squares_across_the_antimeridian(300))


def test_order_split_at_the_antimeridian_is_sent(sim: SimulatorHandle) -> None:
    item = tasking_item(sim, geometry=squares_across_the_antimeridian(0))
    operator = PixxelCreateOrderOperator(
        task_id="order", order_items=[item], max_cost=1e9, poll_interval=0.01
    )

    run = run_task(operator, context())

    assert run.result["status"] == "success"
    sent = sim.state.requests("POST", "/v0/orders")[0].body["order_items"][0]["geometry"]
    assert sent["features"][0]["geometry"]["type"] == "MultiPolygon"


def test_spacing_near_the_pole_is_the_great_circle_distance() -> None:
    # The facing edges run along meridians, which meet towards the pole: the gap is between the
    # northern corners, on the 80.1° parallel, whatever a plane of scaled longitudes would suggest.
    west, east, north = 0.1, 14.0, 80.1
    expected_km = (
        2
        * EARTH_MEAN_RADIUS_KM
        * math.asin(math.cos(math.radians(north)) * math.sin(math.radians(east - west) / 2))
    )
    far = multipolygon(square_ring(0, 80, 0.1), square_ring(east, 80, 0.1))

    with pytest.raises(PixxelConfigError, match=rf" {expected_km:.1f} km from the nearest"):
        check_multipolygon_spacing(far)


def test_spacing_limit_is_configurable() -> None:
    check_multipolygon_spacing(two_squares_at_equator(300), max_gap_km=310)
    with pytest.raises(PixxelConfigError, match="at most 100 km"):
        check_multipolygon_spacing(two_squares_at_equator(150), max_gap_km=100)


def test_aoi_polygon_skips_spacing_and_single_polygon_has_nothing_to_check() -> None:
    check_multipolygon_spacing(SQUARE)
    assert normalize_aoi_geometry(collection(feature(SQUARE)), want="polygon") == SQUARE


# --- area and bbox ------------------------------------------------------------------------------------


def test_area_of_one_degree_square_at_equator() -> None:
    # Exact on the sphere: R² · Δλ · (sin φ₂ - sin φ₁).
    expected = EARTH_MEAN_RADIUS_KM**2 * math.radians(1) * math.sin(math.radians(1))

    assert geometry_area_km2(polygon(square_ring(0, 0))) == pytest.approx(expected, rel=1e-9)
    assert geometry_area_km2(polygon(square_ring(0, 0))) == pytest.approx(12364, rel=1e-3)


def test_area_subtracts_holes_and_adds_parts_and_features() -> None:
    outer = geometry_area_km2(polygon(square_ring(0, 0, 2)))
    hole = geometry_area_km2(polygon(square_ring(0.5, 0.5, 1)))
    with_hole = polygon(square_ring(0, 0, 2), square_ring(0.5, 0.5, 1, clockwise=True))
    other = polygon(square_ring(5, 0, 1))

    assert geometry_area_km2(with_hole) == pytest.approx(outer - hole)
    assert geometry_area_km2(collection(feature(with_hole), feature(other))) == pytest.approx(
        outer - hole + geometry_area_km2(other)
    )


def test_area_shrinks_with_latitude() -> None:
    assert geometry_area_km2(polygon(square_ring(0, 60))) == pytest.approx(
        EARTH_MEAN_RADIUS_KM**2 * math.radians(1) * (math.sin(math.radians(61)) - math.sin(math.radians(60)))
    )


@pytest.mark.parametrize(
    ("south", "geodesic_km2", "within"),
    [
        (0, 12308.464, 0.005),
        (30, 10642.393, 0.002),
        (45, 8686.495, 0.003),
        (60, 6123.141, 0.006),
        (80, 2058.275, 0.009),
    ],
)
def test_area_is_within_the_documented_error_of_the_wgs84_area(
    south: float, geodesic_km2: float, within: float
) -> None:
    # Reference: pyproj.Geod(ellps="WGS84").polygon_area_perimeter of the 1° square, edges densified
    # (200 points each) so that both sides take the same boundary.
    assert geometry_area_km2(polygon(square_ring(0, south))) == pytest.approx(geodesic_km2, rel=within)


def test_billed_area_has_a_100_km2_minimum() -> None:
    small = polygon(square_ring(0, 0, 0.01))  # about 1.2 km²
    large = polygon(square_ring(0, 0, 1))

    assert geometry_area_km2(small) < 2
    assert billed_area_km2(small) == MIN_BILLED_AREA_KM2
    assert billed_area_km2(large) == pytest.approx(geometry_area_km2(large))


def test_bbox() -> None:
    value = collection(feature(polygon(square_ring(-10, -5, 2))), feature(polygon(square_ring(3, 4, 1))))

    assert bbox(value) == (-10, -5, 4, 5)


def test_area_and_bbox_refuse_invalid_input_naming_the_field() -> None:
    with pytest.raises(PixxelConfigError, match=r"^aoi\.coordinates\[0\]: .*not closed"):
        geometry_area_km2(polygon([[0, 0], [1, 0], [1, 1], [0, 1]]), field="aoi")
    with pytest.raises(PixxelConfigError, match="expected a GeoJSON object"):
        bbox(42)


# --- properties -----------------------------------------------------------------------------------------


@st.composite
def convex_polygons(draw: st.DrawFn, *, with_hole: bool = False) -> dict[str, Any]:
    """A convex polygon inscribed in a circle; its centre is strictly inside (every gap < 180°)."""
    centre_lon = draw(st.floats(-170, 170))
    centre_lat = draw(st.floats(-80, 80))
    radius = draw(st.floats(0.001, 5))
    weights = draw(st.lists(st.floats(1, 1.9), min_size=3, max_size=40))
    offset = draw(st.floats(0, 2 * math.pi))
    total = sum(weights)
    angles = [offset + 2 * math.pi * sum(weights[:k]) / total for k in range(len(weights))]

    def scaled(factor: float) -> list[list[float]]:
        return ring(
            *(
                (centre_lon + factor * radius * math.cos(a), centre_lat + factor * radius * math.sin(a))
                for a in angles
            )
        )

    rings = [scaled(1.0)]
    if with_hole:
        rings.append(scaled(0.5))
    for index in range(len(rings)):
        if draw(st.booleans()):
            rings[index].reverse()
    return polygon(*rings)


@settings(max_examples=150, deadline=None)
@given(convex_polygons())
def test_random_convex_polygon_passes_and_comes_out_counter_clockwise(value: dict[str, Any]) -> None:
    result = normalize_aoi_geometry(value)

    exterior = result["coordinates"][0]
    assert signed_area(exterior) > 0
    assert sorted(map(tuple, exterior)) == sorted(map(tuple, value["coordinates"][0]))


@settings(max_examples=100, deadline=None)
@given(
    convex_polygons(with_hole=True),
    st.sampled_from(["polygon", "feature_collection", "any"]),
    st.sampled_from(["bare", "feature", "collection", "json"]),
)
def test_normalisation_is_idempotent(value: dict[str, Any], want: str, form: str) -> None:
    given_value: Any = {
        "bare": value,
        "feature": feature(value),
        "collection": collection(feature(value)),
        "json": json.dumps(value),
    }[form]

    once = normalize_aoi_geometry(given_value, want=want)  # type: ignore[arg-type]

    assert normalize_aoi_geometry(once, want=want) == once  # type: ignore[arg-type]
    assert normalize_aoi_geometry(json.dumps(once), want=want) == once  # type: ignore[arg-type]
    hole = normalize_aoi_geometry(once)["coordinates"][1]
    assert signed_area(hole) < 0


@settings(max_examples=100, deadline=None)
@given(convex_polygons(), st.integers(0, 39))
def test_swapping_neighbouring_corners_makes_a_bow_tie_that_is_refused(
    value: dict[str, Any], start: int
) -> None:
    corners = value["coordinates"][0][:-1]
    if len(corners) < 4:
        return
    # Corners k-1, k+1, k, k+2 in that order: chords (k-1, k+1) and (k, k+2) of a convex polygon cross.
    first, second = start % len(corners), (start + 1) % len(corners)
    corners[first], corners[second] = corners[second], corners[first]

    with pytest.raises(PixxelConfigError, match="intersects itself"):
        normalize_aoi_geometry(polygon([*corners, corners[0]]))


# -- same_area ------------------------------------------------------------------------------------------

UNIT = polygon([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]])


@pytest.mark.parametrize(
    ("other", "same"),
    [
        (polygon([[0, 1], [1, 1], [1, 0], [0, 0], [0, 1]]), True),  # clockwise, another first corner
        (polygon([[0, 0], [0.5, 0], [1, 0], [1, 1], [0, 1], [0, 0]]), True),  # a corner along an edge
        (polygon([[0, 0], [1 + 5e-8, 0], [1, 1], [0, 1], [0, 0]]), True),  # within the ~1 cm tolerance
        ({"type": "Feature", "properties": {}, "geometry": UNIT}, True),  # same area, other wrapping
        (polygon([[0, 0], [1 + 1e-5, 0], [1, 1], [0, 1], [0, 0]]), False),  # a corner ~1 m off
        (
            polygon(
                [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], [[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.2]]
            ),
            False,
        ),
        (polygon([[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]), False),
    ],
)
def test_same_area_compares_shapes_not_json(other: dict[str, Any], same: bool) -> None:
    assert same_area(UNIT, other) is same
    assert same_area(other, UNIT) is same
