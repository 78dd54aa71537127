"""The freshness table: seconds from a put on SLS to the event's arrival (Splunk's stdout for stream, the HEC sink
for HEC), at a trickle (1 log per second per shard) and at half the capacity measured in the same run, with the
input's CPU over the same window.

The SLS emulator's producer (``produce`` on bench/sls_server.py's command line) writes ``put_at`` into each log
when it appends it; the driver's stdout reader and the HEC sink subtract it from the time they receive the event
(one clock: everything runs on this machine). Each run has its own empty Logstore and a fresh consumer group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from bench.measure import latency_summary, say, wait_until
from bench.services import AddonHost, SlsServer

LOGS_PER_GROUP_AT_CAPACITY = 10   # as the throughput data set
DELIVERIES = {"stream": {"delivery": "stream"}, "hec": {"delivery": "hec", "hec_destination": "bench_noack"}}


@dataclass(frozen=True)
class FreshSettings:
    window_s: float
    drain_timeout_s: float = 30.0    # after the window, how long to wait for the last events
    own_timeout_s: float = 60.0
    settle_s: float = 2.0


FULL_FRESH = FreshSettings(window_s=30.0)
QUICK_FRESH = FreshSettings(window_s=8.0)


@dataclass
class FreshRow:
    delivery: str                 # stream | hec
    load: str                     # trickle | half capacity
    shards: int
    capacity_mb_s: Optional[float]
    window_s: float
    target_mb_s: float = 0.0
    put_mb_s: float = 0.0         # what the producer put, over the window
    events_put: int = 0
    events_delivered: int = 0
    p50_s: Optional[float] = None
    p99_s: Optional[float] = None
    max_s: Optional[float] = None
    cpu_pct: float = 0.0          # the input's CPU over the window, % of one core
    producer_max_lag_s: float = 0.0
    status: str = "ok"
    notes: List[str] = field(default_factory=list)


class Freshness:
    """Runs stream and HEC, each at a trickle and at half capacity."""

    def __init__(self, host: AddonHost, sls: SlsServer, settings: FreshSettings, shards: int, run_id: str,
                 bytes_per_event: float) -> None:
        self.host = host
        self.sls = sls
        self.settings = settings
        self.shards = shards
        self.run_id = run_id
        self.bytes_per_event = bytes_per_event

    def run(self, capacities: Dict[str, Optional[float]]) -> List[FreshRow]:
        rows = []
        for delivery in DELIVERIES:
            for load in ("trickle", "half capacity"):
                row = FreshRow(delivery, load, self.shards, capacities.get(delivery), self.settings.window_s)
                self.measure(row)
                say("  freshness %s, %s: %d/%d events, p50 %s s, p99 %s s, CPU %.1f%%%s" % (
                    delivery, load, row.events_delivered, row.events_put,
                    "-" if row.p50_s is None else "%.2f" % row.p50_s,
                    "-" if row.p99_s is None else "%.2f" % row.p99_s, row.cpu_pct,
                    "; " + "; ".join(row.notes) if row.notes else ""))
                rows.append(row)
        return rows

    def rate(self, row: FreshRow) -> Tuple[float, int]:
        """(groups per second, logs per group) of the row's load."""
        if row.load == "trickle":
            return float(self.shards), 1  # round-robin: one log per second on each shard
        assert row.capacity_mb_s is not None
        row.target_mb_s = row.capacity_mb_s / 2
        return row.target_mb_s * 1e6 / (self.bytes_per_event * LOGS_PER_GROUP_AT_CAPACITY), LOGS_PER_GROUP_AT_CAPACITY

    def measure(self, row: FreshRow) -> None:
        if row.load != "trickle" and not row.capacity_mb_s:
            row.status = "not available"
            row.notes.append("no capacity measured for %s in this run" % row.delivery)
            return
        assert self.host.hec is not None
        tag = "%s-%s" % (row.delivery, "trickle" if row.load == "trickle" else "half")
        logstore = "fresh_" + tag.replace("-", "_")
        group = "bench-fresh-%s-%s" % (tag, self.run_id)
        name = "bench_fresh_" + tag.replace("-", "_")
        self.sls.create(logstore, self.shards)
        self.host.hec.reset()
        params = AddonHost.params(self.sls.url, logstore, group, **DELIVERIES[row.delivery])
        running = self.host.launch(name, params)
        counts = running.stdout.counts if row.delivery == "stream" else self.host.hec.counts
        latencies = running.stdout.latencies.values if row.delivery == "stream" else self.host.hec.latencies
        try:
            if not wait_until(lambda: self.sls.all_owned(group, logstore), self.settings.own_timeout_s,
                              running.sampler):
                row.status = "failed"
                row.notes.append("not every shard owned %.0f s after launch" % self.settings.own_timeout_s)
                return
            running.sampler.sample_for(self.settings.settle_s)
            groups_per_second, logs_per_group = self.rate(row)
            self.sls.produce(logstore, groups_per_second, logs_per_group, self.settings.window_s, tag + "-")
            row.cpu_pct = 100.0 * running.sampler.sample_for(self.settings.window_s) / self.settings.window_s
            wait_until(lambda: bool(self.sls.produced(logstore)["done"]), self.settings.drain_timeout_s)
            produced = self.sls.produced(logstore)
            row.events_put = int(produced["events"])
            row.put_mb_s = produced["raw_bytes"] / 1e6 / self.settings.window_s
            row.producer_max_lag_s = float(produced["max_lag_s"])
            wait_until(lambda: counts()[1] >= row.events_put, self.settings.drain_timeout_s, running.sampler)
            row.events_delivered = counts()[1]
            row.p50_s, row.p99_s, row.max_s = latency_summary(latencies())
            if running.process.poll() is not None:
                row.status = "failed"
                row.notes.append("input exited (code %s): %s" % (running.process.returncode,
                                                                 self.host.failure_tail(name, running)))
            elif row.events_delivered < row.events_put:
                row.status = "partial"
                row.notes.append("%d of %d events arrived within %.0f s of the window's end"
                                 % (row.events_delivered, row.events_put, self.settings.drain_timeout_s))
            if row.producer_max_lag_s > 1.0:
                row.notes.append("the producer fell %.1f s behind its schedule" % row.producer_max_lag_s)
        finally:
            running.stop()


HEADERS = ("delivery", "load", "shards", "put MB/s", "events", "delivered", "p50 s", "p99 s", "max s",
           "input CPU %", "MB/CPU-s", "status")


def cells(row: FreshRow) -> List[str]:
    def optional(value: Optional[float], pattern: str) -> str:
        return "-" if value is None else pattern % value

    load = row.load if row.load == "trickle" else "%s (%.1f of %.1f MB/s)" % (
        row.load, row.target_mb_s, row.capacity_mb_s or 0.0)
    return [row.delivery, load, str(row.shards), "%.2f" % row.put_mb_s, str(row.events_put),
            str(row.events_delivered), optional(row.p50_s, "%.2f"), optional(row.p99_s, "%.2f"),
            optional(row.max_s, "%.2f"), "%.1f" % row.cpu_pct,
            optional(row.put_mb_s / (row.cpu_pct / 100) if row.cpu_pct and row.load != "trickle" else None, "%.1f"),
            row.status]
