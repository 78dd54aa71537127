"""Decode a PullLogs body (protobuf ``LogGroupList``) into LogGroup/Log tuples. Pure Python, written for speed.

Schema (aliyun/log/log_logs.proto, proto2)::

    LogGroupList { repeated LogGroup LogGroups = 1; }
    LogGroup     { repeated Log Logs = 1; optional string Reserved = 2; optional string Topic = 3;
                   optional string Source = 4; optional string MachineUUID = 5; repeated LogTag LogTags = 6; }
    Log          { required uint32 Time = 1; repeated Content Contents = 2; optional fixed32 Time_ns = 4; }
    Content, LogTag { required string Key = 1; required string Value = 2; }

The hot loop is the Content fast path in ``decode_log``: one-byte tags and key length, a one- or two-byte value
length, no per-byte Python loop, keys decoded once per distinct byte string. Anything else (unusual field order,
unknown fields, long keys) falls back to the general field-by-field path, which decodes the same result.

``iter_log_group_frames`` and ``decode_log`` are the two halves of ``decode_log_group_list``; the fused transcoder
(``sls_forwarder.transcode``) uses them to read the group-level fields and to decode the logs its fast path declines.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

from ..errors import PermanentError

__all__ = ["Log", "LogGroup", "LogGroupFrame", "DecodeError", "decode_log", "decode_log_group_list",
           "iter_log_group_frames"]


class Log(NamedTuple):
    time: int  # unix seconds
    time_ns: int  # as on the wire: 0..999_999_999 by the spec, but larger values occur; 0 when absent
    contents: List[Tuple[str, str]]  # wire order, duplicates kept


class LogGroup(NamedTuple):
    topic: str
    source: str
    tags: List[Tuple[str, str]]  # LogTags in wire order
    logs: List[Log]


class LogGroupFrame(NamedTuple):
    """A LogGroup with its group-level fields decoded and its logs left undecoded."""

    topic: str
    source: str
    tags: List[Tuple[str, str]]  # LogTags in wire order
    log_spans: List[Tuple[int, int]]  # (start, stop) of each Log message in the LogGroupList bytes, wire order


class DecodeError(PermanentError):
    """The bytes are not a well-formed LogGroupList."""


# Wire types.
_VARINT, _FIXED64, _LENGTH_DELIMITED, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5

# Keys the fast path caches are shorter than 128 bytes, so this count bounds a key cache's bytes too (under 2 MB).
# A full cache is emptied: keys that repeat come back at once, keys that never repeat do not pile up.
_KEY_CACHE_LIMIT = 4096


def _read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    """Return (value, position after the varint) for the varint starting at ``pos``."""
    result = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise DecodeError("varint longer than 10 bytes at offset %d" % pos, code="BadLogGroupList")


def _read_length(data: bytes, pos: int, end: int) -> Tuple[int, int]:
    """Read a length prefix at ``pos``; return (start, stop) of the payload, checked against ``end``."""
    length = data[pos]
    if length < 0x80:
        pos += 1
    else:
        length, pos = _read_varint(data, pos)
    stop = pos + length
    if stop > end:
        raise DecodeError("field of %d bytes at offset %d runs past its message" % (length, pos), code="BadLogGroupList")
    return pos, stop


def _skip_field(data: bytes, pos: int, end: int, wire_type: int) -> int:
    """Skip the payload of a field of ``wire_type`` whose tag ended at ``pos``; return the next position."""
    if wire_type == _VARINT:
        return _read_varint(data, pos)[1]
    if wire_type == _LENGTH_DELIMITED:
        return _read_length(data, pos, end)[1]
    if wire_type == _FIXED32:
        return pos + 4
    if wire_type == _FIXED64:
        return pos + 8
    raise DecodeError("unsupported protobuf wire type %d at offset %d" % (wire_type, pos), code="BadLogGroupList")


def _decode_text(data: bytes, start: int, stop: int) -> str:
    return data[start:stop].decode("utf-8", "replace")


def _decode_pair(data: bytes, pos: int, end: int) -> Tuple[str, str]:
    """Decode a Content or LogTag message (Key = 1, Value = 2) field by field; unknown fields are skipped."""
    key = value = ""
    while pos < end:
        tag, pos = _read_varint(data, pos)
        field, wire_type = tag >> 3, tag & 7
        if wire_type == _LENGTH_DELIMITED and field in (1, 2):
            start, pos = _read_length(data, pos, end)
            if field == 1:
                key = _decode_text(data, start, pos)
            else:
                value = _decode_text(data, start, pos)
        else:
            pos = _skip_field(data, pos, end, wire_type)
    if pos != end:
        raise DecodeError("key/value message overruns its length at offset %d" % pos, code="BadLogGroupList")
    return key, value


def decode_log(data: bytes, pos: int, end: int, key_cache: Optional[Dict[bytes, str]] = None) -> Log:
    """Decode one Log message.

    Arguments:
        data: The LogGroupList bytes.
        pos: Start of the Log message (as in ``LogGroupFrame.log_spans``).
        end: End of the Log message.
        key_cache: Decoded keys by their raw bytes, shared across calls of one batch; None for a private one.

    Returns:
        The Log.

    Raises:
        DecodeError: The message is malformed (may also raise IndexError on truncation; callers convert it).
    """
    if key_cache is None:
        key_cache = {}
    time = time_ns = 0
    contents: List[Tuple[str, str]] = []
    append = contents.append
    while pos < end:
        tag = data[pos]
        if tag == 0x12:  # Contents, length-delimited
            size = data[pos + 1]
            if size < 0x80:
                pos += 2
            else:
                size, pos = _read_varint(data, pos + 1)
            stop = pos + size
            # Fast path: 0x0a <1-byte key length> key 0x12 <value length> value, exactly filling the Content.
            if size > 3 and data[pos] == 0x0A and data[pos + 1] < 0x80:
                key_stop = pos + 2 + data[pos + 1]
                if key_stop < stop and data[key_stop] == 0x12:
                    value_size = data[key_stop + 1]
                    value_start = key_stop + 2
                    if value_size >= 0x80:
                        value_size, value_start = _read_varint(data, key_stop + 1)
                    if value_start + value_size == stop:
                        raw_key = data[pos + 2 : key_stop]
                        key = key_cache.get(raw_key)
                        if key is None:
                            key = raw_key.decode("utf-8", "replace")
                            if len(key_cache) >= _KEY_CACHE_LIMIT:
                                key_cache.clear()
                            key_cache[raw_key] = key
                        append((key, data[value_start:stop].decode("utf-8", "replace")))
                        pos = stop
                        continue
            if stop > end:
                raise DecodeError("Content runs past its Log at offset %d" % pos, code="BadLogGroupList")
            append(_decode_pair(data, pos, stop))
            pos = stop
        elif tag == 0x08:  # Time, varint (5 bytes for current dates)
            time, pos = _read_varint(data, pos + 1)
        elif tag == 0x25:  # Time_ns, fixed32 little-endian
            time_ns = int.from_bytes(data[pos + 1 : pos + 5], "little")
            pos += 5
        else:
            tag, pos = _read_varint(data, pos)
            pos = _skip_field(data, pos, end, tag & 7)
    if pos != end:
        raise DecodeError("Log overruns its length at offset %d" % pos, code="BadLogGroupList")
    return Log(time, time_ns, contents)


def _scan_group(data: bytes, pos: int, end: int) -> LogGroupFrame:
    """Read the LogGroup occupying ``data[pos:end]``: decode topic, source and tags; record where each Log is."""
    topic = source = ""
    tags: List[Tuple[str, str]] = []
    log_spans: List[Tuple[int, int]] = []
    append_span = log_spans.append
    while pos < end:
        if data[pos] == 0x0A:
            # Logs, nearly every field of a group: the tag and a length of up to two bytes are read inline.
            size = data[pos + 1]
            start = pos + 2
            if size >= 0x80:
                high = data[pos + 2]
                if high >= 0x80:
                    size, start = _read_varint(data, pos + 1)
                else:
                    size = (size & 0x7F) | high << 7
                    start = pos + 3
            pos = start + size
            if pos > end:
                raise DecodeError("Log runs past its LogGroup at offset %d" % start, code="BadLogGroupList")
            append_span((start, pos))
            continue
        tag, pos = _read_varint(data, pos)
        field, wire_type = tag >> 3, tag & 7
        if wire_type != _LENGTH_DELIMITED or field not in (1, 3, 4, 6):
            # Reserved (2), MachineUUID (5) and unknown fields are not part of an event.
            pos = _skip_field(data, pos, end, wire_type)
            continue
        start, pos = _read_length(data, pos, end)
        if field == 1:
            log_spans.append((start, pos))
        elif field == 3:
            topic = _decode_text(data, start, pos)
        elif field == 4:
            source = _decode_text(data, start, pos)
        else:
            tags.append(_decode_pair(data, start, pos))
    if pos != end:
        raise DecodeError("LogGroup overruns its length at offset %d" % pos, code="BadLogGroupList")
    return LogGroupFrame(topic, source, tags, log_spans)


def iter_log_group_frames(data: bytes) -> Iterator[LogGroupFrame]:
    """Yield each LogGroup of a LogGroupList with its logs left undecoded (see ``decode_log``).

    Arguments:
        data: The LogGroupList bytes (``bytes``; b"" yields nothing).

    Raises:
        DecodeError: The group-level structure is malformed. Truncation may surface as IndexError; callers that
            need a DecodeError convert it, as ``decode_log_group_list`` does.
    """
    pos = 0
    end = len(data)
    while pos < end:
        tag, pos = _read_varint(data, pos)
        if tag == 0x0A:
            start, pos = _read_length(data, pos, end)
            yield _scan_group(data, start, pos)
        else:
            pos = _skip_field(data, pos, end, tag & 7)
    if pos != end:
        raise DecodeError("LogGroupList is truncated (%d bytes)" % end, code="BadLogGroupList")


def decode_log_group_list(data: bytes) -> List[LogGroup]:
    """Decode a serialized LogGroupList (the uncompressed PullLogs body).

    Arguments:
        data: The LogGroupList bytes; b"" gives [].

    Returns:
        The log groups in wire order. Strings are UTF-8 decoded with errors="replace".

    Raises:
        DecodeError: The bytes are truncated or not a LogGroupList.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    key_cache: Dict[bytes, str] = {}
    try:
        return [
            LogGroup(frame.topic, frame.source, frame.tags,
                     [decode_log(data, start, stop, key_cache) for start, stop in frame.log_spans])
            for frame in iter_log_group_frames(data)
        ]
    except IndexError:
        raise DecodeError("LogGroupList is truncated (%d bytes)" % len(data), code="BadLogGroupList") from None
