"""The bench's freshness instruments: producer logs carry their put time and id where the stdout reader and the HEC
sink look for them, through the add-on's own shaping."""

from __future__ import annotations

import time

from aliyun.log.log_logs_raw_pb2 import LogGroupRaw

from bench.hec_sink import EVENT_ID, ArrivalLatencies
from bench.measure import percentile
from bench.sls_server import LogTemplates
from sls_forwarder.sls.decoder import decode_log_group_list
from sls_forwarder.splunk.events import EventMeta, EventShaper
from tests.emulators.sls.protobuf import encode_log_group_list


def test_producer_logs_carry_put_time_and_id_first() -> None:
    templates = LogTemplates(id_width=len("fresh-00000001"))
    ids = [b"fresh-%08d" % n for n in range(12)]
    group = templates.group(ids, b"%.6f" % 1733400000.25)
    parsed = LogGroupRaw()
    parsed.ParseFromString(group)  # the placeholders' substitution kept every length prefix valid
    assert [[(c.Key, c.Value) for c in log.Contents][:2] for log in parsed.Logs] == [
        [("put_at", b"1733400000.250000"), ("event_id", event_id)] for event_id in ids]
    assert len(parsed.Logs[0].Contents) > 10  # an ActionTrail-like body follows


def test_latencies_are_read_from_stream_and_hec_events_once_per_id() -> None:
    templates = LogTemplates(id_width=len("fresh-00000001"))
    put_at = time.time() - 2.0
    body = encode_log_group_list([templates.group([b"fresh-00000001", b"fresh-00000002"], b"%.6f" % put_at)])
    meta = EventMeta(index="main", sourcetype="aliyun:sls", source="s", default_host="hf1", stanza="aliyun_sls://b")
    for fmt in ("stream", "hec"):
        events, _ = EventShaper(meta, fmt).shape(decode_log_group_list(body))
        payload = b"".join(events)
        latencies = ArrivalLatencies()
        latencies.add(payload, put_at + 2.5)
        latencies.add(payload, put_at + 9.0)  # a duplicate delivery does not count again
        assert [round(value, 3) for value in latencies.values()] == [2.5, 2.5]
        assert sorted(EVENT_ID.findall(payload)) == [b"fresh-00000001", b"fresh-00000002"]


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0 and percentile(values, 0.99) == 99.0 and percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) is None
