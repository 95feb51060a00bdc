"""Chaos runs: every example DAG end to end against the simulator with seeded faults injected.

The DAGs, their ``run_conf`` and set-up come from ``example_dag_cases.py`` (a new example DAG joins
with no change here). Faults are added after the set-up, so they hit only the DAG's own requests.

Airflow task retries are off: the hook's own retries must absorb every fault, and a failing task fails
the run at once (instead of waiting out the example DAGs' 5-minute ``retry_delay``) with the task and
its error in the assertion message.

CI runs ``CI_SEEDS`` per DAG (marker ``chaos``); ``make chaos`` runs ``PIXXEL_CHAOS_SEEDS`` (20) per DAG
and prints one summary line per run plus the totals (``-s``).

The fault profile (per matching request, seeded):

* 5xx (500/502/503/504) on ~11 %, connection resets on 2 % and bodies cut mid-stream on 2 % of
  every request, billable creates (orders, jobs, insights) and other creates (AOIs, visualizations,
  stores) included. The 5xx and resets come before the API acts; a cut body after it did;
* on POSTs, a further 2 % of 504 and 1 % of resets *after* the API acted (a gateway giving up on a
  service that went ahead). For a create, a lost answer leaves its outcome unknown: the provider
  looks for what the request made, adopts it, or re-sends only when it provably was not made
  (``hooks/reconcile.py``); the counts below prove nothing was created twice;
* 429 on 5 % of every request, creates included (a 429 proves nothing was done), half with
  ``Retry-After: <seconds>`` and half with ``Retry-After: <HTTP-date>``;
* slow answers (250 ms late) on 3 %;
* signed file URLs answered "Request has expired" on 10 % of file requests.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import time
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from airflow_provider_pixxel.simulator import FaultRule
from airflow_provider_pixxel.simulator.server import SimulatorHandle
from tests.example_dags.dag_runner import run_dag, task_states
from tests.reliability.conftest import enable_hook_retries
from tests.reliability.example_dag_cases import (
    PREPARATIONS,
    ChaosCase,
    example_dag_files,
    failure_details,
    load_without_retries,
    run_conf_of,
    run_xcoms,
)

CI_SEEDS = 1
SEEDS = int(os.environ.get("PIXXEL_CHAOS_SEEDS", CI_SEEDS))
#: What a run must create exactly as often as its case says: the billable kinds and the other creates
#: whose lost answers are looked up (stores are reused by name, deliveries and downloads re-requested).
COUNTED_KINDS = ("order", "job", "insight", "aoi", "visualization")
POST = frozenset({"POST"})
#: Paths whose POST creates something (orders and insights also take their dry runs and estimates there).
CREATE_PATHS = re.compile(
    r"^/v0/(orders|workflows/[^/]+/jobs|aoi/[^/]+/insights|aois|aois/[^/]+/visualizations|stores)$"
)
#: Per-run figures, summed over the session and printed at its end (tests/reliability/conftest.py).
TOTALS: Counter[str] = Counter()
RUN_REPORTS: list[str] = []


def add_chaos_faults(sim: SimulatorHandle) -> list[FaultRule]:
    rules: list[FaultRule] = []
    # Lost answers after the API acted, on POSTs: for a create, the case only a look-up can resolve.
    rules.append(FaultRule(kind="status", status=504, rate=0.02, methods=POST, after_app=True))
    rules.append(FaultRule(kind="reset", rate=0.01, methods=POST, after_app=True))
    for status, rate in ((503, 0.04), (500, 0.03), (502, 0.02), (504, 0.02)):
        rules.append(FaultRule(kind="status", status=status, rate=rate))
    rules.append(FaultRule(kind="reset", rate=0.02))
    rules.append(FaultRule(kind="truncate", rate=0.02))
    rules.append(FaultRule(kind="status", status=429, rate=0.025, retry_after=1, retry_after_form="seconds"))
    rules.append(FaultRule(kind="status", status=429, rate=0.025, retry_after=1, retry_after_form="date"))
    rules.append(FaultRule(kind="slow", rate=0.03, delay=0.25))
    rules.append(FaultRule(kind="expire", rate=0.10))
    for rule in rules:
        sim.faults.add(rule)
    return rules


def served_files(sim: SimulatorHandle) -> tuple[set[str], dict[str, set[str]]]:
    """SHA-256 of every file behind a signed URL, and of every member of those that are zips, by name."""
    artifacts: set[str] = set()
    members: dict[str, set[str]] = {}
    ids = [*sim.state.catalog_downloads, *sim.state.aoi_downloads, *sim.state.packages]
    for artifact_id in ids:
        if artifact_id not in sim.state.files:
            continue
        artifact = sim.state.files.get(artifact_id)
        artifacts.add(artifact.sha256())
        content = artifact.read()
        if not zipfile.is_zipfile(io.BytesIO(content)):
            continue
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    digest = hashlib.sha256(archive.read(info)).hexdigest()
                    members.setdefault(PurePosixPath(info.filename).name, set()).add(digest)
    return artifacts, members


def check_downloads(sim: SimulatorHandle, output_dir: Path) -> int:
    """Every zip written matches a file the simulator served, every file extracted from one matches
    that member; returns how many files were checked."""
    artifacts, members = served_files(sim)
    checked = 0
    for path in sorted(p for p in output_dir.rglob("*") if p.is_file()):
        digest = sha256_of(path)
        if path.suffix == ".zip":
            assert digest in artifacts, f"{path} does not match any file the simulator served"
        elif path.name in members:
            assert digest in members[path.name], f"{path} differs from the package member it came from"
        else:
            continue
        checked += 1
    return checked


def downloaded_files_in_xcoms(dag_run: Any) -> list[tuple[Path, str]]:
    """``(path, sha256)`` of every file a task of the run reported in its XComs: ``{"path", "sha256"}``
    entries, relative ones under the ``path`` of the record whose ``files`` list holds them."""
    found: list[tuple[Path, str]] = []

    def walk(value: Any, folder: Path | None = None) -> None:
        if isinstance(value, dict):
            path = value.get("path")
            if isinstance(path, str) and isinstance(value.get("sha256"), str):
                found.append((folder / path if folder else Path(path), value["sha256"]))
            for key, inner in value.items():
                walk(inner, Path(path) if key == "files" and isinstance(path, str) else folder)
        elif isinstance(value, list):
            for inner in value:
                walk(inner, folder)

    for value in run_xcoms(dag_run).values():
        walk(value)
    return found


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _seeded_cases() -> list[Any]:
    return [
        pytest.param(dag_file, seed, id=f"{dag_file.removesuffix('.py')}-seed{seed}")
        for dag_file in example_dag_files()
        for seed in range(SEEDS)
    ]


@pytest.mark.chaos
@pytest.mark.parametrize(("dag_file", "seed"), _seeded_cases())
def test_example_dag_survives_injected_faults(
    dag_file: str,
    seed: int,
    sim: SimulatorHandle,
    airflow_db: None,
    fast_backoff: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from tests.example_dags.outputs import set_example_connections

    started = time.monotonic()
    case = PREPARATIONS.get(dag_file, ChaosCase())
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    set_example_connections(sim, monkeypatch)
    enable_hook_retries(monkeypatch, max_retries=8)
    run_kwargs = case.prepare(sim, monkeypatch, tmp_path) if case.prepare else {}
    sim.state.clear_records()
    sim.faults.seed = seed
    add_chaos_faults(sim)
    # The hook's retries must absorb every fault; an Airflow retry would also hide a failure for 5 minutes.
    dag = load_without_retries(dag_file)

    caplog.set_level(logging.ERROR)
    dag_run = run_dag(dag, run_conf=run_conf_of(dag_file, tmp_path), **run_kwargs)

    states = task_states(dag_run)
    injected = Counter(
        f"{fault['kind']}" + (f":{fault['status']}" if fault["kind"] == "status" else "")
        for fault in sim.faults.injected
    )
    requests = len(sim.state.requests())
    # Task logs reach the captured output; the hook says there what it did with each lost create answer.
    output = "".join(capfd.readouterr())
    lost_creates = {
        "create-path faults (5xx, resets, cuts)": sum(
            fault["method"] == "POST"
            and bool(CREATE_PATHS.match(fault["path"]))
            and (fault["kind"] in ("reset", "truncate") or (fault["status"] or 0) >= 500)
            for fault in sim.faults.injected
        ),
        "lost create answers adopted": output.count("instead of sending the request again"),
        "lost creates sent again": output.count("was not made; sending it again"),
    }
    report = (
        f"{dag_file} seed {seed}: {requests} requests, faults {dict(sorted(injected.items()))}, "
        f"{lost_creates}, {time.monotonic() - started:.1f} s"
    )
    RUN_REPORTS.append(report)
    failed = {task: state for task, state in states.items() if state != "success"}
    assert (str(dag_run.state), failed) == ("success", {}), (
        f"{report}\nnot successful: {failed}\n{failure_details(caplog.records, output)}"
    )
    created = {kind: len(sim.state.created(kind)) for kind in COUNTED_KINDS}
    assert created == {kind: case.creates.get(kind, 0) for kind in COUNTED_KINDS}, report
    checked = check_downloads(sim, tmp_path)
    for path, reported in downloaded_files_in_xcoms(dag_run):
        if path.is_file():
            assert sha256_of(path) == reported, f"{path} does not match the SHA-256 its task reported"
            checked += 1
    RUN_REPORTS[-1] += f", {checked} digests checked"
    TOTALS.update({"runs": 1, "requests": requests, "digests checked": checked, **created, **lost_creates})
    TOTALS.update({f"fault {kind}": count for kind, count in injected.items()})
