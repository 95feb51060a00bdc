"""PixxelStatusTrigger, the one polling loop, against the simulator; and validate_event."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from airflow_provider_pixxel.exceptions import PixxelError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.simulator.faults import FaultRule
from airflow_provider_pixxel.triggers.status import (
    PixxelStatusTrigger,
    phase_from_event,
    validate_event,
    wait_inline,
)
from tests.reliability.loopback import Exchange, Loopback
from tests.task_runner import first_event, rebuild_trigger

JSON_PRIMITIVES = (str, int, float, bool, type(None))


def _only_primitives(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and _only_primitives(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_only_primitives(item) for item in value)
    return isinstance(value, JSON_PRIMITIVES)


def _trigger(**overrides: Any) -> PixxelStatusTrigger:
    kwargs: dict[str, Any] = {
        "kind": "job",
        "ids": {"workflow_id": "wf-1", "job_id": "job-1"},
        "poll_interval": 0.01,
        "deadline": time.time() + 30,
    }
    kwargs.update(overrides)
    return PixxelStatusTrigger(**kwargs)


# -- serialization -------------------------------------------------------------------------------


def test_serialize_round_trips_through_json() -> None:
    trigger = _trigger(
        stop_on_kill=True, project_id="project-1", kind="insight", ids={"aoi_id": "a", "insight_id": "i"}
    )
    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_provider_pixxel.triggers.status.PixxelStatusTrigger"
    assert _only_primitives(kwargs)
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert rebuild_trigger(trigger).serialize() == (classpath, kwargs)


def test_trigger_refuses_missing_ids_and_unknown_kinds() -> None:
    with pytest.raises(PixxelError, match="job_id"):
        _trigger(ids={"workflow_id": "wf-1"})
    with pytest.raises(PixxelError, match="unknown resource kind"):
        _trigger(kind="workflow")


# -- validate_event ------------------------------------------------------------------------------

IDS = {"workflow_id": "wf-1", "job_id": "job-1"}


def _event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"status": "success", "phase": "success", "kind": "job", "ids": dict(IDS)}
    event.update(overrides)
    return event


def test_validate_event_accepts_a_consistent_event() -> None:
    assert validate_event(_event(), kind="job", ids=IDS) == _event()
    assert validate_event(_event(status="timeout", phase=None), kind="job")["status"] == "timeout"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (None, "instead of an event dict"),
        ("success", "instead of an event dict"),
        (_event(status=None), "missing or unknown status"),
        ({"phase": "success", "kind": "job", "ids": IDS}, "missing or unknown status"),
        (_event(status="done"), "missing or unknown status"),
        (_event(kind="insight"), "is for 'insight', expected 'job'"),
        (_event(ids={"workflow_id": "wf-1", "job_id": "job-2"}), "is for ids"),
        (_event(status="failure", phase="success"), "inconsistent"),
        (_event(status="partial", phase=None), "inconsistent"),
    ],
)
def test_validate_event_refuses_what_it_cannot_trust(event: Any, message: str) -> None:
    with pytest.raises(PixxelError, match=message):
        validate_event(event, kind="job", ids=IDS)


def test_phase_from_event() -> None:
    assert phase_from_event({"status": "partial"}) is not None
    assert phase_from_event({"status": "timeout"}) is None
    assert phase_from_event({}) is None


# -- the polling loop against the simulator --------------------------------------------------------


@pytest.fixture(params=[True, False], ids=["batched", "own-reads"])
def sim(pixxel_simulator: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Any:
    """The simulator behind ``pixxel_default``; no hook-level retries, so one poll is one request.

    Every test runs with the shared poller (the default) and with ``batch_polling: false``.
    """
    state = pixxel_simulator.state
    connection = {
        "conn_type": "pixxel",
        "host": pixxel_simulator.base_url,
        "password": pixxel_simulator.api_key,
        "extra": {"project_id": next(iter(state.projects)), "max_retries": 0, "batch_polling": request.param},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_BAD_KEY", json.dumps({**connection, "password": "not-the-key"}))
    return pixxel_simulator


def _workflow_id(sim: Any) -> str:
    return next(iter(sim.state.workflows))


def _new_job(sim: Any) -> dict[str, str]:
    workflow_id = _workflow_id(sim)
    job = PixxelHook().create_job(workflow_id)
    return {"workflow_id": workflow_id, "job_id": job["id"]}


def _job_reads(sim: Any, ids: dict[str, str]) -> int:
    # A lone wait is read on its own in both modes: the shared poller lists from two waits of a scope.
    return len(sim.state.requests("GET", f"/v0/workflows/{ids['workflow_id']}/jobs/{ids['job_id']}"))


async def test_success_event_carries_the_observation(sim: Any) -> None:
    ids = _new_job(sim)

    event = await first_event(_trigger(ids=ids))

    assert event["status"] == event["phase"] == "success"
    assert (event["kind"], event["ids"], event["remote_status"]) == ("job", ids, "completed")
    assert event["progress"] == 100.0
    assert validate_event(event, kind="job", ids=ids) == event


async def test_failure_event_names_the_failed_task(sim: Any) -> None:
    sim.state.scenarios.fail("job", message="out of memory")
    ids = _new_job(sim)

    event = await first_event(_trigger(ids=ids))

    assert event["status"] == "failure"
    assert event["remote_status"] == "failed"
    assert "atmcorrection" in event["reason"]


async def test_partial_event(sim: Any) -> None:
    aoi_id = next(iter(sim.state.aois))
    ndvi_id = next(i["id"] for i in sim.state.indices.values() if i["name"] == "NDWI")
    sim.state.scenarios.partial("visualization")
    created = PixxelHook().create_visualization(aoi_id, index_id=ndvi_id)
    ids = {"aoi_id": aoi_id, "visualization_id": created["id"]}

    event = await first_event(_trigger(kind="visualization", ids=ids))

    assert event["status"] == event["phase"] == "partial"
    assert event["remote_status"] == "partial_success"


async def test_timeout_polls_once_more_at_the_deadline(sim: Any) -> None:
    sim.state.scenarios.stall("job")
    ids = _new_job(sim)
    started = time.monotonic()

    # A poll interval far beyond the deadline: the loop sleeps only until the deadline, then
    # reads once more before giving up.
    event = await first_event(_trigger(ids=ids, poll_interval=60, deadline=time.time() + 0.3))

    assert time.monotonic() - started < 5
    assert event["status"] == "timeout"
    assert event["remote_status"] == "running"
    assert "still running" in event["message"]
    assert _job_reads(sim, ids) == 2


async def test_server_errors_are_polled_with_a_sleep_between_each(sim: Any) -> None:
    ids = _new_job(sim)
    rule = sim.state.faults.add(FaultRule("status", status=500, path=r"/jobs/"))
    window, interval = 0.6, 0.05

    event = await first_event(_trigger(ids=ids, poll_interval=interval, deadline=time.time() + window))

    assert event["status"] == "timeout"
    assert "unknown" in event["message"]
    # A busy loop would send thousands of requests in this window (as an HTTP sensor trigger that
    # retries a 500 without sleeping does); one per interval, plus the final poll at the deadline, is
    # the most a sleeping loop can send.
    assert 2 <= rule.injected_count <= window / interval + 2
    assert rule.injected_count == _job_reads(sim, ids)


async def test_not_found_is_reported_at_once(sim: Any) -> None:
    ids = {"workflow_id": _workflow_id(sim), "job_id": "00000000-0000-4000-8000-000000000000"}
    started = time.monotonic()

    event = await first_event(_trigger(ids=ids, poll_interval=60))

    assert event["status"] == "error"
    assert "404" in event["message"]
    assert time.monotonic() - started < 5
    assert _job_reads(sim, ids) == 1


async def test_a_refused_key_is_reported_at_once(sim: Any) -> None:
    ids = _new_job(sim)
    started = time.monotonic()

    event = await first_event(_trigger(ids=ids, poll_interval=60, pixxel_conn_id="pixxel_bad_key"))

    assert event["status"] == "error"
    assert "403" in event["message"] or "401" in event["message"]
    assert "not-the-key" not in event["message"]
    assert time.monotonic() - started < 5


async def test_each_state_is_logged_once(sim: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sim.state.scenarios.stall("job")
    ids = _new_job(sim)
    trigger = _trigger(ids=ids, poll_interval=0.02, deadline=time.time() + 1.0)
    capsys.readouterr()

    event = await first_event(trigger)

    assert event["status"] == "timeout"
    assert _job_reads(sim, ids) > 3
    # Airflow's structlog writes task and trigger logs to stdout.
    changes = [line for line in capsys.readouterr().out.splitlines() if f"job_id={ids['job_id']} is " in line]
    assert len(changes) == 1
    assert "is running" in changes[0]


def _new_insight(sim: Any) -> dict[str, str]:
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


def _deletes(sim: Any) -> list[Any]:
    return sim.state.requests("DELETE", "/v0/aoi/*/insights/*")


async def test_on_kill_deletes_the_insight_when_asked(sim: Any) -> None:
    ids = _new_insight(sim)

    await rebuild_trigger(_trigger(kind="insight", ids=ids, stop_on_kill=True)).on_kill()

    assert [r.path for r in _deletes(sim)] == [f"/v0/aoi/{ids['aoi_id']}/insights/{ids['insight_id']}"]
    assert sim.state.insights[ids["insight_id"]]["deleted_at"]


async def test_on_kill_leaves_remote_work_alone_otherwise(sim: Any) -> None:
    ids = _new_insight(sim)

    await _trigger(kind="insight", ids=ids, stop_on_kill=False).on_kill()
    await _trigger(ids=_new_job(sim), stop_on_kill=True).on_kill()

    assert _deletes(sim) == []
    assert not sim.state.insights[ids["insight_id"]].get("deleted_at")


def test_wait_inline_runs_the_same_loop(sim: Any) -> None:
    ids = _new_job(sim)

    event = wait_inline(_trigger(ids=ids))

    assert (event["status"], event["remote_status"]) == ("success", "completed")


# -- what a wait logs --------------------------------------------------------------------------------


def _job_answers(answers: list[dict[str, Any]]) -> Any:
    """A loopback route answering job-1's own read with ``answers`` in turn, the last one from then on."""
    remaining = list(answers)

    def answer(exchange: Exchange) -> None:
        exchange.json(remaining.pop(0) if len(remaining) > 1 else remaining[0])

    return answer


async def test_progress_is_logged_in_steps_not_at_every_poll(
    api: Loopback, capsys: pytest.CaptureFixture[str]
) -> None:
    job = {"id": "job-1", "workflow_id": "wf-1"}
    running = [{**job, "status": "running", "progress": percent} for percent in range(26)]
    completed = {**job, "status": "completed", "progress": 100}
    api.routes["/v0/workflows/wf-1/jobs/job-1"] = _job_answers([*running, completed])
    capsys.readouterr()

    event = await first_event(_trigger())

    assert event["status"] == "success"
    lines = [line for line in capsys.readouterr().out.splitlines() if "job_id=job-1 is " in line]
    # 27 polls: running at 0 %, 10 % and 20 % (a new step each), then completed.
    assert [line.split(" is ", 1)[1].split(" [")[0].strip() for line in lines] == [
        "running (0%)",
        "running (10%)",
        "running (20%)",
        "completed (100%)",
    ]


@pytest.mark.parametrize("progress", ["nan", "NaN", "inf", "-Infinity"])
async def test_a_progress_that_is_not_a_number_is_no_progress(api: Loopback, progress: str) -> None:
    api.routes["/v0/workflows/wf-1/jobs/job-1"] = _job_answers(
        [
            {"id": "job-1", "workflow_id": "wf-1", "status": "running", "progress": progress},
            {"id": "job-1", "workflow_id": "wf-1", "status": "completed", "progress": 100},
        ]
    )

    # Bounded: a progress read as a float NaN once broke the wait's logging instead of being ignored.
    event = await asyncio.wait_for(first_event(_trigger()), 30)

    assert event["status"] == "success"
    assert api.paths().count("/v0/workflows/wf-1/jobs/job-1") == 2
