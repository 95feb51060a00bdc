"""Pixxel operators: ``from airflow_provider_pixxel.operators import PixxelCreateOrderOperator``.

Names are imported on first use, so ``import airflow_provider_pixxel.operators`` stays cheap while DAG
files are parsed.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_pixxel.utils.lazy_import import LazyExports

_MODULE_OF: dict[str, str] = {
    "PixxelCreateAOIOperator": "aoi",
    "PixxelBaseOperator": "base",
    "PixxelWaitingOperator": "base",
    "PixxelResumableOperator": "base",
    "PixxelSearchCatalogsOperator": "catalog",
    "PixxelCreateDeliveryOperator": "catalog",
    "PixxelDownloadingOperator": "downloads",
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
# Names operators had before; still importable, no longer listed.
_FORMER_NAMES = {"PixxelDownloadOperatorBase": "PixxelDownloadingOperator"}

_EXPORTS = LazyExports(__name__, _MODULE_OF, former_names=_FORMER_NAMES)
__all__ = _EXPORTS.names


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return __all__
