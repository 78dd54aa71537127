"""transcode.py: the fused path gives byte for byte the events of the straightforward path.

Two references: ``EventShaper.shape(decode_log_group_list(data))`` (the decoder and shaper the fused path replaces)
and the plain ``json.dumps`` reference of tests/unit/splunk/test_events.py applied to the decoded groups. Inputs: the
emulator's generated data sets, random LogGroupLists (hypothesis) and hand-made unusual wire layouts.
"""

from __future__ import annotations

import json
from typing import List, Optional, Sequence, Tuple, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sls_forwarder import transcode as transcode_module
from sls_forwarder.sls.decoder import DecodeError, decode_log_group_list
from sls_forwarder.splunk.events import EventMeta, EventShaper
from sls_forwarder.transcode import Transcoder, make_transcode
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


def test_tiny_cache_limits_still_give_the_same_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transcode_module, "_HEADER_CACHE_LIMIT", 3)
    monkeypatch.setattr(transcode_module, "_CACHE_LIMIT", 2)
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


_value = st.one_of(_text, _raw_bytes, _json_document(), _length(120), _length(128), _length(16383))
_key = st.one_of(st.sampled_from(["a", "b", "event", "event_id", "client_ip", "k\"q", "<x>", "%s", "", "__source__"]),
                 _text)
_time = st.one_of(st.integers(0, 2 ** 32 - 1), st.integers(2 ** 28, 2 ** 32 - 1),
                  st.sampled_from([0, 127, 128, 2 ** 28 - 1, 2 ** 28, 1_700_000_000]))
_log = st.tuples(_time, st.lists(st.tuples(_key, _value), max_size=6),
                 st.one_of(st.just(0), st.integers(1, 999_999_999)))
_group = st.tuples(_text, _text, st.lists(st.tuples(_text, _text), max_size=3), st.lists(_log, max_size=4))
_groups = st.lists(_group, max_size=3)
_meta = st.builds(meta, stanza=st.one_of(st.just("aliyun_sls://x"), _text),
                  json_fields=st.sampled_from([(), ("event",), ("event", "a", "client_ip")]),
                  host_field=st.sampled_from(["__source__", "__topic__", "__tag__:a", "client_ip", "a", "event"]),
                  default_host=st.one_of(st.just("hf-1"), _text))

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
