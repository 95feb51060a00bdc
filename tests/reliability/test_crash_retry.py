"""Crash and retry safety: a retried, killed or resumed task never creates its remote work twice.

Every check counts from the simulator's own record (``state.created`` and ``state.requests``), not
from what the operator says it did. Covered, for each operator that creates billable or long-running
work (order, workflow job, insight, AOI, visualization):

* a worker killed after the create request returned: the retry reconnects to the same resource;
* a deferred task whose triggerer restarts: the trigger is rebuilt from its serialized kwargs (as a
  new triggerer does) and the task resumes on the same resource;
* a terminal remote failure: ``AirflowFailException`` (Airflow does not retry it), and no status read
  after the failure was seen;
* a create request whose answer is lost (503 or reset before or after the API acted, a cut answer):
  the task looks for what it made, adopts it if it exists and sends the request once more if it does
  not; with two new candidates, or hook retries off, it fails without sending anything again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_pixxel.exceptions import PixxelError
from airflow_provider_pixxel.operators.aoi import PixxelCreateAOIOperator
from airflow_provider_pixxel.operators.insights import PixxelCreateInsightsOperator
from airflow_provider_pixxel.operators.jobs import PixxelRunJobOperator
from airflow_provider_pixxel.operators.orders import PixxelCreateOrderOperator
from airflow_provider_pixxel.operators.visualizations import PixxelCreateVisualizationOperator
from airflow_provider_pixxel.simulator import FaultRule
from airflow_provider_pixxel.simulator.seed import REGIONS, TD2_ID, square
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from airflow_provider_pixxel.triggers import status as status_trigger
from tests.reliability.conftest import enable_hook_retries
from tests.task_runner import (
    DictTaskStateStore,
    first_event,
    make_context,
    rebuild_trigger,
    requires_task_state_store,
    run_task,
)

_, LON, LAT = REGIONS[0]
FIELD = {"type": "Polygon", "coordinates": square(LON, LAT, 0.05)}
FAST: dict[str, Any] = {"poll_interval": 0.01, "timeout": 10.0}
RASTER = {
    "stac_url": "https://stac.pixxel.space/collections/pixxel-td2/items/TD2_1",
    "asset_source": {"id": "a1", "type": "raw_mosaic"},
}


class WorkerKilled(BaseException):
    """Stands for SIGKILL of the worker: not an Exception, so nothing in the task can catch it."""


@dataclass(frozen=True)
class Creator:
    """A resumable operator, the simulator record kind it creates, and its create request."""

    name: str
    kind: str
    create_method: str
    create_path: str
    build: Callable[[SimulatorHandle], Any]

    def creations(self, sim: SimulatorHandle) -> list[Any]:
        return sim.state.created(self.kind)

    def create_requests(self, sim: SimulatorHandle) -> list[Any]:
        return [
            request
            for request in sim.state.requests(self.create_method, self.create_path)
            if not _is_quote(request)
        ]


def _is_quote(request: Any) -> bool:
    """A dry-run order or an insight estimate: priced, never created."""
    body = request.body if isinstance(request.body, dict) else {}
    return bool(body.get("dry_run") or body.get("estimate"))


def _tasking_item(sim: SimulatorHandle) -> dict[str, Any]:
    now = max(datetime.datetime.now(datetime.timezone.utc).timestamp(), sim.state.now())
    start = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).date() + datetime.timedelta(days=3)
    return {
        "name": "field-42",
        "geometry": FIELD,
        "usecase": "agriculture",
        "bandset": {"bandset_id": next(iter(sim.state.bandsets))},
        "recurrence": "ONCE",
        "start_date": start.isoformat(),
        "end_date": (start + datetime.timedelta(days=5)).isoformat(),
    }


def _td2_items(sim: SimulatorHandle) -> list[str]:
    return [
        item_id
        for item_id, item in sim.state.items.items()
        if item["collection"] == "pixxel-td2" and abs(item["bbox"][0] - (LON - 0.06)) < 1e-6
    ]


def _visualization(sim: SimulatorHandle) -> dict[str, Any]:
    return next(iter(sim.state.visualizations.values()))


CREATORS = [
    Creator(
        "order",
        "order",
        "POST",
        "/v0/orders",
        lambda sim: PixxelCreateOrderOperator(
            task_id="order", order_items=[_tasking_item(sim)], max_cost=10_000, **FAST
        ),
    ),
    Creator(
        "job",
        "job",
        "POST",
        "/v0/workflows/*/jobs",
        lambda sim: PixxelRunJobOperator(
            task_id="run_job", workflow_id=next(iter(sim.state.workflows)), max_cost=10_000, **FAST
        ),
    ),
    Creator(
        "insight",
        "insight",
        "POST",
        "/v0/aoi/*/insights",
        lambda sim: PixxelCreateInsightsOperator(
            task_id="insight",
            aoi_id=_visualization(sim)["aoi_id"],
            block={"name": "waterbodydetection", "version": "2.0.1"},
            input_values={"input_image": RASTER, "threshold": 0.3},
            max_cost=10_000,
            **FAST,
        ),
    ),
    Creator(
        "aoi",
        "aoi",
        "POST",
        "/v0/aois",
        lambda sim: PixxelCreateAOIOperator(
            task_id="create_aoi",
            name="field-42",
            description="Field 42",
            satellite_id=TD2_ID,
            provider="pixxel",
            geometry=FIELD,
            item_ids=_td2_items(sim),
            **FAST,
        ),
    ),
    Creator(
        "visualization",
        "visualization",
        "POST",
        "/v0/aois/*/visualizations",
        lambda sim: PixxelCreateVisualizationOperator(
            task_id="visualize",
            aoi_id=_visualization(sim)["aoi_id"],
            index_id=_visualization(sim)["index_id"],
            resolution=10,
            **FAST,
        ),
    ),
]
CREATOR_IDS = [creator.name for creator in CREATORS]


@pytest.fixture
def slow_sim(sim: SimulatorHandle) -> SimulatorHandle:
    """One status step per read, so work is still running when the task is killed or defers."""
    sim.state.steps_per_poll = 1
    return sim


def store_is_used() -> bool:
    """Whether the operators use ``task_state_store`` here (Airflow 3.3+; not with the stand-in)."""
    from airflow_provider_pixxel.compat import ResumableJobMixin as StandIn

    return not issubclass(PixxelCreateOrderOperator, StandIn)


def _context(store: DictTaskStateStore) -> dict[str, Any]:
    return make_context(task_state_store=store)


@pytest.mark.parametrize("creator", CREATORS, ids=CREATOR_IDS)
@requires_task_state_store
def test_worker_killed_after_submitting_reconnects_on_retry(
    creator: Creator, slow_sim: SimulatorHandle
) -> None:
    store = DictTaskStateStore()
    first_try = creator.build(slow_sim)
    first_try.deferrable = False

    with (
        mock.patch.object(status_trigger, "wait_inline", side_effect=WorkerKilled),
        pytest.raises(WorkerKilled),
    ):
        run_task(first_try, _context(store))
    assert len(creator.creations(slow_sim)) == 1, "the first try did not create its resource"
    assert store.values, "the remote ids were not kept in task_state_store before the wait"

    second_try = creator.build(slow_sim)
    second_try.deferrable = False
    result = run_task(second_try, _context(store)).result

    assert len(creator.creations(slow_sim)) == 1, "the retry created the remote work again"
    assert len(creator.create_requests(slow_sim)) == 1, "the retry sent the create request again"
    (created,) = creator.creations(slow_sim)
    assert created.id in repr(result)


@pytest.mark.parametrize("arrived", [True, False], ids=["request-arrived", "request-lost"])
@pytest.mark.parametrize("creator", CREATORS, ids=CREATOR_IDS)
@requires_task_state_store
def test_worker_killed_while_the_create_request_is_on_its_way(
    creator: Creator, arrived: bool, sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window ``ResumableJobMixin`` documents as its limitation: the worker dies after sending the
    create, before storing the answer. The next try adopts what the request made, or sends it if the
    request never arrived: one resource either way, from the simulator's record."""
    store = DictTaskStateStore()
    first_try = creator.build(sim)
    real_method = getattr(first_try.hook, CREATE_METHODS[creator.name])

    def killed_in_flight(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("dry_run") or kwargs.get("estimate"):
            return real_method(*args, **kwargs)
        if arrived:
            real_method(*args, **kwargs)  # the API acts; the answer is never read
        raise WorkerKilled

    monkeypatch.setattr(first_try.hook, CREATE_METHODS[creator.name], killed_in_flight)
    with pytest.raises(WorkerKilled):
        run_task(first_try, _context(store))
    assert first_try.external_id_key not in store.values, "the answer was never stored"
    assert len(creator.creations(sim)) == (1 if arrived else 0)

    result = run_task(creator.build(sim), _context(store)).result

    assert len(creator.creations(sim)) == 1, "the retry created the remote work again"
    assert len(creator.create_requests(sim)) == 1
    (created,) = creator.creations(sim)
    assert created.id in repr(result)
    assert store.values[first_try.external_id_key], "the adopted ids are kept for later tries"
    assert "pixxel_pending_creation" not in store.values


@pytest.mark.parametrize("creator", CREATORS, ids=CREATOR_IDS)
@requires_task_state_store
def test_retry_of_finished_work_returns_without_creating_or_waiting(
    creator: Creator, sim: SimulatorHandle
) -> None:
    store = DictTaskStateStore()
    first = run_task(creator.build(sim), _context(store)).result
    second = run_task(creator.build(sim), _context(store)).result

    assert len(creator.creations(sim)) == 1
    assert len(creator.create_requests(sim)) == 1
    (created,) = creator.creations(sim)
    assert created.id in repr(first)
    assert created.id in repr(second)


@pytest.mark.parametrize("creator", CREATORS, ids=CREATOR_IDS)
def test_deferred_task_survives_a_triggerer_restart(creator: Creator, slow_sim: SimulatorHandle) -> None:
    store = DictTaskStateStore()
    context = _context(store)
    task = creator.build(slow_sim)
    task.deferrable = True

    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context)
    serialized = deferred.value.trigger.serialize()

    async def run_until_killed() -> None:
        # The first triggerer starts polling and dies a moment later, whether or not its trigger had
        # already seen the end (a fast machine may poll to the end first: either way the second
        # triggerer below must finish the wait from the serialized kwargs alone).
        trigger = rebuild_trigger(deferred.value.trigger)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(first_event(trigger), timeout=0.005)

    asyncio.run(run_until_killed())
    # A new triggerer process builds the trigger again from the serialized kwargs only.
    event = asyncio.run(first_event(rebuild_trigger(deferred.value.trigger)))
    assert rebuild_trigger(deferred.value.trigger).serialize() == serialized
    result = getattr(task, deferred.value.method_name)(context, event=event, **(deferred.value.kwargs or {}))

    assert len(creator.creations(slow_sim)) == 1
    assert len(creator.create_requests(slow_sim)) == 1
    (created,) = creator.creations(slow_sim)
    assert created.id in repr(result)


@pytest.mark.parametrize("creator", CREATORS, ids=CREATOR_IDS)
@requires_task_state_store
def test_deferred_task_retried_after_a_lost_trigger_reconnects(
    creator: Creator, slow_sim: SimulatorHandle
) -> None:
    store = DictTaskStateStore()
    task = creator.build(slow_sim)
    task.deferrable = True
    with pytest.raises(TaskDeferred):
        task.execute(_context(store))

    # The trigger never reports (triggerer gone, deferral timed out): Airflow retries the task.
    retry = creator.build(slow_sim)
    retry.deferrable = True
    result = run_task(retry, _context(store)).result

    assert len(creator.creations(slow_sim)) == 1
    assert len(creator.create_requests(slow_sim)) == 1
    (created,) = creator.creations(slow_sim)
    assert created.id in repr(result)


TERMINAL_FAILURES = [
    ("order", "order_item"),
    ("job", "job"),
    ("insight", "insight"),
    ("aoi", "aoi"),
    ("visualization", "visualization"),
]


@pytest.mark.parametrize("deferrable", [False, True], ids=["inline", "deferred"])
@pytest.mark.parametrize(("creator_name", "scenario_kind"), TERMINAL_FAILURES)
def test_terminal_remote_failure_fails_once_without_retry(
    creator_name: str, scenario_kind: str, deferrable: bool, slow_sim: SimulatorHandle
) -> None:
    creator = next(c for c in CREATORS if c.name == creator_name)
    slow_sim.state.scenarios.fail(scenario_kind, message="simulated remote failure")
    store = DictTaskStateStore()
    task = creator.build(slow_sim)
    task.deferrable = deferrable

    with pytest.raises(AirflowFailException) as failed:
        run_task(task, _context(store))

    # AirflowFailException is the one failure Airflow never retries, whatever `retries` says, so a
    # dead remote job is not polled again by a second try.
    (created,) = creator.creations(slow_sim)
    message = str(failed.value)
    assert "failed" in message
    assert created.id in message
    if creator_name in ("order", "job", "insight"):
        # These resources carry the remote reason; AOIs and visualizations have no reason field.
        assert "simulated remote failure" in message


def _create_path_regex(creator: Creator) -> str:
    return "^" + creator.create_path.replace("*", "[^/]+") + "$"


#: Lost answers to a create request: (fault, whether the API acted before the client lost the answer).
LOST_ANSWERS = {
    "503-before": (dict(kind="status", status=503), False),
    "503-after": (dict(kind="status", status=503, after_app=True), True),
    "reset-before": (dict(kind="reset"), False),
    "reset-after": (dict(kind="reset", after_app=True), True),
    "cut-answer": (dict(kind="truncate"), True),
}
CREATE_METHODS = {
    "order": "create_order",
    "job": "create_job",
    "insight": "create_insights",
    "aoi": "create_aoi",
    "visualization": "create_visualization",
}


def _fault_on_the_create(
    creator: Creator, rule: FaultRule, task: Any, sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arm ``rule`` on the real create only, once the (free, safely retried) price check is done."""
    real_method = getattr(task.hook, CREATE_METHODS[creator.name])
    armed: list[FaultRule] = []

    def create_with_fault(*args: Any, **kwargs: Any) -> Any:
        if not (kwargs.get("dry_run") or kwargs.get("estimate") or armed):
            armed.append(sim.faults.add(rule))
        return real_method(*args, **kwargs)

    monkeypatch.setattr(task.hook, CREATE_METHODS[creator.name], create_with_fault)


@pytest.mark.parametrize("lost_answer", LOST_ANSWERS, ids=list(LOST_ANSWERS))
@pytest.mark.parametrize("creator", CREATORS, ids=CREATOR_IDS)
def test_lost_answer_to_a_create_is_adopted_or_resent_once(
    creator: Creator,
    lost_answer: str,
    sim: SimulatorHandle,
    fast_backoff: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The task looks for what a create with a lost answer made: adopts it, or sends once more if absent.

    Either way the task succeeds with exactly one resource, proven from the simulator's record.
    """
    enable_hook_retries(monkeypatch)
    fault, acted = LOST_ANSWERS[lost_answer]
    rule = FaultRule(
        **fault,
        path=_create_path_regex(creator),
        methods=frozenset({"POST"}),
        times=1,  # type: ignore[arg-type]
    )
    task = creator.build(sim)
    _fault_on_the_create(creator, rule, task, sim, monkeypatch)

    result = run_task(task, _context(DictTaskStateStore())).result

    assert rule.injected_count == 1
    assert len(creator.creations(sim)) == 1, "the resource was created twice, or not at all"
    (created,) = creator.creations(sim)
    assert created.id in repr(result)
    expected_sends = 1 if acted else 2
    assert len(creator.create_requests(sim)) == expected_sends


@pytest.mark.parametrize("creator", CREATORS[:3], ids=CREATOR_IDS[:3])
def test_lost_answer_without_hook_retries_is_not_resent_nor_retried_by_airflow(
    creator: Creator, sim: SimulatorHandle, fast_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``max_retries`` 0 nothing is sent twice: an absent resource fails the task for good."""
    enable_hook_retries(monkeypatch, max_retries=0)
    rule = FaultRule(kind="status", status=503, path=_create_path_regex(creator), methods=frozenset({"POST"}))
    task = creator.build(sim)
    _fault_on_the_create(creator, rule, task, sim, monkeypatch)

    store = DictTaskStateStore()
    with pytest.raises(AirflowFailException) as failed:
        run_task(task, _context(store))

    assert len(creator.create_requests(sim)) == 1, "the create request was sent again"
    assert creator.creations(sim) == []
    assert "may have created" in str(failed.value)
    assert "not retried automatically" in str(failed.value)
    if store_is_used():
        # Kept: a try started by hand later looks for what this one may have made before sending.
        assert "pixxel_pending_creation" in store.values


@pytest.mark.parametrize("creator", CREATORS[:3], ids=CREATOR_IDS[:3])
def test_lost_answer_with_two_new_candidates_adopts_neither(
    creator: Creator, sim: SimulatorHandle, fast_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Something else made a matching resource while the answer was lost: neither is adopted, no
    request is re-sent, and the task fails without Airflow retries, naming both candidates."""
    enable_hook_retries(monkeypatch)
    rule = FaultRule(
        kind="status",
        status=502,
        after_app=True,
        path=_create_path_regex(creator),
        methods=frozenset({"POST"}),
    )
    task = creator.build(sim)
    real_method = getattr(task.hook, CREATE_METHODS[creator.name])

    def create_twice_with_lost_answers(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("dry_run") or kwargs.get("estimate"):
            return real_method(*args, **kwargs)
        sim.faults.add(rule)
        with contextlib.suppress(PixxelError):
            real_method(*args, **kwargs)  # the "other" creator, at the same moment
        return real_method(*args, **kwargs)

    monkeypatch.setattr(task.hook, CREATE_METHODS[creator.name], create_twice_with_lost_answers)

    with pytest.raises(AirflowFailException) as failed:
        run_task(task, _context(DictTaskStateStore()))

    creations = creator.creations(sim)
    assert len(creations) == 2
    assert len(creator.create_requests(sim)) == 2, "a request was re-sent"
    for created in creations:
        assert created.id in str(failed.value)
    assert "cannot be told" in str(failed.value)
