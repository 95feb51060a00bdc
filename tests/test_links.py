"""Aurora extra links: built from the ids pushed to XCom, with the base URL from the connection."""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import BaseOperatorLink

from airflow_provider_pixxel import links
from airflow_provider_pixxel.get_provider_info import get_provider_info
from airflow_provider_pixxel.links import (
    IDS_XCOM_KEY,
    PixxelAuroraDeliveryLink,
    PixxelAuroraJobLink,
    PixxelAuroraOrderLink,
)
from airflow_provider_pixxel.operators.base import PixxelResumableOperator
from airflow_provider_pixxel.operators.downloads import PixxelDownloadTaskOperator
from airflow_provider_pixxel.operators.jobs import PixxelRunJobOperator
from airflow_provider_pixxel.operators.orders import PixxelCreateOrderOperator

TI_KEY = mock.Mock(dag_id="dag", task_id="place_order", run_id="run", map_index=-1)


def _conn_env(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PIXXEL_DEFAULT",
        json.dumps({"conn_type": "pixxel", "password": "key", "extra": extra}),
    )


@mock.patch("airflow_provider_pixxel.links.XCom")
def test_order_link_from_the_pushed_ids(mock_xcom: mock.Mock, monkeypatch: pytest.MonkeyPatch) -> None:
    _conn_env(monkeypatch)
    mock_xcom.get_value.return_value = {"order_id": "o-1", "order_item_ids": "i-1,i-2"}
    operator = PixxelCreateOrderOperator(task_id="place_order", order_items=[])

    url = PixxelAuroraOrderLink().get_link(operator, ti_key=TI_KEY)

    assert url == "https://aurora.pixxel.space/orders/o-1"
    mock_xcom.get_value.assert_called_once_with(key=IDS_XCOM_KEY, ti_key=TI_KEY)


@mock.patch("airflow_provider_pixxel.links.XCom")
def test_aurora_url_extra_and_quoting(mock_xcom: mock.Mock, monkeypatch: pytest.MonkeyPatch) -> None:
    _conn_env(monkeypatch, aurora_url="https://aurora.example.test/app/")
    mock_xcom.get_value.return_value = {"workflow_id": "wf 1", "job_id": "j/2", "task_id": "t"}
    operator = PixxelDownloadTaskOperator(
        task_id="t", workflow_id="wf 1", job_id="j/2", job_task_id="t", destination="/tmp"
    )

    url = PixxelAuroraJobLink().get_link(operator, ti_key=TI_KEY)

    assert url == "https://aurora.example.test/app/workflows/wf%201/jobs/j%2F2"


@mock.patch("airflow_provider_pixxel.links.XCom")
def test_delivery_link_opens_the_first_delivery(
    mock_xcom: mock.Mock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _conn_env(monkeypatch)
    mock_xcom.get_value.return_value = {"delivery_ids": "d-1,d-2"}

    url = PixxelAuroraDeliveryLink().get_link(mock.Mock(pixxel_conn_id="pixxel_default"), ti_key=TI_KEY)

    assert url == "https://aurora.pixxel.space/deliveries/d-1"


@pytest.mark.parametrize(
    ("pushed", "extra"),
    [
        (None, {}),  # the task never got as far as creating anything
        ({"job_id": "j"}, {}),  # ids of another kind
        ({"order_id": "o"}, {"aurora_url": "javascript:alert(1)"}),  # not an http(s) base
    ],
)
@mock.patch("airflow_provider_pixxel.links.XCom")
def test_no_link_rather_than_an_error(
    mock_xcom: mock.Mock, monkeypatch: pytest.MonkeyPatch, pushed: Any, extra: dict[str, str]
) -> None:
    _conn_env(monkeypatch, **extra)
    mock_xcom.get_value.return_value = pushed
    operator = PixxelCreateOrderOperator(task_id="place_order", order_items=[])

    assert PixxelAuroraOrderLink().get_link(operator, ti_key=TI_KEY) == ""


@mock.patch("airflow_provider_pixxel.links.XCom")
def test_a_missing_connection_gives_no_link(mock_xcom: mock.Mock) -> None:
    mock_xcom.get_value.return_value = {"order_id": "o"}
    operator = PixxelCreateOrderOperator(task_id="t", order_items=[], pixxel_conn_id="no_such_connection")

    assert PixxelAuroraOrderLink().get_link(operator, ti_key=TI_KEY) == ""


def test_building_an_operator_reads_no_connection() -> None:
    with mock.patch.object(links.BaseHook, "get_connection") as get_connection:
        operator = PixxelRunJobOperator(task_id="run", workflow_id="wf")
        assert [type(link) for link in operator.operator_extra_links] == [PixxelAuroraJobLink]
    get_connection.assert_not_called()


def test_every_resource_creating_operator_has_a_listed_link() -> None:
    listed = set(get_provider_info()["extra-links"])
    for module_name in ("aoi", "catalog", "downloads", "insights", "jobs", "orders", "visualizations"):
        module = importlib.import_module(f"airflow_provider_pixxel.operators.{module_name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, PixxelResumableOperator) or cls.__module__ != module.__name__:
                continue
            if inspect.isabstract(cls) or not getattr(cls, "watch_kind", ""):
                continue
            assert cls.operator_extra_links, f"{cls.__name__} has no Aurora link"
            for link in cls.operator_extra_links:
                assert isinstance(link, BaseOperatorLink)
                assert f"{type(link).__module__}.{type(link).__name__}" in listed
