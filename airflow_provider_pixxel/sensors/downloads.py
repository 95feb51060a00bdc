"""Wait for an AOI asset download or a catalog download to be ready."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_pixxel.sensors.base import PixxelStatusSensor


class PixxelAOIDownloadSensor(PixxelStatusSensor):
    """Wait until an AOI asset download (``POST /v0/aois/{aoi_id}/downloads``) has its signed URL.

    The URL itself is never returned (it is a credential that expires): fetch the files with
    :class:`~airflow_provider_pixxel.operators.downloads.PixxelDownloadAssetsOperator`, or read a fresh
    URL with ``PixxelHook.get_aoi_download``.

    Example::

        PixxelAOIDownloadSensor(
            task_id="wait_download", aoi_id="aoi-1", download_id="{{ params.download_id }}"
        )
    """

    watch_kind = "aoi_download"
    id_fields: Sequence[str] = ("aoi_id", "download_id")
    template_fields: Sequence[str] = (*PixxelStatusSensor.template_fields, "aoi_id", "download_id")

    def __init__(self, *, aoi_id: str, download_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aoi_id = aoi_id
        self.download_id = download_id


class PixxelCatalogDownloadSensor(PixxelStatusSensor):
    """Wait until a catalog download (``POST /v0/catalogs/download``) is ``success`` with a signed URL.

    Example::

        PixxelCatalogDownloadSensor(task_id="wait_package", download_id="{{ params.download_id }}")
    """

    watch_kind = "catalog_download"
    id_fields: Sequence[str] = ("download_id",)
    template_fields: Sequence[str] = (*PixxelStatusSensor.template_fields, "download_id")

    def __init__(self, *, download_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.download_id = download_id
