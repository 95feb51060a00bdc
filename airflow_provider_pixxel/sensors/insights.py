"""Wait for an insight that something else started."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_pixxel.sensors.base import PixxelStatusSensor


class PixxelInsightSensor(PixxelStatusSensor):
    """Wait until an insight is terminal: succeed on completion, fail with its ``err_msg``.

    A failed or deleted insight raises ``AirflowFailException`` (``soft_fail=True`` skips instead).
    Pushes ``{"aoi_id", "insight_id", "status"}``.

    .. code-block:: python

        wait = PixxelInsightSensor(
            task_id="wait_for_insight",
            aoi_id="{{ ti.xcom_pull('create_aoi')['aoi_id'] }}",
            insight_id="{{ ti.xcom_pull('crop_classification')['insight_id'] }}",
            deferrable=True,
            poke_interval=60,
        )

    :param aoi_id: the AOI the insight runs on.
    :param insight_id: the insight to wait for.
    """

    watch_kind = "insight"
    id_fields: Sequence[str] = ("aoi_id", "insight_id")
    template_fields: Sequence[str] = (*PixxelStatusSensor.template_fields, "aoi_id", "insight_id")

    def __init__(self, *, aoi_id: str, insight_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aoi_id = aoi_id
        self.insight_id = insight_id
