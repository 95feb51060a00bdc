"""What the distributed leg checks on each example DAG's run(s): the run's own record (its XComs) against
the S3 store's contents and against the simulator's log of what was created.

* **Files.** Every ``{"path", "sha256"}`` record in the run's XComs (members of an extracted package
  under the package's path) must be an object under ``outputs/<dag_id>/`` with that SHA-256 and, where
  the record gives a byte count, that size. In the other direction, every object under that prefix
  must be one of those files, a package's manifest equal to its record, a JSON record equal to a value
  the run returned (``summary.json``, ``manifest.json``) or the ``.sha256`` of one of those holding its
  digest: nothing in the store that no run accounts for. No key with ``.part`` in its name, ever.
* **Creations.** A creation in the simulator's log belongs to a run when the run's XComs name its id
  (or, for a package, which no answer names, the job or insight it is the package of). Each DAG's
  runs must own exactly the creations of :data:`EXPECTED_CREATES`; over the whole leg, every creation
  belongs to exactly one DAG or to the suite's own set-up.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from scripts.deployment.stack import DeploymentError

ARCHIVE = "pixxel_archive_purchase"
CAPTURES = "pixxel_capture_events"
FAN_OUT = "pixxel_fan_out"
INSIGHTS = "pixxel_insights"
WORKFLOW = "pixxel_workflow_job"
CAPTURE_ASSET = "pixxel_recurring_captures"
STORE_PREFIX = "outputs"
DIGEST_SUFFIX = ".sha256"
PACKAGE_MANIFEST = ".pixxel-manifest.json"

# What one run of each example DAG creates through the API, by kind in the simulator's log. The orders,
# jobs, insights, AOIs and visualizations are the chaos suite's expectations of the same DAGs; the
# download requests, deliveries and packages are what their dag.test() suites assert (one
# catalog download per capture, and the suite's recurring order has one capture; one AOI download per
# field; a package for the job and each of its two tasks, one for the insight's outputs). The
# daily-PNG DAG reads and renders: it creates nothing.
EXPECTED_CREATES: dict[str, dict[str, int]] = {
    "pixxel_tasking_to_delivery": {
        "order": 1,
        "order_item": 1,
        "aoi": 1,
        "visualization": 1,
        "catalog_download": 1,
        # register_store reuses the simulator's store of that name: no store is created.
        "delivery": 1,
    },
    "pixxel_daily_index_png": {},
    ARCHIVE: {"order": 1, "order_item": 1, "catalog_download": 1},
    CAPTURES: {"catalog_download": 1},
    FAN_OUT: {"aoi": 5, "aoi_download": 5},
    INSIGHTS: {"aoi": 1, "insight": 1, "package": 1},
    WORKFLOW: {"job": 1, "package": 3},
}


def sha256_and_size(client: Any, bucket: str, key: str) -> tuple[str, int]:
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def list_store(client: Any, bucket: str) -> dict[str, int]:
    keys: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update({item["Key"]: int(item["Size"]) for item in page.get("Contents", [])})
    return keys


def is_part(key: str) -> bool:
    """A temporary file's name: ``x.part`` or ``x.<random>.part``."""
    return ".part" in key.rsplit("/", 1)[-1]


class StoreWatcher:
    """Lists the store over and over in a thread while runs write to it: every key ever visible, and
    every size it was seen at (an object seen at two sizes was visible incomplete)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self.sizes: dict[str, set[int]] = {}
        self.listings = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-watcher", daemon=True)

    def __enter__(self) -> StoreWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self._look()  # the final state, whatever the last listing in the thread saw

    def _run(self) -> None:
        # A listing every half second, until stopped: sampling, not waiting for anything.
        while not self._stop.wait(0.5):
            self._look()

    def _look(self) -> None:
        try:
            keys = list_store(self.client, self.bucket)
        except Exception as error:  # a listing that failed says nothing; the next one is tried
            self.errors.append(f"{type(error).__name__}: {error}")
            return
        with self._lock:
            for key, size in keys.items():
                self.sizes.setdefault(key, set()).add(size)
            self.listings += 1

    def seen(self) -> dict[str, set[int]]:
        with self._lock:
            return {key: set(sizes) for key, sizes in self.sizes.items()}


@dataclass(frozen=True)
class RecordedFile:
    url: str
    sha256: str
    size: int | None


@dataclass
class RunRecord:
    """What a DAG's run(s) recorded: every XCom value of every run."""

    dag_id: str
    run_ids: list[str]
    values: list[Any]
    files: dict[str, RecordedFile] = field(init=False)
    packages: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.files, self.packages = recorded_files(self.values)

    def strings(self) -> set[str]:
        return set(_strings(self.values))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _strings(inner)


def _byte_count(value: Any) -> int | None:
    # The quicklook's "size" is its pixel dimensions, not a byte count.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def recorded_files(values: Iterable[Any]) -> tuple[dict[str, RecordedFile], list[dict[str, Any]]]:
    """Every file the values record, by URL, and every extracted package record.

    :raises DeploymentError: when two records of one file disagree.
    """
    files: dict[str, RecordedFile] = {}
    packages: list[dict[str, Any]] = []

    def add(url: str, sha256: str, size: int | None) -> None:
        known = files.get(url)
        if known is None:
            files[url] = RecordedFile(url, sha256, size)
            return
        if known.sha256 != sha256 or (None not in (known.size, size) and known.size != size):
            raise DeploymentError(f"{url} is recorded twice, differently: {known} and {sha256}, {size}")
        if known.size is None:
            files[url] = RecordedFile(url, sha256, size)

    def walk(value: Any, folder: str | None) -> None:
        if isinstance(value, Mapping):
            path = value.get("path")
            is_record = isinstance(path, str) and isinstance(value.get("sha256"), str)
            members = value.get("files")
            if is_record:
                assert isinstance(path, str)
                url = f"{folder.rstrip('/')}/{path}" if folder else path
                if isinstance(members, list) and members:
                    # An extracted package: its path is a folder; its members are the files.
                    packages.append(dict(value))
                else:
                    add(url, str(value["sha256"]), _byte_count(value.get("size")))
            for key, inner in value.items():
                walk(inner, path if key == "files" and is_record and isinstance(path, str) else folder)
        elif isinstance(value, list | tuple):
            for inner in value:
                walk(inner, folder)

    for value in values:
        walk(value, None)
    return files, packages


def check_store(client: Any, bucket: str, record: RunRecord, seen: Mapping[str, set[int]]) -> tuple[int, int]:
    """The store holds what the run(s) recorded and nothing else under ``outputs/<dag_id>/``.

    :returns: how many recorded files and how many objects were checked.
    :raises DeploymentError: naming the first object or record at fault.
    """
    prefix = f"{STORE_PREFIX}/{record.dag_id}/"
    bucket_url = f"s3://{bucket}/"

    def key_of(url: str) -> str:
        if not url.startswith(bucket_url + prefix):
            raise DeploymentError(f"{record.dag_id} recorded {url}, which is not under {bucket_url}{prefix}")
        return url[len(bucket_url) :]

    if not record.files:
        raise DeploymentError(f"{record.dag_id}'s runs {record.run_ids} recorded no file")
    store = {key: size for key, size in list_store(client, bucket).items() if key.startswith(prefix)}
    parts = sorted(k for k in {*store, *seen} if k.startswith(prefix) and is_part(k))
    if parts:
        raise DeploymentError(f".part objects were visible in the store: {parts}")
    digests: dict[str, str] = {}
    for url, recorded in sorted(record.files.items()):
        key = key_of(url)
        if key not in store:
            raise DeploymentError(f"{url} is recorded but not in the store")
        digest, size = sha256_and_size(client, bucket, key)
        if digest != recorded.sha256 or (recorded.size is not None and size != recorded.size):
            raise DeploymentError(
                f"{url}: {size} bytes, sha256 {digest}; the run recorded {recorded.size} bytes, "
                f"sha256 {recorded.sha256}"
            )
        if seen.get(key, {size}) != {size}:
            raise DeploymentError(f"{url} was visible at sizes {sorted(seen[key])}, not only at {size}")
        digests[key] = digest
    accounted = set(digests)
    for package in record.packages:
        key = f"{key_of(str(package['path'])).rstrip('/')}/{PACKAGE_MANIFEST}"
        manifest = _json_object(client, bucket, key) if key in store else None
        expected = {
            "archive": {"sha256": package["sha256"], "size": package["size"]},
            "files": package["files"],
        }
        if manifest != expected:
            raise DeploymentError(f"{key} is {manifest!r}, not the package the run recorded")
        accounted.add(key)
    returned = [value for value in record.values if isinstance(value, Mapping)]
    for key in sorted(store):
        if key in accounted or not key.endswith(".json"):
            continue
        if _json_object(client, bucket, key) in returned:
            accounted.add(key)
    for key in sorted(store):
        if not key.endswith(DIGEST_SUFFIX) or key[: -len(DIGEST_SUFFIX)] not in accounted:
            continue
        base = key[: -len(DIGEST_SUFFIX)]
        digest = digests.get(base) or sha256_and_size(client, bucket, base)[0]
        sidecar = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        if sidecar.split(maxsplit=1)[:1] != [digest]:
            raise DeploymentError(f"{key} says {sidecar.strip()!r}; {base} has sha256 {digest}")
        accounted.add(key)
    unaccounted = sorted(set(store) - accounted)
    if unaccounted:
        raise DeploymentError(f"objects no run of {record.dag_id} accounts for: {unaccounted}")
    return len(record.files), len(store)


def _json_object(client: Any, bucket: str, key: str) -> Any:
    try:
        return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ValueError:
        return None


def creations(entries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in entries if e["event"] == "created"]


def owned(
    created: Iterable[Mapping[str, Any]], record: RunRecord, exclude: set[str]
) -> list[Mapping[str, Any]]:
    """The creations the run(s) name in their XComs (by id, or a package by what it is the package of)."""
    names = record.strings()
    return [
        entry
        for entry in created
        if entry["id"] not in exclude
        and (entry["id"] in names or any(of in names for of in entry.get("of") or ()))
    ]


def check_creations(created: list[Mapping[str, Any]], record: RunRecord, exclude: set[str]) -> Counter[str]:
    """The run(s) own exactly the creations one run of the DAG makes.

    :raises DeploymentError: naming each kind whose count differs.
    """
    counts = Counter(str(entry["kind"]) for entry in owned(created, record, exclude))
    expected = Counter(EXPECTED_CREATES[record.dag_id])
    if counts != expected:
        raise DeploymentError(
            f"{record.dag_id} created {dict(sorted(counts.items()))}; one run creates "
            f"{dict(sorted(expected.items()))}"
        )
    return counts


def check_every_creation_owned(
    created: list[Mapping[str, Any]], records: Iterable[RunRecord], set_up: set[str]
) -> Counter[str]:
    """Every creation in the log belongs to exactly one DAG's runs or to the suite's set-up.

    :raises DeploymentError: naming what no run owns and what two DAGs both claim.
    """
    owners: dict[str, list[str]] = {}
    for record in records:
        for entry in owned(created, record, set_up):
            owners.setdefault(str(entry["id"]), []).append(record.dag_id)
    unowned = [f"{e['kind']} {e['id']}" for e in created if e["id"] not in owners and e["id"] not in set_up]
    shared = {k: v for k, v in owners.items() if len(v) > 1}
    if unowned or shared:
        raise DeploymentError(f"creations no run accounts for: {unowned}; claimed by two DAGs: {shared}")
    return Counter(str(entry["kind"]) for entry in created)
