"""Wait until an AOI has been processed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_pixxel.sensors.base import PixxelStatusSensor


class PixxelAOISensor(PixxelStatusSensor):
    """Wait until an AOI's processing ends (``GET /v0/aoi/{aoi_id}``).

    Succeeds on ``success`` (and on ``partial_success`` with ``allow_partial=True``); a ``failed``
    AOI fails the task with the API's reason (or skips it with ``soft_fail=True``). Works in poke,
    reschedule and deferrable mode; its XCom is ``{"aoi_id", "status"}``.

    :param aoi_id: the AOI to watch.

    Example::

        wait_for_aoi = PixxelAOISensor(
            task_id="wait_for_aoi",
            aoi_id="{{ ti.xcom_pull('create_aoi', key='pixxel_ids')['aoi_id'] }}",
            mode="reschedule",
            poke_interval=60,
            timeout=6 * 3600,
        )
    """

    watch_kind = "aoi"
    id_fields: Sequence[str] = ("aoi_id",)
    template_fields: Sequence[str] = (*PixxelStatusSensor.template_fields, "aoi_id")

    def __init__(self, *, aoi_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aoi_id = aoi_id
