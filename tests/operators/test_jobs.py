"""PixxelRunJobOperator against the simulator over loopback HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelWaitTimeoutError
from airflow_provider_pixxel.operators.jobs import PixxelRunJobOperator, describe_job_failure
from airflow_provider_pixxel.simulator import progress
from tests.task_runner import DictTaskStateStore, make_context, requires_task_state_store, run_task

WORKFLOW = "field-boundaries-weekly"  # three tasks, estimated at 120 tokens


def _workflow_id(sim: Any) -> str:
    return next(w["id"] for w in sim.state.workflows.values() if w["name"] == WORKFLOW)


def _op(sim: Any, **kwargs: Any) -> PixxelRunJobOperator:
    kwargs.setdefault("workflow_id", _workflow_id(sim))
    kwargs.setdefault("poll_interval", 0.01)
    kwargs.setdefault("timeout", 10)
    return PixxelRunJobOperator(task_id="run_job", **kwargs)


def _context(store: DictTaskStateStore | None = None) -> dict[str, Any]:
    context = make_context(task_state_store=store if store is not None else DictTaskStateStore())
    return context


@pytest.mark.parametrize("deferrable", [True, False])
def test_runs_the_workflow_after_checking_its_price(sim: Any, deferrable: bool) -> None:
    sim.state.steps_per_poll = 1

    run = run_task(_op(sim, max_cost=500, deferrable=deferrable), _context())

    job = sim.state.created("job")[0].resource
    assert run.result == {
        "workflow_id": _workflow_id(sim),
        "job_id": job["id"],
        "status": "completed",
        "task_ids": [task["id"] for task in job["tasks"]],
    }
    assert len(run.deferrals) == (1 if deferrable else 0)
    paths = [(r.method, r.path) for r in sim.state.requests()]
    assert paths.index(("GET", f"/v0/workflows/{_workflow_id(sim)}/estimate")) < paths.index(
        ("POST", f"/v0/workflows/{_workflow_id(sim)}/jobs")
    )


def test_a_finished_job_returns_without_deferring(sim: Any) -> None:
    run = run_task(_op(sim, deferrable=True), _context())

    assert run.deferrals == []
    assert run.result["status"] == "completed"


def test_the_project_defaults_to_the_connections(sim: Any) -> None:
    run_task(_op(sim), _context())

    (post,) = sim.state.requests("POST", "/v0/workflows/*/jobs")
    assert post.query["project_id"] == next(iter(sim.state.projects))


def test_a_price_above_max_cost_creates_nothing(sim: Any) -> None:
    with pytest.raises(
        AirflowFailException, match=r"priced at 120 tokens, more than max_cost=50; no job was created"
    ):
        run_task(_op(sim, max_cost=50), _context())

    assert sim.state.created("job") == []
    assert sim.state.requests("POST") == []


@pytest.mark.parametrize("max_cost", [0, -5, "lots", True])
def test_a_bad_max_cost_is_refused_before_any_request(sim: Any, max_cost: Any) -> None:
    with pytest.raises(PixxelConfigError, match="max_cost must be a positive number"):
        run_task(_op(sim, max_cost=max_cost), _context())

    assert sim.state.requests() == []


@pytest.mark.parametrize("workflow_id", ["", "  ", None])
def test_a_missing_workflow_id_is_refused_before_any_request(sim: Any, workflow_id: Any) -> None:
    with pytest.raises(PixxelConfigError, match="workflow_id is required"):
        run_task(_op(sim, workflow_id=workflow_id), _context())

    assert sim.state.requests() == []


def test_a_templated_max_cost_string_is_accepted(sim: Any) -> None:
    run = run_task(_op(sim, max_cost="500"), _context())

    assert run.result["status"] == "completed"


@pytest.mark.parametrize("deferrable", [True, False])
def test_a_failed_job_names_the_failed_task_and_its_error(sim: Any, deferrable: bool) -> None:
    sim.state.steps_per_poll = 1
    sim.state.scenarios.fail("job", message="out of memory", failure_type="OOMKilled")

    with pytest.raises(AirflowFailException) as raised:
        run_task(_op(sim, deferrable=deferrable), _context())

    message = str(raised.value)
    assert "failed with status failed" in message
    assert "atmcorrection" in message
    assert "err_msg=out of memory" in message
    assert "failure_type=OOMKilled" in message


def test_validation_errors_fail_at_once(sim: Any) -> None:
    store = DictTaskStateStore()
    sim.state.scenarios.fail(
        "job", val_errors=[{"component_name": "cloudmask", "err": "missing input", "reason": "no AOI"}]
    )

    with pytest.raises(AirflowFailException, match=r"validation errors: \(component_name=cloudmask"):
        run_task(_op(sim, deferrable=True), _context(store))

    assert sim.state.requests("GET", "/v0/workflows/*/jobs/*") == []
    assert store.values == {}


def _partial(monkeypatch: pytest.MonkeyPatch) -> None:
    # The simulator has no partial outcome for jobs; the statuses table knows "partially_completed".
    real_view = progress.job_view

    def partial_view(state: Any, job: dict[str, Any]) -> dict[str, Any]:
        view = real_view(state, job)
        if view["status"] == "completed":
            view["status"] = "partially_completed"
        return view

    monkeypatch.setattr(progress, "job_view", partial_view)


def test_a_partial_job_fails_unless_allowed(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _partial(monkeypatch)

    with pytest.raises(AirflowFailException, match=r"ended partially.*allow_partial=True"):
        run_task(_op(sim), _context())
    run = run_task(_op(sim, allow_partial=True), _context())

    assert run.result["status"] == "partially_completed"


@pytest.mark.parametrize("deferrable", [True, False])
@requires_task_state_store
def test_timeout_is_retryable_and_resumes_the_same_job(sim: Any, deferrable: bool) -> None:
    store = DictTaskStateStore()
    sim.state.scenarios.stall("job")

    with pytest.raises(PixxelWaitTimeoutError, match=r"workflow job .* was still running"):
        run_task(_op(sim, deferrable=deferrable, timeout=0.2, poll_interval=0.05), _context(store))
    job_id = store.values[PixxelRunJobOperator.external_id_key]["job_id"]
    sim.state.scenarios.clear()
    sim.state.lifecycles[job_id].outcome = progress.Outcome.SUCCESS
    run = run_task(_op(sim, deferrable=deferrable), _context(store))

    assert run.result["job_id"] == job_id
    assert len(sim.state.created("job")) == 1


@requires_task_state_store
def test_running_twice_creates_one_job(sim: Any) -> None:
    store = DictTaskStateStore()

    first = run_task(_op(sim, max_cost=500), _context(store))
    second = run_task(_op(sim, max_cost=500), _context(store))

    assert second.result == first.result
    assert len(sim.state.created("job")) == 1


def test_constructing_touches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_PIXXEL_DEFAULT", raising=False)

    op = PixxelRunJobOperator(
        task_id="run_job", workflow_id="{{ params.workflow }}", max_cost="{{ params.cap }}"
    )

    assert {"workflow_id", "project_id", "max_cost"} <= set(op.template_fields)


def test_describe_job_failure_without_details() -> None:
    assert describe_job_failure({"status": "failed"}) == "no reason given by the API"
    assert "val_errors: (err=bad link)" in describe_job_failure({"val_errors": [{"err": "bad link"}]})
