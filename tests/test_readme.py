"""Every public operator, sensor and trigger is documented in the README's operator reference."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import airflow_provider_pixxel.operators as operators
import airflow_provider_pixxel.sensors as sensors
import airflow_provider_pixxel.triggers as triggers

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN = "<!-- BEGIN operators (documented per class with examples) -->"
END = "<!-- END operators -->"


def operator_reference() -> str:
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text, "README.md lost the operator reference's BEGIN marker"
    assert END in text, "README.md lost the operator reference's END marker"
    return text.split(BEGIN, 1)[1].split(END, 1)[0]


PUBLIC_NAMES = sorted({*operators.__all__, *sensors.__all__, *triggers.__all__})


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_class_is_documented(name: str) -> None:
    assert f"`{name}`" in operator_reference(), (
        f"{name} is exported but not documented in README.md's operator reference: add it to its "
        "area's table with what it does, what it returns and an example"
    )


def test_readme_examples_are_valid_python() -> None:
    blocks = re.findall(r"```python\n(.*?)```", operator_reference(), re.DOTALL)
    assert blocks, "the operator reference has no Python examples"
    for block in blocks:
        ast.parse(block)
