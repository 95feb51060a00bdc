"""Contract: every request ``PixxelHook`` sends is valid for its operation in ``openapi.json``.

The spec is the shared copy beside the checkout (``../shared/pixxel-api``); without it these tests
skip. One spec quirk is relaxed before validating, as FACTS.md §2 explains: raw-JSON dexter fields
(``input``, ``inputs``, ``spec``...) are typed ``array<integer>`` (Go ``json.RawMessage`` rendered by
swaggo) while the API takes JSON arrays of objects, so they accept any JSON here.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests_mock as requests_mock_module

from airflow_provider_pixxel.hooks.pixxel import PixxelHook

from ..hooks.operation_cases import OPERATION_CASES, OperationCase

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "pixxel-api" / "openapi.json"
OPERATIONS_PATH = SPEC_PATH.with_name("OPERATIONS.md")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
RAW_JSON_FIELDS = {"spec", "inputs", "outputs", "input", "output", "result", "info_logs"}

pytestmark = pytest.mark.skipif(
    not SPEC_PATH.is_file(),
    reason=f"the Pixxel OpenAPI spec is not at {SPEC_PATH} (it lives in ../shared beside the checkout)",
)


def load_spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def relax_raw_json_fields(spec: dict[str, Any]) -> dict[str, Any]:
    relaxed = copy.deepcopy(spec)
    for schema in relaxed["components"]["schemas"].values():
        for name, prop in (schema.get("properties") or {}).items():
            if (
                name in RAW_JSON_FIELDS
                and prop.get("type") == "array"
                and prop.get("items", {}).get("type") == "integer"
            ):
                schema["properties"][name] = {"description": prop.get("description", "")}
    return relaxed


def spec_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), route)
        for route, item in load_spec()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def documented_method_names() -> dict[tuple[str, str], str]:
    """(HTTP method, path) → hook method name, from the table in OPERATIONS.md."""
    names: dict[tuple[str, str], str] = {}
    for line in OPERATIONS_PATH.read_text().splitlines():
        match = re.match(r"\|[^|]*\|\s*`(\w+)`\s*\|\s*(\w+)\s*\|\s*`([^`]+)`\s*\|", line)
        if match:
            name, method, route = match.groups()
            names[(method.upper(), route)] = name
    return names


@pytest.fixture(scope="module")
def openapi() -> Any:
    from openapi_core import OpenAPI

    return OpenAPI.from_dict(relax_raw_json_fields(load_spec()))


def test_the_spec_has_55_operations() -> None:
    assert len(spec_operations()) == 55


def test_the_hook_covers_every_operation_of_the_spec() -> None:
    """Walk the spec's paths and methods: each maps to a hook method, and the test table calls it."""
    names = documented_method_names()
    cases = {(case.method, case.route): case.name for case in OPERATION_CASES}
    missing = []
    for operation in sorted(spec_operations()):
        name = names.get(operation)
        if name is None or not callable(getattr(PixxelHook, name, None)) or cases.get(operation) != name:
            missing.append((operation, name, cases.get(operation)))
    assert missing == []
    assert set(cases) == spec_operations()


@pytest.mark.parametrize("case", OPERATION_CASES, ids=lambda case: case.name)
def test_request_matches_the_spec(
    hook: PixxelHook, requests_mock: Any, openapi: Any, case: OperationCase
) -> None:
    from openapi_core.contrib.requests import RequestsOpenAPIRequest

    requests_mock.register_uri(
        requests_mock_module.ANY,
        requests_mock_module.ANY,
        status_code=case.status,
        content=case.content,
        headers={"Content-Type": case.content_type} if case.content_type else {},
    )
    getattr(hook, case.name)(*case.args, **case.kwargs)
    (sent,) = requests_mock.request_history

    openapi.validate_request(RequestsOpenAPIRequest(sent._request))


def test_validation_catches_a_wrong_request(openapi: Any) -> None:
    """The contract check can fail: a body missing a required field is refused."""
    import requests
    from openapi_core.contrib.requests import RequestsOpenAPIRequest
    from openapi_core.validation.request.exceptions import RequestValidationError

    wrong = requests.Request(
        "POST",
        "https://api.pixxel.space/v0/orders",
        json={"dry_run": True},
        headers={"Authorization": "key"},
    ).prepare()
    with pytest.raises(RequestValidationError):
        openapi.validate_request(RequestsOpenAPIRequest(wrong))
