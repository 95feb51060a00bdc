"""Wait for an order, or one of its order items, to be fulfilled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.sensors.base import PixxelStatusSensor


class PixxelOrderSensor(PixxelStatusSensor):
    """Wait until a whole order (every order item) or one order item is terminal.

    Give exactly one of ``order_id`` or ``order_item_id``. A whole order succeeds when every item is
    ``FULFILLED``; it fails (``AirflowFailException`` naming the items and the remote reason) when any
    item is ``FAILED`` or ``CANCELLED``, and a ``PARTIALLY_FULFILLED`` item fails it too unless
    ``allow_partial=True``. A ``DRAFT`` item (not placed or paid) never moves on its own, so the
    sensor times out on it.

    Returns ``{"order_id" or "order_item_id", "status"}``.

    Example::

        PixxelOrderSensor(
            task_id="wait_for_imagery",
            order_id="{{ ti.xcom_pull('place_order')['order_id'] }}",
            mode="reschedule",
            poke_interval=3600,
            timeout=14 * 24 * 3600,
        )
    """

    template_fields: Sequence[str] = (*PixxelStatusSensor.template_fields, "order_id", "order_item_id")

    def __init__(
        self, *, order_id: str | None = None, order_item_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.order_id = order_id
        self.order_item_id = order_item_id
        # Decided by which argument was given (a template string counts), checked once rendered.
        self.watch_kind = "order_item" if order_item_id is not None else "order"
        self.id_fields = ("order_item_id",) if order_item_id is not None else ("order_id",)

    def resource_ids(self) -> dict[str, str]:
        given = [name for name in ("order_id", "order_item_id") if str(getattr(self, name) or "").strip()]
        if len(given) != 1:
            raise PixxelConfigError(
                "give exactly one of order_id (wait for every item of the order) or order_item_id (wait "
                f"for one item); {'both were' if given else 'neither was'} given"
            )
        return super().resource_ids()
