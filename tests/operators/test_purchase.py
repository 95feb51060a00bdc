"""The spend budget across runs and the ``pixxel_dry_run`` switch, for orders, jobs and insights.

Everything runs against the simulator over loopback HTTP: the spend a budget is checked against is
what the simulator lists (order items, jobs, insights), and what was bought is the simulator's ledger.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.hooks.spend import (
    Attribution,
    attribution_from_metadata,
    attribution_from_name,
)
from airflow_provider_pixxel.operators.insights import PixxelCreateInsightsOperator
from airflow_provider_pixxel.operators.jobs import PixxelRunJobOperator
from airflow_provider_pixxel.operators.orders import PixxelCreateOrderOperator, validate_order_item
from airflow_provider_pixxel.operators.purchase import PRICE_XCOM_KEY, PixxelPurchaseMixin
from tests.operators.pixxel_sim import order_posts, tasking_item
from tests.task_runner import DictTaskStateStore, make_context, requires_task_state_store, run_task

INSIGHT_BLOCK = {"name": "waterbodydetection", "version": "2.0.1"}
INSIGHT_VALUES = {
    "input_image": {
        "stac_url": "https://stac.pixxel.space/collections/pixxel-td2/items/TD2_1",
        "asset_source": {"id": "a1", "type": "raw_mosaic"},
    },
    "threshold": 0.3,
}


@pytest.fixture(autouse=True)
def _simulator_at_the_real_time(sim: Any) -> None:
    """Budget periods are the current UTC day/week/month: the simulator's clock (a fixed date in
    2026 by default) is set to now, so what it records falls in the period the operator checks."""
    sim.state.clock.set(time.time())


def run_context(
    *,
    dag_id: str = "buyer",
    run_id: str = "manual__2026-12-01",
    conf: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    store: DictTaskStateStore | None = None,
) -> dict[str, Any]:
    """A task context of one DAG run, as a worker gives it (what attribution and the switch read)."""
    return make_context(
        task_state_store=store if store is not None else DictTaskStateStore(),
        run_id=run_id,
        dag_run=SimpleNamespace(dag_id=dag_id, run_id=run_id, conf=conf or {}),
        params=params or {},
    )


def order_op(sim: Any, **kwargs: Any) -> PixxelCreateOrderOperator:
    kwargs.setdefault("poll_interval", 0.01)
    return PixxelCreateOrderOperator(task_id="place_order", order_items=[tasking_item(sim)], **kwargs)


def order_price(sim: Any) -> float:
    """What one order of ``tasking_item`` costs, from a dry run (charges nothing)."""
    item = validate_order_item(tasking_item(sim), 0, default_project_id=next(iter(sim.state.projects)))
    return float(PixxelHook().create_order(order_items=[item], dry_run=True)["total_amount"])


def job_op(sim: Any, **kwargs: Any) -> PixxelRunJobOperator:
    workflow = next(iter(sim.state.workflows.values()))
    kwargs.setdefault("poll_interval", 0.01)
    return PixxelRunJobOperator(task_id="run_job", workflow_id=workflow["id"], **kwargs)


def insight_op(sim: Any, **kwargs: Any) -> PixxelCreateInsightsOperator:
    kwargs.setdefault("poll_interval", 0.01)
    kwargs.setdefault("timeout", 10)
    return PixxelCreateInsightsOperator(
        task_id="insight",
        aoi_id=next(iter(sim.state.aois)),
        block=INSIGHT_BLOCK,
        input_values=INSIGHT_VALUES,
        **kwargs,
    )


def share_a_budget(sim: Any, monkeypatch: pytest.MonkeyPatch, **extras: Any) -> None:
    connection = {
        "conn_type": "pixxel",
        "host": sim.base_url,
        "password": sim.api_key,
        "extra": {"project_id": next(iter(sim.state.projects)), "max_retries": 0, **extras},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))


def tokens(amount: float) -> str:
    return f"{amount:,.0f}"


# -- the budget ------------------------------------------------------------------------------------


def test_the_second_order_of_the_period_is_refused_before_any_purchase_request(sim: Any) -> None:
    price = order_price(sim)
    budget = int(price) + 1

    first = run_task(order_op(sim, budget_tokens=budget), run_context(run_id="r1")).result
    assert first["status"] == "success"
    with pytest.raises(AirflowFailException) as refused:
        run_task(order_op(sim, budget_tokens=budget), run_context(run_id="r2"))

    assert len(order_posts(sim)) == 1, "the second order was sent"
    assert len(sim.state.ledger) == 1
    message = str(refused.value)
    assert "budget exceeded; nothing was bought" in message
    assert f"spent {tokens(price)} tokens this month" in message
    assert (
        f"the order costs {tokens(price)}: {tokens(2 * price)} > budget {tokens(budget)} per month" in message
    )
    # The largest purchases of the period, by id, name the first order's item.
    (item_id,) = sim.state.orders[first["order_id"]]["item_ids"]
    assert f"Largest purchases this month: order_item {item_id}" in message


def test_two_dags_on_one_connection_share_its_budget(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    price = order_price(sim)
    share_a_budget(sim, monkeypatch, budget_tokens=int(price) + 1, budget_period="week")

    run_task(order_op(sim), run_context(dag_id="dag_a"))
    with pytest.raises(AirflowFailException) as refused:
        run_task(order_op(sim), run_context(dag_id="dag_b"))

    assert len(order_posts(sim)) == 1
    assert "per week (the budget_tokens extra of connection 'pixxel_default')" in str(refused.value)


def test_orders_and_jobs_count_against_one_budget(sim: Any) -> None:
    price = order_price(sim)
    workflow = next(iter(sim.state.workflows.values()))
    budget = int(price + workflow["estimated_cost"]) - 1

    run_task(order_op(sim, budget_tokens=budget), run_context())
    with pytest.raises(AirflowFailException, match=r"budget exceeded; nothing was bought") as refused:
        run_task(job_op(sim, budget_tokens=budget), run_context())

    assert sim.state.jobs == {}
    assert sim.state.requests("POST", "/v0/workflows/*/jobs") == []
    assert f"costs {tokens(workflow['estimated_cost'])}" in str(refused.value)


def test_a_job_within_the_budget_runs(sim: Any) -> None:
    workflow = next(iter(sim.state.workflows.values()))

    result = run_task(job_op(sim, budget_tokens=workflow["estimated_cost"]), run_context()).result

    assert result["job_id"] in sim.state.jobs
    assert [entry.kind for entry in sim.state.ledger] == ["job"]


def test_an_insight_beyond_the_budget_is_not_run(sim: Any) -> None:
    run_task(insight_op(sim, name="first"), run_context(run_id="r1"))
    (spent,) = sim.state.ledger

    with pytest.raises(AirflowFailException, match=r"budget exceeded") as refused:
        run_task(
            insight_op(sim, name="second", budget_tokens=int(spent.amount) + 1), run_context(run_id="r2")
        )

    assert len(sim.state.insights) == 1
    assert f"Largest purchases this month: insight {spent.resource_id} (first" in str(refused.value)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"budget_tokens": 100, "budget_period": "year"}, r"budget_period must be one of day, week, month"),
        ({"budget_period": "fortnight"}, r"budget_period must be one of day, week, month"),
        ({"budget_tokens": 0}, r"budget_tokens must be a whole number of 1 or more"),
        ({"budget_tokens": "plenty"}, r"budget_tokens must be a whole number"),
        ({"budget_tokens": 99.5}, r"budget_tokens must be a whole number"),
    ],
)
@pytest.mark.parametrize("build", [order_op, job_op, insight_op], ids=["order", "job", "insight"])
def test_bad_budget_arguments_are_refused_before_any_request(
    sim: Any, build: Any, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        run_task(build(sim, **arguments), run_context())

    assert sim.state.requests() == []


def test_a_bad_connection_budget_names_the_connection(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    share_a_budget(sim, monkeypatch, budget_tokens="lots")

    with pytest.raises(PixxelConfigError, match=r"Connection 'pixxel_default' extra: budget_tokens must be"):
        run_task(order_op(sim), run_context())

    assert sim.state.requests() == []


def test_a_templated_budget_is_accepted(sim: Any) -> None:
    run_task(order_op(sim, budget_tokens="1000000", budget_period="Day"), run_context())

    assert len(sim.state.orders) == 1


class WorkerKilled(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the task catches it."""


@requires_task_state_store
def test_a_retry_after_its_own_purchase_is_not_refused_for_it(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first try bought the job and died before storing its id; the retry adopts it, counted once."""
    workflow = next(iter(sim.state.workflows.values()))
    store = DictTaskStateStore()
    first = job_op(sim, budget_tokens=workflow["estimated_cost"])
    real_create = first.hook.create_job

    def create_then_die(*args: Any, **kwargs: Any) -> Any:
        real_create(*args, **kwargs)
        raise WorkerKilled

    monkeypatch.setattr(first.hook, "create_job", create_then_die)
    with pytest.raises(WorkerKilled):
        run_task(first, run_context(store=store))
    assert len(sim.state.jobs) == 1
    assert "pixxel_pending_creation" in store.values

    # The project has now spent the whole budget on this very job: counting it again would refuse it.
    result = run_task(job_op(sim, budget_tokens=workflow["estimated_cost"]), run_context(store=store)).result

    (job_id,) = sim.state.jobs
    assert result["job_id"] == job_id
    assert len(sim.state.requests("POST", "/v0/workflows/*/jobs")) == 1


# -- concurrency: what a one-slot pool makes exact, and the bound without it ------------------------


def _buy_concurrently(sim: Any, runs: int, budget: int, gate: Any) -> list[str]:
    def one_run(index: int) -> str:
        operator = order_op(sim, budget_tokens=budget)
        try:
            with gate:
                run_task(operator, run_context(run_id=f"scheduled__day{index}"))
        except AirflowFailException:
            return "refused"
        return "bought"

    with ThreadPoolExecutor(max_workers=runs) as pool:
        return list(pool.map(one_run, range(runs)))


def test_with_purchases_serialized_five_runs_buy_exactly_what_the_budget_allows(sim: Any) -> None:
    """A one-slot pool runs one purchase task at a time; a lock gives the same order here."""
    price = order_price(sim)
    budget = int(2 * price) + 1

    outcomes = _buy_concurrently(sim, 5, budget, threading.Lock())

    assert sorted(outcomes) == ["bought"] * 2 + ["refused"] * 3
    assert len(sim.state.orders) == 2
    assert sim.state.spent() <= budget


def test_without_a_pool_concurrent_checks_overshoot_by_at_most_the_concurrent_purchases(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst case: all five check before any buys. Each saw room for itself, so the overshoot is
    below the price of the purchases that ran at the same time."""
    price = order_price(sim)
    budget = int(2 * price) + 1
    runs = 5
    everyone_checked = threading.Barrier(runs, timeout=60)
    real_check = PixxelPurchaseMixin.before_purchase

    def check_then_wait(self: Any, *args: Any, **kwargs: Any) -> None:
        real_check(self, *args, **kwargs)
        everyone_checked.wait()

    monkeypatch.setattr(PixxelPurchaseMixin, "before_purchase", check_then_wait)

    outcomes = _buy_concurrently(sim, runs, budget, contextlib.nullcontext())

    assert outcomes == ["bought"] * runs
    spent = sim.state.spent()
    assert spent == pytest.approx(runs * price)
    assert budget < spent <= budget + (runs - 1) * price


# -- pricing without buying --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [{"conf": {"pixxel_dry_run": True}}, {"params": {"pixxel_dry_run": "true"}}],
    ids=["conf", "params"],
)
def test_the_dry_run_switch_prices_the_order_and_buys_nothing(sim: Any, where: dict[str, Any]) -> None:
    price = order_price(sim)
    context = run_context(**where)

    with pytest.raises(
        AirflowSkipException, match=rf"pixxel_dry_run is on: the order is priced at {tokens(price)}"
    ):
        run_task(order_op(sim, budget_tokens=1), context)

    assert order_posts(sim) == []
    assert sim.state.ledger == []
    pushed = context["ti"].xcoms[PRICE_XCOM_KEY]
    assert pushed["dry_run"] is True
    assert pushed["price"] == price


def test_the_dry_run_switch_covers_jobs_and_insights(sim: Any) -> None:
    workflow = next(iter(sim.state.workflows.values()))
    for operator in (job_op(sim), insight_op(sim)):
        context = run_context(conf={"pixxel_dry_run": True})
        with pytest.raises(AirflowSkipException):
            run_task(operator, context)
        assert context["ti"].xcoms[PRICE_XCOM_KEY]["price"] > 0

    assert sim.state.jobs == {}
    assert sim.state.insights == {}
    assert sim.state.ledger == []
    assert workflow["estimated_cost"] > 0


def test_a_switch_that_is_not_a_boolean_is_refused(sim: Any) -> None:
    with pytest.raises(PixxelConfigError, match=r"dag_run.conf\['pixxel_dry_run'\] must be true or false"):
        run_task(order_op(sim), run_context(conf={"pixxel_dry_run": "maybe"}))

    assert order_posts(sim) == []


def test_a_real_run_pushes_its_price_too(sim: Any) -> None:
    context = run_context(conf={"pixxel_dry_run": False})

    run_task(order_op(sim), context)

    assert context["ti"].xcoms[PRICE_XCOM_KEY]["dry_run"] is False
    assert len(sim.state.orders) == 1


# -- attribution ------------------------------------------------------------------------------------


def test_orders_and_insights_record_the_task_that_bought_them(sim: Any) -> None:
    run_task(order_op(sim), run_context(dag_id="farms", run_id="scheduled__2026-12-01T00:00:00+00:00"))
    run_task(insight_op(sim, metadata={"team": "gis"}), run_context(dag_id="water", run_id="manual__1"))

    (item,) = sim.state.order_items.values()
    assert item["name"] == "field-42 @airflow:farms/place_order/scheduled__2026-12-01T00:00:00+00:00"
    assert attribution_from_name(item["name"]) == Attribution(
        "farms", "place_order", "scheduled__2026-12-01T00:00:00+00:00"
    )
    (insight,) = sim.state.insights.values()
    assert insight["metadata"]["team"] == "gis"
    assert attribution_from_metadata(insight["metadata"]) == Attribution("water", "insight", "manual__1")


def test_a_long_run_id_is_hashed_and_a_full_name_is_left_alone(sim: Any, capsys: Any) -> None:
    long_run = "manual__" + "x" * 80
    run_task(order_op(sim), run_context(run_id=long_run))
    full_name = "n" * 100
    operator = PixxelCreateOrderOperator(
        task_id="place_order", order_items=[tasking_item(sim, name=full_name)], poll_interval=0.01
    )
    run_task(operator, run_context(run_id="r2"))

    first, second = sim.state.order_items.values()
    assert len(first["name"]) <= 100
    assert first["name"].startswith("field-42 @airflow:buyer/place_order/#")
    assert second["name"] == full_name
    assert "leaves no room for the @airflow" in capsys.readouterr().out


def test_the_documented_budget_example_buys_within_its_budget(sim: Any) -> None:
    order_items = [tasking_item(sim)]
    # [START howto_budget_operator]
    place_order = PixxelCreateOrderOperator(
        task_id="place_order",
        order_items=order_items,
        max_cost=5_000,  # this order
        budget_tokens=50_000,  # everything the project buys this month, this order included
        budget_period="month",  # or "day", "week" (UTC calendar periods)
        pool="pixxel_purchases",  # one slot: the check and the purchase of two runs never interleave
    )
    # [END howto_budget_operator]
    place_order.poll_interval = 0.01
    context = run_context()

    result = run_task(place_order, context).result

    assert result["status"] == "success"
    assert context["ti"].xcoms[PRICE_XCOM_KEY]["price"] == result["total_amount"]
    assert sim.state.spent() == result["total_amount"]
