"""The checks every operator applies to its arguments before the first request, written once.

Operator arguments are often templated, and a template rendered without
``render_template_as_native_obj`` gives text: ``"20"`` for a number, ``"['a', 'b']"`` for a list. The
checks here take those forms too, and refuse anything else with a :class:`PixxelConfigError` that names
the argument, says what was expected and what was given, so a bad value fails the task before anything
is sent or paid for. Dates have their own module, :mod:`airflow_provider_pixxel.utils.dates`.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.utils.lazy_import import lazy_import

if TYPE_CHECKING:
    from airflow_provider_pixxel.utils import geometry
else:
    # Needed once the task runs, not while a DAG file is parsed (see utils/lazy_import.py).
    geometry = lazy_import("airflow_provider_pixxel.utils.geometry")

__all__ = [
    "bare_geometry",
    "bounding_box",
    "decode_json_text",
    "exactly_one_id_list",
    "id_list",
    "list_of_mappings",
    "non_empty_list",
    "one_of",
    "require_text",
    "require_text_list",
    "whole_number",
]

_ID_SEPARATOR = ","
_WHOLE_NUMBER_TEXT = re.compile(r"\s*-?\d+\s*", re.ASCII)


def decode_json_text(field: str, value: Any) -> Any:
    """A list or mapping given as text (a template rendered without native objects) decoded again.

    JSON first, then a Python literal (what ``{{ ti.xcom_pull(...) }}`` renders a list to); other values
    come back unchanged.
    """
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


def require_text(field: str, value: Any, *, hint: str = "") -> str:
    """``value`` stripped; a :class:`PixxelConfigError` naming ``field`` unless a non-empty string.

    :param hint: where to find a valid value, e.g. ``"list them with PixxelHook.list_workflows()"``.
    """
    if isinstance(value, str) and value.strip():
        return value.strip()
    detail = f" ({hint})" if hint else ""
    if value is None or isinstance(value, str):
        raise PixxelConfigError(
            f"{field} is required{detail}: {field} must be a non-empty string, got {value!r}"
        )
    raise PixxelConfigError(
        f"{field} must be a non-empty string{detail}, got {type(value).__name__} {value!r}"
    )


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


def one_of(
    field: str,
    value: Any,
    choices: Sequence[str],
    *,
    case: Literal["lower", "upper", "exact"] = "lower",
    hint: str = "",
    quoted: bool = False,
) -> str:
    """``value`` as one of ``choices``: stripped, then folded to ``case``, the case the choices are
    written in (the contract's enums are all lower case, like ``dynamic``, or all upper case, like
    ``S3``, and a user or a template may write either); ``"exact"`` folds nothing.

    Anything else, a value that is not a string included, is refused with a :class:`PixxelConfigError`
    listing the choices: ``"{field} must be one of a, b, c; got 'd'"``.

    :param hint: what the choices mean, shown in parentheses after them, e.g. ``"UTC calendar periods"``.
    :param quoted: list the choices as Python literals (``'fail', 'adopt'``), for a case-sensitive
        argument written in DAG code.
    """
    if isinstance(value, str):
        text = value.strip()
        folded = text.lower() if case == "lower" else text.upper() if case == "upper" else text
        if folded in choices:
            return folded
    shown = ", ".join(map(repr, choices) if quoted else choices)
    detail = f" ({hint})" if hint else ""
    raise PixxelConfigError(f"{field} must be one of {shown}{detail}; got {value!r}")


def non_empty_list(field: str, value: Any, *, of: str, hint: str = "") -> list[Any]:
    """``value`` as a list of at least one element; checking the elements is the caller's part.

    Any iterable but text, bytes or a mapping is taken (a mapping or a string is one value, not a list
    of its keys or characters); the JSON or Python text of a list (a template rendered without native
    objects) is decoded first.

    :param of: what the elements are, for the message: ``"order item objects"``.
    :param hint: where such a list comes from or what to pass instead, shown in parentheses.
    """
    value = decode_json_text(field, value)
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
        items = list(value)
        if items:
            return items
    detail = f" ({hint})" if hint else ""
    raise PixxelConfigError(f"{field} must be a non-empty list of {of}{detail}; got {value!r}")


_TRUE_TEXT = frozenset({"true", "1", "yes", "on"})
_FALSE_TEXT = frozenset({"false", "0", "no", "off"})


def true_or_false(field: str, value: Any) -> bool:
    """A switch given as a boolean or as text ("true"/"false", "yes"/"no", "on"/"off", "1"/"0", any
    case): what the connection form, a run's conf and rendered templates store."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE_TEXT | _FALSE_TEXT:
            return text in _TRUE_TEXT
    raise PixxelConfigError(f"{field} must be true or false; got {value!r}")


def whole_number(field: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """An integer within ``[low, high]`` (either bound optional); numeric text (rendered templates) works.

    ``20.5``, ``True`` and ``"twenty"`` are refused: the API takes integers.
    """
    if isinstance(value, str) and _WHOLE_NUMBER_TEXT.fullmatch(value):
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        if low is not None and high is not None:
            bounds = f" from {low} to {high}"
        elif low is not None:
            bounds = f" of {low} or more"
        elif high is not None:
            bounds = f" of {high} or less"
        else:
            bounds = " (the API takes integers)"
        raise PixxelConfigError(f"{field} must be a whole number{bounds}; got {value!r}")
    return value


def id_list(value: Any, *, field: str) -> list[str]:
    """A list of ids from what a (templated) argument holds, duplicates dropped, order kept.

    Accepts a list or tuple of strings, one id, a comma-separated string, or the JSON / Python text of
    a list (what ``{{ ti.xcom_pull(...) }}`` renders to without ``render_template_as_native_obj``).
    ``None`` gives an empty list.

    :raises PixxelConfigError: naming ``field`` when an element is not a non-empty string.
    """
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            value = decode_json_text(field, text)
        else:
            value = [part for part in (piece.strip() for piece in text.split(_ID_SEPARATOR)) if part]
    if not isinstance(value, (list, tuple)):
        raise PixxelConfigError(f"{field} must be a list of id strings, got {type(value).__name__} {value!r}")
    ids: list[str] = []
    for position, element in enumerate(value):
        checked = require_text(f"{field}[{position}]", element, hint="an id")
        if _ID_SEPARATOR in checked:
            raise PixxelConfigError(f"{field}[{position}] {element!r} holds a comma; give one id per element")
        if checked not in ids:
            ids.append(checked)
    return ids


def exactly_one_id_list(
    first: Any, second: Any, *, first_field: str, second_field: str
) -> tuple[str, list[str]]:
    """Which of two mutually exclusive id arguments was given, and its ids."""
    first_ids = id_list(first, field=first_field)
    second_ids = id_list(second, field=second_field)
    if bool(first_ids) == bool(second_ids):
        given = "both were" if first_ids else "neither was"
        raise PixxelConfigError(
            f"give exactly one of {first_field} or {second_field} (a non-empty list of ids); {given} given"
        )
    return (first_field, first_ids) if first_ids else (second_field, second_ids)


def bounding_box(field: str, value: Any) -> list[float] | None:
    """A ``[west, south, east, north]`` box in degrees, or None when not given.

    Exactly four numbers: both bbox parameters of the API (archive search ``cosmos.Search`` and catalog
    search ``clerk.originalCatalogFilter``) are documented as "provided as four numbers", with no
    six-number (height) form. The text ``"160.6,-55.95,-170,-25.89"`` (the query-string form) and JSON
    text are accepted. ``west > east`` is allowed: it is how a box crossing the antimeridian is written.
    """
    value = decode_json_text(field, value)
    if value is None:
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # not numbers: refused below, showing the text as given
            value = [float(part) for part in value.split(",")]
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 4
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
        )
    ):
        raise PixxelConfigError(
            f"{field} must be four numbers [west, south, east, north] in degrees, got {value!r}"
        )
    west, south, east, north = (float(v) for v in value)
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise PixxelConfigError(f"{field} longitudes must be within -180..180; got west={west}, east={east}")
    if not (-90 <= south <= north <= 90):
        raise PixxelConfigError(
            f"{field} latitudes must be within -90..90 with south <= north; got south={south}, north={north}"
        )
    return [west, south, east, north]


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


def list_of_mappings(field: str, value: Any, *, example: str) -> list[Mapping[str, Any]] | None:
    """A list of mappings (one mapping counts as a list of one, JSON text is decoded), or None.

    :param example: one entry as the user would write it, shown in the error.
    """
    value = decode_json_text(field, value)
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise PixxelConfigError(
            f"{field} must be a list such as [{example}]; got {type(value).__name__} {value!r}"
        )
    for position, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise PixxelConfigError(f"{field}[{position}] must be a mapping such as {example}; got {entry!r}")
    return list(value)
