"""Sourcetype auto end to end (issue 11): the built add-on consumes a mixed Logstore (ActionTrail in its three
shapes, WAF 3.0, OSS, SLB, Security Center, Cloud Firewall, an application log with an ``event`` field, and one
ActionTrail record too big for HEC) and every event arrives once with the right sourcetype, body and ``_time``,
in stream and in HEC mode.

The expectations are computed here from the generated logs and the event contract (docs/architecture.md, "Routing
and normalisation"), without the add-on's code.
"""

from __future__ import annotations

import calendar
import collections
import datetime
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import pytest

from tests.emulators.sls import datagen
from tests.emulators.sls.protobuf import encode_log, encode_log_group

from tests.knowledge.cim import CimRules
from tests.knowledge.knowledge import App

from .harness import LOGSTORE, PROJECT, PYTHONS, AddonEnv, wait_until
from .routed_events import Sample, hec_samples, stream_samples, write_samples

SHARDS = 2
SPEC = datagen.DataSpec("soc_mixed", seed=1101, event_count=9 * 24, logs_per_group=4, zero_ns_every=6,
                        non_utf8_every=29)
SOURCETYPE_OF_KIND = {
    "actiontrail_json": "aliyun:actiontrail", "actiontrail_legacy": "aliyun:actiontrail",
    "actiontrail_flat": "aliyun:actiontrail",  # no topic, LOGSTORE is not actiontrail_*: found by its keys
    "waf": "aliyun:waf", "oss_access": "aliyun:oss:access", "slb_access": "aliyun:slb:access",
    "sas_alert": "aliyun:sas:alert", "cloudfirewall": "aliyun:cloudfirewall", "app_log": "aliyun:sls"}
TIME_FIELD = {"aliyun:waf": "time", "aliyun:oss:access": "time", "aliyun:slb:access": "time",
              "aliyun:cloudfirewall": "start_time"}
KEY_FIELDS = ["eventTime", "eventName", "eventType", "eventRW", "eventSource", "serviceName", "acsRegion",
              "sourceIpAddress", "userAgent", "userIdentity", "errorCode", "errorMessage", "requestParameters",
              "additionalEventData", "referencedResources"]
BIG_ID = "oversized-record-1"
BIG_TIME = 1_700_000_500


class Expected:
    """One log's expected event: sourcetype, body (a dict whose key order counts) and Splunk time text."""

    def __init__(self, sourcetype: str, body: Dict[str, Any], time_text: str) -> None:
        self.sourcetype = sourcetype
        self.body = body
        self.time_text = time_text


def service_time(text: str) -> str:
    """An independent reading of the services' time values: ``<epoch>.<ms>``."""
    if text.isdigit():
        return "%s.000" % text
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return "%d.%03d" % (calendar.timegm(moment.utctimetuple()), moment.microsecond // 1000)


def sls_time(log: datagen.GeneratedLog) -> str:
    return str(log.time) if log.time_ns == 0 else "%d.%09d" % (log.time, log.time_ns)


def text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def unflatten(contents: List[Tuple[str, str]]) -> Dict[str, Any]:
    record: Dict[str, Any] = {}
    for key, value in contents:
        if key.startswith("event."):
            node = record
            *parents, leaf = key[len("event."):].split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    if "requestParameters" not in record and "requestParameterJson" in record:
        record["requestParameters"] = json.loads(record.pop("requestParameterJson"))
    return record


def actiontrail_body(record: Dict[str, Any], group: datagen.GeneratedGroup, shard: int,
                     owner_id: Optional[str], trimmed: Tuple[str, ...] = ()) -> Dict[str, Any]:
    keys = [key for key in KEY_FIELDS if key in record]
    keys += [key for key in record if key not in KEY_FIELDS and key != "responseElements"]
    keys += ["responseElements"] if "responseElements" in record else []
    body = {key: record[key] for key in keys if key not in trimmed}
    provenance: Dict[str, Any] = {"topic": group.topic, "source": group.source, "project": PROJECT,
                                  "logstore": LOGSTORE, "shard": shard, "tags": dict(group.tags)}
    if owner_id is not None:
        provenance["owner_id"] = owner_id
    if trimmed:
        provenance["trimmed"] = list(trimmed)
    body["sls"] = provenance
    return body


def expected_events() -> Dict[str, Expected]:
    """Every log of SPEC and the oversized record, by the id each carries."""
    expected: Dict[str, Expected] = {}
    for number, group in enumerate(datagen.generate(SPEC)):
        kind = datagen.group_kind(SPEC, number)
        sourcetype = SOURCETYPE_OF_KIND[kind]
        shard = number % SHARDS  # load_direct deals groups round-robin over the shards
        for log in group.logs:
            contents = [(key, text(value)) for key, value in log.contents]
            values = dict(contents)
            if sourcetype == "aliyun:actiontrail":
                record = json.loads(values["event"]) if "event" in values else unflatten(contents)
                body = actiontrail_body(record, group, shard, values.get("owner_id"))
                expected[record["eventId"]] = Expected(sourcetype, body, service_time(record["eventTime"]))
                continue
            body = dict(contents)
            body.update({"__topic__": group.topic, "__source__": group.source})
            body.update({"__tag__:" + key: value for key, value in group.tags})
            body["__time__"] = log.time
            if log.time_ns:
                body["__time_ns_part__"] = log.time_ns
            field = TIME_FIELD.get(sourcetype)
            expected[values["event_id"]] = Expected(sourcetype, body,
                                                    service_time(values[field]) if field else sls_time(log))
    record, group = big_record()
    expected[BIG_ID] = Expected("aliyun:actiontrail", actiontrail_body(record, group, 0, None, ("responseElements",)),
                                service_time(record["eventTime"]))
    return expected


def big_record() -> Tuple[Dict[str, Any], datagen.GeneratedGroup]:
    """An ActionTrail record whose responseElements alone exceed HEC's 5 MB maxEventSize."""
    record = {"eventId": BIG_ID, "eventName": "DescribeInstances", "eventTime": "2023-11-14T22:21:40.250Z",
              "eventType": "ApiCall", "userIdentity": {"type": "ram-user", "userName": "bulk-reader"},
              "requestParameters": {"PageSize": "100"},
              "responseElements": {"Instances": ["i-%020d" % n for n in range(250_000)]}}
    group = datagen.GeneratedGroup("actiontrail_audit_event", "10.9.9.9", [("__receive_time__", str(BIG_TIME))],
                                   [datagen.GeneratedLog(BIG_TIME, 0, [("event", json.dumps(record))])])
    return record, group


def load(env: AddonEnv) -> Dict[str, Expected]:
    env.load(SPEC, shards=SHARDS)
    record, group = big_record()
    env.sls.put_log_groups(PROJECT, LOGSTORE, 0, [encode_log_group(
        [encode_log(log.time, log.contents, log.time_ns) for log in group.logs], group.topic, group.source,
        group.tags)])
    return expected_events()


def event_id(sourcetype: str, body: Dict[str, Any]) -> str:
    return body["eventId"] if sourcetype == "aliyun:actiontrail" else body["event_id"]


def check_arrivals(arrivals: List[Tuple[str, Dict[str, Any], str, str]], expected: Dict[str, Expected]) -> None:
    """arrivals: (sourcetype, body, time text, host) per delivered event."""
    seen = collections.Counter(event_id(sourcetype, body) for sourcetype, body, _, _ in arrivals)
    assert set(seen) == set(expected) and set(seen.values()) == {1}, "every event exactly once"
    for sourcetype, body, time_text, _ in arrivals:
        want = expected[event_id(sourcetype, body)]
        assert sourcetype == want.sourcetype
        assert list(body) == list(want.body), "key order"
        assert body == want.body
        assert time_text == want.time_text
    hosts = {host for _, _, _, host in arrivals}
    assert "10.9.9.9" in hosts and "" not in hosts


def ingested_per_sourcetype(log: str) -> Dict[str, int]:
    counts: Dict[str, int] = collections.Counter()
    for sourcetype, count in re.findall(r"action=events_ingested .*?sourcetype_ingested=(\S+) n_events=(\d+)", log):
        counts[sourcetype] += int(count)
    return dict(counts)


@pytest.mark.parametrize("python_label", sorted(PYTHONS), ids=lambda label: f"py{label}")
def test_stream_routes_every_source_with_body_and_time(python_label: str, tmp_path: Any) -> None:
    with AddonEnv(PYTHONS[python_label]) as env:
        expected = load(env)
        with env.start_input("soc", sourcetype="auto") as running:
            wait_until(lambda: len(running.events) >= len(expected) and env.fully_checkpointed(),
                       timeout=90, message="every routed event and the final checkpoints")
            assert running.terminate(timeout=30) == 0, running.stderr_text()[-2000:]
        assert running.protocol_errors == [] and running.stream_closed
        arrivals = [(event["sourcetype"], json.loads(event["data"], object_pairs_hook=dict), event["time"],
                     event["host"]) for event in running.events]
        check_arrivals(arrivals, expected)
        assert {event["source"] for event in running.events} == {f"sls:{PROJECT}:{LOGSTORE}"}
        assert {event["stanza"] for event in running.events} == {"aliyun_sls://soc"}
        big = next(event for (_, body, _, _), event in zip(arrivals, running.events) if body.get("eventId") == BIG_ID)
        assert len(big["data"].encode("utf-8")) < 5 * 1024 * 1024
        check_samples(stream_samples(running), expected, str(tmp_path))
        classify(stream_samples(running), env.app_dir)
        log = env.log_text("soc")
        assert ingested_per_sourcetype(log) == dict(collections.Counter(e.sourcetype for e in expected.values()))
        assert "Traceback" not in log and "Traceback" not in running.stderr_text()


@pytest.mark.parametrize("python_label", sorted(PYTHONS), ids=lambda label: f"py{label}")
def test_hec_routes_every_source_with_body_and_time(python_label: str, tmp_path: Any) -> None:
    with AddonEnv(PYTHONS[python_label]) as env:
        expected = load(env)
        with env.start_input("soc", sourcetype="auto", delivery="hec", hec_destination="hec1") as running:
            wait_until(lambda: len(env.hec.events()) >= len(expected) and env.fully_checkpointed(),
                       timeout=90, message="every routed event at HEC and the final checkpoints")
            assert running.terminate(timeout=30) == 0, running.stderr_text()[-2000:]
        events = env.hec.events()
        # HEC's time is a JSON number; compare it as the same number the expected text denotes.
        arrivals = [(event["sourcetype"], event["event"], event["time"], event["host"]) for event in events]
        seen = {event_id(sourcetype, body): time for sourcetype, body, time, _ in arrivals}
        for key, time in seen.items():
            assert time == float(expected[key].time_text), key
        check_arrivals([(s, b, expected[event_id(s, b)].time_text, h) for s, b, _, h in arrivals], expected)
        assert not os.path.exists(os.path.join(env.checkpoint_dir, "soc.deadletter.jsonl")), \
            "the oversized record was trimmed, not dead-lettered"
        check_samples(hec_samples(events), expected, str(tmp_path))
        classify(hec_samples(events), env.app_dir)
        assert ingested_per_sourcetype(env.log_text("soc")) == dict(
            collections.Counter(e.sourcetype for e in expected.values()))


def check_samples(samples: List[Sample], expected: Dict[str, Expected], folder: str) -> None:
    """The (sourcetype, raw) pairs for the knowledge simulator, and the files written from them."""
    paths = write_samples(samples, folder)
    counts = collections.Counter(e.sourcetype for e in expected.values())
    assert set(paths) == set(counts) == {"aliyun:actiontrail", "aliyun:waf", "aliyun:oss:access",
                                         "aliyun:slb:access", "aliyun:sas:alert", "aliyun:cloudfirewall",
                                         "aliyun:sls"}
    for sourcetype, path in paths.items():
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        assert len(lines) == counts[sourcetype]
        for line in lines:
            body = json.loads(line)
            assert expected[event_id(sourcetype, body)].body == body


# What the generator's ActionTrail API names are, by what a SOC expects of them (the datagen's _SERVICES).
ACCOUNT_CHANGES = {"CreateUser", "AttachPolicyToUser", "CreateAccessKey"}
READS = {"DescribeInstances", "GetBucketAcl", "ListObjects", "ListUsers", "GetCursor", "DescribeDBInstances"}
WRITES = {"StartInstance", "StopInstance", "RunInstances", "PutObject", "DeleteObject", "CreateLogstore",
          "ModifySecurityIps", "CreateBackup"}
WAF_BLOCKS = {"block", "captcha", "captcha_strict", "js", "sigchl"}  # WAF 3.0's final_action values that stop a request
DATASETS_OF_SOURCETYPE = {"aliyun:waf": {"Web"}, "aliyun:oss:access": {"Web_Storage"}, "aliyun:slb:access": {"Web"},
                          "aliyun:sas:alert": {"Alerts"}, "aliyun:cloudfirewall": {"Network_Traffic"},
                          "aliyun:sls": set()}


def expected_datasets(sourcetype: str, body: Dict[str, Any]) -> Optional[set]:
    """The CIM datasets (most specific) an arrived event must land in; None where the test has no opinion."""
    if sourcetype == "aliyun:waf" and body.get("final_action") in WAF_BLOCKS:
        return {"Web", "Intrusion_Detection"}
    if sourcetype != "aliyun:actiontrail":
        return DATASETS_OF_SOURCETYPE[sourcetype]
    name = body["eventName"]
    if name in ACCOUNT_CHANGES:
        return {"Change_Account_Management"}
    if name in READS:
        return set()
    return {"Change"} if name in WRITES else None


def classify(samples: List[Sample], app_dir: str) -> None:
    """The knowledge simulator (tests/knowledge) runs the built app's props, lookups, eventtypes and tags over what
    arrived: each event lands in the CIM datasets its source promises, with CIM's required fields and values."""
    app, rules = App(app_dir), CimRules()
    seen: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for sourcetype, raw in samples:
        result = app.search(raw, sourcetype, source=f"sls:{PROJECT}:{LOGSTORE}", host="h")
        datasets = set(rules.datasets_for_tags(result.tags))
        want = expected_datasets(sourcetype, json.loads(raw))
        assert want is None or datasets == want, (sourcetype, sorted(datasets), sorted(want), raw[:300])
        for dataset in datasets:  # violations() checks the dataset's parents too
            assert not rules.violations(dataset, result.fields), (sourcetype, dataset, raw[:300])
        seen[sourcetype].update(sorted(datasets) or ["none"])
    # The data set exercises every kind of classification, not just the easy ones.
    assert {"Change", "Change_Account_Management", "none"} <= set(seen["aliyun:actiontrail"]), seen
    assert {"Web", "Intrusion_Detection"} <= set(seen["aliyun:waf"]), seen
