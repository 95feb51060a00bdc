"""The shared poller: waits of one loop, connection, kind and scope read together.

Against the simulator (coalescing, cancellation, a closed loop) and a loopback server answering each
read as a test needs (a list that leaves a job out, a 404 or 401 list, a hostile list, a 429).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from typing import Any
from urllib.parse import parse_qs

import pytest

from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook, shared_hook_users
from airflow_provider_pixxel.resources import read_many_async, watchable
from airflow_provider_pixxel.statuses import Phase
from airflow_provider_pixxel.triggers.poller import Member, SharedPoller, pollers_of
from airflow_provider_pixxel.triggers.status import PixxelStatusTrigger, validate_event
from tests.reliability.loopback import Exchange, Loopback
from tests.task_runner import first_event
from tests.test_resources import add_aois, place_order

LIST_PATH = "/v0/workflows/wf-1/jobs"
#: Rounds an interval of a poller of two or more job waits (one list call serves each round).
JOB_ROUNDS = watchable("job").list_form.rounds_per_interval  # type: ignore[union-attr]

# ``sim`` (tests/conftest.py): the simulator behind ``pixxel_default``, batched (the default).


def _jobs(sim: Any, count: int) -> list[dict[str, str]]:
    workflow_id = next(iter(sim.state.workflows))
    hook = PixxelHook()
    return [{"workflow_id": workflow_id, "job_id": hook.create_job(workflow_id)["id"]} for _ in range(count)]


def _trigger(ids: dict[str, str], **overrides: Any) -> PixxelStatusTrigger:
    kwargs: dict[str, Any] = {"kind": "job", "ids": ids, "poll_interval": 0.05, "deadline": time.time() + 30}
    kwargs.update(overrides)
    return PixxelStatusTrigger(**kwargs)


async def _all_events(triggers: list[PixxelStatusTrigger]) -> list[list[dict[str, Any]]]:
    """Every event each trigger yields (a trigger must yield exactly one)."""

    async def events(trigger: PixxelStatusTrigger) -> list[dict[str, Any]]:
        return [dict(event.payload) async for event in trigger.run()]

    return list(await asyncio.gather(*(events(trigger) for trigger in triggers)))


def _job_answer(job_id: str, status: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "workflow_id": "wf-1",
        "status": status,
        "progress": 100 if status == "completed" else 10,
    }


def _loopback_ids(*job_ids: str) -> list[dict[str, str]]:
    return [{"workflow_id": "wf-1", "job_id": job_id} for job_id in job_ids]


def _count(server: Loopback, path: str) -> int:
    return sum(1 for seen in server.requests if seen.path == path)


async def _until(condition: Any, what: str) -> None:
    """Bounded polling of ``condition`` (the loop keeps running the triggers meanwhile)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


# -- coalescing against the simulator ---------------------------------------------------------------


async def test_waits_on_one_workflow_are_read_with_the_job_list(sim: Any) -> None:
    watches = _jobs(sim, 30)
    sim.state.clear_records()

    # [START howto_batched_waits]
    # Thirty deferred waits, run in one event loop as a triggerer runs them. Nothing about them says
    # "batch": each trigger serializes only its own ids; the shared poller is found at run time.
    triggers = [
        PixxelStatusTrigger(kind="job", ids=ids, poll_interval=0.05, deadline=time.time() + 30)
        for ids in watches
    ]
    results = await _all_events(triggers)
    # [END howto_batched_waits]

    assert [len(events) for events in results] == [1] * 30
    for ids, (event,) in zip(watches, results, strict=True):
        assert validate_event(event, kind="job", ids=ids)["status"] == "success"
    reads = sim.state.requests("GET")
    # All 30 joined the poller's first round: one list read answered for every one of them.
    assert [r.path for r in reads] == [f"/v0/workflows/{watches[0]['workflow_id']}/jobs"]


async def test_batch_polling_false_gives_each_wait_its_own_reads(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    watches = _jobs(sim, 3)
    sim.state.clear_records()
    # [START howto_batch_polling_off]
    connection = {
        "conn_type": "pixxel",
        "host": sim.base_url,
        "password": sim.api_key,
        "extra": {"batch_polling": False},  # every wait polls with a client and reads of its own
    }
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))
    # [END howto_batch_polling_off]

    results = await _all_events([_trigger(ids) for ids in watches])

    assert [events[0]["status"] for events in results] == ["success"] * 3
    assert sorted(r.path for r in sim.state.requests("GET")) == sorted(
        f"/v0/workflows/{ids['workflow_id']}/jobs/{ids['job_id']}" for ids in watches
    )


async def test_stalled_waits_share_one_list_read_per_round_until_their_deadlines(sim: Any) -> None:
    sim.state.scenarios.stall("job", times=20)
    watches = _jobs(sim, 20)
    sim.state.clear_records()
    window, interval = 0.6, 0.1

    results = await _all_events(
        [_trigger(ids, poll_interval=interval, deadline=time.time() + window) for ids in watches]
    )

    assert {event["status"] for (event,) in results} == {"timeout"}
    assert [len(events) for events in results] == [1] * 20
    reads = sim.state.requests("GET")
    # Unbatched, 20 waits would send 20 reads an interval (about 140 here); batched, one list read a
    # round, two rounds an interval.
    assert {r.path for r in reads} == {f"/v0/workflows/{watches[0]['workflow_id']}/jobs"}
    assert len(reads) <= JOB_ROUNDS * window / interval + 3


async def test_list_read_waits_are_read_every_half_interval_and_a_lone_wait_every_interval(sim: Any) -> None:
    sim.state.scenarios.stall("job", times=3)
    pair, lone = _jobs(sim, 2), _jobs(sim, 1)
    window, interval = 2.0, 0.4

    async def reads_of(watches: list[dict[str, str]]) -> list[str]:
        sim.state.clear_records()
        results = await _all_events(
            [_trigger(ids, poll_interval=interval, deadline=time.time() + window) for ids in watches]
        )
        assert {event["status"] for (event,) in results} == {"timeout"}
        return [r.path for r in sim.state.requests("GET")]

    pair_reads, lone_reads = await reads_of(pair), await reads_of(lone)

    # Two waits share a list read, so they are read twice an interval for what their own reads would
    # cost (2 an interval): about 10 rounds here. A lone wait is read on its own, once an interval
    # (about 5 here), as it would be unbatched: more rounds would cost more reads.
    assert set(pair_reads) == {f"/v0/workflows/{pair[0]['workflow_id']}/jobs"}
    assert window / interval + 2 <= len(pair_reads) <= JOB_ROUNDS * window / interval + 3
    assert set(lone_reads) == {f"/v0/workflows/{lone[0]['workflow_id']}/jobs/{lone[0]['job_id']}"}
    assert len(lone_reads) <= window / interval + 2


@pytest.mark.parametrize(
    ("kind", "intervals", "rounds", "period", "rounds_once_the_last_leaves"),
    [
        ("job", [3.0], 1, 3.0, 1),  # a lone wait: its own read, once an interval
        ("job", [3.0, 3.0], 2, 1.5, 1),  # two waits' polls an interval: two list rounds cost no more
        ("job", [3.0, 300.0], 1, 3.0, 1),  # 1.01 polls an interval: two rounds would double the reads
        ("job", [3.0, 6.0, 6.0], 2, 1.5, 1),  # 2 polls an interval, then 1.5
        ("order_item", [30.0] * 5, 2, 15.0, 2),
        ("catalog_download", [3.0, 3.0], 1, 3.0, 1),  # read one by one: a read per wait per round
        ("order", [3.0, 3.0, 3.0], 2, 1.5, 2),  # order_ids= serves every order of a round
        ("aoi", [3.0, 3.0], 1, 3.0, 1),  # the AOI walk can cost more than single reads: one round
    ],
)
async def test_rounds_per_interval_follow_what_a_round_costs(
    kind: str, intervals: list[float], rounds: int, period: float, rounds_once_the_last_leaves: int
) -> None:
    poller = SharedPoller(("pixxel_default", kind, ()), hook=None, loop=asyncio.get_running_loop())
    members = [Member(ids={}, interval=interval, deadline=1e9, due=0.0) for interval in intervals]
    try:
        for member in members:
            poller.join(member)

        assert (poller.rounds_per_interval, poller._period) == (rounds, period)
        first = members[0]
        first.served_at = 100.0
        poller.schedule_next(first)
        assert first.due == 100.0 + first.interval / rounds
        first.deadline = 100.5  # the deadline poll comes first when it is sooner
        poller.schedule_next(first)
        assert first.due == 100.5

        poller.leave(members[-1])
        poller.leave(members[-1])  # a second leave of the same wait changes nothing
        assert poller.rounds_per_interval == rounds_once_the_last_leaves
        for member in members[:-1]:
            poller.leave(member)
        assert (poller.rounds_per_interval, poller._period) == (1, math.inf)
    finally:
        await poller.close()


async def test_a_cancelled_trigger_leaves_the_poller_and_the_last_one_closes_it(sim: Any) -> None:
    sim.state.scenarios.stall("job", times=3)
    watches = _jobs(sim, 3)
    loop = asyncio.get_running_loop()
    tasks = [asyncio.ensure_future(first_event(_trigger(ids, poll_interval=0.05))) for ids in watches]

    def members() -> int:
        return sum(len(poller.members) for poller in pollers_of(loop).values())

    await _until(lambda: members() == 3, "three members")
    tasks[0].cancel()
    await asyncio.gather(tasks[0], return_exceptions=True)

    assert members() == 2
    assert shared_hook_users(loop, "pixxel_default") == 2

    for task in tasks[1:]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    assert pollers_of(loop) == {}
    assert shared_hook_users(loop, "pixxel_default") == 0
    assert [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()] == []


def test_a_poller_leaves_nothing_behind_when_its_loop_ends(sim: Any) -> None:
    (ids,) = _jobs(sim, 1)
    runner = asyncio.Runner()
    loop = runner.get_loop()
    # first_event stops iterating without closing the trigger's generator, as a triggerer shutting
    # down may: closing the loop (as asyncio.run does) must still close the poller and the client.
    event = runner.run(first_event(_trigger(ids)))
    runner.close()

    assert event["status"] == "success"
    assert loop.is_closed()
    assert pollers_of(loop) == {}
    assert shared_hook_users(loop, "pixxel_default") == 0
    assert [task for task in asyncio.all_tasks(loop) if not task.done()] == []


# -- what the list answers, against a loopback server -----------------------------------------------


async def test_a_job_left_out_of_the_list_is_read_on_its_own_never_a_false_not_found(api: Loopback) -> None:
    api.routes[LIST_PATH] = lambda exchange: exchange.json({"jobs": [_job_answer("job-1", "completed")]})
    api.routes[f"{LIST_PATH}/job-2"] = lambda exchange: exchange.json(_job_answer("job-2", "completed"))

    results = await _all_events([_trigger(ids) for ids in _loopback_ids("job-1", "job-2", "job-3")])

    assert [events[0]["status"] for events in results] == ["success", "success", "error"]
    assert "404" in results[2][0]["message"]
    assert _count(api, LIST_PATH) == 1
    assert _count(api, f"{LIST_PATH}/job-1") == 0
    assert _count(api, f"{LIST_PATH}/job-2") == _count(api, f"{LIST_PATH}/job-3") == 1


async def test_a_list_that_is_not_found_falls_back_to_each_jobs_own_read(api: Loopback) -> None:
    # No route for the list: the loopback answers 404.
    for job_id in ("job-1", "job-2"):
        api.routes[f"{LIST_PATH}/{job_id}"] = lambda exchange, job_id=job_id: exchange.json(
            _job_answer(job_id, "completed")
        )

    results = await _all_events([_trigger(ids) for ids in _loopback_ids("job-1", "job-2")])

    assert [events[0]["status"] for events in results] == ["success", "success"]
    assert _count(api, LIST_PATH) == 1
    assert _count(api, f"{LIST_PATH}/job-1") == _count(api, f"{LIST_PATH}/job-2") == 1


async def test_a_refused_key_on_the_list_is_every_waits_error_at_once(api: Loopback) -> None:
    api.routes[LIST_PATH] = lambda exchange: exchange.json(
        {"error": {"code": "unauthorized", "message": "bad key"}}, status=401
    )

    results = await _all_events([_trigger(ids, poll_interval=60) for ids in _loopback_ids("job-1", "job-2")])

    assert [(len(events), events[0]["status"]) for events in results] == [(1, "error"), (1, "error")]
    assert all("401" in events[0]["message"] for events in results)
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    "hostile",
    [b'[{"id": "job-1", "status": "completed"}]', b'{"jobs": 5}', b'{"jobs": [', b'{"jobs": [1, "x", null]}'],
    ids=["a list", "jobs not a list", "cut short", "items not objects"],
)
async def test_the_triggers_poll_past_a_hostile_list(api: Loopback, hostile: bytes) -> None:
    served: list[int] = []

    def answer(exchange: Exchange) -> None:
        served.append(1)
        if len(served) == 1:
            exchange.send(200, hostile)
        else:
            exchange.json({"jobs": [_job_answer("job-1", "completed"), _job_answer("job-2", "completed")]})

    api.routes[LIST_PATH] = answer
    # Items that are not objects leave both jobs out of the list: each is then read on its own.
    for job_id in ("job-1", "job-2"):
        api.routes[f"{LIST_PATH}/{job_id}"] = lambda exchange, job_id=job_id: exchange.json(
            _job_answer(job_id, "running")
        )

    results = await _all_events([_trigger(ids) for ids in _loopback_ids("job-1", "job-2")])

    assert [(len(events), events[0]["status"]) for events in results] == [(1, "success"), (1, "success")]
    assert _count(api, LIST_PATH) == 2


async def test_a_rate_limited_list_holds_the_whole_poller_back(api: Loopback) -> None:
    api.routes[LIST_PATH] = lambda exchange: exchange.send(
        429, b'{"error": {"code": "rate_limited", "message": "slow down"}}', {"Retry-After": "0.3"}
    )
    window = 0.8

    results = await _all_events(
        [
            _trigger(ids, poll_interval=0.02, deadline=time.time() + window)
            for ids in _loopback_ids("j1", "j2", "j3")
        ]
    )

    assert [(len(events), events[0]["status"]) for events in results] == [(1, "timeout")] * 3
    assert "429" in results[0][0]["message"]
    # Every 0.02 s the three waits would send a read each (about 120 here); the shared poller sends
    # one list read, then none until the Retry-After has passed: a round every 0.3 s, plus the last
    # polls at the deadline.
    assert len(api.requests) <= window / 0.3 + 3


# -- serialization ----------------------------------------------------------------------------------


def test_serialization_is_unchanged_by_batching() -> None:
    trigger = PixxelStatusTrigger(
        kind="job", ids={"workflow_id": "wf-1", "job_id": "job-1"}, poll_interval=30, deadline=1780000000.5
    )

    classpath, kwargs = trigger.serialize()

    # Byte for byte what triggers serialized before the shared poller existed: a triggerer restart
    # or an upgrade finds each wait's own ids and rebuilds the pollers from the running triggers.
    assert (classpath, json.dumps(kwargs)) == (
        "airflow_provider_pixxel.triggers.status.PixxelStatusTrigger",
        '{"kind": "job", "ids": {"workflow_id": "wf-1", "job_id": "job-1"}, "pixxel_conn_id": '
        '"pixxel_default", "poll_interval": 30.0, "deadline": 1780000000.5, "stop_on_kill": false, '
        '"project_id": null}',
    )


async def test_a_round_task_that_died_is_restarted_for_the_next_poll(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    watches = _jobs(sim, 2)
    original = SharedPoller._serve
    broken: list[int] = []

    async def serve_once_broken(self: SharedPoller, moment: float, due: list[Any]) -> None:
        if not broken:
            broken.append(1)
            raise ValueError("a bug in the first round")
        await original(self, moment, due)

    monkeypatch.setattr(SharedPoller, "_serve", serve_once_broken)

    # Bounded: without the restart, both triggers would wait for ever on a poller that stopped.
    results = await asyncio.wait_for(_all_events([_trigger(ids) for ids in watches]), 30)

    assert broken == [1]
    assert [(len(events), events[0]["status"]) for events in results] == [(1, "success"), (1, "success")]


# -- order and AOI waits: the order-item list and a bounded walk of the AOI list --------------------


async def test_stalled_order_waits_share_one_order_item_list_read_per_round(sim: Any) -> None:
    sim.state.scenarios.stall("order_item", times=10)
    with PixxelHook() as hook:
        watches = [{"order_id": place_order(sim, hook)["id"]} for _ in range(10)]
    sim.state.clear_records()
    window, interval = 0.6, 0.1

    results = await _all_events(
        [
            _trigger(ids, kind="order", poll_interval=interval, deadline=time.time() + window)
            for ids in watches
        ]
    )

    assert [(len(events), events[0]["status"]) for events in results] == [(1, "timeout")] * 10
    reads = sim.state.requests("GET")
    lists = [r for r in reads if r.path == "/v0/order-items"]
    # Unbatched, 10 waits would send 10 order reads an interval; batched, one item list read a round
    # (two rounds an interval).
    assert len(lists) <= JOB_ROUNDS * window / interval + 3
    assert {frozenset(r.query["order_ids"].split(",")) for r in lists} == {
        frozenset(w["order_id"] for w in watches)
    }
    # The item list lacks the order's payment status: each wait's last poll is the order's own read,
    # so its timeout event reports the order as a wait polling alone would.
    assert sorted(r.path for r in reads if r.path != "/v0/order-items") == sorted(
        f"/v0/orders/{w['order_id']}" for w in watches
    )
    with PixxelHook() as hook:
        for ids, (event,) in zip(watches, results, strict=True):
            assert event["detail"]["order_status"] == hook.get_order(ids["order_id"])["status"]
            assert event["detail"]["order_status"] is not None


async def test_batched_order_events_equal_the_unbatched_ones(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PixxelHook() as hook:
        sim.state.scenarios.fail("order_item", message="persistent cloud cover")
        failed = place_order(sim, hook, items=2)
        succeeded = place_order(sim, hook, items=2)
    watches = [{"order_id": failed["id"]}, {"order_id": succeeded["id"]}]
    sim.state.clear_records()

    batched = await _all_events([_trigger(ids, kind="order") for ids in watches])
    batched_reads = sorted(r.path for r in sim.state.requests("GET"))
    connection = json.loads(os.environ["AIRFLOW_CONN_PIXXEL_DEFAULT"])
    connection["extra"]["batch_polling"] = False
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))
    unbatched = await _all_events([_trigger(ids, kind="order") for ids in watches])

    assert [events[0]["status"] for events in batched] == ["failure", "success"]
    assert "persistent cloud cover" in batched[0][0]["reason"]
    # The event each task resumes with is the one a wait polling alone gets, payment status included.
    assert batched == unbatched
    assert batched[1][0]["detail"]["order_status"] == "PAID"
    # One item list read, then each finished order's own read (and the failed item's, for its reason).
    failed_item = next(item["id"] for item in failed["order_items"])
    assert batched_reads == sorted(
        [
            "/v0/order-items",
            *(f"/v0/orders/{w['order_id']}" for w in watches),
            f"/v0/order-items/{failed_item}",
        ]
    )


async def test_aoi_waits_are_read_with_one_page_of_the_aoi_list(sim: Any) -> None:
    watches = [{"aoi_id": aoi_id} for aoi_id in add_aois(sim, 5)]
    sim.state.clear_records()

    results = await _all_events([_trigger(ids, kind="aoi") for ids in watches])

    assert [(len(events), events[0]["status"]) for events in results] == [(1, "success")] * 5
    assert [r.path for r in sim.state.requests("GET")] == ["/v0/aois"]


# Per kind: its list's path, its own read's path, and how the loopback answers each.
LIST_AND_OWN_READ = {
    "order": ("/v0/order-items", "/v0/orders/{}"),
    "aoi": ("/v0/aois", "/v0/aoi/{}"),
}


def _listed(kind: str, *resource_ids: str) -> dict[str, Any]:
    """A one-page list answer in which each of ``resource_ids`` is finished."""
    if kind == "order":
        items = [{"id": f"{rid}-item", "order_id": rid, "status": "FULFILLED"} for rid in resource_ids]
        return {"order_items": items, "pagination": {"total": len(items)}}
    aois = [{"aoi_id": rid, "status": "success", "progress": 100} for rid in resource_ids]
    return {"aois": aois, "pagination": {"total": len(aois)}}


def _own(kind: str, resource_id: str) -> dict[str, Any]:
    """A finished resource as its own read answers it."""
    if kind == "order":
        return {
            "id": resource_id,
            "status": "PAID",
            "order_items": [{"id": f"{resource_id}-item", "status": "FULFILLED"}],
        }
    return {"aoi_id": resource_id, "status": "success", "progress": 100}


def _own_routes(api: Loopback, kind: str, *resource_ids: str) -> None:
    for rid in resource_ids:
        api.routes[LIST_AND_OWN_READ[kind][1].format(rid)] = lambda exchange, rid=rid: exchange.json(
            _own(kind, rid)
        )


@pytest.mark.parametrize("kind", sorted(LIST_AND_OWN_READ))
async def test_an_order_or_aoi_left_out_of_the_list_is_read_on_its_own(api: Loopback, kind: str) -> None:
    list_path, own_path = LIST_AND_OWN_READ[kind]
    api.routes[list_path] = lambda exchange: exchange.json(_listed(kind, "r-1"))
    _own_routes(api, kind, "r-1", "r-2")  # r-3 has no route: its own read answers 404

    results = await _all_events([_trigger({f"{kind}_id": rid}, kind=kind) for rid in ("r-1", "r-2", "r-3")])

    assert [events[0]["status"] for events in results] == ["success", "success", "error"]
    assert "404" in results[2][0]["message"]
    assert _count(api, list_path) == 1
    # A finished order in the list is confirmed by its own read; an AOI in the list needs none.
    assert _count(api, own_path.format("r-1")) == (1 if kind == "order" else 0)
    assert _count(api, own_path.format("r-2")) == _count(api, own_path.format("r-3")) == 1


@pytest.mark.parametrize("kind", sorted(LIST_AND_OWN_READ))
async def test_an_order_or_aoi_list_that_is_not_found_falls_back_to_own_reads(
    api: Loopback, kind: str
) -> None:
    list_path, own_path = LIST_AND_OWN_READ[kind]
    _own_routes(api, kind, "r-1", "r-2")  # no route for the list: the loopback answers 404

    results = await _all_events([_trigger({f"{kind}_id": rid}, kind=kind) for rid in ("r-1", "r-2")])

    assert [events[0]["status"] for events in results] == ["success", "success"]
    assert _count(api, list_path) == 1
    assert _count(api, own_path.format("r-1")) == _count(api, own_path.format("r-2")) == 1


@pytest.mark.parametrize("kind", sorted(LIST_AND_OWN_READ))
async def test_a_refused_key_on_an_order_or_aoi_list_is_every_waits_error(api: Loopback, kind: str) -> None:
    api.routes[LIST_AND_OWN_READ[kind][0]] = lambda exchange: exchange.json(
        {"error": {"code": "unauthorized", "message": "bad key"}}, status=401
    )

    results = await _all_events(
        [_trigger({f"{kind}_id": rid}, kind=kind, poll_interval=60) for rid in ("r-1", "r-2")]
    )

    assert [(len(events), events[0]["status"]) for events in results] == [(1, "error"), (1, "error")]
    assert all("401" in events[0]["message"] for events in results)
    assert len(api.requests) == 1


async def test_an_orders_items_are_gathered_across_pages_before_it_is_observed(api: Loopback) -> None:
    # A server that answers one item a page whatever limit is asked: o-1's items span two pages, and
    # only the second says it is still running.
    items = [
        {"id": "i-1", "order_id": "o-1", "status": "FULFILLED"},
        {"id": "i-2", "order_id": "o-1", "status": "ACTIVE"},
        {"id": "i-3", "order_id": "o-2", "status": "ACTIVE"},
    ]

    def one_item_a_page(exchange: Exchange) -> None:
        offset = int(parse_qs(exchange.seen.query).get("offset", ["0"])[0])
        exchange.json({"order_items": items[offset : offset + 1], "pagination": {"total": len(items)}})

    api.routes["/v0/order-items"] = one_item_a_page

    async with PixxelAsyncHook() as hook:
        first, second = await read_many_async(hook, "order", [{"order_id": "o-1"}, {"order_id": "o-2"}])

    assert (first.phase, first.detail["order_item_ids"]) == (Phase.RUNNING, ["i-1", "i-2"])
    assert (second.phase, second.detail["order_item_ids"]) == (Phase.RUNNING, ["i-3"])
    assert api.paths() == ["/v0/order-items"] * 3


async def test_aois_listed_as_something_else_than_objects_are_read_on_their_own(api: Loopback) -> None:
    api.routes["/v0/aois"] = lambda exchange: exchange.json(
        {"aois": [1, "r-2", None, ["r-2"], *_listed("aoi", "r-1")["aois"]], "pagination": {"total": 5}}
    )
    _own_routes(api, "aoi", "r-2")

    async with PixxelAsyncHook() as hook:
        results = await read_many_async(hook, "aoi", [{"aoi_id": "r-1"}, {"aoi_id": "r-2"}])

    assert [getattr(result, "phase", result) for result in results] == [Phase.SUCCESS, Phase.SUCCESS]
    assert api.paths() == ["/v0/aois", "/v0/aoi/r-2"]
