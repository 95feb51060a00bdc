"""Every benchmark script runs at a tiny size and prints its figures (shape only: speed is not tested)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

TINY_RUNS = {
    "download": ["--size-mib", "2", "--runs", "1", "--rss-sizes-mib", "1", "--naive-runs", "1"],
    "waiting": ["--triggers", "5", "--poll-interval", "0.2", "--step-seconds", "0.2"],
    "overhead": ["--calls", "20", "--block", "10"],
    "import": ["--runs", "1", "--modules", "airflow_provider_pixxel.operators.jobs"],
    "pagination": ["--items", "250", "--page-size", "50"],
    "answers": ["--size-mib", "8", "--cap-mib", "2"],
    "batched_polling": [
        *("--cases", "one-workflow", "chaos"),
        *("--scale", "0.02", "--poll-interval", "0.5", "--step-seconds", "0.5"),
    ],
}

# Figures each benchmark must report, whatever the machine.
EXPECTED_FIGURES = {
    "download": ["throughput ratio provider/curl", "provider peak RSS at 1 MiB", "requests.get().content"],
    "waiting": [
        "triggers in one loop",
        "triggerer process peak RSS",
        "CPU seconds per poll",
        "poll lateness",
    ],
    "overhead": ["latency ratio hook/bare", "TCP connections opened"],
    "import": ["import airflow.sdk alone", "slowest operator/sensor module", "HttpOperator"],
    "pagination": ["iter_aois over 250 AOIs", "walker peak RSS"],
    "answers": ["with Content-Length", "streamed without a length", "requests.get().json()"],
    "batched_polling": [
        "job waits on 1 workflow(s), batched",
        "job waits on 1 workflow(s), unbatched",
        "status reads per interval, batched",
        "every wait ends with its one success event",
    ],
}


def _run(name: str) -> tuple[str, dict]:
    completed = subprocess.run(
        [sys.executable, "-m", f"benchmarks.bench_{name}", *TINY_RUNS[name]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result_lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(result_lines) == 1, completed.stdout
    return completed.stdout, json.loads(result_lines[0].removeprefix("RESULT "))


@pytest.mark.parametrize("name", sorted(TINY_RUNS))
def test_benchmark_prints_its_figures(name: str) -> None:
    if name == "download" and shutil.which("curl") is None:
        pytest.skip("curl is not installed; the download benchmark compares against it")
    stdout, result = _run(name)
    rows = result["rows"]
    assert rows
    assert {row["benchmark"] for row in rows} == {name}
    for row in rows:
        assert row["figure"], row
        assert row["value"], row
        assert row["met"] in (True, False, None)
        assert (row["met"] is None) == (row["target"] == ""), row
        # Every row is also printed for people, with its value.
        assert f"{row['figure']}: {row['value']}" in stdout
    figures = " | ".join(row["figure"] for row in rows)
    for expected in EXPECTED_FIGURES[name]:
        assert expected in figures, f"{expected!r} missing from {figures!r}"


def test_run_all_prints_one_table() -> None:
    from benchmarks._common import Row
    from benchmarks.run_all import format_table

    table = format_table([Row("download", "ratio", "0.95", ">= 0.9", True), Row("import", "sdk", "300 ms")])
    lines = table.splitlines()
    assert [cell.strip() for cell in lines[0].split("|")] == ["benchmark", "figure", "value", "target", ""]
    assert set(lines[1]) <= {"-", "+"}
    assert lines[2].endswith("met")
    assert "0.95" in lines[2]
    assert len(lines) == 4
