"""The Pixxel API simulator as a service of its own, with a log of what it was asked and what it created.

``python -m scripts.deployment.simulator_log --log PATH [--speed S] [--package-size BYTES]`` serves the
simulator on a free 127.0.0.1 port, prints the same three lines as ``pixxel-simulator``
(``PIXXEL_SIMULATOR_URL=...``, ``PIXXEL_SIMULATOR_API_KEY=...``, ``AIRFLOW_CONN_PIXXEL_DEFAULT=...``) and
appends to ``PATH``, a few times a second, one JSON object per line:

* ``{"event": "created", "kind": "order", "id": "...", "time": ...}`` for every resource created through
  the API (dry runs and estimates create nothing); a package also has ``"of"``, the ids of the job,
  task or insight (and AOI) it packages, as no API answer names a package's own id; and
* ``{"event": "request", "method": "POST", "path": "/v0/orders", "status": 201, "time": ...}`` for every
  request once it was answered (paths only: signed-URL queries are not written), with ``"dry_run":
  true|false`` when its body has that field (``POST /v0/orders`` prices with it and buys without it).

The deployment suite reads it to prove "exactly one order placed" across processes it cannot look into.
It serves until SIGINT or SIGTERM, then writes what is left and exits 0.

SIGUSR1 makes every package made from then on the simulator's default size (256 KiB) instead of
``--package-size``, and logs ``{"event": "package_size", "bytes": ..., "time": ...}`` once in effect:
the suite needs one large package (to kill a worker in the middle of it) and no more.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from airflow_provider_pixxel.simulator import run_simulator
from airflow_provider_pixxel.simulator.server import connection_json
from airflow_provider_pixxel.simulator.state import DEFAULT_PACKAGE_SIZE_BYTES, SimulatorState

FLUSH_EVERY_SECONDS = 0.2


class LogWriter:
    """Appends what the simulator recorded since the last call, in order, each record once."""

    def __init__(self, state: SimulatorState, sink: IO[str]) -> None:
        self.state = state
        self.sink = sink
        self.created_written = 0
        self.requests_written = 0

    def write_new(self, *, final: bool = False) -> None:
        created = self.state.created()
        for record in created[self.created_written :]:
            entry: dict[str, Any] = {
                "event": "created",
                "kind": record.kind,
                "id": record.id,
                "time": record.time,
            }
            if record.kind == "package":
                entry["of"] = sorted(str(value) for value in record.resource.get("source", {}).values())
            self._write(entry)
        self.created_written = len(created)
        requests = self.state.requests()
        for request in requests[self.requests_written :]:
            # A request is written once its status is known, so the log never says "None" for a request
            # that was answered a moment later; the last flush writes the unanswered ones as they are.
            if request.status is None and not final:
                break
            entry = {
                "event": "request",
                "method": request.method,
                "path": request.path,
                "status": request.status,
                "time": request.time,
            }
            if isinstance(request.body, dict) and "dry_run" in request.body:
                # A priced order and a bought one share method, path and status: only the body differs.
                entry["dry_run"] = bool(request.body["dry_run"])
            self._write(entry)
            self.requests_written += 1
        self.sink.flush()

    def package_size_changed(self) -> None:
        self._write(
            {"event": "package_size", "bytes": self.state.package_size_bytes, "time": self.state.now()}
        )
        self.sink.flush()

    def _write(self, entry: dict[str, Any]) -> None:
        self.sink.write(json.dumps(entry) + "\n")


def read_log(path: Path) -> list[dict[str, Any]]:
    """The entries of a log written by this service (an empty list before it wrote any)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simulator_log", description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, required=True, help="JSON-lines file to append to")
    parser.add_argument("--speed", type=float, default=1.0, help="seconds per status step (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--package-size", type=int, default=None, help="bytes per download package")
    parser.add_argument("--api-key", default=None, help="API key clients must send")
    args = parser.parse_args(argv)

    options: dict[str, Any] = {}
    if args.package_size is not None:
        options["package_size_bytes"] = args.package_size
    if args.api_key is not None:
        options["api_key"] = args.api_key
    stop = threading.Event()
    default_packages = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: default_packages.set())
    with run_simulator(speed=args.speed, seed=args.seed, host="127.0.0.1", **options) as sim:
        print(f"PIXXEL_SIMULATOR_URL={sim.base_url}")
        print(f"PIXXEL_SIMULATOR_API_KEY={sim.api_key}")
        print(f"AIRFLOW_CONN_PIXXEL_DEFAULT={connection_json(sim.base_url, sim.api_key)}", flush=True)
        with args.log.open("a") as sink:
            writer = LogWriter(sim.state, sink)
            while not stop.wait(FLUSH_EVERY_SECONDS):
                writer.write_new()
                if default_packages.is_set():
                    default_packages.clear()
                    # Read when a package is first made ready: downloads already served keep their size.
                    sim.state.package_size_bytes = DEFAULT_PACKAGE_SIZE_BYTES
                    writer.package_size_changed()
            writer.write_new(final=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
