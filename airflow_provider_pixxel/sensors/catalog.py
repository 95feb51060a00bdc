"""Wait for a cloud delivery of purchased imagery to reach its store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_pixxel.sensors.base import PixxelStatusSensor


class PixxelDeliverySensor(PixxelStatusSensor):
    """Wait until a delivery (``POST /v0/catalogs/deliveries``) is ``SUCCESS``; fail if it ``FAILED``.

    A delivery still ``UNSPECIFIED`` counts as not started, so the sensor keeps waiting (and times out)
    rather than succeeding on it.

    Example::

        PixxelDeliverySensor(
            task_id="wait_delivery",
            delivery_id="{{ ti.xcom_pull('deliver')['delivery_ids'][0] }}",
            deferrable=True,
        )
    """

    watch_kind = "delivery"
    id_fields: Sequence[str] = ("delivery_id",)
    template_fields: Sequence[str] = (*PixxelStatusSensor.template_fields, "delivery_id")

    def __init__(self, *, delivery_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delivery_id = delivery_id
