"""``PixxelHook``: the synchronous client of the whole Pixxel (Aurora) API.

One method per API operation (55), named as in :mod:`airflow_provider_pixxel.spec.operations`; the
status reads and download PUTs come from
:class:`~airflow_provider_pixxel.hooks.operations.PixxelPollingOperations`, shared with the async hook.
``iter_*`` methods walk every page of the paginated ones through the one offset pager of
:mod:`~airflow_provider_pixxel.hooks.pagination`. All requests go through :meth:`PixxelHook._call`,
which applies the shared retry policy, timeouts, authentication and error mapping, after checking the
request against the API contract (:func:`airflow_provider_pixxel.spec.rules.check_request`). Arguments
that can be checked for free (date formats, enums, required lists, a project id) are checked before
anything is sent, raising :class:`~airflow_provider_pixxel.exceptions.PixxelConfigError` with the fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from airflow_provider_pixxel.exceptions import PixxelAuthError, PixxelConfigError, PixxelError
from airflow_provider_pixxel.hooks import MAX_IMAGE_SEARCH_LIMIT
from airflow_provider_pixxel.hooks.operations import PixxelPollingOperations
from airflow_provider_pixxel.hooks.pagination import (
    DEFAULT_MAX_PAGES,
    DEFAULT_PAGE_SIZE,
    check_max_pages,
    check_page_size,
    feature_collection_page,
    iter_offset_pages,
    page_object,
    paginated_list_page,
    too_many_pages,
)
from airflow_provider_pixxel.hooks.retry import RetryPolicy, outcome_unknown
from airflow_provider_pixxel.hooks.sessions import RedirectBodyUnreadSession
from airflow_provider_pixxel.hooks.transport import (
    BODY_CHUNK_BYTES,
    DEFAULT_CONN_ID,
    AnswerBody,
    ApiRequest,
    PixxelConnectionSettings,
    body,
    outcome_unknown_error,
    path,
    query,
    resolve_project_id,
    response_value,
    transport_error,
    with_default_project,
)
from airflow_provider_pixxel.hooks.transport_deadline import CallDeadline, DeadlineHTTPAdapter
from airflow_provider_pixxel.spec import enum_values
from airflow_provider_pixxel.spec.rules import check_request
from airflow_provider_pixxel.utils.arguments import non_empty_list, one_of, whole_number
from airflow_provider_pixxel.utils.dates import DateLike, visualization_date

JSON = Any


def _request_never_sent(error: requests.exceptions.ConnectionError) -> bool:
    """True when requests failed before any byte of the request reached the server."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    reason: Any = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


class PixxelHook(PixxelPollingOperations[Any], BaseHook):
    """Calls the Pixxel API with the key of a ``pixxel`` Airflow connection.

    :param pixxel_conn_id: the Airflow connection: password = API key; host (optional) overrides
        ``https://api.pixxel.space``; extras ``auth_prefix``, ``timeout`` ([connect, read] seconds),
        ``project_id`` (default for calls that need one) and ``max_retries``.
    :param retry_policy: overrides the retry policy built from the connection's ``max_retries``.
    """

    conn_name_attr = "pixxel_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "pixxel"
    hook_name = "Pixxel"

    def __init__(
        self,
        pixxel_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__()
        self.pixxel_conn_id = pixxel_conn_id
        self._retry_policy = retry_policy
        self._sleep = sleep
        self._session: requests.Session | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pixxel_conn_id={self.pixxel_conn_id!r})"

    # -- connection -------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> PixxelConnectionSettings:
        """The connection, fetched and checked once per hook."""
        settings = PixxelConnectionSettings.from_connection(self.get_connection(self.pixxel_conn_id))
        mask_secret(settings.api_key)
        return settings

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        return self._retry_policy or RetryPolicy(max_retries=self.settings.max_retries)

    @property
    def sleep(self) -> Callable[[float], None]:
        """What the hook waits with between attempts (injectable for tests)."""
        return self._sleep or time.sleep

    def get_conn(self) -> requests.Session:
        """The hook's one ``requests.Session``, with keep-alive connections reused across calls."""
        if self._session is None:
            session = RedirectBodyUnreadSession()
            # Retries are ours (tenacity); urllib3's own would re-send create requests blindly.
            adapter = DeadlineHTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers.update(self.settings.headers())
            self._session = session
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> PixxelHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve_project_id(self, project_id: str | None) -> str:
        """``project_id`` if given, else the connection's default; a clear error when neither is."""
        return resolve_project_id(project_id, self.settings)

    # -- transport --------------------------------------------------------------------------------

    def url(self, request_path: str) -> str:
        return f"{self.settings.base_url}{request_path}"

    def _call(self, request: ApiRequest) -> Any:
        """Send ``request`` under the retry policy and return its decoded answer."""
        request = with_default_project(request, self.settings)
        check_request(request)  # a request that breaks the API contract is refused, never sent
        retrying = self.retry_policy.retrying(
            creates=request.creates is not None, log=self.log, sleep=self.sleep
        )
        try:
            return retrying(self._send_once, request)
        except PixxelError as error:
            if request.creates and outcome_unknown(error):
                raise outcome_unknown_error(request, self.url(request.path), error) from error
            raise

    def _send_once(self, request: ApiRequest) -> Any:
        url = self.url(request.path)
        settings = self.settings
        self.log.debug("Pixxel API %s %s", request.method, request.path)
        with CallDeadline(settings.call_timeout) as deadline:
            try:
                # The API documents no redirects: a 3xx is an error (response_value), never followed.
                response = self.get_conn().request(
                    request.method,
                    url,
                    params=request.params or None,
                    json=request.json,
                    headers={"Accept": request.accept},
                    timeout=(settings.connect_timeout, settings.read_timeout),
                    allow_redirects=False,
                    stream=True,
                )
                with response:
                    answer = AnswerBody(
                        request,
                        url=url,
                        status=response.status_code,
                        headers=response.headers,
                        settings=settings,
                    )
                    for chunk in response.iter_content(BODY_CHUNK_BYTES):
                        if not answer.add(chunk):
                            break
                if deadline.expired:
                    # Cut off mid-answer, http.client may take what it had (even headers alone) as
                    # a whole answer: nothing read after the deadline is trusted.
                    raise requests.exceptions.Timeout("the call's deadline passed")
            except requests.exceptions.RequestException as error:
                if deadline.expired:
                    raise transport_error(
                        request, url, request_sent=True, cause=error, call_timeout=settings.call_timeout
                    ) from None
                if isinstance(error, requests.exceptions.ConnectionError):
                    raise transport_error(
                        request, url, request_sent=not _request_never_sent(error), cause=error
                    ) from None
                if isinstance(error, requests.exceptions.Timeout):
                    raise transport_error(
                        request, url, request_sent=True, cause=error, read_timeout=settings.read_timeout
                    ) from None
                raise transport_error(request, url, request_sent=True, cause=error) from None
        return response_value(
            request,
            url=url,
            status=response.status_code,
            content=answer.content,
            content_type=response.headers.get("Content-Type", ""),
            headers=response.headers,
        )

    # -- connection test --------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Check reachability (``/ping``) and the key (one cheap authenticated read). Creates nothing."""
        try:
            self.ping()
        except PixxelError as error:
            return False, f"Could not reach the Pixxel API: {error}"
        try:
            self.list_projects(page_num=1, page_size=1)
        except PixxelAuthError as error:
            return False, (
                f"The Pixxel API at {self.settings.base_url} is reachable but refused the API key "
                f"(HTTP {error.status}). {error.hint()}."
            )
        except PixxelError as error:
            return False, f"The Pixxel API is reachable but an authenticated read failed: {error}"
        return True, f"Connected to {self.settings.base_url}; the API key was accepted."

    # -- operations ---------------------------------------------------------------------------------
    # Status reads and download PUTs are inherited from PixxelPollingOperations.

    def ping(self) -> JSON:
        """Health check; needs no key (``GET /ping``)."""
        return self._call(ApiRequest("GET", "/ping"))

    # Project

    def list_projects(self, *, page_num: int | None = None, page_size: int | None = None) -> JSON:
        """One page of the projects the service user belongs to (``GET /v0/projects``)."""
        return self._call(
            ApiRequest("GET", "/v0/projects", params=query(page_num=page_num, page_size=page_size))
        )

    def get_project(self, project_id: str) -> JSON:
        """One project (``GET /v0/projects/{id}``)."""
        return self._call(ApiRequest("GET", path("/v0/projects/{id}", project_id)))

    # AOI

    def create_aoi(
        self,
        *,
        name: str,
        description: str,
        satellite_id: str,
        provider: str,
        geometry: Mapping[str, Any],
        item_ids: Sequence[str],
        project_id: str | None = None,
    ) -> JSON:
        """Create an AOI over a polygon (``POST /v0/aois``); ``project_id`` defaults to the connection's."""
        _check_polygon(geometry)
        return self._call(
            ApiRequest(
                "POST",
                "/v0/aois",
                json=body(
                    name=name,
                    description=description,
                    satellite_id=satellite_id,
                    provider=provider,
                    project_id=self.resolve_project_id(project_id),
                    geometry=_json(geometry),
                    item_ids=_json(item_ids),
                ),
                creates=f"an AOI named {name!r} (look for it with list_aois(aoi_name=...))",
            )
        )

    def list_satellites(self) -> JSON:
        """Satellites and their collections (``GET /v0/satellites``)."""
        return self._call(ApiRequest("GET", "/v0/satellites"))

    # Search

    def search_images(
        self,
        *,
        start_date: str,
        end_date: str,
        satellites: Sequence[Mapping[str, Any]],
        geometry: Mapping[str, Any],
        filters: Sequence[Mapping[str, Any]] | None = None,
        limit: int | None = None,
    ) -> JSON:
        """Search satellite images over a geometry and time range (``POST /v0/search``); a safe read."""
        if limit is not None:
            whole_number("limit", limit, low=1, high=MAX_IMAGE_SEARCH_LIMIT)
        return self._call(
            ApiRequest(
                "POST",
                "/v0/search",
                json=body(
                    start_date=start_date,
                    end_date=end_date,
                    satellites=_json(satellites),
                    filters=_json(filters),
                    geometry=_json(geometry),
                    limit=limit,
                ),
            )
        )

    # Indices

    def list_indices(
        self,
        *,
        offset: int | None = None,
        limit: int | None = None,
        satellite_id: str | None = None,
        type: str | None = None,
        expression_type: str | None = None,
        index_id: str | None = None,
    ) -> JSON:
        """One page of spectral indices (``GET /v0/indices``)."""
        return self._call(
            ApiRequest(
                "GET",
                "/v0/indices",
                params=query(
                    offset=offset,
                    limit=limit,
                    satellite_id=satellite_id,
                    type=type,
                    expression_type=expression_type,
                    index_id=index_id,
                ),
            )
        )

    def create_index(
        self,
        *,
        name: str,
        description: str,
        rescale: Sequence[int],
        expression: str,
        colormap: str,
        satellite_id: str,
        expression_type: str,
    ) -> JSON:
        """Create a custom index from a band expression (``POST /v0/indices``)."""
        expression_type = one_of("expression_type", expression_type, enum_values("atlas.ExpressionType"))
        return self._call(
            ApiRequest(
                "POST",
                "/v0/indices",
                json=body(
                    name=name,
                    description=description,
                    rescale=_json(rescale),
                    expression=expression,
                    colormap=colormap,
                    satellite_id=satellite_id,
                    expression_type=expression_type,
                ),
                creates=f"an index named {name!r} (look for it with list_indices())",
            )
        )

    # Visualizations (list_visualizations is inherited)

    def create_visualization(
        self,
        aoi_id: str,
        *,
        index_id: str,
        src_asset_ids: Sequence[str] | None = None,
        resolution: float | None = None,
    ) -> JSON:
        """Compute an index over an AOI's assets (``POST /v0/aois/{aoi_id}/visualizations``)."""
        return self._call(
            ApiRequest(
                "POST",
                path("/v0/aois/{aoi_id}/visualizations", aoi_id),
                json=body(
                    index_id=index_id,
                    src_asset_ids=_json(src_asset_ids),
                    resolution=resolution,
                ),
                creates=(
                    f"a visualization of index {index_id} "
                    "(look for it with list_visualizations(aoi_id, index_id=...))"
                ),
            )
        )

    def update_visualization_metadata(
        self,
        aoi_id: str,
        visualization_id: str,
        *,
        visualization_mode: str,
        legend: Mapping[str, Sequence[Mapping[str, Any]]],
        dynamic_bins: int | None = None,
    ) -> JSON:
        """Replace a visualization's legend (``PUT /v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata``)."""  # noqa: E501
        visualization_mode = one_of(
            "visualization_mode", visualization_mode, enum_values("atlas.VisualizationMode")
        )
        if visualization_mode == "dynamic":
            if dynamic_bins is None:
                raise PixxelConfigError(
                    "dynamic_bins is required when visualization_mode is 'dynamic': pass a number of "
                    "bins from 1 to 15"
                )
            whole_number("dynamic_bins", dynamic_bins, low=1, high=15)
        return self._call(
            ApiRequest(
                "PUT",
                path(
                    "/v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata",
                    aoi_id,
                    visualization_id,
                ),
                json=body(
                    visualization_mode=visualization_mode,
                    legend={
                        visualization_date(day, field=f"legend[{day!r}]"): _json(items)
                        for day, items in legend.items()
                    },
                    dynamic_bins=dynamic_bins,
                ),
            )
        )

    def rollback_visualization_metadata(
        self,
        aoi_id: str,
        visualization_id: str,
        *,
        index_id: str,
        dates: Sequence[DateLike],
        visualization_mode: str,
    ) -> JSON:
        """Restore a visualization's default legend (``PATCH /v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata``)."""  # noqa: E501
        return self._call(
            ApiRequest(
                "PATCH",
                path(
                    "/v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata",
                    aoi_id,
                    visualization_id,
                ),
                json=body(
                    index_id=index_id,
                    dates=[visualization_date(day, field=f"dates[{n}]") for n, day in enumerate(dates)],
                    visualization_mode=one_of(
                        "visualization_mode", visualization_mode, enum_values("atlas.VisualizationMode")
                    ),
                ),
            )
        )

    def generate_index_png(
        self,
        aoi_id: str,
        visualization_id: str,
        *,
        index_id: str,
        date: DateLike,
        visualization_mode: str,
    ) -> bytes:
        """Render one date of a visualization as PNG bytes (``POST /v0/aois/{aoi_id}/visualizations/{visualization_id}/png``)."""  # noqa: E501
        request_body = body(
            index_id=index_id,
            date=visualization_date(date, field="date"),
            visualization_mode=one_of(
                "visualization_mode", visualization_mode, enum_values("atlas.VisualizationMode")
            ),
        )
        result: bytes = self._call(
            ApiRequest(
                "POST",
                path("/v0/aois/{aoi_id}/visualizations/{visualization_id}/png", aoi_id, visualization_id),
                json=request_body,
                expect="bytes",
            )
        )
        return result

    def generate_visualization_sld(
        self,
        aoi_id: str,
        visualization_id: str,
        *,
        dates: Sequence[DateLike],
        visualization_modes: Sequence[str],
    ) -> JSON:
        """GeoServer SLD styles for dates and modes (``POST /v0/aois/{aoi_id}/visualizations/{visualization_id}/sld``)."""  # noqa: E501
        return self._call(
            ApiRequest(
                "POST",
                path("/v0/aois/{aoi_id}/visualizations/{visualization_id}/sld", aoi_id, visualization_id),
                json=body(
                    dates=[visualization_date(day, field=f"dates[{n}]") for n, day in enumerate(dates)],
                    visualization_modes=[
                        one_of("visualization_modes", mode, enum_values("atlas.VisualizationMode"))
                        for mode in visualization_modes
                    ],
                ),
            )
        )

    # Blocks

    def list_blocks(self, *, mode: str | None = None) -> JSON:
        """Processing blocks usable in insights and workflows (``GET /v0/blocks``)."""
        return self._call(ApiRequest("GET", "/v0/blocks", params=query(mode=mode)))

    def get_block_versions(self, name: str) -> JSON:
        """Every version of one block (``GET /v0/blocks/{name}``)."""
        return self._call(ApiRequest("GET", path("/v0/blocks/{name}", name)))

    def get_block_version(self, name: str, version: str) -> JSON:
        """One version of a block with its spec (``GET /v0/blocks/{name}/versions/{version}``)."""
        return self._call(ApiRequest("GET", path("/v0/blocks/{name}/versions/{version}", name, version)))

    # Insights (list_insights, download_insights and delete_insights are inherited)

    def create_insights(
        self,
        aoi_id: str,
        *,
        block: Mapping[str, Any],
        input: Any,
        name: str | None = None,
        project_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        estimate: bool | None = None,
    ) -> JSON:
        """Run a block over an AOI, or price it with ``estimate=True`` (``POST /v0/aoi/{aoi_id}/insights``)."""  # noqa: E501
        if not isinstance(block, Mapping) or not block.get("version"):
            raise PixxelConfigError(
                "block must name a version, e.g. block={'name': 'ndvi', 'version': '1.0.0'} "
                "(list versions with get_block_versions(name))"
            )
        return self._call(
            ApiRequest(
                "POST",
                path("/v0/aoi/{aoi_id}/insights", aoi_id),
                json=body(
                    name=name,
                    block=_json(block),
                    input=input,
                    project_id=project_id,
                    metadata=_json(metadata),
                    estimate=estimate,
                ),
                creates=None if estimate else "an insight (look for it with list_insights(aoi_id))",
            )
        )

    # Assets and AOI downloads (get_aoi_download is inherited)

    def list_assets(self, aoi_id: str, *, offset: int | None = None, limit: int | None = None) -> JSON:
        """One page of an AOI's image assets (``GET /v0/aois/{aoi_id}/assets``)."""
        return self._call(
            ApiRequest(
                "GET", path("/v0/aois/{aoi_id}/assets", aoi_id), params=query(offset=offset, limit=limit)
            )
        )

    def create_aoi_download(self, aoi_id: str, *, asset_ids: Sequence[str]) -> JSON:
        """Start packaging assets of an AOI for download (``POST /v0/aois/{aoi_id}/downloads``)."""
        asset_ids = non_empty_list("asset_ids", asset_ids, of="asset ids")
        return self._call(
            ApiRequest(
                "POST",
                path("/v0/aois/{aoi_id}/downloads", aoi_id),
                json=body(asset_ids=asset_ids),
                # Not marked as a create: asking again only packages the same assets again and buys
                # nothing, so a lost answer is safe to retry.
            )
        )

    # Workflows and jobs (get_job, download_job, download_task are inherited)

    def list_workflows(
        self,
        *,
        project_id: str | None = None,
        id: str | None = None,
        name: str | None = None,
        created_by: str | None = None,
        created_on: str | None = None,
        updated_at: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
    ) -> JSON:
        """One page of workflows (``GET /v0/workflows``)."""
        return self._call(
            ApiRequest(
                "GET",
                "/v0/workflows",
                params=query(
                    project_id=project_id,
                    id=id,
                    name=name,
                    created_by=created_by,
                    created_on=created_on,
                    updated_at=updated_at,
                    offset=offset,
                    limit=limit,
                ),
            )
        )

    def get_workflow(self, workflow_id: str, *, project_id: str | None = None) -> JSON:
        """One workflow (``GET /v0/workflows/{workflow_id}``); ``project_id`` defaults to the connection's."""
        return self._call(
            ApiRequest(
                "GET",
                path("/v0/workflows/{workflow_id}", workflow_id),
                params=query(project_id=project_id),
                needs_project=True,
            )
        )

    def get_workflow_cost_estimate(self, workflow_id: str) -> JSON:
        """The token cost of running a workflow once (``GET /v0/workflows/{workflow_id}/estimate``)."""
        return self._call(ApiRequest("GET", path("/v0/workflows/{workflow_id}/estimate", workflow_id)))

    def create_job(self, workflow_id: str, *, project_id: str | None = None) -> JSON:
        """Run a workflow (``POST /v0/workflows/{workflow_id}/jobs``); ``project_id`` defaults to the connection's."""  # noqa: E501
        return self._call(
            ApiRequest(
                "POST",
                path("/v0/workflows/{workflow_id}/jobs", workflow_id),
                params=query(project_id=project_id),
                needs_project=True,
                creates="a workflow job (look for it with list_jobs(workflow_id))",
            )
        )

    # Bandsets

    def list_bandsets(self) -> JSON:
        """Band sets that can be ordered (``GET /v0/bandsets``)."""
        return self._call(ApiRequest("GET", "/v0/bandsets"))

    # Orders (get_order and get_order_item are inherited)

    def list_orders(
        self, *, user_id: str | None = None, limit: int | None = None, offset: int | None = None
    ) -> JSON:
        """One page of orders (``GET /v0/orders``)."""
        return self._call(
            ApiRequest("GET", "/v0/orders", params=query(user_id=user_id, limit=limit, offset=offset))
        )

    def create_order(self, *, order_items: Sequence[Mapping[str, Any]], dry_run: bool = False) -> JSON:
        """Place an order, or with ``dry_run=True`` price it without buying (``POST /v0/orders``)."""
        items = non_empty_list("order_items", order_items, of="order item objects")
        return self._call(
            ApiRequest(
                "POST",
                "/v0/orders",
                json=body(dry_run=dry_run, order_items=_json(items)),
                creates=None if dry_run else "an order (look for it with list_orders())",
            )
        )

    # Archives (STAC)

    def list_collections(self, *, ids: str | Sequence[str] | None = None) -> JSON:
        """STAC collections of the archive (``GET /v0/archives/collections``)."""
        return self._call(ApiRequest("GET", "/v0/archives/collections", params=query(ids=ids)))

    def get_collection(self, collection_id: str) -> JSON:
        """One STAC collection (``GET /v0/archives/collections/{cid}``)."""
        return self._call(ApiRequest("GET", path("/v0/archives/collections/{cid}", collection_id)))

    def list_collection_items(
        self, collection_id: str, *, limit: int | None = None, offset: int | None = None
    ) -> JSON:
        """One page of a collection's STAC items (``GET /v0/archives/collections/{cid}/items``)."""
        return self._call(
            ApiRequest(
                "GET",
                path("/v0/archives/collections/{cid}/items", collection_id),
                params=query(limit=limit, offset=offset),
            )
        )

    def get_collection_item(self, collection_id: str, item_id: str) -> JSON:
        """One STAC item (``GET /v0/archives/collections/{cid}/items/{id}``)."""
        return self._call(
            ApiRequest("GET", path("/v0/archives/collections/{cid}/items/{id}", collection_id, item_id))
        )

    def search_archive(
        self,
        *,
        bbox: Sequence[float] | None = None,
        collections: Sequence[str] | None = None,
        datetime: str | None = None,
        ids: Sequence[str] | None = None,
        intersects: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        query: Mapping[str, Any] | None = None,
        sortby: Sequence[Mapping[str, str]] | None = None,
    ) -> JSON:
        """One page of a STAC search of the archive (``POST /v0/archives/search``); a safe read."""
        return self._call(
            ApiRequest(
                "POST",
                "/v0/archives/search",
                json=body(
                    bbox=_json(bbox),
                    collections=_json(collections),
                    datetime=datetime,
                    ids=_json(ids),
                    intersects=_json(intersects),
                    limit=limit,
                    offset=offset,
                    query=_json(query),
                    sortby=_json(sortby),
                ),
            )
        )

    # Report

    def download_order_report(self, *, tz: str | None = None) -> str:
        """The order report as CSV text (``GET /v0/reports``)."""
        result: str = self._call(ApiRequest("GET", "/v0/reports", params=query(tz=tz), expect="text"))
        return result

    # Stores

    def list_stores(self) -> JSON:
        """Cloud buckets registered for delivery (``GET /v0/stores``)."""
        return self._call(ApiRequest("GET", "/v0/stores"))

    def create_store(
        self,
        *,
        name: str,
        type: str,
        configs: Mapping[str, Any],
        secrets: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
    ) -> JSON:
        """Register a cloud bucket for delivery (``POST /v0/stores``); its secrets are masked in logs."""
        # Masked whatever their shape: a wrong one is refused by the contract check, after this.
        for value in secrets.values() if isinstance(secrets, Mapping) else (secrets,):
            mask_secret(value)
        return self._call(
            ApiRequest(
                "POST",
                "/v0/stores",
                json=body(
                    name=name,
                    type=one_of("type", type, enum_values("domain.BucketType"), case="upper"),
                    configs=_json(configs),
                    secrets=_json(secrets),
                    labels=_json(labels),
                ),
                creates=f"a store named {name!r} (look for it with list_stores())",
            )
        )

    def delete_store(self, store_id: str) -> None:
        """Remove a registered store (``DELETE /v0/stores/{id}``)."""
        self._call(ApiRequest("DELETE", path("/v0/stores/{id}", store_id), expect="empty"))

    # Catalogs, deliveries and catalog downloads
    # (list_deliveries, get_catalog_download and search_catalogs are inherited)

    def create_deliveries(self, *, deliveries: Sequence[Mapping[str, Any]]) -> JSON:
        """Deliver catalogs or order items to registered stores (``POST /v0/catalogs/deliveries``)."""
        items = non_empty_list("deliveries", deliveries, of="delivery objects")
        return self._call(
            ApiRequest(
                "POST",
                "/v0/catalogs/deliveries",
                json=body(deliveries=_json(items)),
                # Not marked as a create: a second delivery copies the same purchased data to the
                # same place and buys nothing, so a lost answer is safe to retry.
            )
        )

    def create_catalog_download(
        self,
        *,
        catalog_ids: Sequence[str] | None = None,
        order_item_ids: Sequence[str] | None = None,
    ) -> JSON:
        """Start packaging catalogs or order items for download (``POST /v0/catalogs/download``)."""
        if not catalog_ids and not order_item_ids:
            raise PixxelConfigError(
                "create_catalog_download needs catalog_ids or order_item_ids (find catalogs with "
                "search_catalogs(order_item_ids=[...]))"
            )
        return self._call(
            ApiRequest(
                "POST",
                "/v0/catalogs/download",
                json=body(
                    catalog_ids=_json(catalog_ids),
                    order_item_ids=_json(order_item_ids),
                ),
                # Not marked as a create: asking again only packages already purchased data again,
                # so a lost answer is safe to retry.
            )
        )

    def get_catalog(self, catalog_id: str) -> JSON:
        """One purchased catalog (``GET /v0/catalogs/{id}``)."""
        return self._call(ApiRequest("GET", path("/v0/catalogs/{id}", catalog_id)))

    # -- iterators --------------------------------------------------------------------------------

    def iter_projects(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES
    ) -> Iterator[JSON]:
        """Every project (``page_num``/``page_size`` pages), one page in memory at a time."""
        check_page_size(page_size)
        check_max_pages(max_pages)
        seen = 0
        page_num = 1
        while True:
            page, projects = page_object(
                self.list_projects(page_num=page_num, page_size=page_size), "projects"
            )
            yield from projects
            seen += len(projects)
            count = page.get("count")
            if not projects:
                return
            if isinstance(count, int) and not isinstance(count, bool):
                if seen >= count:
                    return
            elif len(projects) < page_size:
                return
            if page_num >= max_pages:
                raise too_many_pages(max_pages, seen)
            page_num += 1

    def iter_aois(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES, **filters: Any
    ) -> Iterator[JSON]:
        """Every AOI matching ``list_aois`` filters."""
        _check_no_paging(filters)
        return iter_offset_pages(
            lambda offset, limit: self.list_aois(offset=offset, limit=limit, **filters),
            paginated_list_page("aois"),
            page_size=page_size,
            max_pages=max_pages,
        )

    def iter_indices(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES, **filters: Any
    ) -> Iterator[JSON]:
        """Every index matching ``list_indices`` filters."""
        _check_no_paging(filters)
        return iter_offset_pages(
            lambda offset, limit: self.list_indices(offset=offset, limit=limit, **filters),
            paginated_list_page("indices"),
            page_size=page_size,
            max_pages=max_pages,
        )

    def iter_visualizations(
        self,
        aoi_id: str,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
        **filters: Any,
    ) -> Iterator[JSON]:
        """Every visualization of an AOI matching ``list_visualizations`` filters."""
        _check_no_paging(filters)
        return iter_offset_pages(
            lambda offset, limit: self.list_visualizations(aoi_id, offset=offset, limit=limit, **filters),
            paginated_list_page("visualization"),
            page_size=page_size,
            max_pages=max_pages,
        )

    def iter_assets(
        self, aoi_id: str, *, page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES
    ) -> Iterator[JSON]:
        """Every asset of an AOI."""
        return iter_offset_pages(
            lambda offset, limit: self.list_assets(aoi_id, offset=offset, limit=limit),
            paginated_list_page("assets"),
            page_size=page_size,
            max_pages=max_pages,
        )

    def iter_workflows(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES, **filters: Any
    ) -> Iterator[JSON]:
        """Every workflow matching ``list_workflows`` filters."""
        _check_no_paging(filters)
        return iter_offset_pages(
            lambda offset, limit: self.list_workflows(offset=offset, limit=limit, **filters),
            paginated_list_page("workflows"),
            page_size=page_size,
            max_pages=max_pages,
        )

    def iter_orders(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES, **filters: Any
    ) -> Iterator[JSON]:
        """Every order matching ``list_orders`` filters."""
        _check_no_paging(filters)
        return iter_offset_pages(
            lambda offset, limit: self.list_orders(offset=offset, limit=limit, **filters),
            paginated_list_page("orders"),
            page_size=page_size,
            max_pages=max_pages,
        )

    def iter_order_items(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES, **filters: Any
    ) -> Iterator[JSON]:
        """Every order item matching ``list_order_items`` filters."""
        _check_no_paging(filters)
        return iter_offset_pages(
            lambda offset, limit: self.list_order_items(offset=offset, limit=limit, **filters),
            paginated_list_page("order_items"),
            page_size=page_size,
            max_pages=max_pages,
        )

    def iter_catalogs(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES, **filters: Any
    ) -> Iterator[JSON]:
        """Every catalog matching ``search_catalogs`` filters (asking for ``page_size``, not the API's default 2)."""  # noqa: E501
        _check_no_paging(filters)
        return iter_offset_pages(
            lambda offset, limit: self.search_catalogs(offset=offset, limit=limit, **filters),
            paginated_list_page("catalogs"),
            page_size=page_size,
            max_pages=max_pages,
        )

    def iter_archive_items(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES, **filters: Any
    ) -> Iterator[JSON]:
        """Every STAC item matching ``search_archive`` filters."""
        _check_no_paging(filters)
        return iter_offset_pages(
            lambda offset, limit: self.search_archive(offset=offset, limit=limit, **filters),
            feature_collection_page,
            page_size=page_size,
            max_pages=max_pages,
        )

    def iter_collection_items(
        self, collection_id: str, *, page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES
    ) -> Iterator[JSON]:
        """Every STAC item of a collection."""
        return iter_offset_pages(
            lambda offset, limit: self.list_collection_items(collection_id, offset=offset, limit=limit),
            feature_collection_page,
            page_size=page_size,
            max_pages=max_pages,
        )

    def iter_images(self, *, limit: int = MAX_IMAGE_SEARCH_LIMIT, **criteria: Any) -> Iterator[JSON]:
        """Every image ``search_images`` finds, up to ``limit`` (at most 10000, one request).

        ``POST /v0/search`` has no offset or page token, so matches beyond ``limit`` cannot be fetched:
        a warning says so when the reported total is larger.
        """
        result = self.search_images(limit=limit, **criteria) or {}
        items = result.get("items") or {}
        total = (result.get("pagination") or {}).get("total")
        if isinstance(total, int) and total > len(items):
            self.log.warning(
                "The image search matched %d images but returned %d; the API offers no way to fetch "
                "the rest. Narrow the filters (dates, geometry, cloud cover) to see them all.",
                total,
                len(items),
            )
        yield from items.values() if isinstance(items, Mapping) else items


# -- argument checks --------------------------------------------------------------------------------


def _check_polygon(geometry: Mapping[str, Any]) -> None:
    if (
        not isinstance(geometry, Mapping)
        or geometry.get("type") != "Polygon"
        or not geometry.get("coordinates")
    ):
        raise PixxelConfigError(
            "geometry must be a GeoJSON Polygon such as {'type': 'Polygon', 'coordinates': "
            "[[[lng, lat], ..., [lng, lat]]]} (the first and last point equal)"
        )


def _json(value: Any) -> Any:
    """``value`` as JSON takes it, all the way down: mappings as dicts, other non-text iterables as lists.

    Anything else is left as it is (a number where the spec wants an object, a string where it wants a
    list), for the contract check to refuse by field name instead of failing here on ``dict(5)``.
    """
    if isinstance(value, Mapping):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray)):
        return [_json(item) for item in value]
    return value


def _check_no_paging(filters: Mapping[str, Any]) -> None:
    given = sorted({"offset", "limit"} & filters.keys())
    if given:
        raise PixxelConfigError(
            f"iter_* methods page for you: drop {' and '.join(given)} and pass page_size=... instead"
        )
