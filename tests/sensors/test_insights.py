"""PixxelInsightSensor against the simulator: poke, reschedule, deferrable and soft_fail."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
)

from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.sensors.insights import PixxelInsightSensor
from airflow_provider_pixxel.simulator import progress
from tests.task_runner import make_context, run_task


def _insight(sim: Any) -> dict[str, str]:
    aoi_id = next(iter(sim.state.aois))
    created = PixxelHook().create_insights(
        aoi_id,
        block={"name": "waterbodydetection", "version": "2.0.1"},
        input=[
            {
                "name": "input_image",
                "format": "raster",
                "type": "url",
                "stac_url": "https://stac.example/item",
            },
            {"name": "threshold", "format": "number", "type": "number", "value": "0.3"},
        ],
    )
    return {"aoi_id": aoi_id, "insight_id": created["id"]}


def _sensor(ids: dict[str, str], **kwargs: Any) -> PixxelInsightSensor:
    kwargs.setdefault("poke_interval", 0.01)
    kwargs.setdefault("timeout", 10)
    return PixxelInsightSensor(task_id="wait_insight", **ids, **kwargs)


@pytest.mark.parametrize("mode", ["poke", "reschedule"])
def test_poke_reports_running_then_done(sim: Any, mode: str) -> None:
    sim.state.steps_per_poll = 1
    ids = _insight(sim)
    sensor = _sensor(ids, mode=mode)

    assert sensor.poke(make_context()) is False
    done = sensor.poke(make_context())

    assert isinstance(done, PokeReturnValue)
    assert done.xcom_value == {**ids, "status": "completed"}


@pytest.mark.parametrize("deferrable", [True, False])
def test_waits_until_completed(sim: Any, deferrable: bool) -> None:
    sim.state.steps_per_poll = 1
    ids = _insight(sim)

    run = run_task(_sensor(ids, deferrable=deferrable))

    assert len(run.deferrals) == (1 if deferrable else 0)
    assert run.result == {**ids, "status": "completed"}


def test_an_already_finished_insight_does_not_defer(sim: Any) -> None:
    ids = _insight(sim)

    assert run_task(_sensor(ids, deferrable=True)).deferrals == []


@pytest.mark.parametrize("deferrable", [True, False])
def test_a_failed_insight_fails_with_its_err_msg(sim: Any, deferrable: bool) -> None:
    sim.state.steps_per_poll = 1
    sim.state.scenarios.fail("insight", message="no valid pixels")
    ids = _insight(sim)

    with pytest.raises(AirflowFailException, match="err_msg=no valid pixels"):
        run_task(_sensor(ids, deferrable=deferrable))


def test_a_deleted_insight_fails(sim: Any) -> None:
    ids = _insight(sim)
    PixxelHook().delete_insights(ids["aoi_id"], ids["insight_id"])

    with pytest.raises(AirflowFailException, match="insight"):
        run_task(_sensor(ids))


def test_soft_fail_skips(sim: Any) -> None:
    sim.state.scenarios.fail("insight")
    ids = _insight(sim)

    with pytest.raises(AirflowSkipException):
        run_task(_sensor(ids, soft_fail=True))


def test_partial_fails_unless_allowed(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real_view = progress.insight_view

    def partial_view(state: Any, insight: dict[str, Any]) -> dict[str, Any]:
        view = real_view(state, insight)
        view["status"] = "partial_success" if view["status"] == "completed" else view["status"]
        return view

    monkeypatch.setattr(progress, "insight_view", partial_view)
    ids = _insight(sim)

    with pytest.raises(AirflowFailException, match="allow_partial=True"):
        run_task(_sensor(ids))
    assert run_task(_sensor(ids, allow_partial=True)).result["status"] == "partial_success"


@pytest.mark.parametrize("deferrable", [True, False])
def test_timeout(sim: Any, deferrable: bool) -> None:
    sim.state.scenarios.stall("insight")
    ids = _insight(sim)

    with pytest.raises(AirflowSensorTimeout):
        run_task(_sensor(ids, deferrable=deferrable, timeout=0.2, poke_interval=0.05))


def test_ids_are_templated() -> None:
    assert {"aoi_id", "insight_id"} <= set(PixxelInsightSensor.template_fields)
