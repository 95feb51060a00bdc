"""Benchmark 3: per-call overhead of :class:`~airflow_provider_pixxel.hooks.pixxel.PixxelHook`.

The same status read (``GET /v0/workflows/{id}/jobs/{id}``) through the hook and through a bare
``requests.Session`` with the same headers, in alternating blocks: median latency of each, their
ratio, client CPU per call, and how many TCP connections each opened (one means the session and its
keep-alive connection are reused, not rebuilt per call).

    python -m benchmarks.bench_overhead [--calls 2000] [--block 100]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks._common import (
    API_KEY,
    Row,
    airflow_environment,
    cpu_seconds,
    emit,
    median,
    pixxel_connection_json,
    python_worker,
    run_worker,
    simulator_process,
    worker_result,
)
from benchmarks.setup_api import create_jobs

RATIO_TARGET = 1.15
WARM_UP_CALLS = 20


class ConnectionCounter:
    """Counts TCP connections urllib3 opens, by who asked: the hook or the bare session."""

    def __init__(self) -> None:
        self.current = ""
        self.opened: dict[str, int] = {"hook": 0, "bare": 0}

    def install(self) -> None:
        import urllib3.connection

        original = urllib3.connection.HTTPConnection.connect
        counter = self

        def connect(connection: Any) -> None:
            counter.opened[counter.current] += 1
            original(connection)

        urllib3.connection.HTTPConnection.connect = connect  # type: ignore[method-assign,assignment]


def _work(base_url: str, workflow_id: str, job_id: str, calls: int, block: int) -> None:
    import requests

    from airflow_provider_pixxel.hooks.pixxel import PixxelHook

    counter = ConnectionCounter()
    counter.install()
    hook = PixxelHook()
    bare = requests.Session()
    bare.headers.update({"Authorization": API_KEY, "Accept": "application/json"})
    url = f"{base_url}/v0/workflows/{workflow_id}/jobs/{job_id}"

    def through_hook() -> None:
        hook.get_job(workflow_id, job_id)

    def through_bare() -> None:
        response = bare.get(url, timeout=30)
        response.raise_for_status()
        response.json()

    ways = {"hook": through_hook, "bare": through_bare}
    latencies: dict[str, list[float]] = {"hook": [], "bare": []}
    cpu: dict[str, float] = {"hook": 0.0, "bare": 0.0}
    for name, call in ways.items():
        counter.current = name
        for _ in range(WARM_UP_CALLS):
            call()
    done = 0
    while done < calls:
        size = min(block, calls - done)
        # Alternate which way goes first in each pair of blocks.
        order = ["hook", "bare"] if (done // block) % 2 == 0 else ["bare", "hook"]
        for name in order:
            counter.current = name
            call = ways[name]
            cpu_before = cpu_seconds()
            for _ in range(size):
                started = time.perf_counter()
                call()
                latencies[name].append(time.perf_counter() - started)
            cpu[name] += cpu_seconds() - cpu_before
        done += size
    worker_result(
        {
            "calls": calls,
            "median_seconds": {name: median(values) for name, values in latencies.items()},
            "cpu_per_call": {name: cpu[name] / calls for name in cpu},
            "connections_opened": counter.opened,
            "session_reused": hook.get_conn() is hook.get_conn(),
        }
    )


def measure(calls: int, block: int) -> None:
    with simulator_process() as simulator:
        workflow_id, (job_id,), _ = create_jobs(simulator.base_url, 1)
        env = airflow_environment({"AIRFLOW_CONN_PIXXEL_DEFAULT": pixxel_connection_json(simulator.base_url)})
        run = run_worker(
            python_worker(
                "bench_overhead", "--worker", simulator.base_url, workflow_id, job_id, str(calls), str(block)
            ),
            env=env,
        )
    result = run.result
    hook_median, bare_median = result["median_seconds"]["hook"], result["median_seconds"]["bare"]
    ratio = hook_median / bare_median
    opened = result["connections_opened"]
    rows = [
        Row(
            "overhead",
            f"median latency, {calls} reads: PixxelHook / bare requests.Session",
            f"{hook_median * 1e6:.0f} us / {bare_median * 1e6:.0f} us",
        ),
        Row(
            "overhead", "latency ratio hook/bare", f"{ratio:.2f}", f"<= {RATIO_TARGET}", ratio <= RATIO_TARGET
        ),
        Row(
            "overhead",
            "client CPU per call: hook / bare",
            f"{result['cpu_per_call']['hook'] * 1e6:.0f} us / {result['cpu_per_call']['bare'] * 1e6:.0f} us",
        ),
        Row(
            "overhead",
            f"TCP connections opened for {calls + WARM_UP_CALLS} calls: hook / bare; one session",
            f"{opened['hook']} / {opened['bare']}; {result['session_reused']}",
            "1, reused",
            opened["hook"] == 1 and bool(result["session_reused"]),
        ),
    ]
    emit(rows, **result)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=2000, help="reads through each way")
    parser.add_argument("--block", type=int, default=100, help="calls per alternating block")
    args = parser.parse_args()
    if args.worker:
        base_url, workflow_id, job_id, calls, block = args.worker
        _work(base_url, workflow_id, job_id, int(calls), int(block))
        return
    measure(args.calls, args.block)


if __name__ == "__main__":
    main()
