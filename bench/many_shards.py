"""The many-shards table: one input on a Logstore of 64 and of 256 shards.

- backlog: peak RSS of the input while a backlog waits on every shard and splunkd reads its stream slowly (the
  driver drains stdout at ``reader_mb_s``), over a fixed window: what bounds the memory, shards or a budget;
- idle: CPU of the input, as % of one core, while every shard is empty, over a window after startup settled;
- wake-up: seconds from putting one log on an idle shard to its arrival on stdout, a few times on different shards.

The SLS emulator of this part runs in its own process (loaded once for both shard counts) and is stopped after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from bench.measure import say
from bench.services import AddonHost, RunningInput, SlsServer

BUDGET_PARAMETER = "max_inflight_mb"
BUDGET_MB = 64  # the budget issue 13 asks for by default, passed when the built app has the parameter


@dataclass(frozen=True)
class ScaleSettings:
    backlog_mb: float
    backlog_window_s: float
    idle_settle_s: float
    idle_window_s: float
    probes: int
    shard_counts: Tuple[int, ...] = (64, 256)
    reader_mb_s: float = 2.0
    own_timeout_s: float = 120.0     # launch until every shard has an owner
    probe_timeout_s: float = 30.0


FULL_SCALE = ScaleSettings(backlog_mb=200.0, backlog_window_s=60.0, idle_settle_s=10.0, idle_window_s=30.0, probes=5)
QUICK_SCALE = ScaleSettings(backlog_mb=48.0, backlog_window_s=12.0, idle_settle_s=3.0, idle_window_s=8.0, probes=3)


@dataclass
class ShardsRow:
    shards: int
    max_inflight_mb: Optional[int]            # None: the built app has no such parameter
    backlog_mb: float
    reader_mb_s: float
    backlog_window_s: float
    peak_rss_mb: float = 0.0
    backlog_delivered_mb: float = 0.0         # raw MB whose events reached stdout within the window
    backlog_cpu_pct: float = 0.0
    backlog_stop_s: Optional[float] = None
    owned_s: Optional[float] = None           # idle run: launch to every shard owned
    idle_window_s: float = 0.0
    idle_cpu_pct: Optional[float] = None
    idle_rss_mb: float = 0.0
    wake_delays_s: List[float] = field(default_factory=list)
    status: str = "ok"
    notes: List[str] = field(default_factory=list)

    @property
    def wake_median_s(self) -> Optional[float]:
        ordered = sorted(self.wake_delays_s)
        return ordered[len(ordered) // 2] if ordered else None

    @property
    def wake_max_s(self) -> Optional[float]:
        return max(self.wake_delays_s) if self.wake_delays_s else None


class ManyShards:
    """Runs the backlog, idle and wake-up probes for each shard count."""

    def __init__(self, host: AddonHost, settings: ScaleSettings, run_id: str) -> None:
        self.host = host
        self.settings = settings
        self.run_id = run_id
        self.budget = BUDGET_MB if host.supports(BUDGET_PARAMETER) else None
        self.sls: Optional[SlsServer] = None

    def params(self, logstore: str, group: str) -> dict:
        assert self.sls is not None
        extra = {BUDGET_PARAMETER: str(self.budget)} if self.budget is not None else {}
        return AddonHost.params(self.sls.url, logstore, group, delivery="stream", **extra)

    def run(self) -> List[ShardsRow]:
        loads = []
        for shards in self.settings.shard_counts:
            loads += ["backlog%d=actiontrail:%g:%d" % (shards, self.settings.backlog_mb, shards),
                      "idle%d=actiontrail:0:%d" % (shards, shards)]
        say("many shards: loading %.0f MB on %s shards" % (
            self.settings.backlog_mb, " and ".join(str(n) for n in self.settings.shard_counts)))
        self.sls = SlsServer(loads, shards=8)
        try:
            rows = []
            for shards in self.settings.shard_counts:
                row = ShardsRow(shards, self.budget, self.settings.backlog_mb, self.settings.reader_mb_s,
                                self.settings.backlog_window_s)
                self.backlog(row)
                self.idle(row)
                say("  %d shards: backlog peak RSS %.0f MB (%.1f MB delivered), idle CPU %s%%, wake-up %s s%s" % (
                    shards, row.peak_rss_mb, row.backlog_delivered_mb,
                    "-" if row.idle_cpu_pct is None else "%.2f" % row.idle_cpu_pct,
                    "/".join("%.2f" % d for d in row.wake_delays_s) or "-",
                    "; " + "; ".join(row.notes) if row.notes else ""))
                rows.append(row)
            return rows
        finally:
            self.sls.close()
            self.sls = None

    def backlog(self, row: ShardsRow) -> None:
        """Peak RSS over the window while stdout is read at ``reader_mb_s``."""
        assert self.sls is not None
        logstore = "backlog%d" % row.shards
        loaded = self.sls.logstore(logstore)
        name = "bench_backlog%d" % row.shards
        running = self.host.launch(name, self.params(logstore, "bench-backlog%d-%s" % (row.shards, self.run_id)),
                                   stdout_rate=self.settings.reader_mb_s * 1e6)
        try:
            cpu = running.sampler.sample_for(self.settings.backlog_window_s)
            _, distinct = running.stdout.counts()
            self.check_alive(row, running, name, "backlog")
        finally:
            _, killed, row.backlog_stop_s = running.stop()
        row.peak_rss_mb = running.sampler.peak_rss / 1e6
        row.backlog_delivered_mb = distinct * loaded["raw_bytes"] / loaded["events"] / 1e6
        row.backlog_cpu_pct = 100.0 * cpu / self.settings.backlog_window_s
        if killed:
            row.notes.append("backlog input did not stop within the SIGTERM grace period (killed)")

    def idle(self, row: ShardsRow) -> None:
        """CPU while every shard is empty, then one log at a time on a few shards."""
        assert self.sls is not None
        logstore = "idle%d" % row.shards
        group = "bench-idle%d-%s" % (row.shards, self.run_id)
        name = "bench_idle%d" % row.shards
        running = self.host.launch(name, self.params(logstore, group))
        try:
            deadline = time.monotonic() + self.settings.own_timeout_s
            while time.monotonic() < deadline and not self.sls.all_owned(group, logstore):
                running.sampler.sample()
                time.sleep(0.2)
            if not self.sls.all_owned(group, logstore):
                row.status = "failed"
                row.notes.append("not every shard owned %.0f s after launch" % self.settings.own_timeout_s)
                return
            row.owned_s = running.elapsed()
            running.sampler.sample_for(self.settings.idle_settle_s)
            row.idle_window_s = self.settings.idle_window_s
            rss_before = running.sampler.peak_rss
            row.idle_cpu_pct = 100.0 * running.sampler.sample_for(self.settings.idle_window_s) / row.idle_window_s
            row.idle_rss_mb = max(rss_before, running.sampler.peak_rss) / 1e6
            self.probe(row, running, logstore)
            self.check_alive(row, running, name, "idle")
        finally:
            running.stop()

    def probe(self, row: ShardsRow, running: RunningInput, logstore: str) -> None:
        """Put one log on an idle shard, wait for it on stdout; spaced so that each shard is idle again."""
        assert self.sls is not None
        for number in range(self.settings.probes):
            # Uneven pauses, so the puts do not fall on the same phase of the idle pull cadence each time.
            running.sampler.sample_for(1.5 + 0.7 * number)
            shard_id = (number * row.shards) // self.settings.probes + number
            seen = len(running.stdout.latencies.values())
            self.sls.put(logstore, shard_id % row.shards, "wake-%d-%08d" % (row.shards, number))
            deadline = time.monotonic() + self.settings.probe_timeout_s
            while time.monotonic() < deadline and len(running.stdout.latencies.values()) <= seen:
                time.sleep(0.01)
            arrived = running.stdout.latencies.values()
            if len(arrived) <= seen:
                row.status = "partial"
                row.notes.append("a log put on idle shard %d had not arrived after %.0f s"
                                 % (shard_id % row.shards, self.settings.probe_timeout_s))
                return
            row.wake_delays_s.append(arrived[seen])

    def check_alive(self, row: ShardsRow, running: RunningInput, name: str, phase: str) -> None:
        if running.process.poll() is not None:
            row.status = "failed"
            row.notes.append("%s input exited (code %s): %s" % (phase, running.process.returncode,
                                                                  self.host.failure_tail(name, running)))


HEADERS = ("shards", "budget MB", "backlog MB", "reader MB/s", "window s", "peak RSS MB", "delivered MB",
           "CPU % (backlog)", "owned s", "idle CPU %", "idle RSS MB", "wake-up median s", "wake-up max s", "status")


def cells(row: ShardsRow) -> List[str]:
    def optional(value: Optional[float], pattern: str) -> str:
        return "-" if value is None else pattern % value

    return [str(row.shards), optional(row.max_inflight_mb, "%d"), "%.0f" % row.backlog_mb, "%.1f" % row.reader_mb_s,
            "%.0f" % row.backlog_window_s, "%.0f" % row.peak_rss_mb, "%.1f" % row.backlog_delivered_mb,
            "%.0f" % row.backlog_cpu_pct, optional(row.owned_s, "%.1f"), optional(row.idle_cpu_pct, "%.2f"),
            "%.0f" % row.idle_rss_mb, optional(row.wake_median_s, "%.2f"), optional(row.wake_max_s, "%.2f"),
            row.status]
