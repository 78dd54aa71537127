"""sls/decoder.py: property test against the SDK's protobuf classes, plus the edge cases protobuf cannot build."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aliyun.log.log_logs_raw_pb2 import LogGroupListRaw
from sls_forwarder.errors import PermanentError
from sls_forwarder.sls.decoder import DecodeError, Log, LogGroup, decode_log, decode_log_group_list

# ---------------------------------------------------------------------------------------------- helpers


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number, payload):
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def pair(key, value):
    return field(1, key) + field(2, value)


def log_bytes(time, contents, time_ns=None):
    body = b"\x08" + varint(time) + b"".join(field(2, pair(k, v)) for k, v in contents)
    if time_ns is not None:
        body += b"\x25" + time_ns.to_bytes(4, "little")
    return body


def group_list(*groups):
    return b"".join(field(1, g) for g in groups)


# ------------------------------------------------------------------------------------ property vs protobuf

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
# Values mix valid UTF-8, random bytes (often invalid UTF-8) and lengths that need 2- and 3-byte varints.
values = st.one_of(
    texts.map(lambda s: s.encode("utf-8")),
    st.binary(max_size=40),
    st.binary(min_size=120, max_size=300),
    st.integers(min_value=16_000, max_value=20_000).map(lambda n: b"x" * n),
)
contents = st.lists(st.tuples(texts, values), max_size=8)
logs = st.lists(
    st.tuples(st.integers(min_value=0, max_value=2**32 - 1), contents,
              st.one_of(st.none(), st.integers(min_value=0, max_value=999_999_999))),
    max_size=5,
)
groups = st.lists(
    st.tuples(st.one_of(st.none(), texts), st.one_of(st.none(), texts), st.lists(st.tuples(texts, texts), max_size=3),
              logs, st.one_of(st.none(), texts), st.one_of(st.none(), texts)),
    max_size=4,
)


def build_pb(group_specs):
    message = LogGroupListRaw()
    for topic, source, tags, log_specs, reserved, machine_uuid in group_specs:
        group = message.LogGroups.add()
        for time, pairs, time_ns in log_specs:
            log = group.Logs.add()
            log.Time = time
            if time_ns is not None:
                log.Time_ns = time_ns
            for key, value in pairs:
                content = log.Contents.add()
                content.Key = key
                content.Value = value
        for key, value in tags:
            tag = group.LogTags.add()
            tag.Key = key
            tag.Value = value
        if topic is not None:
            group.Topic = topic
        if source is not None:
            group.Source = source
        if reserved is not None:
            group.Reserved = reserved
        if machine_uuid is not None:
            group.MachineUUID = machine_uuid
    return message


def expected_from_pb(message):
    """What the decoder must return, read field by field from the protobuf parse."""
    return [
        LogGroup(
            topic=g.Topic,
            source=g.Source,
            tags=[(t.Key, t.Value) for t in g.LogTags],
            logs=[
                Log(time=log.Time, time_ns=log.Time_ns,
                    contents=[(c.Key, c.Value.decode("utf-8", "replace")) for c in log.Contents])
                for log in g.Logs
            ],
        )
        for g in message.LogGroups
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(group_specs=groups)
def test_matches_protobuf_parse(group_specs):
    data = build_pb(group_specs).SerializeToString()
    parsed = LogGroupListRaw()
    parsed.ParseFromString(data)
    decoded = decode_log_group_list(data)
    assert decoded == expected_from_pb(parsed)
    for group in decoded:  # types, not only equality (NamedTuple == tuple)
        assert isinstance(group, LogGroup)
        assert all(isinstance(log, Log) for log in group.logs)


# ---------------------------------------------------------------------------------------------- edge cases


def test_empty_body_gives_no_groups():
    assert decode_log_group_list(b"") == []


def test_accepts_bytearray_and_memoryview():
    data = group_list(field(1, log_bytes(1, [(b"k", b"v")])))
    expected = [LogGroup("", "", [], [Log(1, 0, [("k", "v")])])]
    assert decode_log_group_list(bytearray(data)) == expected
    assert decode_log_group_list(memoryview(data)) == expected


def test_empty_group_and_empty_log():
    data = group_list(b"", field(1, b""))
    assert decode_log_group_list(data) == [LogGroup("", "", [], []), LogGroup("", "", [], [Log(0, 0, [])])]


def test_empty_content_message_at_the_very_end():
    # A Content with neither key nor value is valid protobuf; it decodes to ("", "").
    data = group_list(field(1, b"\x08\x01" + field(2, b"")))
    assert decode_log_group_list(data) == [LogGroup("", "", [], [Log(1, 0, [("", "")])])]


def test_non_utf8_everywhere_becomes_replacement_characters():
    bad = b"\xff\xfeabc\xc3"
    group = (field(1, log_bytes(5, [(bad, bad)], time_ns=7)) + field(3, bad) + field(4, bad)
             + field(6, pair(bad, bad)))
    replaced = "\ufffd\ufffdabc\ufffd"
    assert bad.decode("utf-8", "replace") == replaced
    assert decode_log_group_list(group_list(group)) == [
        LogGroup(replaced, replaced, [(replaced, replaced)], [Log(5, 7, [(replaced, replaced)])])
    ]


def test_duplicate_keys_and_wire_order_are_kept():
    data = group_list(field(1, log_bytes(1, [(b"b", b"1"), (b"a", b"2"), (b"b", b"3")])))
    assert decode_log_group_list(data)[0].logs[0].contents == [("b", "1"), ("a", "2"), ("b", "3")]


def test_huge_value_of_ten_megabytes():
    value = bytes(range(32, 127)) * (10 * 1024 * 1024 // 95)
    data = group_list(field(1, log_bytes(1700000000, [(b"big", value), (b"small", b"x")], time_ns=999_999_999)))
    (group,) = decode_log_group_list(data)
    assert group.logs[0].contents == [("big", value.decode("ascii")), ("small", "x")]
    assert group.logs[0].time_ns == 999_999_999


def test_unknown_fields_of_every_wire_type_are_skipped():
    unknown = (varint(9 << 3 | 0) + varint(300) + varint(10 << 3 | 1) + b"\x00" * 8
               + field(11, b"junk") + varint(12 << 3 | 5) + b"\x01\x02\x03\x04")
    content = b"\x12" + varint(len(unknown + pair(b"k", b"v"))) + unknown + pair(b"k", b"v")
    log = b"\x08\x02" + unknown + content + b"\x25\x05\x00\x00\x00"
    group = unknown + field(1, log) + field(2, b"reserved") + field(5, b"machine-uuid") + field(3, b"t")
    data = unknown + group_list(group) + unknown
    assert decode_log_group_list(data) == [LogGroup("t", "", [], [Log(2, 5, [("k", "v")])])]


def test_fields_in_unusual_order_and_value_before_key():
    content = field(2, b"v") + field(1, b"k")
    log = b"\x25\x01\x00\x00\x00" + b"\x12" + varint(len(content)) + content + b"\x08\x03"
    data = group_list(field(6, pair(b"tk", b"tv")) + field(4, b"src") + field(1, log))
    assert decode_log_group_list(data) == [LogGroup("", "src", [("tk", "tv")], [Log(3, 1, [("k", "v")])])]


def test_long_keys_take_the_general_path():
    key = b"k" * 200
    data = group_list(field(1, log_bytes(1, [(key, b"v"), (b"short", b"w" * 130)])))
    assert decode_log_group_list(data)[0].logs[0].contents == [("k" * 200, "v"), ("short", "w" * 130)]


def test_out_of_range_nanoseconds_are_passed_on_as_they_came():
    data = group_list(field(1, log_bytes(1_700_000_011, [(b"k", b"v")], time_ns=1_100_000_000)))
    assert decode_log_group_list(data)[0].logs[0].time_ns == 1_100_000_000


def test_a_shared_key_cache_stays_bounded_and_keeps_caching_after_unique_keys():
    """A key cache kept across batches (the ActionTrail route's) neither grows without bound nor freezes when full."""
    key_cache = {}
    for n in range(3):
        log = log_bytes(1, [(b"unique_%d_%d" % (n, k), b"v") for k in range(3000)])
        decode_log(log, 0, len(log), key_cache)
        assert len(key_cache) <= 4096
    log = log_bytes(1, [(b"eventName", b"v")])
    assert decode_log(log, 0, len(log), key_cache).contents == [("eventName", "v")]
    assert key_cache.get(b"eventName") == "eventName"


@pytest.mark.parametrize("cut", [1, 2, 5, 17, 30])
def test_truncated_input_raises_decode_error(cut):
    data = group_list(field(1, log_bytes(1700000000, [(b"key", b"value" * 3)], time_ns=1)) + field(3, b"topic"))
    with pytest.raises(DecodeError) as info:
        decode_log_group_list(data[: len(data) - cut])
    assert isinstance(info.value, PermanentError)
    assert info.value.code == "BadLogGroupList"


def test_length_past_the_message_raises():
    log = b"\x08\x01\x12\x7f\x0a\x01k"  # Content claims 127 bytes inside a 7-byte Log
    with pytest.raises(DecodeError):
        decode_log_group_list(group_list(field(1, log)))


def test_group_wire_type_is_rejected():
    with pytest.raises(DecodeError):
        decode_log_group_list(varint(7 << 3 | 3))
