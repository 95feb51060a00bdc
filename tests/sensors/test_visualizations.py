"""PixxelVisualizationSensor against the simulator over loopback HTTP: poke, reschedule, deferrable."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
)

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.sensors.visualizations import PixxelVisualizationSensor
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.task_runner import AirflowRescheduleException, FakeTaskInstance, make_context, run_task


class ReschedulingTaskInstance(FakeTaskInstance):
    """What reschedule mode asks of the task instance: when the first try started (never, here)."""

    def get_first_reschedule_date(self, context: Any) -> None:
        return None


@pytest.fixture
def sim(pixxel_simulator: SimulatorHandle, pixxel_connection: str) -> SimulatorHandle:
    return pixxel_simulator


def create_visualization(sim: SimulatorHandle) -> dict[str, str]:
    """A new NDWI visualization on the seeded processed AOI."""
    aoi_id = next(iter(sim.state.visualizations.values()))["aoi_id"]
    ndwi = next(index["id"] for index in sim.state.indices.values() if index["name"] == "NDWI")
    created = PixxelHook().create_visualization(aoi_id, index_id=ndwi)
    return {"aoi_id": aoi_id, "visualization_id": str(created["id"])}


def sensor(ids: dict[str, str], **overrides: Any) -> PixxelVisualizationSensor:
    arguments: dict[str, Any] = {"task_id": "wait", "poke_interval": 0.01, "timeout": 5, **ids, **overrides}
    return PixxelVisualizationSensor(**arguments)


def test_poke_is_false_while_creating_then_returns_the_status(sim: SimulatorHandle) -> None:
    sim.state.steps_per_poll = 1
    ids = create_visualization(sim)
    watcher = sensor(ids)

    assert watcher.poke(make_context()) is False
    done = watcher.poke(make_context())
    assert isinstance(done, PokeReturnValue)
    assert done.xcom_value == {**ids, "status": "success"}


def test_poke_mode_waits_until_success(sim: SimulatorHandle) -> None:
    sim.state.steps_per_poll = 1
    ids = create_visualization(sim)

    assert run_task(sensor(ids)).result == {**ids, "status": "success"}


def test_reschedule_mode_gives_back_the_slot_while_creating(sim: SimulatorHandle) -> None:
    sim.state.steps_per_poll = 1
    ids = create_visualization(sim)

    with pytest.raises(AirflowRescheduleException):
        sensor(ids, mode="reschedule", poke_interval=30).execute(make_context(ti=ReschedulingTaskInstance()))
    result = sensor(ids, mode="reschedule").execute(make_context(ti=ReschedulingTaskInstance()))
    assert result == {**ids, "status": "success"}


@pytest.mark.parametrize(("steps_per_poll", "deferrals"), [(1, 1), (None, 0)])
def test_deferrable_sensor_defers_only_while_creating(
    sim: SimulatorHandle, steps_per_poll: int | None, deferrals: int
) -> None:
    sim.state.steps_per_poll = steps_per_poll
    ids = create_visualization(sim)

    run = run_task(sensor(ids, deferrable=True))

    assert run.result == {**ids, "status": "success"}
    assert len(run.deferrals) == deferrals


@pytest.mark.parametrize("deferrable", [True, False])
def test_failed_visualization_fails_the_sensor(sim: SimulatorHandle, deferrable: bool) -> None:
    sim.state.steps_per_poll = 1
    sim.state.scenarios.fail("visualization")
    ids = create_visualization(sim)

    with pytest.raises(AirflowFailException, match=f"visualization_id={ids['visualization_id']} ended with"):
        run_task(sensor(ids, deferrable=deferrable))


def test_soft_fail_skips_instead_of_failing(sim: SimulatorHandle) -> None:
    sim.state.scenarios.fail("visualization")
    ids = create_visualization(sim)

    with pytest.raises(AirflowSkipException):
        run_task(sensor(ids, soft_fail=True))


def test_partial_visualization_fails_unless_allowed(sim: SimulatorHandle) -> None:
    sim.state.scenarios.partial("visualization")
    ids = create_visualization(sim)

    with pytest.raises(AirflowFailException, match="allow_partial=True"):
        run_task(sensor(ids))
    assert run_task(sensor(ids, allow_partial=True)).result == {**ids, "status": "partial_success"}


@pytest.mark.parametrize("deferrable", [True, False])
def test_stalled_visualization_times_out(sim: SimulatorHandle, deferrable: bool) -> None:
    sim.state.scenarios.stall("visualization")
    ids = create_visualization(sim)

    with pytest.raises(AirflowSensorTimeout):
        run_task(sensor(ids, timeout=0.1, deferrable=deferrable))


def test_missing_visualization_id_is_refused_without_a_request(sim: SimulatorHandle) -> None:
    with pytest.raises(PixxelConfigError, match="visualization_id"):
        run_task(sensor({"aoi_id": "some-aoi", "visualization_id": ""}))
    assert sim.state.requests() == []


def test_ids_are_templated() -> None:
    assert {"aoi_id", "visualization_id"} <= set(PixxelVisualizationSensor.template_fields)
