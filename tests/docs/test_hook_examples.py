"""The documentation's hook examples, run against the simulator over loopback HTTP.

Covers the hook page's tour of the hook and the ways to give ``PixxelHook`` its connection from a script
or notebook, outside any task: the ``AIRFLOW_CONN_PIXXEL_DEFAULT`` variable in JSON and URI form, and a
secrets backend. The pages include the code between the ``# [START ...]`` / ``# [END ...]`` markers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.task_runner import DictTaskStateStore

SCRIPT = Path(__file__).with_name("hook_script.py")


def run_script(environment: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    """``python hook_script.py`` in a fresh interpreter with only these Airflow settings.

    The tests' own settings (unit-test mode, their connections) are left out, as a user's shell has none.
    """
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))
    }
    env.update(AIRFLOW_HOME=str(home), **environment)
    return subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def aoi_lines(sim: SimulatorHandle) -> set[str]:
    return {f"{aoi_id} {aoi['name']}" for aoi_id, aoi in sim.state.aois.items()}


def connection_json(sim: SimulatorHandle) -> str:
    base_url, api_key = sim.base_url, sim.api_key
    # [START howto_connection_json]
    connection = {
        "conn_type": "pixxel",
        "host": base_url,  # leave out for https://api.pixxel.space
        "password": api_key,
        "extra": {"project_id": "<project uuid>", "timeout": [10, 60], "max_retries": 5},
    }
    os.environ["AIRFLOW_CONN_PIXXEL_DEFAULT"] = json.dumps(connection)
    # [END howto_connection_json]
    return os.environ.pop("AIRFLOW_CONN_PIXXEL_DEFAULT")


def test_script_with_the_connection_as_json(pixxel_simulator: SimulatorHandle, tmp_path: Path) -> None:
    done = run_script({"AIRFLOW_CONN_PIXXEL_DEFAULT": connection_json(pixxel_simulator)}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert aoi_lines(pixxel_simulator) <= set(done.stdout.splitlines())  # Airflow may log on stdout too


def test_script_with_the_connection_as_a_uri(pixxel_simulator: SimulatorHandle, tmp_path: Path) -> None:
    sim = pixxel_simulator
    # [START howto_connection_uri]
    uri = sim.airflow_connection_uri()  # pixxel://:<api key>@127.0.0.1:<port>/http
    # [END howto_connection_uri]
    assert uri.startswith("pixxel://:")
    done = run_script({"AIRFLOW_CONN_PIXXEL_DEFAULT": uri}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert aoi_lines(sim) <= set(done.stdout.splitlines())  # Airflow may log on stdout too


def test_script_with_a_secrets_backend(pixxel_simulator: SimulatorHandle, tmp_path: Path) -> None:
    sim = pixxel_simulator
    connections_file = tmp_path / "connections.json"
    connections_file.write_text(
        json.dumps({"pixxel_default": {"conn_type": "pixxel", "host": sim.base_url, "password": sim.api_key}})
    )
    # [START howto_connection_secrets_backend]
    settings = {
        "AIRFLOW__SECRETS__BACKEND": "airflow.secrets.local_filesystem.LocalFilesystemBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"connections_file_path": str(connections_file)}),
    }
    # [END howto_connection_secrets_backend]
    done = run_script(settings, tmp_path)
    assert done.returncode == 0, done.stderr
    assert aoi_lines(sim) <= set(done.stdout.splitlines())  # Airflow may log on stdout too


def test_script_without_a_connection_says_which_one_is_missing(tmp_path: Path) -> None:
    done = run_script({}, tmp_path)
    assert done.returncode != 0
    assert "pixxel_default" in done.stderr


@pytest.mark.e2e
def test_script_does_not_find_a_connection_kept_only_in_the_metadata_database(tmp_path: Path) -> None:
    # What the deployment how-to says: outside a task, the metadata database is not where a hook looks.
    airflow_cli = str(Path(sys.executable).with_name("airflow"))
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))
    }
    env["AIRFLOW_HOME"] = str(tmp_path)
    subprocess.run([airflow_cli, "db", "migrate"], env=env, capture_output=True, timeout=600, check=True)
    add = [airflow_cli, "connections", "add", "pixxel_default", "--conn-type", "pixxel"]
    add += ["--conn-password", "db-key", "--conn-host", "http://127.0.0.1:9"]
    subprocess.run(add, env=env, capture_output=True, timeout=120, check=True)
    stored = subprocess.run(
        [airflow_cli, "connections", "get", "pixxel_default", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert '"conn_id": "pixxel_default"' in stored.stdout  # it is in the database...

    done = run_script({}, tmp_path)

    assert done.returncode != 0  # ...and yet the script does not find it
    assert "pixxel_default" in done.stderr
    assert "isn't defined" in done.stderr


def test_hook_tour(sim: SimulatorHandle) -> None:
    visualization = next(iter(sim.state.visualizations.values()))
    workflow_id = next(iter(sim.state.workflows))
    aoi_id, viz_id, index_id = visualization["aoi_id"], visualization["id"], visualization["index_id"]
    day = sorted(visualization["legend"])[0].replace("_", "-")
    # [START howto_hook_tour]
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook

    with PixxelHook() as hook:  # pixxel_conn_id="pixxel_default"
        projects = hook.list_projects()
        job = hook.create_job(workflow_id)  # project_id from the connection's default
        job = hook.get_job(workflow_id, job["id"])
        aoi_ids = [aoi["aoi_id"] for aoi in hook.iter_aois()]  # walks every page
        png: bytes = hook.generate_index_png(
            aoi_id, viz_id, index_id=index_id, date=day, visualization_mode="dynamic"
        )
    # [END howto_hook_tour]
    assert projects
    assert job["id"] in sim.state.jobs
    assert set(aoi_ids) == set(sim.state.aois)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("field", ["aoi_id", "name"])
def test_aoi_list_items_carry_aoi_id_not_id(sim: SimulatorHandle, field: str) -> None:
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook

    with PixxelHook() as hook:
        items: list[dict[str, Any]] = list(hook.iter_aois())
    assert items
    assert all(field in item for item in items)
    assert all("id" not in item for item in items)


def test_create_exactly_once_adopts_the_job_whose_answer_was_lost(sim: SimulatorHandle) -> None:
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook
    from airflow_provider_pixxel.simulator import FaultRule

    # The API creates the job, then a gateway answers 504: the job exists but its id never arrived.
    lost_answer = FaultRule(
        kind="status", status=504, path="/jobs$", methods=frozenset({"POST"}), times=1, after_app=True
    )
    sim.faults.add(lost_answer)
    workflow_id, project_id = next(iter(sim.state.workflows)), next(iter(sim.state.projects))
    context: dict[str, Any] = {"task_state_store": DictTaskStateStore()}
    hook = PixxelHook()
    # [START howto_create_exactly_once]
    from airflow_provider_pixxel.hooks.reconcile import create_exactly_once, job_lookup

    job = create_exactly_once(
        hook,
        lambda: hook.create_job(workflow_id, project_id=project_id),
        job_lookup(hook, workflow_id),
        journal=context["task_state_store"],  # optional (Airflow 3.3+): survive a worker dying mid-request
    )
    # [END howto_create_exactly_once]
    hook.close()
    (created,) = sim.state.created("job")
    assert str(job["id"]) == created.id
    assert lost_answer.injected_count == 1
    assert len(sim.state.requests(method="POST", path=f"/v0/workflows/{workflow_id}/jobs")) == 1
