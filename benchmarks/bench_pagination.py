"""Benchmark 5: pagination.

Walking every AOI of a workspace seeded with 100,000 of them through ``PixxelHook.iter_aois``: time,
items per second, and peak RSS of the walking process at a tenth of the items and at all of them
(flat: the generator holds one page at a time). Each walk runs in its own process.

    python -m benchmarks.bench_pagination [--items 100000] [--page-size 100]
"""

from __future__ import annotations

import argparse
import itertools
import time

from benchmarks._common import (
    Row,
    airflow_environment,
    current_rss_mib,
    emit,
    peak_rss_mib,
    pixxel_connection_json,
    python_worker,
    run_worker,
    simulator_process,
    worker_result,
)

FLAT_TOLERANCE_MIB = 10.0


def _work(items: int, page_size: int) -> None:
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook

    hook = PixxelHook()
    hook.ping()  # connection and session set up before the baseline
    baseline = current_rss_mib()
    started = time.perf_counter()
    seen = sum(1 for _ in itertools.islice(hook.iter_aois(page_size=page_size), items))
    seconds = time.perf_counter() - started
    worker_result(
        {"items": seen, "seconds": seconds, "baseline_rss_mib": baseline, "peak_rss_mib": peak_rss_mib()}
    )


def measure(items: int, page_size: int) -> None:
    # The simulator already holds one seeded AOI, so items - 1 more make exactly ``items``.
    with simulator_process(seed_aois=items - 1) as simulator:
        env = airflow_environment({"AIRFLOW_CONN_PIXXEL_DEFAULT": pixxel_connection_json(simulator.base_url)})
        walks = {
            count: run_worker(
                python_worker("bench_pagination", "--worker", str(count), str(page_size)), env=env
            )
            for count in (max(items // 10, 1), items)
        }
    small, full = walks[min(walks)], walks[items]
    growth = full.peak_rss_mib - small.peak_rss_mib
    result = full.result
    rows = [
        Row(
            "pagination",
            f"iter_aois over {result['items']:,} AOIs (page size {page_size})",
            f"{result['seconds']:.1f} s, {result['items'] / result['seconds']:,.0f} items/s",
        ),
        Row(
            "pagination",
            f"walker peak RSS at {small.result['items']:,} / {result['items']:,} items (after imports)",
            f"{small.peak_rss_mib:.0f} / {full.peak_rss_mib:.0f} MiB ({result['baseline_rss_mib']:.0f} MiB)",
            f"flat (within {FLAT_TOLERANCE_MIB:.0f} MiB)",
            growth <= FLAT_TOLERANCE_MIB and result["items"] == items,
        ),
    ]
    emit(rows, walks={count: run.result for count, run in walks.items()})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, default=100_000, help="AOIs to seed and walk")
    parser.add_argument("--page-size", type=int, default=100, help="iter_aois page size")
    args = parser.parse_args()
    if args.worker:
        _work(int(args.worker[0]), int(args.worker[1]))
        return
    measure(args.items, args.page_size)


if __name__ == "__main__":
    main()
