"""Pixxel sensors: ``from airflow_provider_pixxel.sensors import PixxelJobSensor``.

Names are imported on first use, so ``import airflow_provider_pixxel.sensors`` stays cheap while DAG
files are parsed.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_pixxel.utils.lazy_import import LazyExports

_MODULE_OF: dict[str, str] = {
    "PixxelAOISensor": "aoi",
    "PixxelStatusSensor": "base",
    "PixxelDeliverySensor": "catalog",
    "PixxelAOIDownloadSensor": "downloads",
    "PixxelCatalogDownloadSensor": "downloads",
    "PixxelInsightSensor": "insights",
    "PixxelJobSensor": "jobs",
    "PixxelOrderSensor": "orders",
    "PixxelVisualizationSensor": "visualizations",
}

_EXPORTS = LazyExports(__name__, _MODULE_OF)
__all__ = _EXPORTS.names


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return __all__
