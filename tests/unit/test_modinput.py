"""modinput helpers that need no splunkd: the aggregated events_ingested report."""

from sls_forwarder.batch import ShardBatch
from sls_forwarder.modinput import IngestReport


def batch(events: int, sourcetypes=None) -> ShardBatch:
    return ShardBatch(shard_id=0, cursor="c", next_cursor="n", events=[b"e"] * events, sourcetypes=sourcetypes)


def test_ingest_report_sums_batches_per_interval_and_flushes_the_rest():
    now = [0.0]
    reported = []
    report = IngestReport(lambda sourcetype, count: reported.append((sourcetype, count)), "aliyun:sls",
                          interval=10.0, clock=lambda: now[0])
    report.add(batch(3))
    report.add(batch(4))
    assert reported == []  # within the interval: no line yet
    now[0] = 10.5
    report.add(batch(5))
    assert reported == [("aliyun:sls", 12)]  # one line for everything so far
    now[0] = 12.0
    report.add(batch(2))
    report.flush()
    assert reported == [("aliyun:sls", 12), ("aliyun:sls", 2)]
    report.flush()
    assert reported == [("aliyun:sls", 12), ("aliyun:sls", 2)], "nothing pending, nothing reported"


def test_ingest_report_counts_each_sourcetype_of_routed_batches():
    now = [0.0]
    reported = []
    report = IngestReport(lambda sourcetype, count: reported.append((sourcetype, count)), "auto",
                          interval=10.0, clock=lambda: now[0])
    report.add(batch(5, {"aliyun:actiontrail": 3, "aliyun:waf": 2}))
    report.add(batch(4, {"aliyun:waf": 1, "aliyun:sls": 3}))
    now[0] = 11.0
    report.add(batch(1, {"aliyun:actiontrail": 1}))
    assert sorted(reported) == [("aliyun:actiontrail", 4), ("aliyun:sls", 3), ("aliyun:waf", 3)]
    assert all(sourcetype != "auto" for sourcetype, _ in reported), "auto is not a sourcetype events arrive with"
