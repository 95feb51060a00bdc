"""Both hooks check every request against the contract before sending: a contract-breaking call is refused.

Each refusal is a ``PixxelConfigError`` naming the hook method, the field and the rule (with the spec
schema that states it), and nothing reaches the server: not the mocked one, and not the simulator
over loopback, which would have refused the same body with the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook
from airflow_provider_pixxel.hooks.transport import ApiRequest
from airflow_provider_pixxel.simulator import SimulatorHandle
from airflow_provider_pixxel.simulator.seed import TD2_ID

from ..hooks.operation_cases import CASES_BY_NAME, POLYGON

TASKING_ITEM_WITHOUT_REQUIRED_FIELDS = {
    "name": "no geometry, project or use case",
    "bandset": {"bandset_id": "b"},
    "recurrence": "ONCE",
    "start_date": "2030-01-01T00:00:00Z",
    "end_date": "2030-01-08T00:00:00Z",
}
INDEX = {
    "name": "ndvi-2",
    "description": "d",
    "expression": "(b1-b2)/(b1+b2)",
    "colormap": "viridis",
    "satellite_id": "0005c5bb-0bd2-4c80-9393-4a808341c54c",
    "expression_type": "index",
}
STORE = {"name": "bucket", "type": "S3", "configs": {"bucket": "b", "region": "r"}}
SEARCH = {name: value for name, value in CASES_BY_NAME["search_images"].kwargs.items() if name != "geometry"}

# (the call, what the error must say): the four contract-breaking calls of issue #12.
BROKEN_CALLS: dict[str, tuple[Callable[[PixxelHook], Any], list[str]]] = {
    "order item without geometry, project_id, usecase": (
        lambda hook: hook.create_order(order_items=[TASKING_ITEM_WITHOUT_REQUIRED_FIELDS]),
        [
            "create_order: ",
            "order_items[0].geometry: required field missing (spec: clerk.docOriginalOrderItem)",
            "order_items[0].project_id: required field missing (spec: clerk.docOriginalOrderItem)",
            "order_items[0].usecase: required field missing (spec: clerk.docOriginalOrderItem)",
        ],
    ),
    "rescale that is not a list": (
        lambda hook: hook.create_index(rescale="0,1", **INDEX),
        ["create_index: rescale: expected array, got str (spec: atlas.IndexCreateRequest)"],
    ),
    "secrets that is not an object": (
        lambda hook: hook.create_store(secrets="AKIA/secret", **STORE),
        ["create_store: secrets: expected object, got str (spec: courier.CreateStoreRequest)"],
    ),
    "geometry that is a number": (
        lambda hook: hook.search_images(geometry=5, **SEARCH),  # type: ignore[arg-type]
        ["search_images: geometry: expected object, got int"],
    ),
}


@pytest.mark.parametrize("case", BROKEN_CALLS, ids=str)
def test_a_contract_breaking_call_is_refused_before_sending(
    hook: PixxelHook, requests_mock: Any, case: str
) -> None:
    call, expected = BROKEN_CALLS[case]
    requests_mock.register_uri("POST", "https://api.pixxel.space/v0/orders", status_code=201, json={})
    with pytest.raises(PixxelConfigError) as raised:
        call(hook)
    for text in expected:
        assert text in str(raised.value)
    assert "Nothing was sent" in str(raised.value)
    assert requests_mock.request_history == []


def test_the_secret_is_masked_even_when_its_shape_is_refused(
    hook: PixxelHook, requests_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_pixxel.hooks import pixxel as pixxel_module

    masked: list[Any] = []
    monkeypatch.setattr(pixxel_module, "mask_secret", masked.append)
    with pytest.raises(PixxelConfigError, match="secrets: expected object"):
        hook.create_store(secrets="AKIA/secret", **STORE)
    assert "AKIA/secret" in masked


def test_a_path_outside_the_api_is_refused(hook: PixxelHook, requests_mock: Any) -> None:
    with pytest.raises(PixxelConfigError, match="not an operation of the Pixxel API"):
        hook._call(ApiRequest("GET", "/v0/nowhere"))
    assert requests_mock.request_history == []


def test_a_query_parameter_breaking_the_contract_is_refused(hook: PixxelHook, requests_mock: Any) -> None:
    with pytest.raises(PixxelConfigError, match="list_aois: query parameter 'limit' must be an integer"):
        hook._call(ApiRequest("GET", "/v0/aois", params={"limit": "ten"}))
    assert requests_mock.request_history == []


def test_a_body_is_sent_exactly_where_the_operation_takes_one(hook: PixxelHook, requests_mock: Any) -> None:
    with pytest.raises(PixxelConfigError, match="create_order: a JSON body is required"):
        hook._call(ApiRequest("POST", "/v0/orders"))
    with pytest.raises(PixxelConfigError, match="list_aois: this operation takes no JSON body"):
        hook._call(ApiRequest("GET", "/v0/aois", json={"limit": 1}))
    assert requests_mock.request_history == []


def test_every_example_call_passes_the_check(hook: PixxelHook, requests_mock: Any) -> None:
    """The check refuses only what breaks the contract: the valid call of every operation goes out."""
    case = CASES_BY_NAME["create_aoi"]
    requests_mock.post("https://api.pixxel.space/v0/aois", status_code=201, json={"aoi_id": "a"})
    hook.create_aoi(*case.args, **case.kwargs)
    assert len(requests_mock.request_history) == 1


def test_refused_before_reaching_the_simulator(sim: SimulatorHandle) -> None:
    """Over loopback: the hook sends nothing, and the simulator refuses the same body in the same words."""
    hook = PixxelHook()
    item = {**TASKING_ITEM_WITHOUT_REQUIRED_FIELDS, "geometry": {"type": "FeatureCollection", "features": []}}
    with pytest.raises(PixxelConfigError, match=r"order_items\[0\]\.usecase: required field missing"):
        hook.create_order(order_items=[item])
    assert sim.state.requests(path="/v0/orders") == []

    sent_by_hand = requests.post(
        sim.url("/v0/orders"), json={"order_items": [item]}, headers=sim.headers(), timeout=10
    )
    assert sent_by_hand.status_code == 400
    assert "order_items[0].usecase: required field missing" in sent_by_hand.json()["error"]["message"]


async def test_the_async_hook_checks_too(sim: SimulatorHandle) -> None:
    hook = PixxelAsyncHook()
    with pytest.raises(PixxelConfigError, match="list_aois: query parameter 'limit' must be an integer"):
        await hook._call(ApiRequest("GET", "/v0/aois", params={"limit": "ten"}))
    assert sim.state.requests(path="/v0/aois") == []
    # The same hook and simulator answer a valid request: the refusal above is the check's, not a failure.
    assert "aois" in str(await hook._call(ApiRequest("GET", "/v0/aois", params={"limit": "1"})))


def test_a_valid_polygon_still_goes_out(sim: SimulatorHandle) -> None:
    satellites = [{"collection_id": "pixxel-td2", "satellite_id": TD2_ID}]
    answer = PixxelHook().search_images(geometry=POLYGON, **{**SEARCH, "satellites": satellites})
    assert "items" in answer
    assert len(sim.state.requests(path="/v0/search")) == 1
