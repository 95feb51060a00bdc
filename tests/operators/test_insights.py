"""PixxelCreateInsightsOperator and PixxelDeleteInsightsOperator against the simulator."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelWaitTimeoutError
from airflow_provider_pixxel.operators.insights import (
    PixxelCreateInsightsOperator,
    PixxelDeleteInsightsOperator,
    build_insight_input,
)
from airflow_provider_pixxel.simulator import progress
from tests.task_runner import (
    DictTaskStateStore,
    make_context,
    rebuild_trigger,
    requires_task_state_store,
    run_task,
)

BLOCK = {"name": "waterbodydetection", "version": "2.0.1"}
RASTER = {
    "stac_url": "https://stac.pixxel.space/collections/pixxel-td2/items/TD2_1",
    "asset_source": {"id": "a1", "type": "raw_mosaic"},
}
VALUES = {"input_image": RASTER, "threshold": 0.3}


def _aoi_id(sim: Any) -> str:
    return next(iter(sim.state.aois))


def _op(sim: Any, **kwargs: Any) -> PixxelCreateInsightsOperator:
    kwargs.setdefault("aoi_id", _aoi_id(sim))
    if "block_name" not in kwargs:
        kwargs.setdefault("block", BLOCK)
    if "input" not in kwargs:
        kwargs.setdefault("input_values", VALUES)
    kwargs.setdefault("poll_interval", 0.01)
    kwargs.setdefault("timeout", 10)
    return PixxelCreateInsightsOperator(task_id="insight", **kwargs)


def _context(store: DictTaskStateStore | None = None) -> dict[str, Any]:
    context = make_context(task_state_store=store if store is not None else DictTaskStateStore())
    return context


def _insight_posts(sim: Any) -> list[Any]:
    return sim.state.requests("POST", "/v0/aoi/*/insights")


@pytest.mark.parametrize("deferrable", [True, False])
def test_builds_input_prices_and_runs_the_insight(sim: Any, deferrable: bool) -> None:
    sim.state.steps_per_poll = 1

    run = run_task(
        _op(sim, max_cost=1000, name="water", metadata={"team": "gis"}, deferrable=deferrable), _context()
    )

    (created,) = sim.state.created("insight")
    assert run.result == {"aoi_id": _aoi_id(sim), "insight_id": created.id, "status": "completed"}
    assert len(run.deferrals) == (1 if deferrable else 0)
    estimate, create = _insight_posts(sim)
    assert estimate.body["estimate"] is True
    assert "estimate" not in create.body
    assert create.body["input"] == [
        {
            "format": "raster",
            "name": "input_image",
            "type": "url",
            "description": "Input satellite imagery",
            "properties": {"bands": ["B03", "B08"]},
            **RASTER,
        },
        {
            "format": "number",
            "name": "threshold",
            "type": "number",
            "description": "NDWI threshold",
            "value": "0.3",
        },
    ]
    assert created.resource["metadata"] == {"team": "gis"}
    assert sim.state.requests("GET", "/v0/blocks/waterbodydetection/versions/2.0.1")


@pytest.mark.parametrize("rendered", [False, True], ids=["list", "json-text"])
def test_block_name_and_version_with_a_ready_input(sim: Any, rendered: bool) -> None:
    """``rendered``: the input as a template renders it without native objects, JSON text."""
    ready = build_insight_input(
        {
            "spec": {
                "name": "b",
                "version": "1",
                "inputs": [
                    {"name": "input_image", "format": "raster", "type": "url"},
                    {"name": "threshold", "format": "number", "type": "number"},
                ],
            }
        },
        VALUES,
    )

    run = run_task(
        _op(
            sim,
            block_name=BLOCK["name"],
            block_version=BLOCK["version"],
            input=json.dumps(ready) if rendered else ready,
        ),
        _context(),
    )

    assert run.result["status"] == "completed"
    assert sim.state.requests("GET", "/v0/blocks/*") == []


def test_a_price_above_max_cost_runs_nothing(sim: Any) -> None:
    with pytest.raises(AirflowFailException, match=r"more than max_cost=1; it was not run"):
        run_task(_op(sim, max_cost=1), _context())

    assert sim.state.created("insight") == []
    assert [p.body["estimate"] for p in _insight_posts(sim)] == [True]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_cost": 0}, "max_cost must be a positive number"),
        ({"aoi_id": ""}, "aoi_id is required"),
        ({"block": {"name": "x"}}, "block version is required"),
        ({"block_name": "x", "block_version": "1", "block": BLOCK}, "not both"),
        ({"input": [{"name": "threshold", "value": "1"}], "input_values": VALUES}, "exactly one of input"),
        ({"input": "threshold=1"}, "input must be a non-empty list"),
        ({"input_values": {}}, "input_values must be a non-empty dict"),
        ({"metadata": {"run": 3}}, "metadata must be a dict of strings"),
        ({"poll_interval": 0}, "poll_interval must be a positive"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(sim: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        run_task(_op(sim, **kwargs), _context())

    assert sim.state.requests() == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"input_image": RASTER}, "no value for threshold"),
        ({**VALUES, "treshold": 1}, "unknown input\\(s\\) treshold"),
        ({**VALUES, "input_image": {"url": "s3://x"}}, "may only hold asset_source, stac_url, value"),
        ({**VALUES, "threshold": [1]}, "must be a string, number, boolean or date"),
    ],
)
def test_input_values_must_match_the_block(sim: Any, values: dict[str, Any], message: str) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        run_task(_op(sim, input_values=values), _context())

    assert _insight_posts(sim) == []


def test_build_insight_input_converts_values_to_strings() -> None:
    block = {
        "blocks": [
            {
                "spec": {
                    "name": "crop",
                    "version": "1",
                    "inputs": [
                        {"name": "start_date", "format": "date", "type": "string"},
                        {"name": "enabled", "format": "boolean", "type": "boolean"},
                    ],
                }
            }
        ]
    }

    built = build_insight_input(block, {"start_date": date(2024, 1, 1), "enabled": True})

    assert [entry["value"] for entry in built] == ["2024-01-01", "true"]
    # A date-time is written as the provider writes every instant: RFC 3339 in UTC.
    paris_noon = pendulum.datetime(2024, 1, 1, 12, tz="Europe/Paris")
    built = build_insight_input(block, {"start_date": paris_noon, "enabled": False})
    assert [entry["value"] for entry in built] == ["2024-01-01T11:00:00Z", "false"]


@pytest.mark.parametrize("deferrable", [True, False])
def test_a_failed_insight_names_its_error(sim: Any, deferrable: bool) -> None:
    sim.state.steps_per_poll = 1
    sim.state.scenarios.fail("insight", message="no valid pixels")

    with pytest.raises(AirflowFailException, match="err_msg=no valid pixels"):
        run_task(_op(sim, deferrable=deferrable), _context())


def test_a_partial_insight_fails_unless_allowed(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The simulator has no partial outcome for insights; the statuses table knows "partial_success".
    real_view = progress.insight_view

    def partial_view(state: Any, insight: dict[str, Any]) -> dict[str, Any]:
        view = real_view(state, insight)
        view["status"] = "partial_success" if view["status"] == "completed" else view["status"]
        return view

    monkeypatch.setattr(progress, "insight_view", partial_view)

    with pytest.raises(AirflowFailException, match="allow_partial=True"):
        run_task(_op(sim), _context())
    assert run_task(_op(sim, allow_partial=True), _context()).result["status"] == "partial_success"


@pytest.mark.parametrize("deferrable", [True, False])
def test_timeout_is_retryable(sim: Any, deferrable: bool) -> None:
    sim.state.scenarios.stall("insight")

    with pytest.raises(PixxelWaitTimeoutError, match=r"insight .* was still running"):
        run_task(_op(sim, deferrable=deferrable, timeout=0.2, poll_interval=0.05), _context())


@requires_task_state_store
def test_running_twice_creates_one_insight(sim: Any) -> None:
    store = DictTaskStateStore()

    first = run_task(_op(sim), _context(store))
    second = run_task(_op(sim), _context(store))

    assert second.result == first.result
    assert len(sim.state.created("insight")) == 1


def _deleted(sim: Any) -> list[str]:
    return [i["id"] for i in sim.state.insights.values() if i.get("deleted_at")]


@pytest.mark.parametrize("stop_on_kill", [True, False])
def test_killing_a_waiting_task_deletes_the_insight(sim: Any, stop_on_kill: bool) -> None:
    sim.state.scenarios.stall("insight")
    op = _op(sim, stop_on_kill=stop_on_kill, timeout=0.1)
    with pytest.raises(PixxelWaitTimeoutError):
        run_task(op, _context())

    op.on_kill()

    (created,) = sim.state.created("insight")
    assert _deleted(sim) == ([created.id] if stop_on_kill else [])


@pytest.mark.parametrize("stop_on_kill", [True, False])
async def test_killing_a_deferred_task_deletes_the_insight(sim: Any, stop_on_kill: bool) -> None:
    sim.state.scenarios.stall("insight")
    op = _op(sim, stop_on_kill=stop_on_kill, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(_context())

    await rebuild_trigger(deferred.value.trigger).on_kill()

    (created,) = sim.state.created("insight")
    assert _deleted(sim) == ([created.id] if stop_on_kill else [])


def test_delete_operator(sim: Any) -> None:
    run = run_task(_op(sim), _context())
    ids = {"aoi_id": run.result["aoi_id"], "insight_id": run.result["insight_id"]}

    deleted = run_task(PixxelDeleteInsightsOperator(task_id="delete", **ids))

    assert deleted.result == {**ids, "deleted": True}
    assert _deleted(sim) == [ids["insight_id"]]
    (request,) = sim.state.requests("DELETE")
    assert request.query["project_id"] == next(iter(sim.state.projects))


def test_delete_operator_refuses_missing_ids(sim: Any) -> None:
    with pytest.raises(PixxelConfigError, match="insight_id is required"):
        run_task(PixxelDeleteInsightsOperator(task_id="delete", aoi_id=_aoi_id(sim), insight_id=" "))

    assert sim.state.requests() == []


def test_template_fields_cover_every_request_field() -> None:
    fields = set(PixxelCreateInsightsOperator.template_fields)
    assert {
        "aoi_id",
        "block",
        "block_name",
        "block_version",
        "input",
        "input_values",
        "name",
        "project_id",
        "metadata",
        "max_cost",
    } <= fields
    assert {"aoi_id", "insight_id", "project_id"} <= set(PixxelDeleteInsightsOperator.template_fields)
