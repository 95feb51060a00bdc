"""PixxelOrderSensor (whole order or one order item) against the simulator."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.sensors.orders import PixxelOrderSensor
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.operators.pixxel_sim import context, tasking_item
from tests.sensors.sensor_contract import PartialSensorContract, SensorCase
from tests.task_runner import run_task


def place_order(handle: SimulatorHandle) -> dict[str, str]:
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook
    from airflow_provider_pixxel.operators.orders import validate_order_item

    item = validate_order_item(tasking_item(handle), 0, default_project_id=next(iter(handle.state.projects)))
    with PixxelHook() as hook:
        order = hook.create_order(order_items=[item])
    handle.state.clear_records()
    return {"order_id": order["id"], "order_item_id": order["order_items"][0]["id"]}


class TestOrderSensorOnWholeOrder(PartialSensorContract):
    @pytest.fixture
    def case(self) -> SensorCase:
        return SensorCase(PixxelOrderSensor, "order_item", lambda h: {"order_id": place_order(h)["order_id"]})

    def test_ids_are_templated(self, case: SensorCase) -> None:
        assert {"order_id", "order_item_id"} <= set(PixxelOrderSensor.template_fields)


class TestOrderSensorOnOrderItem(PartialSensorContract):
    @pytest.fixture
    def case(self) -> SensorCase:
        return SensorCase(
            PixxelOrderSensor,
            "order_item",
            lambda h: {"order_item_id": place_order(h)["order_item_id"]},
        )

    def test_ids_are_templated(self, case: SensorCase) -> None:
        assert {"order_id", "order_item_id"} <= set(PixxelOrderSensor.template_fields)


@pytest.mark.parametrize("ids", [{"order_id": "o", "order_item_id": "i"}, {"order_id": " "}])
def test_needs_exactly_one_id(sim, ids):
    with pytest.raises(PixxelConfigError, match="exactly one of order_id"):
        run_task(PixxelOrderSensor(task_id="wait", **ids), context())
    assert sim.state.requests() == []


@pytest.mark.parametrize("deferrable", [True, False])
def test_a_failed_whole_order_names_the_failed_item_and_its_reason(sim, deferrable):
    # GET /v0/orders/{id} carries no reason: the sensor reads the failed order item for it.
    sim.state.scenarios.fail("order_item", message="satellite unavailable")
    ids = place_order(sim)

    with pytest.raises(AirflowFailException) as raised:
        run_task(
            PixxelOrderSensor(
                task_id="wait", order_id=ids["order_id"], deferrable=deferrable, poke_interval=0.01
            ),
            context(),
        )

    message = str(raised.value)
    assert f"order item {ids['order_item_id']} FAILED" in message
    assert "satellite unavailable" in message
    assert "no reason given" not in message
