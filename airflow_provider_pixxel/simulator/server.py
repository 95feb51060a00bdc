"""Running the simulator: in a background thread (:func:`run_simulator`) or in the foreground (CLI)."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import uvicorn

from airflow_provider_pixxel.simulator.app import create_app
from airflow_provider_pixxel.simulator.state import DEFAULT_API_KEY, SimulatorState

if TYPE_CHECKING:
    from airflow_provider_pixxel.simulator.faults import FaultInjector

STARTUP_TIMEOUT_SECONDS = 15.0


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket (port ``0``: a free port chosen by the OS)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def base_url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def connection_uri(base_url: str, api_key: str) -> str:
    """An Airflow connection URI for a simulator at ``base_url``: ``pixxel://:<key>@host:port/http``
    (Airflow reads the URI path as the connection's ``schema``, which the hook uses as URL scheme)."""
    scheme, _, netloc = base_url.partition("://")
    return f"pixxel://:{quote(api_key, safe='')}@{netloc}/{scheme}"


def connection_json(base_url: str, api_key: str) -> str:
    """The same connection as JSON, the form ``AIRFLOW_CONN_<ID>`` also accepts."""
    return json.dumps({"conn_type": "pixxel", "host": base_url, "password": api_key})


@dataclass
class SimulatorHandle:
    """A running simulator: where it is, how to authenticate, and its state and fault injector."""

    base_url: str
    api_key: str = field(repr=False)
    state: SimulatorState = field(repr=False)

    @property
    def faults(self) -> FaultInjector:
        """The fault injector: ``handle.faults.add(FaultRule(...))``."""
        return self.state.faults

    def url(self, path: str) -> str:
        return self.base_url + path

    def headers(self) -> dict[str, str]:
        """Headers that authenticate a request to this simulator."""
        return {"Authorization": self.api_key}

    def airflow_connection_uri(self) -> str:
        """For ``AIRFLOW_CONN_PIXXEL_DEFAULT``: conn type pixxel, host = base URL, password = key."""
        return connection_uri(self.base_url, self.api_key)

    def airflow_connection_json(self) -> str:
        """For ``AIRFLOW_CONN_PIXXEL_DEFAULT`` in JSON form."""
        return connection_json(self.base_url, self.api_key)


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to whoever started the thread."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def run_simulator(
    *,
    api_key: str = DEFAULT_API_KEY,
    speed: float = 0.0,
    steps_per_poll: int | None = None,
    seed: int = 0,
    clock: Callable[[], float] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    state: SimulatorState | None = None,
    log_level: str = "warning",
    **state_options: Any,
) -> Iterator[SimulatorHandle]:
    """Serve a simulator on ``host`` (a free port by default) in a background thread.

    Yields a :class:`SimulatorHandle`; the server stops (and the thread ends) when the block exits.
    ``state_options`` go to :class:`SimulatorState` (``wallet_balance``, ``package_size_bytes``, ...);
    pass ``state`` instead to serve an existing one.
    """
    if state is None:
        state = SimulatorState(
            api_key=api_key,
            speed=speed,
            steps_per_poll=steps_per_poll,
            seed=seed,
            clock=clock,
            **state_options,
        )
    sock = bind_socket(host, port)
    config = uvicorn.Config(
        create_app(state),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = _QuietServer(config)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # surfaced to the caller below
            errors.append(error)

    thread = threading.Thread(target=serve, name="pixxel-simulator", daemon=True)
    thread.start()
    try:
        for _ in range(int(STARTUP_TIMEOUT_SECONDS / 0.01)):
            if server.started or errors or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not server.started:
            raise RuntimeError(f"the Pixxel simulator did not start: {errors[0] if errors else 'timeout'}")
        yield SimulatorHandle(base_url=base_url_of(sock), api_key=state.api_key, state=state)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_SECONDS)
        sock.close()


def serve_forever(
    state: SimulatorState, sock: socket.socket, *, log_level: str = "info", access_log: bool = False
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then shut down cleanly and return.

    uvicorn would re-raise the signal after shutting down (exit status -2/-15); a console script
    asked to stop should instead end normally, so the handlers here only ask the server to exit.
    """
    config = uvicorn.Config(
        create_app(state),
        log_level=log_level,
        access_log=access_log,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = _QuietServer(config)

    def stop(signum: int, frame: Any) -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
