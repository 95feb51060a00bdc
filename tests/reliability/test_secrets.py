"""Secrets never leave the places they belong: every example DAG run with distinctive secrets, then scanned.

The secrets: an API key, the delivery bucket's credentials (read by ``PixxelCreateStoreOperator`` from
its ``secrets_conn_id`` connection) and every ``signature=`` the simulator minted for a signed file URL
during the run. Each example DAG runs inline at DEBUG log level under the chaos fault profile (so retry
warnings and error texts are written); one DAG also runs deferrable (its triggers' kwargs are stored) and
one runs with every signed URL expired, so its download task fails with an exception text.

Scanned, raw and URL-encoded: every log record at DEBUG (message, arguments, exception text), everything
written to stdout/stderr (the task loggers), every file under ``AIRFLOW_HOME/logs``, the run's XComs,
its rendered template fields, the trigger table's kwargs, the task instances' ``next_kwargs``, and the
text files the run wrote. ``test_the_scan_finds_a_planted_secret`` shows the scan can fail.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_pixxel.simulator import FaultRule
from airflow_provider_pixxel.simulator.server import SimulatorHandle, run_simulator
from airflow_provider_pixxel.simulator.state import ManualClock
from tests.example_dags.dag_runner import run_dag, task_states
from tests.reliability.conftest import enable_hook_retries
from tests.reliability.example_dag_cases import (
    PREPARATIONS,
    ChaosCase,
    example_dag_files,
    load_without_retries,
    run_conf_of,
    run_xcoms,
)
from tests.reliability.test_chaos import add_chaos_faults

pytestmark = pytest.mark.e2e

API_KEY = "pxk-LEAKCANARY-api-3f9a2c7e51d84b06"
STORE_ACCESS_KEY_ID = "AKIALEAKCANARY7Q2W9E"
STORE_SECRET_ACCESS_KEY = "leakcanary-store-secret-8d1f0b6a4c2e9d7f"
#: The DAG run once more with its waits deferred, so trigger kwargs are written.
DEFERRABLE_DAG = "pixxel_insights.py"
#: The DAG run once more with every signed URL expired, so its download fails with an exception.
FAILING_DAG = "pixxel_workflow_job.py"
TEXT_SUFFIXES = {".json", ".txt", ".log", ".sld", ".xml", ".csv", ""}


@pytest.fixture
def secret_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SimulatorHandle, list[str]]]:
    """A simulator with the distinctive API key; yields it and the list of signatures it mints."""
    with run_simulator(api_key=API_KEY, speed=0.0, clock=ManualClock()) as handle:
        minted: list[str] = []
        sign = handle.state.signer.sign

        def recording_sign(artifact_id: str, filename: str) -> str:
            url = sign(artifact_id, filename)
            minted.extend(re.findall(r"signature=([0-9a-fA-F]+)", url))
            return url

        handle.state.signer.sign = recording_sign  # type: ignore[method-assign]
        connection = {
            "conn_type": "pixxel",
            "host": handle.base_url,
            "password": API_KEY,
            "extra": {"project_id": next(iter(handle.state.projects)), "max_retries": 0},
        }
        monkeypatch.setenv("AIRFLOW_CONN_PIXXEL_DEFAULT", json.dumps(connection))
        yield handle, minted


def secrets_of(sim: SimulatorHandle, minted: Iterable[str]) -> dict[str, str]:
    """Name -> secret: the key, the store credentials, and every signature minted or presented."""
    signatures = set(minted)
    for request in sim.state.requests():
        if request.query.get("signature"):
            signatures.add(request.query["signature"])
    found = {"api key": API_KEY, "store access key id": STORE_ACCESS_KEY_ID}
    found["store secret access key"] = STORE_SECRET_ACCESS_KEY
    found.update({f"signature {s[:8]}…": s for s in signatures})
    return found


def occurrences(texts: Mapping[str, Iterable[str]], secrets: Mapping[str, str]) -> list[str]:
    """``"<secret name> in <source>: …context…"`` for every secret found, raw or URL-encoded."""
    found = []
    for source, chunks in texts.items():
        for chunk in chunks:
            for name, secret in secrets.items():
                for form in {secret, quote(secret, safe="")}:
                    at = chunk.find(form)
                    if at >= 0:
                        context = chunk[max(0, at - 60) : at + len(form) + 20].replace(form, "<SECRET>")
                        found.append(f"{name} in {source}: …{context}…")
    return found


def log_texts(records: Iterable[logging.LogRecord]) -> list[str]:
    """Each record's message, arguments and exception text, as its logger produced them.

    Except urllib3's: at DEBUG it logs every URL it requests, signed query included. That text is
    scanned as Airflow's secrets masker writes it to the task log: the download routine registers
    every signed query with ``mask_secret``, so a missing registration still shows up here.
    """
    from airflow.sdk._shared.secrets_masker.secrets_masker import redact

    formatter = logging.Formatter()
    texts = []
    for record in records:
        record_texts = [record.getMessage(), repr(record.args)]
        if record.exc_info:
            record_texts.append(formatter.formatException(record.exc_info))
        if record.exc_text:
            record_texts.append(record.exc_text)
        if record.name.startswith("urllib3"):
            record_texts = [str(redact(text)) for text in record_texts[:1]]
        texts.extend(record_texts)
    return texts


def task_output(text: str) -> str:
    """What the task loggers wrote, without dag.test()'s own echo of each secret handed to the masker.

    ``InProcessSupervisorComms.send`` (used only by ``dag.test()``) logs every message to the
    supervisor at DEBUG, ``MaskSecret(value=...)`` included; the real supervisor logs these
    "(body omitted)". That echo is Airflow's test harness repeating the provider's request to mask.
    """
    return "\n".join(line for line in text.splitlines() if "msg=MaskSecret(" not in line)


def file_texts(root: Path) -> list[str]:
    if not root.exists():
        return []
    return [
        path.read_text(errors="replace")
        for path in root.rglob("*")
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path.stat().st_size < 5_000_000
    ]


def run_records(dag_run: Any) -> dict[str, list[str]]:
    """The run's XComs, rendered template fields, task instances' next_kwargs, and every trigger's kwargs."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import select

    run = (
        RenderedTaskInstanceFields.dag_id == dag_run.dag_id,
        RenderedTaskInstanceFields.run_id == dag_run.run_id,
    )
    with create_session() as session:
        rendered = session.scalars(select(RenderedTaskInstanceFields.rendered_fields).where(*run)).all()
        next_kwargs = session.scalars(
            select(TaskInstance.next_kwargs).where(
                TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
            )
        ).all()
        triggers = session.scalars(select(Trigger)).all()
        trigger_kwargs = [repr(trigger.kwargs) + (trigger.encrypted_kwargs or "") for trigger in triggers]
    return {
        "XComs": [json.dumps(value, default=str) for value in run_xcoms(dag_run).values()],
        "rendered template fields": [json.dumps(fields, default=str) for fields in rendered],
        "next_kwargs": [json.dumps(kwargs, default=str) for kwargs in next_kwargs if kwargs],
        "trigger kwargs": trigger_kwargs,
    }


def run_example(
    dag_file: str,
    sim: SimulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    output_dir: Path,
    *,
    deferrable: bool,
) -> Any:
    from tests.example_dags.outputs import set_example_connections

    case = PREPARATIONS.get(dag_file, ChaosCase())
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", str(deferrable))
    set_example_connections(sim, monkeypatch)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PIXXEL_DELIVERY_BUCKET",
        json.dumps({"conn_type": "aws", "login": STORE_ACCESS_KEY_ID, "password": STORE_SECRET_ACCESS_KEY}),
    )
    enable_hook_retries(monkeypatch, max_retries=8)
    run_kwargs = case.prepare(sim, monkeypatch, output_dir) if case.prepare else {}
    return run_dag(load_without_retries(dag_file), run_conf=run_conf_of(dag_file, output_dir), **run_kwargs)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Set up before (so torn down after) the output capture the test reconfigures logging into."""
    yield
    configure_airflow_logging()


def configure_airflow_logging() -> None:
    """(Re)configure Airflow's task logging (structlog, with the secrets masker) from the config."""
    from airflow.sdk.log import configure_logging, reset_logging

    configure_logging.cache_clear()
    reset_logging()
    configure_logging()


def debug_logging(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Airflow's task loggers at DEBUG, and every raw record at DEBUG into ``caplog`` as well."""
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_LEVEL", "DEBUG")
    configure_airflow_logging()
    root = logging.getLogger()
    if caplog.handler not in root.handlers:
        root.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)


def test_no_secret_in_logs_xcoms_rendered_fields_trigger_kwargs_or_errors(
    restore_logging: None,
    secret_sim: tuple[SimulatorHandle, list[str]],
    airflow_db: None,
    fast_backoff: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    sim, minted = secret_sim
    debug_logging(monkeypatch, caplog)
    sim.faults.seed = 0
    add_chaos_faults(sim)
    texts: dict[str, list[str]] = {}
    dag_runs = []
    for dag_file in example_dag_files():
        output_dir = tmp_path / dag_file.removesuffix(".py")
        dag_run = run_example(dag_file, sim, monkeypatch, output_dir, deferrable=False)
        assert set(task_states(dag_run).values()) == {"success"}, (dag_file, task_states(dag_run))
        dag_runs.append((dag_file, dag_run, output_dir))

    dag_run = run_example(DEFERRABLE_DAG, sim, monkeypatch, tmp_path / "deferrable", deferrable=True)
    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    dag_runs.append((f"{DEFERRABLE_DAG} (deferrable)", dag_run, tmp_path / "deferrable"))

    sim.faults.clear()
    sim.faults.add(FaultRule(kind="expire", rate=1.0))
    dag_run = run_example(FAILING_DAG, sim, monkeypatch, tmp_path / "failing", deferrable=False)
    assert "failed" in task_states(dag_run).values(), task_states(dag_run)
    dag_runs.append((f"{FAILING_DAG} (signed URLs expired)", dag_run, tmp_path / "failing"))

    for name, run, output_dir in dag_runs:
        for source, chunks in run_records(run).items():
            texts[f"{source} of {name}"] = chunks
        texts[f"files written by {name}"] = file_texts(output_dir)
    texts["log records"] = log_texts(caplog.records)
    captured = capfd.readouterr()
    texts["stdout and stderr"] = [task_output(captured.out), task_output(captured.err)]
    texts["AIRFLOW_HOME/logs"] = file_texts(Path(os.environ["AIRFLOW_HOME"]) / "logs")

    secrets = secrets_of(sim, minted)
    # The scan read real material: signatures were minted, every kind of record was found.
    assert len(secrets) > 3, "no signed URL was minted: nothing was downloaded"
    assert any(texts[f"trigger kwargs of {DEFERRABLE_DAG} (deferrable)"]), "no trigger was stored"
    assert all(texts[f"XComs of {name}"] for name, _, _ in dag_runs[:-1])
    assert all(texts[f"rendered template fields of {name}"] for name, _, _ in dag_runs)
    task_logs = texts["log records"] + texts["stdout and stderr"] + texts["AIRFLOW_HOME/logs"]
    assert any("PixxelDownloadError" in text for text in task_logs), "the failing run logged no error"
    assert "[debug" in captured.out + captured.err, "the task loggers did not write at DEBUG"
    assert any(record.name.startswith("urllib3") for record in caplog.records), "no DEBUG record captured"
    leaks = occurrences(texts, secrets)
    by_source = Counter(leak.split(": ")[0].split(" in ", 1)[1] for leak in leaks)
    assert leaks == [], f"{dict(by_source)}\n" + "\n".join(leaks[:20])


def test_the_scan_finds_a_planted_secret(
    restore_logging: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    debug_logging(monkeypatch, caplog)
    signature = "ab" * 32
    secrets = {"api key": API_KEY, "signature": signature}
    logging.getLogger("airflow.task").debug("calling with key %s", API_KEY)
    try:
        raise RuntimeError(f"GET https://files.example/x.zip?signature={signature} failed")
    except RuntimeError:
        logging.getLogger("airflow.task").exception("download failed")
    print(f"Authorization: {quote(API_KEY, safe='')}")
    (tmp_path / "task.log").write_text(f"url=...&signature={signature}\n")

    captured = capfd.readouterr()
    leaks = occurrences(
        {
            "log records": log_texts(caplog.records),
            "stdout": [captured.out],
            "files": file_texts(tmp_path),
            "XComs": [json.dumps({"url": f"https://x/?signature={signature}"})],
        },
        secrets,
    )

    assert {leak.split(":")[0] for leak in leaks} == {
        "api key in log records",
        "api key in stdout",
        "signature in XComs",
        "signature in files",
        "signature in log records",
        "signature in stdout",
    }
