"""The Pixxel API contract, shipped with the provider: the official OpenAPI spec and its corrections.

``openapi.json`` beside this module is the official Pixxel (Aurora) API spec, byte for byte as
published (provenance, date and sha256 in ``README.md`` here); :mod:`.overlay` lists the spec's known
defects and their corrections. :func:`contract` is the corrected spec: the hooks check every request
against it before sending (:func:`.rules.check_request`), the simulator checks every request it is sent,
and the operators read their enums and field sets from it.

Nothing here is read when a DAG file is parsed: the spec is loaded on first use and kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from airflow_provider_pixxel.spec.overlay import apply_overlay

SPEC_PATH = Path(__file__).resolve().with_name("openapi.json")
# sha256 of the vendored openapi.json, as published; a test keeps the file and this value in step.
SPEC_SHA256 = "b501e2ca5a9d0511a92c60c856d72bfae6c5db6815e94fbf319ebe8d90df6e66"


@cache
def official_spec() -> Mapping[str, Any]:
    """The vendored spec as published (read once; never modify the returned value)."""
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_bytes())
    return spec


@cache
def contract() -> Mapping[str, Any]:
    """The spec with the overlay's corrections applied (built once; never modify the returned value)."""
    return apply_overlay(dict(official_spec()))


def component(name: str) -> Mapping[str, Any]:
    """The schema ``components.schemas[name]`` of the contract, e.g. ``"clerk.docOriginalOrderItem"``."""
    schema: Mapping[str, Any] = contract()["components"]["schemas"][name]
    return schema


def _follow(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with a ``$ref`` (direct, or as the only ``allOf`` part) replaced by its target."""
    while True:
        ref = schema.get("$ref") or next(
            (part["$ref"] for part in schema.get("allOf", ()) if "$ref" in part and "enum" not in schema),
            None,
        )
        if ref is None:
            return schema
        schema = component(ref.rsplit("/", 1)[-1])


@cache
def field_names(schema_name: str) -> frozenset[str]:
    """The property names of a contract schema (an object a request body or answer carries)."""
    return frozenset(component(schema_name).get("properties", {}))


@cache
def enum_values(schema_name: str, field: str | None = None) -> tuple[str, ...]:
    """The allowed values of an enum schema, or of the enum-typed ``field`` of an object schema.

    The field's own ``type: array`` is looked through to its items (``visualization_modes``).
    """
    schema: Mapping[str, Any] = component(schema_name)
    if field is not None:
        schema = _follow(schema)["properties"][field]
    schema = _follow(schema)
    if schema.get("type") == "array":
        schema = _follow(schema["items"])
    if "enum" not in schema:
        raise KeyError(f"{schema_name}{'.' + field if field else ''} is not an enum in the Pixxel API spec")
    return tuple(schema["enum"])


__all__ = ["SPEC_PATH", "SPEC_SHA256", "component", "contract", "enum_values", "field_names", "official_spec"]
