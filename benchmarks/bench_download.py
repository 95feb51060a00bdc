"""Benchmark 1: download throughput and memory.

The provider's one download routine (:func:`airflow_provider_pixxel.hooks.download.download`) against
``curl -o`` of the same signed URL, several rounds on loopback in rotating order, plus the same download
the way an Airflow user would write it without this provider (``requests.get(url).content`` and
``HttpHook.run``). Each download runs in a fresh process so its peak RSS is its own.

``curl -o`` leaves the file in the page cache; the provider calls ``fsync`` on it before the rename. So each
round also times ``curl -o`` followed by an ``fsync`` of its file, as a side figure for the same
durability; the target stays provider / plain ``curl -o``.

    python -m benchmarks.bench_download [--size-mib 1024] [--runs 5] [--rss-sizes-mib 256 2048]

``--against DIR`` also runs, in each round and in rotating order, the provider's ``download()`` from another
checkout (``git worktree add DIR <commit>``) against the same URL, and reports this code's throughput and
peak RSS against that one's: how a change moved the figures, measured side by side on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks._common import (
    MIB,
    REPO_ROOT,
    Row,
    WorkerRun,
    airflow_environment,
    current_rss_mib,
    emit,
    http_provider_installed,
    median,
    peak_rss_mib,
    python_worker,
    run_worker,
    simulator_process,
    worker_result,
)
from benchmarks.setup_api import package_url

CURL = shutil.which("curl") or "/usr/bin/curl"
RSS_TARGET_MIB = 150.0
RATIO_TARGET = 0.9


# -- workers: one download each, in a fresh interpreter ---------------------------------------------


def _work(mode: str, url: str, destination: str) -> None:
    import airflow.sdk  # noqa: F401  (every way runs inside an Airflow task, which has it imported)

    code = ""
    if mode == "provider":
        import airflow_provider_pixxel
        from airflow_provider_pixxel.hooks.download import download

        # Which checkout's code runs (--against runs another one).
        code = str(Path(airflow_provider_pixxel.__file__).resolve().parent)

        baseline = current_rss_mib()
        started = time.perf_counter()
        result = download(lambda: url, destination, overwrite=True)
        seconds = time.perf_counter() - started
        size = result.size
    elif mode == "requests":
        import requests

        baseline = current_rss_mib()
        started = time.perf_counter()
        content = requests.get(url, timeout=600).content
        Path(destination).write_bytes(content)
        seconds = time.perf_counter() - started
        size = len(content)
    elif mode == "httphook":
        from airflow.providers.http.hooks.http import HttpHook

        parts = urlsplit(url)
        os.environ["AIRFLOW_CONN_BENCH_HTTP"] = json.dumps(
            {"conn_type": "http", "host": parts.hostname, "port": parts.port, "schema": parts.scheme}
        )
        hook = HttpHook(method="GET", http_conn_id="bench_http")
        baseline = current_rss_mib()
        started = time.perf_counter()
        content = hook.run(endpoint=f"{parts.path}?{parts.query}").content
        Path(destination).write_bytes(content)
        seconds = time.perf_counter() - started
        size = len(content)
    else:
        raise SystemExit(f"unknown worker mode {mode!r}")
    worker_result(
        {
            "seconds": seconds,
            "bytes": size,
            "baseline_rss_mib": baseline,
            "peak_rss_mib": peak_rss_mib(),
            "code": code,
        }
    )


# -- the parent: alternate the ways, same URL, same destination disk --------------------------------


def _clean(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _python_download(mode: str, url: str, directory: Path, code_root: str | None = None) -> WorkerRun:
    command = python_worker("bench_download", "--worker", mode, url, str(directory / "package.zip"))
    env = None
    if code_root is not None:
        # This checkout's benchmark worker, the other checkout's provider package: ``code_root`` holds only
        # a link to it, ahead of this checkout. -P keeps the current directory off the front of sys.path.
        command = [sys.executable, "-P", *command[1:]]
        env = airflow_environment({"PYTHONPATH": os.pathsep.join([code_root, str(REPO_ROOT)])})
    run = run_worker(command, env=env)
    # The worker's own VmHWM: exact, where wait4's figure may start from the parent's size at fork.
    run.peak_rss_mib = run.result["peak_rss_mib"]
    _clean(directory)
    return run


def _curl_download(url: str, directory: Path, *, fsync: bool = False) -> WorkerRun:
    """``curl -o``; with ``fsync``, plus the time to make its file durable, as the provider does."""
    run = run_worker(
        [
            CURL,
            "-sS",
            "--fail",
            "-o",
            str(directory / "package.zip"),
            "-w",
            "%{time_total} %{size_download}",
            url,
        ]
    )
    seconds_text, size_text = run.stdout.split()
    seconds = float(seconds_text)
    if fsync:
        started = time.perf_counter()
        with open(directory / "package.zip", "rb") as handle:
            os.fsync(handle.fileno())
        seconds += time.perf_counter() - started
    run.result = {"throughput": float(size_text) / seconds / MIB}
    _clean(directory)
    return run


def _throughput(result: dict[str, float]) -> float:
    return result["bytes"] / result["seconds"] / MIB


def _provider_only(checkout: str, scratch: Path) -> str:
    """A folder holding only a link to ``checkout``'s provider package, to put first on PYTHONPATH."""
    folder = scratch.parent / f"{scratch.name}-against"
    folder.mkdir(exist_ok=True)
    (folder / "airflow_provider_pixxel").symlink_to(Path(checkout).resolve() / "airflow_provider_pixxel")
    return str(folder)


def measure(
    size_mib: int, runs: int, rss_sizes_mib: list[int], naive_runs: int, against: str | None = None
) -> None:
    rows: list[Row] = []
    details: dict[str, object] = {"size_mib": size_mib, "runs": runs}
    scratch = Path(tempfile.mkdtemp(prefix="pixxel-bench-download-"))
    against_code = _provider_only(against, scratch) if against else None
    try:
        with simulator_process(package_size_bytes=size_mib * MIB) as simulator:
            url = package_url(simulator.base_url)
            provider: list[WorkerRun] = []
            curl: list[WorkerRun] = []
            curl_fsync: list[WorkerRun] = []
            ratios: list[float] = []
            fsync_ratios: list[float] = []
            other: list[WorkerRun] = []
            against_ratios: list[float] = []
            naive: dict[str, list[WorkerRun]] = {"requests": []}
            if http_provider_installed():
                naive["httphook"] = []
            for round_index in range(runs):
                # Rotate which goes first, so none always meets a warmer page cache or a busier disk.
                ways = ["provider", "curl", "curl+fsync"] + (["against"] if against else [])
                order = ways[round_index % len(ways) :] + ways[: round_index % len(ways)]
                measured: dict[str, float] = {}
                for way in order:
                    if way == "provider":
                        run = _python_download("provider", url, scratch)
                        provider.append(run)
                        measured[way] = _throughput(run.result)
                    elif way == "against":
                        run = _python_download("provider", url, scratch, code_root=against_code)
                        other.append(run)
                        measured[way] = _throughput(run.result)
                    else:
                        run = _curl_download(url, scratch, fsync=way == "curl+fsync")
                        (curl if way == "curl" else curl_fsync).append(run)
                        measured[way] = run.result["throughput"]
                ratios.append(measured["provider"] / measured["curl"])
                fsync_ratios.append(measured["provider"] / measured["curl+fsync"])
                if against:
                    against_ratios.append(measured["provider"] / measured["against"])
                if round_index < naive_runs:
                    for mode in naive:
                        naive[mode].append(_python_download(mode, url, scratch))
        provider_mibs = median([_throughput(run.result) for run in provider])
        curl_mibs = median([run.result["throughput"] for run in curl])
        curl_fsync_mibs = median([run.result["throughput"] for run in curl_fsync])
        ratio = median(ratios)
        rows += [
            Row(
                "download",
                f"provider download() {size_mib} MiB, median of {runs}",
                f"{provider_mibs:.0f} MiB/s",
            ),
            Row("download", f"curl -o {size_mib} MiB, median of {runs}", f"{curl_mibs:.0f} MiB/s"),
            Row(
                "download",
                "throughput ratio provider/curl (median of paired rounds)",
                f"{ratio:.2f}",
                f">= {RATIO_TARGET}",
                ratio >= RATIO_TARGET,
            ),
            Row(
                "download",
                f"side figure: curl -o + fsync {size_mib} MiB (the provider's durability), median of {runs}",
                f"{curl_fsync_mibs:.0f} MiB/s",
            ),
            Row(
                "download",
                "side figure: ratio provider/(curl -o + fsync) (median of paired rounds)",
                f"{median(fsync_ratios):.2f}",
            ),
            Row(
                "download",
                f"provider peak RSS at {size_mib} MiB",
                f"{max(run.peak_rss_mib for run in provider):.0f} MiB",
            ),
            Row(
                "download",
                f"curl peak RSS at {size_mib} MiB",
                f"{max(run.peak_rss_mib for run in curl):.0f} MiB",
            ),
        ]
        if against:
            rows += [
                Row(
                    "download",
                    f"provider download() {size_mib} MiB from {against}, median of {runs}",
                    f"{median([_throughput(run.result) for run in other]):.0f} MiB/s",
                ),
                Row(
                    "download",
                    "throughput ratio this/--against (median of paired rounds)",
                    f"{median(against_ratios):.2f}",
                ),
                Row(
                    "download",
                    f"peak RSS at {size_mib} MiB: this / --against",
                    f"{max(run.peak_rss_mib for run in provider):.0f} / "
                    f"{max(run.peak_rss_mib for run in other):.0f} MiB",
                ),
            ]
            details["against"] = {"code": other[0].result["code"], "ratios": against_ratios}
            details["code"] = provider[0].result["code"]
        labels = {"requests": "requests.get().content", "httphook": "HttpHook.run().content"}
        for mode, naive_runs_done in naive.items():
            if not naive_runs_done:
                continue
            mibs = median([_throughput(run.result) for run in naive_runs_done])
            peak = max(run.peak_rss_mib for run in naive_runs_done)
            rows.append(
                Row(
                    "download",
                    f"{labels[mode]} {size_mib} MiB: throughput, peak RSS",
                    f"{mibs:.0f} MiB/s, {peak:.0f} MiB",
                )
            )
        details["provider_runs"] = [run.result for run in provider]
        details["ratios"] = ratios
        details["fsync_ratios"] = fsync_ratios
        for rss_size in rss_sizes_mib:
            with simulator_process(package_size_bytes=rss_size * MIB) as simulator:
                run = _python_download("provider", package_url(simulator.base_url), scratch)
            rows.append(
                Row(
                    "download",
                    f"provider peak RSS at {rss_size} MiB "
                    f"(after imports: {run.result['baseline_rss_mib']:.0f} MiB)",
                    f"{run.peak_rss_mib:.0f} MiB",
                    f"< {RSS_TARGET_MIB:.0f} MiB, flat",
                    run.peak_rss_mib < RSS_TARGET_MIB,
                )
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if against_code:
            shutil.rmtree(against_code, ignore_errors=True)
    emit(rows, **details)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "URL", "DESTINATION"), help=argparse.SUPPRESS)
    parser.add_argument("--size-mib", type=int, default=1024, help="package size for the ratio (MiB)")
    parser.add_argument("--runs", type=int, default=5, help="rounds of provider, curl, curl + fsync")
    parser.add_argument(
        "--rss-sizes-mib", type=int, nargs="*", default=[256, 2048], help="sizes for peak RSS"
    )
    parser.add_argument("--naive-runs", type=int, default=2, help="rounds that also run requests/HttpHook")
    parser.add_argument(
        "--against", metavar="DIR", help="another checkout whose download() to run in each round, for a ratio"
    )
    args = parser.parse_args()
    if args.worker:
        _work(*args.worker)
        return
    measure(args.size_mib, args.runs, args.rss_sizes_mib, args.naive_runs, args.against)


if __name__ == "__main__":
    main()
