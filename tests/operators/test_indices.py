"""The index operator against the simulator over loopback HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.operators.indices import PixxelCreateIndexOperator
from airflow_provider_pixxel.simulator.seed import SENTINEL2_ID
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.operators import imagery
from tests.operators.adoption import race
from tests.operators.imagery import (
    api_requests,
)
from tests.task_runner import run_task

sim = imagery.sim  # the fixture: a fresh simulator behind pixxel_default

# -- create index --------------------------------------------------------------------------------------


def index_operator(**overrides: Any) -> PixxelCreateIndexOperator:
    arguments: dict[str, Any] = {
        "task_id": "index",
        "name": "red-edge",
        "description": "Red edge ratio",
        "expression": "(B08-B05)/(B08+B05)",
        "expression_type": "index",
        "rescale": [-1, 1],
        "colormap": "rdylgn",
        "satellite_id": SENTINEL2_ID,
        **overrides,
    }
    return PixxelCreateIndexOperator(**arguments)


def test_create_index_returns_the_new_id(sim: SimulatorHandle) -> None:
    index_id = run_task(index_operator()).result

    assert sim.state.indices[index_id]["name"] == "red-edge"


def test_create_index_duplicate_name_fails_clearly_or_is_reused(sim: SimulatorHandle) -> None:
    ndvi = next(index for index in sim.state.indices.values() if index["name"] == "NDVI")
    duplicate = {"name": "NDVI", "expression": "(B08 - B04) / (B08 + B04)"}

    with pytest.raises(AirflowFailException, match=f"already exists \\(id {ndvi['id']}\\).*reuse_existing"):
        run_task(index_operator(**duplicate))
    assert run_task(index_operator(**duplicate, reuse_existing=True)).result == ndvi["id"]
    with pytest.raises(AirflowFailException, match="differs"):
        run_task(index_operator(name="NDVI", expression="B08/B04", reuse_existing=True))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"expression_type": "ratio"}, "expression_type must be one of"),
        ({"rescale": [1, 1]}, "rescale min must be below max"),
        ({"rescale": [0, 0.5]}, "whole numbers"),
        ({"expression": ""}, "expression must be a non-empty string"),
    ],
)
def test_create_index_refuses_bad_input_before_any_request(
    sim: SimulatorHandle, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        run_task(index_operator(**overrides))
    assert api_requests(sim) == []


def test_runs_racing_to_create_the_same_index_end_with_one(sim: SimulatorHandle) -> None:
    runs = race([index_operator(reuse_existing=True) for _ in range(4)], "create_index")

    (index_id,) = [i for i, index in sim.state.indices.items() if index["name"] == "red-edge"]
    assert [run.result for run in runs] == [index_id] * 4
    assert sorted(request.status for request in api_requests(sim, "POST", "/v0/indices")) == [
        201,
        409,
        409,
        409,
    ]


def test_reuse_existing_adopts_an_index_of_that_name_without_sending_a_create(sim: SimulatorHandle) -> None:
    first = run_task(index_operator()).result

    assert (
        run_task(index_operator(reuse_existing=True, expression="(B08 - B05) / (B08 + B05)")).result == first
    )
    assert len(api_requests(sim, "POST", "/v0/indices")) == 1
