"""Dates and times in the forms each Pixxel endpoint takes, checked before anything is sent.

Pixxel uses a different date form almost everywhere: ``2024_05_06`` for visualizations,
``2023-04-18T11:56:49.865Z`` for image search, ``start/end`` intervals with ``..`` for archive and
catalog search, ``2020-10-22T00:00:00Z`` for order items. Operators accept one set of inputs for all
of them, so ``{{ ds }}``, ``{{ ts }}``, ``{{ data_interval_start }}`` and plain Python values work
everywhere:

* ``datetime.date`` and ``datetime.datetime`` (naive means UTC), including pendulum values;
* strings ``YYYY-MM-DD`` and ``YYYY_MM_DD``;
* ISO 8601 / RFC 3339 date-times such as ``2024-05-06T10:30:00Z``, ``2024-05-06T10:30:00.123+05:30``
  or ``2024-05-06 10:30:00+00:00`` (no offset means UTC; fractions beyond microseconds are cut).

A date-time reduced to a date takes its UTC date, as the API does.
"""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING

import pendulum.parsing

if TYPE_CHECKING:
    from airflow_provider_pixxel.exceptions import PixxelConfigError

__all__ = [
    "ACCEPTED_FORMS",
    "TASKING_LEAD_TIME",
    "DateLike",
    "check_date_range",
    "check_tasking_window",
    "datetime_interval",
    "iso_date",
    "order_item_date",
    "parse_date",
    "parse_datetime",
    "rfc3339",
    "search_timestamp",
    "visualization_date",
]

DateLike = datetime.date | datetime.datetime | str
"""What every date argument accepts (a ``datetime`` is also a ``date``; pendulum values are both)."""

TASKING_LEAD_TIME = datetime.timedelta(hours=24)
"""Pixxel refuses a tasking order item whose start is less than this after the order is placed."""

ACCEPTED_FORMS = (
    "a date or datetime object (naive means UTC), 'YYYY-MM-DD', 'YYYY_MM_DD', or an ISO 8601 / RFC 3339 "
    "date-time such as '2024-05-06T10:30:00Z' or '2024-05-06T10:30:00+05:30'"
)

_UTC = datetime.timezone.utc
# The documented forms, and only those: pendulum alone would also take ``20240506``, week dates
# (``2024-W19``) and ordinal dates, which no Pixxel endpoint or template writes, so a typo there would
# become a silently different date. The pattern picks the form; pendulum builds the value.
_DOCUMENTED_FORM = re.compile(
    r"\d{4}(?P<sep>[-_])\d{2}(?P=sep)\d{2}"
    r"|\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?"
    r"(?P<offset>[Zz]|[+-](?P<hours>\d{2})(?::?(?P<minutes>\d{2}))?)?",
    re.ASCII,
)


def _config_error(message: str) -> PixxelConfigError:
    # Imported on first use: the simulator parses dates with this module and must start without
    # loading Airflow, which the exception hierarchy is built on and which logs to stdout as it starts.
    from airflow_provider_pixxel.exceptions import PixxelConfigError

    return PixxelConfigError(message)


def _refuse(field: str, value: object, reason: str = "") -> PixxelConfigError:
    detail = f" ({reason})" if reason else ""
    return _config_error(f"{field}: {value!r} is not a valid date{detail}. Accepted: {ACCEPTED_FORMS}")


def _parse_text(field: str, text: str) -> datetime.date | datetime.datetime:
    """A documented date or date-time string, built by pendulum's ISO 8601 parser."""
    form = _DOCUMENTED_FORM.fullmatch(text)
    if form is None:
        raise _refuse(field, text)
    # YYYY_MM_DD is the ISO date with other separators; pendulum reads the upper-case T and Z only.
    iso = text.replace("_", "-") if form["sep"] == "_" else text.upper()
    if form["hours"] is not None and (int(form["hours"]) > 23 or int(form["minutes"] or 0) > 59):
        raise _refuse(field, text, f"UTC offset {form['offset']} is out of range")
    try:
        parsed = pendulum.parsing.parse_iso8601(iso)
    except ValueError as error:  # pendulum says which part is out of range: "day is out of range..."
        raise _refuse(field, text, str(error)) from None
    if isinstance(parsed, datetime.datetime):
        return _to_utc(parsed)
    if isinstance(parsed, datetime.date):
        return parsed
    raise _refuse(field, text)  # pragma: no cover - the pattern admits no duration or time alone


def _to_utc(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=_UTC)
    utc = value.astimezone(_UTC)
    # A plain datetime, so callers never get a pendulum subclass with different str()/arithmetic.
    return datetime.datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=_UTC
    )


def _parse(value: object, field: str) -> datetime.date | datetime.datetime:
    """A plain ``date`` for date-only inputs, an aware UTC ``datetime`` for everything else."""
    if isinstance(value, datetime.datetime):
        return _to_utc(value)
    if isinstance(value, datetime.date):
        return datetime.date(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise _config_error(
            f"{field}: expected a date, got {type(value).__name__} {value!r}. Accepted: {ACCEPTED_FORMS}"
        )
    return _parse_text(field, value.strip())


def parse_date(value: DateLike, *, field: str = "date") -> datetime.date:
    """The calendar date of ``value``; a date-time gives its UTC date.

    :raises PixxelConfigError: naming ``field`` and listing the accepted forms.
    """
    parsed = _parse(value, field)
    if isinstance(parsed, datetime.datetime):
        return parsed.date()
    return parsed


def parse_datetime(
    value: DateLike, *, field: str = "datetime", end_of_day: bool = False
) -> datetime.datetime:
    """``value`` as an aware UTC ``datetime``.

    A date alone means the start of that UTC day, or with ``end_of_day`` its last microsecond (so an
    inclusive end date such as ``{{ ds }}`` covers the whole day).

    :raises PixxelConfigError: naming ``field`` and listing the accepted forms.
    """
    parsed = _parse(value, field)
    if isinstance(parsed, datetime.datetime):
        return parsed
    day_time = datetime.time.max if end_of_day else datetime.time.min
    return datetime.datetime.combine(parsed, day_time, tzinfo=_UTC)


def visualization_date(value: DateLike, *, field: str = "date") -> str:
    """``2024_05_06``: PNG ``date``, SLD ``dates``, legend metadata dates."""
    return parse_date(value, field=field).strftime("%Y_%m_%d")


def iso_date(value: DateLike, *, field: str = "date") -> str:
    """``2024-05-06``."""
    return parse_date(value, field=field).isoformat()


def rfc3339(value: DateLike, *, field: str = "datetime") -> str:
    """``2024-05-06T00:00:00Z``, with ``.ffffff`` only when there are fractional seconds."""
    moment = parse_datetime(value, field=field)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def search_timestamp(value: DateLike, *, field: str = "datetime", end_of_day: bool = False) -> str:
    """``2023-04-18T11:56:49.865Z`` (milliseconds, truncated): image search ``start_date``/``end_date``."""
    moment = parse_datetime(value, field=field, end_of_day=end_of_day)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def datetime_interval(start: DateLike | None, end: DateLike | None, *, field: str = "datetime") -> str:
    """``start/end`` for archive and catalog search ``datetime``; ``..`` marks an open end.

    A date-only ``end`` includes that whole day. At least one end must be given.

    :raises PixxelConfigError: when both ends are open, or ``end`` is before ``start``.
    """
    if start is None and end is None:
        raise _config_error(
            f"{field}: both ends of the interval are open. Give a start, an end, or both, "
            "or leave the datetime filter out"
        )
    start_text = end_text = ".."
    if start is not None:
        start_text = search_timestamp(start, field=f"{field} start")
    if end is not None:
        end_text = search_timestamp(end, field=f"{field} end", end_of_day=True)
    if start is not None and end is not None:
        check_date_range(start, end, start_field=f"{field} start", end_field=f"{field} end")
    return f"{start_text}/{end_text}"


def order_item_date(value: DateLike, *, field: str = "date") -> str:
    """``2020-10-22T00:00:00Z``: order item ``start_date``/``end_date``. The API uses only the UTC date."""
    return parse_date(value, field=field).strftime("%Y-%m-%dT00:00:00Z")


def _field_name(prefix: str, name: str) -> str:
    if prefix and not prefix.endswith((".", "_")):
        prefix += "."
    return f"{prefix}{name}"


def check_tasking_window(
    start: DateLike,
    end: DateLike | None,
    *,
    now: DateLike | None = None,
    field_prefix: str = "",
) -> tuple[datetime.date, datetime.date | None]:
    """Check a tasking order item's dates before the order is priced or placed.

    Pixxel uses the UTC dates of ``start_date`` (inclusive) and ``end_date`` (exclusive: start
    2020-10-22, end 2020-10-28 covers the 22nd to the 27th), and needs the start at least 24 hours
    after the order is placed. The start is checked as it will be sent, at 00:00 UTC of its date, so a
    start of ``2024-05-07T18:00`` counts from ``2024-05-07T00:00Z``. ``end`` may be ``None`` for a
    recurring order given ``no_of_occurrences`` instead.

    :param now: when the order is placed (default: the current time).
    :param field_prefix: prepended to the field names in errors, e.g. ``order_items[0].``.
    :returns: the UTC start and end dates.
    :raises PixxelConfigError: naming the field, and the earliest valid start date when the start is
        too early.
    """
    start_field = _field_name(field_prefix, "start_date")
    end_field = _field_name(field_prefix, "end_date")
    placed_at = datetime.datetime.now(_UTC) if now is None else parse_datetime(now, field="now")
    start_date = parse_date(start, field=start_field)
    start_sent = datetime.datetime.combine(start_date, datetime.time.min, tzinfo=_UTC)
    earliest_moment = placed_at + TASKING_LEAD_TIME
    if start_sent < earliest_moment:
        earliest_date = earliest_moment.date()
        if datetime.datetime.combine(earliest_date, datetime.time.min, tzinfo=_UTC) < earliest_moment:
            earliest_date += datetime.timedelta(days=1)
        lead_hours = (start_sent - placed_at).total_seconds() / 3600
        raise _config_error(
            f"{start_field}: {start_date.isoformat()} (sent as {order_item_date(start_date)}) is "
            f"{lead_hours:.1f} h after now ({rfc3339(placed_at)}); Pixxel needs a tasking start at least "
            f"24 h after the order is placed. The earliest valid {start_field} is {earliest_date.isoformat()}"
        )
    if end is None:
        return start_date, None
    end_date = parse_date(end, field=end_field)
    if end_date <= start_date:
        raise _config_error(
            f"{end_field}: {end_date.isoformat()} must be after {start_field} {start_date.isoformat()}. "
            "The end date is exclusive (start 2020-10-22, end 2020-10-28 covers the 22nd to the 27th), "
            f"so a single day needs {end_field} {(start_date + datetime.timedelta(days=1)).isoformat()}"
        )
    return start_date, end_date


def check_date_range(
    start: DateLike | None,
    end: DateLike | None,
    *,
    field_prefix: str = "",
    start_field: str = "start_date",
    end_field: str = "end_date",
) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    """Check a search window: ``end`` not before ``start``. A date-only ``end`` includes that day.

    :returns: the window as aware UTC datetimes (``None`` where an end was not given).
    :raises PixxelConfigError: naming the fields and both values.
    """
    start_name = _field_name(field_prefix, start_field)
    end_name = _field_name(field_prefix, end_field)
    start_moment = None if start is None else parse_datetime(start, field=start_name)
    end_moment = None if end is None else parse_datetime(end, field=end_name, end_of_day=True)
    if start_moment is not None and end_moment is not None and end_moment < start_moment:
        raise _config_error(
            f"{end_name}: {rfc3339(end_moment)} is before {start_name} {rfc3339(start_moment)}. "
            f"Swap them, or move {end_name} later"
        )
    return start_moment, end_moment
