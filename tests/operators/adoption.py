"""What the get-or-create tests share: racing runs, and everything a task logged.

:func:`race` runs one task for several logical dates at once, their create requests sent together.

A backfill runs the days of a range in parallel; when each day's task creates the same named resource,
their create requests race. :func:`race` reproduces the worst case against one simulator: every run
goes through its own ``execute`` in its own thread, with its own hook, and the create request of each
is held until all runs have reached theirs, so every run has looked for the resource (and found none)
before the first create arrives. The simulator then lets one through and answers the others 409.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.task_runner import DictTaskStateStore, TaskRun, make_context, run_task

#: Seconds a run waits for the others at the gate, and for all to finish: a hung run fails the test.
RACE_TIMEOUT = 60.0
FIRST_DAY = datetime.datetime(2025, 3, 1, tzinfo=datetime.timezone.utc)


def race(operators: Sequence[Any], create_method: str) -> list[TaskRun]:
    """Run each operator for its own logical date in parallel, holding ``hook.<create_method>`` until
    every run has called it."""
    gate = threading.Barrier(len(operators), timeout=RACE_TIMEOUT)
    for operator in operators:
        send = getattr(operator.hook, create_method)

        def held(*args: Any, _send: Any = send, **kwargs: Any) -> Any:
            gate.wait()
            return _send(*args, **kwargs)

        setattr(operator.hook, create_method, held)
    contexts = [
        make_context(
            task_state_store=DictTaskStateStore(), logical_date=FIRST_DAY + datetime.timedelta(days=n)
        )
        for n in range(len(operators))
    ]
    with ThreadPoolExecutor(max_workers=len(operators)) as pool:
        runs = [
            pool.submit(run_task, operator, context)
            for operator, context in zip(operators, contexts, strict=True)
        ]
        return [run.result(timeout=RACE_TIMEOUT) for run in runs]


def logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """All a test's tasks logged: Airflow's task loggers write to the console, not to ``caplog``."""
    captured = capfd.readouterr()
    return caplog.text + captured.out + captured.err
