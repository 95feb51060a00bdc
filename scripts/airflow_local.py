"""``make airflow``: the example DAGs in a real Airflow 3, on the local Pixxel API simulator.

Starts, each as its own process on 127.0.0.1 only: the simulator (about one status step per second),
and Airflow's api-server, scheduler (LocalExecutor, SQLite), dag-processor and triggerer, with a throwaway
``AIRFLOW_HOME`` under ``.airflow/``, ``pixxel_default`` pointing at the simulator and the example DAGs
loaded and unpaused. Prints the UI address and the login, then stays in the foreground; Ctrl-C (or
SIGTERM) stops every process it started, by PID, and so does any error. An Airflow service that dies on
its own (a crash, an OOM kill) is restarted, as a service manager would, up to ``MAX_RESTARTS`` times;
then everything stops, with the end of its log.

``--ready-file PATH`` writes ``{"api_url", "env_file", "username", "password", "pids", "restarts"}`` once
everything is up and again after each restart (what the deployment suite uses to drive it without a
terminal).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts.deployment.stack import (  # noqa: E402
    ADMIN_USER,
    DeploymentError,
    Supervisor,
    airflow_site,
    start_airflow_services,
    start_simulator,
    wait_for_dags,
)

STATE_DIR = REPO / ".airflow"
EXAMPLE_DAG_IDS = (
    "pixxel_tasking_to_delivery",
    "pixxel_archive_purchase",
    "pixxel_daily_index_png",
    "pixxel_capture_events",
    "pixxel_fan_out",
    "pixxel_insights",
    "pixxel_workflow_job",
)
WATCH_EVERY_SECONDS = 1.0
MAX_RESTARTS = 3


def say(message: str) -> None:
    print(f"[airflow] {message}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make airflow", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help="where AIRFLOW_HOME and logs go")
    parser.add_argument("--ready-file", type=Path, default=None)
    parser.add_argument("--simulator-speed", type=float, default=1.0, help="seconds per status step")
    parser.add_argument("--simulator-api-key", default=None, help="the key the simulator expects")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    supervisor = Supervisor(args.state_dir / "service-logs")
    status = 0
    try:
        say("starting the Pixxel API simulator on 127.0.0.1")
        simulator = start_simulator(supervisor, speed=args.simulator_speed, api_key=args.simulator_api_key)
        site = airflow_site(args.state_dir / "home", simulator)
        # The configuration of every service, for `airflow` CLI commands against this instance (it holds
        # the simulator's key and the JWT secret: readable by this user only).
        env_file = site.home / "deployment-env.json"
        env_file.touch(mode=0o600)
        env_file.write_text(json.dumps(site.env))
        say(f"airflow db migrate (SQLite in {site.home})")
        site.run("db", "migrate", timeout=600)
        say("starting api-server, scheduler, dag-processor and triggerer")
        start_airflow_services(supervisor, site)
        api = site.api()
        wait_for_dags(api, EXAMPLE_DAG_IDS)
        for dag_id in EXAMPLE_DAG_IDS:
            api.set_paused(dag_id, False)

        def write_ready_file() -> None:
            if args.ready_file is None:
                return
            ready = {
                "api_url": site.api_url,
                "env_file": str(env_file),
                "username": ADMIN_USER,
                "password": site.password,
                "pids": {name: supervisor.pids(name) for name in supervisor.services},
                "restarts": {name: service.restarts for name, service in supervisor.services.items()},
            }
            partial = args.ready_file.with_name(args.ready_file.name + ".tmp")
            partial.write_text(json.dumps(ready))
            partial.replace(args.ready_file)

        write_ready_file()
        print()
        print("=" * 100)
        print(f"Airflow UI:          {site.api_url}")
        print(f"Login:               {ADMIN_USER} / {site.password}")
        print(f"Pixxel simulator:    {simulator.base_url} (pixxel_default points at it)")
        print(f"Example DAGs:        {', '.join(EXAMPLE_DAG_IDS)} (unpaused)")
        print(f"Service logs:        {supervisor.log_dir}; task logs: {site.home / 'logs'}")
        print("Press Ctrl-C to stop every process started here.")
        print("=" * 100, flush=True)
        while not stop.wait(WATCH_EVERY_SECONDS):
            dead = [name for name in supervisor.services if not supervisor.alive(name)]
            for name in dead:
                if name == "simulator" or supervisor.services[name].restarts >= MAX_RESTARTS:
                    say(f"{name} exited on its own; the end of its log:\n{supervisor.tail(name)}")
                    status = 1
                    stop.set()
                    break
                code = supervisor.services[name].process.returncode
                say(f"{name} exited (status {code}); restarting it")
                supervisor.restart(name)
            if dead and not stop.is_set():
                write_ready_file()
    except DeploymentError as error:
        say(f"failed: {error}")
        supervisor.dump_tails()
        status = 1
    finally:
        # Ctrl-C during the stop must not leave processes behind: ignore it until everything is down.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        say(f"stopping {len(supervisor.services)} services")
        supervisor.stop_all()
        left = supervisor.leftover_pids()
        if left:
            say(f"still running after the stop: {left}")
            status = 1
        else:
            say("every process started here has stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
