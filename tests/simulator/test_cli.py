"""``pixxel-simulator`` through the real console script: what it prints, how it stops, what it logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("pixxel-simulator")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "airflow_provider_pixxel.simulator.cli"]


@contextmanager
def running_cli(*options: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """The console script started with ``options`` and the three lines it prints first (name: value).

    It is killed after 30 s whatever happens, and on the way out if the test did not stop it.
    """
    process = subprocess.Popen(
        [*_console_script(), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    timer = threading.Timer(30, process.kill)
    timer.start()
    try:
        assert process.stdout is not None
        yield process, dict(process.stdout.readline().strip().split("=", 1) for _ in range(3))
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
        process.communicate()


def served_log(*options: str) -> str:
    """Start the console script with ``options``, send it one request, stop it; all it printed.

    uvicorn prints access lines on stdout and the rest of its log on stderr: both are returned.
    """
    with running_cli("--port", "0", "--speed", "0", *options) as (process, lines):
        assert requests.get(f"{lines['PIXXEL_SIMULATOR_URL']}/ping", timeout=10).json() == "pong"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
        assert process.returncode == 0, stderr
        return stdout + stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_its_url_and_key_then_stops_cleanly(stop_signal: signal.Signals) -> None:
    options = ("--port", "0", "--api-key", "cli-key", "--speed", "0", "--seed", "3")
    with running_cli(*options) as (process, lines):
        base_url = lines["PIXXEL_SIMULATOR_URL"]
        assert base_url.startswith("http://127.0.0.1:")
        assert lines["PIXXEL_SIMULATOR_API_KEY"] == "cli-key"
        assert json.loads(lines["AIRFLOW_CONN_PIXXEL_DEFAULT"])["host"] == base_url
        assert requests.get(f"{base_url}/ping", timeout=10).json() == "pong"
        projects = requests.get(f"{base_url}/v0/projects", headers={"Authorization": "cli-key"}, timeout=10)
        assert projects.status_code == 200
        process.send_signal(stop_signal)
        assert process.wait(timeout=20) == 0


def test_access_log_alone_logs_every_request() -> None:
    # uvicorn writes access lines at INFO: under the default level (warning) they would all be dropped.
    assert '"GET /ping HTTP/1.1" 200' in served_log("--access-log")


@pytest.mark.parametrize("level", ["warning", "error"])
def test_an_explicit_log_level_wins_over_access_log(level: str) -> None:
    assert "GET /ping" not in served_log("--access-log", "--log-level", level)


def test_without_access_log_requests_are_not_logged() -> None:
    assert "GET /ping" not in served_log()
