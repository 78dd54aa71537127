"""Scenario 13: one memory budget per input, whatever the shard count. A backlog spread over many shards drains into a
slow splunkd (stdout read at about 2 MB/s, as a busy indexing pipeline reads it). With per-shard prefetch alone the
input held shards x batches x pull size (415 MB at 64 shards); with ``max_inflight_mb`` (default 64) its resident
memory stays under 150 MB for 64 and 256 shards, and once splunkd reads at full speed again every event arrives."""

from __future__ import annotations

from tests.emulators.sls.datagen import spec_for_bytes
from tests.integration.harness import wait_until

from .support import ReliabilityEnv, RssSampler, scaled

SHARDS = scaled(64, 256)
BACKLOG_BYTES = scaled(128_000_000, 400_000_000)
SLOW_READ_BYTES_PER_SECOND = 2_000_000
SLOW_WINDOW = scaled(20.0, 60.0)           # seconds of slow reading while memory is sampled
# The goal for an input with the default budget: 64 MB of data in flight plus the interpreter, the modules,
# one thread per shard and the allocator's slack.
RSS_BOUND_MB = 150
DRAIN_TIMEOUT = scaled(240, 900)


def test_many_shards_backlog_stays_within_the_memory_budget(summary) -> None:
    spec = spec_for_bytes(BACKLOG_BYTES, kind="actiontrail", seed=1301, logs_per_group=10)
    with ReliabilityEnv() as env:
        env.load(spec, shards=SHARDS)
        running = env.start_input("prod")
        running.throttle(SLOW_READ_BYTES_PER_SECOND)
        with RssSampler(running.pid) as rss:
            running.wait_for_events(spec.event_count, timeout=SLOW_WINDOW)
            slow_peak = rss.peak_mb
            delivered_while_slow = len(running.events)
            running.throttle(None)
            wait_until(lambda: len(running.events) >= spec.event_count and env.fully_checkpointed(),
                       timeout=DRAIN_TIMEOUT, interval=1.0, message="the backlog to drain")
        assert running.terminate(timeout=30) == 0, running.stderr_text()[-2000:]
        result = env.compare(spec.event_ids(), env.stream_ids(running))

    summary(result.row(f"13 memory budget, {SHARDS} shards, {BACKLOG_BYTES // 1_000_000} MB, slow splunkd",
                       peak_rss_mb=slow_peak))
    print(f"{SHARDS} shards, backlog {BACKLOG_BYTES / 1e6:.0f} MB, {spec.event_count} events; "
          f"{delivered_while_slow} delivered in the slow window; peak RSS {slow_peak:.0f} MB slow, "
          f"{rss.peak_mb:.0f} MB overall")
    assert 0 < delivered_while_slow < spec.event_count, "the slow window must see delivery and leave a backlog"
    assert result.missing == set() and result.duplicates == 0, result
    assert rss.peak_mb < RSS_BOUND_MB, f"peak RSS {rss.peak_mb:.0f} MB with {SHARDS} shards ({slow_peak:.0f} MB slow)"
