from __future__ import annotations

import datetime
import re
from typing import Any

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.utils.dates import (
    check_date_range,
    check_tasking_window,
    datetime_interval,
    iso_date,
    order_item_date,
    parse_date,
    parse_datetime,
    rfc3339,
    search_timestamp,
    visualization_date,
)

UTC = datetime.timezone.utc
MAY_6 = datetime.date(2024, 5, 6)


# --- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2024-05-06", MAY_6, id="iso-date"),
        pytest.param("2024_05_06", MAY_6, id="underscore-date"),
        pytest.param(" 2024-05-06\n", MAY_6, id="surrounding-whitespace"),
        pytest.param(MAY_6, MAY_6, id="date"),
        pytest.param(datetime.datetime(2024, 5, 6, 23, 59), MAY_6, id="naive-datetime-is-utc"),
        pytest.param(datetime.datetime(2024, 5, 6, 23, 30, tzinfo=UTC), MAY_6, id="aware-datetime"),
        pytest.param(pendulum.date(2024, 5, 6), MAY_6, id="pendulum-date"),
        pytest.param(pendulum.datetime(2024, 5, 6, 12, tz="UTC"), MAY_6, id="pendulum-datetime"),
        pytest.param(
            pendulum.datetime(2024, 5, 7, 1, tz="Europe/Paris"), MAY_6, id="pendulum-local-takes-utc-date"
        ),
        pytest.param("2024-05-06T10:30:00Z", MAY_6, id="rfc3339-z"),
        pytest.param("2024-05-06T10:30:00.865Z", MAY_6, id="search-timestamp"),
        pytest.param("2024-05-06T10:30:00+00:00", MAY_6, id="airflow-ts"),
        pytest.param("2024-05-06 10:30:00+00:00", MAY_6, id="space-separator"),
        pytest.param("2024-05-06T10:30", MAY_6, id="no-seconds-no-offset"),
        pytest.param("2024-05-06T23:30:00-05:00", datetime.date(2024, 5, 7), id="offset-moves-utc-date"),
        pytest.param("2024-05-07T01:00:00+0200", MAY_6, id="offset-without-colon"),
        pytest.param("2024-05-06t10:30:00z", MAY_6, id="lowercase-t-and-z"),
    ],
)
def test_parse_date_accepts(value: Any, expected: datetime.date) -> None:
    result = parse_date(value, field="date")

    assert result == expected
    assert type(result) is datetime.date


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("2024/05/06", "", id="slashes"),
        pytest.param("06-05-2024", "", id="day-first"),
        pytest.param("2024-13-01", "month must be in 1..12", id="month-13"),
        pytest.param("2024-02-30", "day is out of range", id="february-30"),
        pytest.param("2024-05_06", "", id="mixed-separators"),
        pytest.param("20240506", "", id="ds-nodash"),
        pytest.param("2024-5-6", "", id="unpadded"),
        pytest.param("2024-05-06T24:00:00Z", "hour must be in 0..23", id="hour-24"),
        pytest.param("2024-05-06T10:30:60Z", "second must be in 0..59", id="leap-second"),
        pytest.param(
            "2024-05-06T10:30:00+24:00", "UTC offset +24:00 is out of range", id="offset-out-of-range"
        ),
        pytest.param("2024-05-06T10:30:00 UTC", "", id="zone-name"),
        pytest.param("", "", id="empty"),
        pytest.param("yesterday", "", id="word"),
        pytest.param("{{ ds }}", "", id="unrendered-template"),
        pytest.param("\uff12\uff10\uff12\uff14-05-06", "", id="non-ascii-digits"),
    ],
)
def test_parse_date_refuses_bad_strings_listing_accepted_forms(value: str, reason: str) -> None:
    with pytest.raises(PixxelConfigError) as caught:
        parse_date(value, field="order_items[0].start_date")

    message = str(caught.value)
    assert message.startswith(f"order_items[0].start_date: {value!r} is not a valid date")
    assert reason in message
    assert "'YYYY-MM-DD', 'YYYY_MM_DD', or an ISO 8601 / RFC 3339 date-time" in message


@pytest.mark.parametrize("value", [None, 20240506, 1.5, ["2024-05-06"], datetime.time(10)])
def test_parse_date_refuses_other_types(value: Any) -> None:
    with pytest.raises(PixxelConfigError, match=rf"^start: expected a date, got {type(value).__name__}"):
        parse_date(value, field="start")


def test_parse_datetime_is_utc_aware_and_plain() -> None:
    paris = pendulum.datetime(2024, 5, 6, 12, 0, 0, 250000, tz="Europe/Paris")

    result = parse_datetime(paris, field="when")

    assert result == datetime.datetime(2024, 5, 6, 10, 0, 0, 250000, tzinfo=UTC)
    assert type(result) is datetime.datetime
    assert result.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize(
    ("value", "end_of_day", "expected"),
    [
        ("2024-05-06", False, datetime.datetime(2024, 5, 6, tzinfo=UTC)),
        ("2024_05_06", True, datetime.datetime(2024, 5, 6, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2024-05-06T10:00:00Z", True, datetime.datetime(2024, 5, 6, 10, tzinfo=UTC)),
        (datetime.datetime(2024, 5, 6, 10), False, datetime.datetime(2024, 5, 6, 10, tzinfo=UTC)),
        (
            "2024-05-06T10:00:00.123456789Z",
            False,
            datetime.datetime(2024, 5, 6, 10, 0, 0, 123456, tzinfo=UTC),
        ),
        ("2024-05-06T10:00:00,5+01:00", False, datetime.datetime(2024, 5, 6, 9, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_parse_datetime(value: Any, end_of_day: bool, expected: datetime.datetime) -> None:
    assert parse_datetime(value, field="when", end_of_day=end_of_day) == expected


# --- formatters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formatter", "value", "expected"),
    [
        (visualization_date, "2024-05-06", "2024_05_06"),
        (visualization_date, "2024-05-06T23:30:00-05:00", "2024_05_07"),
        (iso_date, "2024_05_06", "2024-05-06"),
        (rfc3339, "2024-05-06", "2024-05-06T00:00:00Z"),
        (rfc3339, "2024-05-06T10:30:00.5+02:00", "2024-05-06T08:30:00.500000Z"),
        (search_timestamp, "2023-04-18T11:56:49.865432Z", "2023-04-18T11:56:49.865Z"),
        (search_timestamp, MAY_6, "2024-05-06T00:00:00.000Z"),
        (order_item_date, "2020-10-22", "2020-10-22T00:00:00Z"),
        (order_item_date, "2020-10-22T18:45:00Z", "2020-10-22T00:00:00Z"),
        (order_item_date, pendulum.datetime(2020, 10, 22, 1, tz="Asia/Kolkata"), "2020-10-21T00:00:00Z"),
    ],
)
def test_formatters(formatter: Any, value: Any, expected: str) -> None:
    assert formatter(value) == expected


def test_search_timestamp_end_of_day() -> None:
    assert search_timestamp("2024-05-06", end_of_day=True) == "2024-05-06T23:59:59.999Z"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (
            "2020-04-05T11:56:49.865Z",
            "2023-06-05T11:56:49.865Z",
            "2020-04-05T11:56:49.865Z/2023-06-05T11:56:49.865Z",
        ),
        ("2024-05-01", None, "2024-05-01T00:00:00.000Z/.."),
        (None, "2024-05-06", "../2024-05-06T23:59:59.999Z"),
        ("2024-05-06", "2024-05-06", "2024-05-06T00:00:00.000Z/2024-05-06T23:59:59.999Z"),
    ],
)
def test_datetime_interval(start: Any, end: Any, expected: str) -> None:
    assert datetime_interval(start, end) == expected


def test_datetime_interval_refuses_open_both_ends_and_reversed() -> None:
    with pytest.raises(PixxelConfigError, match=r"^datetime: both ends of the interval are open"):
        datetime_interval(None, None)
    with pytest.raises(
        PixxelConfigError, match=r"^datetime end: 2024-05-01T23:59:59.999999Z is before datetime start"
    ):
        datetime_interval("2024-05-06", "2024-05-01")
    with pytest.raises(PixxelConfigError, match=r"^datetime start: '2024/05/06' is not a valid date"):
        datetime_interval("2024/05/06", None)


def test_formatter_errors_name_the_field() -> None:
    with pytest.raises(PixxelConfigError, match=r"^dates\[1\]: '2024-5-7' is not a valid date"):
        visualization_date("2024-5-7", field="dates[1]")


# --- tasking window -------------------------------------------------------------------------------

NOW = datetime.datetime(2024, 5, 6, 10, 0, tzinfo=UTC)


def test_tasking_window_accepts_start_24h_ahead_and_returns_utc_dates() -> None:
    assert check_tasking_window("2024-05-08", "2024-05-10", now=NOW) == (
        datetime.date(2024, 5, 8),
        datetime.date(2024, 5, 10),
    )


def test_tasking_window_accepts_start_exactly_24h_ahead() -> None:
    midnight = datetime.datetime(2024, 5, 6, tzinfo=UTC)

    assert check_tasking_window("2024-05-07", "2024-05-08", now=midnight)[0] == datetime.date(2024, 5, 7)


def test_tasking_window_refuses_start_under_24h_naming_field_and_earliest_start() -> None:
    with pytest.raises(PixxelConfigError) as caught:
        check_tasking_window("2024-05-07", "2024-05-10", now=NOW, field_prefix="order_items[0]")

    message = str(caught.value)
    assert message.startswith(
        "order_items[0].start_date: 2024-05-07 (sent as 2024-05-07T00:00:00Z) is 14.0 h"
    )
    assert "after now (2024-05-06T10:00:00Z)" in message
    assert "at least 24 h after the order is placed" in message
    assert message.endswith("The earliest valid order_items[0].start_date is 2024-05-08")


def test_tasking_window_counts_a_datetime_start_from_its_utc_midnight() -> None:
    # 2024-05-07T18:00Z is 32 h ahead, but only the date is sent: 2024-05-07T00:00Z, 14 h ahead.
    with pytest.raises(PixxelConfigError, match="earliest valid start_date is 2024-05-08"):
        check_tasking_window("2024-05-07T18:00:00Z", None, now=NOW)


@pytest.mark.parametrize("end", ["2024-05-08", "2024-05-01"])
def test_tasking_window_refuses_end_not_after_start_explaining_exclusive_end(end: str) -> None:
    with pytest.raises(PixxelConfigError) as caught:
        check_tasking_window("2024-05-08", end, now=NOW, field_prefix="order_items[3].")

    message = str(caught.value)
    assert message.startswith(
        f"order_items[3].end_date: {end} must be after order_items[3].start_date 2024-05-08"
    )
    assert "exclusive (start 2020-10-22, end 2020-10-28 covers the 22nd to the 27th)" in message
    assert "a single day needs order_items[3].end_date 2024-05-09" in message


def test_tasking_window_without_end_for_recurring_orders() -> None:
    assert check_tasking_window("2024-05-08", None, now=NOW) == (datetime.date(2024, 5, 8), None)


def test_tasking_window_defaults_now_to_the_current_time() -> None:
    today = datetime.datetime.now(UTC).date()

    check_tasking_window(today + datetime.timedelta(days=2), today + datetime.timedelta(days=3))
    with pytest.raises(PixxelConfigError, match="start_date"):
        check_tasking_window(today, today + datetime.timedelta(days=3))


def test_tasking_window_bad_formats_name_the_field() -> None:
    with pytest.raises(
        PixxelConfigError, match=r"^order_items\[0\]\.end_date: '28-10-2020' is not a valid date"
    ):
        check_tasking_window("2020-10-22", "28-10-2020", now="2020-10-01", field_prefix="order_items[0].")


# --- search windows ---------------------------------------------------------------------------------


def test_date_range_accepts_same_day_and_open_ends() -> None:
    start, end = check_date_range("2024-05-06", "2024-05-06")

    assert start == datetime.datetime(2024, 5, 6, tzinfo=UTC)
    assert end == datetime.datetime(2024, 5, 6, 23, 59, 59, 999999, tzinfo=UTC)
    assert check_date_range(None, "2024-05-06")[0] is None
    assert check_date_range("2024-05-06", None)[1] is None


def test_date_range_refuses_end_before_start() -> None:
    with pytest.raises(PixxelConfigError) as caught:
        check_date_range("2024-05-06T12:00:00Z", "2024-05-06T11:00:00Z", field_prefix="search")

    assert str(caught.value) == (
        "search.end_date: 2024-05-06T11:00:00Z is before search.start_date 2024-05-06T12:00:00Z. "
        "Swap them, or move search.end_date later"
    )


# --- properties -------------------------------------------------------------------------------------

dates = st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2200, 12, 31))
offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime.datetime(1900, 1, 2), max_value=datetime.datetime(2200, 12, 30), timezones=offsets
)


@settings(max_examples=200, deadline=None)
@given(dates)
def test_every_date_form_round_trips(day: datetime.date) -> None:
    forms: list[Any] = [
        iso_date(day),
        visualization_date(day),
        rfc3339(day),
        search_timestamp(day),
        order_item_date(day),
        day.strftime("%Y-%m-%d"),
        day.strftime("%Y_%m_%d"),
        datetime.datetime.combine(day, datetime.time(12)),
        pendulum.date(day.year, day.month, day.day),
    ]

    for form in forms:
        assert parse_date(form, field="d") == day, form


@settings(max_examples=200, deadline=None)
@given(dates)
def test_visualization_date_of_parsed_underscore_string_is_identity(day: datetime.date) -> None:
    text = f"{day.year:04d}_{day.month:02d}_{day.day:02d}"

    assert visualization_date(parse_date(text, field="date")) == text


@settings(max_examples=200, deadline=None)
@given(moments)
def test_datetime_forms_round_trip(moment: datetime.datetime) -> None:
    assert parse_datetime(moment.isoformat(), field="t") == moment
    assert parse_datetime(rfc3339(moment), field="t") == moment
    truncated = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert parse_datetime(search_timestamp(moment), field="t") == truncated
    assert parse_date(moment.isoformat(), field="t") == moment.astimezone(UTC).date()


@settings(max_examples=300, deadline=None)
@given(
    now=st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2100, 1, 1)),
    lead=st.timedeltas(min_value=datetime.timedelta(days=-3), max_value=datetime.timedelta(days=6)),
    as_date=st.booleans(),
)
def test_tasking_window_accepts_exactly_the_starts_at_least_24h_ahead(
    now: datetime.datetime, lead: datetime.timedelta, as_date: bool
) -> None:
    now = now.replace(tzinfo=UTC)
    start_moment = now + lead
    start: datetime.date | datetime.datetime = start_moment.date() if as_date else start_moment
    # What Pixxel receives, and so what must be 24 h ahead, is 00:00 UTC of the start's date.
    sent = datetime.datetime.combine(start_moment.date(), datetime.time(), tzinfo=UTC)

    if sent >= now + datetime.timedelta(hours=24):
        assert check_tasking_window(start, None, now=now)[0] == start_moment.date()
        return
    with pytest.raises(PixxelConfigError) as caught:
        check_tasking_window(start, None, now=now)
    earliest = re.search(r"earliest valid start_date is (\d{4}-\d{2}-\d{2})$", str(caught.value))
    assert earliest is not None
    earliest_day = datetime.date.fromisoformat(earliest[1])
    check_tasking_window(earliest_day, None, now=now)
    with pytest.raises(PixxelConfigError):
        check_tasking_window(earliest_day - datetime.timedelta(days=1), None, now=now)
