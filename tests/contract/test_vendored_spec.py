"""The vendored spec is the published file, unmodified, and every overlay correction still applies to it."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_pixxel.spec import SPEC_PATH, SPEC_SHA256, contract, official_spec
from airflow_provider_pixxel.spec.overlay import CORRECTIONS, Correction, OverlayMismatchError, apply_overlay

# The sha256 of openapi.json as published on 2026-12-02 (see airflow_provider_pixxel/spec/README.md).
PUBLISHED_SHA256 = "b501e2ca5a9d0511a92c60c856d72bfae6c5db6815e94fbf319ebe8d90df6e66"
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_vendored_spec_is_the_published_file() -> None:
    assert hashlib.sha256(SPEC_PATH.read_bytes()).hexdigest() == PUBLISHED_SHA256 == SPEC_SHA256
    assert PUBLISHED_SHA256 in (SPEC_PATH.parent / "README.md").read_text()


def test_the_spec_ships_as_package_data() -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert '"spec/openapi.json"' in pyproject


def _pointer_value(spec: Any, pointer: str) -> Any:
    node = spec
    for key in pointer.lstrip("/").split("/"):
        node = node[key.replace("~1", "/").replace("~0", "~")]
    return node


def _parent_and_key(spec: Any, pointer: str) -> tuple[Any, str]:
    *parents, last = pointer.lstrip("/").split("/")
    node = spec
    for key in parents:
        node = node[key]
    return node, last


@pytest.mark.parametrize("correction", CORRECTIONS, ids=lambda c: c.pointer.split("/schemas/")[-1])
def test_each_correction_applies_and_says_why(correction: Correction) -> None:
    official = _pointer_value(official_spec(), correction.pointer)
    assert correction.reason.strip()
    assert "\n" not in correction.reason
    if correction.action == "drop-required":
        assert set(correction.official) <= set(official)
        parent, key = _parent_and_key(contract(), correction.pointer)
        assert not set(correction.official) & set(parent.get(key, []))
    else:
        assert _pointer_value(contract(), correction.pointer) != official


@pytest.mark.parametrize("correction", CORRECTIONS, ids=lambda c: c.pointer.split("/schemas/")[-1])
def test_a_correction_fails_loudly_when_the_spec_changes_under_it(correction: Correction) -> None:
    changed = copy.deepcopy(dict(official_spec()))
    parent, key = _parent_and_key(changed, correction.pointer)
    parent[key] = ["something else"] if correction.action == "drop-required" else {"type": "string"}
    with pytest.raises(OverlayMismatchError, match="review"):
        apply_overlay(changed, (correction,))
    del parent[key]
    with pytest.raises(OverlayMismatchError, match="not in the spec any more"):
        apply_overlay(changed, (correction,))


def _differences(left: Any, right: Any, where: str = "") -> list[str]:
    if isinstance(left, dict) and isinstance(right, dict):
        found = []
        for key in left.keys() | right.keys():
            if key not in left or key not in right:
                found.append(f"{where}/{key}")
            else:
                found += _differences(left[key], right[key], f"{where}/{key}")
        return found
    return [] if left == right else [where]


def test_the_contract_differs_from_the_published_spec_only_where_a_correction_says() -> None:
    pointers = [correction.pointer for correction in CORRECTIONS]
    unexplained = [
        where
        for where in _differences(official_spec(), contract())
        if not any(where == pointer or where.startswith(pointer + "/") for pointer in pointers)
    ]
    assert unexplained == []
    assert _differences(official_spec(), contract())  # and the corrections did change something


def test_the_official_spec_is_left_untouched_by_the_overlay() -> None:
    assert official_spec() == json.loads(SPEC_PATH.read_bytes())


def test_nothing_in_the_product_or_its_tests_reads_the_spec_from_outside_the_repository() -> None:
    # Spelt in pieces so this file does not match itself.
    outside = ("shared/" + "pixxel-api", '"shared" / ' + '"pixxel-api"')
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for folder in ("airflow_provider_pixxel", "tests", "benchmarks", "example_dags")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if any(text in path.read_text() for text in outside)
    ]
    assert offenders == []
