"""Pixxel triggers: the status polling loop and the event trigger for new catalogs.

Names are imported on first use, so ``import airflow_provider_pixxel.triggers`` stays cheap while DAG
files are parsed.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF: dict[str, str] = {
    "PixxelNewCatalogTrigger": "catalog",
    "PixxelStatusTrigger": "status",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return __all__
