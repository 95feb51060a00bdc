"""Modules an operator needs only when it runs, imported then rather than when a DAG file is parsed.

The DAG processor imports every DAG file again and again, and each parse pays for whatever the
operator modules import at their top. What only ``execute`` (or a poke, or a resumed task) needs —
the status tables, the status trigger and with it ``airflow.triggers.base``, geometry, date rules —
is bound with :func:`lazy_import` instead::

    if TYPE_CHECKING:
        from airflow_provider_pixxel import resources
    else:
        resources = lazy_import("airflow_provider_pixxel.resources")

Type checkers see the real module. At run time the name is a stand-in that imports the module on the
first attribute read and passes every read on to it, so a test that patches the real module is seen.
``tests/test_import_cost.py`` checks that importing an operator or sensor module loads none of them.
"""

from __future__ import annotations

import importlib
import importlib.util
import types
from typing import Any


class _ModuleImportedOnFirstUse(types.ModuleType):
    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attribute)

    def __repr__(self) -> str:
        return f"<module {self.__name__!r}, imported on first use>"


def lazy_import(name: str) -> types.ModuleType:
    """A stand-in for the module ``name`` (absolute, dotted) that imports it on first attribute read.

    The module is looked up (not imported) at once, so a misspelt name fails when the operator module
    is imported rather than when a task first runs.
    """
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    return _ModuleImportedOnFirstUse(name)
