"""The shared operator flow: check once, wait (deferred or inline), and never create twice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelWaitTimeoutError
from airflow_provider_pixxel.operators.base import (
    IDS_XCOM_KEY,
    PixxelResumableOperator,
    PixxelWaitingOperator,
    check_max_cost,
    refuse_above_max_cost,
)
from airflow_provider_pixxel.simulator.state import Outcome
from tests.task_runner import DictTaskStateStore, make_context, requires_task_state_store, run_task


class StartJob(PixxelWaitingOperator):
    """The smallest waiting operator: run the first seeded workflow."""

    watch_kind = "job"

    def __init__(self, *, workflow_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workflow_id = workflow_id

    def start(self, context: Any) -> dict[str, str]:
        return {"workflow_id": self.workflow_id, "job_id": self.hook.create_job(self.workflow_id)["id"]}


class ResumableStartJob(PixxelResumableOperator, StartJob):
    pass


def _context(store: DictTaskStateStore) -> dict[str, Any]:
    context = make_context(task_state_store=store)
    return context


def _op(sim: Any, cls: type[StartJob] = StartJob, **kwargs: Any) -> StartJob:
    kwargs.setdefault("poll_interval", 0.01)
    kwargs.setdefault("timeout", 10)
    return cls(task_id="start_job", workflow_id=next(iter(sim.state.workflows)), **kwargs)


def _ids(result: Mapping[str, Any]) -> dict[str, str]:
    return {"workflow_id": result["workflow_id"], "job_id": result["job_id"]}


# -- the waiting flow --------------------------------------------------------------------------------


@pytest.mark.parametrize("deferrable", [True, False])
def test_already_terminal_at_the_first_check_returns_without_deferring(sim: Any, deferrable: bool) -> None:
    run = run_task(_op(sim, deferrable=deferrable))

    assert run.deferrals == []
    assert run.result["status"] == "completed"
    assert run.context["ti"].xcoms[IDS_XCOM_KEY] == _ids(run.result)


def test_deferrable_wait_goes_through_a_serialized_trigger(sim: Any) -> None:
    sim.state.steps_per_poll = 1

    run = run_task(_op(sim, deferrable=True))

    assert len(run.deferrals) == 1
    classpath, kwargs = run.deferrals[0]["trigger"]
    assert classpath.endswith("PixxelStatusTrigger")
    assert kwargs["ids"] == _ids(run.result)
    assert run.result["status"] == "completed"


def test_inline_wait_polls_until_done(sim: Any) -> None:
    sim.state.steps_per_poll = 1

    run = run_task(_op(sim, deferrable=False))

    assert run.deferrals == []
    assert run.result["status"] == "completed"
    assert len(sim.state.requests("GET", "/v0/workflows/*/jobs/*")) == 3


@pytest.mark.parametrize("deferrable", [True, False])
def test_terminal_failure_fails_without_retry(sim: Any, deferrable: bool) -> None:
    sim.state.scenarios.fail("job", message="out of memory")

    with pytest.raises(AirflowFailException, match="failed with status failed"):
        run_task(_op(sim, deferrable=deferrable))


@pytest.mark.parametrize("deferrable", [True, False])
def test_timeout_is_retryable_and_names_the_resource(sim: Any, deferrable: bool) -> None:
    sim.state.scenarios.stall("job")

    with pytest.raises(PixxelWaitTimeoutError, match=r"workflow job .* was still running") as raised:
        run_task(_op(sim, deferrable=deferrable, timeout=0.2, poll_interval=0.05))

    assert not isinstance(raised.value, AirflowFailException)


def test_without_waiting_only_the_ids_are_returned(sim: Any) -> None:
    run = run_task(_op(sim, wait_for_completion=False))

    assert run.result["status"] is None
    assert sim.state.requests("GET", "/v0/workflows/*/jobs/*") == []


@pytest.mark.parametrize("cls", [StartJob, ResumableStartJob])
@pytest.mark.parametrize(("setting", "value"), [("poll_interval", 0), ("poll_interval", -1), ("timeout", 0)])
def test_non_positive_wait_settings_are_refused_before_any_request(
    sim: Any, cls: type[StartJob], setting: str, value: float
) -> None:
    with pytest.raises(PixxelConfigError, match=setting):
        run_task(_op(sim, cls, **{setting: value}), _context(DictTaskStateStore()))

    assert sim.state.requests() == []


# -- the resumable flow --------------------------------------------------------------------------------


@requires_task_state_store
def test_fresh_submit_stores_the_ids_before_waiting(sim: Any) -> None:
    store = DictTaskStateStore()

    run = run_task(_op(sim, ResumableStartJob), _context(store))

    assert store.values[ResumableStartJob.external_id_key] == _ids(run.result)
    assert len(sim.state.created("job")) == 1


@requires_task_state_store
def test_a_retry_reconnects_to_the_running_job(sim: Any) -> None:
    store = DictTaskStateStore()
    sim.state.scenarios.stall("job")
    with pytest.raises(PixxelWaitTimeoutError):
        run_task(_op(sim, ResumableStartJob, timeout=0.1), _context(store))
    ids = store.values[ResumableStartJob.external_id_key]
    sim.state.lifecycles[ids["job_id"]].outcome = Outcome.SUCCESS  # the job moves on

    run = run_task(_op(sim, ResumableStartJob, deferrable=True), _context(store))

    assert _ids(run.result) == ids
    assert run.result["status"] == "completed"
    assert len(sim.state.created("job")) == 1
    # The reconnecting try pushes the ids again: its extra links and lineage read them from XCom.
    assert run.context["ti"].xcoms[IDS_XCOM_KEY] == ids


@requires_task_state_store
def test_an_already_succeeded_job_returns_at_once(sim: Any) -> None:
    store = DictTaskStateStore()
    first = run_task(_op(sim, ResumableStartJob), _context(store))
    sim.state.clear_records()

    second = run_task(_op(sim, ResumableStartJob, deferrable=True), _context(store))

    assert second.result == first.result
    assert second.deferrals == []
    assert sim.state.requests("POST") == []
    assert second.context["ti"].xcoms[IDS_XCOM_KEY] == _ids(first.result)


@requires_task_state_store
def test_a_failed_job_is_submitted_afresh(sim: Any) -> None:
    store = DictTaskStateStore()
    sim.state.scenarios.fail("job", times=1)
    with pytest.raises(AirflowFailException):
        run_task(_op(sim, ResumableStartJob), _context(store))
    failed_ids = store.values[ResumableStartJob.external_id_key]

    run = run_task(_op(sim, ResumableStartJob), _context(store))

    assert run.result["status"] == "completed"
    assert _ids(run.result) != failed_ids
    assert store.values[ResumableStartJob.external_id_key] == _ids(run.result)
    assert len(sim.state.created("job")) == 2


# -- the one max_cost check (orders, jobs, insights) ------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"), [(None, None), ("", None), ("  ", None), (50, 50.0), ("7.5", 7.5)]
)
def test_check_max_cost_accepts_numbers_numeric_text_and_no_limit(given: Any, expected: Any) -> None:
    assert check_max_cost(given) == expected


@pytest.mark.parametrize("given", [0, -1, "-3", "lots", True, float("nan"), float("inf"), [5]])
def test_check_max_cost_refuses_anything_else(given: Any) -> None:
    with pytest.raises(PixxelConfigError, match="max_cost must be a positive number of tokens"):
        check_max_cost(given)


def test_refuse_above_max_cost() -> None:
    assert refuse_above_max_cost(120, None, subject="x", consequence="y") == 120.0
    assert refuse_above_max_cost(None, None, subject="x", consequence="y") is None
    assert refuse_above_max_cost(50, 50.0, subject="x", consequence="y") == 50.0
    with pytest.raises(
        AirflowFailException, match=r"the order is priced at 51 tokens, more than max_cost=50; no"
    ):
        refuse_above_max_cost(51, 50.0, subject="the order", consequence="nothing was bought")
    with pytest.raises(AirflowFailException, match=r"no usable price for the order \(None\)"):
        refuse_above_max_cost(None, 50.0, subject="the order", consequence="nothing was bought")
    with pytest.raises(AirflowFailException, match="no usable price"):
        refuse_above_max_cost(True, 50.0, subject="the order", consequence="nothing was bought")
