"""PixxelJobSensor against the simulator: poke, reschedule, deferrable and soft_fail."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
    TaskDeferred,
)

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.sensors.jobs import PixxelJobSensor
from airflow_provider_pixxel.simulator import progress
from tests.task_runner import first_event, make_context, rebuild_trigger, run_task


def _job(sim: Any) -> dict[str, str]:
    workflow_id = next(iter(sim.state.workflows))
    return {"workflow_id": workflow_id, "job_id": PixxelHook().create_job(workflow_id)["id"]}


def _sensor(ids: dict[str, str], **kwargs: Any) -> PixxelJobSensor:
    kwargs.setdefault("poke_interval", 0.01)
    kwargs.setdefault("timeout", 10)
    return PixxelJobSensor(task_id="wait_job", **ids, **kwargs)


@pytest.mark.parametrize("mode", ["poke", "reschedule"])
def test_poke_reports_running_then_done(sim: Any, mode: str) -> None:
    sim.state.steps_per_poll = 1
    ids = _job(sim)
    sensor = _sensor(ids, mode=mode)

    first, second = sensor.poke(make_context()), sensor.poke(make_context())
    done = sensor.poke(make_context())

    assert (first, second) == (False, False)
    assert isinstance(done, PokeReturnValue)
    assert done.is_done
    assert done.xcom_value == {**ids, "status": "completed"}


def test_poke_mode_execute_succeeds(sim: Any) -> None:
    sim.state.steps_per_poll = 1
    ids = _job(sim)

    run = run_task(_sensor(ids, deferrable=False))

    assert run.result == {**ids, "status": "completed"}


def test_deferrable_sensor_waits_in_the_trigger(sim: Any) -> None:
    sim.state.steps_per_poll = 1
    ids = _job(sim)

    run = run_task(_sensor(ids, deferrable=True))

    assert len(run.deferrals) == 1
    assert run.result == {**ids, "status": "completed"}


def test_an_already_finished_job_does_not_defer(sim: Any) -> None:
    ids = _job(sim)

    run = run_task(_sensor(ids, deferrable=True))

    assert run.deferrals == []
    assert run.result == {**ids, "status": "completed"}


@pytest.mark.parametrize("deferrable", [True, False])
def test_a_failed_job_fails_with_the_failed_task(sim: Any, deferrable: bool) -> None:
    sim.state.steps_per_poll = 1
    sim.state.scenarios.fail("job")
    ids = _job(sim)

    with pytest.raises(AirflowFailException, match=r"ended with status failed.*atmcorrection"):
        run_task(_sensor(ids, deferrable=deferrable))


def test_soft_fail_skips_a_failed_job(sim: Any) -> None:
    sim.state.scenarios.fail("job")
    ids = _job(sim)

    with pytest.raises(AirflowSkipException):
        run_task(_sensor(ids, soft_fail=True))


def test_soft_fail_skips_a_failed_job_after_deferral(sim: Any) -> None:
    sim.state.steps_per_poll = 1
    sim.state.scenarios.fail("job")
    ids = _job(sim)
    sensor = _sensor(ids, soft_fail=True, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(make_context())
    event = asyncio.run(first_event(rebuild_trigger(deferred.value.trigger)))

    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": event}, make_context())


def test_partial_fails_unless_allowed(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real_view = progress.job_view

    def partial_view(state: Any, job: dict[str, Any]) -> dict[str, Any]:
        view = real_view(state, job)
        view["status"] = "partially_completed" if view["status"] == "completed" else view["status"]
        return view

    monkeypatch.setattr(progress, "job_view", partial_view)
    ids = _job(sim)

    with pytest.raises(AirflowFailException, match="allow_partial=True"):
        run_task(_sensor(ids))
    assert run_task(_sensor(ids, allow_partial=True)).result["status"] == "partially_completed"


@pytest.mark.parametrize("deferrable", [True, False])
def test_timeout_names_the_job(sim: Any, deferrable: bool) -> None:
    sim.state.scenarios.stall("job")
    ids = _job(sim)

    with pytest.raises(AirflowSensorTimeout):
        run_task(_sensor(ids, deferrable=deferrable, timeout=0.2, poke_interval=0.05))


def test_ids_are_templated_and_required(sim: Any) -> None:
    assert {"workflow_id", "job_id"} <= set(PixxelJobSensor.template_fields)
    with pytest.raises(PixxelConfigError, match="missing or empty: job_id"):
        _sensor({"workflow_id": "w", "job_id": ""}).poke(make_context())
    assert sim.state.requests() == []
