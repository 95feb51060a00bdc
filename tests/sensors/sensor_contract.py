"""The behaviour every Pixxel sensor must show, run for each sensor against the simulator.

A test module subclasses :class:`SensorContract` and provides the ``case`` fixture: a
:class:`SensorCase` that creates the watched resource through the hook and builds the sensor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
)

from airflow_provider_pixxel.sensors.base import PixxelStatusSensor
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.operators.pixxel_sim import context
from tests.task_runner import run_task


@dataclass
class SensorCase:
    """``create(handle)`` makes the resource and returns the sensor's id arguments."""

    sensor_class: type[PixxelStatusSensor]
    scenario_kind: str
    create: Callable[[SimulatorHandle], dict[str, str]]

    def sensor(self, ids: dict[str, str], **kwargs: Any) -> Any:
        kwargs.setdefault("poke_interval", 0.01)
        kwargs.setdefault("timeout", 30)
        build: Any = self.sensor_class  # each sensor names its own id arguments
        return build(task_id="wait", **ids, **kwargs)


class SensorContract:
    def test_success_returns_the_ids_and_status(self, case: SensorCase, sim: SimulatorHandle) -> None:
        ids = case.create(sim)
        result = run_task(case.sensor(ids), context()).result
        assert result["status"]
        assert {k: result[k] for k in ids} == ids

    def test_failure_fails_with_the_remote_status(self, case: SensorCase, sim: SimulatorHandle) -> None:
        sim.state.scenarios.fail(case.scenario_kind, message="remote reason 42")
        ids = case.create(sim)
        with pytest.raises(AirflowFailException, match=r"(?i)fail"):
            run_task(case.sensor(ids), context())

    def test_soft_fail_skips_instead(self, case: SensorCase, sim: SimulatorHandle) -> None:
        sim.state.scenarios.fail(case.scenario_kind)
        ids = case.create(sim)
        with pytest.raises(AirflowSkipException):
            run_task(case.sensor(ids, soft_fail=True), context())

    @pytest.mark.parametrize("mode", ["poke", "reschedule"])
    def test_poke_is_false_while_running_then_done(
        self, case: SensorCase, slow_sim: SimulatorHandle, mode: str
    ) -> None:
        ids = case.create(slow_sim)
        sensor = case.sensor(ids, mode=mode)
        pokes = [sensor.poke(context()) for _ in range(12)]
        assert pokes[0] is False
        done = [p for p in pokes if p]
        assert done
        assert isinstance(done[0], PokeReturnValue)
        assert done[0].is_done

    def test_deferrable_waits_in_the_trigger(self, case: SensorCase, slow_sim: SimulatorHandle) -> None:
        ids = case.create(slow_sim)
        run = run_task(case.sensor(ids, deferrable=True), context())
        assert len(run.deferrals) == 1
        assert {k: run.result[k] for k in ids} == ids

    def test_deferrable_already_terminal_does_not_defer(self, case: SensorCase, sim: SimulatorHandle) -> None:
        ids = case.create(sim)
        run = run_task(case.sensor(ids, deferrable=True), context())
        assert run.deferrals == []

    @pytest.mark.parametrize("deferrable", [True, False])
    def test_stalled_resource_times_out(
        self, case: SensorCase, sim: SimulatorHandle, deferrable: bool
    ) -> None:
        sim.state.scenarios.stall(case.scenario_kind)
        ids = case.create(sim)
        with pytest.raises(AirflowSensorTimeout):
            run_task(case.sensor(ids, deferrable=deferrable, timeout=0.05), context())

    def test_ids_are_templated(self, case: SensorCase) -> None:
        sensor_fields = set(case.sensor_class.template_fields)
        assert "pixxel_conn_id" in sensor_fields
        assert set(case.sensor_class.id_fields or ()) <= sensor_fields


class PartialSensorContract(SensorContract):
    """For resources that can end partially (order items)."""

    def test_partial_fails_unless_allowed(self, case: SensorCase, sim: SimulatorHandle) -> None:
        sim.state.scenarios.partial(case.scenario_kind, times=2)
        ids = case.create(sim)
        with pytest.raises(AirflowFailException, match="allow_partial=True"):
            run_task(case.sensor(ids), context())
        assert run_task(case.sensor(ids, allow_partial=True), context()).result
