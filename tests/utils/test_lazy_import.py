from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_pixxel.utils.lazy_import import lazy_import

TARGET = "pixxel_lazy_import_target"


@pytest.fixture
def target_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module on sys.path that nothing has imported yet; forgotten again after the test."""
    (tmp_path / f"{TARGET}.py").write_text("VALUE = 1\n\ndef double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield TARGET
    sys.modules.pop(TARGET, None)


def test_the_module_is_imported_on_the_first_attribute_read(target_module: str) -> None:
    stand_in = lazy_import(target_module)
    assert target_module not in sys.modules
    assert stand_in.double(21) == 42
    assert target_module in sys.modules
    assert stand_in.VALUE == 1
    assert "imported on first use" in repr(stand_in)


def test_a_patch_of_the_real_module_is_seen_through_the_stand_in(
    target_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = lazy_import(target_module)
    stand_in.VALUE  # noqa: B018 - imports it
    monkeypatch.setattr(sys.modules[target_module], "VALUE", 7)
    assert stand_in.VALUE == 7


def test_a_missing_attribute_is_an_attribute_error(target_module: str) -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        lazy_import(target_module).no_such_name  # noqa: B018


def test_a_misspelt_module_fails_at_once_not_at_first_use() -> None:
    with pytest.raises(ModuleNotFoundError, match=r"airflow_provider_pixxel\.resourcse"):
        lazy_import("airflow_provider_pixxel.resourcse")
    assert "airflow_provider_pixxel.resourcse" not in sys.modules
