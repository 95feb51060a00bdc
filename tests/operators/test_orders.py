"""PixxelCreateOrderOperator against the simulator: checks before paying, dry run, one order per task."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelWaitTimeoutError
from airflow_provider_pixxel.operators.orders import PixxelCreateOrderOperator, validate_order_item
from tests.operators.pixxel_sim import context, order_posts, placed_orders, square, tasking_item
from tests.task_runner import DictTaskStateStore, requires_task_state_store, run_task


def order_op(items: list[dict[str, Any]], **kwargs: Any) -> PixxelCreateOrderOperator:
    kwargs.setdefault("poll_interval", 0.01)
    return PixxelCreateOrderOperator(task_id="place_order", order_items=items, **kwargs)


def test_tasking_order_is_priced_then_placed_and_waited_on(sim):
    wallet_before = sim.state.wallet_balance

    run = run_task(order_op([tasking_item(sim)], max_cost=100_000, deferrable=True), context())

    result = run.result
    order = sim.state.orders[result["order_id"]]
    assert result["status"] == "success"
    assert result["order_item_ids"] == order["item_ids"]
    assert result["total_amount"] == order["total_amount"] > 0
    assert result["order_item_statuses"] == {order["item_ids"][0]: "FULFILLED"}
    assert sim.state.wallet_balance == pytest.approx(wallet_before - order["total_amount"])
    posts = sim.state.requests("POST", "/v0/orders")
    assert [bool(r.body.get("dry_run")) for r in posts] == [True, False]
    sent = posts[1].body["order_items"][0]
    assert sent["project_id"] == next(iter(sim.state.projects))
    assert sent["start_date"].endswith("T00:00:00Z")
    assert sent["geometry"]["type"] == "FeatureCollection"
    assert run.deferrals == []


def test_archive_order_item_is_accepted(sim):
    item = next(i for i in sim.state.items.values() if i["collection"].startswith("pixxel-"))
    west, south, east, north = item["bbox"]
    geometry = square(west, south, min(east - west, north - south) / 2)

    run = run_task(
        order_op([{"geometry": geometry, "usecase": "forestry", "item_ids": [item["id"]]}]), context()
    )

    assert run.result["status"] == "success"
    assert placed_orders(sim) == 1


def test_price_above_max_cost_fails_and_buys_nothing(sim):
    wallet_before = sim.state.wallet_balance

    with pytest.raises(AirflowFailException, match=r"more than max_cost=1; nothing was bought"):
        run_task(order_op([tasking_item(sim)], max_cost=1), context())

    assert sim.state.wallet_balance == wallet_before
    assert placed_orders(sim) == 0
    assert sim.state.created("order") == []
    assert [bool(r.body.get("dry_run")) for r in sim.state.requests("POST", "/v0/orders")] == [True]


def test_dry_run_refused_by_the_api_fails_without_retries(sim):
    item = tasking_item(sim, bandset={"bandset_id": "no-such-bandset"})

    with pytest.raises(
        AirflowFailException, match=r"dry run was refused; nothing was bought.*no-such-bandset"
    ):
        run_task(order_op([item]), context())
    assert placed_orders(sim) == 0


def test_dry_run_validation_errors_refuse_the_order(sim, monkeypatch):
    op = order_op([tasking_item(sim)])
    real_create = op.hook.create_order

    def create_with_errors(**kwargs: Any) -> Any:
        answer = real_create(**kwargs)
        if kwargs.get("dry_run"):
            answer["order_items"][0]["validation_errors"] = [{"geometry": ["outside the coverage area"]}]
        return answer

    monkeypatch.setattr(op.hook, "create_order", create_with_errors)

    with pytest.raises(AirflowFailException, match=r"geometry: outside the coverage area"):
        run_task(op, context())
    assert placed_orders(sim) == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"start_date": "2020-01-01", "end_date": "2020-01-05"}, r"order_items\[0\]\.start_date: .*24 h"),
        ({"bandset": "b-1"}, r"order_items\[0\]\.bandset must be \{'bandset_id'"),
        ({"recurrence": "WEEKLY"}, r"recurrence must be one of ONCE"),
        ({"usecase": ""}, r"order_items\[0\]\.usecase is required"),
        ({"bandset_id": "x"}, r"unknown fields \['bandset_id'\]"),
        ({"item_ids": ["TD2_1"]}, r"archive item\) and tasking fields"),
        ({"cloud_cover": 120}, r"cloud_cover must be a whole number from 0 to 100"),
        ({"geometry": {"type": "Point", "coordinates": [77, 12]}}, r"order_items\[0\]\.geometry"),
        (
            {
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [square()["coordinates"], square(90, 12)["coordinates"]],
                }
            },
            r"200",
        ),
    ],
)
def test_bad_order_items_are_refused_before_any_request(sim, overrides, message):
    with pytest.raises(PixxelConfigError, match=message):
        run_task(order_op([tasking_item(sim, **overrides)]), context())
    assert sim.state.requests() == []


@pytest.mark.parametrize("max_cost", [0, -5, "lots"])
def test_bad_max_cost_is_a_config_error(sim, max_cost):
    with pytest.raises(PixxelConfigError, match="max_cost must be a positive number"):
        run_task(order_op([tasking_item(sim)], max_cost=max_cost), context())
    assert sim.state.requests() == []


def test_missing_project_id_without_connection_default(sim, monkeypatch):
    with pytest.raises(PixxelConfigError, match=r"order_items\[0\]\.project_id is required"):
        validate_order_item(tasking_item(sim), 0, default_project_id=None)


@requires_task_state_store
def test_retried_task_reconnects_to_its_order_instead_of_buying_again(sim):
    sim.state.scenarios.stall("order_item")
    store = DictTaskStateStore()

    for _ in range(2):
        with pytest.raises(PixxelWaitTimeoutError, match=r"order order_id=.* was still"):
            run_task(order_op([tasking_item(sim)], timeout=0.05), context(store))

    assert placed_orders(sim) == 1
    assert len(order_posts(sim)) == 1
    assert len(sim.state.requests("POST", "/v0/orders")) == 2  # one dry run, one order
    (order_id,) = sim.state.orders
    assert store.values["pixxel_order_ids"] == {
        "order_id": order_id,
        "order_item_ids": ",".join(sim.state.orders[order_id]["item_ids"]),
    }


@requires_task_state_store
def test_retry_reconnects_even_once_the_tasking_window_has_begun(sim):
    sim.state.scenarios.stall("order_item")
    store = DictTaskStateStore()
    with pytest.raises(PixxelWaitTimeoutError):
        run_task(order_op([tasking_item(sim)], timeout=0.05), context(store))

    # Days later the same items would fail the 24 h lead-time check; the retry must not re-check them.
    later = order_op([tasking_item(sim, start_date="2020-01-01", end_date="2020-01-05")], timeout=0.05)
    with pytest.raises(PixxelWaitTimeoutError):
        run_task(later, context(store))
    assert placed_orders(sim) == 1


@requires_task_state_store
def test_retry_after_success_returns_the_same_order(sim):
    store = DictTaskStateStore()
    first = run_task(order_op([tasking_item(sim)]), context(store)).result
    second = run_task(order_op([tasking_item(sim)]), context(store)).result

    assert second["order_id"] == first["order_id"]
    assert placed_orders(sim) == 1


def test_failed_order_item_fails_with_the_remote_reason(sim):
    sim.state.scenarios.fail("order_item", message="satellite unavailable")

    with pytest.raises(AirflowFailException, match="satellite unavailable"):
        run_task(order_op([tasking_item(sim)]), context())


def test_cancelled_order_item_fails(sim):
    sim.state.scenarios.cancel("order_item")

    with pytest.raises(AirflowFailException, match="CANCELLED"):
        run_task(order_op([tasking_item(sim)]), context())


def test_partial_order_fails_unless_allowed(sim):
    sim.state.scenarios.partial("order_item", times=2)

    with pytest.raises(AirflowFailException, match="allow_partial=True"):
        run_task(order_op([tasking_item(sim)]), context())
    result = run_task(order_op([tasking_item(sim)], allow_partial=True), context()).result
    assert result["status"] == "partial"


@pytest.mark.parametrize("deferrable", [True, False])
def test_waits_until_every_item_is_done(slow_sim, deferrable):
    items = [tasking_item(slow_sim), tasking_item(slow_sim, name="field-43", geometry=square(78, 13))]

    run = run_task(order_op(items, deferrable=deferrable), context())

    assert run.result["status"] == "success"
    assert len(run.result["order_item_ids"]) == 2
    assert set(run.result["order_item_statuses"].values()) == {"FULFILLED"}
    assert len(run.deferrals) == (1 if deferrable else 0)


def test_without_waiting_returns_the_placed_order(slow_sim):
    result = run_task(order_op([tasking_item(slow_sim)], wait_for_completion=False), context()).result

    assert result["status"] == "running"
    assert result["payment_status"] == "PAID"
    assert placed_orders(slow_sim) == 1


def test_order_items_and_max_cost_are_templated():
    assert {"order_items", "max_cost"} <= set(PixxelCreateOrderOperator.template_fields)
