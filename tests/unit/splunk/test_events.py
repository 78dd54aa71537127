"""EventShaper: examples of the contract, and a property test against a straightforward reference implementation."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import tracemalloc
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Tuple
from xml.sax.saxutils import escape as xml_escape

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sls_forwarder.splunk.events import EventMeta, EventShaper, json_string
from sls_forwarder.splunk.timefields import field_time
from sls_forwarder.sls.decoder import Log, LogGroup




META = EventMeta(index="main", sourcetype="aliyun:sls", source="sls:proj:store", default_host="hf-1",
                 stanza="aliyun_sls://in1")


# ---------------------------------------------------------------------------------------------------------------
# Reference implementation: json.dumps per key and value, xml.sax.saxutils.escape, no caching, no fast paths.
# ---------------------------------------------------------------------------------------------------------------

_XML_HOSTILE = re.compile("[\ud800-\udfff\ufffe\uffff]")
_XML_TEXT_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_ATTRIBUTE_UNSAFE = re.compile("[\x00-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe_json(text: str) -> str:
    return _XML_HOSTILE.sub(lambda m: "\\u%04x" % ord(m.group()), text)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _ref_json_field(value: str) -> Optional[str]:
    """The json_fields rule: a strict JSON object/array is kept as its own (stripped, one-line) text."""
    def reject(name: str) -> Any:
        raise ValueError(name)
    try:
        parsed = json.loads(value, parse_constant=reject)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, (dict, list)):
        return None
    return value.strip().replace("\r", " ").replace("\n", " ")


def ref_body(group: LogGroup, log: Log, json_fields: Tuple[str, ...]) -> str:
    parts = []
    for key, value in log.contents:
        embedded = _ref_json_field(value) if key in json_fields else None
        parts.append(_dumps(key) + ":" + (embedded if embedded is not None else _dumps(value)))
    parts.append('"__topic__":' + _dumps(group.topic))
    parts.append('"__source__":' + _dumps(group.source))
    for key, value in group.tags:
        parts.append(_dumps("__tag__:" + key) + ":" + _dumps(value))
    parts.append('"__time__":' + _dumps(log.time))
    if log.time_ns:
        parts.append('"__time_ns_part__":' + _dumps(log.time_ns))
    return _xml_safe_json("{" + ",".join(parts) + "}")


def ref_host(group: LogGroup, log: Log, meta: EventMeta) -> str:
    field = meta.host_field
    value = ""
    if field == "__source__":
        value = group.source
    elif field == "__topic__":
        value = group.topic
    elif field.startswith("__tag__:"):
        value = next((v for k, v in group.tags if k == field[len("__tag__:"):]), "")
    else:
        value = next((v for k, v in log.contents if k == field), "")
    return value or meta.default_host


def ref_time(log: Log, meta: Optional[EventMeta] = None) -> str:
    if meta is not None and meta.time_field:
        value = next((v for k, v in log.contents if k == meta.time_field), None)
        if value is not None and field_time(value) is not None:
            return field_time(value)
    # A Time_ns of a second or more is out of spec: it is left out of the time (the body keeps it).
    return "%d.%09d" % (log.time, log.time_ns) if 0 < log.time_ns < 1_000_000_000 else str(log.time)


def _xml_meta(text: str) -> str:
    return xml_escape(_XML_TEXT_UNSAFE.sub("\ufffd", text))


def ref_stream_event(group: LogGroup, log: Log, meta: EventMeta) -> bytes:
    stanza = ' stanza="%s"' % xml_escape(_XML_ATTRIBUTE_UNSAFE.sub("\ufffd", meta.stanza), {'"': "&quot;"}) if meta.stanza else ""
    fields = "".join("<%s>%s</%s>" % (name, _xml_meta(value), name)
                     for name, value in (("source", meta.source), ("sourcetype", meta.sourcetype),
                                         ("index", meta.index)) if value)
    text = '<event%s unbroken="1"><time>%s</time><host>%s</host>%s<data>%s</data><done/></event>' % (
        stanza, ref_time(log, meta), _xml_meta(ref_host(group, log, meta)), fields,
        xml_escape(ref_body(group, log, meta.json_fields)))
    return text.encode("utf-8")


def ref_hec_event(group: LogGroup, log: Log, meta: EventMeta) -> bytes:
    parts = ['"time":' + ref_time(log, meta), '"host":' + _xml_safe_json(_dumps(ref_host(group, log, meta)))]
    for name, value in (("source", meta.source), ("sourcetype", meta.sourcetype), ("index", meta.index)):
        if value:
            parts.append('"%s":%s' % (name, _xml_safe_json(_dumps(value))))
    parts.append('"event":' + ref_body(group, log, meta.json_fields))
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def reference_shape(groups: List[LogGroup], meta: EventMeta, fmt: str) -> Tuple[List[bytes], int]:
    render = ref_stream_event if fmt == "stream" else ref_hec_event
    events = [render(group, log, meta) for group in groups for log in group.logs]
    newest = max((log.time for group in groups for log in group.logs), default=0)
    return events, newest


def expected_pairs(group: LogGroup, log: Log, json_fields: Tuple[str, ...]) -> List[Tuple[str, Any]]:
    """What the body must parse to (object_pairs_hook=list), computed without any serialization."""
    def reject(name: str) -> Any:
        raise ValueError(name)
    pairs: List[Tuple[str, Any]] = []
    for key, value in log.contents:
        if key in json_fields:
            try:
                parsed = json.loads(value, object_pairs_hook=list, parse_constant=reject)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, list):
                pairs.append((key, parsed))
                continue
        pairs.append((key, value))
    pairs += [("__topic__", group.topic), ("__source__", group.source)]
    pairs += [("__tag__:" + k, v) for k, v in group.tags]
    pairs.append(("__time__", log.time))
    if log.time_ns:
        pairs.append(("__time_ns_part__", log.time_ns))
    return pairs


# ---------------------------------------------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------------------------------------------

def test_stream_event_layout() -> None:
    group = LogGroup("topic", "10.0.0.1", [("__hostname__", "web-1")],
                     [Log(1700000000, 123, [("a", "1"), ("msg", 'say "hi" & <bye>')])])
    events, newest = EventShaper(META, "stream").shape([group])
    assert newest == 1700000000
    assert events == [
        b'<event stanza="aliyun_sls://in1" unbroken="1"><time>1700000000.000000123</time><host>10.0.0.1</host>'
        b"<source>sls:proj:store</source><sourcetype>aliyun:sls</sourcetype><index>main</index>"
        b'<data>{"a":"1","msg":"say \\"hi\\" &amp; &lt;bye&gt;","__topic__":"topic","__source__":"10.0.0.1",'
        b'"__tag__:__hostname__":"web-1","__time__":1700000000,"__time_ns_part__":123}</data><done/></event>'
    ]


def test_hec_event_layout() -> None:
    group = LogGroup("", "", [], [Log(1700000001, 0, [("k", "v"), ("k", "w")])])
    events, newest = EventShaper(META, "hec").shape([group])
    assert newest == 1700000001
    assert events == [
        b'{"time":1700000001,"host":"hf-1","source":"sls:proj:store","sourcetype":"aliyun:sls","index":"main",'
        b'"event":{"k":"v","k":"w","__topic__":"","__source__":"","__time__":1700000001}}'
    ]


def test_nanoseconds_are_zero_padded_and_parse_as_a_number() -> None:
    group = LogGroup("", "h", [], [Log(5, 7, [])])
    (event,), _ = EventShaper(META, "hec").shape([group])
    assert event.startswith(b'{"time":5.000000007,')
    assert json.loads(event)["event"] == {"__topic__": "", "__source__": "h", "__time__": 5, "__time_ns_part__": 7}


@pytest.mark.parametrize("nanos", [1_000_000_000, 1_100_000_000, 2 ** 32 - 1])
def test_nanoseconds_of_a_second_or_more_are_left_out_of_the_time_and_kept_in_the_body(nanos: int) -> None:
    group = LogGroup("", "h", [], [Log(1_700_000_011, nanos, [("k", "v")])])
    (hec,), _ = EventShaper(META, "hec").shape([group])
    assert hec.startswith(b'{"time":1700000011,')
    assert json.loads(hec)["event"]["__time_ns_part__"] == nanos
    (stream,), _ = EventShaper(META, "stream").shape([group])
    assert ET.fromstring(stream).findtext("time") == "1700000011"
    assert b'"__time_ns_part__":%d}' % nanos in stream


def test_keys_that_never_repeat_leave_the_shapers_memory_bounded() -> None:
    """Dynamic keys (1,000 unique keys per log) must not pile up templates: count-bounded caches held ~100 KB each."""
    shaper = EventShaper(META, "stream")
    unique = itertools.count()

    def burst() -> None:
        for _ in range(5):
            logs = [Log(1_700_000_000, 0, [("f%d_%d" % (next(unique), k), "v") for k in range(1000)])
                    for _ in range(40)]
            shaper.shape([LogGroup("", "h", [], logs)])

    burst()  # warm up: interned strings, the caches at their bound
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        burst()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 200 such logs held about 20 MB in templates before; the shaper's budget is 1.25 MiB.
    assert grown < 3 * 1024 * 1024, grown
    uncached = EventShaper(META, "hec")
    logs = [Log(1, 0, [("a", "1")]), Log(2, 0, [("a", "2")])]
    assert uncached.shape([LogGroup("", "h", [], logs)], cache=False) == EventShaper(META, "hec").shape(
        [LogGroup("", "h", [], logs)])


def test_json_fields_embed_objects_and_keep_everything_else_as_strings() -> None:
    meta = EventMeta("main", "st", "src", "dh", json_fields=("event", "list", "bad", "scalar", "nan"))
    contents = [("event", ' {"a": 1,\n "a": [2]} '), ("list", "[1, 2]"), ("bad", "{not json"),
                ("scalar", "42"), ("nan", '{"x": NaN}'), ("other", '{"y": 1}')]
    (event,), _ = EventShaper(meta, "hec").shape([LogGroup("", "", [], [Log(1, 0, contents)])])
    assert b'"event":{"a": 1,  "a": [2]},"list":[1, 2],"bad":"{not json","scalar":"42",' \
           b'"nan":"{\\"x\\": NaN}","other":"{\\"y\\": 1}"' in event


def test_json_fields_allow_only_json_whitespace_around_the_document() -> None:
    meta = EventMeta("main", "st", "src", "dh", json_fields=("j",))
    shaper = EventShaper(meta, "hec")
    for value, rendered in [(" \t\r\n[1] \n", b"[1]"), ("\x0b{}", b'"\\u000b{}"'), ("\xa0{}", '"\xa0{}"'.encode()),
                            ("{}\u2028", '"{}\u2028"'.encode()), ("[1]\x1c", b'"[1]\\u001c"')]:
        (event,), _ = shaper.shape([LogGroup("", "", [], [Log(1, 0, [("j", value)])])])
        assert b'"event":{"j":' + rendered + b',"__topic__"' in event


@pytest.mark.parametrize("host_field, expected", [
    ("__source__", "10.1.1.1"), ("__topic__", "tp"), ("__tag__:__hostname__", "tagged-host"),
    ("hostname", "content-host"), ("missing", "hf-1"), ("__tag__:missing", "hf-1"), ("empty", "hf-1"),
])
def test_host_field_lookup(host_field: str, expected: str) -> None:
    meta = EventMeta("main", "st", "src", "hf-1", host_field=host_field)
    group = LogGroup("tp", "10.1.1.1", [("__hostname__", "tagged-host")],
                     [Log(1, 0, [("empty", ""), ("hostname", "content-host"), ("hostname", "second")])])
    for fmt in ("stream", "hec"):
        (event,), _ = EventShaper(meta, fmt).shape([group])
        if fmt == "hec":
            assert json.loads(event)["host"] == expected
        else:
            assert ET.fromstring(event).findtext("host") == expected


def test_empty_metadata_is_left_out() -> None:
    meta = EventMeta(index="", sourcetype="", source="", default_host="h")
    group = LogGroup("", "", [], [Log(1, 0, [])])
    (stream_event,), _ = EventShaper(meta, "stream").shape([group])
    (hec_event,), _ = EventShaper(meta, "hec").shape([group])
    assert stream_event.startswith(b'<event unbroken="1"><time>1</time><host>h</host><data>')
    assert set(json.loads(hec_event)) == {"time", "host", "event"}


def test_xml_hostile_characters_are_escaped_or_replaced() -> None:
    meta = EventMeta("main", "st", "src", "dh", host_field="h")
    group = LogGroup("", "", [], [Log(1, 0, [("h", "bad\x01host\ufffe"), ("v", "a\ufffeb\uffff\x00\u2028")])])
    (event,), _ = EventShaper(meta, "stream").shape([group])
    parsed = ET.fromstring(event)
    assert parsed.findtext("host") == "bad\ufffdhost\ufffd"
    assert b'"v":"a\\ufffeb\\uffff\\u0000\xe2\x80\xa8"' in event
    assert json.loads(parsed.findtext("data"))["v"] == "a\ufffeb\uffff\x00\u2028"


def test_no_logs_gives_no_events_and_newest_zero() -> None:
    shaper = EventShaper(META, "stream")
    assert shaper.shape([]) == ([], 0)
    assert shaper.shape([LogGroup("t", "s", [], [])]) == ([], 0)


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="must be one of"):
        EventShaper(META, "raw")


def test_json_string_matches_json_dumps_for_plain_and_special_text() -> None:
    for text in ["", "plain", 'q"uote', "back\\slash", "ctl\x00\x1f", "日本", "\u2028", "\ufffe"]:
        assert json.loads(json_string(text)) == text


def test_templates_keep_percent_signs_in_keys() -> None:
    group = LogGroup("", "", [], [Log(1, 0, [("100%", "%s"), ("%d", "%%")])])
    events, _ = EventShaper(META, "hec").shape([group, group])
    assert events[0] == events[1]
    assert json.loads(events[0])["event"]["100%"] == "%s"
    assert json.loads(events[0])["event"]["%d"] == "%%"


# ---------------------------------------------------------------------------------------------------------------
# Property: the fast shaper equals the reference on random data
# ---------------------------------------------------------------------------------------------------------------

_SPECIALS = list('"\\/\n\r\t\x00\x01\x1f\x7f\x80\x85&<>%{}[]:,') + [
    "\u2028", "\u2029", "\ufffd", "\ufffe", "\uffff", "\ud800", "\udfff", "\u00e9", "\u65e5", "\U0001f600", " "]
_ASCII_SPECIALS = [c for c in _SPECIALS if c.isascii()]
# Half the strings are pure ASCII, so the shaper's ASCII fast paths meet the specials too.
_text = st.one_of(st.text(alphabet=st.one_of(st.characters(), st.sampled_from(_SPECIALS)), max_size=12),
                  st.text(alphabet=st.one_of(st.characters(max_codepoint=0x7f), st.sampled_from(_ASCII_SPECIALS)),
                          max_size=12))
_keys = st.one_of(st.sampled_from(["a", "b", "event", "hostname", "%s", "k\"q", "__source__", "<x>"]), _text)


def _json_text() -> st.SearchStrategy[str]:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), _text)
    documents = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                               st.dictionaries(_text, inner, max_size=3)), max_leaves=6)
    valid = st.tuples(documents, st.sampled_from([None, 1]), st.sampled_from(["", " ", "\n", "\r\n "])).map(
        lambda t: t[2] + json.dumps(t[0], ensure_ascii=bool(t[1]), indent=t[1]) + t[2])
    # Also whitespace that str.strip() removes but JSON does not allow around a document.
    broken = st.sampled_from(['{"a":', "[1,", '{"a": NaN}', "[Infinity]", "{'a': 1}", "nul", '"str"', "1e5", "{}x",
                              "\x0b{}", "\x1c[1]", "{}\u2028", "\xa0{}", "[1]\x00", "\t[1]\t"])
    return st.one_of(valid, broken, _text)


_values = st.one_of(_text, _json_text())
_logs = st.builds(Log, time=st.integers(0, 2 ** 32 - 1),
                  time_ns=st.one_of(st.just(0), st.integers(0, 999_999_999), st.integers(10 ** 9, 2 ** 32 - 1)),
                  contents=st.lists(st.tuples(_keys, _values), max_size=6))
_groups = st.lists(st.builds(LogGroup, topic=_text, source=_text,
                             tags=st.lists(st.tuples(_text, _text), max_size=3), logs=st.lists(_logs, max_size=4)),
                   max_size=3)
_metas = st.builds(EventMeta, index=_text, sourcetype=_text, source=_text,
                   default_host=st.one_of(st.just("hf-1"), _text),
                   host_field=st.sampled_from(["__source__", "__topic__", "__tag__:a", "hostname", "a", "event"]),
                   json_fields=st.sampled_from([(), ("event",), ("event", "a", "hostname")]),
                   stanza=st.one_of(st.just("aliyun_sls://x"), _text),
                   time_field=st.sampled_from(["", "a", "event"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups=_groups, meta=_metas, fmt=st.sampled_from(["stream", "hec"]))
def test_fast_shaper_matches_reference(groups: List[LogGroup], meta: EventMeta, fmt: str) -> None:
    shaper = EventShaper(meta, fmt)
    expected = reference_shape(groups, meta, fmt)
    assert shaper.shape(groups) == expected
    assert shaper.shape(groups) == expected  # again, now from warm caches


# A high and a low surrogate next to each other are written as two \u escapes, which a JSON parser reads back as one
# astral character. Decoded SLS text never holds surrogates (invalid UTF-8 becomes U+FFFD); lone ones still round-trip.
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups=_groups, meta=_metas)
def test_events_parse_back_to_the_log(groups: List[LogGroup], meta: EventMeta) -> None:
    """Independent of the reference: the XML and JSON parse and carry exactly the log's fields and metadata."""
    assume(_SURROGATE_PAIR.search(json.dumps([groups, dataclasses.astuple(meta)], ensure_ascii=False)) is None)
    logs = [(group, log) for group in groups for log in group.logs]
    stream_events, _ = EventShaper(meta, "stream").shape(groups)
    hec_events, _ = EventShaper(meta, "hec").shape(groups)
    assert len(stream_events) == len(hec_events) == len(logs)
    for (group, log), stream_event, hec_event in zip(logs, stream_events, hec_events):
        pairs = expected_pairs(group, log, meta.json_fields)
        envelope = json.loads(hec_event, object_pairs_hook=list)
        envelope_dict: Dict[str, Any] = dict(envelope)
        assert envelope_dict["event"] == pairs
        assert repr(envelope_dict["time"]) == repr(json.loads(ref_time(log)))
        host = ref_host(group, log, meta)
        assert envelope_dict["host"] == host
        element = ET.fromstring(stream_event)
        assert element.get("stanza") == (_XML_ATTRIBUTE_UNSAFE.sub("\ufffd", meta.stanza) if meta.stanza else None)
        assert json.loads(element.findtext("data"), object_pairs_hook=list) == pairs
        assert element.findtext("time") == ref_time(log)
        assert element.findtext("host") == _XML_TEXT_UNSAFE.sub("\ufffd", host)
        for name in ("source", "sourcetype", "index"):
            value = getattr(meta, name)
            assert element.findtext(name) == (_XML_TEXT_UNSAFE.sub("\ufffd", value) if value else None)
            assert envelope_dict.get(name) == (value if value else None)
        assert "\n" not in element.findtext("data")
