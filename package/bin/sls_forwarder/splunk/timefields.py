"""Event times written by Alibaba Cloud services, as Splunk ``_time`` text with millisecond precision.

Services write their own time in one of a few forms; every one of them names its time zone or is an epoch:

- ISO 8601 with ``Z`` or an offset, optionally with a fraction: ActionTrail ``eventTime``
  (``2025-03-04T01:02:03Z``), WAF, SLB and OSS ``time`` (``2025-03-04T09:02:03+08:00``);
- the nginx/Apache access-log form ``04/Mar/2025:09:02:03 +0800`` (optionally in brackets);
- epoch seconds (10 digits, e.g. Cloud Firewall ``start_time``) or epoch milliseconds (13 digits).

A time without a zone is ambiguous and is not parsed: the caller falls back on ``__time__``. Pure.
"""

from __future__ import annotations

import calendar
import re
from typing import Dict, Optional

__all__ = ["field_time", "splunk_time", "NANOS_PER_SECOND"]

# ASCII digits only: \d alone would also take e.g. fullwidth digits, which no service writes.
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?(Z|z|[+-]\d\d:?\d\d)\Z", re.ASCII)
_ACCESS_LOG = re.compile(r"\[?(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-]\d\d)(\d\d)\]?\Z", re.ASCII)
_MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}
_EPOCH = re.compile(r"\d{10}(?:\d{3})?\Z", re.ASCII)
# Years Splunk can index (it rejects times before 1970 and far in the future).
_MIN_YEAR, _MAX_YEAR = 1970, 2999
# Times repeat (many events per second); the bounds only protect against pathological data. No service writes a time
# longer than 35 characters, so longer text is never cached, and the count bound is a bound in bytes (about 1 MB).
_CACHE_LIMIT = 4096
_MAX_CACHED_TEXT = 64
# Time_ns is specified as 0..999,999,999; a larger one is on the wire nonetheless and is left out of the time.
NANOS_PER_SECOND = 1_000_000_000
_cache: Dict[str, Optional[str]] = {}


def _offset_seconds(zone: str) -> int:
    if zone in ("Z", "z"):
        return 0
    digits = zone[1:].replace(":", "")
    seconds = int(digits[:2]) * 3600 + int(digits[2:]) * 60
    return -seconds if zone[0] == "-" else seconds


def _parse(text: str) -> Optional[str]:
    match = _ISO.match(text)
    if match is not None:
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        parts = (int(year), int(month), int(day), int(hour), int(minute), int(second))
        millis = int((fraction or "0")[:3].ljust(3, "0"))
        offset = _offset_seconds(zone)
    else:
        match = _ACCESS_LOG.match(text)
        if match is not None:
            day, month_name, year, hour, minute, second, zone_hours, zone_minutes = match.groups()
            month = _MONTHS.get(month_name)
            if month is None:
                return None
            parts = (int(year), month, int(day), int(hour), int(minute), int(second))
            millis = 0
            offset = int(zone_hours[1:]) * 3600 + int(zone_minutes) * 60
            if zone_hours[0] == "-":
                offset = -offset
        elif _EPOCH.match(text):
            value = int(text)
            seconds, millis = (value, 0) if len(text) == 10 else divmod(value, 1000)
            return "%d.%03d" % (seconds, millis)
        else:
            return None
    year, month, day, hour, minute, second = parts
    if not (_MIN_YEAR <= year <= _MAX_YEAR and 1 <= month <= 12 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    except (ValueError, OverflowError):
        return None
    if seconds < 0:
        return None
    return "%d.%03d" % (seconds, millis)


def field_time(text: str) -> Optional[str]:
    """Splunk time text (``<epoch seconds>.<milliseconds>``) for a service's time value; None if it does not parse.

    Arguments:
        text: The value as the service wrote it (surrounding whitespace is ignored).
    """
    cached = _cache.get(text, False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    if len(text) > 20 and text[19] in ".,":
        # ISO 8601 with a fraction: few events share a millisecond, but many share a second, so the second (with
        # its zone) is what is cached.
        end = 20
        while end < len(text) and "0" <= text[end] <= "9":
            end += 1
        if end > 20:
            whole = field_time(text[:19] + text[end:])
            return None if whole is None else whole[:-3] + text[20:end][:3].ljust(3, "0")
    result = _parse(text.strip())
    if len(text) <= _MAX_CACHED_TEXT:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[text] = result
    return result


def splunk_time(seconds: int, nanos: int) -> str:
    """The time text of SLS's ``__time__`` and ``__time_ns_part__``, as for generic events.

    A ``nanos`` of a second or more (out of spec) is left out: ``.1000000000`` would read as another time.
    """
    return "%d.%09d" % (seconds, nanos) if 0 < nanos < NANOS_PER_SECOND else "%d" % seconds
