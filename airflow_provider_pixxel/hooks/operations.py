"""API operations offered by both hooks, written once.

These are the calls triggers and sensors poll: status reads (one resource, or the list forms the
shared poller of ``triggers/poller.py`` reads many at once with) and the download-package PUTs (which are
idempotent and double as the status read of a package), plus ``delete_insights``, which a trigger
calls to stop an insight when its task is killed. Each method only describes its request and
hands it to ``_call``: :class:`~airflow_provider_pixxel.hooks.pixxel.PixxelHook` sends it and returns
the decoded JSON, :class:`~airflow_provider_pixxel.hooks.pixxel_async.PixxelAsyncHook` returns an
awaitable of it. Names and arguments follow the hook's convention (``spec/operations.py`` maps each
spec operation to its method): path parameters positional, query parameters and body fields
keyword-only, ``None`` left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from airflow_provider_pixxel.hooks.transport import ApiRequest, body, path, query

ResultT = TypeVar("ResultT")


class PixxelPollingOperations(Generic[ResultT]):
    """Status reads and download-package requests, shared by the sync and async hooks."""

    def _call(self, request: ApiRequest) -> ResultT:
        raise NotImplementedError

    def get_aoi(self, aoi_id: str) -> ResultT:
        """An AOI with its processing ``status`` and ``progress`` (``GET /v0/aoi/{aoi_id}``)."""
        return self._call(ApiRequest("GET", path("/v0/aoi/{aoi_id}", aoi_id), expect="object"))

    def list_aois(
        self,
        *,
        offset: int | None = None,
        limit: int | None = None,
        created_at: str | None = None,
        updated_at: str | None = None,
        aoi_id: str | None = None,
        aoi_name: str | None = None,
        project_ids: str | Sequence[str] | None = None,
    ) -> ResultT:
        """One page of AOIs (``GET /v0/aois``)."""
        return self._call(
            ApiRequest(
                "GET",
                "/v0/aois",
                params=query(
                    offset=offset,
                    limit=limit,
                    created_at=created_at,
                    updated_at=updated_at,
                    aoi_id=aoi_id,
                    aoi_name=aoi_name,
                    project_ids=project_ids,
                ),
            )
        )

    def list_visualizations(
        self,
        aoi_id: str,
        *,
        offset: int | None = None,
        limit: int | None = None,
        type: str | None = None,
        user_id: str | None = None,
        expression_type: str | None = None,
        index_id: str | None = None,
        visualization_id: str | None = None,
    ) -> ResultT:
        """One page of an AOI's visualizations (``GET /v0/aois/{aoi_id}/visualizations``)."""
        return self._call(
            ApiRequest(
                "GET",
                path("/v0/aois/{aoi_id}/visualizations", aoi_id),
                params=query(
                    offset=offset,
                    limit=limit,
                    type=type,
                    user_id=user_id,
                    expression_type=expression_type,
                    index_id=index_id,
                    visualization_id=visualization_id,
                ),
                expect="object",
            )
        )

    def list_insights(
        self,
        aoi_id: str,
        *,
        id: str | None = None,
        status: str | None = None,
        created_by: str | None = None,
        created_on: str | None = None,
    ) -> ResultT:
        """Insights of an AOI; filter by ``id`` to poll one (``GET /v0/aoi/{aoiId}/insights``)."""
        return self._call(
            ApiRequest(
                "GET",
                path("/v0/aoi/{aoiId}/insights", aoi_id),
                params=query(id=id, status=status, created_by=created_by, created_on=created_on),
                expect="object",
            )
        )

    def delete_insights(self, aoi_id: str, insight_id: str, *, project_id: str | None = None) -> ResultT:
        """Delete an insight (``DELETE /v0/aoi/{aoi_id}/insights/{insight_id}``); the project defaults to the connection's."""  # noqa: E501
        return self._call(
            ApiRequest(
                "DELETE",
                path("/v0/aoi/{aoi_id}/insights/{insight_id}", aoi_id, insight_id),
                params=query(project_id=project_id),
                needs_project=True,
            )
        )

    def get_aoi_download(self, aoi_id: str, download_id: str) -> ResultT:
        """Status and signed URL of an AOI download (``GET /v0/aois/{aoi_id}/downloads/{download_id}``)."""
        return self._call(
            ApiRequest(
                "GET", path("/v0/aois/{aoi_id}/downloads/{download_id}", aoi_id, download_id), expect="object"
            )
        )

    def get_catalog_download(self, download_id: str) -> ResultT:
        """Status and signed URL of a catalog download (``GET /v0/catalogs/download/{download_id}``)."""
        return self._call(
            ApiRequest("GET", path("/v0/catalogs/download/{download_id}", download_id), expect="object")
        )

    def list_deliveries(
        self,
        *,
        delivery_id: str | None = None,
        catalog_id: str | None = None,
        task_id: str | None = None,
        order_item_id: str | None = None,
    ) -> ResultT:
        """Cloud deliveries by delivery, catalog, task or order item (``GET /v0/catalogs/deliveries``)."""
        return self._call(
            ApiRequest(
                "GET",
                "/v0/catalogs/deliveries",
                params=query(
                    delivery_id=delivery_id,
                    catalog_id=catalog_id,
                    task_id=task_id,
                    order_item_id=order_item_id,
                ),
                expect="object",
            )
        )

    def get_job(self, workflow_id: str, job_id: str) -> ResultT:
        """A workflow job with its tasks and status (``GET /v0/workflows/{workflow_id}/jobs/{job_id}``)."""
        return self._call(
            ApiRequest(
                "GET", path("/v0/workflows/{workflow_id}/jobs/{job_id}", workflow_id, job_id), expect="object"
            )
        )

    def list_jobs(
        self,
        workflow_id: str,
        *,
        id: str | None = None,
        status: str | None = None,
        created_by: str | None = None,
        created_on: str | None = None,
    ) -> ResultT:
        """Jobs of a workflow (``GET /v0/workflows/{workflow_id}/jobs``)."""
        return self._call(
            ApiRequest(
                "GET",
                path("/v0/workflows/{workflow_id}/jobs", workflow_id),
                params=query(id=id, status=status, created_by=created_by, created_on=created_on),
            )
        )

    def get_order(self, order_id: str) -> ResultT:
        """An order, whose ``status`` is its payment status (``GET /v0/orders/{id}``)."""
        return self._call(ApiRequest("GET", path("/v0/orders/{id}", order_id), expect="object"))

    def get_order_item(self, order_item_id: str) -> ResultT:
        """An order item with its fulfilment ``status`` and ``tasks`` (``GET /v0/order-items/{id}``)."""
        return self._call(ApiRequest("GET", path("/v0/order-items/{id}", order_item_id), expect="object"))

    def list_order_items(
        self,
        *,
        user_id: str | None = None,
        type: str | None = None,
        status: str | None = None,
        order_ids: str | Sequence[str] | None = None,
        created_by: str | None = None,
        created_at: str | None = None,
        project_ids: str | Sequence[str] | None = None,
        ids: str | Sequence[str] | None = None,
        area: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> ResultT:
        """One page of order items (``GET /v0/order-items``); list filters are sent comma-joined."""
        return self._call(
            ApiRequest(
                "GET",
                "/v0/order-items",
                params=query(
                    user_id=user_id,
                    type=type,
                    status=status,
                    order_ids=order_ids,
                    created_by=created_by,
                    created_at=created_at,
                    project_ids=project_ids,
                    ids=ids,
                    area=area,
                    limit=limit,
                    offset=offset,
                ),
            )
        )

    def search_catalogs(
        self,
        *,
        bbox: Sequence[float] | None = None,
        collections: Sequence[str] | None = None,
        datetime: str | None = None,
        ids: Sequence[str] | None = None,
        intersects: Any = None,
        item_ids: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        order_ids: Sequence[str] | None = None,
        order_item_ids: Sequence[str] | None = None,
        query: dict[str, Any] | None = None,
        sort_by: Sequence[Any] | None = None,
    ) -> ResultT:
        """One page of purchased catalogs, 2 unless ``limit`` says (``POST /v0/catalogs/search``)."""
        return self._call(
            ApiRequest(
                "POST",
                "/v0/catalogs/search",
                json=body(
                    bbox=bbox,
                    collections=collections,
                    datetime=datetime,
                    ids=ids,
                    intersects=intersects,
                    item_ids=item_ids,
                    limit=limit,
                    offset=offset,
                    order_ids=order_ids,
                    order_item_ids=order_item_ids,
                    query=query,
                    sort_by=sort_by,
                ),
                expect="object",
            )
        )

    def download_job(self, workflow_id: str, job_id: str) -> ResultT:
        """Start or re-check a job's download package (``PUT /v0/workflows/{workflow_id}/jobs/{job_id}/download``)."""  # noqa: E501
        return self._call(
            ApiRequest(
                "PUT",
                path("/v0/workflows/{workflow_id}/jobs/{job_id}/download", workflow_id, job_id),
                expect="object",
            )
        )

    def download_task(self, workflow_id: str, job_id: str, task_id: str) -> ResultT:
        """Start or re-check a task's package (``PUT /v0/workflows/{workflow_id}/jobs/{job_id}/tasks/{task_id}/download``)."""  # noqa: E501
        return self._call(
            ApiRequest(
                "PUT",
                path(
                    "/v0/workflows/{workflow_id}/jobs/{job_id}/tasks/{task_id}/download",
                    workflow_id,
                    job_id,
                    task_id,
                ),
                expect="object",
            )
        )

    def download_insights(
        self,
        aoi_id: str,
        insight_id: str,
        *,
        inputs: Sequence[str] | None = None,
        outputs: Sequence[str] | None = None,
    ) -> ResultT:
        """Start or re-check an insight's download package (``PUT /v0/aoi/{aoi_id}/insights/{insight_id}/download``)."""  # noqa: E501
        return self._call(
            ApiRequest(
                "PUT",
                path("/v0/aoi/{aoi_id}/insights/{insight_id}/download", aoi_id, insight_id),
                json=body(inputs=inputs, outputs=outputs),
                expect="object",
            )
        )
