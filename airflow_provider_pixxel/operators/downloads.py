"""Fetch Pixxel files to a local directory or object storage, verified and resumable.

Five kinds of download exist in the Pixxel API; each operator here asks Pixxel to prepare one, waits until
its signed URL is ready, and fetches it with the provider's one download routine
(:func:`airflow_provider_pixxel.hooks.download.download`): bytes stream to a ``.part`` file, resume
with ``Range`` after a dropped connection, reach the final name only once complete, and get a SHA-256.
When the file host refuses a signed URL as expired, the routine asks the operator for a fresh one,
which re-reads the resource. Signed URLs are never logged nor returned.

Every operator returns a manifest ``{"path", "size", "sha256", "files", "skipped", ...ids}``;
``files`` lists the members (path, size, sha256) when ``extract=True`` unpacked a zip package.

Destinations: ``destination`` is a base directory (a local path, or an object-storage URL such as
``s3://bucket/prefix`` through Airflow's ``ObjectStoragePath``); ``file_name`` (optional, templated) is
a path relative to it. A ``file_name`` that is absolute or climbs out of ``destination`` is refused
before any API call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelError
from airflow_provider_pixxel.lineage import id_names
from airflow_provider_pixxel.links import (
    PixxelAuroraAOILink,
    PixxelAuroraCatalogDownloadLink,
    PixxelAuroraInsightLink,
    PixxelAuroraJobLink,
)
from airflow_provider_pixxel.operators.base import PixxelResumableOperator
from airflow_provider_pixxel.utils.arguments import exactly_one_id_list, id_list, require_text
from airflow_provider_pixxel.utils.lazy_import import lazy_import

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_pixxel import resources
    from airflow_provider_pixxel.hooks.download import Destination, Target
else:
    # Needed once the task runs, not while a DAG file is parsed (see utils/lazy_import.py).
    resources = lazy_import("airflow_provider_pixxel.resources")

PENDING_ID = "pending"


class PixxelDownloadingOperator(PixxelResumableOperator):
    """What every download operator shares: where files go, and fetching once the URL is ready.

    Subclasses set :attr:`watch_kind`, implement :meth:`start` (request the download, return its ids),
    :meth:`default_file_name` and :meth:`signed_url`.

    :param destination: base directory: a local path or an object-storage URL / ``ObjectStoragePath``.
    :param file_name: file (or, with ``extract``, directory) name relative to ``destination``;
        default: a name built from the ids, e.g. ``catalog-download-<id>.zip``.
    :param extract: unpack the zip package into a directory (members checked before anything is
        written: no absolute paths, no ``..``, no links, bounded size).
    :param overwrite: fetch again even when an earlier verified download is already there.
    """

    template_fields: Sequence[str] = ("pixxel_conn_id", "destination", "file_name")

    def __init__(
        self,
        *,
        destination: Destination,
        file_name: str | None = None,
        extract: bool = False,
        overwrite: bool = False,
        **kwargs: Any,
    ) -> None:
        # A download operator exists to fetch files: it always waits for them to be ready.
        super().__init__(wait_for_completion=True, **kwargs)
        self.destination = destination
        self.file_name = file_name
        self.extract = extract
        self.overwrite = overwrite

    # -- to implement --------------------------------------------------------------------------------

    def default_file_name(self, ids: Mapping[str, str]) -> str:
        raise NotImplementedError

    def signed_url(self, ids: Mapping[str, str]) -> str:
        """A fresh signed URL, from a new read of the resource."""
        raise NotImplementedError

    def check_arguments(self) -> dict[str, str]:
        """Check the operator's own arguments; return the ids known before any call."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------------

    def target(self, ids: Mapping[str, str]) -> Target:
        from airflow_provider_pixxel.hooks.download import resolve_destination

        destination = self.destination
        if destination is None or (isinstance(destination, str) and not destination.strip()):
            raise PixxelConfigError(
                "destination must be a directory: a local path or an object-storage URL (s3://bucket/prefix)"
            )
        if isinstance(destination, str):
            destination = destination.strip()
        if self.file_name is not None and str(self.file_name).strip():
            name = str(self.file_name).strip()
        else:
            name = self.default_file_name(ids)
            if self.extract and name.endswith(".zip"):
                name = name[: -len(".zip")]
        return resolve_destination(destination, name)

    def execute(self, context: Context) -> Any:
        known = self.check_arguments()
        id_names = resources.watchable(self.watch_kind).id_names
        # Refuses a destination that escapes its base directory before anything is requested.
        self.target({**known, **{name: known.get(name, PENDING_ID) for name in id_names}})
        return super().execute(context)

    def finish(self, context: Context, ids: Mapping[str, str], event: Mapping[str, Any]) -> Any:
        target = self.target(ids)

        def fresh_url() -> str:
            return self.signed_url(ids)

        result = self.fetch(fresh_url, target)
        self.lineage_files = [result["path"]]
        if result.get("files"):
            # An extracted package: each member is its own file.
            self.lineage_files = [
                _member_location(result["path"], entry["path"]) for entry in result["files"]
            ]
        return {**dict(ids), **result}

    def fetch(self, url_provider: Callable[[], str], target: Target) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.download import download

        result = download(
            url_provider,
            target,
            extract=self.extract,
            overwrite=self.overwrite,
            retry_policy=self.hook.retry_policy,
            log=self.log,
        )
        return result.to_dict()


def _member_location(directory: str, member: str) -> str:
    return member if "://" in member or member.startswith("/") else f"{directory.rstrip('/')}/{member}"


def _url_of(answer: Any) -> str:
    url = answer.get("signed_url") if isinstance(answer, Mapping) else None
    return url if isinstance(url, str) else ""


class PixxelDownloadAssetsOperator(PixxelDownloadingOperator):
    """Download assets of an AOI (mosaics, STAC items...) as one zip package.

    Requests the package (``POST /v0/aois/{aoi_id}/downloads``), waits until it is ready and fetches
    it. The download id is kept across task retries, so a retry fetches the same package.

    :param aoi_id: the AOI.
    :param asset_ids: ids of the AOI's assets (``PixxelHook.list_assets(aoi_id)``).

    Example::

        PixxelDownloadAssetsOperator(
            task_id="fetch_assets",
            aoi_id="{{ ti.xcom_pull('create_aoi')['aoi_id'] }}",
            asset_ids=["asset-1", "asset-2"],
            destination="/data/pixxel/{{ ds }}",
            extract=True,
        )
    """

    operator_extra_links = (PixxelAuroraAOILink(),)
    watch_kind = "aoi_download"
    external_id_key = "pixxel_aoi_download_ids"
    template_fields: Sequence[str] = (*PixxelDownloadingOperator.template_fields, "aoi_id", "asset_ids")

    def __init__(self, *, aoi_id: str, asset_ids: Sequence[str] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aoi_id = aoi_id
        self.asset_ids = asset_ids

    def check_arguments(self) -> dict[str, str]:
        if not id_list(self.asset_ids, field="asset_ids"):
            raise PixxelConfigError(
                "asset_ids must list at least one asset id (see PixxelHook.list_assets())"
            )
        return {"aoi_id": require_text("aoi_id", self.aoi_id)}

    def lineage_inputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"aoi/{ids['aoi_id']}"]

    def start(self, context: Context) -> dict[str, str]:
        aoi_id = self.check_arguments()["aoi_id"]
        answer = self.hook.create_aoi_download(aoi_id, asset_ids=id_list(self.asset_ids, field="asset_ids"))
        download_id = str((answer or {}).get("download_id") or "")
        if not download_id:
            raise PixxelError("Pixxel accepted the AOI download request but returned no download_id")
        self.log.info("Requested AOI download %s of AOI %s", download_id, aoi_id)
        return {"aoi_id": aoi_id, "download_id": download_id}

    def default_file_name(self, ids: Mapping[str, str]) -> str:
        return f"aoi-{ids['aoi_id']}-download-{ids['download_id']}.zip"

    def signed_url(self, ids: Mapping[str, str]) -> str:
        return _url_of(self.hook.get_aoi_download(ids["aoi_id"], ids["download_id"]))


class PixxelDownloadCatalogsOperator(PixxelDownloadingOperator):
    """Download purchased imagery (catalogs, or all catalogs of order items) as one zip package.

    Give exactly one of ``catalog_ids`` or ``order_item_ids``. Requests the package
    (``POST /v0/catalogs/download``), waits until Pixxel has prepared it and fetches it. The download
    id is kept across task retries.

    Example::

        PixxelDownloadCatalogsOperator(
            task_id="fetch_imagery",
            order_item_ids="{{ ti.xcom_pull('place_order')['order_item_ids'] }}",
            destination="s3://my-bucket/pixxel/{{ ds }}",
        )
    """

    operator_extra_links = (PixxelAuroraCatalogDownloadLink(),)
    watch_kind = "catalog_download"
    external_id_key = "pixxel_catalog_download_ids"
    template_fields: Sequence[str] = (
        *PixxelDownloadingOperator.template_fields,
        "catalog_ids",
        "order_item_ids",
    )

    def __init__(
        self,
        *,
        catalog_ids: Sequence[str] | str | None = None,
        order_item_ids: Sequence[str] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.catalog_ids = catalog_ids
        self.order_item_ids = order_item_ids

    def _request(self) -> tuple[str, list[str]]:
        return exactly_one_id_list(
            self.catalog_ids, self.order_item_ids, first_field="catalog_ids", second_field="order_item_ids"
        )

    def check_arguments(self) -> dict[str, str]:
        self._request()
        return {}

    def lineage_inputs(self, ids: Mapping[str, str]) -> list[str]:
        field, chosen = self._request()
        return id_names("catalog" if field == "catalog_ids" else "order_item", chosen)

    def start(self, context: Context) -> dict[str, str]:
        field, ids = self._request()
        answer = self.hook.create_catalog_download(**{field: ids})
        download_id = str((answer or {}).get("id") or "")
        if not download_id:
            raise PixxelError("Pixxel accepted the catalog download request but returned no id")
        self.log.info("Requested catalog download %s of %d %s", download_id, len(ids), field)
        return {"download_id": download_id}

    def default_file_name(self, ids: Mapping[str, str]) -> str:
        return f"catalog-download-{ids['download_id']}.zip"

    def signed_url(self, ids: Mapping[str, str]) -> str:
        return _url_of(self.hook.get_catalog_download(ids["download_id"]))


class PixxelDownloadJobOperator(PixxelDownloadingOperator):
    """Download the inputs and outputs of a workflow job run as one zip package.

    The package is requested with ``PUT .../jobs/{job_id}/download``, which is re-sent until the
    package is ready (the API has no other way to check it).

    Example::

        PixxelDownloadJobOperator(
            task_id="fetch_job",
            workflow_id="wf-123",
            job_id="{{ ti.xcom_pull('run_job')['job_id'] }}",
            destination="/data/jobs",
            extract=True,
        )
    """

    operator_extra_links = (PixxelAuroraJobLink(),)
    watch_kind = "job_package"
    external_id_key = "pixxel_job_package_ids"
    template_fields: Sequence[str] = (*PixxelDownloadingOperator.template_fields, "workflow_id", "job_id")

    def __init__(self, *, workflow_id: str, job_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workflow_id = workflow_id
        self.job_id = job_id

    def check_arguments(self) -> dict[str, str]:
        return {
            "workflow_id": require_text("workflow_id", self.workflow_id),
            "job_id": require_text("job_id", self.job_id),
        }

    def lineage_inputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"workflow/{ids['workflow_id']}/job/{ids['job_id']}"]

    def start(self, context: Context) -> dict[str, str]:
        # The first status read is the PUT that requests the package.
        return self.check_arguments()

    def default_file_name(self, ids: Mapping[str, str]) -> str:
        return f"job-{ids['job_id']}.zip"

    def signed_url(self, ids: Mapping[str, str]) -> str:
        return _url_of(self.hook.download_job(ids["workflow_id"], ids["job_id"]))


class PixxelDownloadTaskOperator(PixxelDownloadingOperator):
    """Download the assets of one task of a workflow job run as one zip package.

    ``task_id`` here is the Pixxel job task's id (``job["tasks"][i]["id"]``); the Airflow task's own id
    is the usual ``task_id`` argument, so this one is called ``job_task_id``.

    Example::

        PixxelDownloadTaskOperator(
            task_id="fetch_ndvi_task",
            workflow_id="wf-123",
            job_id="{{ ti.xcom_pull('run_job')['job_id'] }}",
            job_task_id="task-7",
            destination="/data/jobs",
        )
    """

    operator_extra_links = (PixxelAuroraJobLink(),)
    watch_kind = "task_package"
    external_id_key = "pixxel_task_package_ids"
    template_fields: Sequence[str] = (
        *PixxelDownloadingOperator.template_fields,
        "workflow_id",
        "job_id",
        "job_task_id",
    )

    def __init__(self, *, workflow_id: str, job_id: str, job_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workflow_id = workflow_id
        self.job_id = job_id
        self.job_task_id = job_task_id

    def check_arguments(self) -> dict[str, str]:
        return {
            "workflow_id": require_text("workflow_id", self.workflow_id),
            "job_id": require_text("job_id", self.job_id),
            "task_id": require_text("job_task_id", self.job_task_id),
        }

    def lineage_inputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"workflow/{ids['workflow_id']}/job/{ids['job_id']}/task/{ids['task_id']}"]

    def start(self, context: Context) -> dict[str, str]:
        return self.check_arguments()

    def default_file_name(self, ids: Mapping[str, str]) -> str:
        return f"job-{ids['job_id']}-task-{ids['task_id']}.zip"

    def signed_url(self, ids: Mapping[str, str]) -> str:
        return _url_of(self.hook.download_task(ids["workflow_id"], ids["job_id"], ids["task_id"]))


class PixxelDownloadInsightsOperator(PixxelDownloadingOperator):
    """Download an insight's inputs and outputs as one zip package.

    :param aoi_id: the insight's AOI.
    :param insight_id: the insight.
    :param inputs: input asset ids to include (default: what Pixxel includes by default).
    :param outputs: output asset ids to include.

    Example::

        PixxelDownloadInsightsOperator(
            task_id="fetch_insight",
            aoi_id="aoi-1",
            insight_id="{{ ti.xcom_pull('crop_insight')['insight_id'] }}",
            destination="/data/insights",
            extract=True,
        )
    """

    operator_extra_links = (PixxelAuroraInsightLink(),)
    watch_kind = "insight_package"
    external_id_key = "pixxel_insight_package_ids"
    template_fields: Sequence[str] = (
        *PixxelDownloadingOperator.template_fields,
        "aoi_id",
        "insight_id",
        "inputs",
        "outputs",
    )

    def __init__(
        self,
        *,
        aoi_id: str,
        insight_id: str,
        inputs: Sequence[str] | str | None = None,
        outputs: Sequence[str] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aoi_id = aoi_id
        self.insight_id = insight_id
        self.inputs = inputs
        self.outputs = outputs

    def check_arguments(self) -> dict[str, str]:
        ids = {
            "aoi_id": require_text("aoi_id", self.aoi_id),
            "insight_id": require_text("insight_id", self.insight_id),
        }
        # The selection travels with the ids, so every status read (inline, in the triggerer or after
        # a retry) re-sends it and checks this package, not the default one.
        for field, value in (("inputs", self.inputs), ("outputs", self.outputs)):
            chosen = id_list(value, field=field)
            if chosen:
                ids[field] = resources.LIST_SEPARATOR.join(chosen)
        return ids

    def lineage_inputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"aoi/{ids['aoi_id']}/insight/{ids['insight_id']}"]

    def start(self, context: Context) -> dict[str, str]:
        # The first status read is the PUT that requests the package.
        return self.check_arguments()

    def default_file_name(self, ids: Mapping[str, str]) -> str:
        selection = resources.insight_selection(ids)
        if not (selection["inputs"] or selection["outputs"]):
            return f"insight-{ids['insight_id']}.zip"
        # Different selections are different packages: never let one pass for another.
        key = hashlib.sha256(repr(sorted(selection.items())).encode()).hexdigest()[:10]
        return f"insight-{ids['insight_id']}-{key}.zip"

    def signed_url(self, ids: Mapping[str, str]) -> str:
        return _url_of(
            self.hook.download_insights(ids["aoi_id"], ids["insight_id"], **resources.insight_selection(ids))
        )


# The name before the base classes followed one pattern (Pixxel<what it adds>Operator); kept for
# operators users derived from it.
PixxelDownloadOperatorBase = PixxelDownloadingOperator

__all__ = [
    "PixxelDownloadAssetsOperator",
    "PixxelDownloadCatalogsOperator",
    "PixxelDownloadInsightsOperator",
    "PixxelDownloadJobOperator",
    "PixxelDownloadTaskOperator",
    "PixxelDownloadingOperator",
]
