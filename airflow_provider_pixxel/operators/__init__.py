"""Pixxel operators: ``from airflow_provider_pixxel.operators import PixxelCreateOrderOperator``.

Names are imported on first use, so ``import airflow_provider_pixxel.operators`` stays cheap while DAG
files are parsed.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF: dict[str, str] = {
    "PixxelCreateAOIOperator": "aoi",
    "PixxelBaseOperator": "base",
    "PixxelWaitingOperator": "base",
    "PixxelResumableOperator": "base",
    "PixxelSearchCatalogsOperator": "catalog",
    "PixxelCreateDeliveryOperator": "catalog",
    "PixxelDownloadOperatorBase": "downloads",
    "PixxelDownloadAssetsOperator": "downloads",
    "PixxelDownloadCatalogsOperator": "downloads",
    "PixxelDownloadJobOperator": "downloads",
    "PixxelDownloadTaskOperator": "downloads",
    "PixxelDownloadInsightsOperator": "downloads",
    "PixxelSearchImagesOperator": "images",
    "PixxelArchiveSearchOperator": "images",
    "PixxelCreateIndexOperator": "indices",
    "PixxelCreateInsightsOperator": "insights",
    "PixxelDeleteInsightsOperator": "insights",
    "PixxelRunJobOperator": "jobs",
    "PixxelCreateOrderOperator": "orders",
    "PixxelCreateStoreOperator": "stores",
    "PixxelDeleteStoreOperator": "stores",
    "PixxelCreateVisualizationOperator": "visualizations",
    "PixxelUpdateVisualizationMetadataOperator": "visualizations",
    "PixxelGenerateIndexPngOperator": "visualizations",
    "PixxelGenerateSldOperator": "visualizations",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return __all__
