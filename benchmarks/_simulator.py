"""The simulator for benchmarks, in its own process: ``pixxel-simulator`` plus bulk seeding.

``--workflows N`` copies the first seeded workflow until there are N. ``--seed-aois N`` adds N
finished AOIs straight into the state before serving (creating 100,000 AOIs through the API would
benchmark the simulator, not the provider's pager). ``--chaos-reads`` fails GET
requests as a bad day would (5xx, 429 with both ``Retry-After`` forms, resets, cut and slow answers);
POSTs, and so the benchmarks' set-up, are left alone.
"""

from __future__ import annotations

import argparse
import copy
import sys

from airflow_provider_pixxel.simulator.faults import FaultRule
from airflow_provider_pixxel.simulator.server import base_url_of, bind_socket, serve_forever
from airflow_provider_pixxel.simulator.state import DEFAULT_PACKAGE_SIZE_BYTES, SimulatorState


def seed_aois(state: SimulatorState, count: int) -> None:
    """``count`` more AOIs shaped like the seeded processed one, each with its own id and name."""
    template = next(iter(state.aois.values()))
    for index in range(count):
        aoi = copy.deepcopy(template)
        aoi["aoi_id"] = state.new_id()
        aoi["name"] = f"bench-aoi-{index:06d}"
        state.aois[aoi["aoi_id"]] = aoi


def seed_workflows(state: SimulatorState, count: int) -> None:
    """Workflows up to ``count`` in all, copies of the first seeded one (the API cannot create them)."""
    template = next(iter(state.workflows.values()))
    for index in range(len(state.workflows), count):
        workflow = copy.deepcopy(template)
        workflow["id"] = state.new_id()
        workflow["name"] = f"bench-workflow-{index:03d}"
        state.workflows[workflow["id"]] = workflow


def add_read_chaos(state: SimulatorState) -> None:
    """The chaos profile's faults of reads (the reliability suite's rates), on GETs only."""
    reads = frozenset({"GET"})
    rules = [
        FaultRule(kind="status", status=status, rate=rate, methods=reads)
        for status, rate in ((503, 0.04), (500, 0.03), (502, 0.02), (504, 0.02))
    ]
    rules += [
        FaultRule(kind="reset", rate=0.02, methods=reads),
        FaultRule(kind="truncate", rate=0.02, methods=reads),
        FaultRule(kind="status", status=429, rate=0.025, retry_after=1, methods=reads),
        FaultRule(
            kind="status", status=429, rate=0.025, retry_after=1, retry_after_form="date", methods=reads
        ),
        FaultRule(kind="slow", rate=0.03, delay=0.25, methods=reads),
    ]
    for rule in rules:
        state.faults.add(rule)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--speed", type=float, default=0.0)
    parser.add_argument("--package-size", type=int, default=DEFAULT_PACKAGE_SIZE_BYTES)
    parser.add_argument("--seed-aois", type=int, default=0)
    parser.add_argument("--chaos-reads", action="store_true")
    parser.add_argument("--wallet", type=float, default=None, help="the wallet's balance")
    parser.add_argument("--workflows", type=int, default=0, help="at least this many workflows")
    args = parser.parse_args()
    state = SimulatorState(speed=args.speed, package_size_bytes=args.package_size)
    if args.wallet is not None:
        state.wallet_balance = args.wallet
    seed_aois(state, args.seed_aois)
    seed_workflows(state, args.workflows)
    if args.chaos_reads:
        add_read_chaos(state)
    sock = bind_socket("127.0.0.1", 0)
    print(f"PIXXEL_SIMULATOR_URL={base_url_of(sock)}", flush=True)
    serve_forever(state, sock, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
