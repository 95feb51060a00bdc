"""Reading spend from the API (``hooks/spend.py``): periods, budget arguments, attribution, listings.

The listings are read from the simulator over loopback, compared with its own ledger, and from a
loopback server that answers as a careless API might (a range ignored, a date that is not one).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from airflow_provider_pixxel.exceptions import PixxelApiError, PixxelConfigError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.hooks.spend import (
    Attribution,
    attribution_from_metadata,
    attribution_from_name,
    check_budget,
    iter_purchases,
    name_with_attribution,
    order_item_amount,
    period_bounds,
    total,
)
from tests.operators.pixxel_sim import fulfilled_order, tasking_item
from tests.reliability.loopback import Exchange, loopback

UTC = datetime.timezone.utc


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        ("day", "2026-12-02T20:40:00", "2026-12-02", "2026-12-03"),
        ("week", "2026-12-02T20:40:00", "2026-11-30", "2026-12-07"),  # a Wednesday: from Monday
        ("week", "2026-11-30T00:00:00", "2026-11-30", "2026-12-07"),
        ("month", "2026-12-31T23:59:59", "2026-12-01", "2027-01-01"),
        ("month", "2027-02-14T12:00:00", "2027-02-01", "2027-03-01"),
    ],
)
def test_periods_are_utc_calendar_periods(period: str, now: str, start: str, end: str) -> None:
    assert period_bounds(period, at(now)) == (at(start), at(end))


@pytest.mark.parametrize("period", ["quarter", "Month", None])
def test_period_bounds_refuses_what_check_budget_would_not_give(period: Any) -> None:
    with pytest.raises(PixxelConfigError) as refused:
        period_bounds(period, at("2026-12-02T20:40:00"))
    assert str(refused.value) == f"budget_period must be one of day, week, month; got {period!r}"


def test_a_period_is_taken_in_utc_whatever_the_clock_zone() -> None:
    india = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    # 1 Dec 02:00 in India is still 30 Nov in UTC.
    now = datetime.datetime(2026, 12, 1, 2, 0, tzinfo=india)
    assert period_bounds("month", now) == (at("2026-11-01"), at("2026-12-01"))


@pytest.mark.parametrize(
    ("tokens", "period", "expected"),
    [
        (None, None, None),
        ("", "week", None),
        (500, None, (500, "month")),
        ("500", " Day ", (500, "day")),
        (500, "", (500, "month")),
    ],
)
def test_budget_arguments(tokens: Any, period: Any, expected: Any) -> None:
    assert check_budget(tokens, period) == expected


@pytest.mark.parametrize(
    ("tokens", "period", "message"),
    [
        (0, None, r"budget_tokens must be a whole number of 1 or more; got 0"),
        (-5, None, r"budget_tokens must be a whole number of 1 or more"),
        (True, None, r"budget_tokens must be a whole number"),
        (12.5, None, r"budget_tokens must be a whole number"),
        (
            100,
            "quarter",
            r"budget_period must be one of day, week, month \(UTC calendar periods\); got 'quarter'",
        ),
        (None, 7, r"budget_period must be one of day, week, month"),
    ],
)
def test_bad_budget_arguments_say_what_is_accepted(tokens: Any, period: Any, message: str) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        check_budget(tokens, period)


def test_attribution_round_trips_through_a_name_and_metadata() -> None:
    who = Attribution("farms", "group.place_order[3]", "scheduled__2026-12-01T00:00:00+00:00")

    name = name_with_attribution("field 42", who)
    assert name == "field 42 @airflow:farms/group.place_order[3]/scheduled__2026-12-01T00:00:00+00:00"
    assert attribution_from_name(name) == who
    assert name_with_attribution(None, who) == name.removeprefix("field 42 ")
    assert attribution_from_metadata({"team": "gis", **who.metadata()}) == who
    assert attribution_from_name("field 42") is None
    assert attribution_from_name("a@airflow:x/y/z") is None  # the mark is a word of its own
    assert attribution_from_metadata({"airflow_dag_id": "farms"}) is None


def test_a_long_run_id_is_shortened_and_a_name_without_room_gets_no_mark() -> None:
    who = Attribution("farms", "place_order", "manual__" + "x" * 120)

    shortened = name_with_attribution("field", who)
    assert shortened is not None
    assert len(shortened) <= 100
    assert attribution_from_name(shortened) == Attribution("farms", "place_order", shortened.split("/")[-1])
    assert shortened.split("/")[-1].startswith("#")
    assert name_with_attribution("n" * 95, who) is None


@pytest.mark.parametrize(
    ("item", "amount"),
    [
        ({"tokens_used": 480, "final_amount": 500, "payment_status": "PAID"}, 480),
        ({"tokens_used": 0, "final_amount": 500, "payment_status": "PAID"}, 500),
        ({"tokens_used": 0, "final_amount": 500, "payment_status": "UNPAID"}, 0),
        ({"tokens_used": 0, "final_amount": 500, "payment_status": "REFUND"}, 0),
        ({"final_amount": "lots", "payment_status": "PAID"}, 0),
    ],
)
def test_what_an_order_item_cost(item: dict[str, Any], amount: float) -> None:
    assert order_item_amount(item) == amount


# -- against the simulator -------------------------------------------------------------------------


def test_purchases_of_the_period_match_the_simulators_ledger(sim: Any) -> None:
    project = next(iter(sim.state.projects))
    last_month = at("2026-11-15T10:00:00").timestamp()
    sim.state.clock.set(last_month)
    fulfilled_order(sim, [tasking_item(sim, name="november")])
    sim.state.clock.set(at("2026-12-02T09:00:00").timestamp())
    fulfilled_order(sim, [tasking_item(sim, name="december")])
    workflow = next(iter(sim.state.workflows.values()))
    hook = PixxelHook()
    hook.create_job(workflow["id"], project_id=project)

    since, until = at("2026-12-01"), at("2027-01-01")
    purchases = list(iter_purchases(hook, [project], since, until))

    assert sorted(purchase.kind for purchase in purchases) == ["job", "order_item"]
    assert [p.label for p in purchases if p.kind == "order_item"] == ["december"]
    assert total(purchases) == pytest.approx(
        sim.state.spent(project, since="2026-12-01T00:00:00Z", until="2027-01-01T00:00:00Z")
    )
    november = list(iter_purchases(hook, [project], at("2026-11-01"), since))
    assert [p.label for p in november] == ["november"]
    assert total(november) == pytest.approx(sim.state.spent(project, until="2026-12-01T00:00:00Z"))
    # The order items were asked for with the period as the spec's range, not all fetched.
    asked = [r.query.get("created_at") for r in sim.state.requests("GET", "/v0/order-items")]
    assert "2026-12-01T00:00:00Z,2027-01-01T00:00:00Z" in asked


# -- against an API that does not do what it says ----------------------------------------------------


def _careless_api(order_items: list[dict[str, Any]]) -> Any:
    def items(exchange: Exchange) -> None:
        # Ignores created_at and project_ids: returns everything it has.
        exchange.json({"order_items": order_items, "pagination": {"total": len(order_items)}})

    def empty(key: str) -> Any:
        return lambda exchange: exchange.json({key: [], "pagination": {"total": 0}})

    return {"/v0/order-items": items, "/v0/workflows": empty("workflows"), "/v0/aois": empty("aois")}


def _hook_for(server: Any, monkeypatch: pytest.MonkeyPatch) -> PixxelHook:
    connection = {
        "conn_type": "pixxel",
        "host": server.base_url,
        "password": "key",
        "extra": {"max_retries": 0},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))
    return PixxelHook()


def test_spend_outside_the_period_is_left_out_even_when_the_api_ignores_the_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = [
        {
            "id": "old",
            "project_id": "p1",
            "tokens_used": 900,
            "created_at": "2026-11-30T23:59:59Z",
            "name": "a",
        },
        {
            "id": "new",
            "project_id": "p1",
            "tokens_used": 100,
            "created_at": "2026-12-01T00:00:00Z",
            "name": "b",
        },
        {
            "id": "other",
            "project_id": "p2",
            "tokens_used": 50,
            "created_at": "2026-12-01T08:00:00Z",
            "name": "c",
        },
    ]
    with loopback() as server:
        server.routes.update(_careless_api(listed))
        purchases = list(
            iter_purchases(_hook_for(server, monkeypatch), ["p1"], at("2026-12-01"), at("2027-01-01"))
        )

    assert [purchase.id for purchase in purchases] == ["new"]


def test_a_purchase_without_a_readable_date_stops_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = [{"id": "x", "project_id": "p1", "tokens_used": 900, "created_at": "last week", "name": "a"}]
    with loopback() as server:
        server.routes.update(_careless_api(listed))
        hook = _hook_for(server, monkeypatch)
        with pytest.raises(
            PixxelApiError, match=r"order item 'x' with created_at 'last week', which is not a date"
        ):
            list(iter_purchases(hook, ["p1"], at("2026-12-01"), at("2027-01-01")))
