"""Run every benchmark against the simulator on loopback and print one table: ``make bench``.

    python -m benchmarks.run_all [--quick] [--only download waiting ...]

Each benchmark runs as its own script (``python -m benchmarks.bench_<name>``), which in turn measures
everything in fresh processes; ``--quick`` runs them at small sizes (a smoke run, not figures to quote).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks._common import Row, airflow_environment, machine_description, parse_result

BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    # name: (full-size arguments, --quick arguments)
    "download": (
        [],
        ["--size-mib", "64", "--runs", "2", "--rss-sizes-mib", "32", "128", "--naive-runs", "1"],
    ),
    "waiting": ([], ["--triggers", "50", "--poll-interval", "1", "--step-seconds", "1"]),
    "overhead": ([], ["--calls", "200", "--block", "50"]),
    "import": ([], ["--runs", "1"]),
    "pagination": ([], ["--items", "5000"]),
    "answers": ([], ["--size-mib", "64", "--cap-mib", "8"]),
    "batched_polling": ([], ["--scale", "0.05", "--poll-interval", "1", "--step-seconds", "1"]),
}


def format_table(rows: list[Row]) -> str:
    header = ("benchmark", "figure", "value", "target", "")
    lines = [
        (row.benchmark, row.figure, row.value, row.target, {True: "met", False: "MISSED", None: ""}[row.met])
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    rendered = [
        " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
        for line in [header, *lines]
    ]
    rendered.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(rendered)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: proves it runs, in about a minute")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args()
    rows: list[Row] = []
    failures = 0
    started = time.monotonic()
    for name in args.only or list(BENCHMARKS):
        full, quick = BENCHMARKS[name]
        print(f"== {name}", flush=True)
        command = [sys.executable, "-m", f"benchmarks.bench_{name}", *(quick if args.quick else full)]
        completed = subprocess.run(command, capture_output=True, text=True, env=airflow_environment())
        print("\n".join(line for line in completed.stdout.splitlines() if not line.startswith("RESULT ")))
        if completed.returncode != 0:
            failures += 1
            print(f"   failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}", flush=True)
            rows.append(Row(name, "benchmark failed", f"exit {completed.returncode}"))
            continue
        rows += [Row(**row) for row in parse_result(completed.stdout)["rows"]]
    print()
    print(f"Machine: {machine_description()}; total {time.monotonic() - started:.0f} s")
    print(format_table(rows))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
