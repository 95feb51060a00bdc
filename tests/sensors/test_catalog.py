"""PixxelDeliverySensor against the simulator."""

from __future__ import annotations

import pytest

from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.sensors.catalog import PixxelDeliverySensor
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.operators.pixxel_sim import fulfilled_order
from tests.sensors.sensor_contract import SensorCase, SensorContract


def create_delivery(handle: SimulatorHandle) -> dict[str, str]:
    order = fulfilled_order(handle)
    with PixxelHook() as hook:
        answer = hook.create_deliveries(
            deliveries=[
                {
                    "catalog_ids": order["catalog_ids"],
                    "cloud_info": {"config": next(iter(handle.state.stores))},
                }
            ]
        )
    handle.state.clear_records()
    return {"delivery_id": answer["deliveries"][0]["delivery_id"]}


class TestDeliverySensor(SensorContract):
    @pytest.fixture
    def case(self) -> SensorCase:
        return SensorCase(PixxelDeliverySensor, "delivery", create_delivery)
