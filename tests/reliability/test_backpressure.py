"""Scenario 6: back-pressure and memory. A large backlog drains into a slow HEC. The input's resident memory, sampled
all along, stays under a fixed bound that does not depend on the backlog (the input's memory budget), and every
event arrives."""

from __future__ import annotations

from tests.emulators.sls.datagen import spec_for_bytes
from tests.integration.harness import wait_until

from .support import ReliabilityEnv, RssSampler, scaled

BACKLOG_BYTES = scaled(60_000_000, 1_000_000_000)
HEC_LATENCY = scaled(0.1, 0.2)          # seconds added to every HEC answer
# The same bound for 60 MB and 1 GB of backlog: the input's memory budget (max_inflight_mb, default 64) holds
# the pulled and undelivered data, the HEC sink's in-flight bodies among them. Measured 123 MB (60 MB) and 147 MB
# (1 GB, flat from the first seconds to the end of the drain), 2026-12-05;
# before the budget 337 MB (60 MB), 587 MB (200 MB), 694 MB (1 GB, 4 shards), when this bound was 800 MB.
RSS_BOUND_MB = 150
DRAIN_TIMEOUT = scaled(240, 3600)


def test_slow_hec_backlog_keeps_memory_bounded(summary) -> None:
    spec = spec_for_bytes(BACKLOG_BYTES, kind="actiontrail", seed=601, logs_per_group=10)
    with ReliabilityEnv() as env:
        env.load(spec, shards=4)
        env.hec.faults.latency(HEC_LATENCY)
        running = env.start_input("prod", delivery="hec", hec_destination="hec1", index="main")
        with RssSampler(running.pid) as rss:
            wait_until(lambda: len(env.hec.events()) >= spec.event_count and env.fully_checkpointed(),
                       timeout=DRAIN_TIMEOUT, interval=1.0, message="the backlog to drain")
        assert running.terminate(timeout=30) == 0, running.stderr_text()[-2000:]
        result = env.compare(spec.event_ids(), env.hec_ids())

    summary(result.row(f"6 backpressure {BACKLOG_BYTES // 1_000_000} MB slow HEC", peak_rss_mb=rss.peak_mb))
    print(f"backlog {BACKLOG_BYTES / 1e6:.0f} MB, {spec.event_count} events, peak RSS {rss.peak_mb:.0f} MB")
    assert result.missing == set() and result.duplicates == 0, result
    assert rss.peak_mb < RSS_BOUND_MB, f"peak RSS {rss.peak_mb:.0f} MB"
