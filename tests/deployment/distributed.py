"""The distributed leg of ``make test-deployment`` (see ``deployment_suite``): the form users scale to.

PostgreSQL (a throwaway cluster: ``initdb``, then ``postgres`` in the foreground under the supervisor),
Redis as the Celery broker, moto's standalone S3 server as the object store, Airflow with the
CeleryExecutor: api-server, scheduler, dag-processor, two triggerers, two Celery workers, each worker
with its own working directory, temp directory (where a remote download's ``.part`` lives) and host
name. Every output goes to ``s3://`` through ``ObjectStoragePath``.

After the faults (a triggerer and a worker SIGKILLed under the flagship), the five other example DAGs
run at once next to a 5-day backfill of the daily-PNG DAG; ``pixxel_capture_events`` is triggered by
its own asset watcher, over a recurring order the suite places before Airflow starts. Then one row per
example DAG (``run_checks``): its runs succeeded, the store holds exactly what they recorded, and the
simulator's log holds exactly the creations of one run.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.deployment.simulator_log import read_log
from scripts.deployment.stack import (
    BIN,
    EXAMPLE_DAGS_FOLDER,
    LOOPBACK,
    AirflowApi,
    DeploymentError,
    SimulatorService,
    Supervisor,
    airflow_site,
    free_port,
    start_airflow_services,
    start_simulator,
    wait_for,
    wait_for_dags,
)
from tests.deployment.common import (
    DAILY_PNG,
    FLAGSHIP,
    RUN_TIMEOUT_SECONDS,
    Outcome,
    Report,
    backfill,
    creates_in,
    resumed_not_retried,
    task_states,
    today_midnight,
    wait_for_task_state,
)
from tests.deployment.run_checks import (
    ARCHIVE,
    CAPTURE_ASSET,
    CAPTURES,
    FAN_OUT,
    INSIGHTS,
    STORE_PREFIX,
    WORKFLOW,
    RunRecord,
    StoreWatcher,
    check_creations,
    check_every_creation_owned,
    check_store,
    creations,
    is_part,
    list_store,
    sha256_and_size,
)

LEG = "distributed"
POSTGRES_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"),)
BUCKET = "pixxel-deploy"
# Large enough that a worker can be killed while it streams the package: a few seconds on loopback.
LARGE_PACKAGE_BYTES = 384 * 1024 * 1024
PART_SEEN_BYTES = 16 * 1024 * 1024
WORKERS = ("worker-1", "worker-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")
# The example DAGs run on demand with output_dir in the run's conf; pixxel_capture_events is run by its
# asset watcher, and the daily-PNG DAG by the backfill.
TRIGGERED = (ARCHIVE, FAN_OUT, INSIGHTS, WORKFLOW)
EXAMPLE_DAGS = (FLAGSHIP, DAILY_PNG, ARCHIVE, CAPTURES, FAN_OUT, INSIGHTS, WORKFLOW)
# Captures of the recurring order the capture DAG's watcher follows, delivered within 10 s of the order
# (3 s per simulator step), long before Airflow is up, so its first poll finds them all and names them in
# one asset event (an event registered while an earlier one's run is queued would belong to no run on
# Airflow 3.3.2, which is why the trigger emits one event per poll). One capture: run_checks counts one
# catalog download for the capture DAG.
CAPTURE_OCCURRENCES = 1
CAPTURE_POLL_SECONDS = 2


def postgres_binary(name: str) -> str | None:
    for directory in POSTGRES_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    return shutil.which(name)


def missing_binaries() -> list[str]:
    missing = [name for name in ("initdb", "postgres", "createdb") if postgres_binary(name) is None]
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    return missing


def start_postgres(supervisor: Supervisor) -> tuple[int, Path]:
    """A throwaway cluster owned by the ``postgres`` user when run as root (initdb refuses root)."""
    data_root = Path(tempfile.mkdtemp(prefix="pixxel-deploy-pg-"))
    data = data_root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data_root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    initdb = subprocess.run(
        [
            *as_user,
            str(postgres_binary("initdb")),
            "-D",
            str(data),
            "-U",
            "airflow",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if initdb.returncode != 0:
        raise DeploymentError(f"initdb failed: {initdb.stdout[-1500:]}{initdb.stderr[-1500:]}")
    port = free_port()
    argv = [
        *as_user,
        str(postgres_binary("postgres")),
        "-D",
        str(data),
        "-h",
        LOOPBACK,
        "-p",
        str(port),
        "-k",
        str(data_root),
        "-c",
        "max_connections=200",
        "-c",
        "fsync=off",
    ]
    supervisor.start("postgres", argv, dict(os.environ))

    def accepting() -> bool:
        if not supervisor.alive("postgres"):
            raise DeploymentError(f"postgres exited:\n{supervisor.tail('postgres')}")
        probe = subprocess.run(
            [str(postgres_binary("createdb")), "-h", LOOPBACK, "-p", str(port), "-U", "airflow", "airflow"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return probe.returncode == 0

    wait_for(accepting, timeout=120, what="PostgreSQL to accept connections", interval=1)
    return port, data_root


def start_redis(supervisor: Supervisor, directory: Path) -> int:
    import redis

    directory.mkdir(parents=True)
    port = free_port()
    argv = [
        str(shutil.which("redis-server")),
        "--bind",
        LOOPBACK,
        "--port",
        str(port),
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    supervisor.start("redis", argv, dict(os.environ))
    client = redis.Redis(host=LOOPBACK, port=port, socket_timeout=5)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_for(answers, timeout=60, what="Redis to answer PING", interval=0.5)
    return port


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def start_s3(supervisor: Supervisor) -> tuple[str, Any]:
    port = free_port()
    supervisor.start("s3", [str(BIN / "moto_server"), "-H", LOOPBACK, "-p", str(port)], dict(os.environ))
    endpoint = f"http://{LOOPBACK}:{port}"
    client = s3_client(endpoint)

    def answers() -> bool:
        try:
            client.list_buckets()
        except Exception:
            return False
        return True

    wait_for(answers, timeout=90, what="moto's S3 server to answer", interval=0.5)
    client.create_bucket(Bucket=BUCKET)
    return endpoint, client


def key_of(url: str) -> str:
    prefix = f"s3://{BUCKET}/"
    if not url.startswith(prefix):
        raise DeploymentError(f"{url} is not in the store s3://{BUCKET}/")
    return url[len(prefix) :]


class Metadata:
    """Read-only looks into the PostgreSQL metadata database (which triggerer holds which trigger)."""

    def __init__(self, port: int) -> None:
        import psycopg2

        self.connection = psycopg2.connect(host=LOOPBACK, port=port, user="airflow", dbname="airflow")
        self.connection.autocommit = True

    def trigger_host(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        """The host name of the triggerer running the task's trigger (None while unassigned)."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT job.hostname FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
                "JOIN job ON job.id = t.triggerer_id "
                "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = %s",
                (dag_id, run_id, task_id),
            )
            row = cursor.fetchone()
        return None if row is None else str(row[0])

    def task_hosts(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        """The host of every try of a task (the current one from task_instance, earlier ones from history)."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT try_number, hostname FROM task_instance_history "
                "WHERE dag_id = %s AND run_id = %s AND task_id = %s "
                "UNION SELECT try_number, hostname FROM task_instance "
                "WHERE dag_id = %s AND run_id = %s AND task_id = %s ORDER BY 1",
                (dag_id, run_id, task_id) * 2,
            )
            return [str(host) for _, host in cursor.fetchall()]

    def xcoms(self, dag_id: str, run_ids: Sequence[str]) -> list[Any]:
        """Every XCom value of the runs, decoded."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT value FROM xcom WHERE dag_id = %s AND run_id = ANY(%s) "
                "ORDER BY run_id, task_id, map_index, key",
                (dag_id, list(run_ids)),
            )
            rows = cursor.fetchall()
        values = []
        for (value,) in rows:
            if isinstance(value, str):  # a value stored as a JSON document holding JSON text
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            values.append(value)
        return values

    def asset_events(self, asset_name: str) -> list[tuple[int, dict[str, Any]]]:
        """``(id, extra)`` of every event of the asset, oldest first."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT e.id, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                "WHERE a.name = %s ORDER BY e.id",
                (asset_name,),
            )
            return [(int(event_id), dict(extra or {})) for event_id, extra in cursor.fetchall()]

    def consuming_runs(self, dag_id: str) -> dict[int, list[str]]:
        """The runs of the DAG that consumed each asset event, by event id."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.event_id, r.run_id FROM dagrun_asset_event c JOIN dag_run r ON r.id = c.dag_run_id "
                "WHERE r.dag_id = %s ORDER BY r.run_id",
                (dag_id,),
            )
            consumers: dict[int, list[str]] = {}
            for event_id, run_id in cursor.fetchall():
                consumers.setdefault(int(event_id), []).append(str(run_id))
            return consumers

    def close(self) -> None:
        self.connection.close()


def simulator_call(simulator: SimulatorService, method: str, path: str, body: Any = None) -> Any:
    """One request to the simulator's API, as a client of its own (not through Airflow)."""
    request = urllib.request.Request(
        simulator.base_url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": simulator.api_key, "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def place_recurring_order(simulator: SimulatorService) -> dict[str, Any]:
    """The recurring tasking order whose captures ``pixxel_capture_events`` watches.

    Placed before Airflow starts: the DAG's watcher is built from ``PIXXEL_CAPTURE_ORDER_ITEM_IDS``
    when its file is parsed. It is the suite's own order, not a DAG's.
    """
    project_id = simulator.connection()["extra"]["project_id"]
    bandset_id = simulator_call(simulator, "GET", "/v0/bandsets")["bandsets"][0]["id"]
    start = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=3)
    ring = [[77.0, 12.0], [77.1, 12.0], [77.1, 12.1], [77.0, 12.1], [77.0, 12.0]]
    item = {
        "project_id": project_id,
        "name": "deploy-recurring-captures",
        "geometry": {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
            ],
        },
        "usecase": "agriculture",
        "bandset": {"bandset_id": bandset_id},
        "recurrence": "MONTHLY",
        "no_of_occurrences": CAPTURE_OCCURRENCES,
        "start_date": f"{start.isoformat()}T00:00:00Z",
    }
    order = simulator_call(simulator, "POST", "/v0/orders", {"order_items": [item]})
    return {"order_id": str(order["id"]), "order_item_ids": [str(i["id"]) for i in order["order_items"]]}


def delivered_catalogs(simulator: SimulatorService, order_item_ids: list[str]) -> list[str]:
    found = simulator_call(
        simulator, "POST", "/v0/catalogs/search", {"order_item_ids": order_item_ids, "limit": 100}
    )
    return sorted(str(c["id"]) for c in found["catalogs"])


def run_span(api: AirflowApi, dag_id: str, run_ids: Sequence[str]) -> float:
    """Seconds from the first run's start to the last one's end."""
    runs = [api.run(dag_id, run_id) for run_id in run_ids]
    start = min(datetime.datetime.fromisoformat(r["start_date"]) for r in runs)
    end = max(datetime.datetime.fromisoformat(r["end_date"]) for r in runs)
    return (end - start).total_seconds()


def distributed_leg(report: Report, work: Path) -> None:
    missing = missing_binaries()
    if missing:
        report.skip(
            LEG,
            "distributed deployment",
            f"not on this machine: {', '.join(missing)} (PostgreSQL 15 server binaries and redis-server; "
            "make test-deployment installs redis-server when absent)",
        )
        return
    root = work / "distributed"
    supervisor = Supervisor(root / "service-logs")
    report.on_failure = lambda: supervisor.dump_tails(30)
    pg_root: Path | None = None
    metadata: Metadata | None = None
    output_dir = f"s3://{BUCKET}/{STORE_PREFIX}"
    try:
        with report.check(
            LEG, "PostgreSQL, Redis, S3, simulator; Airflow on Celery: 2 workers, 2 triggerers"
        ) as note:
            pg_port, pg_root = start_postgres(supervisor)
            redis_port = start_redis(supervisor, root / "redis")
            endpoint, s3 = start_s3(supervisor)
            simulator = start_simulator(supervisor, speed=3.0, package_size=LARGE_PACKAGE_BYTES)
            recurring = place_recurring_order(simulator)
            aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
            database = f"postgresql+psycopg2://airflow@{LOOPBACK}:{pg_port}/airflow"
            # [START howto_deploy_distributed_settings]
            settings = {
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{LOOPBACK}:{redis_port}/0",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://airflow@{LOOPBACK}:{pg_port}/airflow",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "3",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow_local_settings.deployment_hostname",
                # A killed worker's task stops heartbeating: found and retried within the test's time.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                # A task whose Celery message the killed worker had already taken (a deferred wait
                # resuming, say) stays queued: its message is redelivered only after Redis's
                # visibility timeout (6 h by default), and Airflow queues it again after this.
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
                "PIXXEL_DEPLOYMENT_RETRY_DELAY_SECONDS": "5",
                # Read where the capture DAG's file is parsed: what its watcher follows, how often,
                # and where the runs it triggers (which carry no conf) write.
                "PIXXEL_CAPTURE_ORDER_ITEM_IDS": ",".join(recurring["order_item_ids"]),
                "PIXXEL_CAPTURE_POLL_INTERVAL": str(CAPTURE_POLL_SECONDS),
                "PIXXEL_CAPTURE_OUTPUT_DIR": output_dir,
                "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                    {
                        "conn_type": "aws",
                        "login": aws["AWS_ACCESS_KEY_ID"],
                        "password": aws["AWS_SECRET_ACCESS_KEY"],
                        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
                    }
                ),
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_DEFAULT_REGION": "us-east-1",
                **aws,
            }
            # [END howto_deploy_distributed_settings]
            site = airflow_site(
                root / "home", simulator, executor="CeleryExecutor", database_url=database, extra=settings
            )
            site.run("db", "migrate", timeout=600)
            # pixxel_fan_out's API-calling tasks run in this pool (its doc says to create it first).
            site.run("pools", "set", "pixxel_api", "4", "Pixxel API")
            start_airflow_services(supervisor, site, triggerers=0)
            for name in TRIGGERERS:
                env = {**site.env, "PIXXEL_DEPLOYMENT_HOSTNAME": name}
                supervisor.start(name, site.airflow("triggerer", "--skip-serve-logs"), env, cwd=site.home)
            for name in WORKERS:
                start_worker(supervisor, site.env, root, name)
            api = site.api()
            wait_for_dags(api, EXAMPLE_DAGS)
            for dag_id in (FLAGSHIP, DAILY_PNG):
                api.set_paused(dag_id, False)
            for name in WORKERS:
                log = supervisor.services[name].log
                wait_for(
                    lambda log=log: "ready" in log.read_text(errors="replace"),  # type: ignore[misc]
                    timeout=180,
                    what=f"Celery {name} to be ready",
                )
            metadata = Metadata(pg_port)
            note["detail"] = f"PostgreSQL :{pg_port}, Redis :{redis_port}, S3 {endpoint}, API {site.api_url}"

        if metadata is None:
            return  # the deployment did not come up: the failed check above says why
        run_id = "deploy-dist-flagship"
        killed_worker = ""
        with report.check(LEG, "flagship to s3://; a triggerer SIGKILLed holding its wait") as note:
            api.trigger(
                FLAGSHIP, logical_date=today_midnight(), conf={"output_dir": output_dir}, run_id=run_id
            )
            wait_for_task_state(api, FLAGSHIP, run_id, "wait_for_order", "deferred", timeout=300)
            holder = wait_for(
                lambda: metadata.trigger_host(FLAGSHIP, run_id, "wait_for_order") if metadata else None,
                timeout=120,
                what="a triggerer to take the order wait",
            )
            supervisor.kill(holder)
            other = next(name for name in TRIGGERERS if name != holder)

            def taken_over() -> bool:
                assert metadata is not None
                host = metadata.trigger_host(FLAGSHIP, run_id, "wait_for_order")
                state = task_states(api, FLAGSHIP, run_id).get("wait_for_order")
                return host == other or state == "success"

            wait_for(taken_over, timeout=240, what=f"{other} to take over the order wait", interval=1)
            took = metadata.trigger_host(FLAGSHIP, run_id, "wait_for_order") or other
            wait_for_task_state(api, FLAGSHIP, run_id, "wait_for_order", "success", timeout=300)
            resumed_not_retried(api, FLAGSHIP, run_id, "wait_for_order")
            note["detail"] = f"{holder} killed; {took} took the wait over and finished it in try 1"

        with report.check(LEG, "a worker SIGKILLed mid-download; retried on the other") as note:
            wait_for_task_state(api, FLAGSHIP, run_id, "download_imagery", "running", timeout=300)
            part_dirs = {name: root / name / "tmp" / "airflow-pixxel-downloads" for name in WORKERS}

            def downloading() -> tuple[str, Path] | None:
                for name, directory in part_dirs.items():
                    for part in directory.glob("*.part"):
                        if part.stat().st_size >= PART_SEEN_BYTES:
                            return name, part
                return None

            killed_worker, part = wait_for(downloading, timeout=300, what="a .part to grow", interval=0.1)
            supervisor.kill(killed_worker)
            part_size = part.stat().st_size  # what the killed try had streamed when it died
            if part_size >= LARGE_PACKAGE_BYTES:
                raise DeploymentError(
                    f"{killed_worker} was killed after its download completed, not during it"
                )
            seen_sizes: dict[str, set[int]] = {}

            def finished() -> str | None:
                for key, size in list_store(s3, BUCKET).items():
                    seen_sizes.setdefault(key, set()).add(size)
                state = str(api.run(FLAGSHIP, run_id)["state"])
                return state if state in ("success", "failed") else None

            state = wait_for(
                finished, timeout=RUN_TIMEOUT_SECONDS, what=f"run {run_id} to finish", interval=1
            )
            if state != "success":
                raise DeploymentError(f"{run_id} ended {state}: {task_states(api, FLAGSHIP, run_id)}")
            summary_name = f"{FLAGSHIP}/{today_midnight()[:10]}/summary.json"
            summary_key = next(k for k in list_store(s3, BUCKET) if k.endswith(summary_name))
            summary = json.loads(s3.get_object(Bucket=BUCKET, Key=summary_key)["Body"].read())
            (imagery,) = summary["files"]
            digest, size = sha256_and_size(s3, BUCKET, key_of(imagery["path"]))
            if (digest, size) != (imagery["sha256"], imagery["size"]) or size != LARGE_PACKAGE_BYTES:
                raise DeploymentError(f"{imagery['path']}: {size} bytes sha256 {digest}, recorded {imagery}")
            if seen_sizes.get(key_of(imagery["path"]), {size}) != {size}:
                raise DeploymentError(
                    f"the object was visible incomplete: sizes {seen_sizes[key_of(imagery['path'])]}"
                )
            parts = [k for k in seen_sizes if ".part" in k]
            if parts:
                raise DeploymentError(f".part objects were visible in the store: {parts}")
            hosts = metadata.task_hosts(FLAGSHIP, run_id, "download_imagery")  # type: ignore[union-attr]
            if len(hosts) < 2 or hosts[0] != killed_worker or hosts[-1] == killed_worker:
                raise DeploymentError(f"download_imagery tries ran on {hosts}; {killed_worker} was killed")
            orders = [o for o in creates_in(read_log(simulator.log), "order") if o != recurring["order_id"]]
            if orders != [summary["order_id"]]:
                raise DeploymentError(f"orders created: {orders}, expected exactly {summary['order_id']}")
            note["detail"] = (
                f"{killed_worker} killed at {part_size >> 20} MiB of {size >> 20} MiB; tries on {hosts}; "
                f"object sha256 {digest[:12]}... matches; 1 order"
            )
        if killed_worker:
            # Back to two workers for what follows, whatever the check above found.
            start_worker(supervisor, site.env, root, killed_worker)

        runs: dict[str, list[str]] = {FLAGSHIP: [run_id]}
        with StoreWatcher(s3_client(endpoint), BUCKET) as watcher:
            with report.check(
                LEG, "5 more example DAGs at once: 4 triggered, 1 by its asset watcher"
            ) as note:
                # One large package was needed (the worker killed in its middle); the other DAGs'
                # packages are the simulator's default 256 KiB.
                os.kill(supervisor.services["simulator"].process.pid, signal.SIGUSR1)
                wait_for(
                    lambda: any(e["event"] == "package_size" for e in read_log(simulator.log)),
                    timeout=30,
                    what="the simulator to make default-size packages",
                    interval=0.2,
                )
                for dag_id in TRIGGERED:
                    api.set_paused(dag_id, False)
                    runs[dag_id] = [
                        api.trigger(
                            dag_id,
                            logical_date=today_midnight(),
                            conf={"output_dir": output_dir},
                            run_id=f"deploy-dist-{dag_id}",
                        )
                    ]
                # Its watcher starts once the DAG is unpaused and its file parsed again.
                api.set_paused(CAPTURES, False)
                note["detail"] = (
                    f"{', '.join(TRIGGERED)} triggered with output_dir={output_dir}; {CAPTURES} unpaused, "
                    f"watching order items {recurring['order_item_ids']}"
                )

            with report.check(LEG, "backfill 5 days, 3 at a time, to s3://, alongside") as note:
                backfill_runs = backfill(
                    site,
                    DAILY_PNG,
                    "2025-03-02",
                    "2025-03-06",
                    conf={"output_dir": output_dir},
                    max_active_runs=3,
                )
                runs[DAILY_PNG] = [str(r["dag_run_id"]) for r in backfill_runs]
                overlap = most_at_once(backfill_runs)
                if overlap > 3:
                    raise DeploymentError(f"{overlap} backfill runs ran at once; the limit was 3")
                manifests = sorted(
                    k
                    for k in list_store(s3, BUCKET)
                    if k.startswith(f"{STORE_PREFIX}/{DAILY_PNG}/") and k.endswith("manifest.json")
                )
                partitions = [k.split("/")[-2] for k in manifests]
                expected = ["2025-03-02", "2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06"]
                if partitions != expected:
                    raise DeploymentError(f"partitions in the store: {partitions}")
                note["detail"] = f"5 partitions in s3://{BUCKET}; {overlap} runs at once at the peak"

            with report.check(LEG, "every run ended, the watcher's among them") as note:
                assert metadata is not None

                def capture_runs() -> list[str] | None:
                    assert metadata is not None
                    events = metadata.asset_events(CAPTURE_ASSET)
                    consumers = metadata.consuming_runs(CAPTURES)
                    if len(events) < CAPTURE_OCCURRENCES or any(e not in consumers for e, _ in events):
                        return None
                    run_ids = sorted({r for e, _ in events for r in consumers[e]})
                    ended = all(api.run(CAPTURES, r)["state"] in ("success", "failed") for r in run_ids)
                    return run_ids if ended else None

                def all_ended() -> list[str] | None:
                    for dag_id in TRIGGERED:
                        if api.run(dag_id, runs[dag_id][0])["state"] not in ("success", "failed"):
                            return None
                    return capture_runs()

                runs[CAPTURES] = wait_for(
                    all_ended, timeout=RUN_TIMEOUT_SECONDS, what="the example DAGs' runs to end", interval=2
                )
                states = {d: [str(api.run(d, r)["state"]) for r in runs[d]] for d in (*TRIGGERED, CAPTURES)}
                note["detail"] = "; ".join(f"{d} {', '.join(s)}" for d, s in states.items())

        seen = watcher.seen()
        created = creations(read_log(simulator.log))
        set_up = {recurring["order_id"], *recurring["order_item_ids"]}
        records: dict[str, RunRecord] = {}
        for dag_id in EXAMPLE_DAGS:
            with report.check(LEG, f"{dag_id}: runs, objects in S3, creations") as note:
                run_ids = runs.get(dag_id) or []
                if not run_ids:
                    raise DeploymentError(f"{dag_id} has no run to check")
                failed = {
                    r: task_states(api, dag_id, r)
                    for r in run_ids
                    if api.run(dag_id, r)["state"] != "success"
                }
                if failed:
                    raise DeploymentError(f"runs of {dag_id} not successful: {failed}")
                record = records[dag_id] = RunRecord(dag_id, run_ids, metadata.xcoms(dag_id, run_ids))
                files, objects = check_store(s3, BUCKET, record, seen)
                counts = check_creations(created, record, set_up)
                extra = ""
                if dag_id == CAPTURES:
                    extra = "; " + check_capture_events(metadata, simulator, recurring, record)
                note["seconds"] = str(run_span(api, dag_id, run_ids))
                made = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "nothing"
                note["detail"] = (
                    f"{len(run_ids)} run(s) succeeded; {files} recorded files match their objects "
                    f"({objects} objects, every one accounted for, no .part); created {made}{extra}"
                )

        with report.check(LEG, "every example DAG file: its DAGs ran above, or it defines none") as note:
            note["detail"] = check_every_dag_file_ran(api, EXAMPLE_DAGS)

        with report.check(LEG, "nothing bought twice, nothing lost") as note:
            kinds = check_every_creation_owned(created, records.values(), set_up)
            keys = list_store(s3, BUCKET)
            parts = sorted(k for k in {*keys, *seen} if is_part(k))
            if parts:
                raise DeploymentError(f".part objects were visible in the store: {parts}")
            outside = [
                k for k in keys if not k.startswith(tuple(f"{STORE_PREFIX}/{d}/" for d in EXAMPLE_DAGS))
            ]
            if outside:
                raise DeploymentError(f"objects outside every example DAG's prefix: {outside}")
            if watcher.errors:
                raise DeploymentError(f"store listings failed: {watcher.errors[:3]}")
            order_count = kinds.get("order", 0)
            note["detail"] = (
                f"{sum(kinds.values())} creations, each owned by exactly one DAG's run(s) or the suite's "
                f"recurring order ({order_count} orders); {len(keys)} objects, none a .part in "
                f"{watcher.listings} listings"
            )
    finally:
        report.on_failure = None
        if metadata is not None:
            metadata.close()
        supervisor.stop_all()
        left = supervisor.leftover_pids()
        if pg_root is not None:
            shutil.rmtree(pg_root, ignore_errors=True)
        if left:
            report.add(Outcome(LEG, "every process stopped", "failed", 0.0, f"still running: {left}"))


def check_every_dag_file_ran(api: AirflowApi, ran: Sequence[str]) -> str:
    """Every file of ``example_dags/`` parsed without error, and every DAG they define is one this leg ran:
    a DAG added to the examples fails the leg until the leg runs it, rather than being left out unseen.

    :raises DeploymentError: naming the files that failed to import and the DAGs the leg did not run.
    """
    errors = api.get("/api/v2/importErrors?limit=100")["import_errors"]
    if errors:
        raise DeploymentError(f"example DAG files that failed to import: {[e['filename'] for e in errors]}")
    parsed = {str(d["dag_id"]): Path(d["fileloc"]).name for d in api.get("/api/v2/dags?limit=100")["dags"]}
    not_run = sorted(set(parsed) - set(ran))
    if not_run:
        raise DeploymentError(f"example DAGs this leg does not run: {not_run}")
    files = sorted(p.name for p in EXAMPLE_DAGS_FOLDER.glob("*.py"))
    without = [name for name in files if name not in parsed.values()]
    ran_files = len(files) - len(without)
    return f"{len(parsed)} DAGs from {ran_files} files, all run; no DAG in {', '.join(without)}"


def check_capture_events(
    metadata: Metadata, simulator: SimulatorService, recurring: dict[str, Any], record: RunRecord
) -> str:
    """Each delivered capture named by exactly one asset event (the trigger emits one per poll, listing
    the poll's new catalogs), none twice, and each capture processed by one run.

    :raises DeploymentError: naming the captures emitted or processed other than once.
    """
    catalogs = delivered_catalogs(simulator, recurring["order_item_ids"])
    if len(catalogs) != CAPTURE_OCCURRENCES:
        raise DeploymentError(f"the recurring order has {len(catalogs)} captures, not {CAPTURE_OCCURRENCES}")
    events = metadata.asset_events(CAPTURE_ASSET)
    emitted = sorted(str(c["catalog_id"]) for _, extra in events for c in extra["payload"]["catalogs"])
    if emitted != catalogs:
        raise DeploymentError(f"the watcher emitted {emitted}; the captures are {catalogs}")
    processed = sorted(
        str(catalog)
        for value in record.values
        if isinstance(value, list)
        for request in value
        if isinstance(request, dict)
        for catalog in request.get("catalog_ids", [])
    )
    if processed != catalogs:
        raise DeploymentError(f"captures processed: {processed}; delivered: {catalogs}")
    return f"{len(events)} asset event(s) naming each capture once, in {len(record.run_ids)} run(s)"


def start_worker(supervisor: Supervisor, env: dict[str, str], root: Path, name: str) -> None:
    """A Celery worker standing for its own host: own working directory, temp directory and name."""
    home = root / name
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    worker_env = {**env, "TMPDIR": str(home / "tmp"), "PIXXEL_DEPLOYMENT_HOSTNAME": name}
    argv = [str(BIN / "airflow"), "celery", "worker", "--skip-serve-logs", "--celery-hostname", f"{name}@%h"]
    supervisor.start(name, argv, worker_env, cwd=home)


def most_at_once(runs: list[dict[str, Any]]) -> int:
    """The largest number of runs whose [start, end] intervals overlap at one instant."""
    events = []
    for run in runs:
        events.append((run["start_date"], 1))
        events.append((run["end_date"], -1))
    current = highest = 0
    for _, change in sorted(events, key=lambda e: (e[0], e[1])):
        current += change
        highest = max(highest, current)
    return highest
