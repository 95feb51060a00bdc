"""Helpers of the tests of example DAGs 5-7: fail fast, read a task's XCom, and asset-triggered runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest


def no_retries(dag: Any) -> None:
    """A failing task fails the test at once instead of dag.test() sitting out the DAG's retry delay."""
    for task in dag.tasks:
        task.retries = 0


def xcom(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    """The return value a task of ``dag_run`` pushed."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(
            select(XComModel.value).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.map_index == map_index,
                XComModel.key == "return_value",
            )
        )
    return json.loads(value) if isinstance(value, str) else value


def asset_triggered_runs(
    monkeypatch: pytest.MonkeyPatch, asset_name: str, payloads: Sequence[dict[str, Any]]
) -> None:
    """Make ``dag.test()`` create its run the way the scheduler creates an asset-triggered one.

    The triggerer turns each event of an asset watcher into an AssetEvent with
    ``extra={"from_trigger": True, "payload": ...}`` (``Trigger.submit_event``); the scheduler then
    creates an ``ASSET_TRIGGERED`` run that consumes the queued events, which tasks read as
    ``triggering_asset_events``. ``dag.test()`` always makes a manual run, so right after it does, the
    same records are written for it: one AssetEvent per payload through ``AssetManager``, consumed by
    the run.
    """
    from airflow.assets.manager import AssetManager
    from airflow.models import dagrun as dagrun_module
    from airflow.models.asset import AssetModel
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    create_run = dagrun_module.get_or_create_dagrun

    def create_asset_triggered_run(**kwargs: Any) -> Any:
        session = kwargs["session"]
        dag_run = create_run(**kwargs)
        asset = session.scalar(select(AssetModel).where(AssetModel.name == asset_name))
        assert asset is not None, f"asset {asset_name!r} is not in the metadata DB"
        events = [
            AssetManager.register_asset_change(
                asset=asset, extra={"from_trigger": True, "payload": payload}, session=session
            )
            for payload in payloads
        ]
        dag_run.run_type = DagRunType.ASSET_TRIGGERED
        dag_run.triggered_by = DagRunTriggeredByType.ASSET
        dag_run.consumed_asset_events.extend(event for event in events if event is not None)
        session.commit()
        return dag_run

    monkeypatch.setattr(dagrun_module, "get_or_create_dagrun", create_asset_triggered_run)
