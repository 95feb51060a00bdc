"""What every benchmark script shares: a simulator in its own process, workers measured in their own
processes, peak RSS, medians, and the ``RESULT`` line that ``run_all`` collects into one table.

Figures are printed, never asserted: the machines are shared and noisy, so every figure is a median
or a ratio of runs measured side by side in the same invocation.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULT_PREFIX = "RESULT "
MIB = 1024 * 1024
SIMULATOR_START_TIMEOUT_SECONDS = 60.0
API_KEY = "pixxel-simulator-key"


@dataclass(frozen=True)
class Row:
    """One line of the final table. ``met`` is None where the figure has no target."""

    benchmark: str
    figure: str
    value: str
    target: str = ""
    met: bool | None = None


def emit(rows: Sequence[Row], **details: Any) -> None:
    """Print the rows readably, then the one machine-readable line ``run_all`` parses."""
    for row in rows:
        verdict = {True: "met", False: "MISSED", None: ""}[row.met]
        target = f"  (target {row.target}: {verdict})" if row.target else ""
        print(f"  {row.figure}: {row.value}{target}")
    print(RESULT_PREFIX + json.dumps({"rows": [asdict(row) for row in rows], "details": details}), flush=True)


def parse_result(stdout: str) -> dict[str, Any]:
    """The last ``RESULT`` line of a script's or worker's output."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    raise RuntimeError(f"no {RESULT_PREFIX.strip()} line in the output:\n{stdout[-2000:]}")


def worker_result(payload: dict[str, Any]) -> None:
    """A worker's answer to its parent: one ``RESULT`` line."""
    print(RESULT_PREFIX + json.dumps(payload), flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` 0..1) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _status_kib(field: str) -> int | None:
    with contextlib.suppress(OSError):
        match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
        if match:
            return int(match.group(1))
    return None


def peak_rss_mib() -> float:
    """This process's peak resident set (``VmHWM``; ``ru_maxrss`` where /proc is missing)."""
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024


def current_rss_mib() -> float:
    kib = _status_kib("VmRSS")
    if kib is None:
        import psutil

        return float(psutil.Process().memory_info().rss) / MIB
    return kib / 1024


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def airflow_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for worker processes: a throwaway AIRFLOW_HOME, never the user's own."""
    env = dict(os.environ)
    home = env.get("PIXXEL_BENCH_AIRFLOW_HOME")
    if not home:
        home = tempfile.mkdtemp(prefix="pixxel-bench-airflow-home-")
        os.environ["PIXXEL_BENCH_AIRFLOW_HOME"] = home
    env["AIRFLOW_HOME"] = home
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra or {})
    return env


def pixxel_connection_json(base_url: str) -> str:
    return json.dumps({"conn_type": "pixxel", "host": base_url, "password": API_KEY})


@dataclass
class WorkerRun:
    """A finished worker: its ``RESULT`` payload and the peak RSS the kernel recorded for it."""

    result: dict[str, Any]
    peak_rss_mib: float
    cpu_seconds: float
    wall_seconds: float
    stdout: str = ""


def run_worker(
    command: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 900.0
) -> WorkerRun:
    """Run ``command`` in its own process; ``wait4`` gives that one child's peak RSS and CPU time."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command), stdout=stdout, stderr=stderr, env=env or airflow_environment()
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                os.wait4(process.pid, 0)
                raise TimeoutError(f"{' '.join(command[:4])}... ran longer than {timeout:.0f} s")
            time.sleep(0.01)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read().decode(), stderr.read().decode()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}... exited with {process.returncode}:\n{err[-3000:]}")
    return WorkerRun(
        result=parse_result(out) if RESULT_PREFIX in out else {},
        # Linux reports ru_maxrss in KiB.
        peak_rss_mib=usage.ru_maxrss / 1024,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        wall_seconds=wall,
        stdout=out,
    )


def python_worker(module: str, *args: str) -> list[str]:
    """The command line that runs ``benchmarks.<module>`` in a fresh interpreter."""
    return [sys.executable, "-m", f"benchmarks.{module}", *args]


@dataclass
class Simulator:
    base_url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def simulator_process(
    *,
    speed: float = 0.0,
    package_size_bytes: int | None = None,
    seed_aois: int = 0,
    chaos_reads: bool = False,
    workflows: int = 0,
    wallet: float | None = None,
) -> Iterator[Simulator]:
    """The simulator in its own process (so its CPU never counts against the client being measured)."""
    command = python_worker("_simulator", "--speed", str(speed), "--seed-aois", str(seed_aois))
    if chaos_reads:
        command.append("--chaos-reads")
    if workflows:
        command += ["--workflows", str(workflows)]
    if wallet is not None:
        command += ["--wallet", str(wallet)]
    if package_size_bytes is not None:
        command += ["--package-size", str(package_size_bytes)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=airflow_environment()
    )
    try:
        assert process.stdout is not None
        base_url = ""
        deadline = time.monotonic() + SIMULATOR_START_TIMEOUT_SECONDS
        while not base_url and time.monotonic() < deadline:
            line = process.stdout.readline().decode()
            if not line:
                break
            if line.startswith("PIXXEL_SIMULATOR_URL="):
                base_url = line.split("=", 1)[1].strip()
        if not base_url:
            raise RuntimeError("the simulator process did not start")
        yield Simulator(base_url=base_url, process=process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def api_session() -> Any:
    """A plain ``requests`` session with the simulator's key, for setting up what is measured."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = API_KEY
    return session


def http_provider_installed() -> bool:
    """Whether the HTTP provider is installed, without importing Airflow into this (parent) process:
    a forked child's ``ru_maxrss`` starts from its parent's resident set."""
    import importlib.metadata

    try:
        importlib.metadata.distribution("apache-airflow-providers-http")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def machine_description() -> str:
    import platform

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / MIB:.0f} GiB RAM"
    return (
        f"{os.cpu_count()} CPU ({cpu}){memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )
