"""Retry-After as delay-seconds or as an HTTP date (RFC 9110), read into seconds."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from rendercost.llm_gateway.types import parse_retry_after

NOW = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)


def test_delay_seconds() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after(None) is None


def test_an_http_date_is_honoured_as_seconds_from_now() -> None:
    header = format_datetime(NOW + timedelta(seconds=42), usegmt=True)  # "Tue, 01 Dec 2026 09:00:42 GMT"
    assert parse_retry_after(header, now=NOW) == 42.0
    assert parse_retry_after("Tue, 01 Dec 2026 09:01:30 GMT", now=NOW) == 90.0


def test_a_past_date_means_now_and_garbage_means_absent() -> None:
    assert parse_retry_after("Mon, 30 Nov 2026 09:00:00 GMT", now=NOW) == 0.0
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after("", now=NOW) is None


def test_the_current_time_is_the_default() -> None:
    header = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    seconds = parse_retry_after(header)
    assert seconds is not None and 110.0 <= seconds <= 120.0
