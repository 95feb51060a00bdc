"""Run operators and sensors in tests the way Airflow would, without a scheduler.

``run_task(op)`` calls ``execute`` with a small context; when the task defers, the trigger is
serialized and rebuilt (as the triggerer does), run to its first event, and the task resumes through
the method it named. ``task_state_store`` is a dict-backed store shared across tries, so a test can
run a task twice and check that the second try reconnects instead of creating anew.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.common.compat.sdk import TaskDeferred

try:  # Airflow 3.2+
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef]

import pytest
from airflow.providers.common.compat.sdk import AIRFLOW_V_3_3_PLUS

# Reconnecting to remote work after a retry needs task_state_store, which Airflow 3.3 introduced.
requires_task_state_store = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS,
    reason="task_state_store (reconnecting a retried task to its remote work) needs Airflow 3.3+",
)

__all__ = [
    "AirflowRescheduleException",
    "DictTaskStateStore",
    "FakeTaskInstance",
    "make_context",
    "requires_task_state_store",
    "run_task",
]


class FakeTaskInstance:
    task_id = "task"

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}
        # ResumableJobMixin tags its metrics with these.
        self.stats_tags: dict[str, str] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        # XComs must be small JSON: fail the test if a value is not.
        text = json.dumps(value)
        assert len(text) < 64 * 1024, f"XCom {key!r} is {len(text)} bytes"
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value") -> Any:
        return self.xcoms.get(key)


class DictTaskStateStore:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def set(self, key: str, value: Any) -> None:
        json.dumps(value)
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@dataclass
class TaskRun:
    result: Any
    deferrals: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)


def make_context(task_state_store: DictTaskStateStore | None = None, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"ti": FakeTaskInstance(), **extra}
    if task_state_store is not None:
        context["task_state_store"] = task_state_store
    return context


def rebuild_trigger(trigger: Any) -> Any:
    """Serialize and re-create a trigger from JSON, as the triggerer does."""
    classpath, kwargs = trigger.serialize()
    kwargs = json.loads(json.dumps(kwargs))
    module_name, _, class_name = classpath.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)(**kwargs)


async def first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("trigger ended without an event")


def run_task(op: Any, context: dict[str, Any] | None = None, max_deferrals: int = 5) -> TaskRun:
    """Execute ``op``, following deferrals through rebuilt triggers until it returns or raises."""
    context = context if context is not None else make_context()
    run = TaskRun(result=None, context=context)
    method, kwargs = op.execute, {}
    for _ in range(max_deferrals + 1):
        try:
            run.result = method(context, **kwargs)
            return run
        except TaskDeferred as deferred:
            trigger = rebuild_trigger(deferred.trigger)
            event = asyncio.run(first_event(trigger))
            run.deferrals.append({"trigger": trigger.serialize(), "event": event})
            method = getattr(op, deferred.method_name)
            kwargs = {**(deferred.kwargs or {}), "event": event}
    raise AssertionError(f"{op} deferred more than {max_deferrals} times")
