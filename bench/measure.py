"""What every bench part measures with: the forwarding process tree's CPU and RSS, the add-on's stdout (events,
put -> arrival latencies, optionally read slowly), and the stop of a process."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO, Callable, List, Optional, Sequence, Tuple

import psutil

from bench.hec_sink import EVENT_ID, ArrivalLatencies

SAMPLE_INTERVAL = 0.1       # seconds between samples of the process tree and of the delivery count
STOP_TIMEOUT = 60.0         # SIGTERM grace period before SIGKILL
_BEGAN = time.monotonic()


def say(message: str) -> None:
    print("[bench %5.1fs] %s" % (time.monotonic() - _BEGAN, message), flush=True)


def percentile(values: Sequence[float], share: float) -> Optional[float]:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))  # ceil(n * share), at least the first
    return ordered[int(rank) - 1]


class TreeSampler:
    """CPU seconds and RSS of a process and all its descendants, reaped children included."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.cpu = 0.0
        self.peak_rss = 0
        self.max_processes = 0

    def sample(self) -> float:
        """Take a sample; returns the tree's CPU seconds so far (the last value once the root is gone)."""
        try:
            processes = [self.root] + self.root.children(recursive=True)
        except psutil.Error:
            return self.cpu
        cpu, rss = 0.0, 0
        for process in processes:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    # children_* hold the CPU of descendants that already exited and were reaped.
                    cpu += times.user + times.system + times.children_user + times.children_system
                    rss += process.memory_info().rss
            except psutil.Error:
                continue
        self.cpu = max(self.cpu, cpu)
        self.peak_rss = max(self.peak_rss, rss)
        self.max_processes = max(self.max_processes, len(processes))
        return self.cpu

    def sample_for(self, seconds: float) -> float:
        """Sample every ``SAMPLE_INTERVAL`` for ``seconds``; returns the CPU seconds used meanwhile."""
        before = self.sample()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(SAMPLE_INTERVAL, max(0.0, deadline - time.monotonic())))
            self.sample()
        return self.cpu - before


class StreamCounter:
    """Drains a pipe in a thread: counts event_ids of complete ``<event>`` elements and records put -> arrival
    latencies of producer events; keeps none of the data. With ``rate`` (bytes per second) it reads no faster, as a
    slow splunkd would, until ``unthrottle``."""

    def __init__(self, stream: IO[bytes], name: str, rate: Optional[float] = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._ids: set = set()
        self.events = 0
        self.bytes_read = 0
        self.latencies = ArrivalLatencies()
        self._rate = rate
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def unthrottle(self) -> None:
        self._rate = None

    def _read(self, started: float) -> bytes:
        rate = self._rate
        if rate is None:
            return os.read(self._stream.fileno(), 1 << 20)
        ahead = self.bytes_read / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
        return os.read(self._stream.fileno(), 1 << 16)

    def _drain(self) -> None:
        tail = b""
        started = time.monotonic()
        while True:
            chunk = self._read(started)
            if not chunk:
                return
            self.bytes_read += len(chunk)
            buffer = tail + chunk
            cut = buffer.rfind(b"</event>")
            if cut < 0:
                tail = buffer
                continue
            ids = EVENT_ID.findall(buffer, 0, cut)
            self.latencies.add(buffer[:cut], time.time())
            tail = buffer[cut:]
            with self._lock:
                self._ids.update(ids)
                self.events += len(ids)

    def counts(self) -> Tuple[int, int]:
        """(events received, distinct event_ids)."""
        with self._lock:
            return self.events, len(self._ids)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class TailBuffer:
    """Drains a pipe in a thread and keeps its last ``limit`` bytes (stderr of a contender)."""

    def __init__(self, stream: IO[bytes], name: str, limit: int = 65536) -> None:
        self._stream = stream
        self._limit = limit
        self._data = b""
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            chunk = os.read(self._stream.fileno(), 65536)
            if not chunk:
                return
            self._data = (self._data + chunk)[-self._limit:]

    def text(self) -> str:
        return self._data.decode("utf-8", errors="replace")


@dataclass
class Window:
    """What the monitor loop saw."""

    outcome: str                    # delivered | capped | timeout | exited
    wall_s: float
    cpu_s: float
    events: int
    distinct: int
    first_event_s: Optional[float]
    checkpoint_s: Optional[float]


def monitor(process: "subprocess.Popen[bytes]", counts: Callable[[], Tuple[int, int]], expected: int,
            started: float, sampler: TreeSampler, *, cap: Optional[float], timeout: float,
            checkpointed: Optional[Callable[[], bool]]) -> Window:
    """Sample until every event is delivered (then wait for the checkpoints), the cap, the timeout or an exit."""
    first_event_s: Optional[float] = None
    while True:
        cpu = sampler.sample()
        events, distinct = counts()
        elapsed = time.monotonic() - started
        if first_event_s is None and distinct:
            first_event_s = elapsed
        if distinct >= expected:
            window = Window("delivered", elapsed, cpu, events, distinct, first_event_s, None)
            break
        outcome = ("exited" if process.poll() is not None else "capped" if cap is not None and elapsed >= cap
                   else "timeout" if elapsed >= timeout else "")
        if outcome:
            return Window(outcome, elapsed, cpu, events, distinct, first_event_s, None)
        time.sleep(SAMPLE_INTERVAL)
    if checkpointed is None:
        return window
    while time.monotonic() - started < timeout and process.poll() is None:
        sampler.sample()  # keeps the RSS peak honest while the last commits happen
        if checkpointed():
            window.checkpoint_s = time.monotonic() - started - window.wall_s
            break
        time.sleep(SAMPLE_INTERVAL)
    return window


def wait_until(condition: Callable[[], bool], timeout: float, sampler: Optional[TreeSampler] = None) -> bool:
    """Poll ``condition`` every ``SAMPLE_INTERVAL`` (sampling the tree meanwhile) until it holds or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sampler is not None:
            sampler.sample()
        if condition():
            return True
        time.sleep(SAMPLE_INTERVAL)
    return condition()


def process_cpu(pid: int) -> float:
    """User+system CPU seconds of one process."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def stop_process(process: "subprocess.Popen[bytes]") -> Tuple[int, bool, float]:
    """SIGTERM, wait, then kill. Returns (exit code, killed, seconds it took)."""
    if process.poll() is not None:
        return process.returncode, False, 0.0
    started = time.monotonic()
    process.terminate()
    try:
        return process.wait(timeout=STOP_TIMEOUT), False, time.monotonic() - started
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=30), True, time.monotonic() - started


def latency_summary(values: List[float]) -> Tuple[Optional[float], Optional[float], Optional[float]]:
    """(p50, p99, max) seconds."""
    return percentile(values, 0.5), percentile(values, 0.99), max(values) if values else None
