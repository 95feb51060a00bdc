"""The date forms the provider documents, for tests that check every layer accepts all of them."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pendulum


def documented_date_forms(day: date) -> dict[str, Any]:
    """Every form the provider documents for a date, all meaning ``day`` (UTC)."""
    return {
        "iso-date": day.isoformat(),  # {{ ds }}
        "underscore-date": day.strftime("%Y_%m_%d"),
        "iso-datetime-z": f"{day.isoformat()}T10:30:00Z",  # the form the hook once refused
        "iso-datetime-offset": f"{day.isoformat()}T10:30:00.123+05:30",  # {{ ts }} in another zone
        "iso-datetime-space": f"{day.isoformat()} 10:30:00+00:00",
        "date": day,
        "naive-datetime": datetime.combine(day, time(13, 45)),
        "pendulum-datetime": pendulum.datetime(day.year, day.month, day.day, 12, tz="Asia/Kolkata"),
    }
