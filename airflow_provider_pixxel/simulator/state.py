"""In-memory state of the Pixxel API simulator.

One :class:`SimulatorState` holds the whole simulated workspace: the seeded catalogue (projects,
satellites, bandsets, indices, workflows, blocks, STAC archive, stores), everything created through the
API, the token wallet, the record of every request, and the knobs tests turn:

* **pace** - ``speed`` is the number of seconds per status step (``0``: a resource is terminal on the
  first read after the response that created it); ``steps_per_poll`` instead advances a resource by that
  many steps each time a request reads it, whatever the clock says;
* **scenarios** - :attr:`SimulatorState.scenarios` makes chosen resources fail, end partial, stall or be
  cancelled;
* **clock** - any ``() -> float`` returning epoch seconds; :class:`ManualClock` lets a test move time
  without sleeping.
"""

from __future__ import annotations

import enum
import fnmatch
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_pixxel.utils.dates import parse_datetime

if TYPE_CHECKING:
    from airflow_provider_pixxel.simulator.faults import FaultInjector
    from airflow_provider_pixxel.simulator.signed_urls import FileStore, UrlSigner

DEFAULT_API_KEY = "pixxel-simulator-key"
DEFAULT_WALLET_BALANCE = 250_000.0
DEFAULT_PACKAGE_SIZE_BYTES = 256 * 1024
DEFAULT_SIGNED_URL_TTL_SECONDS = 3600

# Resource kinds that move through statuses, and what each scenario outcome means for them.
PROGRESSING_KINDS = (
    "aoi",
    "visualization",
    "job",
    "insight",
    "order_item",
    "aoi_download",
    "catalog_download",
    "delivery",
    "package",
)


class Outcome(str, enum.Enum):
    """How a progressing resource ends."""

    SUCCESS = "success"
    FAILED = "failed"
    PARTIAL = "partial"
    STALL = "stall"
    CANCELLED = "cancelled"


_SUPPORTED_OUTCOMES: dict[str, frozenset[Outcome]] = {
    kind: frozenset({Outcome.SUCCESS, Outcome.FAILED, Outcome.STALL}) for kind in PROGRESSING_KINDS
}
_SUPPORTED_OUTCOMES["aoi"] |= {Outcome.PARTIAL}
_SUPPORTED_OUTCOMES["visualization"] |= {Outcome.PARTIAL}
_SUPPORTED_OUTCOMES["order_item"] |= {Outcome.PARTIAL, Outcome.CANCELLED}


class ManualClock:
    """A clock that only moves when told to: ``clock.advance(30)``."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, timestamp: float) -> None:
        with self._lock:
            self._now = float(timestamp)


@dataclass
class ScenarioRule:
    """Makes matching resources of ``kind`` end with ``outcome`` instead of success.

    ``match`` is ``None`` (the next resources created), a string compared with the resource's id and
    name (and, for jobs, workflow id and name; for order items, order id), or a predicate over the
    created resource. ``times`` caps how many resources the rule takes (``None``: every match; a rule
    without ``match`` defaults to 1). ``message``/``failure_type`` fill ``err_msg``/``failure_type``
    (or ``validation_errors``) where the schema has them; ``val_errors`` is attached to a failed job.
    """

    kind: str
    outcome: Outcome
    match: str | Callable[[Mapping[str, Any]], bool] | None = None
    times: int | None = None
    message: str | None = None
    failure_type: str | None = None
    val_errors: list[dict[str, str]] | None = None
    applied_to: list[str] = field(default_factory=list)

    def matches(self, keys: Iterable[str], resource: Mapping[str, Any]) -> bool:
        if self.times is not None and len(self.applied_to) >= self.times:
            return False
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(resource))
        return self.match in set(keys)


class Scenarios:
    """What should go wrong, set by a test before the resources exist.

    >>> state.scenarios.fail("job", message="out of memory")      # the next job fails
    >>> state.scenarios.partial("order_item", match="my-item")    # this item ends PARTIALLY_FULFILLED
    >>> state.scenarios.stall("catalog_download")                 # the next download never finishes
    >>> state.scenarios.cancel("order_item")                      # the next order item is CANCELLED
    """

    def __init__(self) -> None:
        self.rules: list[ScenarioRule] = []
        self._lock = threading.Lock()

    def add(self, rule: ScenarioRule) -> ScenarioRule:
        if rule.kind not in PROGRESSING_KINDS:
            raise ValueError(
                f"unknown resource kind {rule.kind!r}; use one of {', '.join(PROGRESSING_KINDS)}"
            )
        if rule.outcome not in _SUPPORTED_OUTCOMES[rule.kind]:
            allowed = ", ".join(sorted(o.value for o in _SUPPORTED_OUTCOMES[rule.kind]))
            raise ValueError(f"a {rule.kind} cannot end {rule.outcome.value!r}; it can end: {allowed}")
        if rule.match is None and rule.times is None:
            rule.times = 1
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail(
        self,
        kind: str,
        match: str | Callable[[Mapping[str, Any]], bool] | None = None,
        *,
        message: str | None = None,
        failure_type: str | None = None,
        val_errors: list[dict[str, str]] | None = None,
        times: int | None = None,
    ) -> ScenarioRule:
        return self.add(ScenarioRule(kind, Outcome.FAILED, match, times, message, failure_type, val_errors))

    def partial(
        self,
        kind: str,
        match: str | Callable[[Mapping[str, Any]], bool] | None = None,
        *,
        message: str | None = None,
        times: int | None = None,
    ) -> ScenarioRule:
        return self.add(ScenarioRule(kind, Outcome.PARTIAL, match, times, message))

    def stall(
        self,
        kind: str,
        match: str | Callable[[Mapping[str, Any]], bool] | None = None,
        *,
        times: int | None = None,
    ) -> ScenarioRule:
        return self.add(ScenarioRule(kind, Outcome.STALL, match, times))

    def cancel(
        self,
        kind: str = "order_item",
        match: str | Callable[[Mapping[str, Any]], bool] | None = None,
        *,
        message: str | None = None,
        times: int | None = None,
    ) -> ScenarioRule:
        return self.add(ScenarioRule(kind, Outcome.CANCELLED, match, times, message))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def claim(
        self, kind: str, resource_id: str, keys: Iterable[str], resource: Mapping[str, Any]
    ) -> ScenarioRule | None:
        """The first rule that takes this new resource (recording that it did), or ``None``."""
        keys = [k for k in keys if k]
        with self._lock:
            for rule in self.rules:
                if rule.kind == kind and rule.matches(keys, resource):
                    rule.applied_to.append(resource_id)
                    return rule
        return None


@dataclass
class Lifecycle:
    """Where a progressing resource is in its status sequence (step ``0`` .. ``last_step``)."""

    kind: str
    resource_id: str
    created_at: float
    last_step: int
    outcome: Outcome = Outcome.SUCCESS
    rule: ScenarioRule | None = None
    reads: int = 0
    seen_in_request: int = -1
    # The highest step a stalled resource reaches: the last one before its terminal status.
    stall_step: int | None = None

    @property
    def message(self) -> str | None:
        return self.rule.message if self.rule else None


@dataclass
class RecordedRequest:
    """One request the simulator received (query strings of signed URLs included: tests only).

    Recorded on arrival; ``status`` and ``body`` are filled in as the answer starts, so a client that
    sees its connection break already finds its request here.
    """

    method: str
    path: str
    query: Mapping[str, str]
    status: int | None
    time: float
    body: Any = None
    #: The client's ``host:port``: one per TCP connection, so distinct values count connections.
    client: str | None = None
    #: Wall-clock arrival (``time.time()``), comparable across processes whatever the state's clock.
    received_at: float = 0.0


@dataclass(frozen=True)
class CreatedResource:
    """A resource created through the API (dry runs and estimates create nothing)."""

    kind: str
    id: str
    time: float
    resource: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class LedgerEntry:
    """One purchase the wallet paid for: the simulator's own record of spend, to check reports against."""

    kind: str  # "order", "job" or "insight"
    resource_id: str
    project_id: str
    amount: float
    at: str  # RFC 3339, as the resource's created_at


class SimulatorError(Exception):
    """An API error answer: the app turns it into ``{"error": {"code", "message", "details"}}``."""

    CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}

    def __init__(self, status: int, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.code = code or self.CODES.get(status, "internal_error")

    def envelope(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def bad_request(message: str, details: Any = None) -> SimulatorError:
    return SimulatorError(400, message, details=details)


def not_found(what: str, resource_id: str) -> SimulatorError:
    return SimulatorError(404, f"{what} {resource_id!r} not found", details={"id": resource_id})


def conflict(message: str, details: Any = None) -> SimulatorError:
    return SimulatorError(409, message, details=details)


def format_t(timestamp: float) -> str:
    """``2024-05-27T06:50:20.056549Z`` (clerk, dexter)."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_offset(timestamp: float) -> str:
    """``2022-11-14T12:55:49.125928+00:00`` (AOIs)."""
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="microseconds")


def format_space(timestamp: float) -> str:
    """``2022-11-14 12:55:49.125928+00:00`` (assets, visualizations, indices)."""
    return format_offset(timestamp).replace("T", " ")


def format_seconds(timestamp: float) -> str:
    """``2024-03-20T15:04:05Z`` (stores, STAC)."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class SimulatorState:
    """The simulated Pixxel workspace. Thread-safe: the server thread and the test share it."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        speed: float = 0.0,
        steps_per_poll: int | None = None,
        seed: int = 0,
        clock: Callable[[], float] | None = None,
        wallet_balance: float = DEFAULT_WALLET_BALANCE,
        package_size_bytes: int = DEFAULT_PACKAGE_SIZE_BYTES,
        signed_url_ttl_seconds: int = DEFAULT_SIGNED_URL_TTL_SECONDS,
        public_base_url: str | None = None,
        accept_auth_prefix: str | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError("speed is seconds per status step and cannot be negative")
        if steps_per_poll is not None and steps_per_poll < 1:
            raise ValueError("steps_per_poll must be 1 or more")
        self.api_key = api_key
        # Like the service, the exact key and nothing else by default; a deployment that wants
        # "Authorization: Bearer <key>" opts in, and then both forms are taken.
        self.accept_auth_prefix = accept_auth_prefix.strip() if accept_auth_prefix else None
        self.speed = float(speed)
        self.steps_per_poll = steps_per_poll
        self.seed = seed
        self.clock: Callable[[], float] = clock or time.time
        self.wallet_balance = float(wallet_balance)
        self.package_size_bytes = int(package_size_bytes)
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.scenarios = Scenarios()
        self.lock = threading.RLock()
        self._random = random.Random(seed)
        self._request_seq = 0
        self._requests: list[RecordedRequest] = []
        self._created: list[CreatedResource] = []
        self.ledger: list[LedgerEntry] = []
        self.lifecycles: dict[str, Lifecycle] = {}

        # Seeded catalogue and created resources, keyed by id.
        self.org_id = ""
        self.user_id = ""
        self.projects: dict[str, dict[str, Any]] = {}
        self.satellites: dict[str, dict[str, Any]] = {}
        self.bandsets: dict[str, dict[str, Any]] = {}
        self.indices: dict[str, dict[str, Any]] = {}
        self.blocks: list[dict[str, Any]] = []
        self.workflows: dict[str, dict[str, Any]] = {}
        self.collections: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}  # STAC items by id (collection in item["collection"])
        self.stores: dict[str, dict[str, Any]] = {}
        self.store_secrets: dict[str, dict[str, str]] = {}
        self.aois: dict[str, dict[str, Any]] = {}
        self.assets: dict[str, dict[str, Any]] = {}
        self.visualizations: dict[str, dict[str, Any]] = {}
        self.aoi_downloads: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.insights: dict[str, dict[str, Any]] = {}
        self.packages: dict[str, dict[str, Any]] = {}  # job/task/insight download packages
        self.orders: dict[str, dict[str, Any]] = {}
        self.order_items: dict[str, dict[str, Any]] = {}
        self.catalogs: dict[str, dict[str, Any]] = {}
        self.deliveries: dict[str, dict[str, Any]] = {}
        self.catalog_downloads: dict[str, dict[str, Any]] = {}

        from airflow_provider_pixxel.simulator.faults import FaultInjector
        from airflow_provider_pixxel.simulator.signed_urls import FileStore, UrlSigner

        self.faults: FaultInjector = FaultInjector(seed, clock=self.clock)
        self.files: FileStore = FileStore()
        self.signer: UrlSigner = UrlSigner(
            f"pixxel-simulator-{seed}-{self._random.getrandbits(64):x}".encode(),
            signed_url_ttl_seconds,
            self.clock,
        )

        from airflow_provider_pixxel.simulator.seed import seed_workspace

        seed_workspace(self)

    # ----------------------------------------------------------------- ids and time
    def new_id(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def rng(self) -> random.Random:
        """The state's deterministic random source (for generated names, numbers, ...)."""
        return self._random

    def now(self) -> float:
        return self.clock()

    # ----------------------------------------------------------------- progression
    def begin_request(self) -> int:
        """Called once per API request: a resource read twice in one request advances once."""
        with self.lock:
            self._request_seq += 1
            return self._request_seq

    def start_lifecycle(
        self,
        kind: str,
        resource_id: str,
        *,
        last_step: int,
        keys: Iterable[str] = (),
        resource: Mapping[str, Any] | None = None,
        stall_step: int | None = None,
    ) -> Lifecycle:
        """Begin the status sequence of a new resource, applying the first scenario rule that matches."""
        rule = self.scenarios.claim(kind, resource_id, [resource_id, *keys], resource or {})
        lifecycle = Lifecycle(
            kind=kind,
            resource_id=resource_id,
            created_at=self.now(),
            last_step=last_step,
            outcome=rule.outcome if rule else Outcome.SUCCESS,
            rule=rule,
            seen_in_request=self._request_seq,
            stall_step=stall_step if stall_step is not None else max(last_step - 1, 0),
        )
        self.lifecycles[resource_id] = lifecycle
        return lifecycle

    def step(self, lifecycle: Lifecycle) -> int:
        """The current step of a resource; reading it in a new request counts as one poll."""
        if lifecycle.seen_in_request != self._request_seq:
            lifecycle.seen_in_request = self._request_seq
            lifecycle.reads += 1
        if self.steps_per_poll is not None:
            raw = lifecycle.reads * self.steps_per_poll
        elif self.speed <= 0:
            raw = lifecycle.last_step if lifecycle.reads else 0
        else:
            raw = int((self.now() - lifecycle.created_at) / self.speed)
        limit = lifecycle.stall_step if lifecycle.outcome is Outcome.STALL else lifecycle.last_step
        return max(0, min(raw, limit if limit is not None else lifecycle.last_step))

    def fraction(self, lifecycle: Lifecycle, step: int) -> float:
        """How far along a resource is, 0.0-1.0, rising smoothly with the clock in timed mode."""
        if lifecycle.last_step <= 0:
            return 1.0
        if self.steps_per_poll is None and self.speed > 0:
            value = (self.now() - lifecycle.created_at) / (self.speed * lifecycle.last_step)
            value = min(value, (step + 1) / lifecycle.last_step if step < lifecycle.last_step else 1.0)
        else:
            value = step / lifecycle.last_step
        if lifecycle.outcome is Outcome.STALL:
            value = min(value, 0.9)
        return max(0.0, min(value, 1.0))

    def step_time(self, lifecycle: Lifecycle, step: int) -> float:
        """When a resource reached ``step`` (its creation time plus the steps, in timed mode)."""
        if self.steps_per_poll is None and self.speed > 0:
            return lifecycle.created_at + step * self.speed
        return max(lifecycle.created_at, self.now())

    # ----------------------------------------------------------------- recording
    def record_request(self, request: RecordedRequest) -> None:
        with self.lock:
            self._requests.append(request)

    def record_created(self, kind: str, resource_id: str, resource: Mapping[str, Any]) -> None:
        with self.lock:
            self._created.append(CreatedResource(kind, resource_id, self.now(), resource))

    def requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Requests received, optionally filtered by method and path (``fnmatch`` pattern, e.g.
        ``"/v0/orders*"``)."""
        with self.lock:
            found = list(self._requests)
        if method:
            found = [r for r in found if r.method == method.upper()]
        if path:
            found = [r for r in found if fnmatch.fnmatchcase(r.path, path)]
        return found

    def request_stats(self, since: float = 0.0) -> dict[str, Any]:
        """Per-request figures for load measurements (the ``GET /_simulator/requests`` answer):
        every request received at or after ``since`` (wall clock) as ``[received_at, method, path,
        status, client]``, and how many TCP connections (distinct client ``host:port``) sent them."""
        with self.lock:
            found = [r for r in self._requests if r.received_at >= since]
        return {
            "count": len(found),
            "connections": len({r.client for r in found if r.client}),
            "requests": [[r.received_at, r.method, r.path, r.status, r.client] for r in found],
        }

    def created(self, kind: str | None = None) -> list[CreatedResource]:
        """Resources created through the API, optionally of one kind (``"order"``, ``"job"``, ...)."""
        with self.lock:
            found = list(self._created)
        return [c for c in found if kind is None or c.kind == kind]

    def clear_records(self) -> None:
        """Forget recorded requests and created resources (the resources themselves stay)."""
        with self.lock:
            self._requests.clear()
            self._created.clear()

    # ----------------------------------------------------------------- wallet
    def charge(self, amount: float, *, kind: str = "order") -> None:
        """Take ``amount`` tokens from the wallet, or refuse the purchase (400) when it holds too few."""
        with self.lock:
            if amount > self.wallet_balance + 1e-9:
                raise SimulatorError(
                    400,
                    f"insufficient tokens: the {kind} costs {amount:g} tokens but the wallet holds "
                    f"{self.wallet_balance:g}",
                    details={"required": amount, "available": self.wallet_balance},
                    code="insufficient_tokens",
                )
            self.wallet_balance -= amount

    def record_spend(self, kind: str, resource_id: str, project_id: str, amount: float) -> None:
        """Write one paid purchase (an order item, a job, an insight) in :attr:`ledger`."""
        with self.lock:
            self.ledger.append(
                LedgerEntry(kind, resource_id, project_id, float(amount), format_t(self.now()))
            )

    def spent(self, project_id: str | None = None, *, since: str = "", until: str = "") -> float:
        """Tokens the ledger holds for ``project_id`` (all projects: None), created in ``[since, until)``.

        ``since``/``until`` are RFC 3339 texts compared as instants; empty means unbounded.
        """
        low = parse_datetime(since).timestamp() if since else -float("inf")
        high = parse_datetime(until).timestamp() if until else float("inf")
        with self.lock:
            entries = list(self.ledger)
        return sum(
            entry.amount
            for entry in entries
            if (project_id is None or entry.project_id == project_id)
            and low <= parse_datetime(entry.at).timestamp() < high
        )

    # ----------------------------------------------------------------- signed files
    def base_url_for(self, request_base_url: str) -> str:
        return self.public_base_url or request_base_url.rstrip("/")
