"""Operator extra links: a button on the task that opens the created resource in the Aurora web app.

Each link reads the remote ids the operator pushed to XCom (``pixxel_ids``, see
:data:`~airflow_provider_pixxel.operators.base.IDS_XCOM_KEY`) and joins them to the Aurora base URL:
the connection extra ``aurora_url``, or ``https://aurora.pixxel.space``. The base is looked up only when
a link is built (Airflow 3 builds it once, in the worker, when the task ends), never while a DAG is
parsed; a link that cannot be built is empty rather than an error.

ASSUMPTION: the Aurora web app's URL scheme is not documented (the API reference has none). The paths in
:data:`AURORA_PATHS` are a best guess; if they do not match your Aurora, point ``aurora_url`` at the
right host and tell us the real paths.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from airflow.providers.common.compat.sdk import BaseHook, BaseOperatorLink, XCom

from airflow_provider_pixxel.hooks import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

log = logging.getLogger(__name__)

# Same value as operators.base.IDS_XCOM_KEY; not imported from there so that loading the links (as the
# API server does from provider info) does not import every operator.
IDS_XCOM_KEY = "pixxel_ids"
DEFAULT_AURORA_URL = "https://aurora.pixxel.space"
AURORA_URL_EXTRA = "aurora_url"

#: ASSUMPTION (undocumented URL scheme): the Aurora page of each resource, filled with ids from XCom.
AURORA_PATHS: Mapping[str, str] = {
    "aoi": "/aois/{aoi_id}",
    "visualization": "/aois/{aoi_id}/visualizations/{visualization_id}",
    "insight": "/aois/{aoi_id}/insights/{insight_id}",
    "order": "/orders/{order_id}",
    "job": "/workflows/{workflow_id}/jobs/{job_id}",
    "delivery": "/deliveries/{delivery_id}",
    "catalog_download": "/catalogs/downloads/{download_id}",
}


def aurora_base_url(operator: Any) -> str | None:
    """The Aurora base URL for ``operator``'s connection; None when it cannot be read or is not http(s)."""
    conn_id = getattr(operator, "pixxel_conn_id", None) or DEFAULT_CONN_ID
    try:
        conn = BaseHook.get_connection(conn_id)
        extras = conn.extra_dejson if getattr(conn, "extra", None) else {}
    except Exception as error:  # a missing or unreadable connection must not fail the task's end
        log.warning("No Aurora link: could not read connection %r: %s", conn_id, error)
        return None
    configured = extras.get(AURORA_URL_EXTRA) or extras.get(f"extra__pixxel__{AURORA_URL_EXTRA}")
    base = str(configured).strip() if configured else DEFAULT_AURORA_URL
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        log.warning(
            "No Aurora link: connection %r extra %s=%r is not an http(s) URL", conn_id, AURORA_URL_EXTRA, base
        )
        return None
    return base.rstrip("/")


class PixxelAuroraLink(BaseOperatorLink):
    """Base of the Aurora links: subclasses set :attr:`name` and :attr:`page` (a key of AURORA_PATHS)."""

    name: ClassVar[str] = "Aurora"  # type: ignore[misc]
    page: ClassVar[str] = ""

    def path(self, ids: Mapping[str, Any]) -> str | None:
        template = AURORA_PATHS[self.page]
        values = dict(ids)
        if self.page == "delivery" and "delivery_id" not in values and values.get("delivery_ids"):
            # One request may create several deliveries: the link opens the first.
            values["delivery_id"] = str(values["delivery_ids"]).split(",")[0]
        try:
            return template.format(**{key: quote(str(value), safe="") for key, value in values.items()})
        except KeyError:
            return None

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            ids = XCom.get_value(key=IDS_XCOM_KEY, ti_key=ti_key)
        except Exception as error:
            log.warning("No Aurora link: could not read the %s XCom: %s", IDS_XCOM_KEY, error)
            return ""
        if not isinstance(ids, Mapping):
            return ""
        path = self.path(ids)
        if path is None:
            return ""
        base = aurora_base_url(operator)
        return f"{base}{path}" if base else ""


class PixxelAuroraAOILink(PixxelAuroraLink):
    """The AOI (AOI operator, AOI asset downloads)."""

    name = "Aurora AOI"
    page = "aoi"


class PixxelAuroraVisualizationLink(PixxelAuroraLink):
    name = "Aurora visualization"
    page = "visualization"


class PixxelAuroraInsightLink(PixxelAuroraLink):
    """The insight (insight operator, insight package downloads)."""

    name = "Aurora insight"
    page = "insight"


class PixxelAuroraOrderLink(PixxelAuroraLink):
    name = "Aurora order"
    page = "order"


class PixxelAuroraJobLink(PixxelAuroraLink):
    """The workflow job (job operator, job and task package downloads)."""

    name = "Aurora workflow job"
    page = "job"


class PixxelAuroraDeliveryLink(PixxelAuroraLink):
    name = "Aurora delivery"
    page = "delivery"


class PixxelAuroraCatalogDownloadLink(PixxelAuroraLink):
    name = "Aurora catalog download"
    page = "catalog_download"


__all__ = [
    "AURORA_PATHS",
    "DEFAULT_AURORA_URL",
    "PixxelAuroraAOILink",
    "PixxelAuroraCatalogDownloadLink",
    "PixxelAuroraDeliveryLink",
    "PixxelAuroraInsightLink",
    "PixxelAuroraJobLink",
    "PixxelAuroraLink",
    "PixxelAuroraOrderLink",
    "PixxelAuroraVisualizationLink",
    "aurora_base_url",
]
