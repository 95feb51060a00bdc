"""OpenLineage facets of the Pixxel operators, with and without the openlineage provider."""

from __future__ import annotations

import builtins
import importlib.util
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_pixxel.lineage import file_dataset_name
from airflow_provider_pixxel.operators.downloads import PixxelDownloadCatalogsOperator
from airflow_provider_pixxel.operators.orders import PixxelCreateOrderOperator
from tests.operators.pixxel_sim import context, fulfilled_order, tasking_item
from tests.task_runner import run_task

needs_openlineage = pytest.mark.skipif(
    importlib.util.find_spec("airflow.providers.openlineage") is None,
    reason="the openlineage provider is not installed",
)


def _names(datasets: list[Any]) -> list[tuple[str, str]]:
    return [(dataset.namespace, dataset.name) for dataset in datasets]


@needs_openlineage
def test_order_facets_name_the_order(sim: Any) -> None:
    op = PixxelCreateOrderOperator(task_id="place_order", order_items=[tasking_item(sim)], poll_interval=0.01)
    result = run_task(op, context()).result

    lineage = op.get_openlineage_facets_on_complete(task_instance=None)

    namespace = f"pixxel://{urlsplit(sim.base_url).netloc}"
    assert _names(lineage.outputs) == [(namespace, f"order/{result['order_id']}")]
    assert lineage.inputs == []


@needs_openlineage
def test_download_facets_read_catalogs_and_write_files(sim: Any, tmp_path: Path) -> None:
    order = fulfilled_order(sim)
    op = PixxelDownloadCatalogsOperator(
        task_id="fetch", catalog_ids=order["catalog_ids"], destination=str(tmp_path), poll_interval=0.01
    )
    result = run_task(op, context()).result

    lineage = op.get_openlineage_facets_on_complete(task_instance=None)

    namespace = f"pixxel://{urlsplit(sim.base_url).netloc}"
    assert _names(lineage.inputs) == [(namespace, f"catalog/{c}") for c in order["catalog_ids"]]
    assert _names(lineage.outputs) == [("file", result["path"])]


@needs_openlineage
def test_extracted_members_are_each_an_output(sim: Any, tmp_path: Path) -> None:
    order = fulfilled_order(sim)
    op = PixxelDownloadCatalogsOperator(
        task_id="fetch",
        order_item_ids=order["order_item_ids"],
        destination=str(tmp_path),
        extract=True,
        poll_interval=0.01,
    )
    result = run_task(op, context()).result

    lineage = op.get_openlineage_facets_on_complete(task_instance=None)

    assert [name for _, name in _names(lineage.inputs)] == [
        f"order_item/{i}" for i in order["order_item_ids"]
    ]
    outputs = _names(lineage.outputs)
    assert len(outputs) == len(result["files"]) > 0
    assert all(ns == "file" and Path(name).is_file() for ns, name in outputs)


def test_no_facets_before_anything_was_created() -> None:
    op = PixxelCreateOrderOperator(task_id="place_order", order_items=[])
    assert op.get_openlineage_facets_on_complete(task_instance=None) is None


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://bucket/pixxel/a.zip", ("s3://bucket", "pixxel/a.zip")),
        ("file:///data/a.zip", ("file", "/data/a.zip")),
        ("/data/a.zip", ("file", "/data/a.zip")),
    ],
)
def test_file_dataset_names(location: str, expected: tuple[str, str]) -> None:
    assert file_dataset_name(location) == expected


def test_operators_work_without_the_openlineage_provider(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name.startswith("airflow.providers.openlineage"):
            monkeypatch.delitem(sys.modules, name)
    real_import = builtins.__import__

    def no_openlineage(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("airflow.providers.openlineage"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openlineage)
    op = PixxelCreateOrderOperator(task_id="place_order", order_items=[tasking_item(sim)], poll_interval=0.01)

    result = run_task(op, context()).result

    assert result["status"] == "success"
    assert op.get_openlineage_facets_on_complete(task_instance=None) is None
