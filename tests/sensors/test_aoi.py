"""PixxelAOISensor against the simulator over loopback HTTP: poke, reschedule, deferrable, soft_fail."""

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
from airflow_provider_pixxel.sensors.aoi import PixxelAOISensor
from airflow_provider_pixxel.simulator.seed import REGIONS, TD2_ID, square
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.task_runner import AirflowRescheduleException, FakeTaskInstance, make_context, run_task

_, LON, LAT = REGIONS[0]


class ReschedulingTaskInstance(FakeTaskInstance):
    """What reschedule mode asks of the task instance: when the first try started (never, here)."""

    def get_first_reschedule_date(self, context: Any) -> None:
        return None


@pytest.fixture
def sim(pixxel_simulator: SimulatorHandle, pixxel_connection: str) -> SimulatorHandle:
    return pixxel_simulator


def create_aoi(sim: SimulatorHandle) -> str:
    items = [i for i, item in sim.state.items.items() if item["collection"] == "pixxel-td2"][:1]
    aoi = PixxelHook().create_aoi(
        name="sensor-field",
        description="watched by a sensor",
        satellite_id=TD2_ID,
        provider="pixxel",
        geometry={"type": "Polygon", "coordinates": square(LON, LAT, 0.05)},
        item_ids=items,
        project_id=next(iter(sim.state.projects)),
    )
    return str(aoi["aoi_id"])


def sensor(aoi_id: str, **overrides: Any) -> PixxelAOISensor:
    arguments: dict[str, Any] = {
        "task_id": "wait_for_aoi",
        "aoi_id": aoi_id,
        "poke_interval": 0.01,
        "timeout": 5,
    }
    arguments.update(overrides)
    return PixxelAOISensor(**arguments)


def test_poke_is_false_while_processing_then_returns_the_status(sim: SimulatorHandle) -> None:
    sim.state.steps_per_poll = 1
    aoi_id = create_aoi(sim)
    watcher = sensor(aoi_id)

    assert watcher.poke(make_context()) is False
    done = watcher.poke(make_context())
    assert isinstance(done, PokeReturnValue)
    assert done.is_done
    assert done.xcom_value == {"aoi_id": aoi_id, "status": "success"}


def test_poke_mode_waits_until_success(sim: SimulatorHandle) -> None:
    sim.state.steps_per_poll = 1
    aoi_id = create_aoi(sim)

    assert run_task(sensor(aoi_id)).result == {"aoi_id": aoi_id, "status": "success"}


def test_reschedule_mode_gives_back_the_slot_while_processing(sim: SimulatorHandle) -> None:
    sim.state.steps_per_poll = 1
    aoi_id = create_aoi(sim)

    with pytest.raises(AirflowRescheduleException):
        sensor(aoi_id, mode="reschedule", poke_interval=30).execute(
            make_context(ti=ReschedulingTaskInstance())
        )
    result = sensor(aoi_id, mode="reschedule").execute(make_context(ti=ReschedulingTaskInstance()))
    assert result == {"aoi_id": aoi_id, "status": "success"}


def test_deferrable_sensor_defers_then_succeeds(sim: SimulatorHandle) -> None:
    sim.state.steps_per_poll = 1
    aoi_id = create_aoi(sim)

    run = run_task(sensor(aoi_id, deferrable=True))

    assert run.result == {"aoi_id": aoi_id, "status": "success"}
    assert len(run.deferrals) == 1


def test_deferrable_sensor_does_not_defer_when_already_done(sim: SimulatorHandle) -> None:
    aoi_id = create_aoi(sim)

    run = run_task(sensor(aoi_id, deferrable=True))

    assert run.result == {"aoi_id": aoi_id, "status": "success"}
    assert run.deferrals == []


@pytest.mark.parametrize("deferrable", [True, False])
def test_failed_aoi_fails_the_sensor(sim: SimulatorHandle, deferrable: bool) -> None:
    sim.state.steps_per_poll = 1
    sim.state.scenarios.fail("aoi")
    aoi_id = create_aoi(sim)

    with pytest.raises(AirflowFailException, match=f"AOI aoi_id={aoi_id} ended with status failed"):
        run_task(sensor(aoi_id, deferrable=deferrable))


def test_soft_fail_skips_instead_of_failing(sim: SimulatorHandle) -> None:
    sim.state.scenarios.fail("aoi")
    aoi_id = create_aoi(sim)

    with pytest.raises(AirflowSkipException):
        run_task(sensor(aoi_id, soft_fail=True))


def test_partial_aoi_fails_unless_allowed(sim: SimulatorHandle) -> None:
    sim.state.scenarios.partial("aoi")
    aoi_id = create_aoi(sim)

    with pytest.raises(AirflowFailException, match="allow_partial=True"):
        run_task(sensor(aoi_id))
    assert run_task(sensor(aoi_id, allow_partial=True)).result == {
        "aoi_id": aoi_id,
        "status": "partial_success",
    }


@pytest.mark.parametrize("deferrable", [True, False])
def test_stalled_aoi_times_out(sim: SimulatorHandle, deferrable: bool) -> None:
    sim.state.scenarios.stall("aoi")
    aoi_id = create_aoi(sim)

    with pytest.raises(AirflowSensorTimeout):
        run_task(sensor(aoi_id, timeout=0.1, deferrable=deferrable))


def test_missing_aoi_id_is_refused_without_a_request(sim: SimulatorHandle) -> None:
    with pytest.raises(PixxelConfigError, match="aoi_id"):
        run_task(sensor("  "))
    assert sim.state.requests() == []


def test_aoi_id_is_templated() -> None:
    assert "aoi_id" in PixxelAOISensor.template_fields
