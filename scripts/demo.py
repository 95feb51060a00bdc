"""``make demo``: the flagship example DAG end to end against the local Pixxel API simulator.

Starts ``pixxel-simulator`` on a free loopback port (about one status step per second), makes a throwaway
``AIRFLOW_HOME`` under ``.demo/`` (SQLite), points ``pixxel_default`` at the simulator, runs
``airflow dags test pixxel_tasking_to_delivery`` with every wait deferred to the triggerer, and prints
what the run produced: the downloaded files with sizes and SHA-256, the index PNG, the order's cost.
The simulator is always stopped, and neither the user's own Airflow home nor a real Pixxel key is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_pixxel.hooks.transport import is_loopback_host

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / ".demo"
AIRFLOW_HOME = DEMO_DIR / "airflow-home"
OUTPUT_DIR = DEMO_DIR / "output"
DAG_TEST_LOG = DEMO_DIR / "dags-test.log"
FLAGSHIP_DAG = "pixxel_tasking_to_delivery"
SECONDS_PER_STEP = "1"
STARTUP_TIMEOUT_SECONDS = 30.0
BIN = Path(sys.executable).parent

# Anything that could send the demo to the real, paying service, or to the user's own Airflow.
IGNORED_ENVIRONMENT = {
    "PIXXEL_API_KEY": "a real Pixxel API key; the demo only ever talks to the local simulator",
    "AIRFLOW_CONN_PIXXEL_DEFAULT": "the demo points pixxel_default at the local simulator",
    "AIRFLOW_HOME": "the demo uses its own throwaway AIRFLOW_HOME under .demo/",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "the demo uses a throwaway SQLite database",
    "AIRFLOW__CORE__DAGS_FOLDER": "the demo runs the example DAGs of this checkout",
}


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def demo_environment(connection: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    for name, why in IGNORED_ENVIRONMENT.items():
        if name in env:
            say(f"ignoring {name} from your environment: {why}")
            del env[name]
    for name in [n for n in env if n.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__"))]:
        del env[name]
    env.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
            "PIXXEL_EXAMPLE_POLL_INTERVAL": SECONDS_PER_STEP,
            "AIRFLOW_CONN_PIXXEL_DEFAULT": json.dumps(connection),
            # The bucket credentials the delivery store is registered with (the simulator checks none).
            "AIRFLOW_CONN_PIXXEL_DELIVERY_BUCKET": json.dumps(
                {"conn_type": "aws", "login": "AKIADEMO", "password": "demo-secret"}
            ),
        }
    )
    return env


def start_simulator() -> tuple[subprocess.Popen[str], dict[str, str]]:
    command = [str(BIN / "pixxel-simulator"), "--host", "127.0.0.1", "--port", "0"]
    command += ["--speed", SECONDS_PER_STEP, "--seed", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    announced: dict[str, str] = {}
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    assert process.stdout is not None
    while len(announced) < 3 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        name, _, value = line.strip().partition("=")
        announced[name] = value
    if "PIXXEL_SIMULATOR_URL" not in announced:
        stop(process)
        raise SystemExit("[demo] the simulator did not start; run pixxel-simulator by hand to see why")
    return process, announced


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def first_project_id(base_url: str, api_key: str) -> str:
    request = urllib.request.Request(f"{base_url}/v0/projects", headers={"Authorization": api_key})
    with urllib.request.urlopen(request, timeout=10) as response:
        projects = json.load(response)["projects"]
    return str(projects[0]["id"])


def run(command: list[str], env: dict[str, str], log: Path | None = None) -> None:
    if log is None:
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        output = result.stdout + result.stderr
    else:
        with log.open("w") as sink:
            result = subprocess.run(command, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)
        output = log.read_text()
    if result.returncode != 0:
        print("\n".join(output.splitlines()[-60:]), file=sys.stderr)
        raise SystemExit(f"[demo] `{' '.join(command[:3])} ...` failed (exit {result.returncode})")


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    if not header.startswith(b"\x89PNG\r\n\x1a\n") or header[12:16] != b"IHDR":
        raise SystemExit(f"[demo] {path} is not a PNG")
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def print_summary(summary_path: Path) -> None:
    summary = json.loads(summary_path.read_text())
    print()
    print("=" * 100)
    print(f"Pixxel demo: {FLAGSHIP_DAG} finished against the local simulator")
    print(
        f"  order {summary['order_id']}: {summary['order_cost_tokens']:g} tokens, {summary['order_status']}"
    )
    print("  downloaded files (size, SHA-256 re-computed now and equal to what the run recorded):")
    for entry in summary["files"]:
        path = Path(entry["path"])
        digest = sha256_of(path)
        if digest != entry["sha256"] or path.stat().st_size != entry["size"]:
            raise SystemExit(f"[demo] {path} does not match the digest the run recorded")
        print(f"    {path}  {entry['size']:>9,} bytes  sha256 {digest}")
    png = summary["index_png"]
    width, height = png_size(Path(png["path"]))
    print(f"  {png['index']} PNG for {png['date']}: {png['path']}  ({width}x{height}, {png['size']:,} bytes)")
    deliveries = summary["deliveries"]
    print(f"  delivered to store {deliveries['store_id']}: {', '.join(map(str, deliveries['target_paths']))}")
    print(f"  summary: {summary_path}")
    print(f"  full log of the run: {DAG_TEST_LOG}")
    print("=" * 100)


def main() -> int:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    AIRFLOW_HOME.mkdir(parents=True)
    OUTPUT_DIR.mkdir(parents=True)
    say("starting the Pixxel API simulator (about 1 s per status step)")
    simulator, announced = start_simulator()
    try:
        base_url = announced["PIXXEL_SIMULATOR_URL"]
        host = urlsplit(base_url).hostname or ""
        if not is_loopback_host(host):
            raise SystemExit(f"[demo] refusing to run: the connection would point at {host}, not loopback")
        api_key = announced["PIXXEL_SIMULATOR_API_KEY"]
        connection = {
            "conn_type": "pixxel",
            "host": base_url,
            "password": api_key,
            "extra": {"project_id": first_project_id(base_url, api_key)},
        }
        say(f"simulator at {base_url}; throwaway AIRFLOW_HOME {AIRFLOW_HOME}")
        env = demo_environment(connection)
        say("airflow db migrate (SQLite)")
        run([str(BIN / "airflow"), "db", "migrate"], env)
        say(f"airflow dags test {FLAGSHIP_DAG} (deferrable waits; log in {DAG_TEST_LOG})")
        conf = json.dumps({"output_dir": str(OUTPUT_DIR)})
        run([str(BIN / "airflow"), "dags", "test", FLAGSHIP_DAG, "--conf", conf], env, log=DAG_TEST_LOG)
        summaries = sorted(OUTPUT_DIR.glob(f"{FLAGSHIP_DAG}/*/summary.json"))
        if not summaries:
            raise SystemExit(f"[demo] the run wrote no summary.json under {OUTPUT_DIR}; see {DAG_TEST_LOG}")
        print_summary(summaries[-1])
    finally:
        stop(simulator)
        say("simulator stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
