"""Checks shared by the example DAG tests: task outcomes, deferrals, digests and PNG files."""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.example_dags.dag_runner import EXAMPLE_DAGS, load_dag, task_states


def put_dags_folder_on_sys_path() -> None:
    """As Airflow does when it parses DAG files: the example DAGs import their shared settings module."""
    if str(EXAMPLE_DAGS) not in sys.path:
        sys.path.insert(0, str(EXAMPLE_DAGS))


put_dags_folder_on_sys_path()

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIMULATOR_PNG_SIZE = (256, 256)


def load_example_dag(file_name: str) -> Any:
    """The DAG with retries off: a failing task fails the test now, not after its retry delay."""
    dag = load_dag(file_name)
    for task in dag.tasks:
        task.retries = 0
    return dag


def set_example_connections(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resources move one status step per read, so every wait really waits; polls are milliseconds apart.

    Also the bucket credentials connection the delivery store is registered with.
    """
    sim.state.steps_per_poll = 1
    monkeypatch.setenv("PIXXEL_EXAMPLE_POLL_INTERVAL", "0.01")
    monkeypatch.setenv(
        "AIRFLOW_CONN_PIXXEL_DELIVERY_BUCKET",
        json.dumps({"conn_type": "aws", "login": "AKIAEXAMPLE", "password": "example-secret"}),
    )


def assert_every_task_succeeded(dag_run: Any) -> None:
    states = task_states(dag_run)
    assert states, "the DAG run has no task instances"
    assert set(states.values()) == {"success"}, states
    assert str(dag_run.state) == "success", states


def deferrals(sim: Any, dag_run: Any) -> int:
    """How many task instances of the run went through a deferral (their trigger ran)."""
    return sum(1 for ti in dag_run.get_task_instances() if ti.next_method is not None or ti.trigger_id)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_png(path: Path, sha256: str, size: tuple[int, int] = SIMULATOR_PNG_SIZE) -> None:
    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE), path
    assert content[12:16] == b"IHDR"
    assert struct.unpack(">II", content[16:24]) == size
    assert content.endswith(b"IEND\xaeB`\x82")
    assert hashlib.sha256(content).hexdigest() == sha256
    assert not list(path.parent.glob("*.part")), "a temporary file was left behind"
