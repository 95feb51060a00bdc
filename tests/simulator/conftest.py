"""Fixtures shared by the simulator tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "pixxel-api" / "openapi.json"


@pytest.fixture(scope="session")
def openapi_spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip(f"the Pixxel OpenAPI spec is not at {SPEC_PATH}")
    return json.loads(SPEC_PATH.read_text())
