"""Benchmark 6: an oversized API answer costs memory up to the cap, not up to the answer.

A loopback server answers a status read with a JSON object of ``--size-mib`` (256 MiB by default),
once with its ``Content-Length`` and once streamed without one. ``PixxelHook`` refuses both (the
connection's ``max_response_mib``, ``--cap-mib``): the first on its header, the second once the cap is
passed. Each read runs in its own process; the figure is that process's peak RSS above its baseline
after imports, against the cap. For scale, the same answer read whole with ``requests`` (what the hook
did before the cap) is measured too, at the same size.

    python -m benchmarks.bench_answers [--size-mib 256] [--cap-mib 32]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from benchmarks._common import (
    API_KEY,
    MIB,
    Row,
    airflow_environment,
    current_rss_mib,
    emit,
    peak_rss_mib,
    python_worker,
    run_worker,
    worker_result,
)

JOB_PATH = "/v0/workflows/wf-1/jobs/job-1"
CHUNK = b"x" * MIB


def _handler(size_bytes: int) -> type[BaseHTTPRequestHandler]:
    opening, closing = b'{"padding": "', b'"}'

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if "declared" in self.path:
                self.send_header("Content-Length", str(size_bytes))
            self.send_header("Connection", "close")
            self.end_headers()
            with contextlib.suppress(OSError):  # the client hangs up once it has seen enough
                self.wfile.write(opening)
                left = size_bytes - len(opening) - len(closing)
                while left > 0:
                    piece = CHUNK[: min(len(CHUNK), left)]
                    self.wfile.write(piece)
                    left -= len(piece)
                self.wfile.write(closing)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def answer_server(size_bytes: int) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(size_bytes))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _work(mode: str, base_url: str) -> None:
    import requests

    from airflow_provider_pixxel.exceptions import PixxelApiError
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook

    hook = PixxelHook()
    hook.get_conn()
    baseline = current_rss_mib()
    if mode == "naive":
        answer = requests.get(f"{base_url}{JOB_PATH}", timeout=60).json()
        outcome = f"read whole ({len(answer['padding']) / MIB:.0f} MiB of padding)"
    else:
        # A workflow id of "declared" makes the server send the answer's Content-Length.
        try:
            hook.get_job("declared" if mode == "declared" else "wf-1", "job-1")
            outcome = "read whole"
        except PixxelApiError as error:
            outcome = f"refused ({error.code})"
    worker_result({"baseline_rss_mib": baseline, "peak_rss_mib": peak_rss_mib(), "outcome": outcome})


def measure(size_mib: int, cap_mib: int) -> None:
    runs = {}
    with answer_server(size_mib * MIB) as base_url:
        connection = json.dumps(
            {
                "conn_type": "pixxel",
                "host": base_url,
                "password": API_KEY,
                "extra": {"max_response_mib": cap_mib, "max_retries": 0},
            }
        )
        env = airflow_environment({"AIRFLOW_CONN_PIXXEL_DEFAULT": connection})
        for mode in ("declared", "streamed", "naive"):
            runs[mode] = run_worker(python_worker("bench_answers", "--worker", mode, base_url), env=env)
    growth = {mode: run.result["peak_rss_mib"] - run.result["baseline_rss_mib"] for mode, run in runs.items()}
    bound = 2 * cap_mib
    rows = [
        Row(
            "answers",
            f"hook peak RSS growth, {size_mib} MiB answer with Content-Length (cap {cap_mib} MiB)",
            f"{growth['declared']:.0f} MiB, {runs['declared'].result['outcome']}",
            f"<= {bound} MiB (twice the cap)",
            growth["declared"] <= bound and "refused" in runs["declared"].result["outcome"],
        ),
        Row(
            "answers",
            f"hook peak RSS growth, {size_mib} MiB answer streamed without a length (cap {cap_mib} MiB)",
            f"{growth['streamed']:.0f} MiB, {runs['streamed'].result['outcome']}",
            f"<= {bound} MiB (twice the cap)",
            growth["streamed"] <= bound and "refused" in runs["streamed"].result["outcome"],
        ),
        Row(
            "answers",
            f"requests.get().json() of the same {size_mib} MiB answer, for scale",
            f"{growth['naive']:.0f} MiB, {runs['naive'].result['outcome']}",
        ),
    ]
    emit(rows, runs={mode: run.result for mode, run in runs.items()})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--size-mib", type=int, default=256, help="size of the hostile answer")
    parser.add_argument("--cap-mib", type=int, default=32, help="the connection's max_response_mib")
    args = parser.parse_args()
    if args.worker:
        _work(args.worker[0], args.worker[1])
        return
    measure(args.size_mib, args.cap_mib)


if __name__ == "__main__":
    main()
