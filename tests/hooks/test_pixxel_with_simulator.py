"""Both hooks against the local API simulator: real HTTP, real pagination, no mocks.

The ``pixxel_simulator``/``pixxel_connection`` fixtures come from the simulator's pytest plugin,
imported in ``conftest.py``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from airflow_provider_pixxel.exceptions import PixxelAuthError, PixxelValidationError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook
from airflow_provider_pixxel.utils.dates import visualization_date as operator_visualization_date
from tests.date_forms import documented_date_forms


@pytest.fixture
def sim_hook(pixxel_connection: str) -> PixxelHook:
    return PixxelHook(pixxel_connection)


def test_test_connection(sim_hook: PixxelHook) -> None:
    ok, message = sim_hook.test_connection()
    assert ok, message


def test_a_wrong_key_is_reported(pixxel_simulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PIXXEL_DEFAULT",
        pixxel_simulator.airflow_connection_json().replace(pixxel_simulator.api_key, "wrong-key-123456"),
    )
    hook = PixxelHook()
    ok, message = hook.test_connection()
    assert not ok
    assert "refused the API key" in message
    with pytest.raises(PixxelAuthError):
        hook.list_projects()


@pytest.mark.parametrize("page_size", [1, 2, 100])
def test_every_iterator_agrees_with_one_big_page(sim_hook: PixxelHook, page_size: int) -> None:
    aoi_id = next(sim_hook.iter_aois())["aoi_id"]
    walks = {
        "projects": (
            sim_hook.iter_projects,
            lambda: sim_hook.list_projects(page_num=1, page_size=1000)["projects"],
        ),
        "aois": (sim_hook.iter_aois, lambda: sim_hook.list_aois(limit=1000)["aois"]),
        "indices": (sim_hook.iter_indices, lambda: sim_hook.list_indices(limit=1000)["indices"]),
        "workflows": (sim_hook.iter_workflows, lambda: sim_hook.list_workflows(limit=1000)["workflows"]),
        "assets": (
            lambda **kw: sim_hook.iter_assets(aoi_id, **kw),
            lambda: sim_hook.list_assets(aoi_id, limit=1000)["assets"],
        ),
        "visualizations": (
            lambda **kw: sim_hook.iter_visualizations(aoi_id, **kw),
            lambda: sim_hook.list_visualizations(aoi_id, limit=1000)["visualization"],
        ),
        "archive": (sim_hook.iter_archive_items, lambda: sim_hook.search_archive(limit=1000)["features"]),
    }
    for name, (walk, everything) in walks.items():
        assert list(walk(page_size=page_size)) == everything(), name


def test_collection_items_iterator(sim_hook: PixxelHook) -> None:
    collection_id = sim_hook.list_collections()["collections"][0]["id"]
    everything = sim_hook.list_collection_items(collection_id, limit=1000)["features"]
    assert list(sim_hook.iter_collection_items(collection_id, page_size=2)) == everything


def test_job_flow(sim_hook: PixxelHook) -> None:
    project_id = next(sim_hook.iter_projects())["id"]
    workflow_id = next(sim_hook.iter_workflows())["id"]
    job = sim_hook.create_job(workflow_id, project_id=project_id)
    assert sim_hook.get_job(workflow_id, job["id"])["id"] == job["id"]
    assert any(listed["id"] == job["id"] for listed in sim_hook.list_jobs(workflow_id)["jobs"])


def test_api_validation_errors_are_readable(sim_hook: PixxelHook) -> None:
    aoi_id = next(sim_hook.iter_aois())["aoi_id"]
    visualization = next(sim_hook.iter_visualizations(aoi_id))
    with pytest.raises(PixxelValidationError, match="HTTP 400"):
        sim_hook.generate_index_png(
            aoi_id,
            visualization["id"],
            index_id=visualization["index_id"],
            date="1999-01-01",
            visualization_mode="dynamic",
        )


async def test_async_hook_reads(pixxel_connection: str) -> None:
    sync_hook = PixxelHook(pixxel_connection)
    aoi_id = next(sync_hook.iter_aois())["aoi_id"]
    async with PixxelAsyncHook(pixxel_connection) as hook:
        assert (await hook.get_aoi(aoi_id))["aoi_id"] == aoi_id
        assert "deliveries" in await hook.list_deliveries()


@pytest.mark.parametrize("form", list(documented_date_forms(date(2024, 5, 6))))
def test_the_hook_sends_every_date_form_the_operators_accept(
    sim_hook: PixxelHook, pixxel_simulator: Any, form: str
) -> None:
    visualization = next(iter(pixxel_simulator.state.visualizations.values()))
    wire_day = sorted(visualization["legend"])[0]
    value = documented_date_forms(datetime.strptime(wire_day, "%Y_%m_%d").date())[form]
    # The operators' own formatter, which the hook must agree with.
    assert operator_visualization_date(value) == wire_day

    png = sim_hook.generate_index_png(
        visualization["aoi_id"],
        visualization["id"],
        index_id=visualization["index_id"],
        date=value,
        visualization_mode="dynamic",
    )

    assert png.startswith(b"\x89PNG")
    (request,) = pixxel_simulator.state.requests("POST", "*/png")
    assert request.body["date"] == wire_day
