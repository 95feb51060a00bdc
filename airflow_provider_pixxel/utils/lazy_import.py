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
from collections.abc import Mapping
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


class LazyExports:
    """The public names of a package whose names import their module on first use.

    ``import airflow_provider_pixxel.operators`` then imports no operator module; the first read of
    ``PixxelRunJobOperator`` imports ``.jobs`` alone. The package keeps a plain module ``__getattr__``
    (so type checkers see one) that calls :meth:`load`.

    :param module_of: public name -> the submodule (relative to ``package``) defining it.
    :param former_names: an earlier name -> today's, still readable but not listed in :attr:`names`.
    """

    def __init__(
        self, package: str, module_of: Mapping[str, str], *, former_names: Mapping[str, str] | None = None
    ) -> None:
        self.package = package
        self.module_of = dict(module_of)
        self.former_names = dict(former_names or {})
        self.names = sorted(self.module_of)

    def load(self, name: str) -> Any:
        current = self.former_names.get(name, name)
        module = self.module_of.get(current)
        if module is None:
            raise AttributeError(f"module {self.package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{self.package}.{module}"), current)
