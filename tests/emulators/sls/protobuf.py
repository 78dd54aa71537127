"""A tiny hand-written protobuf writer and reader for the SLS LogGroup messages.

Only the wire format the SLS log model needs (proto2, see ``aliyun/log/log_logs_raw.proto``)::

    Log          { uint32 Time = 1; repeated Content Contents = 2; fixed32 Time_ns = 4; }
    Log.Content  { string Key = 1; bytes Value = 2; }
    LogTag       { string Key = 1; string Value = 2; }
    LogGroup     { repeated Log Logs = 1; string Topic = 3; string Source = 4; repeated LogTag LogTags = 6; }
    LogGroupList { repeated LogGroup LogGroups = 1; }

Writing by hand keeps data generation fast (the benchmark loads hundreds of megabytes) and lets the
server build pull responses without a protobuf library.
"""

from __future__ import annotations

import struct
from typing import Iterable, List, NamedTuple, Sequence, Tuple, Union

Text = Union[str, bytes]

_TAG_LOG_TIME = b"\x08"  # field 1, varint
_TAG_LOG_CONTENT = b"\x12"  # field 2, length-delimited
_TAG_LOG_TIME_NS = b"\x25"  # field 4, fixed32
_TAG_KEY = b"\x0a"  # field 1, length-delimited
_TAG_VALUE = b"\x12"  # field 2, length-delimited
_TAG_GROUP_LOG = b"\x0a"  # LogGroup.Logs, field 1
_TAG_GROUP_TOPIC = b"\x1a"  # field 3
_TAG_GROUP_SOURCE = b"\x22"  # field 4
_TAG_GROUP_TAG = b"\x32"  # field 6
_TAG_LIST_GROUP = b"\x0a"  # LogGroupList.LogGroups, field 1

_FIXED32 = struct.Struct("<I")


class ProtobufError(ValueError):
    """Raised when bytes are not a well-formed protobuf message."""


def varint(value: int) -> bytes:
    """Encode a non-negative integer as a protobuf varint.

    Arguments:
        value: the integer, >= 0.

    Returns:
        The varint bytes.
    """
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _as_bytes(text: Text) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def encode_pair(key: Text, value: Text) -> bytes:
    """Encode a Content or LogTag message body (Key = 1, Value = 2)."""
    key_bytes = _as_bytes(key)
    value_bytes = _as_bytes(value)
    return (_TAG_KEY + varint(len(key_bytes)) + key_bytes
            + _TAG_VALUE + varint(len(value_bytes)) + value_bytes)


def encode_log(time: int, contents: Iterable[Tuple[Text, Text]], time_ns: int = 0) -> bytes:
    """Encode one Log message.

    Arguments:
        time: unix seconds.
        contents: (key, value) pairs in wire order; bytes values are written as they are (may be non-UTF-8).
        time_ns: nanosecond part 0..999999999; 0 leaves the optional field out.

    Returns:
        The serialized Log message (without its LogGroup field header).
    """
    parts = [_TAG_LOG_TIME, varint(time)]
    for key, value in contents:
        parts.append(_field(_TAG_LOG_CONTENT, encode_pair(key, value)))
    if time_ns:
        parts.append(_TAG_LOG_TIME_NS + _FIXED32.pack(time_ns))
    return b"".join(parts)


def encode_log_group(logs: Sequence[bytes], topic: Text = "", source: Text = "",
                     tags: Iterable[Tuple[Text, Text]] = ()) -> bytes:
    """Encode a LogGroup from already encoded Log messages.

    Arguments:
        logs: serialized Log messages (see ``encode_log``).
        topic: LogGroup.Topic ("" leaves it out).
        source: LogGroup.Source ("" leaves it out).
        tags: LogTags as (key, value), without the ``__tag__:`` prefix.

    Returns:
        The serialized LogGroup.
    """
    parts = [_field(_TAG_GROUP_LOG, log) for log in logs]
    if topic:
        parts.append(_field(_TAG_GROUP_TOPIC, _as_bytes(topic)))
    if source:
        parts.append(_field(_TAG_GROUP_SOURCE, _as_bytes(source)))
    for key, value in tags:
        parts.append(_field(_TAG_GROUP_TAG, encode_pair(key, value)))
    return b"".join(parts)


def encode_log_group_list(groups: Iterable[bytes]) -> bytes:
    """Wrap serialized LogGroups into a LogGroupList (the PullLogs response body)."""
    return b"".join(_field(_TAG_LIST_GROUP, group) for group in groups)


def _read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    result = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def iter_fields(data: bytes) -> Iterable[Tuple[int, int, Union[int, bytes]]]:
    """Yield (field number, wire type, value) for each field of a message.

    Raises:
        ProtobufError: the bytes are not a well-formed message.
    """
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire_type == 0:
            value, pos = _read_varint(data, pos)
            yield number, wire_type, value
        elif wire_type == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > end:
                raise ProtobufError("truncated length-delimited field")
            yield number, wire_type, data[pos:pos + length]
            pos += length
        elif wire_type == 5:
            if pos + 4 > end:
                raise ProtobufError("truncated fixed32")
            yield number, wire_type, _FIXED32.unpack_from(data, pos)[0]
            pos += 4
        elif wire_type == 1:
            if pos + 8 > end:
                raise ProtobufError("truncated fixed64")
            yield number, wire_type, data[pos:pos + 8]
            pos += 8
        else:
            raise ProtobufError("unsupported wire type %d" % wire_type)


def count_logs(log_group: bytes) -> int:
    """Validate the top level of a LogGroup and return how many Logs it holds.

    Raises:
        ProtobufError: the bytes are not a LogGroup.
    """
    count = 0
    for number, wire_type, _ in iter_fields(log_group):
        if number == 1:
            if wire_type != 2:
                raise ProtobufError("LogGroup.Logs must be length-delimited")
            count += 1
    return count


class DecodedLog(NamedTuple):
    """One Log as decoded by ``decode_log_group`` (values stay bytes)."""

    time: int
    time_ns: int
    contents: List[Tuple[bytes, bytes]]


class DecodedLogGroup(NamedTuple):
    """One LogGroup as decoded by ``decode_log_group``."""

    topic: bytes
    source: bytes
    tags: List[Tuple[bytes, bytes]]
    logs: List[DecodedLog]


def _decode_pair(data: bytes) -> Tuple[bytes, bytes]:
    key = value = b""
    for number, _, field_value in iter_fields(data):
        if number == 1:
            key = field_value  # type: ignore[assignment]
        elif number == 2:
            value = field_value  # type: ignore[assignment]
    return key, value


def decode_log_group(data: bytes) -> DecodedLogGroup:
    """Decode a LogGroup fully (used by tests and by the emulator's own checks)."""
    topic = source = b""
    tags: List[Tuple[bytes, bytes]] = []
    logs: List[DecodedLog] = []
    for number, _, value in iter_fields(data):
        if number == 1:
            time = time_ns = 0
            contents: List[Tuple[bytes, bytes]] = []
            for log_number, _, log_value in iter_fields(value):  # type: ignore[arg-type]
                if log_number == 1:
                    time = log_value  # type: ignore[assignment]
                elif log_number == 2:
                    contents.append(_decode_pair(log_value))  # type: ignore[arg-type]
                elif log_number == 4:
                    time_ns = log_value  # type: ignore[assignment]
            logs.append(DecodedLog(time, time_ns, contents))
        elif number == 3:
            topic = value  # type: ignore[assignment]
        elif number == 4:
            source = value  # type: ignore[assignment]
        elif number == 6:
            tags.append(_decode_pair(value))  # type: ignore[arg-type]
    return DecodedLogGroup(topic, source, tags, logs)


def decode_log_group_list(data: bytes) -> List[bytes]:
    """Split a LogGroupList into its serialized LogGroups."""
    return [value for number, _, value in iter_fields(data) if number == 1]  # type: ignore[misc]
