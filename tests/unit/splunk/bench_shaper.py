"""Micro-benchmark of EventShaper (not a test): prints raw-log MB/s per data shape and format.

Run from the repository root:  build/venvs/test/bin/python tests/unit/splunk/bench_shaper.py [--seconds 3]

"Raw" bytes are the size of the same logs as an SLS LogGroupList protobuf (what the pull returns, uncompressed),
so the figure compares directly with the project's 50 MB-per-CPU-second goal. CPU time is process time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from typing import List, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "package", "bin"))

from sls_forwarder.splunk.events import EventMeta, EventShaper  # noqa: E402
from sls_forwarder.sls.decoder import Log, LogGroup  # noqa: E402




def _varint_size(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def _field_size(payload: int) -> int:
    """Bytes of one length-delimited protobuf field with a one-byte tag."""
    return 1 + _varint_size(payload) + payload


def raw_size(groups: List[LogGroup]) -> int:
    """Size of ``groups`` encoded as an SLS LogGroupList."""
    total = 0
    for group in groups:
        size = _field_size(len(group.topic.encode())) + _field_size(len(group.source.encode()))
        for key, value in group.tags:
            size += _field_size(_field_size(len(key.encode())) + _field_size(len(value.encode())))
        for log in group.logs:
            log_size = 1 + _varint_size(log.time) + (5 if log.time_ns else 0)
            for key, value in log.contents:
                log_size += _field_size(_field_size(len(key.encode())) + _field_size(len(value.encode())))
            size += _field_size(log_size)
        total += _field_size(size)
    return total


def flat_groups(rng: random.Random, groups: int, logs: int) -> List[LogGroup]:
    """About 1 KB logs of 20 plain fields (no value needs escaping)."""
    keys = ["field_%02d" % i for i in range(20)]
    out = []
    for g in range(groups):
        batch = []
        for i in range(logs):
            contents = [(k, "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ._-/:") for _ in range(40)))
                        for k in keys]
            batch.append(Log(1700000000 + i, rng.randrange(1, 10**9), contents))
        out.append(LogGroup("topic", "10.0.%d.1" % g, [("__hostname__", "host-%d" % g),
                                                       ("__receive_time__", "1700000000")], batch))
    return out


def actiontrail_groups(rng: random.Random, groups: int, logs: int) -> List[LogGroup]:
    """ActionTrail-like logs: a few flat fields plus ``event``, a ~1 KB JSON object held as a string."""
    out = []
    for g in range(groups):
        batch = []
        for i in range(logs):
            event = {
                "eventId": "%032x" % rng.getrandbits(128),
                "eventName": rng.choice(["ConsoleSignin", "CreateInstance", "DeleteBucket", "PutObject"]),
                "eventSource": "ecs.aliyuncs.com",
                "eventTime": "2024-01-01T00:00:%02dZ" % (i % 60),
                "eventType": "ApiCall",
                "eventVersion": "1",
                "acsRegion": "cn-hangzhou",
                "requestId": "%032x" % rng.getrandbits(128),
                "sourceIpAddress": "203.0.113.%d" % rng.randrange(256),
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
                "userIdentity": {"type": "ram-user", "principalId": str(rng.getrandbits(60)),
                                 "accountId": "1234567890", "userName": "alice-%d" % rng.randrange(100)},
                "requestParameters": {"InstanceId": "i-%016x" % rng.getrandbits(64), "RegionId": "cn-hangzhou",
                                      "Tags": [{"Key": "env", "Value": "prod"}], "Description": "line\nbreak \"q\""},
                "responseElements": {"RequestId": "%032x" % rng.getrandbits(128)},
            }
            contents = [("__topic__", "actiontrail_audit_event"), ("event", json.dumps(event)),
                        ("aliuid", "1234567890"), ("event_name", event["eventName"]),
                        ("acs_region", "cn-hangzhou"), ("event_type", "ApiCall")]
            batch.append(Log(1700000000 + i, 0, contents))
        out.append(LogGroup("actiontrail_audit_event", "", [("__receive_time__", "1700000000")], batch))
    return out


def measure(shaper: EventShaper, groups: List[LogGroup], raw: int, seconds: float) -> Tuple[float, float]:
    """Return (raw MB per CPU-second, shaped bytes per raw byte)."""
    shaped = sum(len(e) for e in shaper.shape(groups)[0])
    rounds = 0
    start = time.process_time()
    while True:
        shaper.shape(groups)
        rounds += 1
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            break
    return raw * rounds / elapsed / 1e6, shaped / raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per measurement")
    args = parser.parse_args()
    rng = random.Random(7)
    data_sets = [
        ("flat 20 fields", flat_groups(rng, 10, 500), ()),
        ("actiontrail, event as string", actiontrail_groups(rng, 10, 500), ()),
        ("actiontrail, json_fields=event", actiontrail_groups(rng, 10, 500), ("event",)),
    ]
    print("%-32s %-7s %10s %8s" % ("data", "format", "raw MB/s", "out/raw"))
    for name, groups, json_fields in data_sets:
        raw = raw_size(groups)
        for fmt in ("stream", "hec"):
            meta = EventMeta(index="main", sourcetype="aliyun:sls", source="sls:proj:store", default_host="hf-1",
                             json_fields=json_fields, stanza="aliyun_sls://bench")
            rate, ratio = measure(EventShaper(meta, fmt), groups, raw, args.seconds)
            print("%-32s %-7s %10.1f %8.2f" % (name, fmt, rate, ratio))


if __name__ == "__main__":
    main()
