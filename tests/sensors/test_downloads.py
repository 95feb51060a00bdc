"""PixxelAOIDownloadSensor and PixxelCatalogDownloadSensor against the simulator."""

from __future__ import annotations

import pytest

from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.sensors.downloads import PixxelAOIDownloadSensor, PixxelCatalogDownloadSensor
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.operators.pixxel_sim import fulfilled_order
from tests.sensors.sensor_contract import SensorCase, SensorContract


def create_aoi_download(handle: SimulatorHandle) -> dict[str, str]:
    aoi_id = next(a for a, aoi in handle.state.aois.items() if aoi.get("seeded"))
    asset_ids = [a["id"] for a in handle.state.assets.values() if a["aoi_id"] == aoi_id][:1]
    with PixxelHook() as hook:
        answer = hook.create_aoi_download(aoi_id, asset_ids=asset_ids)
    handle.state.clear_records()
    return {"aoi_id": aoi_id, "download_id": answer["download_id"]}


def create_catalog_download(handle: SimulatorHandle) -> dict[str, str]:
    order = fulfilled_order(handle)
    with PixxelHook() as hook:
        answer = hook.create_catalog_download(catalog_ids=order["catalog_ids"])
    handle.state.clear_records()
    return {"download_id": answer["id"]}


class TestAOIDownloadSensor(SensorContract):
    @pytest.fixture
    def case(self) -> SensorCase:
        return SensorCase(PixxelAOIDownloadSensor, "aoi_download", create_aoi_download)


class TestCatalogDownloadSensor(SensorContract):
    @pytest.fixture
    def case(self) -> SensorCase:
        return SensorCase(PixxelCatalogDownloadSensor, "catalog_download", create_catalog_download)
