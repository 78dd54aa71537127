"""transcode.py: the fused path gives byte for byte the events of the straightforward path (also when routed).

Two references: ``EventShaper.shape(decode_log_group_list(data))`` (the decoder and shaper the fused path replaces)
and the plain ``json.dumps`` reference of tests/unit/splunk/test_events.py applied to the decoded groups. Inputs: the
emulator's generated data sets, random LogGroupLists (hypothesis) and hand-made unusual wire layouts.
"""

from __future__ import annotations

import itertools
import json
import logging
import tracemalloc
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sls_forwarder import transcode as transcode_module
from sls_forwarder.sls.decoder import DecodeError, decode_log_group_list, iter_log_group_frames
from sls_forwarder.splunk.events import EventMeta, EventShaper
from sls_forwarder.routing import Router
from sls_forwarder.splunk.timefields import field_time
from sls_forwarder.transcode import (CACHE_BUDGET_BYTES, OutOfRangeNanos, RoutingShaper, RoutingTranscoder,
                                     Transcoded, Transcoder, make_batch_transcode, make_transcode)
from tests.emulators.sls import datagen
from tests.emulators.sls.protobuf import encode_log, encode_log_group, encode_log_group_list, varint
from tests.unit.splunk.test_events import reference_shape

Text = Union[str, bytes]

HOST_FIELDS = ("__source__", "__topic__", "__tag__:__hostname__", "event_id", "client_ip", "missing")


def meta(stanza: str = "aliyun_sls://in1", json_fields: Tuple[str, ...] = (), host_field: str = "__source__",
         **overrides: str) -> EventMeta:
    values = dict(index="main", sourcetype="aliyun:sls", source="sls:proj:store", default_host="hf-1")
    values.update(overrides)
    return EventMeta(host_field=host_field, json_fields=json_fields, stanza=stanza, **values)


def assert_same_events(data: bytes, event_meta: EventMeta, fmt: str, transcoder: Optional[Transcoder] = None) -> None:
    """The fused events equal both references, from cold and from warm caches."""
    shaper = EventShaper(event_meta, fmt)
    transcoder = transcoder or Transcoder(EventShaper(event_meta, fmt))
    groups = decode_log_group_list(data)
    expected = shaper.shape(groups)
    assert transcoder.transcode(data) == expected
    assert transcoder.transcode(data) == expected
    assert reference_shape(groups, event_meta, fmt) == expected


# ---------------------------------------------------------------------------------------------------------------
# Generated data sets (the benchmark's and the integration tests' data)
# ---------------------------------------------------------------------------------------------------------------

DATA_SETS = {
    "actiontrail": datagen.DataSpec("actiontrail", seed=3, event_count=600, logs_per_group=50, zero_ns_every=7),
    "oss_access": datagen.DataSpec("oss_access", seed=4, event_count=400, logs_per_group=40),
    "slb_access": datagen.DataSpec("slb_access", seed=5, event_count=400, logs_per_group=1),
    # Non-UTF-8 values and large events: 40 KB values have 3-byte lengths, 2 KB ones 2-byte lengths.
    "mixed": datagen.mixed_spec(seed=6, event_count=900, non_utf8_every=11, large_every=90, large_size=40_000),
    "mixed_2k": datagen.mixed_spec(seed=7, event_count=300, large_every=7, large_size=2_000, zero_ns_every=2),
}


def data_set(name: str) -> bytes:
    return encode_log_group_list(datagen.generate_log_groups(DATA_SETS[name]))


@pytest.mark.parametrize("name", sorted(DATA_SETS))
@pytest.mark.parametrize("fmt", ["stream", "hec"])
@pytest.mark.parametrize("json_fields", [(), ("event",)])
def test_generated_data_sets(name: str, fmt: str, json_fields: Tuple[str, ...]) -> None:
    data = data_set(name)
    for host_field in HOST_FIELDS:
        assert_same_events(data, meta(json_fields=json_fields, host_field=host_field), fmt)


def test_one_transcoder_across_data_sets_and_formats_of_data() -> None:
    """Caches filled by one data set must not leak into another's events."""
    for fmt in ("stream", "hec"):
        event_meta = meta(json_fields=("event",), host_field="client_ip")
        transcoder = Transcoder(EventShaper(event_meta, fmt))
        for name in sorted(DATA_SETS) * 2:
            assert_same_events(data_set(name), event_meta, fmt, transcoder)


def test_tiny_cache_budgets_still_give_the_same_events(monkeypatch: pytest.MonkeyPatch) -> None:
    # A few entries each: the caches are emptied again and again within a batch.
    for budget, size in (("_HEADER_CACHE_BYTES", 800), ("_TEMPLATE_CACHE_BYTES", 4000), ("_HOST_CACHE_BYTES", 600),
                         ("_TIME_CACHE_BYTES", 600)):
        monkeypatch.setattr(transcode_module, budget, size)
    data = data_set("mixed")
    for fmt in ("stream", "hec"):
        assert_same_events(data, meta(json_fields=("event",), host_field="client_ip"), fmt)


# ---------------------------------------------------------------------------------------------------------------
# Random LogGroupLists
# ---------------------------------------------------------------------------------------------------------------

_SPECIALS = list('"\\/\n\r\t\b\f\x00\x01\x1f\x7f\x80\x85&<>%{}[]:, ') + [
    "\u2028", "\u2029", "\ufffd", "\ufffe", "\uffff", "\u00e9", "\u65e5", "\U0001f600"]
_text = st.one_of(
    st.text(alphabet=st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(_SPECIALS)), max_size=12),
    st.text(alphabet=st.one_of(st.characters(max_codepoint=0x7f), st.sampled_from([c for c in _SPECIALS if c.isascii()])),
            max_size=12),
    st.sampled_from(["", "a", "10.0.0.1", "host-1"]),
)
# Invalid UTF-8, encoded surrogates, truncated sequences, and the UTF-8 of U+FFFE.
_raw_bytes = st.one_of(st.binary(max_size=16),
                       st.sampled_from([b"\xff\xfe", b"\xed\xa0\x80", b"abc\xc3", b"\xef\xbf\xbe", b"\x80"]))


def _json_document() -> st.SearchStrategy[str]:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), _text)
    documents = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                               st.dictionaries(_text, inner, max_size=3)), max_leaves=6)
    valid = st.tuples(documents, st.sampled_from([None, 1]), st.sampled_from(["", " ", "\n", "\r\n ", "\t"]),
                      st.booleans()).map(
        lambda t: t[2] + json.dumps(t[0], ensure_ascii=t[3], indent=t[1]) + t[2])
    # Whitespace str.strip() removes but JSON does not allow, invalid documents and JSON that is not a container.
    broken = st.sampled_from(['{"a":', "[1,", '{"a": NaN}', "[Infinity]", "{'a': 1}", "nul", '"str"', "1e5", "{}x",
                              "\x0b{}", "\x1c[1]", "{}\u2028", "\xa0{}", "[1]\x00", '{"a":"\x01"}', "[01]", "[1.]"])
    return st.one_of(valid, broken)


def _length(size: int) -> st.SearchStrategy[str]:
    """ASCII text of about ``size`` characters, to put value lengths on both sides of a varint boundary."""
    return st.integers(size - 6, size + 6).map(lambda n: ("x%d" % n) * (n // 3) + "y" * (n % 3))


# Service times, valid and not (no zone, impossible dates), for the time_field of routed sourcetypes.
_TIMES = ["2025-03-04T01:02:03Z", "2025-03-04T09:02:03.5+08:00", "04/Mar/2025:09:02:03 +0800", "1741050123",
          "1741050123456", "2025-03-04T01:02:03", "2025-02-30T01:02:03Z", "1741050123.5", " 1741050123 "]
_value = st.one_of(_text, _raw_bytes, _json_document(), _length(120), _length(128), _length(16383),
                   st.sampled_from(_TIMES))
_key = st.one_of(st.sampled_from(["a", "b", "event", "event_id", "client_ip", "k\"q", "<x>", "%s", "", "__source__",
                                  "time", "event.eventName", "event.eventTime"]),
                 _text)
_time = st.one_of(st.integers(0, 2 ** 32 - 1), st.integers(2 ** 28, 2 ** 32 - 1),
                  st.sampled_from([0, 127, 128, 2 ** 28 - 1, 2 ** 28, 1_700_000_000]))
_log = st.tuples(_time, st.lists(st.tuples(_key, _value), max_size=6),
                 st.one_of(st.just(0), st.integers(1, 999_999_999), st.integers(10 ** 9, 2 ** 32 - 1)))
_group = st.tuples(_text, _text, st.lists(st.tuples(_text, _text), max_size=3), st.lists(_log, max_size=4))
_groups = st.lists(_group, max_size=3)
_meta = st.builds(meta, stanza=st.one_of(st.just("aliyun_sls://x"), _text),
                  json_fields=st.sampled_from([(), ("event",), ("event", "a", "client_ip")]),
                  host_field=st.sampled_from(["__source__", "__topic__", "__tag__:a", "client_ip", "a", "event"]),
                  default_host=st.one_of(st.just("hf-1"), _text),
                  time_field=st.sampled_from(["", "time", "a"]))

LogSpec = Tuple[int, Sequence[Tuple[Text, Text]], int]


def encode(groups: Sequence[Tuple[Text, Text, Sequence[Tuple[Text, Text]], Sequence[LogSpec]]]) -> bytes:
    return encode_log_group_list(
        encode_log_group([encode_log(time, contents, time_ns) for time, contents, time_ns in logs], topic, source, tags)
        for topic, source, tags, logs in groups)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(first=_groups, second=_groups, event_meta=_meta, fmt=st.sampled_from(["stream", "hec"]))
def test_random_log_group_lists(first, second, event_meta: EventMeta, fmt: str) -> None:
    transcoder = Transcoder(EventShaper(event_meta, fmt))
    for groups in (first, second, first):  # the second batch meets caches filled by the first
        assert_same_events(encode(groups), event_meta, fmt, transcoder)


# ---------------------------------------------------------------------------------------------------------------
# Unusual wire layouts (what protobuf allows but SLS does not send), malformed input, the pipeline hook
# ---------------------------------------------------------------------------------------------------------------


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def pair(key: bytes, value: bytes) -> bytes:
    return field(1, key) + field(2, value)


def log_group_list(*logs: bytes, group_tail: bytes = b"") -> bytes:
    return field(1, b"".join(field(1, log) for log in logs) + group_tail)


UNKNOWN = (varint(9 << 3 | 0) + varint(300) + varint(10 << 3 | 1) + b"\x00" * 8 + field(11, b"junk")
           + varint(12 << 3 | 5) + b"\x01\x02\x03\x04")
TIME = b"\x08" + varint(1_700_000_000)
NANOS = b"\x25" + (5).to_bytes(4, "little")

UNUSUAL_LOGS = {
    "value before key": TIME + field(2, field(2, b"v") + field(1, b"k")),
    "unknown fields in a log and a content": TIME + UNKNOWN + field(2, pair(b"k", b"v") + UNKNOWN) + NANOS,
    "time after the contents": field(2, pair(b"k", b"v")) + TIME,
    "time twice": TIME + field(2, pair(b"k", b"v")) + b"\x08\x01",
    "nanoseconds before the contents": TIME + NANOS + field(2, pair(b"k", b"v")),
    "nanoseconds twice": TIME + field(2, pair(b"k", b"v")) + NANOS + NANOS,
    "no time": field(2, pair(b"k", b"v")),
    "long key": TIME + field(2, pair(b"k" * 200, b"v")) + field(2, pair(b"short", b"w" * 130)),
    "empty content": TIME + field(2, b"") + field(2, pair(b"k", b"")),
    "key only": TIME + field(2, field(1, b"k")),
    "value only": TIME + field(2, field(2, b"v")),
    "key twice": TIME + field(2, field(1, b"a") + field(1, b"b") + field(2, b"v")),
    "non-canonical varints": TIME + b"\x12\x87\x00" + b"\x0a\x01k\x12\x81\x00v",
    "ten-byte time": b"\x08" + b"\xff" * 9 + b"\x01" + field(2, pair(b"k", b"v")),
}


@pytest.mark.parametrize("name", sorted(UNUSUAL_LOGS))
@pytest.mark.parametrize("fmt", ["stream", "hec"])
def test_unusual_wire_layouts_take_the_straightforward_path(name: str, fmt: str) -> None:
    regular = TIME + field(2, pair(b"k", b"v")) + NANOS
    # Regular logs around the unusual one, so the fast path and the fallback alternate within a group.
    data = log_group_list(regular, UNUSUAL_LOGS[name], regular,
                          group_tail=field(3, b"topic") + field(4, b"src") + field(6, pair(b"t", b"v")))
    assert_same_events(data, meta(host_field="k"), fmt)


def test_empty_content_as_the_very_last_bytes() -> None:
    # The fast path reads past the end of the buffer here; the batch is redone on the straightforward path.
    data = log_group_list(TIME + field(2, pair(b"k", b"v")) + field(2, b""))
    assert_same_events(data, meta(), "hec")


def test_empty_input_and_empty_groups() -> None:
    transcoder = Transcoder(EventShaper(meta(), "hec"))
    assert transcoder.transcode(b"") == ([], 0)
    assert transcoder.transcode(field(1, b"") + field(1, field(3, b"t"))) == ([], 0)
    assert_same_events(log_group_list(b""), meta(), "hec")  # a log without fields
    assert transcoder.transcode(memoryview(log_group_list(TIME))) == transcoder.transcode(log_group_list(TIME))


@pytest.mark.parametrize("cut", [1, 2, 5, 17, 30])
def test_truncated_input_raises_the_decoders_error(cut: int) -> None:
    data = log_group_list(TIME + field(2, pair(b"key", b"value" * 3)) + NANOS, group_tail=field(3, b"topic"))
    transcoder = Transcoder(EventShaper(meta(), "stream"))
    with pytest.raises(DecodeError) as info:
        transcoder.transcode(data[:len(data) - cut])
    assert info.value.code == "BadLogGroupList"


def test_content_overrunning_its_log_raises() -> None:
    data = field(1, field(1, b"\x08\x01\x12\x7f\x0a\x01k"))  # a Content claims 127 bytes inside a 7-byte Log
    with pytest.raises(DecodeError):
        Transcoder(EventShaper(meta(), "hec")).transcode(data)


def test_make_transcode_fuses_only_the_real_decoder_and_shaper() -> None:
    data = data_set("oss_access")
    shaper = EventShaper(meta(), "hec")
    fused = make_transcode(shaper, decode_log_group_list)
    assert isinstance(getattr(fused, "__self__", None), Transcoder)
    assert fused(data) == shaper.shape(decode_log_group_list(data))

    calls: List[bytes] = []

    def fake_decode(body: bytes) -> list:
        calls.append(body)
        return decode_log_group_list(body)

    plain = make_transcode(shaper, fake_decode)
    assert plain(data) == shaper.shape(decode_log_group_list(data))
    assert calls == [data]


# ---------------------------------------------------------------------------------------------------------------
# Sourcetype auto: RoutingTranscoder equals RoutingShaper (decoder + one shaper per route), explicit sourcetypes
# keep the unrouted path
# ---------------------------------------------------------------------------------------------------------------

ROUTED_DATA_SETS = {
    "soc_mixed": datagen.DataSpec("soc_mixed", seed=8, event_count=540, logs_per_group=6, zero_ns_every=5),
    "soc_mixed_single_logs": datagen.DataSpec("soc_mixed", seed=9, event_count=90, logs_per_group=1,
                                              non_utf8_every=7),
    "mixed": datagen.mixed_spec(seed=10, event_count=300, non_utf8_every=11, large_every=60, large_size=3_000),
}


def routed_data(name: str) -> bytes:
    return encode_log_group_list(datagen.generate_log_groups(ROUTED_DATA_SETS[name]))


def assert_same_routed_events(data: bytes, event_meta: EventMeta, fmt: str, router: Router, shard_id: int = 3,
                              transcoder: Optional[RoutingTranscoder] = None) -> Transcoded:
    shaper = EventShaper(event_meta, fmt)
    expected = RoutingShaper(shaper, router).shape(decode_log_group_list(data), shard_id)
    transcoder = transcoder or RoutingTranscoder(shaper, router)
    assert transcoder.transcode(data, shard_id) == expected
    assert transcoder.transcode(data, shard_id) == expected  # warm caches
    assert sum(expected[2].values()) == len(expected[0])
    return expected


@pytest.mark.parametrize("name", sorted(ROUTED_DATA_SETS))
@pytest.mark.parametrize("fmt", ["stream", "hec"])
@pytest.mark.parametrize("logstore", ["actiontrail", "actiontrail_main", "wafnew-logstore"])
def test_routed_data_sets(name: str, fmt: str, logstore: str) -> None:
    for host_field in ("__source__", "event_id", "__tag__:__hostname__"):
        assert_same_routed_events(routed_data(name), meta(host_field=host_field, sourcetype="auto"), fmt,
                                  Router("audit-prj", logstore))


def test_routed_counts_name_every_sourcetype_of_the_soc_data_set() -> None:
    spec = ROUTED_DATA_SETS["soc_mixed"]
    events, newest, counts = assert_same_routed_events(routed_data("soc_mixed"), meta(sourcetype="auto"), "hec",
                                                       Router("audit-prj", "security"))
    per_kind = spec.event_count // len(datagen.SOC_MIXED_ORDER)
    assert counts == {"aliyun:actiontrail": 3 * per_kind, "aliyun:waf": per_kind, "aliyun:oss:access": per_kind,
                      "aliyun:sas:alert": per_kind, "aliyun:slb:access": per_kind, "aliyun:cloudfirewall": per_kind,
                      "aliyun:sls": per_kind}
    by_sourcetype: dict = {}
    for event in events:
        envelope = json.loads(event)
        by_sourcetype.setdefault(envelope["sourcetype"], []).append(envelope)
    assert {key: len(value) for key, value in by_sourcetype.items()} == counts
    assert all(e["event"]["level"] and "event" in e["event"] for e in by_sourcetype["aliyun:sls"]), \
        "the application log with an event field stays generic"
    assert newest == max(log.time for group in datagen.generate(spec) for log in group.logs)


def test_generic_routes_take_the_service_time_and_keep_the_generic_body() -> None:
    spec = datagen.DataSpec("soc_mixed", seed=11, event_count=90, logs_per_group=10)
    data = encode_log_group_list(datagen.generate_log_groups(spec))
    events, _, _ = RoutingTranscoder(EventShaper(meta(sourcetype="auto"), "hec"), Router("p", "l")).transcode(data, 0)
    logs = {dict(log.contents).get("event_id"): (group, log) for group in datagen.generate(spec) for log in group.logs}
    checked = 0
    for event in map(json.loads, events):
        if event["sourcetype"] == "aliyun:actiontrail":
            continue
        group, log = logs[event["event"]["event_id"]]
        contents = dict(log.contents)
        assert event["event"]["__time__"] == log.time and event["event"]["__topic__"] == group.topic
        expected_time = {"aliyun:waf": contents.get("time"), "aliyun:oss:access": contents.get("time"),
                         "aliyun:slb:access": contents.get("time"),
                         "aliyun:cloudfirewall": contents.get("start_time")}.get(event["sourcetype"])
        if expected_time is None:  # SAS alerts and aliyun:sls: __time__ plus the nanosecond part
            assert event["time"] == float("%d.%09d" % (log.time, log.time_ns))
        else:
            assert event["time"] == float(field_time(expected_time))
            assert abs(event["time"] - log.time) < 1, "the generator writes the service time in the same second"
        checked += 1
    assert checked == 60


def test_explicit_sourcetype_is_the_unrouted_path_byte_for_byte() -> None:
    data = routed_data("soc_mixed")
    for fmt in ("stream", "hec"):
        shaper = EventShaper(meta(sourcetype="aliyun:sls"), fmt)
        unrouted = make_batch_transcode(shaper, decode_log_group_list)
        assert unrouted(data, 5) == (*shaper.shape(decode_log_group_list(data)), None)
        routed = make_batch_transcode(shaper, decode_log_group_list, Router("p", "l"))
        assert getattr(routed, "__self__", None).__class__ is RoutingTranscoder
        assert routed(data, 5)[0] != unrouted(data, 5)[0]


def test_make_batch_transcode_with_a_stand_in_decoder_uses_the_routing_reference() -> None:
    data = routed_data("mixed")
    shaper = EventShaper(meta(sourcetype="auto"), "stream")
    calls: List[bytes] = []

    def fake_decode(body: bytes) -> list:
        calls.append(body)
        return decode_log_group_list(body)

    routed = make_batch_transcode(shaper, fake_decode, Router("p", "actiontrail_x"))
    assert routed(data, 1) == RoutingShaper(shaper, Router("p", "actiontrail_x")).shape(decode_log_group_list(data), 1)
    assert calls == [data]


def test_flattened_actiontrail_logs_of_a_generic_topic_are_diverted_one_by_one() -> None:
    flat = datagen.DataSpec("actiontrail_flat", seed=12, event_count=4, logs_per_group=4)
    flat_logs = next(datagen.generate(flat)).logs
    plain = (1_700_000_000, [("event", "login"), ("event.name", "x")], 0)
    logs = [(flat_logs[0].time, flat_logs[0].contents, 7), plain, (flat_logs[1].time, flat_logs[1].contents, 0)]
    data = encode([("app", "10.0.0.1", [("__hostname__", "h")], logs)])
    for fmt in ("stream", "hec"):
        events, _, counts = assert_same_routed_events(data, meta(sourcetype="auto"), fmt, Router("p", "l"))
        assert counts == {"aliyun:actiontrail": 2, "aliyun:sls": 1}
        assert [b"aliyun:actiontrail" in e for e in events] == [True, False, True]


def test_actiontrail_logs_without_a_record_fall_back_to_the_generic_body() -> None:
    logs = [(1_700_000_000, [("event", "not json")], 0), (1_700_000_001, [("message", "no event")], 0),
            (1_700_000_002, [("event", '{"eventName":"CreateUser","eventTime":"2025-03-04T01:02:03Z"}')], 0)]
    data = encode([("actiontrail_audit_event", "", [], logs)])
    events, newest, counts = assert_same_routed_events(data, meta(sourcetype="auto"), "hec", Router("p", "l"))
    assert counts == {"aliyun:sls": 2, "aliyun:actiontrail": 1}
    assert newest == 1_700_000_002
    first, second, third = map(json.loads, events)
    assert (first["sourcetype"], first["event"]["event"], first["time"]) == ("aliyun:sls", "not json", 1_700_000_000)
    assert second["event"] == {"message": "no event", "__topic__": "actiontrail_audit_event", "__source__": "",
                               "__time__": 1_700_000_001}
    assert third["time"] == 1741050123.0 and list(third["event"]) == ["eventTime", "eventName", "sls"]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(first=_groups, second=_groups, event_meta=_meta, fmt=st.sampled_from(["stream", "hec"]),
       topics=st.lists(st.sampled_from(["", "actiontrail_audit_event", "actiontrail_event", "waf_access_log",
                                        "oss_access_log", "cloudfirewall_access_log", "app"]), min_size=3, max_size=3),
       logstore=st.sampled_from(["store", "actiontrail_t", "cloudfirewall-logstore"]))
def test_random_routed_log_group_lists(first, second, event_meta: EventMeta, fmt: str, topics: List[str],
                                       logstore: str) -> None:
    router = Router("p", logstore)
    transcoder = RoutingTranscoder(EventShaper(event_meta, fmt), router)
    for groups in (first, second, first):
        # Random topics rarely hit a route: give the groups real ones, in turn.
        groups = [(topics[n % 3],) + tuple(group[1:]) for n, group in enumerate(groups)]
        assert_same_routed_events(encode(groups), event_meta, fmt, router, transcoder=transcoder)


def test_routed_malformed_input_raises_the_decoders_error() -> None:
    data = log_group_list(TIME + field(2, pair(b"event", b"{}")) + NANOS, group_tail=field(3, b"actiontrail_event"))
    transcoder = RoutingTranscoder(EventShaper(meta(), "stream"), Router("p", "l"))
    assert transcoder.transcode(data, 0)[2] == {"aliyun:actiontrail": 1}
    with pytest.raises(DecodeError):
        transcoder.transcode(data[:-3], 0)


# ---------------------------------------------------------------------------------------------------------------
# Keys that never repeat (producers with dynamic keys): bounded caches, the plain path, and the way back
# ---------------------------------------------------------------------------------------------------------------

_unique = itertools.count()
# Logs of the unique-key pulls carry one of these in turn: specials to escape, a JSON field, the host field, a
# service time, an out-of-range Time_ns.
_UNIQUE_EXTRAS = [[], [("msg", 'say "hi" & <bye>\n%s')], [("event", '{"a": [1, 2]}')], [("client_ip", "10.1.2.3")],
                  [("time", "2025-03-04T01:02:03Z")], [("\u65e5 key", "\u00e9t\u00e9")]]


def unique_key_pull(logs: int, keys: int = 1000, topic: str = "app") -> bytes:
    """One log group of ``logs`` logs, each with ``keys`` keys no other log has (as producers with dynamic keys)."""
    rows = []
    for _ in range(logs):
        n = next(_unique)
        contents = [("dyn_%d_%d" % (n, k), "v%d" % k) for k in range(keys)] + _UNIQUE_EXTRAS[n % len(_UNIQUE_EXTRAS)]
        rows.append((1_700_000_000 + n % 7, contents, (0, 5, 1_100_000_000)[n % 3]))
    return encode([(topic, "10.0.0.1", [("__hostname__", "h")], rows)])


@pytest.fixture
def decode_log_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[List[int]]:
    """Starts of the logs the transcoders decode with ``decode_log`` (the plain path), as they happen."""
    calls: List[int] = []
    real = transcode_module.decode_log

    def counting(data: bytes, start: int, stop: int, *args: object) -> object:
        calls.append(start)
        return real(data, start, stop, *args)

    monkeypatch.setattr(transcode_module, "decode_log", counting)
    yield calls


@pytest.mark.parametrize("fmt", ["stream", "hec"])
def test_unique_key_pulls_give_the_same_events_on_the_fast_and_the_plain_path(fmt: str,
                                                                            decode_log_calls: List[int]) -> None:
    event_meta = meta(json_fields=("event",), host_field="client_ip", time_field="time")
    shaper = EventShaper(event_meta, fmt)
    transcoder = Transcoder(EventShaper(event_meta, fmt))
    regular = data_set("mixed_2k")
    plain_path_pulls = 0
    for round_number in range(30):  # 3,000 unique-key logs, then regular data again
        data = unique_key_pull(100, keys=20) if round_number < 25 else regular
        decode_log_calls.clear()
        groups = decode_log_group_list(data)
        assert transcoder.transcode(data) == shaper.shape(groups)
        plain_path_pulls += len(decode_log_calls) >= len(groups[0].logs)
        if round_number % 10 == 0:
            assert reference_shape(groups, event_meta, fmt) == shaper.shape(groups)
    assert plain_path_pulls >= 15, "unique keys must have taken the plain path"


def test_routed_unique_key_pulls_give_the_same_events(decode_log_calls: List[int]) -> None:
    router = Router("p", "store")
    transcoder = RoutingTranscoder(EventShaper(meta(sourcetype="auto"), "hec"), router)
    flat = [(name, value) for name, value in next(datagen.generate(datagen.DataSpec(
        "actiontrail_flat", seed=13, event_count=1, logs_per_group=1))).logs[0].contents]
    for round_number in range(16):
        data = unique_key_pull(100, keys=10, topic=("app", "waf_access_log")[round_number % 2])
        if round_number == 12:  # flattened ActionTrail keys among unique ones: diverted on the plain path too
            data = encode([("app", "", [], [(1_700_000_000, flat + [("dyn_%d" % n, "v")], 0) for n in range(5)])])
        assert_same_routed_events(data, meta(sourcetype="auto"), "hec", router, transcoder=transcoder)
        assert transcoder.cache_bytes <= 2 * CACHE_BUDGET_BYTES  # two routes' Transcoders received data
    assert len(decode_log_calls) > 600, "the plain path decodes each log"


def test_unique_key_logs_keep_the_caches_within_their_byte_budget() -> None:
    """1,000 unique keys per log, as in the issue: count-bounded caches kept ~100 KB per log (about 450 MB in all)."""
    transcoder = Transcoder(EventShaper(meta(), "stream"))
    transcoder.transcode(unique_key_pull(40))  # warm up
    pulls = [unique_key_pull(40) for _ in range(3)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for data in pulls:
            transcoder.transcode(data)
            assert transcoder.cache_bytes <= CACHE_BUDGET_BYTES
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 120 such logs held about 12 MB before. Allowed: the Transcoder's budget and its shaper's (1.25 MiB), with room
    # for the estimate's error.
    assert grown < CACHE_BUDGET_BYTES + 3 * 1024 * 1024, grown


def test_long_unique_time_field_values_are_not_cached() -> None:
    transcoder = Transcoder(EventShaper(meta(time_field="time"), "hec"))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for pull in range(4):
            logs = [(1_700_000_000, [("time", "%06d" % (pull * 100 + n) + "x" * 20_000), ("k", "v")], 0)
                    for n in range(100)]
            transcoder.transcode(encode([("", "", [], logs)]))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 2 * 1024 * 1024, grown  # 400 cached 20 KB values were 8 MB


def test_the_fast_path_serves_repeated_key_sequences_again_after_a_unique_key_burst(
        decode_log_calls: List[int]) -> None:
    transcoder = Transcoder(EventShaper(meta(), "hec"))
    regular = data_set("oss_access")
    expected = EventShaper(meta(), "hec").shape(decode_log_group_list(regular))
    assert transcoder.transcode(regular) == expected and decode_log_calls == []  # the fast path alone
    for _ in range(12):
        transcoder.transcode(unique_key_pull(100, keys=20))
    decode_log_calls.clear()
    transcoder.transcode(unique_key_pull(100, keys=20))
    assert len(decode_log_calls) == 100, "logs with unique keys take the plain path"
    # The plain path's turn ends (32 windows of 256 logs), then a window finds its templates.
    bypassed_logs = transcode_module._BYPASS_WINDOWS * transcode_module._HIT_WINDOW
    for _ in range(bypassed_logs // 400 + 2):
        assert transcoder.transcode(regular) == expected
    decode_log_calls.clear()
    assert transcoder.transcode(regular) == expected
    assert decode_log_calls == [], "repeated key sequences are back on the fast path"


# ---------------------------------------------------------------------------------------------------------------
# Time_ns of a second or more (out of spec, on the wire): left out of the time on every path, logged per shard
# ---------------------------------------------------------------------------------------------------------------

BIG_NANOS = b"\x25" + (1_100_000_000).to_bytes(4, "little")


def event_times(events: List[bytes], fmt: str) -> List[str]:
    if fmt == "hec":
        return [event.split(b",", 1)[0][len(b'{"time":'):].decode() for event in events]
    return [event.split(b"<time>", 1)[1].split(b"</time>", 1)[0].decode() for event in events]


def out_of_range_lines(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [record.getMessage() for record in caplog.records
            if record.levelno == logging.WARNING and "action=time_ns_out_of_range" in record.getMessage()]


@pytest.mark.parametrize("fmt", ["stream", "hec"])
def test_out_of_range_nanoseconds_are_left_out_of_the_time_and_logged_once(fmt: str,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    fast = TIME + field(2, pair(b"k", b"v")) + BIG_NANOS
    unusual = TIME + BIG_NANOS + field(2, pair(b"k", b"v"))  # nanoseconds first: the straightforward path
    good = TIME + field(2, pair(b"k", b"v")) + NANOS
    data = log_group_list(fast, unusual, good, fast)
    assert_same_events(data, meta(host_field="k"), fmt)
    caplog.clear()
    transcode = make_batch_transcode(EventShaper(meta(), fmt), decode_log_group_list)
    events, _, _ = transcode(data, 4, "MTcwMDAwMDAwMA==")
    assert event_times(events, fmt) == ["1700000000", "1700000000", "1700000000.000000005", "1700000000"]
    assert all(b'"__time_ns_part__":1100000000}' in event for n, event in enumerate(events) if n != 2)
    assert out_of_range_lines(caplog) == [
        'action=time_ns_out_of_range shard=4 cursor=MTcwMDAwMDAwMA== events=3 next=time_without_nanoseconds '
        'detail="Time_ns of 10^9 or more (out of spec); _time is __time__, the body keeps __time_ns_part__"']
    transcode(data, 4, "next")
    transcode(log_group_list(good), 4, "clean")
    assert len(out_of_range_lines(caplog)) == 1, "once per shard and interval, not per pull"


def test_out_of_range_nanoseconds_on_the_whole_batch_fallback(caplog: pytest.LogCaptureFixture) -> None:
    # The empty Content as the very last bytes sends the whole pull to decoder + shaper.
    data = log_group_list(TIME + field(2, pair(b"k", b"v")) + BIG_NANOS + field(2, b""))
    assert_same_events(data, meta(), "hec")
    caplog.clear()
    events, _ = Transcoder(EventShaper(meta(), "hec")).transcode(data, 2, "c")
    assert event_times(events, "hec") == ["1700000000"]
    assert [line.split(" next=")[0] for line in out_of_range_lines(caplog)] == [
        "action=time_ns_out_of_range shard=2 cursor=c events=1"]


def test_out_of_range_nanoseconds_on_the_plain_path_are_counted() -> None:
    transcoder = Transcoder(EventShaper(meta(), "stream"))
    for _ in range(4):
        transcoder.transcode(unique_key_pull(100, keys=20))
    data = unique_key_pull(99, keys=20)
    result = transcoder.transcode_frames(data, iter_log_group_frames(data), 0)
    assert result.out_of_range_nanos == 33  # every third log
    assert sorted(set(event_times(result.events, "stream"))) == sorted(
        {"%d" % t for t in range(1_700_000_000, 1_700_000_007)}
        | {"%d.000000005" % t for t in range(1_700_000_000, 1_700_000_007)})


@pytest.mark.parametrize("fmt", ["stream", "hec"])
def test_routed_out_of_range_nanoseconds_on_every_route(fmt: str, caplog: pytest.LogCaptureFixture) -> None:
    record = '{"eventName":"CreateUser"}'  # no eventTime: __time__ and the nanoseconds give the time
    flat = [("event.eventName", "CreateUser"), ("event.eventTime", "not a time")]
    data = encode([("actiontrail_audit_event", "", [], [(1_700_000_000, [("event", record)], 1_100_000_000)]),
                   ("app", "", [], [(1_700_000_000, flat, 1_100_000_000), (1_700_000_000, [("k", "v")], 2 ** 32 - 1)]),
                   ("waf_access_log", "", [], [(1_700_000_000, [("time", "no zone")], 1_000_000_000)])])
    router = Router("p", "store")
    events, _, counts = assert_same_routed_events(data, meta(sourcetype="auto"), fmt, router)
    assert counts == {"aliyun:actiontrail": 2, "aliyun:sls": 1, "aliyun:waf": 1}
    assert event_times(events, fmt) == ["1700000000"] * 4
    caplog.clear()
    make_batch_transcode(EventShaper(meta(sourcetype="auto"), fmt), decode_log_group_list, router)(data, 7, "cur")
    assert [line.split(" next=")[0] for line in out_of_range_lines(caplog)] == [
        "action=time_ns_out_of_range shard=7 cursor=cur events=4"]


def test_out_of_range_nanoseconds_log_once_per_shard_and_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    report = OutOfRangeNanos(interval=300.0, clock=lambda: now[0])
    report.found(1, "c1", 5)
    report.found(1, "c2", 2)
    report.found(2, "d1", 1)
    report.found(1, "c3", 0)
    now[0] += 299.0
    report.found(1, "c4", 1)
    now[0] += 2.0
    report.found(1, "c5", 3)
    report.found(3, "", 1)
    assert [line.split(" next=")[0] for line in out_of_range_lines(caplog)] == [
        "action=time_ns_out_of_range shard=1 cursor=c1 events=5",
        "action=time_ns_out_of_range shard=2 cursor=d1 events=1",
        "action=time_ns_out_of_range shard=1 cursor=c5 events=6",
        "action=time_ns_out_of_range shard=3 cursor=- events=1"]
