"""Catalog search (every page) and cloud deliveries (one wait per delivery) against the simulator."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelWaitTimeoutError
from airflow_provider_pixxel.operators.catalog import (
    PixxelCreateDeliveryOperator,
    PixxelSearchCatalogsOperator,
)
from tests.operators.pixxel_sim import context, fulfilled_order, recurring_item
from tests.task_runner import DictTaskStateStore, requires_task_state_store, run_task


def test_search_walks_every_page(sim):
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=3)])
    op = PixxelSearchCatalogsOperator(
        task_id="find",
        order_item_ids=order["order_item_ids"],
        page_size=2,
        datetime="2000-01-01T00:00:00Z/..",
    )

    result = run_task(op, context()).result

    assert sorted(result["catalog_ids"]) == sorted(order["catalog_ids"])
    assert result["count"] == 3
    assert len(result["item_ids"]) == 3
    bodies = [r.body for r in sim.state.requests("POST", "/v0/catalogs/search")]
    assert [(b["offset"], b["limit"]) for b in bodies] == [(0, 2), (2, 2)]
    assert all(b["order_item_ids"] == order["order_item_ids"] for b in bodies)


def test_search_with_no_match_can_fail(sim):
    op = PixxelSearchCatalogsOperator(task_id="find", ids=["no-such-catalog"], fail_if_empty=True)
    with pytest.raises(AirflowFailException, match="No catalogs match"):
        run_task(op, context())


def test_search_refuses_a_bad_bbox_before_any_request(sim):
    with pytest.raises(PixxelConfigError, match="bbox must be four numbers"):
        run_task(PixxelSearchCatalogsOperator(task_id="find", bbox=[1, 2, 3]), context())
    assert sim.state.requests() == []


def store_id(handle: Any) -> str:
    return next(iter(handle.state.stores))


def delivery_op(**kwargs: Any) -> PixxelCreateDeliveryOperator:
    kwargs.setdefault("poll_interval", 0.01)
    return PixxelCreateDeliveryOperator(task_id="deliver", **kwargs)


def test_delivery_of_catalogs_waits_on_each_delivery(sim):
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=2)])

    result = run_task(
        delivery_op(catalog_ids=order["catalog_ids"], store_id=store_id(sim), path="pixxel/"), context()
    ).result

    assert len(result["delivery_ids"]) == 2
    assert result["statuses"] == ["SUCCESS", "SUCCESS"]
    assert all(path.endswith(".zip") for path in result["target_paths"])
    (post,) = sim.state.requests("POST", "/v0/catalogs/deliveries")
    assert post.body == {
        "deliveries": [
            {"catalog_ids": order["catalog_ids"], "cloud_info": {"config": store_id(sim), "path": "pixxel/"}}
        ]
    }


def test_delivery_whose_answer_was_lost_follows_the_delivery_already_under_way(sim, monkeypatch):
    """The API made the deliveries but the answer was cut; the re-sent request gets a 409 duplicate.

    One delivery is still under way, the other finished meanwhile: both are the task's, both followed.
    """
    from airflow_provider_pixxel.simulator import FaultRule
    from tests.reliability.conftest import enable_hook_retries

    enable_hook_retries(monkeypatch, max_retries=2)
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=2)])
    sim.state.clear_records()
    sim.state.scenarios.stall("delivery")  # the first delivery is still under way when re-sent
    cut = sim.faults.add(
        FaultRule(kind="truncate", path="^/v0/catalogs/deliveries$", methods={"POST"}, times=1)
    )
    request = {"catalog_ids": order["catalog_ids"], "store_id": store_id(sim), "path": "p/"}

    result = run_task(delivery_op(wait_for_completion=False, **request), context()).result

    assert cut.injected_count == 1
    assert len(sim.state.requests("POST", "/v0/catalogs/deliveries")) == 2
    created = sorted(c.id for c in sim.state.created("delivery"))
    assert len(created) == 2, "the re-sent request delivered the catalogs a second time"
    assert sorted(result["delivery_ids"]) == created


def test_delivery_already_under_way_from_another_run_is_followed(sim):
    order = fulfilled_order(sim, [recurring_item(sim, occurrences=1)])
    sim.state.scenarios.stall("delivery")
    request = {"catalog_ids": order["catalog_ids"], "store_id": store_id(sim), "path": "p/"}
    first = run_task(delivery_op(wait_for_completion=False, **request), context()).result

    second = run_task(delivery_op(wait_for_completion=False, **request), context()).result

    assert second["delivery_ids"] == first["delivery_ids"]
    assert len(sim.state.created("delivery")) == 1


def test_a_duplicate_refusal_with_nothing_under_way_fails_as_refused(sim, monkeypatch):
    from airflow_provider_pixxel.exceptions import PixxelValidationError

    order = fulfilled_order(sim, [recurring_item(sim, occurrences=1)])
    op = delivery_op(catalog_ids=order["catalog_ids"], store_id=store_id(sim))
    refusal = PixxelValidationError(status=409, method="POST", url="u", message="conflict")
    monkeypatch.setattr(op.hook, "create_deliveries", lambda **_: (_ for _ in ()).throw(refusal))

    with pytest.raises(PixxelValidationError, match="409"):
        run_task(op, context())


@pytest.mark.parametrize("deferrable", [True, False])
def test_delivery_of_order_items_waits_until_success(slow_sim, deferrable):
    order = fulfilled_order(slow_sim, [recurring_item(slow_sim, occurrences=2)])

    run = run_task(
        delivery_op(
            order_item_ids=order["order_item_ids"], store_id=store_id(slow_sim), deferrable=deferrable
        ),
        context(),
    )

    assert run.result["statuses"] == ["SUCCESS", "SUCCESS"]
    # Deferrable: one deferral per delivery still running when its turn comes.
    assert (len(run.deferrals) >= 1) is deferrable


def test_failed_delivery_fails_the_task(sim):
    order = fulfilled_order(sim)
    sim.state.scenarios.fail("delivery", message="bucket refused the write")

    with pytest.raises(AirflowFailException, match="FAILED"):
        run_task(delivery_op(catalog_ids=order["catalog_ids"], store_id=store_id(sim)), context())


@requires_task_state_store
def test_stalled_delivery_times_out_and_a_retry_does_not_request_it_again(sim):
    order = fulfilled_order(sim)
    sim.state.scenarios.stall("delivery")
    store = DictTaskStateStore()

    for _ in range(2):
        with pytest.raises(PixxelWaitTimeoutError, match=r"delivery delivery_id=.* was still IN_PROGRESS"):
            run_task(
                delivery_op(catalog_ids=order["catalog_ids"], store_id=store_id(sim), timeout=0.05),
                context(store),
            )

    assert len(sim.state.requests("POST", "/v0/catalogs/deliveries")) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"catalog_ids": ["c"], "order_item_ids": ["o"]}, "exactly one of catalog_ids or order_item_ids"),
        ({}, "exactly one of catalog_ids or order_item_ids"),
        ({"catalog_ids": ["c"], "store_id": " "}, "store_id must be the id of a registered store"),
    ],
)
def test_bad_delivery_requests_are_refused_before_any_request(sim, kwargs, message):
    kwargs.setdefault("store_id", "store-1")
    with pytest.raises(PixxelConfigError, match=message):
        run_task(delivery_op(**kwargs), context())
    assert sim.state.requests() == []
