"""The corrections laid over the vendored ``openapi.json``: every known defect of the spec, in one place.

The vendored file stays byte for byte what Pixxel published. Each :class:`Correction` names one JSON
pointer into it, the value the official spec has there (checked, so a refreshed spec that changed
under a correction fails loudly instead of being silently re-shaped), the value the provider uses, and
why. :func:`apply_overlay` applies them all to a copy; the result is the contract the hooks and the
simulator check requests against.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

# The raw-JSON marker of the spec generator: Go ``json.RawMessage`` fields rendered as byte arrays.
_BYTES = {"type": "array", "items": {"type": "integer"}}
_ANY_JSON: dict[str, Any] = {}
_RAW_JSON_REASON = (
    "a Go json.RawMessage rendered as array<integer>; the API sends and takes any JSON (arrays of objects)"
)
_ONE_OF_TWO_LISTS = (
    "the request takes catalog_ids OR order_item_ids (each field's own description says not to send both); "
    "the spec requires both. Which one is given is checked by hand"
)


class OverlayMismatchError(ValueError):
    """The official spec no longer has, at a correction's pointer, the value the correction was written for.

    A plain ``ValueError``: the simulator uses the contract too and imports nothing of Airflow.
    """


@dataclass(frozen=True)
class Correction:
    """One defect of the official spec and its fix.

    :param pointer: an RFC 6901 JSON pointer into ``openapi.json``.
    :param official: what the official spec has there (checked before the fix is applied); for
        ``"drop-required"`` the names that must be in the ``required`` list at ``pointer``.
    :param corrected: the value the provider uses instead (for ``"drop-required"``, unused).
    :param reason: one line: why the official value is wrong.
    """

    pointer: str
    official: Any
    corrected: Any
    reason: str
    action: str = "replace"


def _raw_json(schema: str, field: str) -> Correction:
    return Correction(f"/components/schemas/{schema}/properties/{field}", _BYTES, _ANY_JSON, _RAW_JSON_REASON)


CORRECTIONS: tuple[Correction, ...] = (
    _raw_json("dexter.BlockSpec", "inputs"),
    _raw_json("dexter.BlockSpec", "outputs"),
    _raw_json("dexter.GetJobByIdTransformerResponse", "spec"),
    _raw_json("dexter.GetWorkflowsByIdTransformerResponse", "spec"),
    _raw_json("dexter.ListInsightItem", "input"),
    _raw_json("dexter.ListInsightItem", "output"),
    _raw_json("dexter.PostWorkflowRunTransformerResponse", "spec"),
    _raw_json("dexter.PostWorkflowTaskGet", "info_logs"),
    _raw_json("dexter.PostWorkflowTaskGet", "inputs"),
    _raw_json("dexter.PostWorkflowTaskGet", "result"),
    Correction(
        "/components/schemas/dexter.CreateInsightsWildcardTransformerRequest/properties/input",
        _BYTES,
        {"type": "array", "items": {"type": "object"}},
        "an insight's input is the block's spec.inputs as a list of {name, value} objects, not bytes",
    ),
    Correction(
        "/components/schemas/clerk.Task/properties/delivery_status",
        {
            "enum": ["PENDING", "SUCCESSFUL", "FAILED", "NOT_APPLICABLE"],
            "allOf": [{"$ref": "#/components/schemas/clerk.DeliveryStatus"}],
        },
        {
            "type": "string",
            "enum": [
                "UNSPECIFIED",
                "CREATED",
                "IN_PROGRESS",
                "SUCCESS",
                "FAILED",
                "PENDING",
                "SUCCESSFUL",
                "NOT_APPLICABLE",
            ],
        },
        "its own enum and the clerk.DeliveryStatus it extends share only FAILED; the service sends both sets",
    ),
    Correction(
        "/components/schemas/clerk.DownloadRequest/required",
        ["catalog_ids", "order_item_ids"],
        None,
        _ONE_OF_TWO_LISTS,
        action="drop-required",
    ),
    Correction(
        "/components/schemas/clerk.DeliveryRequest/required",
        ["catalog_ids", "order_item_ids"],
        None,
        _ONE_OF_TWO_LISTS,
        action="drop-required",
    ),
    Correction(
        "/components/schemas/clerk.docOriginalOrderItem/properties/geometry/properties/features/items"
        "/properties/geometry/properties/coordinates",
        {
            "type": "array",
            "items": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        },
        {"type": "array"},
        "the geometry may be a MultiPolygon, whose coordinates nest one level deeper than a Polygon's",
    ),
)


def _split(pointer: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.lstrip("/").split("/")]


def _without_descriptions(value: Any) -> Any:
    """``value`` minus the prose and ordering keys, which a correction does not pin."""
    if isinstance(value, dict):
        return {
            key: _without_descriptions(item)
            for key, item in value.items()
            if key not in ("description", "example", "x-order")
        }
    return value


def apply_overlay(
    official: dict[str, Any], corrections: tuple[Correction, ...] = CORRECTIONS
) -> dict[str, Any]:
    """A corrected copy of the ``official`` spec; ``official`` itself is left as it is.

    :raises OverlayMismatchError: a correction's pointer is gone, or the official value there is no
        longer the one the correction was written for (the spec was refreshed: review the correction).
    """
    spec = copy.deepcopy(official)
    for correction in corrections:
        *parents, last = _split(correction.pointer)
        node: Any = spec
        try:
            for key in parents:
                node = node[key]
            current = node[last]
        except (KeyError, TypeError):
            raise OverlayMismatchError(
                f"spec overlay: {correction.pointer} is not in the spec any more; review this correction "
                f"({correction.reason})"
            ) from None
        if correction.action == "drop-required":
            if not set(correction.official) <= set(current):
                raise OverlayMismatchError(
                    f"spec overlay: {correction.pointer} is {current!r}, which no longer holds "
                    f"{correction.official!r}; review this correction ({correction.reason})"
                )
            remaining = [name for name in current if name not in correction.official]
            if remaining:
                node[last] = remaining
            else:  # OpenAPI 3.0 allows no empty ``required`` list
                del node[last]
            continue
        if _without_descriptions(current) != correction.official:
            raise OverlayMismatchError(
                f"spec overlay: {correction.pointer} is {_without_descriptions(current)!r}, not the "
                f"{correction.official!r} this correction was written for; review it ({correction.reason})"
            )
        kept = {key: current[key] for key in ("description",) if isinstance(current, dict) and key in current}
        node[last] = {**kept, **copy.deepcopy(correction.corrected)}
    return spec
