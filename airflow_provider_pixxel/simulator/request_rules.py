"""Request rules of every operation, derived from the OpenAPI spec.

The simulator ships without the spec file, so the rules it checks requests against (required query
parameters and their types, request body schemas) live in :mod:`._request_rules_data`, generated from
``openapi.json`` by :func:`build_rules`. A test keeps the generated data in sync with the spec;
regenerate with ``python -m airflow_provider_pixxel.simulator.request_rules path/to/openapi.json``.

:func:`check_query` and :func:`check_body` apply the rules and return readable problems such as
``"order_items[0].usecase: required field missing"``.
"""

from __future__ import annotations

import json
import pprint
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

# Fields the spec types ``array<integer>`` that really carry arbitrary JSON (FACTS.md §2).
RAW_JSON_FIELDS = frozenset({"spec", "inputs", "outputs", "input", "output", "result", "info_logs"})

# Spec statements the docs contradict, relaxed so real clients are not refused:
# * download and delivery requests take catalog_ids OR order_item_ids (the spec requires both);
# * order geometries may be MultiPolygons, whose coordinates nest one level deeper than typed.
_RELAXED_REQUIRED = {
    ("POST", "/v0/catalogs/download"): ((), ("catalog_ids", "order_item_ids")),
    ("POST", "/v0/catalogs/deliveries"): (("deliveries", "items"), ("catalog_ids", "order_item_ids")),
}
_KEPT_KEYWORDS = frozenset(
    {
        "type",
        "required",
        "properties",
        "items",
        "additionalProperties",
        "enum",
        "minimum",
        "maximum",
        "maxLength",
        "minLength",
        "minItems",
        "maxItems",
    }
)


def _resolve(schema: Any, components: Mapping[str, Any], depth: int = 0) -> Any:
    if depth > 40:
        raise ValueError("schema nesting too deep (recursive $ref?)")
    if not isinstance(schema, Mapping):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _resolve(components[name], components, depth + 1)
    merged: dict[str, Any] = {}
    for part in schema.get("allOf", ()):
        merged.update(_resolve(part, components, depth + 1))
    for key, value in schema.items():
        if key not in _KEPT_KEYWORDS:
            continue
        if key == "properties":
            merged[key] = {
                name: ({} if _is_raw_json(name, sub) else _resolve(sub, components, depth + 1))
                for name, sub in value.items()
            }
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            merged[key] = _resolve(value, components, depth + 1)
        else:
            merged[key] = value
    return merged


def _is_raw_json(name: str, schema: Any) -> bool:
    return (
        name in RAW_JSON_FIELDS
        and isinstance(schema, Mapping)
        and schema.get("type") == "array"
        and isinstance(schema.get("items"), Mapping)
        and schema["items"].get("type") == "integer"
    )


def _relax(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    relaxed = _RELAXED_REQUIRED.get((method, path))
    if relaxed:
        where, fields = relaxed
        node = body
        for key in where:
            node = node["properties"][key] if key != "items" else node["items"]
        node["required"] = [name for name in node.get("required", []) if name not in fields]
    if (method, path) == ("POST", "/v0/orders"):
        feature = body["properties"]["order_items"]["items"]["properties"]["geometry"]["properties"]
        feature["features"]["items"]["properties"]["geometry"]["properties"]["coordinates"] = {
            "type": "array"
        }
    return body


def build_rules(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Rules keyed ``"METHOD /path/template"``: ``query`` parameters and the ``body`` schema."""
    components = spec["components"]["schemas"]
    rules: dict[str, dict[str, Any]] = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            query = []
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") != "query":
                    continue
                schema = _resolve(parameter.get("schema", {}), components)
                query.append(
                    {
                        "name": parameter["name"],
                        "required": bool(parameter.get("required")),
                        "type": schema.get("type", "string"),
                        **({"enum": schema["enum"]} if "enum" in schema else {}),
                    }
                )
            rule: dict[str, Any] = {"query": query}
            request_body = operation.get("requestBody")
            if request_body:
                schema = request_body.get("content", {}).get("application/json", {}).get("schema", {})
                rule["body"] = _relax(method.upper(), path, _resolve(schema, components))
                rule["body_required"] = bool(request_body.get("required"))
            rules[f"{method.upper()} {path}"] = rule
    return rules


def _location(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def check_body(schema: Mapping[str, Any], value: Any) -> list[str]:
    """Every way ``value`` breaks ``schema``, as ``"where: what"`` sentences, most specific first."""
    problems = []
    for error in sorted(Draft7Validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = _location(error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else error.message
            problems.append(f"{where + '.' if where != 'body' else ''}{missing}: required field missing")
        elif error.validator == "enum":
            allowed = ", ".join(map(str, error.validator_value))
            problems.append(f"{where}: {error.instance!r} is not one of {allowed}")
        elif error.validator == "type":
            problems.append(f"{where}: expected {error.validator_value}, got {type(error.instance).__name__}")
        else:
            problems.append(f"{where}: {error.message}")
    return problems


def check_query(parameters: list[Mapping[str, Any]], query: Mapping[str, str]) -> list[str]:
    """Missing required query parameters, non-integer integers and values outside an enum."""
    problems = []
    for parameter in parameters:
        name = parameter["name"]
        value = query.get(name)
        if value is None or value == "":
            if parameter["required"]:
                problems.append(f"query parameter {name!r} is required")
            continue
        if parameter["type"] == "integer":
            try:
                int(value)
            except ValueError:
                problems.append(f"query parameter {name!r} must be an integer, got {value!r}")
        if "enum" in parameter and value not in parameter["enum"]:
            problems.append(f"query parameter {name!r} must be one of {', '.join(parameter['enum'])}")
    return problems


def _write_data_module(spec_path: Path) -> Path:
    rules = build_rules(json.loads(spec_path.read_text()))
    target = Path(__file__).with_name("_request_rules_data.py")
    target.write_text(
        '"""Generated by ``python -m airflow_provider_pixxel.simulator.request_rules`` from openapi.json.'
        '\n\nDo not edit by hand."""\n\nfrom typing import Any\n\nRULES: dict[str, dict[str, Any]] = '
        + pprint.pformat(rules, width=108, sort_dicts=True)
        + "\n"
    )
    return target


if __name__ == "__main__":
    print(_write_data_module(Path(sys.argv[1])))
