"""modinput helpers that need no splunkd: the aggregated events_ingested report."""

from sls_forwarder.batch import ShardBatch
from sls_forwarder.modinput import IngestReport


def batch(events: int) -> ShardBatch:
    return ShardBatch(shard_id=0, cursor="c", next_cursor="n", events=[b"e"] * events)


def test_ingest_report_sums_batches_per_interval_and_flushes_the_rest():
    now = [0.0]
    reported = []
    report = IngestReport(reported.append, interval=10.0, clock=lambda: now[0])
    report.add(batch(3))
    report.add(batch(4))
    assert reported == []  # within the interval: no line yet
    now[0] = 10.5
    report.add(batch(5))
    assert reported == [12]  # one line for everything so far
    now[0] = 12.0
    report.add(batch(2))
    report.flush()
    assert reported == [12, 2]
    report.flush()
    assert reported == [12, 2], "nothing pending, nothing reported"
