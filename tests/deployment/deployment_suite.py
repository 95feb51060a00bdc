"""``make test-deployment``: the provider in real Airflow deployments on this machine, with faults.

Not a pytest module (``make test`` does not collect it): a plain program driving real processes, run as
``python -m tests.deployment.deployment_suite [--leg single|distributed|all]``. Each check prints one
line as it ends; a table of every check (leg, what, outcome, seconds) and the closing line
``N passed, N failed`` come at the end, and the exit status is 1 when anything failed.

* **single**: ``scripts/airflow_local.py`` (what ``make airflow`` runs: api-server, scheduler,
  dag-processor, triggerer; LocalExecutor, SQLite) started as a user would, then driven through the REST
  API and the CLI: the flagship DAG and the daily-PNG DAG triggered through the scheduler with a logical
  date, a 3-day ``airflow backfill create``, a SIGKILLed triggerer during the flagship's deferred wait
  (restarted by the supervisor; the wait resumes, exactly one order in the simulator's log), five runs
  of the archive purchase at once under a spend budget with room for two, their purchases in a one-slot
  pool (exactly two bought, three refused, never two at once; ``tests/deployment/purchase_pool.py``), no
  listener beyond loopback, the API key in no log file, and SIGINT stopping every process.
* **distributed**: PostgreSQL (a throwaway ``initdb`` cluster), CeleryExecutor with a Redis broker, two
  Celery workers with separate working and temp directories and host names, two triggerers, and an S3
  store (moto's server) holding every output (``output_dir=s3://...``); then a worker SIGKILLed in the
  middle of a large download, a triggerer SIGKILLed while holding a deferred wait, the five other
  example DAGs at once (``pixxel_capture_events`` run by its asset watcher) next to a 5-day backfill
  running 3 at a time, and one row per example DAG: its runs succeeded, the store holds exactly the
  files they recorded (SHA-256 and size), no ``.part`` object was ever visible, and the simulator's log
  holds exactly the creations of one run. Skipped, with the reason, where the PostgreSQL 15 or Redis
  binaries are missing.

Everything listens on 127.0.0.1, every process is stopped by its PID (also on failure), every wait is
bounded. On a failed check the ends of the service logs are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from scripts.deployment.simulator_log import read_log
from scripts.deployment.stack import (
    AirflowApi,
    AirflowSite,
    DeploymentError,
    listening_sockets,
    wait_for,
)
from tests.deployment.common import (
    DAILY_PNG,
    FLAGSHIP,
    Report,
    backfill,
    creates_in,
    expect_success,
    resumed_not_retried,
    sha256_bytes,
    today_midnight,
    wait_for_task_state,
)
from tests.deployment.purchase_pool import PURCHASE_POOL, check_budget_pool, create_purchase_pool

REPO = Path(__file__).resolve().parents[2]

# -- the single-machine leg: make airflow ------------------------------------------------------------

# Seconds per simulator status step: slow enough that the flagship's order is still open when its wait
# has deferred (placing the order and starting the sensor take a few seconds of task start-up).
SIMULATOR_SPEED = 10


def single_machine_leg(report: Report, work: Path) -> None:
    leg = "single"
    state_dir = work / "single"
    ready_file = work / "single-ready.json"
    api_key = "deploy-" + secrets.token_hex(16)
    output_dir = state_dir / "output"
    console = (work / "single-make-airflow.log").open("wb")
    launcher = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "airflow_local.py"),
            "--state-dir",
            str(state_dir),
            "--ready-file",
            str(ready_file),
            "--simulator-speed",
            str(SIMULATOR_SPEED),
            "--simulator-api-key",
            api_key,
        ],
        stdout=console,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=REPO,
        # Every service parses the purchases (place_order of the archive purchase and of the flagship)
        # into the one-slot pool, created before the first run.
        env={**os.environ, "PIXXEL_PURCHASE_POOL": PURCHASE_POOL},
    )
    seen_pids: set[int] = {launcher.pid}

    def dump() -> None:
        print(f"----- make airflow console ({console.name}) -----", file=sys.stderr)
        print("\n".join(Path(console.name).read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
        for log in sorted((state_dir / "service-logs").glob("*.log")):
            print(f"----- {log} -----", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-25:]), file=sys.stderr)

    report.on_failure = dump

    def ready() -> dict[str, Any]:
        if launcher.poll() is not None:
            raise DeploymentError(f"make airflow exited ({launcher.returncode}) before it was ready")
        if not ready_file.exists():
            return {}
        info = dict(json.loads(ready_file.read_text()))
        seen_pids.update(p for pids in info["pids"].values() for p in pids)
        return info

    try:
        api: AirflowApi | None = None
        with report.check(leg, "make airflow: UI answers, DAGs parsed and unpaused") as note:
            info = wait_for(ready, timeout=420, what="make airflow to be ready", interval=1)
            with urllib.request.urlopen(info["api_url"] + "/", timeout=30) as response:
                page = response.read().decode(errors="replace")
            if response.status != 200 or "<html" not in page.lower():
                raise DeploymentError(f"the UI at {info['api_url']} did not answer with a page")
            api = AirflowApi(info["api_url"], info["username"], info["password"])
            paused = {d: api.dag(d)["is_paused"] for d in (FLAGSHIP, DAILY_PNG)}  # type: ignore[index]
            if any(paused.values()):
                raise DeploymentError(f"paused: {paused}")
            note["detail"] = f"{info['api_url']}; services: {', '.join(info['pids'])}"
        if api is None:
            return
        env = dict(json.loads(Path(info["env_file"]).read_text()))
        site = AirflowSite(
            Path(env["AIRFLOW_HOME"]), env, int(info["api_url"].rsplit(":", 1)[1]), info["password"]
        )

        with report.check(leg, "1-slot pool pixxel_purchases created before any run") as note:
            create_purchase_pool(api, site, note)

        with report.check(leg, "every listener on 127.0.0.1") as note:
            pids = [p for pids in ready()["pids"].values() for p in pids]
            sockets = listening_sockets(pids)
            outside = [s for s in sockets if s[1] != "127.0.0.1"]
            ss = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=False).stdout
            mine = [line for line in ss.splitlines() if any(f"pid={p}," in line for p in pids)]
            print("\n".join(["ss -ltnp (the deployment's processes):", *mine]))
            if outside:
                raise DeploymentError(f"listening beyond loopback: {outside}")
            note["detail"] = ", ".join(f"{a}:{p}" for _, a, p in sockets)

        with report.check(leg, "flagship via scheduler; triggerer SIGKILLed in its deferred wait") as note:
            run_id = "deploy-flagship"
            api.trigger(
                FLAGSHIP, logical_date=today_midnight(), conf={"output_dir": str(output_dir)}, run_id=run_id
            )
            wait_for_task_state(api, FLAGSHIP, run_id, "wait_for_order", "deferred", timeout=300)
            (triggerer_pid, *_) = ready()["pids"]["triggerer"]
            os.kill(triggerer_pid, signal.SIGKILL)
            wait_for(
                lambda: ready()["restarts"]["triggerer"] >= 1,
                timeout=60,
                what="make airflow to restart the triggerer",
            )
            expect_success(api, FLAGSHIP, run_id)
            resumed_not_retried(api, FLAGSHIP, run_id, "wait_for_order")
            (summary_path,) = output_dir.glob(f"{FLAGSHIP}/*/summary.json")
            summary = json.loads(summary_path.read_text())
            for entry in summary["files"]:
                data = Path(entry["path"]).read_bytes()
                if sha256_bytes(data) != entry["sha256"] or len(data) != entry["size"]:
                    raise DeploymentError(f"{entry['path']} does not match its recorded digest")
            orders = creates_in(read_log(state_dir / "service-logs" / "simulator-requests.jsonl"), "order")
            if orders != [summary["order_id"]]:
                raise DeploymentError(f"orders created: {orders}, expected exactly {summary['order_id']}")
            note["detail"] = (
                f"triggerer pid {triggerer_pid} killed and restarted; wait resumed in try 1; 1 order"
            )

        with report.check(leg, "daily PNG via scheduler (2025-03-02)") as note:
            run_id = "deploy-daily-2025-03-02"
            api.trigger(
                DAILY_PNG,
                logical_date="2025-03-02T00:00:00Z",
                conf={"output_dir": str(output_dir)},
                run_id=run_id,
            )
            expect_success(api, DAILY_PNG, run_id)
            (manifest,) = output_dir.glob(f"{DAILY_PNG}/*/2025-03-02/manifest.json")
            png = json.loads(manifest.read_text())["png"]
            if sha256_bytes(Path(png["path"]).read_bytes()) != png["sha256"]:
                raise DeploymentError(f"{png['path']} does not match its recorded digest")
            note["detail"] = f"{png['path']} ({png['size']} bytes)"

        with report.check(leg, "airflow backfill create, 3 days") as note:
            backfill_days = ("2025-03-03", "2025-03-04", "2025-03-05")
            backfill(
                site, DAILY_PNG, backfill_days[0], backfill_days[-1], conf={"output_dir": str(output_dir)}
            )
            partitions = sorted(p.parent.name for p in output_dir.glob(f"{DAILY_PNG}/*/*/manifest.json"))
            if partitions != ["2025-03-02", *backfill_days]:
                raise DeploymentError(f"partitions: {partitions}")
            note["detail"] = f"partitions {', '.join(partitions)}"

        with report.check(leg, "5 budgeted purchases at once in a 1-slot pool") as note:
            check_budget_pool(
                api, site, state_dir / "service-logs" / "simulator-requests.jsonl", output_dir, note
            )

        with report.check(leg, "the API key in no log file") as note:
            logs = [
                p for p in state_dir.rglob("*") if p.is_file() and (p.suffix == ".log" or "logs" in p.parts)
            ]
            # The simulator's own console announces the key it expects; that is the one place it belongs.
            logs = [p for p in logs if p.name != "simulator.log"] + [Path(console.name)]
            leaking = [str(p) for p in logs if api_key.encode() in p.read_bytes()]
            if leaking:
                raise DeploymentError(f"the API key appears in {leaking}")
            note["detail"] = f"{len(logs)} log files scanned"
    finally:
        report.on_failure = None
        with report.check(leg, "SIGINT stops every process make airflow started") as note:
            if launcher.poll() is None:
                ready_now = ready_file.exists() and json.loads(ready_file.read_text())
                if ready_now:
                    seen_pids.update(p for pids in ready_now["pids"].values() for p in pids)
                os.kill(launcher.pid, signal.SIGINT)
            try:
                code = launcher.wait(timeout=180)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait(timeout=30)
                raise DeploymentError("make airflow did not stop within 180 s of SIGINT") from None
            console.close()
            alive = [p for p in sorted(seen_pids) if _alive(p)]
            if alive:
                for pid in alive:
                    os.kill(pid, signal.SIGKILL)
                raise DeploymentError(f"still running after make airflow stopped: {alive}")
            if code != 0:
                raise DeploymentError(f"make airflow exited {code} after SIGINT")
            note["detail"] = f"{len(seen_pids)} processes, none left"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its parent.
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deployment_suite", description=__doc__.splitlines()[0])
    parser.add_argument("--leg", choices=["single", "distributed", "all"], default="all")
    parser.add_argument("--keep", action="store_true", help="keep the working directory for inspection")
    args = parser.parse_args(argv)
    report = Report()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="pixxel-deploy-"))
    print(f"working directory: {work}", flush=True)
    try:
        if args.leg in ("single", "all"):
            single_machine_leg(report, work)
        if args.leg in ("distributed", "all"):
            from tests.deployment.distributed import distributed_leg

            distributed_leg(report, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return report.print_table(time.monotonic() - started)


if __name__ == "__main__":
    sys.exit(main())
