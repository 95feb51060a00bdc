"""The simulator behaves like the Pixxel API: pace, scenarios, orders and wallet, recording, errors.

Every test talks to a real server on loopback with ``requests``; time only moves through a
:class:`ManualClock`, so nothing sleeps.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from airflow_provider_pixxel.simulator import FaultRule, ManualClock, SimulatorHandle, run_simulator
from airflow_provider_pixxel.simulator.seed import TD2_ID

START = 1_780_000_000.0
GEOMETRY = {
    "type": "Polygon",
    "coordinates": [[[77.5, 12.9], [77.6, 12.9], [77.6, 13.0], [77.5, 13.0], [77.5, 12.9]]],
}
FEATURES = {
    "type": "FeatureCollection",
    "features": [{"type": "Feature", "properties": {}, "geometry": GEOMETRY}],
}


class Client:
    def __init__(self, sim: SimulatorHandle) -> None:
        self.sim = sim

    def __call__(self, method: str, path: str, expect: int | None = 200, **kwargs: Any) -> Any:
        response = requests.request(
            method, self.sim.url(path), headers=self.sim.headers(), timeout=10, **kwargs
        )
        if expect is not None:
            assert response.status_code == expect, response.text
        return (
            response.json() if response.content and "json" in response.headers["content-type"] else response
        )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def stepped(clock: ManualClock) -> Iterator[tuple[SimulatorHandle, Client]]:
    """A simulator where each status step takes 10 s of the manual clock."""
    with run_simulator(speed=10, clock=clock, package_size_bytes=64 * 1024) as sim:
        yield sim, Client(sim)


@pytest.fixture
def instant(clock: ManualClock) -> Iterator[tuple[SimulatorHandle, Client]]:
    with run_simulator(speed=0, clock=clock, package_size_bytes=64 * 1024) as sim:
        yield sim, Client(sim)


def _stamp(days: float) -> str:
    return (datetime.fromtimestamp(START, timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _project(api: Client) -> str:
    return str(api("GET", "/v0/projects")["projects"][0]["id"])


def _archive_items(sim: SimulatorHandle, count: int) -> list[str]:
    items = [i for i in sim.state.items.values() if i["collection"] == "pixxel-td2"]
    lon, lat = 77.55, 12.95
    near = [
        i["id"] for i in items if i["bbox"][0] <= lon <= i["bbox"][2] and i["bbox"][1] <= lat <= i["bbox"][3]
    ]
    assert len(near) >= count
    return near[:count]


def _archive_item(api: Client, item_ids: list[str], name: str = "archive") -> dict[str, Any]:
    return {
        "project_id": _project(api),
        "usecase": "agriculture",
        "geometry": FEATURES,
        "item_ids": item_ids,
        "name": name,
    }


def _tasking_item(api: Client, **overrides: Any) -> dict[str, Any]:
    bandset_id = api("GET", "/v0/bandsets")["bandsets"][0]["id"]
    item = {
        "project_id": _project(api),
        "usecase": "agriculture",
        "geometry": FEATURES,
        "bandset": {"bandset_id": bandset_id},
        "recurrence": "ONCE",
        "start_date": _stamp(2),
        "end_date": _stamp(9),
        **overrides,
    }
    return {key: value for key, value in item.items() if value is not None}


def _run_job(api: Client) -> tuple[str, dict[str, Any]]:
    workflow = api("GET", "/v0/workflows")["workflows"][0]
    job = api("POST", f"/v0/workflows/{workflow['id']}/jobs", params={"project_id": workflow["project_id"]})
    return workflow["id"], job


# ------------------------------------------------------------------ pace


def test_stepped_job_progresses_with_the_clock(
    stepped: tuple[SimulatorHandle, Client], clock: ManualClock
) -> None:
    _, api = stepped
    workflow_id, job = _run_job(api)
    assert job["status"] == "running"
    assert job["tasks"][0]["status"] == "running"
    seen = []
    for _ in range(len(job["tasks"]) + 1):
        current = api("GET", f"/v0/workflows/{workflow_id}/jobs/{job['id']}")
        seen.append((current["status"], int(current["progress"])))
        clock.advance(10)
    assert seen[0][0] == "running"
    assert seen[-1] == ("completed", 100)
    progresses = [p for _, p in seen]
    assert progresses == sorted(progresses)
    assert len(set(progresses)) > 2
    assert all(t["status"] == "completed" for t in current["tasks"])
    assert current["finished_at"]


def test_stepped_catalog_download_has_a_url_only_on_success(
    stepped: tuple[SimulatorHandle, Client], clock: ManualClock
) -> None:
    sim, api = stepped
    order = api("POST", "/v0/orders", 201, json={"order_items": [_archive_item(api, _archive_items(sim, 1))]})
    item_id = order["order_items"][0]["id"]
    statuses = []
    for _ in range(3):
        view = api("GET", f"/v0/order-items/{item_id}")
        statuses.append((view["status"], view["tasks"][0]["status"]))
        clock.advance(10)
    assert statuses == [("ACTIVE", "SUBMITTED"), ("ACTIVE", "IN_PROGRESS"), ("FULFILLED", "FULFILLED")]
    download = api("POST", "/v0/catalogs/download", 201, json={"order_item_ids": [item_id]})
    seen = []
    for _ in range(3):
        current = api("GET", f"/v0/catalogs/download/{download['id']}")
        seen.append((current["status"], bool(current["signed_url"])))
        clock.advance(10)
    assert seen == [("created", False), ("in_progress", False), ("success", True)]
    package = requests.get(current["signed_url"], timeout=10)
    assert package.status_code == 200
    assert len(package.content) == 64 * 1024
    assert zipfile.ZipFile(io.BytesIO(package.content)).testzip() is None


def test_steps_per_poll_advances_on_reads_not_time() -> None:
    with run_simulator(steps_per_poll=1, clock=ManualClock(START)) as sim:
        api = Client(sim)
        aoi = api(
            "POST",
            "/v0/aois",
            201,
            json={
                "name": "polled",
                "description": "d",
                "satellite_id": TD2_ID,
                "provider": "pixxel",
                "project_id": _project(api),
                "geometry": GEOMETRY,
                "item_ids": _archive_items(sim, 1),
            },
        )
        statuses = [aoi["status"]] + [api("GET", f"/v0/aoi/{aoi['aoi_id']}")["status"] for _ in range(3)]
        progress = [aoi["progress"]] + [api("GET", f"/v0/aoi/{aoi['aoi_id']}")["progress"] for _ in range(1)]
    assert statuses == ["started", "running", "success", "success"]
    assert progress[0] == 0
    assert progress[-1] == 100


def test_instant_pace_is_terminal_on_the_first_read(instant: tuple[SimulatorHandle, Client]) -> None:
    _, api = instant
    workflow_id, job = _run_job(api)
    assert job["status"] == "running"
    assert api("GET", f"/v0/workflows/{workflow_id}/jobs/{job['id']}")["status"] == "completed"


def test_recurring_tasking_yields_a_catalog_per_capture_over_time(
    stepped: tuple[SimulatorHandle, Client], clock: ManualClock
) -> None:
    _, api = stepped
    item = _tasking_item(api, recurrence="MONTHLY", end_date=None, no_of_occurrences=3)
    order = api("POST", "/v0/orders", 201, json={"order_items": [item]})
    item_id = order["order_items"][0]["id"]
    assert order["order_items"][0]["type"] == "RECURRING"
    found = []
    for _ in range(6):
        page = api("POST", "/v0/catalogs/search", json={"order_item_ids": [item_id], "limit": 50})
        found.append(page["pagination"]["total"])
        clock.advance(10)
    assert found == [0, 0, 1, 2, 3, 3]
    final = api("GET", f"/v0/order-items/{item_id}")
    assert final["status"] == "FULFILLED"
    assert [t["status"] for t in final["tasks"]] == ["FULFILLED"] * 3


# ------------------------------------------------------------------ scenarios


def test_failed_job_carries_err_msg_and_failure_type(instant: tuple[SimulatorHandle, Client]) -> None:
    sim, api = instant
    sim.state.scenarios.fail("job", message="OOM in block", failure_type="ResourceExhausted")
    workflow_id, job = _run_job(api)
    failed = api("GET", f"/v0/workflows/{workflow_id}/jobs/{job['id']}")
    assert failed["status"] == "failed"
    broken = [t for t in failed["tasks"] if t["status"] == "failed"]
    assert broken[0]["err_msg"] == "OOM in block"
    assert broken[0]["failure_type"] == "ResourceExhausted"
    _, second = _run_job(api)
    assert api("GET", f"/v0/workflows/{workflow_id}/jobs/{second['id']}")["status"] == "completed"


def test_partial_order_item(instant: tuple[SimulatorHandle, Client]) -> None:
    sim, api = instant
    sim.state.scenarios.partial("order_item", match="two-scenes")
    order = api(
        "POST",
        "/v0/orders",
        201,
        json={"order_items": [_archive_item(api, _archive_items(sim, 2), "two-scenes")]},
    )
    view = api("GET", f"/v0/order-items/{order['order_items'][0]['id']}")
    assert view["status"] == "PARTIALLY_FULFILLED"
    assert sorted(t["status"] for t in view["tasks"]) == ["FAILED", "FULFILLED"]
    catalogs = api("POST", "/v0/catalogs/search", json={"order_ids": [order["id"]]})
    assert catalogs["pagination"]["total"] == 1


def test_stalled_download_never_finishes(stepped: tuple[SimulatorHandle, Client], clock: ManualClock) -> None:
    sim, api = stepped
    order = api("POST", "/v0/orders", 201, json={"order_items": [_archive_item(api, _archive_items(sim, 1))]})
    clock.advance(100)
    sim.state.scenarios.stall("catalog_download")
    download = api(
        "POST", "/v0/catalogs/download", 201, json={"order_item_ids": [order["order_items"][0]["id"]]}
    )
    for _ in range(5):
        clock.advance(1000)
        current = api("GET", f"/v0/catalogs/download/{download['id']}")
        assert current["status"] == "in_progress"
        assert current["signed_url"] == ""


def test_cancelled_order_item(instant: tuple[SimulatorHandle, Client]) -> None:
    sim, api = instant
    sim.state.scenarios.cancel("order_item")
    order = api("POST", "/v0/orders", 201, json={"order_items": [_tasking_item(api)]})
    view = api("GET", f"/v0/order-items/{order['order_items'][0]['id']}")
    assert view["status"] == "CANCELLED"
    assert {t["status"] for t in view["tasks"]} == {"CANCELLED"}
    assert view["validation_errors"]


def test_scenario_rejects_an_outcome_the_resource_cannot_have() -> None:
    with run_simulator() as sim, pytest.raises(ValueError, match="cannot end 'cancelled'"):
        sim.state.scenarios.cancel("job")


# ------------------------------------------------------------------ orders and wallet


def test_dry_run_prices_and_charges_nothing(instant: tuple[SimulatorHandle, Client]) -> None:
    sim, api = instant
    balance = sim.state.wallet_balance
    dry = api("POST", "/v0/orders", 201, json={"dry_run": True, "order_items": [_tasking_item(api)]})
    item = dry["order_items"][0]
    assert dry["total_amount"] == item["final_amount"] > 0
    assert item["base_amount"] > 0
    assert item["feasibility_status"] == "SUCCESS"
    assert dry["status"] == "UNPAID"
    assert sim.state.wallet_balance == balance
    assert sim.state.created("order") == []
    assert api("GET", "/v0/orders")["pagination"]["total"] == 0
    real = api("POST", "/v0/orders", 201, json={"order_items": [_tasking_item(api)]})
    assert real["total_amount"] == dry["total_amount"]
    assert sim.state.wallet_balance == pytest.approx(balance - real["total_amount"])
    assert len(sim.state.created("order")) == 1


def test_every_purchase_is_in_the_ledger_and_listed_with_its_cost(
    instant: tuple[SimulatorHandle, Client], clock: ManualClock
) -> None:
    """Orders and jobs are charged to the wallet and written in the ledger; the listings report the
    same amounts (``tokens_used``, ``cost``) with their ``created_at``."""
    sim, api = instant
    balance = sim.state.wallet_balance
    order = api("POST", "/v0/orders", 201, json={"order_items": [_tasking_item(api)]})
    workflow_id, job = _run_job(api)

    (item_entry, job_entry) = sim.state.ledger
    (listed_item,) = api("GET", "/v0/order-items", params={"project_ids": _project(api)})["order_items"]
    assert (item_entry.kind, item_entry.resource_id) == ("order_item", listed_item["id"])
    assert item_entry.amount == listed_item["tokens_used"] == order["total_amount"]
    (listed_job,) = api("GET", f"/v0/workflows/{workflow_id}/jobs")["jobs"]
    assert (job_entry.kind, job_entry.resource_id, job_entry.amount) == ("job", job["id"], listed_job["cost"])
    assert sim.state.wallet_balance == pytest.approx(balance - order["total_amount"] - listed_job["cost"])
    assert sim.state.spent() == pytest.approx(order["total_amount"] + listed_job["cost"])
    assert sim.state.spent(since=_stamp(1)) == 0


def test_order_items_are_listed_by_a_created_at_range(
    instant: tuple[SimulatorHandle, Client], clock: ManualClock
) -> None:
    """``created_at`` ("Created At Range") is ``start,end``: start inclusive, end exclusive."""
    _, api = instant
    first = api("POST", "/v0/orders", 201, json={"order_items": [_tasking_item(api, name="first")]})
    clock.advance(86_400)
    api(
        "POST",
        "/v0/orders",
        201,
        json={"order_items": [_tasking_item(api, name="second", start_date=_stamp(3))]},
    )

    def names(created_at: str) -> list[str]:
        found = api("GET", "/v0/order-items", params={"created_at": created_at})["order_items"]
        return sorted(item["name"] for item in found)

    assert names(f"{_stamp(0)},{_stamp(1)}") == ["first"]
    assert names(f"{_stamp(0.5)},") == ["second"]
    assert names(f",{_stamp(0.5)}") == ["first"]
    assert names(_stamp(0)) == ["first", "second"]
    assert names(f"{_stamp(1)},{_stamp(2)}") == ["second"]
    assert first["order_items"][0]["created_at"].startswith(_stamp(0)[:10])
    refused = api("GET", "/v0/order-items", 400, params={"created_at": "yesterday,today"})
    assert "created_at" in refused["error"]["message"]
    backwards = api("GET", "/v0/order-items", 400, params={"created_at": f"{_stamp(1)},{_stamp(0)}"})
    assert "ends before it starts" in backwards["error"]["message"]


def test_a_job_is_refused_when_the_wallet_is_short(instant: tuple[SimulatorHandle, Client]) -> None:
    sim, api = instant
    sim.state.wallet_balance = 1
    workflow = api("GET", "/v0/workflows")["workflows"][0]
    refused = api(
        "POST", f"/v0/workflows/{workflow['id']}/jobs", 400, params={"project_id": workflow["project_id"]}
    )
    assert "insufficient tokens: the job costs" in refused["error"]["message"]
    assert sim.state.jobs == {}
    assert sim.state.ledger == []


def test_order_refused_when_the_wallet_is_short(instant: tuple[SimulatorHandle, Client]) -> None:
    sim, api = instant
    sim.state.wallet_balance = 10
    refused = api("POST", "/v0/orders", 400, json={"order_items": [_tasking_item(api)]})
    assert "insufficient tokens" in refused["error"]["message"]
    assert sim.state.wallet_balance == 10
    assert sim.state.created("order") == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start_date": _stamp(0.5)}, "at least 24 hours"),
        ({"end_date": _stamp(1.5)}, "must be after start_date"),
        ({"bandset": {"bandset_id": "nope"}}, "does not exist"),
        ({"recurrence": "WEEKLY"}, "WEEKLY"),
        ({"usecase": None}, "usecase"),
    ],
)
def test_tasking_order_validation(
    instant: tuple[SimulatorHandle, Client], change: dict[str, Any], message: str
) -> None:
    _, api = instant
    item = _tasking_item(api, **change)
    refused = api("POST", "/v0/orders", 400, json={"order_items": [item]})
    assert message in refused["error"]["message"]


def test_catalog_search_pages_two_at_a_time_by_default(instant: tuple[SimulatorHandle, Client]) -> None:
    sim, api = instant
    order = api("POST", "/v0/orders", 201, json={"order_items": [_archive_item(api, _archive_items(sim, 3))]})
    first = api("POST", "/v0/catalogs/search", json={"order_ids": [order["id"]]})
    assert first["pagination"] == {"limit": 2, "offset": 0, "total": 3}
    assert len(first["catalogs"]) == 2
    rest = api("POST", "/v0/catalogs/search", json={"order_ids": [order["id"]], "offset": 2})
    assert len(rest["catalogs"]) == 1
    ids = {c["id"] for c in first["catalogs"] + rest["catalogs"]}
    assert len(ids) == 3


# ------------------------------------------------------------------ recording, auth, errors, faults


def test_recording_of_requests_and_created_resources(instant: tuple[SimulatorHandle, Client]) -> None:
    sim, api = instant
    assert sim.state.requests(method="POST", path="/v0/orders") == []
    api("POST", "/v0/orders", 201, json={"order_items": [_archive_item(api, _archive_items(sim, 1))]})
    posted = sim.state.requests(method="POST", path="/v0/orders")
    assert len(posted) == 1
    assert posted[0].status == 201
    assert posted[0].body["order_items"][0]["usecase"] == "agriculture"
    assert [c.kind for c in sim.state.created()] == ["order", "order_item"]
    assert sim.state.requests(path="/v0/order-items*") == []
    api(
        "POST",
        "/v0/stores",
        json={
            "name": "s",
            "type": "S3",
            "configs": {"bucket": "b", "region": "r"},
            "secrets": {"access_key_id": "AK", "secret_access_key": "very-secret"},
        },
    )
    assert "very-secret" not in repr(sim.state.requests(path="/v0/stores"))


def test_auth(instant: tuple[SimulatorHandle, Client]) -> None:
    sim, _ = instant
    missing = requests.get(sim.url("/v0/projects"), timeout=10)
    wrong = requests.get(sim.url("/v0/projects"), headers={"Authorization": "nope"}, timeout=10)
    assert missing.status_code == wrong.status_code == 403
    assert set(missing.json()["error"]) == {"code", "message", "details"}
    assert sim.api_key not in wrong.text
    assert requests.get(sim.url("/ping"), timeout=10).status_code == 200
    # Like the service, a prefixed key is refused by default (tests/simulator/test_strictness.py) ...
    prefixed = requests.get(
        sim.url("/v0/projects"), headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=10
    )
    assert prefixed.status_code == 403
    # ... and accepted by a simulator that opted in, as a deployment using a prefix would.
    with run_simulator(speed=0, accept_auth_prefix="Bearer") as prefixed_sim:
        bearer = requests.get(
            prefixed_sim.url("/v0/projects"),
            headers={"Authorization": f"Bearer {prefixed_sim.api_key}"},
            timeout=10,
        )
    assert bearer.status_code == 200


def test_bad_requests_get_the_envelope_never_422(instant: tuple[SimulatorHandle, Client]) -> None:
    sim, api = instant
    not_json = requests.post(sim.url("/v0/indices"), headers=sim.headers(), data="{oops", timeout=10)
    assert not_json.status_code == 400
    assert "not valid JSON" in not_json.json()["error"]["message"]
    missing = api("POST", "/v0/indices", 400, json={"name": "x"})
    assert "expression: required field missing" in missing["error"]["message"]
    wrong_type = api("GET", "/v0/aois", 400, params={"limit": "ten"})
    assert "'limit' must be an integer" in wrong_type["error"]["message"]
    unknown_path = api("GET", "/v0/nothing-here", 404)
    assert unknown_path["error"]["code"] == "not_found"
    bad_method = api("PATCH", "/v0/projects", 405)
    assert "not allowed" in bad_method["error"]["message"]


def test_faults_are_exposed_on_the_handle(instant: tuple[SimulatorHandle, Client]) -> None:
    sim, api = instant
    sim.faults.add(FaultRule(kind="status", status=503, path="^/v0/bandsets$", times=1))
    assert api("GET", "/v0/bandsets", 503)["error"]["code"]
    api("GET", "/v0/bandsets", 200)
    assert [r.status for r in sim.state.requests(path="/v0/bandsets")] == [503, 200]


def test_same_seed_same_workspace() -> None:
    with run_simulator(seed=7) as first, run_simulator(seed=7) as second, run_simulator(seed=8) as third:
        ids = [sorted(s.state.projects) + sorted(s.state.items) for s in (first, second, third)]
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]


@pytest.mark.parametrize(
    "start",
    ["2024-05-06T10:30:00Z", "2024-05-06T10:30:00.865Z", "2024-05-06T16:00:00+05:30", "2024-05-06T10:30:00z"],
)
def test_search_reads_every_rfc3339_form_with_the_providers_parser(
    instant: tuple[SimulatorHandle, Client], start: str
) -> None:
    _, api = instant
    body = {
        "start_date": start,
        "end_date": "2024-05-07T00:00:00Z",
        "satellites": [{"collection_id": "pixxel-td2", "satellite_id": TD2_ID}],
        "geometry": GEOMETRY,
        "limit": 5,
    }
    assert "items" in api("POST", "/v0/search", json=body)

    refused = api("POST", "/v0/search", 400, json={**body, "start_date": "2024-02-30T10:30:00Z"})
    assert "start_date" in str(refused)
