"""The distributed leg of ``make test-deployment`` (see ``deployment_suite``): the form users scale to.

PostgreSQL (a throwaway cluster: ``initdb``, then ``postgres`` in the foreground under the supervisor),
Redis as the Celery broker, moto's standalone S3 server as the object store, Airflow with the
CeleryExecutor: api-server, scheduler, dag-processor, two triggerers, two Celery workers, each worker
with its own working directory, temp directory (where a remote download's ``.part`` lives) and host
name. Every output goes to ``s3://`` through ``ObjectStoragePath``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from scripts.deployment.simulator_log import read_log
from scripts.deployment.stack import (
    BIN,
    LOOPBACK,
    DeploymentError,
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

LEG = "distributed"
POSTGRES_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"),)
BUCKET = "pixxel-deploy"
# Large enough that a worker can be killed while it streams the package: a few seconds on loopback.
LARGE_PACKAGE_BYTES = 384 * 1024 * 1024
PART_SEEN_BYTES = 16 * 1024 * 1024
WORKERS = ("worker-1", "worker-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")


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


def start_s3(supervisor: Supervisor) -> tuple[str, Any]:
    import boto3

    port = free_port()
    supervisor.start("s3", [str(BIN / "moto_server"), "-H", LOOPBACK, "-p", str(port)], dict(os.environ))
    endpoint = f"http://{LOOPBACK}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )

    def answers() -> bool:
        try:
            client.list_buckets()
        except Exception:
            return False
        return True

    wait_for(answers, timeout=90, what="moto's S3 server to answer", interval=0.5)
    client.create_bucket(Bucket=BUCKET)
    return endpoint, client


def s3_keys(client: Any) -> dict[str, int]:
    keys: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys.update({item["Key"]: int(item["Size"]) for item in page.get("Contents", [])})
    return keys


def s3_sha256(client: Any, key: str) -> tuple[str, int]:
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


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

    def close(self) -> None:
        self.connection.close()


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
    try:
        with report.check(
            LEG, "PostgreSQL, Redis, S3, simulator; Airflow on Celery: 2 workers, 2 triggerers"
        ) as note:
            pg_port, pg_root = start_postgres(supervisor)
            redis_port = start_redis(supervisor, root / "redis")
            endpoint, s3 = start_s3(supervisor)
            simulator = start_simulator(supervisor, speed=3.0, package_size=LARGE_PACKAGE_BYTES)
            aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
            database = f"postgresql+psycopg2://airflow@{LOOPBACK}:{pg_port}/airflow"
            site = airflow_site(
                root / "home",
                simulator,
                executor="CeleryExecutor",
                database_url=database,
                extra={
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
                },
            )
            site.run("db", "migrate", timeout=600)
            start_airflow_services(supervisor, site, triggerers=0)
            for name in TRIGGERERS:
                env = {**site.env, "PIXXEL_DEPLOYMENT_HOSTNAME": name}
                supervisor.start(name, site.airflow("triggerer", "--skip-serve-logs"), env, cwd=site.home)
            for name in WORKERS:
                start_worker(supervisor, site.env, root, name)
            api = site.api()
            wait_for_dags(api, [FLAGSHIP, DAILY_PNG])
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
        output_dir = f"s3://{BUCKET}/outputs"
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
                for key, size in s3_keys(s3).items():
                    seen_sizes.setdefault(key, set()).add(size)
                state = str(api.run(FLAGSHIP, run_id)["state"])
                return state if state in ("success", "failed") else None

            state = wait_for(
                finished, timeout=RUN_TIMEOUT_SECONDS, what=f"run {run_id} to finish", interval=1
            )
            if state != "success":
                raise DeploymentError(f"{run_id} ended {state}: {task_states(api, FLAGSHIP, run_id)}")
            summary_key = next(
                k for k in s3_keys(s3) if k.endswith(f"{FLAGSHIP}/{today_midnight()[:10]}/summary.json")
            )
            summary = json.loads(s3.get_object(Bucket=BUCKET, Key=summary_key)["Body"].read())
            (imagery,) = summary["files"]
            digest, size = s3_sha256(s3, key_of(imagery["path"]))
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
            orders = creates_in(read_log(simulator.log), "order")
            if orders != [summary["order_id"]]:
                raise DeploymentError(f"orders created: {orders}, expected exactly {summary['order_id']}")
            note["detail"] = (
                f"{killed_worker} killed at {part_size >> 20} MiB of {size >> 20} MiB; tries on {hosts}; "
                f"object sha256 {digest[:12]}... matches; 1 order"
            )
            start_worker(supervisor, site.env, root, killed_worker)

        with report.check(LEG, "backfill 5 days, 3 at a time, to s3://") as note:
            runs = backfill(
                site,
                DAILY_PNG,
                "2025-03-02",
                "2025-03-06",
                conf={"output_dir": output_dir},
                max_active_runs=3,
            )
            overlap = most_at_once(runs)
            if overlap > 3:
                raise DeploymentError(f"{overlap} backfill runs ran at once; the limit was 3")
            manifests = sorted(
                k
                for k in s3_keys(s3)
                if k.startswith(f"outputs/{DAILY_PNG}/") and k.endswith("manifest.json")
            )
            partitions = [k.split("/")[-2] for k in manifests]
            expected = ["2025-03-02", "2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06"]
            if partitions != expected:
                raise DeploymentError(f"partitions in the store: {partitions}")
            for key in manifests:
                png = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["png"]
                if s3_sha256(s3, key_of(png["path"]))[0] != png["sha256"]:
                    raise DeploymentError(f"{png['path']} does not match its manifest")
            note["detail"] = f"5 partitions in s3://{BUCKET}; {overlap} runs at once at the peak"

        with report.check(LEG, "nothing bought twice, nothing lost") as note:
            entries = read_log(simulator.log)
            orders = creates_in(entries, "order")
            keys = s3_keys(s3)
            parts = [k for k in keys if k.endswith(".part") or ".part." in k]
            if len(orders) != 1 or parts:
                raise DeploymentError(f"orders {orders}; .part objects {parts}")
            note["detail"] = f"1 order; {len(keys)} objects in the store, no .part"
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
