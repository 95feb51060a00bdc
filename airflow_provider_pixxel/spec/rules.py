"""Request rules of every operation, derived from the contract, and the check every request goes through.

:func:`build_rules` reads, for each of the 55 operations of the corrected spec
(:func:`airflow_provider_pixxel.spec.contract`), its query parameters and the JSON schema of its body;
:func:`rules` builds them once, on first use. :func:`check_query` and :func:`check_body` return readable
problems such as ``"order_items[0].usecase: required field missing"`` (the simulator answers them as a
400). :func:`check_request` is what both hooks call before sending anything: a request that breaks the
contract raises :class:`~airflow_provider_pixxel.exceptions.PixxelConfigError` naming the hook method,
the field and the rule, and is never sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from jsonschema import Draft7Validator

from airflow_provider_pixxel.spec import contract
from airflow_provider_pixxel.spec.operations import HOOK_METHODS

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

    from airflow_provider_pixxel.hooks.transport import ApiRequest

# The annotation each resolved ``$ref`` keeps, so a problem can cite the spec schema it breaks.
SCHEMA_NAME_KEY = "x-spec-schema"
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
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def _resolve(schema: Any, components: Mapping[str, Any], depth: int = 0) -> Any:
    if depth > 40:
        raise ValueError("schema nesting too deep (recursive $ref?)")
    if not isinstance(schema, Mapping):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return {**_resolve(components[name], components, depth + 1), SCHEMA_NAME_KEY: name}
    merged: dict[str, Any] = {}
    for part in schema.get("allOf", ()):
        merged.update(_resolve(part, components, depth + 1))
    for key, value in schema.items():
        if key not in _KEPT_KEYWORDS:
            continue
        if key == "properties":
            merged[key] = {name: _resolve(sub, components, depth + 1) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            merged[key] = _resolve(value, components, depth + 1)
        else:
            merged[key] = value
    return merged


def build_rules(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Rules keyed ``"METHOD /path/template"``: ``query`` parameters and the ``body`` schema."""
    components = spec["components"]["schemas"]
    built: dict[str, dict[str, Any]] = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
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
                rule["body"] = _resolve(schema, components)
                rule["body_required"] = bool(request_body.get("required"))
            built[f"{method.upper()} {path}"] = rule
    return built


@cache
def rules() -> Mapping[str, Mapping[str, Any]]:
    """The rules of the contract, built on first use (never modify the returned value)."""
    return build_rules(contract())


@cache
def _validator(key: str) -> Draft7Validator:
    return Draft7Validator(rules()[key]["body"])


class Problem(NamedTuple):
    """One way a value breaks a schema: where, what, and the spec schema that states the rule."""

    where: str
    text: str
    schema: str | None


def _location(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _schema_named_at(root: Mapping[str, Any], schema_path: Any) -> str | None:
    """The innermost spec schema (``$ref`` target) on the way to the failing keyword."""
    named = root.get(SCHEMA_NAME_KEY)
    node: Any = root
    for key in list(schema_path)[:-1]:
        if not isinstance(node, (Mapping, list)):
            break
        node = node[key]
        if isinstance(node, Mapping) and SCHEMA_NAME_KEY in node:
            named = node[SCHEMA_NAME_KEY]
    return named


def _problems(validator: Draft7Validator, value: Any) -> Iterator[Problem]:
    errors: list[ValidationError] = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    for error in errors:
        where = _location(error.absolute_path)
        named = _schema_named_at(validator.schema, error.absolute_schema_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else error.message
            field = f"{where + '.' if where != 'body' else ''}{missing}"
            yield Problem(field, f"{field}: required field missing", named)
        elif error.validator == "enum":
            allowed = ", ".join(map(str, error.validator_value))
            yield Problem(where, f"{where}: {error.instance!r} is not one of {allowed}", named)
        elif error.validator == "type":
            got = type(error.instance).__name__
            yield Problem(where, f"{where}: expected {error.validator_value}, got {got}", named)
        else:
            yield Problem(where, f"{where}: {error.message}", named)


def check_body(schema: Mapping[str, Any], value: Any) -> list[str]:
    """Every way ``value`` breaks ``schema``, as ``"where: what"`` sentences, most specific first."""
    return [problem.text for problem in _problems(Draft7Validator(schema), value)]


def body_problems(key: str, value: Any) -> list[Problem]:
    """Every way ``value`` breaks the body schema of operation ``key``, with a validator built once."""
    return list(_problems(_validator(key), value))


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


@cache
def _templates() -> dict[tuple[str, int], list[tuple[tuple[str, ...], str]]]:
    """Path templates split into segments, by method and segment count, most literal segments first."""
    found: dict[tuple[str, int], list[tuple[tuple[str, ...], str]]] = {}
    for key in rules():
        method, template = key.split(" ", 1)
        segments = tuple(template.split("/"))
        found.setdefault((method, len(segments)), []).append((segments, key))
    for templates in found.values():
        templates.sort(key=lambda entry: sum(segment.startswith("{") for segment in entry[0]))
    return found


@lru_cache(maxsize=1024)
def operation_key(method: str, path: str) -> str | None:
    """The ``"METHOD /path/template"`` a concrete request path belongs to; None if none does.

    Cached: a wait loop polls the same path again and again.
    """
    segments = path.split("?", 1)[0].split("/")
    for template, key in _templates().get((method.upper(), len(segments)), ()):
        if all(
            part == segment or (part.startswith("{") and segment)
            for part, segment in zip(template, segments, strict=True)
        ):
            return key
    return None


def check_request(request: ApiRequest) -> None:
    """Refuse, before anything is sent, a request that breaks the contract of its operation.

    Checks the query parameters (required ones present, integers, enums) and the JSON body against the
    operation's schema in the corrected spec. Cross-field rules the spec cannot state stay with the
    hook methods and operators.

    :raises PixxelConfigError: naming the hook method, each field and the rule it breaks, e.g.
        ``create_order: order_items[0].usecase: required field missing (spec: clerk.docOriginalOrderItem)``.
    """
    key = operation_key(request.method, request.path)
    if key is None:
        _refuse(f"{request.method} {request.path} is not an operation of the Pixxel API; nothing was sent")
    rule = rules()[key]
    problems = check_query(rule["query"], request.params or {})
    if "body" in rule:
        if request.json is None:
            if rule["body_required"]:
                problems.append("a JSON body is required")
        else:
            problems += [
                f"{problem.text} (spec: {problem.schema or key})"
                for problem in body_problems(key, request.json)
            ]
    elif request.json is not None:
        problems.append("this operation takes no JSON body")
    if problems:
        _refuse(
            f"{HOOK_METHODS.get(key, key)}: {'; '.join(problems)}. Nothing was sent: the request breaks "
            f"the Pixxel API contract of {key}"
        )


def _refuse(message: str) -> NoReturn:
    # Imported here: the simulator uses these rules and imports nothing of Airflow.
    from airflow_provider_pixxel.exceptions import PixxelConfigError

    raise PixxelConfigError(message)
