"""``pixxel-simulator``: serve the Pixxel API simulator until interrupted.

Prints, one per line and before serving, the base URL, the API key and a ready-made Airflow
connection, so a script can read them::

    PIXXEL_SIMULATOR_URL=http://127.0.0.1:43127
    PIXXEL_SIMULATOR_API_KEY=pixxel-simulator-key
    AIRFLOW_CONN_PIXXEL_DEFAULT={"conn_type": "pixxel", "host": "http://127.0.0.1:43127", ...}
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from airflow_provider_pixxel.simulator.server import base_url_of, bind_socket, connection_json, serve_forever
from airflow_provider_pixxel.simulator.state import (
    DEFAULT_API_KEY,
    DEFAULT_PACKAGE_SIZE_BYTES,
    SimulatorState,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixxel-simulator", description="Local simulator of the Pixxel Aurora API (api.pixxel.space)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free port)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="API key clients must send")
    parser.add_argument(
        "--accept-auth-prefix",
        metavar="PREFIX",
        default=None,
        help="also accept 'Authorization: PREFIX <key>' (e.g. Bearer); by default only the exact key is "
        "accepted, as the Pixxel API does",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=2.0,
        help="seconds per status step; 0 = done on the first poll (default 2)",
    )
    parser.add_argument(
        "--steps-per-poll",
        type=int,
        default=None,
        help="advance resources this many steps per read instead of by time",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated workspace (default 0)")
    parser.add_argument(
        "--package-size", type=int, default=DEFAULT_PACKAGE_SIZE_BYTES, help="bytes per download package"
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default warning, or info with --access-log)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (signed URL queries included); implies --log-level info unless a level "
        "is given",
    )
    return parser


def log_level_from_args(args: argparse.Namespace) -> str:
    """The server's log level: the one given, else ``info`` with ``--access-log``, else ``warning``.

    uvicorn writes its access lines at INFO, so ``--access-log`` under the quiet default level would
    log nothing at all.
    """
    if args.log_level is not None:
        return str(args.log_level)
    return "info" if args.access_log else "warning"


def state_from_args(args: argparse.Namespace) -> SimulatorState:
    """The simulator state the parsed command line asks for."""
    return SimulatorState(
        api_key=args.api_key,
        accept_auth_prefix=args.accept_auth_prefix,
        speed=args.speed,
        steps_per_poll=args.steps_per_poll,
        seed=args.seed,
        package_size_bytes=args.package_size,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.speed < 0:
        print("pixxel-simulator: --speed cannot be negative", file=sys.stderr)
        return 2
    state = state_from_args(args)
    sock = bind_socket(args.host, args.port)
    base_url = base_url_of(sock)
    print(f"PIXXEL_SIMULATOR_URL={base_url}")
    print(f"PIXXEL_SIMULATOR_API_KEY={args.api_key}")
    print(f"AIRFLOW_CONN_PIXXEL_DEFAULT={connection_json(base_url, args.api_key)}", flush=True)
    serve_forever(state, sock, log_level=log_level_from_args(args), access_log=args.access_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
