"""create_or_adopt against a loopback server answering what the simulator never does.

The simulator names the clashing visualization in its 409 answer and keeps names unique; the API's
contract promises neither (the error's ``details`` are free-form). These tests answer 409 with no
details, and list nothing or several matches, to check that nothing is adopted on a guess.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.simulator.server import connection_json
from tests.operators.test_indices import index_operator
from tests.operators.test_visualizations import create_operator
from tests.reliability.loopback import Exchange, Loopback, loopback
from tests.task_runner import DictTaskStateStore, make_context, run_task

AOI_ID = "aoi-1"
INDEX_ID = "index-1"
CONFLICT = {"error": {"code": "conflict", "message": "resource already exists"}}  # no details


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loopback]:
    with loopback() as server:
        monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", connection_json(server.base_url, "loopback-key"))
        yield server


def conflict_listing(api: Loopback, path: str, key: str, records: list[dict[str, Any]]) -> None:
    """``path`` answers every POST with a bare 409 and every GET with ``records`` as one page."""

    def answer(exchange: Exchange) -> None:
        if exchange.seen.method == "POST":
            exchange.json(CONFLICT, status=409)
        else:
            pagination = {"limit": 100, "offset": 0, "total": len(records)}
            exchange.json({key: records, "pagination": pagination})

    api.routes[path] = answer


def visualization(visualization_id: str) -> dict[str, Any]:
    return {"id": visualization_id, "aoi_id": AOI_ID, "index_id": INDEX_ID, "status": "success"}


def visualization_operator(**overrides: Any) -> Any:
    seeded = {"aoi_id": AOI_ID, "index_id": INDEX_ID}
    return create_operator(seeded, reuse_existing=True, wait_for_completion=False, **overrides)


def context() -> dict[str, Any]:
    return make_context(task_state_store=DictTaskStateStore())


def test_a_conflict_with_nothing_to_find_adopts_nothing(api: Loopback) -> None:
    conflict_listing(api, "/v0/indices", "indices", [])

    with pytest.raises(AirflowFailException, match=r"refused as a conflict .* but none is visible"):
        run_task(index_operator(reuse_existing=True))


def test_several_same_named_resources_are_not_adopted_on_a_guess(api: Loopback) -> None:
    twins = [{"id": f"index-{n}", "name": "red-edge", "expression": "(B08-B05)/(B08+B05)"} for n in (1, 2)]
    conflict_listing(api, "/v0/indices", "indices", twins)

    with pytest.raises(AirflowFailException, match=r"2 resources match .* \(index-1, index-2\)"):
        run_task(index_operator(reuse_existing=True))
    assert [seen.method for seen in api.requests] == ["GET"]  # found before any create was sent


def test_a_visualization_conflict_naming_none_adopts_the_only_one_of_the_index(api: Loopback) -> None:
    conflict_listing(api, f"/v0/aois/{AOI_ID}/visualizations", "visualization", [visualization("v-1")])

    run = run_task(visualization_operator(), context())

    assert run.result == {"aoi_id": AOI_ID, "visualization_id": "v-1", "status": None}
    assert [seen.method for seen in api.requests].count("POST") == 1


def test_a_visualization_conflict_naming_none_among_several_adopts_nothing(api: Loopback) -> None:
    listed = [visualization("v-1"), visualization("v-2")]
    conflict_listing(api, f"/v0/aois/{AOI_ID}/visualizations", "visualization", listed)

    with pytest.raises(AirflowFailException, match=r"2 resources match .* \(v-1, v-2\)") as raised:
        run_task(visualization_operator(), context())
    assert "change src_asset_ids/resolution" in str(raised.value)
