"""The simulator page's examples: starting it in Python, breaking things on purpose, asserting on traffic.

The page includes the code between the ``# [START ...]`` / ``# [END ...]`` markers; each runs here.
"""

from __future__ import annotations

import os

import pytest

from airflow_provider_pixxel.exceptions import PixxelApiError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.simulator import FaultRule, ManualClock, SimulatorHandle, run_simulator


def test_run_simulator_in_a_background_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", "")  # what the example sets is undone after the test
    # [START howto_simulator_in_python]
    with run_simulator(speed=0, seed=0) as sim:
        os.environ["AIRFLOW_CONN_PIXXEL_DEFAULT"] = sim.airflow_connection_json()
        with PixxelHook() as hook:
            projects = hook.list_projects()  # answered by sim.base_url with sim.api_key
        # [END howto_simulator_in_python]
        assert [p["id"] for p in projects["projects"]] == list(sim.state.projects)


# [START howto_simulator_pytest]
# conftest.py: pytest_plugins = ["airflow_provider_pixxel.simulator.pytest_plugin"]
def test_my_dag(pixxel_simulator: SimulatorHandle, pixxel_connection: str) -> None:
    # AIRFLOW_CONN_PIXXEL_DEFAULT points at this test's own simulator.
    with PixxelHook() as hook:
        assert hook.test_connection()[0]
    assert pixxel_simulator.state.requests(method="POST") == []


# [END howto_simulator_pytest]


def test_make_things_go_wrong(sim: SimulatorHandle) -> None:
    workflow_id = next(iter(sim.state.workflows))
    # [START howto_simulator_faults]
    sim.state.scenarios.fail("job", message="out of memory", failure_type="OOMKilled")  # next job fails
    sim.state.scenarios.stall("catalog_download")  # never finishes
    sim.state.scenarios.cancel("order_item")  # ends CANCELLED
    sim.faults.add(FaultRule(kind="status", status=503, path="^/v0/projects$", times=1))
    # the API places the order, then a gateway answers 504: the answer is lost after the purchase
    sim.faults.add(FaultRule(kind="status", status=504, path="^/v0/orders$", times=1, after_app=True))
    # [END howto_simulator_faults]
    with PixxelHook() as hook:
        with pytest.raises(PixxelApiError) as refused:
            hook.list_projects()  # the connection has max_retries 0: the 503 is the answer
        assert refused.value.status == 503
        job = hook.create_job(workflow_id)
        assert hook.get_job(workflow_id, job["id"])["status"].lower() == "failed"


def test_assert_on_what_happened(sim: SimulatorHandle) -> None:
    with PixxelHook() as hook:
        hook.list_projects()
    # [START howto_simulator_assertions]
    assert sim.state.created("order") == []  # no order was placed
    assert sim.state.requests(method="POST", path="/v0/orders") == []  # nothing was sent
    assert len(sim.state.requests(method="GET", path="/v0/projects")) == 1
    # [END howto_simulator_assertions]


def test_manual_clock_moves_time_without_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", "")  # what the example sets is undone after the test
    # [START howto_simulator_clock]
    clock = ManualClock()
    with run_simulator(speed=10, clock=clock) as sim:
        os.environ["AIRFLOW_CONN_PIXXEL_DEFAULT"] = sim.airflow_connection_json()
        workflow_id, project_id = next(iter(sim.state.workflows)), next(iter(sim.state.projects))
        with PixxelHook() as hook:
            job_id = hook.create_job(workflow_id, project_id=project_id)["id"]
            before = hook.get_job(workflow_id, job_id)["status"]  # running
            clock.advance(60)  # a minute later, without sleeping
            after = hook.get_job(workflow_id, job_id)["status"]  # completed
    # [END howto_simulator_clock]
    assert (before.lower(), after.lower()) == ("running", "completed")
