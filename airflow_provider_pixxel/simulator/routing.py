"""How the simulator's API routes are declared, checked and answered.

Each operation is a plain function ``(state, call) -> result`` registered with :func:`operation`. The
wrapper does what every real Pixxel endpoint does before its own logic: checks the ``Authorization``
header, checks query parameters and the JSON body against the rules of the contract the provider
ships (:mod:`airflow_provider_pixxel.spec.rules`, the same the hooks check before sending), and turns
:class:`~.state.SimulatorError` into the error envelope. Handlers run
under the state lock, one at a time, so they never see a half-made change.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_pixxel.simulator.state import SimulatorError, SimulatorState, bad_request
from airflow_provider_pixxel.spec.rules import body_problems, check_query, rules
from airflow_provider_pixxel.utils.dates import parse_date, parse_datetime

VISUALIZATION_DATE = re.compile(r"^\d{4}_\d{2}_\d{2}$")
RECORDED_BODY_KEY = "pixxel_simulator_body"
_REDACTED_FIELDS = frozenset({"secrets"})


@dataclass
class Call:
    """One parsed API request."""

    path_params: dict[str, str]
    query: dict[str, str]
    body: Any
    base_url: str

    def int_query(self, name: str, default: int) -> int:
        value = self.query.get(name)
        return default if value in (None, "") else int(value)


@dataclass
class Binary:
    """A non-JSON success body."""

    content: bytes | str
    media_type: str


Handler = Callable[[SimulatorState, Call], Any]


def operation(
    router: APIRouter, state: SimulatorState, method: str, path: str, status: int = 200
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the operation ``method path`` answering ``status`` on success.

    A handler may return a JSON-able value, a ``(status, value)`` pair to override the status,
    :class:`Binary`, or ``None`` for an empty body.
    """
    key = f"{method} {path}"
    rule = rules()[key]
    needs_auth = path != "/ping"

    def decorator(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                if needs_auth:
                    _check_auth(state, request.headers.get("authorization"))
                call = Call(
                    path_params=dict(request.path_params),
                    query=dict(request.query_params),
                    body=await _read_body(request, rule),
                    base_url=state.base_url_for(str(request.base_url)),
                )
                request.scope[RECORDED_BODY_KEY] = _redacted(call.body)
                problems = check_query(rule["query"], call.query)
                if "body" in rule and call.body is not None:
                    problems += [problem.text for problem in body_problems(key, call.body)]
                if problems:
                    raise bad_request("; ".join(problems), details={"problems": problems})
                with state.lock:
                    state.begin_request()
                    result = handler(state, call)
            except SimulatorError as error:
                return JSONResponse(error.envelope(), status_code=error.status)
            return _respond(result, status)

        endpoint.__name__ = handler.__name__
        router.add_api_route(path, endpoint, methods=[method], name=handler.__name__)
        return handler

    return decorator


def _check_auth(state: SimulatorState, header: str | None) -> None:
    """The service takes the bare key; a prefix is refused unless the simulator was told to accept one."""
    value = (header or "").strip()
    prefix = state.accept_auth_prefix
    if prefix and value.lower().startswith(prefix.lower() + " "):
        value = value[len(prefix) + 1 :].strip()
    if not value:
        raise SimulatorError(403, "missing API key: send it in the Authorization header", code="forbidden")
    if value != state.api_key:
        raise SimulatorError(403, "invalid API key", code="forbidden")


async def _read_body(request: Request, rule: Mapping[str, Any]) -> Any:
    raw = await request.body()
    if "body" not in rule:
        return None
    if not raw.strip():
        if rule.get("body_required"):
            raise bad_request("request body is required (a JSON object)")
        return None
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise bad_request(f"request body is not valid JSON: {error}") from None
    if value is None:
        # A literal null is a malformed body, not a missing one: the handlers index into the body.
        raise bad_request("request body is null: send a JSON object")
    return value


def _redacted(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: ("***" if k in _REDACTED_FIELDS else _redacted(v)) for k, v in body.items()}
    if isinstance(body, list):
        return [_redacted(v) for v in body]
    return body


def _respond(result: Any, status: int) -> Response:
    if isinstance(result, tuple):
        status, result = result
    if isinstance(result, Binary):
        return Response(result.content, status_code=status, media_type=result.media_type)
    if result is None:
        return Response(status_code=status)
    return JSONResponse(result, status_code=status)


# --------------------------------------------------------------------- shared checks and helpers


def paginate(items: list[Any], offset: int, limit: int) -> tuple[list[Any], dict[str, int]]:
    """One page and its ``common.Pagination`` object."""
    if offset < 0:
        raise bad_request("offset must be 0 or more")
    if limit < 1:
        raise bad_request("limit must be 1 or more")
    return items[offset : offset + limit], {"limit": limit, "offset": offset, "total": len(items)}


def parse_instant(value: Any, field: str) -> float:
    """An RFC 3339 timestamp (``2023-04-18T11:56:49.865Z``) as epoch seconds, or a 400."""
    if not isinstance(value, str) or not value:
        raise bad_request(f"{field}: expected an RFC 3339 timestamp such as 2024-05-06T00:00:00Z")
    try:
        return parse_datetime(value, field=field).timestamp()
    except ValueError:  # the parser's PixxelConfigError, caught as its base: no Airflow import here
        raise bad_request(
            f"{field}: {value!r} is not an RFC 3339 timestamp such as 2024-05-06T00:00:00Z"
        ) from None


def parse_interval(value: str, field: str) -> tuple[float, float]:
    """A STAC ``datetime``: an instant or ``start/end`` with ``..`` for an open end."""
    if "/" not in value:
        moment = parse_instant(value, field)
        return moment, moment
    start, _, end = value.partition("/")
    low = -math.inf if start in ("", "..") else parse_instant(start, field)
    high = math.inf if end in ("", "..") else parse_instant(end, field)
    if low > high:
        raise bad_request(f"{field}: the interval ends before it starts")
    return low, high


def check_visualization_date(value: Any, field: str) -> str:
    if not isinstance(value, str) or not VISUALIZATION_DATE.match(value):
        raise bad_request(f"{field}: {value!r} is not a date in the YYYY_MM_DD form, e.g. 2024_05_06")
    try:
        parse_date(value, field=field)
    except ValueError:  # the parser's PixxelConfigError, caught as its base: no Airflow import here
        raise bad_request(f"{field}: {value!r} is not a real calendar date") from None
    return value


def _check_ring(ring: Any, where: str) -> None:
    if not isinstance(ring, list) or len(ring) < 4:
        raise bad_request(f"{where}: a linear ring needs at least 4 positions")
    for n, position in enumerate(ring):
        if (
            not isinstance(position, list)
            or len(position) < 2
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in position[:2])
        ):
            raise bad_request(f"{where}[{n}]: a position is [longitude, latitude]")
        lon, lat = position[0], position[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise bad_request(
                f"{where}[{n}]: [{lon}, {lat}] is outside longitude -180..180 / latitude -90..90"
            )
    if ring[0][:2] != ring[-1][:2]:
        raise bad_request(f"{where}: the ring is not closed (first and last positions differ)")
    if ring_area_m2(ring) <= 0:
        raise bad_request(f"{where}: the ring encloses no area")


def check_polygon(geometry: Any, where: str, allow_multi: bool = False) -> list[list[list[list[float]]]]:
    """A GeoJSON Polygon (or MultiPolygon) checked for shape, ranges and closure; returns its polygons."""
    allowed = ("Polygon", "MultiPolygon") if allow_multi else ("Polygon",)
    if not isinstance(geometry, dict) or geometry.get("type") not in allowed:
        raise bad_request(f"{where}: expected a GeoJSON {' or '.join(allowed)} geometry")
    coordinates = geometry.get("coordinates")
    polygons = coordinates if geometry["type"] == "MultiPolygon" else [coordinates]
    if not isinstance(polygons, list) or not polygons:
        raise bad_request(f"{where}.coordinates: empty geometry")
    for p, polygon in enumerate(polygons):
        if not isinstance(polygon, list) or not polygon:
            raise bad_request(f"{where}.coordinates: a polygon needs at least one ring")
        for r, ring in enumerate(polygon):
            label = (
                f"{where}.coordinates" + (f"[{p}]" if geometry["type"] == "MultiPolygon" else "") + f"[{r}]"
            )
            _check_ring(ring, label)
    return polygons


def ring_area_m2(ring: list[list[float]]) -> float:
    """Area of a lon/lat ring on a sphere (good to a fraction of a percent at field scale)."""
    radius = 6_371_008.8
    total = 0.0
    for (lon1, lat1, *_), (lon2, lat2, *_) in itertools.pairwise(ring):
        total += math.radians(lon2 - lon1) * (2 + math.sin(math.radians(lat1)) + math.sin(math.radians(lat2)))
    return abs(total * radius * radius / 2.0)


def polygons_area_m2(polygons: list[list[list[list[float]]]]) -> float:
    return sum(ring_area_m2(p[0]) - sum(ring_area_m2(h) for h in p[1:]) for p in polygons)


def bbox_of(polygons: list[list[list[list[float]]]]) -> list[float]:
    lons = [pt[0] for p in polygons for pt in p[0]]
    lats = [pt[1] for p in polygons for pt in p[0]]
    return [min(lons), min(lats), max(lons), max(lats)]


def centroid_of(polygons: list[list[list[list[float]]]]) -> list[float]:
    west, south, east, north = bbox_of(polygons)
    return [round((west + east) / 2, 6), round((south + north) / 2, 6)]


def boxes_intersect(a: list[float], b: list[float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def comma_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]
