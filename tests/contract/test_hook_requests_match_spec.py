"""Contract: every request ``PixxelHook`` sends is valid for its operation in ``openapi.json``.

The spec is the one vendored in the package (``airflow_provider_pixxel/spec``), so these tests run in
any clone. Requests are validated with openapi-core against the corrected contract: the overlay's
corrections (raw-JSON dexter fields typed ``array<integer>``, the either-or catalog/order-item lists...)
are the only differences from the file as published, each with its reason in ``spec/overlay.py``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests_mock as requests_mock_module

from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.spec import SPEC_PATH, contract, official_spec
from airflow_provider_pixxel.spec.operations import HOOK_METHODS

from ..hooks.operation_cases import OPERATION_CASES, OperationCase

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def test_the_vendored_spec_is_there() -> None:
    """Missing, the contract would be missing from every install: fail, never skip."""
    assert SPEC_PATH.is_file(), f"the Pixxel OpenAPI spec is not at {SPEC_PATH}"


def spec_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), route)
        for route, item in official_spec()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def documented_method_names() -> dict[tuple[str, str], str]:
    """(HTTP method, path) → hook method name, from the provider's table of operations."""
    names: dict[tuple[str, str], str] = {}
    for key, name in HOOK_METHODS.items():
        method, route = key.split(" ", 1)
        names[(method, route)] = name
    return names


@pytest.fixture(scope="module")
def openapi() -> Any:
    from openapi_core import OpenAPI

    return OpenAPI.from_dict(copy.deepcopy(dict(contract())))


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
