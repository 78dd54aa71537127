"""timefields.py: service time values as Splunk time text, to the millisecond."""

from __future__ import annotations

import calendar
import tracemalloc

import pytest

from sls_forwarder.splunk.timefields import field_time, splunk_time

EPOCH = calendar.timegm((2025, 3, 4, 1, 2, 3))


@pytest.mark.parametrize("text, expected", [
    ("2025-03-04T01:02:03Z", "%d.000" % EPOCH),  # ActionTrail eventTime
    ("2025-03-04T01:02:03.456Z", "%d.456" % EPOCH),
    ("2025-03-04T01:02:03.4Z", "%d.400" % EPOCH),
    ("2025-03-04T01:02:03.456789Z", "%d.456" % EPOCH),  # truncated to milliseconds, never rounded up a second
    ("2025-03-04T09:02:03+08:00", "%d.000" % EPOCH),  # WAF / SLB time
    ("2025-03-04T09:02:03+0800", "%d.000" % EPOCH),
    ("2025-03-03T20:02:03.250-05:00", "%d.250" % EPOCH),
    ("2025-03-04 01:02:03Z", "%d.000" % EPOCH),
    ("04/Mar/2025:09:02:03 +0800", "%d.000" % EPOCH),  # access-log form
    ("[04/Mar/2025:01:02:03 +0000]", "%d.000" % EPOCH),
    ("%d" % EPOCH, "%d.000" % EPOCH),  # Cloud Firewall start_time
    ("%d789" % EPOCH, "%d.789" % EPOCH),  # epoch milliseconds
    (" 2025-03-04T01:02:03Z ", "%d.000" % EPOCH),
])
def test_documented_forms_parse(text: str, expected: str) -> None:
    assert field_time(text) == expected


@pytest.mark.parametrize("text", [
    "", "-", "2025-03-04T01:02:03",  # no zone: ambiguous, so __time__ is used
    "2025-02-30T01:02:03Z", "2025-13-01T00:00:00Z", "2025-03-04T24:00:00Z", "1969-12-31T23:59:59Z",
    "04/Foo/2025:09:02:03 +0800", "174105012", "17410501234", "1741050123.5", "2025-03-04T01:02:03ZZ",
    "yesterday", "２０２５-03-04T01:02:03Z"])
def test_anything_else_does_not_parse(text: str) -> None:
    assert field_time(text) is None


def test_sls_time_text_is_that_of_generic_events() -> None:
    assert splunk_time(1_700_000_000, 0) == "1700000000"
    assert splunk_time(1_700_000_000, 5) == "1700000000.000000005"
    assert splunk_time(1_700_000_000, 999_999_999) == "1700000000.999999999"


@pytest.mark.parametrize("nanos", [1_000_000_000, 1_100_000_000, 2 ** 32 - 1])
def test_nanoseconds_of_a_second_or_more_are_left_out(nanos: int) -> None:
    # "1700000011.1000000000" would read as another time.
    assert splunk_time(1_700_000_011, nanos) == "1700000011"


def test_long_values_are_not_cached() -> None:
    """A time field holding long unique text (no service writes one) must not fill the cache with it."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(300):
            assert field_time("%05d" % n + "x" * 40_000) is None
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1024 * 1024, grown  # 300 cached 40 KB strings were 12 MB
    assert field_time("2025-03-04T01:02:03Z") == "%d.000" % EPOCH
