"""Fused decode and shape: PullLogs LogGroupList bytes straight to serialized Splunk events.

Decoding every value to ``str`` and building tuples (``sls.decoder``), then escaping and encoding them again
(``splunk.events.EventShaper``) costs the whole end-to-end CPU budget on its own. ``Transcoder`` produces the same
bytes while working on the protobuf bytes directly:

- A Content field's header (tag, size, key, value length) repeats from log to log, so its exact bytes are looked
  up in a dict: one slice and one lookup validate the framing and locate the value, where a parser reads and
  checks each varint. A header parses in exactly one way, so a hit cannot be a misparse.
- Values stay bytes. When a log's values are all ASCII without JSON (and, for the stream, XML) specials, which one
  ``bytes.translate`` over the joined values decides, the raw bytes already are the escaped text and are spliced
  as they are. Only the values of the other logs are decoded, escaped and encoded, one by one.
- Each key sequence gets a cached bytes %-template of the whole event, with the envelope, metadata and escaped
  keys already in place, so a log costs one ``%`` of its time, host, values and group tail.
- The time varint is looked up by its raw bytes: many logs share a second.
- Whatever the fast path does not recognise (unknown fields, unusual field order, keys of 128 bytes or more) is
  decoded with ``sls.decoder.decode_log`` and shaped by ``EventShaper``, one log at a time. A batch that fails
  anywhere is redone on that straightforward path, so malformed data raises the decoder's ``DecodeError``.
- The caches are bounded by their estimated bytes (``caches.SizedCache``; ``CACHE_BUDGET_BYTES`` per Transcoder),
  and ``caches.HitRate`` watches the templates: when key sequences stop repeating (producers with dynamic keys),
  log groups take the plain path (``decode_log`` + ``EventShaper`` without caching) for a while, then the caches
  are tried again.
- A ``Time_ns`` of 10^9 or more (out of spec) is left out of the time, as ``EventShaper`` does; the transcoders,
  unlike the pure decoder and shapers, log it (``OutOfRangeNanos``: once per shard and interval, not per event).

The result is byte for byte ``EventShaper.shape(decode_log_group_list(data))``; the unit tests check that on the
generated data sets and on random LogGroupLists. Like ``pipeline``, this module belongs to the pipeline layer and
imports both ``sls`` and ``splunk``.

With the input's sourcetype ``auto`` (``routing.Router``), ``RoutingTranscoder`` splits each pull into runs of log
groups of one route. Generic routes (``aliyun:sls``, and the OSS, SLB, WAF, Security Center and Cloud Firewall
sourcetypes) go through a ``Transcoder`` of their own sourcetype, the fused path; a route with a time field reads the
service's time from the raw value. ActionTrail groups are decoded log by log and normalised by
``splunk.actiontrail.ActionTrailShaper``. Logs of the ``aliyun:sls`` route with flattened ActionTrail keys are
diverted to it too. ``RoutingShaper`` is the straightforward definition of all this (decoder + one shaper per
route), which ``RoutingTranscoder`` equals byte for byte.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from .caches import HitRate, SizedCache, entry_bytes
from .routing import ACTIONTRAIL, ACTIONTRAIL_ROUTE, GENERIC, Route, Router, looks_flattened_actiontrail
from .sls.decoder import (DecodeError, Log, LogGroup, LogGroupFrame, decode_log, decode_log_group_list,
                          iter_log_group_frames)
from .splunk.actiontrail import ActionTrailShaper
from .splunk.events import EventShaper
from .splunk.timefields import NANOS_PER_SECOND, field_time

__all__ = ["Transcoder", "RoutingTranscoder", "RoutingShaper", "OutOfRangeNanos", "make_transcode",
           "make_batch_transcode", "CACHE_BUDGET_BYTES"]

logger = logging.getLogger("sls_forwarder.transcode")

# Wire bytes of the fields the fast path knows (see sls/decoder.py for the schema).
_TIME_TAG = 0x08  # Log.Time, varint
_CONTENT_TAG = 0x12  # Log.Contents, length-delimited
_TIME_NS_TAG = 0x25  # Log.Time_ns, fixed32
_KEY_TAG = 0x0A  # Content.Key, length-delimited
_VALUE_TAG = 0x12  # Content.Value, length-delimited
# Log.Time as a 5-byte varint, the size of every unix time from 1978 to 2106: the cached form.
_CACHED_TIME_SIZE = 6

# Bytes that keep a value from being spliced raw: JSON specials and controls, and every non-ASCII byte (its text
# may be invalid UTF-8 or U+FFFE/U+FFFF, which the body escapes); for the stream also XML's & < >.
_JSON_UNSAFE_BYTES = bytes(range(0x20)) + b'"\\' + bytes(range(0x80, 0x100))
_STREAM_UNSAFE_BYTES = _JSON_UNSAFE_BYTES + b"&<>"
# Bytes whose escaping needs the text: controls (\n, \u0001 ...) and non-ASCII.
_HARD_BYTES = bytes(range(0x20)) + bytes(range(0x80, 0x100))

# The caches hold what repeats (headers, key sequences, seconds, hosts), bounded by their estimated bytes: regular data
# needs well under 1 MB in all (the generated ActionTrail, OSS and mixed data sets), while logs whose keys never
# repeat filled count-bounded caches with about 450 MB. A full cache is emptied and refilled, which adapts to data
# that changes shape. At most CACHE_BUDGET_BYTES (4 MiB) per Transcoder, plus its shaper's (splunk/events.py).
_TEMPLATE_CACHE_BYTES = 2 << 20
_HEADER_CACHE_BYTES = 1 << 20
_HOST_CACHE_BYTES = 512 << 10
_TIME_CACHE_BYTES = 256 << 10  # Log.Time seconds, and time_field values
CACHE_BUDGET_BYTES = _TEMPLATE_CACHE_BYTES + _HEADER_CACHE_BYTES + _HOST_CACHE_BYTES + 2 * _TIME_CACHE_BYTES
# Host names are short; a host_field pointing at a long value is rendered every time rather than cached.
_MAX_CACHED_HOST = 256
# Service times are at most 35 bytes; a longer time_field value is parsed every time rather than cached.
_MAX_CACHED_FIELD_TIME = 64
# Dynamic keys: per byte, a log that misses its template costs about 2.5 times the plain path (decode_log +
# EventShaper without caching), one that finds it about a third (tests/unit/bench_transcode.py's data): below about
# 70 % hits the plain path is cheaper. After such a window of logs the next 32 windows take the plain path, then one
# window tries the caches again (about 4 % of extra cost while keys stay unique), which brings back the fast path
# within about 8,000 logs when the data turns regular.
_HIT_WINDOW = 256
_MIN_HIT_RATE = 0.7
_BYPASS_WINDOWS = 32
# A shard whose pulls keep carrying out-of-range Time_ns gets one log line per this many seconds.
_NANOS_LOG_INTERVAL = 300.0

Events = Tuple[List[bytes], int]
# What the pipeline gets per pull: events, newest __time__, and events per sourcetype (None: all the input's one).
Transcoded = Tuple[List[bytes], int, Optional[Dict[str, int]]]
# A cached Content header: (value start, content end) relative to the header's first byte, and the decoded key.
_Header = Tuple[int, int, str]
# A cached Log.Time: (seconds, seconds as text, bytes of the Time field).
_Time = Tuple[int, bytes, int]


class FramesResult(NamedTuple):
    """What ``Transcoder.transcode_frames`` made of some log groups."""

    events: List[bytes]
    newest: int  # newest __time__, 0 when there are no logs
    diverted: int  # events made by the ActionTrail shaper
    out_of_range_nanos: int  # logs with a Time_ns of a second or more


def _count_out_of_range_nanos(logs: Iterable[Log]) -> int:
    return sum(1 for log in logs if log.time_ns >= NANOS_PER_SECOND)


class OutOfRangeNanos:
    """Logs pulls whose logs carry a ``Time_ns`` of a second or more (left out of their time; the events are kept).

    One WARNING for the first such pull of a shard, then at most one per ``interval`` seconds per shard, with the
    number of such logs since its last line: bad data in every pull must not log per pull, let alone per event.
    Thread-safe.
    """

    def __init__(self, interval: float = _NANOS_LOG_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last_line: Dict[int, float] = {}
        self._unreported: Dict[int, int] = {}

    def found(self, shard_id: int, cursor: str, count: int) -> None:
        """Note ``count`` such logs in the pull of ``shard_id`` at ``cursor`` ("" when unknown); log when due."""
        if not count:
            return
        with self._lock:
            count += self._unreported.pop(shard_id, 0)
            now = self._clock()
            last = self._last_line.get(shard_id)
            if last is not None and now - last < self._interval:
                self._unreported[shard_id] = count
                return
            self._last_line[shard_id] = now
        logger.warning("action=time_ns_out_of_range shard=%d cursor=%s events=%d next=time_without_nanoseconds "
                       "detail=\"Time_ns of 10^9 or more (out of spec); _time is __time__, the body keeps "
                       "__time_ns_part__\"", shard_id, cursor or "-", count)


class _Template:
    """The cached %-template of one key sequence: a whole event with slots for time, host, values and group tail."""

    __slots__ = ("format", "json_positions", "escape_positions", "host_position", "special")

    def __init__(self, format_bytes: bytes, json_positions: Tuple[int, ...], host_position: int,
                 special: Optional["_Special"] = None) -> None:
        self.format = format_bytes
        self.json_positions = json_positions  # slots of json_fields keys
        self.escape_positions: Tuple[int, ...] = ()  # plain values that needed escaping in an earlier log
        self.host_position = host_position  # index of the host_field value, -1 when absent or group-level
        self.special = special  # None for the usual key sequence: one check per log covers the rare cases


class _Special:
    """What a key sequence needs besides the template: a time field, or diversion to the ActionTrail shaper."""

    __slots__ = ("time_position", "divert")

    def __init__(self, time_position: int, divert: bool) -> None:
        self.time_position = time_position  # index of the time_field value, -1 when none
        self.divert = divert  # flattened ActionTrail keys on a route that diverts them


def _percent_escaped(text: str) -> bytes:
    """Fixed text for a %-template: UTF-8, with % doubled."""
    return text.encode("utf-8").replace(b"%", b"%%")


def _read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    """Return (value, position after the varint) for the varint at ``pos``; at most 10 bytes are read."""
    result = 0
    for shift in range(0, 70, 7):
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
    raise DecodeError("varint longer than 10 bytes at offset %d" % pos, code="BadLogGroupList")


class Transcoder:
    """Turns PullLogs bodies into the events ``shaper`` would make from the decoded log groups, faster.

    Arguments:
        shaper: The input's EventShaper; it defines the output and renders whatever the fast path does not.
        diverter: With routing, the ``RoutingShaper`` that takes this route's logs with flattened ActionTrail keys.

    Thread-safe: shard consumers may share one Transcoder (its caches only ever map a key to the same value; the
    hit-rate counters are a heuristic that tolerates a lost update).
    """

    def __init__(self, shaper: EventShaper, diverter: Optional["RoutingShaper"] = None) -> None:
        self.shaper = shaper
        self._diverter = diverter
        self._time_field = shaper.meta.time_field
        self._field_times: SizedCache[bytes, Optional[bytes]] = SizedCache(_TIME_CACHE_BYTES)
        self._stream = shaper.fmt == "stream"
        self._unsafe = _STREAM_UNSAFE_BYTES if self._stream else _JSON_UNSAFE_BYTES
        before_time, before_host, after_host, after_body = shaper.envelope()
        # Every template starts with these and ends with the group tail slot; the body's "{" opens the key list.
        self._template_head = (_percent_escaped(before_time) + b"%s" + _percent_escaped(before_host) + b"%s"
                               + _percent_escaped(after_host) + b"{")
        self._template_end = b"%s}" + _percent_escaped(after_body)
        self._default_host = shaper.render_host("").encode("utf-8")
        self._headers: SizedCache[bytes, _Header] = SizedCache(_HEADER_CACHE_BYTES)
        self._times: SizedCache[bytes, _Time] = SizedCache(_TIME_CACHE_BYTES)
        self._templates: SizedCache[Tuple[str, ...], _Template] = SizedCache(_TEMPLATE_CACHE_BYTES)
        self._hosts: SizedCache[bytes, bytes] = SizedCache(_HOST_CACHE_BYTES)
        self._hit_rate = HitRate(_HIT_WINDOW, _MIN_HIT_RATE, _BYPASS_WINDOWS)
        self._out_of_range_nanos = OutOfRangeNanos()

    @property
    def cache_bytes(self) -> int:
        """Estimated bytes held by this Transcoder's caches (at most ``CACHE_BUDGET_BYTES``)."""
        return sum(cache.size for cache in (self._headers, self._times, self._templates, self._hosts,
                                            self._field_times))

    def transcode(self, data: bytes, shard_id: int = 0, cursor: str = "") -> Events:
        """Serialize every log of a LogGroupList.

        Arguments:
            data: The uncompressed PullLogs body.
            shard_id: The shard it was pulled from, for the log line about out-of-range ``Time_ns``.
            cursor: The cursor it was pulled at ("" when unknown), likewise.

        Returns:
            The UTF-8 events in wire order and the newest ``__time__`` (0 when there are no logs), exactly as
            ``shaper.shape(decode_log_group_list(data))``.

        Raises:
            DecodeError: The bytes are not a well-formed LogGroupList.
        """
        if not isinstance(data, bytes):
            data = bytes(data)
        try:
            events, newest, _, out_of_range = self.transcode_frames(data, iter_log_group_frames(data), shard_id)
        except (DecodeError, IndexError):
            # Malformed data, or valid data the fast path read past the end of (an empty Content as the very last
            # bytes): the straightforward path gives the events or raises the decoder's own error.
            groups = decode_log_group_list(data)
            out_of_range = _count_out_of_range_nanos(log for group in groups for log in group.logs)
            events, newest = self.shaper.shape(groups)
        self._out_of_range_nanos.found(shard_id, cursor, out_of_range)
        return events, newest

    def transcode_frames(self, data: bytes, frames: Iterable[LogGroupFrame], shard_id: int) -> FramesResult:
        """The events of some log groups of ``data``, without the fallback of ``transcode``.

        Raises:
            DecodeError, IndexError: The caller redoes the whole pull on the straightforward path.
        """
        # The per-log loop is written out in one function: a call per log or per field would cost more than the
        # field itself. Locals stand in for attribute lookups for the same reason.
        events: List[bytes] = []
        append = events.append
        newest = 0
        diverted = 0
        out_of_range = 0
        headers_get = self._headers.get
        times_get = self._times.get
        templates_get = self._templates.get
        unsafe = self._unsafe
        # Template lookups are counted here and handed to the HitRate per window, not per log group: groups of one
        # log are common, and a call per group would cost several percent of them.
        hit_rate = self._hit_rate
        caching = hit_rate.caching
        window = hit_rate.window
        lookups = misses = 0
        for frame in frames:
            spans = frame.log_spans
            if not spans:
                continue
            if not caching:
                plain_newest, plain_diverted, plain_out_of_range = self._plain_events(frame, data, shard_id, events)
                newest = max(newest, plain_newest)
                diverted += plain_diverted
                out_of_range += plain_out_of_range
                hit_rate.bypassed(len(spans))
                caching = hit_rate.caching
                continue
            group_tail, group_host = self._render_group(frame)
            for start, stop in spans:
                # Log.Time comes first in every producer's encoding.
                timing = times_get(data[start:start + _CACHED_TIME_SIZE])
                if timing is None:
                    timing = self._read_time(data, start)
                    if timing is None:
                        log, was_diverted = self._reference_event(frame, data, start, stop, shard_id, events)
                        newest = max(newest, log.time)
                        diverted += was_diverted
                        out_of_range += log.time_ns >= NANOS_PER_SECOND
                        continue
                seconds, seconds_text, pos = timing[0], timing[1], start + timing[2]

                # Contents, then the optional Time_ns as the last field.
                keys: List[str] = []
                values: List[bytes] = []
                nanos = 0
                while pos < stop:
                    # A short Content: tag, 1-byte size, key tag, 1-byte key size, key, value tag, 1-byte value size.
                    header = headers_get(data[pos:pos + 6 + data[pos + 3]])
                    if header is None:
                        if data[pos] == _TIME_NS_TAG and pos + 5 == stop:
                            nanos = int.from_bytes(data[pos + 1:stop], "little")
                            pos = stop
                            break
                        if data[pos + 1] >= 0x80:
                            # A long Content (128 bytes or more): 2-byte size and, nearly always, 2-byte value size.
                            header = headers_get(data[pos:pos + 8 + data[pos + 4]])
                        if header is None:
                            header = self._read_header(data, pos, stop)
                            if header is None:
                                break
                    value_start, content_size, key = header
                    values.append(data[pos + value_start:pos + content_size])
                    keys.append(key)
                    pos += content_size
                if pos != stop:
                    log, was_diverted = self._reference_event(frame, data, start, stop, shard_id, events)
                    newest = max(newest, log.time)
                    diverted += was_diverted
                    out_of_range += log.time_ns >= NANOS_PER_SECOND
                    continue
                if seconds > newest:
                    newest = seconds

                key_tuple = tuple(keys)
                template = templates_get(key_tuple)
                if template is None:
                    template = self._template(key_tuple)
                    misses += 1
                special = template.special
                field_time_text = None
                if special is not None:
                    if special.divert:
                        event = self._divert(frame, decode_log(data, start, stop), shard_id)
                        if event is not None:
                            append(event)
                            diverted += 1
                            out_of_range += nanos >= NANOS_PER_SECOND
                            continue
                    if special.time_position >= 0:
                        field_time_text = self._field_time(values[special.time_position])
                # The host comes from the raw value, before escaping.
                host = group_host if group_host is not None else self._content_host(values, template.host_position)
                if template.json_positions or template.escape_positions:
                    values = self._render_values(values, template)
                else:
                    joined = b"".join(values)
                    if len(joined.translate(None, unsafe)) != len(joined):
                        values = self._render_values(values, template)
                if nanos:
                    if nanos < NANOS_PER_SECOND:
                        time_text = b"%s.%09d" % (seconds_text, nanos)
                    else:
                        time_text = seconds_text
                        out_of_range += 1
                    body_end = b'%s%s,"__time_ns_part__":%d' % (group_tail, seconds_text, nanos)
                else:
                    time_text = seconds_text
                    body_end = group_tail + seconds_text
                if field_time_text is not None:
                    time_text = field_time_text
                append(template.format % (time_text, host, *values, body_end))
            lookups += len(spans)
            if lookups >= window:
                hit_rate.observed(lookups, misses)
                lookups = misses = 0
                caching = hit_rate.caching
        if lookups:
            hit_rate.observed(lookups, misses)
        return FramesResult(events, newest, diverted, out_of_range)

    # ------------------------------------------------------------------------------------------- wire format

    def _read_time(self, data: bytes, start: int) -> Optional[_Time]:
        """Read a Log.Time that is not cached yet; cache it when it has the usual 5-byte form. None if absent."""
        if data[start] != _TIME_TAG:
            return None
        seconds, pos = _read_varint(data, start + 1)
        timing = (seconds, b"%d" % seconds, pos - start)
        if pos - start == _CACHED_TIME_SIZE:
            raw = data[start:pos]
            self._times.put(raw, timing, entry_bytes(raw, timing, items=timing))
        return timing

    def _read_header(self, data: bytes, pos: int, stop: int) -> Optional[_Header]:
        """Parse a Content header that is not cached yet and cache it.

        Returns None when the field at ``pos`` is not a Content of exactly a key (shorter than 128 bytes) followed by
        a value, within ``stop``: the log then takes the straightforward path.
        """
        if data[pos] != _CONTENT_TAG:
            return None
        content_size, key_start = _read_varint(data, pos + 1)
        content_stop = key_start + content_size
        if content_stop > stop or data[key_start] != _KEY_TAG or data[key_start + 1] >= 0x80:
            return None
        key_stop = key_start + 2 + data[key_start + 1]
        if key_stop >= content_stop or data[key_stop] != _VALUE_TAG:
            return None
        value_size, value_start = _read_varint(data, key_stop + 1)
        if value_start + value_size != content_stop:
            return None
        header = (value_start - pos, content_stop - pos, data[key_start + 2:key_stop].decode("utf-8", "replace"))
        raw = data[pos:value_start]
        self._headers.put(raw, header, entry_bytes(raw, header, header[2]))
        return header

    def _reference_event(self, frame: LogGroupFrame, data: bytes, start: int, stop: int, shard_id: int,
                         events: List[bytes]) -> Tuple[Log, int]:
        """The straightforward path for one log: decode it, shape it, append the event. Returns (log, 1 if diverted)."""
        log = decode_log(data, start, stop)
        if self._diverter is not None and looks_flattened_actiontrail(key for key, _ in log.contents):
            event = self._divert(frame, log, shard_id)
            if event is not None:
                events.append(event)
                return log, 1
        events.extend(self.shaper.shape([LogGroup(frame.topic, frame.source, frame.tags, [log])])[0])
        return log, 0

    def _plain_events(self, frame: LogGroupFrame, data: bytes, shard_id: int,
                      events: List[bytes]) -> Tuple[int, int, int]:
        """The plain path for a log group while caching does not pay: ``decode_log`` and the shaper, no cache filled.

        Appends the events to ``events``; returns the newest ``__time__``, the number of events diverted to the
        ActionTrail shaper and the number of logs with an out-of-range ``Time_ns``.
        """
        logs = [decode_log(data, start, stop) for start, stop in frame.log_spans]
        diverted = 0
        run: List[Log] = []  # consecutive logs for the shaper
        for log in logs:
            event = None
            if self._diverter is not None and looks_flattened_actiontrail(key for key, _ in log.contents):
                event = self._divert(frame, log, shard_id)
            if event is None:
                run.append(log)
                continue
            self._shape_uncached(frame, run, events)
            run = []
            events.append(event)
            diverted += 1
        self._shape_uncached(frame, run, events)
        return max(log.time for log in logs), diverted, _count_out_of_range_nanos(logs)

    def _shape_uncached(self, frame: LogGroupFrame, logs: List[Log], events: List[bytes]) -> None:
        if logs:
            events.extend(self.shaper.shape([LogGroup(frame.topic, frame.source, frame.tags, logs)], cache=False)[0])

    def _divert(self, frame: LogGroupFrame, log: Log, shard_id: int) -> Optional[bytes]:
        """The ActionTrail event of a log with flattened ActionTrail keys; None if it holds no record after all."""
        return self._diverter.actiontrail_event(frame, log, shard_id)  # type: ignore[union-attr]

    def _field_time(self, raw: bytes) -> Optional[bytes]:
        """Splunk time text of a time_field value, None when it does not parse (then ``__time__`` is used)."""
        cached = self._field_times.get(raw, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        text = field_time(raw.decode("utf-8", "replace"))
        result = None if text is None else text.encode("ascii")
        if len(raw) <= _MAX_CACHED_FIELD_TIME:
            self._field_times.put(raw, result, entry_bytes(raw, result))
        return result

    # ------------------------------------------------------------------------------------------- rendering

    def _render_group(self, frame: LogGroupFrame) -> Tuple[bytes, Optional[bytes]]:
        """(group tail up to the ``__time__`` value, rendered host or None when it comes from a content)."""
        tail, host = self.shaper.render_group(frame)
        return tail.encode("utf-8"), (None if host is None else host.encode("utf-8"))

    def _template(self, keys: Tuple[str, ...]) -> _Template:
        shaper = self.shaper
        rendered = shaper.template_keys(keys)
        json_positions = shaper.json_positions(keys)
        fields = [key + ':"%s",' for key in rendered]
        for position in json_positions:
            fields[position] = rendered[position] + ":%s,"  # the slot gets embedded JSON or a quoted string
        host_field = shaper.meta.host_field
        host_position = -1
        if not shaper.host_from_group and host_field in keys:
            host_position = keys.index(host_field)  # the first one, as EventShaper does
        time_position = keys.index(self._time_field) if self._time_field and self._time_field in keys else -1
        divert = self._diverter is not None and looks_flattened_actiontrail(keys)
        special = _Special(time_position, divert) if time_position >= 0 or divert else None
        template = _Template(self._template_head + "".join(fields).encode("utf-8") + self._template_end,
                             json_positions, host_position, special)
        self._templates.put(keys, template, entry_bytes(keys, template, template.format, items=keys))
        return template

    def _content_host(self, values: Sequence[bytes], host_position: int) -> bytes:
        if host_position < 0:
            return self._default_host
        raw = values[host_position]
        host = self._hosts.get(raw)
        if host is None:
            host = self.shaper.render_host(raw.decode("utf-8", "replace")).encode("utf-8")
            if len(raw) <= _MAX_CACHED_HOST:
                self._hosts.put(raw, host, entry_bytes(raw, host))
        return host

    def _render_values(self, values: List[bytes], template: _Template) -> List[bytes]:
        """Values of a log that has ``json_fields`` slots or values that need escaping, as they go into the template.

        The slots known to need work are rendered one by one; the other values are checked together, and a position
        found to need escaping joins ``template.escape_positions``, so the next logs of the template (whose values
        tend to look alike: a JSON document in a string, a message with quotes) skip the search.
        """
        render_json = self.shaper.render_json_field
        escape = self._escape_value
        slots = template.json_positions + template.escape_positions
        rendered = [render_json(values[position].decode("utf-8", "replace")).encode("utf-8")
                    for position in template.json_positions]
        rendered += [escape(values[position]) for position in template.escape_positions]
        for position in slots:
            values[position] = b""  # blanked, so that one check over the joined values covers the others
        unsafe = self._unsafe
        joined = b"".join(values)
        if len(joined.translate(None, unsafe)) != len(joined):
            for position, value in enumerate(values):
                if len(value.translate(None, unsafe)) != len(value):
                    values[position] = escape(value)
                    if position not in template.escape_positions:
                        template.escape_positions += (position,)
        for position, text in zip(slots, rendered):
            values[position] = text
        return values

    def _escape_value(self, value: bytes) -> bytes:
        """A plain value as it goes between its quotes (any value: a clean one comes back unchanged)."""
        if len(value.translate(None, _HARD_BYTES)) == len(value):
            # ASCII without control characters: JSON only escapes " and \ in it, so bytes.replace does it without a
            # decode and encode (json.dumps writes exactly these two escapes for them).
            value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
            if self._stream:
                value = value.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
            return value
        return self.shaper.render_value(value.decode("utf-8", "replace")).encode("utf-8")


def make_transcode(shaper: EventShaper, decode: Callable[[bytes], list]) -> Callable[..., Events]:
    """The pipeline's decode-and-shape step: ``(data, shard_id=0, cursor="") -> (events, newest)``.

    Arguments:
        shaper: The input's shaper (tests may pass a stand-in).
        decode: The LogGroupList decoder (tests may pass a stand-in).

    Returns:
        ``Transcoder(shaper).transcode`` for the real decoder and an EventShaper, else ``shaper.shape(decode(data))``
        (which has no use for where the data came from).
    """
    if decode is decode_log_group_list and isinstance(shaper, EventShaper):
        return Transcoder(shaper).transcode

    def decode_and_shape(data: bytes, shard_id: int = 0, cursor: str = "") -> Events:
        return shaper.shape(decode(data))

    return decode_and_shape


class RoutingShaper:
    """The straightforward definition of routed output: decoded log groups -> events, one shaper per route.

    Arguments:
        shaper: The input's EventShaper; its metadata is copied for each route with that route's sourcetype.
        router: The input's router.
    """

    def __init__(self, shaper: EventShaper, router: Router) -> None:
        self.router = router
        base = shaper.meta
        self.shapers: Dict[Route, EventShaper] = {
            route: EventShaper(replace(base, sourcetype=route.sourcetype, time_field=route.time_field), shaper.fmt)
            for route in router.routes() if route.body == GENERIC}
        self.actiontrail = ActionTrailShaper(replace(base, sourcetype=ACTIONTRAIL_ROUTE.sourcetype), shaper.fmt,
                                             router.project, router.logstore)
        self._default = router.default
        self._default_shaper = self.shapers[self._default]

    def shape(self, groups: Iterable[LogGroup], shard_id: int) -> Transcoded:
        """Every log of ``groups`` as an event of its route; newest ``__time__``; events per sourcetype."""
        events: List[bytes] = []
        counts: Dict[str, int] = {}
        newest = 0
        for group in groups:
            if not group.logs:
                continue
            newest = max(newest, max(log.time for log in group.logs))
            route = self.router.route(group.topic)
            if route.body == ACTIONTRAIL:
                self.actiontrail_events(group, group.logs, shard_id, events, counts)
                continue
            for log in group.logs:
                event = None
                if route is self._default and looks_flattened_actiontrail(key for key, _ in log.contents):
                    event = self.actiontrail_event(group, log, shard_id)
                if event is not None:
                    sourcetype = self.actiontrail.sourcetype
                else:
                    event = self.shapers[route].shape([LogGroup(group.topic, group.source, group.tags, [log])])[0][0]
                    sourcetype = route.sourcetype
                events.append(event)
                counts[sourcetype] = counts.get(sourcetype, 0) + 1
        return events, newest, counts

    def actiontrail_events(self, group: "LogGroup | LogGroupFrame", logs: Iterable[Log], shard_id: int,
                           events: List[bytes], counts: Dict[str, int]) -> int:
        """Append the events of an ActionTrail group's logs (generic ``aliyun:sls`` for a log without a record).

        Returns:
            The newest ``__time__`` of the logs.
        """
        shared = self.actiontrail.group(group.topic, group.source, group.tags, shard_id)
        newest = 0
        normalised = fallback = 0
        for log in logs:
            if log.time > newest:
                newest = log.time
            event = self.actiontrail.event(shared, log.time, log.time_ns, log.contents)
            if event is None:
                event = self._default_shaper.shape([LogGroup(group.topic, group.source, group.tags, [log])])[0][0]
                fallback += 1
            else:
                normalised += 1
            events.append(event)
        for sourcetype, count in ((self.actiontrail.sourcetype, normalised), (self._default.sourcetype, fallback)):
            if count:
                counts[sourcetype] = counts.get(sourcetype, 0) + count
        return newest

    def actiontrail_event(self, group: "LogGroup | LogGroupFrame", log: Log, shard_id: int) -> Optional[bytes]:
        """One log of a generic group as an ActionTrail event, or None when it holds no record."""
        shared = self.actiontrail.group(group.topic, group.source, group.tags, shard_id)
        return self.actiontrail.event(shared, log.time, log.time_ns, log.contents)


class RoutingTranscoder:
    """Routed events from PullLogs bodies, byte for byte those of ``RoutingShaper`` on the decoded groups.

    Runs of consecutive groups of one generic route go through that route's fused ``Transcoder``; ActionTrail
    groups are decoded log by log (their JSON is parsed and written again anyway). Thread-safe like Transcoder.
    """

    def __init__(self, shaper: EventShaper, router: Router) -> None:
        self.reference = RoutingShaper(shaper, router)
        self._route = router.route
        self._default = router.default
        self._transcoders = {
            route: Transcoder(route_shaper, self.reference if route is router.default else None)
            for route, route_shaper in self.reference.shapers.items()}
        # ActionTrail keys, decoded once; bounded by sls.decoder (emptied when full).
        self._key_cache: Dict[bytes, str] = {}
        self._out_of_range_nanos = OutOfRangeNanos()

    @property
    def cache_bytes(self) -> int:
        """Estimated bytes held by the caches of the routes' Transcoders."""
        return sum(transcoder.cache_bytes for transcoder in self._transcoders.values())

    def transcode(self, data: bytes, shard_id: int, cursor: str = "") -> Transcoded:
        """Routed events of a LogGroupList, as ``self.reference.shape(decode_log_group_list(data), shard_id)``.

        ``cursor`` (where the data was pulled, "" when unknown) only goes into the log line about out-of-range
        ``Time_ns``.

        Raises:
            DecodeError: The bytes are not a well-formed LogGroupList.
        """
        if not isinstance(data, bytes):
            data = bytes(data)
        try:
            events, newest, counts, out_of_range = self._transcode(data, shard_id)
        except (DecodeError, IndexError):
            groups = decode_log_group_list(data)
            out_of_range = _count_out_of_range_nanos(log for group in groups for log in group.logs)
            events, newest, counts = self.reference.shape(groups, shard_id)
        self._out_of_range_nanos.found(shard_id, cursor, out_of_range)
        return events, newest, counts

    def _transcode(self, data: bytes, shard_id: int) -> Tuple[List[bytes], int, Dict[str, int], int]:
        """Events, newest ``__time__``, events per sourcetype and logs with out-of-range ``Time_ns``."""
        events: List[bytes] = []
        counts: Dict[str, int] = {}
        newest = 0
        out_of_range = 0
        run: List[LogGroupFrame] = []
        run_route = self._default
        for frame in iter_log_group_frames(data):
            if not frame.log_spans:
                continue
            route = self._route(frame.topic)
            if route is not run_route and run:
                run_newest, run_out_of_range = self._run(data, run, run_route, shard_id, events, counts)
                newest = max(newest, run_newest)
                out_of_range += run_out_of_range
                run = []
            run_route = route
            run.append(frame)
        if run:
            run_newest, run_out_of_range = self._run(data, run, run_route, shard_id, events, counts)
            newest = max(newest, run_newest)
            out_of_range += run_out_of_range
        return events, newest, counts, out_of_range

    def _run(self, data: bytes, frames: List[LogGroupFrame], route: Route, shard_id: int, events: List[bytes],
             counts: Dict[str, int]) -> Tuple[int, int]:
        """Append the events of consecutive groups of one route; return their newest ``__time__`` and how many of
        their logs have an out-of-range ``Time_ns``."""
        if route.body == ACTIONTRAIL:
            newest = out_of_range = 0
            key_cache = self._key_cache
            for frame in frames:
                logs = [decode_log(data, start, stop, key_cache) for start, stop in frame.log_spans]
                out_of_range += _count_out_of_range_nanos(logs)
                newest = max(newest, self.reference.actiontrail_events(frame, logs, shard_id, events, counts))
            return newest, out_of_range
        result = self._transcoders[route].transcode_frames(data, frames, shard_id)
        events.extend(result.events)
        for sourcetype, count in ((route.sourcetype, len(result.events) - result.diverted),
                                  (self.reference.actiontrail.sourcetype, result.diverted)):
            if count:  # a run whose logs were all diverted has no events of its own route
                counts[sourcetype] = counts.get(sourcetype, 0) + count
        return result.newest, result.out_of_range_nanos


def make_batch_transcode(shaper: EventShaper, decode: Callable[[bytes], list],
                         router: Optional[Router] = None) -> Callable[..., Transcoded]:
    """The pipeline's per-pull step: (LogGroupList bytes, shard id, cursor="") -> (events, newest, per sourcetype).

    The cursor the data was pulled at only goes into the log line about out-of-range ``Time_ns``.

    Arguments:
        shaper: The input's shaper (tests may pass a stand-in when there is no router).
        decode: The LogGroupList decoder (tests may pass a stand-in).
        router: The input's router when its sourcetype is ``auto``; None sends every log to ``shaper``, unchanged.
    """
    if router is None:
        transcode = make_transcode(shaper, decode)

        def unrouted(data: bytes, shard_id: int, cursor: str = "") -> Transcoded:
            events, newest = transcode(data, shard_id, cursor)
            return events, newest, None

        return unrouted
    if decode is decode_log_group_list:
        return RoutingTranscoder(shaper, router).transcode
    reference = RoutingShaper(shaper, router)

    def decode_and_route(data: bytes, shard_id: int, cursor: str = "") -> Transcoded:
        return reference.shape(decode(data), shard_id)

    return decode_and_route
