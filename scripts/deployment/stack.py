"""Starting, watching and stopping the services of a real Airflow deployment on this machine.

Every service is a child process in a session (process group) of its own, its output in one log file;
it is stopped by its PID: SIGTERM to the group and to every descendant recorded before the signal, then
SIGKILL after a bounded grace period. Every wait here is bounded and says what it waited for.
Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS_FOLDER = REPO / "example_dags"
LOOPBACK = "127.0.0.1"
BIN = Path(sys.executable).parent
STOP_GRACE_SECONDS = 20.0
ADMIN_USER = "admin"

T = TypeVar("T")

# Anything that could send a deployment to the real, paying service, or to the user's own Airflow.
IGNORED_ENVIRONMENT_PREFIXES = ("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__")
IGNORED_ENVIRONMENT = ("PIXXEL_API_KEY", "AIRFLOW_HOME", "AIRFLOW_CONFIG")


class DeploymentError(RuntimeError):
    """A service did not start, a wait ran out, or an outcome was not the expected one."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``condition`` until it returns something truthy; :class:`DeploymentError` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise DeploymentError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def clean_environment() -> dict[str, str]:
    """This process's environment without anything that points Airflow or the provider elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(IGNORED_ENVIRONMENT_PREFIXES)}
    for name in IGNORED_ENVIRONMENT:
        env.pop(name, None)
    return env


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    argv: list[str]
    env: dict[str, str] = field(repr=False)
    cwd: Path | None
    restarts: int = 0


@dataclass
class Supervisor:
    """The services one deployment started, by name; ``stop_all`` (also on error) stops every one."""

    log_dir: Path
    services: dict[str, Service] = field(default_factory=dict)

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], *, cwd: Path | None = None
    ) -> Service:
        if name in self.services and self.services[name].process.poll() is None:
            raise DeploymentError(
                f"service {name} is already running (pid {self.services[name].process.pid})"
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as sink:
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = Service(name, process, log, list(argv), dict(env), cwd)
        if name in self.services:
            service.restarts = self.services[name].restarts + 1
        self.services[name] = service
        return service

    def restart(self, name: str) -> Service:
        """Start a service that exited (or was killed) again, the same way; its log goes on."""
        old = self.services[name]
        if old.process.poll() is None:
            raise DeploymentError(f"service {name} (pid {old.process.pid}) is still running")
        return self.start(name, old.argv, old.env, cwd=old.cwd)

    def tree(self, name: str) -> list[psutil.Process]:
        """The service's process and every descendant alive now."""
        try:
            root = psutil.Process(self.services[name].process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def pids(self, name: str) -> list[int]:
        return [p.pid for p in self.tree(name)]

    def kill(self, name: str) -> list[int]:
        """SIGKILL the service and all its descendants at once, as a crash or an OOM kill would."""
        service = self.services[name]
        members = self.tree(name)
        self._signal(service, members, signal.SIGKILL)
        service.process.wait(timeout=STOP_GRACE_SECONDS)
        psutil.wait_procs(members, timeout=STOP_GRACE_SECONDS)
        return [p.pid for p in members]

    def stop(self, name: str) -> None:
        service = self.services[name]
        members = self.tree(name)
        if service.process.poll() is None or any(p.is_running() for p in members):
            self._signal(service, members, signal.SIGTERM)
            _, alive = psutil.wait_procs(members, timeout=STOP_GRACE_SECONDS)
            if alive or service.process.poll() is None:
                left = [p.pid for p in alive]
                grace = f"{STOP_GRACE_SECONDS:.0f} s"
                print(
                    f"[deploy] {name}: pids {left} still running {grace} after SIGTERM; SIGKILL", flush=True
                )
                self._signal(service, [*alive, *self.tree(name)], signal.SIGKILL)
                psutil.wait_procs(alive, timeout=STOP_GRACE_SECONDS)
        try:
            service.process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired as error:
            raise DeploymentError(f"service {name} (pid {service.process.pid}) would not stop") from error

    def stop_all(self) -> None:
        # The reverse of the starting order: the API server and the database go last.
        for name in reversed(list(self.services)):
            try:
                self.stop(name)
            except Exception as error:  # keep stopping the others; report at the end
                print(f"[deploy] could not stop {name}: {error}", file=sys.stderr, flush=True)

    def leftover_pids(self) -> list[int]:
        """PIDs of anything this supervisor started that is still alive (should be none after stop_all)."""
        left = []
        for name, service in self.services.items():
            if service.process.poll() is None:
                left.append(service.process.pid)
            left += [p for p in self.pids(name) if p != service.process.pid]
        return left

    @staticmethod
    def _signal(service: Service, members: Sequence[psutil.Process], signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.process.pid, signum)
        for member in members:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(signum)

    def alive(self, name: str) -> bool:
        return self.services[name].process.poll() is None

    def tail(self, name: str, lines: int = 40) -> str:
        text = self.services[name].log.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def dump_tails(self, lines: int = 40) -> None:
        for name in self.services:
            print(f"----- last {lines} lines of {name} ({self.services[name].log}) -----", file=sys.stderr)
            print(self.tail(name, lines), file=sys.stderr, flush=True)


# -- the simulator -----------------------------------------------------------------------------------


@dataclass
class SimulatorService:
    base_url: str
    api_key: str
    log: Path

    def connection(self) -> dict[str, Any]:
        """``pixxel_default``: the simulator, with the first seeded project as default project."""
        request = urllib.request.Request(
            f"{self.base_url}/v0/projects", headers={"Authorization": self.api_key}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            project_id = json.load(response)["projects"][0]["id"]
        return {
            "conn_type": "pixxel",
            "host": self.base_url,
            "password": self.api_key,
            "extra": {"project_id": str(project_id)},
        }

    def entries(self) -> list[dict[str, Any]]:
        from scripts.deployment.simulator_log import read_log

        return read_log(self.log)

    def created(self, kind: str) -> list[str]:
        return [e["id"] for e in self.entries() if e["event"] == "created" and e["kind"] == kind]


def start_simulator(
    supervisor: Supervisor,
    *,
    speed: float,
    package_size: int | None = None,
    api_key: str | None = None,
    name: str = "simulator",
) -> SimulatorService:
    log = supervisor.log_dir / f"{name}-requests.jsonl"
    argv = [
        sys.executable,
        "-m",
        "scripts.deployment.simulator_log",
        "--log",
        str(log),
        "--speed",
        str(speed),
    ]
    if package_size is not None:
        argv += ["--package-size", str(package_size)]
    if api_key is not None:
        argv += ["--api-key", api_key]
    env = clean_environment()
    env["PYTHONPATH"] = str(REPO)
    service = supervisor.start(name, argv, env, cwd=REPO)

    def announced() -> dict[str, str] | None:
        if not supervisor.alive(name):
            raise DeploymentError(f"the simulator exited at start:\n{supervisor.tail(name)}")
        lines = dict(line.partition("=")[::2] for line in service.log.read_text().splitlines() if "=" in line)
        return lines if "AIRFLOW_CONN_PIXXEL_DEFAULT" in lines else None

    lines = wait_for(announced, timeout=60, what="the simulator to announce its address", interval=0.2)
    return SimulatorService(lines["PIXXEL_SIMULATOR_URL"], lines["PIXXEL_SIMULATOR_API_KEY"], log)


# -- Airflow -----------------------------------------------------------------------------------------


@dataclass
class AirflowSite:
    """One Airflow installation: its home, configuration (as environment) and API address and login."""

    home: Path
    env: dict[str, str]
    api_port: int
    password: str

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    def airflow(self, *args: str) -> list[str]:
        return [str(BIN / "airflow"), *args]

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        """An ``airflow`` CLI command against this site, bounded by ``timeout``."""
        result = subprocess.run(
            self.airflow(*args), env=self.env, capture_output=True, text=True, timeout=timeout, cwd=self.home
        )
        if check and result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
            raise DeploymentError(f"`airflow {' '.join(args)}` failed (exit {result.returncode}):\n{output}")
        return result

    def api(self) -> AirflowApi:
        return AirflowApi(self.api_url, ADMIN_USER, self.password)


def airflow_site(
    home: Path,
    simulator: SimulatorService,
    *,
    executor: str = "LocalExecutor",
    database_url: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> AirflowSite:
    """A fresh ``AIRFLOW_HOME`` configured through the environment for the services started from it.

    The example DAGs of this checkout, ``pixxel_default`` on the simulator, waits deferred to the
    triggerer, the simple auth manager with one admin whose password is generated here, the API server
    (and so the execution API the task processes talk to) on 127.0.0.1, and the cluster policy of
    ``airflow_local_settings`` in ``$AIRFLOW_HOME/config``.
    """
    shutil.rmtree(home, ignore_errors=True)
    (home / "config").mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("airflow_local_settings.py"), home / "config")
    password = secrets.token_urlsafe(12)
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps({ADMIN_USER: password}))
    api_port = free_port()
    api_url = f"http://{LOOPBACK}:{api_port}"
    env = clean_environment()
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url or f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": api_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "PIXXEL_EXAMPLE_POLL_INTERVAL": "1",
            "AIRFLOW_CONN_PIXXEL_DEFAULT": json.dumps(simulator.connection()),
            # The bucket credentials the flagship registers its delivery store with (the simulator checks
            # none); not a real secret.
            "AIRFLOW_CONN_PIXXEL_DELIVERY_BUCKET": json.dumps(
                {"conn_type": "aws", "login": "AKIADEPLOY", "password": "deploy-secret"}
            ),
        }
    )
    env.update(extra or {})
    return AirflowSite(home, env, api_port, password)


class AirflowApi:
    """The Airflow REST API (``/api/v2``) as the admin user, with a token from ``/auth/token``."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.username = username
        self.password = password
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            body = {"username": self.username, "password": self.password}
            self._token = str(self._send("POST", "/auth/token", body, auth=False)["access_token"])
        return self._token

    def _send(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def get(self, path: str) -> Any:
        return self._send("GET", path)

    def healthy(self) -> bool:
        try:
            health = self._send("GET", "/api/v2/monitor/health", auth=False)
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return health.get("metadatabase", {}).get("status") == "healthy"

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        try:
            return dict(self.get(f"/api/v2/dags/{dag_id}"))
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._send("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, *, logical_date: str, conf: Mapping[str, Any], run_id: str) -> str:
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": dict(conf)}
        return str(self._send("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"))

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        quoted = urllib.parse.quote(run_id, safe="")
        return list(
            self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=100")["task_instances"]
        )

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """A try's log as the API server serves it, its structured lines as JSON text."""
        quoted = urllib.parse.quote(run_id, safe="")
        answer = self.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}/logs/{try_number}"
            "?full_content=true"
        )
        return json.dumps(answer.get("content"))

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float) -> str:
        """The run's final state (``success`` or ``failed``), polling until it has one."""

        def finished() -> str | None:
            state = str(self.run(dag_id, run_id)["state"])
            return state if state in ("success", "failed") else None

        return wait_for(finished, timeout=timeout, what=f"run {run_id} of {dag_id} to finish", interval=2)


def start_airflow_services(
    supervisor: Supervisor,
    site: AirflowSite,
    *,
    triggerers: int = 1,
    scheduler: bool = True,
    prefix: str = "",
) -> None:
    """api-server, scheduler, dag-processor and triggerer(s), each its own process.

    Airflow's log servers (the scheduler's and the triggerer's ``serve-logs``) bind every interface
    (``airflow.utils.serve_logs`` passes ``host=""`` to uvicorn, with no setting for the address), so
    they are not started (``--skip-serve-logs``): the API server reads the task and trigger logs from
    the shared log folder instead.
    """
    supervisor.start(f"{prefix}api-server", site.airflow("api-server"), site.env, cwd=site.home)
    if scheduler:
        supervisor.start(
            f"{prefix}scheduler", site.airflow("scheduler", "--skip-serve-logs"), site.env, cwd=site.home
        )
    supervisor.start(f"{prefix}dag-processor", site.airflow("dag-processor"), site.env, cwd=site.home)
    for number in range(1, triggerers + 1):
        start_triggerer(
            supervisor, site, f"{prefix}triggerer-{number}" if triggerers > 1 else f"{prefix}triggerer"
        )
    api = site.api()
    wait_for(api.healthy, timeout=180, what=f"the API server at {site.api_url}", interval=1)


def start_triggerer(supervisor: Supervisor, site: AirflowSite, name: str) -> Service:
    return supervisor.start(name, site.airflow("triggerer", "--skip-serve-logs"), site.env, cwd=site.home)


def listening_sockets(pids: Sequence[int]) -> list[tuple[int, str, int]]:
    """``(pid, address, port)`` of every TCP socket in LISTEN state owned by one of ``pids``."""
    found = []
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for connection in connections:
            if connection.status == psutil.CONN_LISTEN:
                found.append((pid, str(connection.laddr.ip), int(connection.laddr.port)))
    return found


def wait_for_dags(api: AirflowApi, dag_ids: Sequence[str], *, timeout: float = 240) -> None:
    wait_for(
        lambda: all(api.dag(dag_id) for dag_id in dag_ids),
        timeout=timeout,
        what=f"the dag-processor to parse {', '.join(dag_ids)}",
        interval=2,
    )
