"""splunk/actiontrail.py: ActionTrail shapes A, B and C become the same normalised event."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from sls_forwarder.splunk.actiontrail import KEY_FIELDS, MAX_EVENT_BYTES, ActionTrailShaper
from sls_forwarder.splunk.events import EventMeta

META = EventMeta(index="audit", sourcetype="aliyun:actiontrail", source="sls:audit-prj:actiontrail_main",
                 default_host="hf-1", stanza="aliyun_sls://trail")
TAGS = [("__receive_time__", "1741050124"), ("__hostname__", "")]
RECORD: Dict[str, Any] = {
    "eventId": "9A0B-1", "eventVersion": "1", "responseElements": {"RequestId": "5E1C"},
    "requestParameters": {"PolicyType": "System", "PolicyName": "AdministratorAccess", "UserName": "backup-svc"},
    "userIdentity": {"type": "ram-user", "accountId": "1234567890123456", "principalId": "2898", "userName": "ops",
                     "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}},
    "eventName": "AttachPolicyToUser", "eventType": "ApiCall", "eventRW": "Write", "apiVersion": "2015-05-01",
    "eventSource": "ram.aliyuncs.com", "serviceName": "Ram", "acsRegion": "cn-hangzhou",
    "sourceIpAddress": "198.51.100.23", "userAgent": "AlibabaCloud-CLI/3.0", "errorCode": "", "errorMessage": "",
    "referencedResources": {"ACS::RAM::User": ["backup-svc"]}, "eventTime": "2025-03-04T01:05:41.123Z",
}
EVENT_TIME = "1741050341.123"
EXPECTED_ORDER = ["eventTime", "eventName", "eventType", "eventRW", "eventSource", "serviceName", "acsRegion",
                  "sourceIpAddress", "userAgent", "userIdentity", "errorCode", "errorMessage", "requestParameters",
                  "referencedResources", "eventId", "eventVersion", "apiVersion", "responseElements", "sls"]


def shaper(fmt: str = "hec", **kwargs: Any) -> ActionTrailShaper:
    return ActionTrailShaper(kwargs.pop("meta", META), fmt, "audit-prj", "actiontrail_main", **kwargs)


def hec_event(contents: Sequence[Tuple[str, str]], topic: str = "actiontrail_audit_event", seconds: int = 1741050342,
              nanos: int = 0, shard: int = 2, **kwargs: Any) -> Optional[Dict[str, Any]]:
    at = shaper("hec", **kwargs)
    event = at.event(at.group(topic, "10.0.0.9", TAGS, shard), seconds, nanos, contents)
    return None if event is None else json.loads(event)


def pairs(raw: bytes) -> List[Tuple[str, Any]]:
    return json.loads(raw, object_pairs_hook=list)


def flatten(prefix: str, value: Any) -> List[Tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in flatten(prefix + "." + key, item)]
    return [(prefix, value if isinstance(value, str) else json.dumps(value))]


def test_shape_a_record_at_the_root_key_fields_first_provenance_last() -> None:
    event = hec_event([("event", json.dumps(RECORD))])
    assert event is not None
    assert (event["time"], event["sourcetype"], event["host"], event["index"]) == (
        float(EVENT_TIME), "aliyun:actiontrail", "10.0.0.9", "audit")
    body = event["event"]
    assert list(body) == EXPECTED_ORDER
    assert {key: body[key] for key in RECORD} == RECORD
    assert body["sls"] == {"topic": "actiontrail_audit_event", "source": "10.0.0.9", "project": "audit-prj",
                           "logstore": "actiontrail_main", "shard": 2,
                           "tags": {"__receive_time__": "1741050124", "__hostname__": ""}}


def test_time_text_keeps_milliseconds_exactly() -> None:
    at = shaper("hec")
    raw = at.event(at.group("actiontrail_audit_event", "", [], 0), 1, 0, [("event", json.dumps(RECORD))])
    assert raw.startswith(b'{"time":%s,' % EVENT_TIME.encode())


def test_shape_b_legacy_topic_keeps_owner_id_in_the_provenance() -> None:
    event = hec_event([("event", json.dumps(RECORD)), ("owner_id", "1234567890123456")], topic="actiontrail_event")
    assert event is not None
    assert list(event["event"]) == EXPECTED_ORDER
    assert event["event"]["sls"]["owner_id"] == "1234567890123456"
    assert list(event["event"]["sls"]) == ["topic", "source", "project", "logstore", "shard", "tags", "owner_id"]


def test_shape_c_flattened_keys_are_nested_and_request_parameters_parsed() -> None:
    flat = dict(RECORD)
    parameters = flat.pop("requestParameters")
    contents = [pair for key, value in flat.items() for pair in flatten("event." + key, value)]
    contents.append(("event.requestParameterJson", json.dumps(parameters)))
    contents.insert(3, ("unrelated", "kept out of the record"))
    event = hec_event(contents, topic="")
    assert event is not None
    body = event["event"]
    assert body["requestParameters"] == parameters and "requestParameterJson" not in body
    assert body["userIdentity"] == RECORD["userIdentity"]
    assert body["referencedResources"] == {"ACS::RAM::User": '["backup-svc"]'}  # shape C values are strings
    assert list(body)[:13] == EXPECTED_ORDER[:13] and list(body)[-2:] == ["responseElements", "sls"]
    assert "unrelated" not in body and event["time"] == float(EVENT_TIME)


def test_shape_c_keeps_request_parameters_it_already_has_and_unparsable_json() -> None:
    contents = [("event.eventName", "X"), ("event.eventTime", "2025-03-04T01:05:41Z"),
                ("event.requestParameters.Name", "t"), ("event.requestParameterJson", '{"Name":"other"}')]
    body = hec_event(contents, topic="")["event"]  # type: ignore[index]
    assert body["requestParameters"] == {"Name": "t"} and body["requestParameterJson"] == '{"Name":"other"}'
    body = hec_event(contents[:2] + [("event.requestParameterJson", "{not json")], topic="")["event"]  # type: ignore
    assert "requestParameters" not in body and body["requestParameterJson"] == "{not json"


def test_shape_c_clashing_keys_stay_flat_instead_of_being_lost() -> None:
    contents = [("event.eventName", "X"), ("event.userIdentity", "plain"), ("event.userIdentity.type", "ram-user"),
                ("event.a.b", "1"), ("event.a", "2")]
    body = hec_event(contents, topic="")["event"]  # type: ignore[index]
    assert body["userIdentity"] == "plain" and body["event.userIdentity.type"] == "ram-user"
    assert body["a"] == {"b": "1"} and body["event.a"] == "2"


@pytest.mark.parametrize("contents", [
    [("event", "not json")], [("event", "[1, 2]")], [("event", '{"a": NaN}')], [("event", "")],
    [("message", "no record"), ("owner_id", "1")], []])
def test_logs_without_a_record_are_none(contents: List[Tuple[str, str]]) -> None:
    assert hec_event(contents) is None


@pytest.mark.parametrize("event_time, nanos, expected", [
    (None, 0, 1741050342.0), (None, 5, 1741050342.000000005), ("garbage", 0, 1741050342.0),
    ("2025-03-04T01:05:41", 0, 1741050342.0),  # no zone: ambiguous, __time__ is used
    (12345, 0, 1741050342.0), ("2025-03-04T09:05:41+08:00", 7, 1741050341.0)])
def test_time_falls_back_on_sls_time_when_event_time_is_missing_or_unparsable(event_time: Any, nanos: int,
                                                                             expected: float) -> None:
    record = {"eventName": "X"}
    if event_time is not None:
        record["eventTime"] = event_time
    at = shaper("hec")
    raw = at.event(at.group("actiontrail_audit_event", "", [], 0), 1741050342, nanos, [("event", json.dumps(record))])
    assert json.loads(raw)["time"] == expected
    if event_time is None:
        assert raw.startswith(b'{"time":1741050342' + (b".000000005," if nanos else b","))


@pytest.mark.parametrize("fmt", ["stream", "hec"])
def test_nanoseconds_of_a_second_or_more_are_left_out_of_the_time(fmt: str) -> None:
    at = shaper(fmt)
    raw = at.event(at.group("actiontrail_audit_event", "", [], 0), 1_700_000_011, 1_100_000_000,
                   [("event", json.dumps({"eventName": "X"}))])
    if fmt == "hec":
        assert raw.startswith(b'{"time":1700000011,')
    else:
        assert ET.fromstring(raw).findtext("time") == "1700000011"


def test_stream_event_is_well_formed_xml_with_the_same_body() -> None:
    record = dict(RECORD, userAgent='curl & <"x">', errorMessage="\ufffe\ud800 odd \u2028")
    at_stream, at_hec = shaper("stream"), shaper("hec")
    contents = [("event", json.dumps(record))]
    stream = at_stream.event(at_stream.group("actiontrail_audit_event", "h", TAGS, 4), 1, 0, contents)
    hec = at_hec.event(at_hec.group("actiontrail_audit_event", "h", TAGS, 4), 1, 0, contents)
    element = ET.fromstring(stream)
    assert element.get("stanza") == "aliyun_sls://trail" and element.findtext("time") == EVENT_TIME
    assert element.findtext("sourcetype") == "aliyun:actiontrail" and element.findtext("host") == "h"
    assert pairs(element.findtext("data").encode()) == pairs(json.dumps(json.loads(hec)["event"]).encode())
    assert json.loads(element.findtext("data"))["errorMessage"] == "\ufffe\ud800 odd \u2028"
    assert "\\ud800" in stream.decode("utf-8") and "\\ud800" in hec.decode("utf-8")  # escaped, so valid UTF-8


def test_host_from_a_content_field_or_the_default() -> None:
    meta = EventMeta(index="", sourcetype="aliyun:actiontrail", source="s", default_host="hf-1", host_field="owner_id")
    event = hec_event([("event", "{}"), ("owner_id", "acct-1")], meta=meta)
    assert event is not None and event["host"] == "acct-1"
    assert hec_event([("event", "{}")], meta=meta)["host"] == "hf-1"  # type: ignore[index]


def test_oversized_records_drop_response_elements_then_request_parameters() -> None:
    big = "x" * 2000
    record = dict(RECORD, responseElements={"Blob": big}, requestParameters={"Blob": big})
    contents = [("event", json.dumps(record))]
    whole = hec_event(contents, max_event_bytes=10_000)
    assert whole is not None and "trimmed" not in whole["event"]["sls"]

    for fmt in ("hec", "stream"):
        at = shaper(fmt, max_event_bytes=3_500)
        raw = at.event(at.group("actiontrail_audit_event", "", [], 0), 1, 0, contents)
        assert len(raw) <= 3_500
        body = json.loads(raw)["event"] if fmt == "hec" else json.loads(ET.fromstring(raw).findtext("data"))
        assert "responseElements" not in body and body["requestParameters"] == {"Blob": big}
        assert body["sls"]["trimmed"] == ["responseElements"] and list(body)[-1] == "sls"

    event = hec_event(contents, max_event_bytes=1_500)
    assert event is not None
    body = event["event"]
    assert "responseElements" not in body and "requestParameters" not in body
    assert body["sls"]["trimmed"] == ["responseElements", "requestParameters"]


def test_a_record_too_big_even_when_trimmed_is_still_whole_json() -> None:
    record = {"eventName": "X", "eventTime": "2025-03-04T01:05:41Z", "additionalEventData": {"Blob": "y" * 5000}}
    event = hec_event([("event", json.dumps(record))], max_event_bytes=1_000)
    assert event is not None and event["event"]["additionalEventData"] == record["additionalEventData"]
    assert "trimmed" not in event["event"]["sls"], "nothing of TRIM_ORDER was there to drop"


def test_the_default_limit_is_hecs_max_event_size() -> None:
    assert MAX_EVENT_BYTES == 5 * 1024 * 1024
    assert KEY_FIELDS[:3] == ("eventTime", "eventName", "eventType")
