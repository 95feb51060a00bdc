"""Find purchased imagery (catalogs) and deliver it to a registered cloud bucket.

:class:`PixxelSearchCatalogsOperator` walks every page of ``POST /v0/catalogs/search`` (whose default
page holds only 2 catalogs) and returns the catalog ids. :class:`PixxelCreateDeliveryOperator` asks
Pixxel to copy catalogs or whole order items to a store (``POST /v0/catalogs/deliveries``) and waits on
every delivery it created.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelError
from airflow_provider_pixxel.lineage import id_names
from airflow_provider_pixxel.links import IDS_XCOM_KEY, PixxelAuroraDeliveryLink
from airflow_provider_pixxel.operators.base import PixxelBaseOperator, PixxelResumableOperator
from airflow_provider_pixxel.utils.arguments import (
    bounding_box,
    exactly_one_id_list,
    id_list,
    whole_number,
)
from airflow_provider_pixxel.utils.lazy_import import lazy_import

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_pixxel import resources, statuses
    from airflow_provider_pixxel.triggers import status as status_trigger
else:
    # Needed once the task runs, not while a DAG file is parsed (see utils/lazy_import.py).
    resources = lazy_import("airflow_provider_pixxel.resources")
    statuses = lazy_import("airflow_provider_pixxel.statuses")
    status_trigger = lazy_import("airflow_provider_pixxel.triggers.status")

CATALOG_PAGE_SIZE = 100
_ID_SEPARATOR = ","
DEADLINE_XCOM_KEY = "pixxel_wait_deadline"


class PixxelSearchCatalogsOperator(PixxelBaseOperator):
    """Find purchased catalogs (delivered images) and return their ids.

    Every page is read (the API returns 2 catalogs per page unless asked otherwise), so the result is
    complete. The return value is small JSON: ``{"catalog_ids": [...], "count": n,
    "delivery_status_counts": {"SUCCESS": 3, ...}, "item_ids": [STAC item ids]}``.

    All filters are optional and combine as the API combines them; with none, every catalog of the
    workspace is returned.

    :param order_item_ids: catalogs produced by these order items.
    :param order_ids: catalogs produced by these orders.
    :param item_ids: catalogs of these STAC archive item ids.
    :param ids: these catalog ids.
    :param bbox: ``[west, south, east, north]``.
    :param intersects: a GeoJSON geometry the catalogs must intersect.
    :param datetime: an RFC 3339 date-time or ``start/end`` interval (``..`` for an open end).
    :param collections: STAC collection ids.
    :param query: STAC property filters, e.g. ``{"cloudcover": {"lt": 10}}``.
    :param sort_by: e.g. ``[{"properties->>'datetime'": "DESC"}]``.
    :param page_size: catalogs requested per page.
    :param fail_if_empty: fail the task when nothing matches (default: return an empty list).

    Example::

        catalogs = PixxelSearchCatalogsOperator(
            task_id="find_catalogs",
            order_item_ids="{{ ti.xcom_pull('place_order')['order_item_ids'] }}",
        )
    """

    template_fields: Sequence[str] = (
        "pixxel_conn_id",
        "order_item_ids",
        "order_ids",
        "item_ids",
        "ids",
        "bbox",
        "intersects",
        "datetime",
        "collections",
        "query",
        "sort_by",
    )
    template_fields_renderers = {"intersects": "json", "query": "json", "sort_by": "json"}

    def __init__(
        self,
        *,
        order_item_ids: Sequence[str] | str | None = None,
        order_ids: Sequence[str] | str | None = None,
        item_ids: Sequence[str] | str | None = None,
        ids: Sequence[str] | str | None = None,
        bbox: Sequence[float] | None = None,
        intersects: Mapping[str, Any] | None = None,
        datetime: str | None = None,
        collections: Sequence[str] | str | None = None,
        query: Mapping[str, Any] | None = None,
        sort_by: Sequence[Mapping[str, str]] | None = None,
        page_size: int = CATALOG_PAGE_SIZE,
        fail_if_empty: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.order_item_ids = order_item_ids
        self.order_ids = order_ids
        self.item_ids = item_ids
        self.ids = ids
        self.bbox = bbox
        self.intersects = intersects
        self.datetime = datetime
        self.collections = collections
        self.query = query
        self.sort_by = sort_by
        self.page_size = page_size
        self.fail_if_empty = fail_if_empty

    def filters(self) -> dict[str, Any]:
        """The search body's filters, checked; empty filters are left out."""
        filters: dict[str, Any] = {}
        for name in ("order_item_ids", "order_ids", "item_ids", "ids", "collections"):
            values = id_list(getattr(self, name), field=name)
            if values:
                filters[name] = values
        if self.bbox is not None:
            filters["bbox"] = bounding_box("bbox", self.bbox)
        for name in ("intersects", "query"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, Mapping):
                    raise PixxelConfigError(f"{name} must be a JSON object, got {type(value).__name__}")
                filters[name] = dict(value)
        if self.sort_by is not None:
            if not isinstance(self.sort_by, (list, tuple)) or not all(
                isinstance(entry, Mapping) for entry in self.sort_by
            ):
                raise PixxelConfigError(
                    "sort_by must be a list of {field: 'ASC'|'DESC'} objects, e.g. "
                    "[{\"properties->>'datetime'\": 'DESC'}]"
                )
            filters["sort_by"] = [dict(entry) for entry in self.sort_by]
        if self.datetime is not None and str(self.datetime).strip():
            filters["datetime"] = str(self.datetime).strip()
        return filters

    def execute(self, context: Context) -> dict[str, Any]:
        filters = self.filters()
        page_size = whole_number("page_size", self.page_size, low=1)
        catalog_ids: list[str] = []
        item_ids: list[str] = []
        status_counts: dict[str, int] = {}
        for catalog in self.hook.iter_catalogs(page_size=page_size, **filters):
            catalog_id = str(catalog.get("id") or "")
            if not catalog_id or catalog_id in catalog_ids:
                continue
            catalog_ids.append(catalog_id)
            details = catalog.get("details") or {}
            if isinstance(details, Mapping) and details.get("id"):
                item_ids.append(str(details["id"]))
            status = str(catalog.get("delivery_status") or "UNSPECIFIED")
            status_counts[status] = status_counts.get(status, 0) + 1
        self.log.info(
            "Found %d catalogs matching %s (delivery status: %s)",
            len(catalog_ids),
            ", ".join(sorted(filters)) or "no filter",
            status_counts or "none",
        )
        if not catalog_ids and self.fail_if_empty:
            raise AirflowFailException(
                f"No catalogs match {filters}; an order item has catalogs only once it is (partly) fulfilled"
            )
        return {
            "catalog_ids": catalog_ids,
            "count": len(catalog_ids),
            "delivery_status_counts": status_counts,
            "item_ids": item_ids,
        }


class PixxelCreateDeliveryOperator(PixxelResumableOperator):
    """Copy purchased imagery to a registered store (S3, GCS or Azure) and wait until it is there.

    Give exactly one of ``catalog_ids`` (from :class:`PixxelSearchCatalogsOperator`) or
    ``order_item_ids``. Pixxel creates one delivery per catalog; the task waits on each of them and
    fails with the remote reason if any fails. The delivery ids are kept across task retries, so a
    retry waits on the same deliveries instead of requesting them again. When Pixxel refuses the request
    as a duplicate (409: the same data already on its way to the same store and path, from a request of
    this task whose answer was lost or from another run), the task follows those deliveries instead.

    Returns ``{"delivery_ids": [...], "target_paths": [...], "statuses": [...], "store_id": ...}``;
    each object lands at the store's path prefix + ``path`` + its target path.

    :param catalog_ids: catalogs to deliver.
    :param order_item_ids: order items whose catalogs to deliver.
    :param store_id: the id of a store (see
        :class:`~airflow_provider_pixxel.operators.stores.PixxelCreateStoreOperator`).
    :param path: prefix inside the store, e.g. ``"deliveries/2024-05/"``.

    Example::

        deliver = PixxelCreateDeliveryOperator(
            task_id="deliver",
            catalog_ids="{{ ti.xcom_pull('find_catalogs')['catalog_ids'] }}",
            store_id="{{ ti.xcom_pull('create_store')['store_id'] }}",
            path="pixxel/{{ ds }}/",
        )
    """

    operator_extra_links = (PixxelAuroraDeliveryLink(),)
    watch_kind = "delivery"
    external_id_key = "pixxel_delivery_ids"
    template_fields: Sequence[str] = ("pixxel_conn_id", "catalog_ids", "order_item_ids", "store_id", "path")

    def __init__(
        self,
        *,
        store_id: str,
        catalog_ids: Sequence[str] | str | None = None,
        order_item_ids: Sequence[str] | str | None = None,
        path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.catalog_ids = catalog_ids
        self.order_item_ids = order_item_ids
        self.store_id = store_id
        self.path = path

    def delivery_request(self) -> dict[str, Any]:
        """One entry of the ``deliveries`` body, checked before anything is sent."""
        field, ids = exactly_one_id_list(
            self.catalog_ids, self.order_item_ids, first_field="catalog_ids", second_field="order_item_ids"
        )
        if not isinstance(self.store_id, str) or not self.store_id.strip():
            raise PixxelConfigError(
                "store_id must be the id of a registered store (create one with PixxelCreateStoreOperator "
                "or find it with PixxelHook.list_stores())"
            )
        cloud_info: dict[str, Any] = {"config": self.store_id.strip()}
        if self.path is not None and str(self.path).strip():
            cloud_info["path"] = str(self.path).strip()
        return {field: ids, "cloud_info": cloud_info}

    def execute(self, context: Context) -> Any:
        # Checked before the resumable flow, so bad input never reaches the API even on a retry.
        self.delivery_request()
        return super().execute(context)

    def lineage_inputs(self, ids: Mapping[str, str]) -> list[str]:
        field, chosen = exactly_one_id_list(
            self.catalog_ids, self.order_item_ids, first_field="catalog_ids", second_field="order_item_ids"
        )
        return id_names("catalog" if field == "catalog_ids" else "order_item", chosen)

    def start(self, context: Context) -> dict[str, str]:
        from airflow_provider_pixxel.exceptions import PixxelValidationError

        request = self.delivery_request()
        # Noted first so that, after a duplicate refusal, deliveries made by a request of ours whose
        # answer was lost can be told from older ones, even those that have finished since.
        delivered_before = set(self.deliveries_to_target(request))
        try:
            answer = self.hook.create_deliveries(deliveries=[request]) or {}
        except PixxelValidationError as error:
            # 409: the same data is already on its way to the same store and path, from a request of
            # ours whose answer was lost (the hook re-sends delivery requests) or from another run.
            following = [
                delivery
                for delivery_id, delivery in self.deliveries_to_target(request).items()
                if delivery_id not in delivered_before
                or statuses.phase_of(statuses.Resource.DELIVERY, delivery) is statuses.Phase.RUNNING
            ]
            if error.status != 409 or not following:
                raise
            self.log.warning(
                "Pixxel refused the delivery as a duplicate (%s); following the deliveries made for this "
                "request or already under way to the same store and path instead",
                error.message,
            )
            answer = {"deliveries": following}
        deliveries = [d for d in answer.get("deliveries") or [] if isinstance(d, Mapping)]
        delivery_ids = [str(d["delivery_id"]) for d in deliveries if d.get("delivery_id")]
        if not delivery_ids:
            raise PixxelError(f"Pixxel accepted the delivery request but returned no delivery ids: {answer}")
        self.log.info(
            "Requested %d deliveries to store %s: %s",
            len(delivery_ids),
            request["cloud_info"]["config"],
            ", ".join(delivery_ids),
        )
        return {"delivery_ids": _ID_SEPARATOR.join(delivery_ids)}

    def deliveries_to_target(self, request: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        """Every delivery of the requested catalogs or order items to the requested store and path."""
        target = request["cloud_info"]
        found: dict[str, Mapping[str, Any]] = {}
        for field, filter_name in (("catalog_ids", "catalog_id"), ("order_item_ids", "order_item_id")):
            for requested_id in request.get(field) or []:
                answer = self.hook.list_deliveries(**{filter_name: requested_id}) or {}
                for delivery in answer.get("deliveries") or []:
                    cloud = delivery.get("cloud_delivery") if isinstance(delivery, Mapping) else None
                    if (
                        isinstance(cloud, Mapping)
                        and cloud.get("config") == target["config"]
                        and (cloud.get("path") or "") == target.get("path", "")
                        and delivery.get("delivery_id")
                    ):
                        found[str(delivery["delivery_id"])] = delivery
        return found

    # Several deliveries come from one request, so the resumable hooks work on the whole list.

    @staticmethod
    def _delivery_ids(external_id: Any) -> list[str]:
        text = external_id.get("delivery_ids") if isinstance(external_id, Mapping) else None
        ids = [part for part in str(text or "").split(_ID_SEPARATOR) if part]
        if not ids:
            raise PixxelError(f"stored delivery ids are unreadable: {external_id!r}")
        return ids

    def get_job_status(self, external_id: Any, context: Context) -> str:
        phases = [self._read(delivery_id).phase for delivery_id in self._delivery_ids(external_id)]
        for phase in (statuses.Phase.FAILURE, statuses.Phase.RUNNING, statuses.Phase.PARTIAL):
            if phase in phases:
                return phase.value
        return statuses.Phase.SUCCESS.value

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        self._result = self.wait_on_deliveries(context, self._delivery_ids(external_id), deadline=None)
        return self._result

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        if hasattr(self, "_result"):
            return self._result
        return self.wait_on_deliveries(context, self._delivery_ids(external_id), deadline=None)

    def _read(self, delivery_id: str) -> resources.Observation:
        return resources.read_sync(self.hook, self.watch_kind, {"delivery_id": delivery_id})

    def wait_on_deliveries(
        self, context: Context, delivery_ids: list[str], *, deadline: float | None
    ) -> dict[str, Any]:
        """Wait on each delivery in turn with the shared trigger; one deadline covers them all."""
        target_paths: list[str | None] = []
        remote_statuses: list[str | None] = []
        if self.wait_for_completion:
            self.check_timing()
        for delivery_id in delivery_ids:
            ids = {"delivery_id": delivery_id}
            observation = self._read(delivery_id)
            if self.wait_for_completion and not observation.phase.terminal:
                if deadline is None:
                    deadline = time.time() + self.timeout
                    # Kept where a resumed task finds it: defer kwargs are not passed back by dag.test().
                    context["ti"].xcom_push(key=DEADLINE_XCOM_KEY, value=deadline)
                trigger = status_trigger.PixxelStatusTrigger(
                    kind=self.watch_kind,
                    ids=ids,
                    pixxel_conn_id=self.pixxel_conn_id,
                    poll_interval=self.poll_interval,
                    deadline=deadline,
                )
                if self.deferrable:
                    self.defer(
                        trigger=trigger,
                        method_name="resume_deliveries",
                        timeout=timedelta(
                            seconds=max(0.0, deadline - time.time()) + max(60.0, 2 * self.poll_interval)
                        ),
                    )
                event = self.judge(context, status_trigger.wait_inline(trigger))
                detail = event.get("detail") or {}
                target_paths.append(detail.get("target_path"))
                remote_statuses.append(event.get("remote_status"))
                continue
            if self.wait_for_completion:
                self.judge(
                    context,
                    {
                        "status": observation.phase.value,
                        "kind": self.watch_kind,
                        "ids": ids,
                        **observation.as_event(),
                    },
                )
            target_paths.append(observation.detail.get("target_path"))
            remote_statuses.append(observation.status)
        return {
            "delivery_ids": delivery_ids,
            "target_paths": target_paths,
            "statuses": remote_statuses,
            "store_id": self.store_id,
        }

    def resume_deliveries(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after one delivery's trigger fired: judge it, then go on with the rest.

        The delivery ids and the shared deadline come back from this try's XComs, pushed before the
        task deferred.
        """
        self.judge(context, event)
        ti = context["ti"]
        stored_ids = ti.xcom_pull(task_ids=ti.task_id, key=IDS_XCOM_KEY)
        deadline = ti.xcom_pull(task_ids=ti.task_id, key=DEADLINE_XCOM_KEY)
        return self.wait_on_deliveries(
            context, self._delivery_ids(stored_ids), deadline=None if deadline is None else float(deadline)
        )

    def judge(self, context: Context, event: Any) -> dict[str, Any]:
        """Raise on a failed, partial (unless allowed) or timed-out delivery; return the event."""
        event = status_trigger.validate_event(event, kind=self.watch_kind)
        self.conclude(context, event)
        return event

    def finish(self, context: Context, ids: Mapping[str, str], event: Mapping[str, Any]) -> Any:
        return dict(ids)
