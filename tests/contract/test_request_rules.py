"""The request rules derived from the contract cover every operation, and read well."""

from __future__ import annotations

from airflow_provider_pixxel.spec import contract
from airflow_provider_pixxel.spec.rules import build_rules, check_body, check_query, rules

RULES = rules()


def test_rules_are_derived_from_the_contract() -> None:
    assert build_rules(contract()) == RULES
    assert len(RULES) == 55


def test_raw_json_fields_accept_objects() -> None:
    schema = RULES["POST /v0/aoi/{aoi_id}/insights"]["body"]
    body = {"block": {"name": "b", "version": "1"}, "input": [{"name": "start_date", "value": "2024-01-01"}]}
    assert check_body(schema, body) == []


def test_download_request_needs_only_one_source_list() -> None:
    assert check_body(RULES["POST /v0/catalogs/download"]["body"], {"catalog_ids": ["c"]}) == []


def test_problems_name_the_field() -> None:
    schema = RULES["POST /v0/orders"]["body"]
    problems = check_body(
        schema, {"order_items": [{"project_id": "p", "geometry": {}, "recurrence": "DAILY"}]}
    )
    assert "order_items[0].usecase: required field missing" in problems
    assert any(p.startswith("order_items[0].recurrence: 'DAILY' is not one of") for p in problems)


def test_query_checks() -> None:
    rules = RULES["GET /v0/workflows/{workflow_id}"]["query"]
    assert check_query(rules, {}) == ["query parameter 'project_id' is required"]
    assert check_query(RULES["GET /v0/aois"]["query"], {"offset": "1", "limit": "x"}) == [
        "query parameter 'limit' must be an integer, got 'x'"
    ]
