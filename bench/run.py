"""Throughput table: the built add-on (stream, HEC, HEC with ack, workers=2, sourcetype auto on ActionTrail) against
the SDK's reference consumer.

    python3 build.py bench [--quick] [-- --size-mb 50 --only stream,reference ...]
    TA_ALIYUN_SLS_APP=<built app> python -m bench.run [--quick] [options]   (from the repository root)

One SLS emulator process holds a deterministic ActionTrail-like data set; each contender consumes all of it
through a fresh consumer group, one contender at a time. The forwarding process tree is sampled with psutil
(CPU user+system, RSS); the emulators run in other processes and are not counted. See bench/README.md for the
columns and caveats. Results go to bench/results/latest[-quick].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Callable, Dict, List, Optional, Tuple

import psutil

from bench.hec_sink import EVENT_ID
from tests.emulators.splunkd import SplunkdDouble
from tests.integration.harness import app_default_confs
from tests.splunk_runner import ModInputRunner, interpreters

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "bench", "results")
AK_ID = "LTAI5tBenchmarkKey"
AK_SECRET = "benchmark-secret-0a1b2c3d4e5f"
HEC_TOKEN = "aaaaaaaa-1111-2222-3333-444444444444"
HEC_ACK_TOKEN = "bbbbbbbb-1111-2222-3333-444444444444"
PROJECT = "audit-prod"
LOGSTORE = "actiontrail"
ACTIONTRAIL_LOGSTORE = "actiontrail_bench"  # shape-A ActionTrail for the aliyun:actiontrail contender
# Issue 11: normalising ActionTrail must keep at least this share of the generic path's MB per CPU-second.
ACTIONTRAIL_FLOOR = 0.5
SAMPLE_INTERVAL = 0.1       # seconds between samples of the process tree and of the delivery count
STOP_TIMEOUT = 60.0         # SIGTERM grace period before SIGKILL
ALL_CONTENDERS = ("stream", "actiontrail", "hec", "hec_ack", "workers2", "reference")


@dataclass(frozen=True)
class Mode:
    """Sizes of a run."""

    name: str
    size_mb: float
    reference_seconds: float    # the reference consumer is stopped after this long (one event per request is slow)
    timeout: float              # any other contender is given up after this long


FULL = Mode("full", size_mb=200.0, reference_seconds=60.0, timeout=900.0)
QUICK = Mode("quick", size_mb=64.0, reference_seconds=15.0, timeout=90.0)


@dataclass
class Result:
    """One contender's row. Rates are over the measured window: from launch until every event was delivered
    (or until the cap or timeout, for a partial run)."""

    key: str
    label: str
    status: str = "ok"               # ok | partial | failed | not available
    reason: str = ""
    events_expected: int = 0
    events_received: int = 0         # envelopes/events that arrived, duplicates included
    events_distinct: int = 0
    duplicates: int = 0
    raw_mb: float = 0.0              # raw MB the window covered (10^6 bytes)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    startup_s: Optional[float] = None      # launch to first delivered event
    checkpoint_s: Optional[float] = None   # all delivered to all checkpoints at the end cursor
    stop_s: Optional[float] = None         # SIGTERM to exit
    wall_mb_s: float = 0.0
    mb_per_cpu_s: float = 0.0
    events_s: float = 0.0
    peak_rss_mb: float = 0.0
    max_processes: int = 0
    exit_code: Optional[int] = None
    ratio_cpu: Optional[float] = None     # mb_per_cpu_s / the reference's
    ratio_wall: Optional[float] = None    # wall_mb_s / the reference's
    python: str = ""
    # CPU the emulators spent during the run (not counted above): shows whether they could have been the limit.
    sls_emulator_cpu_s: float = 0.0
    hec_sink_cpu_s: float = 0.0
    notes: List[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ measuring
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


class StreamCounter:
    """Drains a pipe in a thread: counts event_ids of complete ``<event>`` elements, keeps none of the data."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._ids: set = set()
        self.events = 0
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        tail = b""
        while True:
            chunk = os.read(self._stream.fileno(), 1 << 20)
            if not chunk:
                return
            buffer = tail + chunk
            cut = buffer.rfind(b"</event>")
            if cut < 0:
                tail = buffer
                continue
            ids = EVENT_ID.findall(buffer, 0, cut)
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


# ------------------------------------------------------------------------------------------------ services
class SlsServer:
    """bench/sls_server.py in its own process."""

    def __init__(self, size_mb: float, shards: int, actiontrail_logstore: str = "") -> None:
        extra = ["--actiontrail-logstore", actiontrail_logstore] if actiontrail_logstore else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.sls_server", "--access-key-id", AK_ID, "--access-key-secret", AK_SECRET,
             "--project", PROJECT, "--logstore", LOGSTORE, "--shards", str(shards), "--size-mb", str(size_mb),
             *extra], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise RuntimeError("the SLS emulator process exited before loading the data set")
        self.info: Dict[str, Any] = json.loads(line)
        self.url: str = self.info["url"]
        self._lock = threading.Lock()

    def ask(self, command: str) -> Dict[str, Any]:
        with self._lock:
            assert self.process.stdin is not None and self.process.stdout is not None
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
            return json.loads(self.process.stdout.readline())

    def checkpointed(self, group: str, logstore: str = LOGSTORE) -> bool:
        return bool(self.ask("checkpointed %s %s" % (group, logstore))["done"])

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


class HecSink:
    """bench/hec_sink.py in its own process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.hec_sink", "--token", HEC_TOKEN, "--ack-token", HEC_ACK_TOKEN],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise RuntimeError("the HEC sink process did not start")
        self.url: str = json.loads(line)["url"]

    def _call(self, method: str, path: str) -> Dict[str, int]:
        request = urllib.request.Request(self.url + path, data=b"" if method == "POST" else None, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> Dict[str, int]:
        return self._call("GET", "/bench/stats")

    def counts(self) -> Tuple[int, int]:
        stats = self.stats()
        return stats["events"], stats["distinct"]

    def reset(self) -> None:
        self._call("POST", "/bench/reset")

    def close(self) -> None:
        stop_process(self.process)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ contenders
@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    params: Dict[str, str]          # add-on stanza overrides; empty for the reference

    @property
    def logstore(self) -> str:
        return self.params.get("logstore", LOGSTORE)


def contenders(workers_delivery: str) -> List[Contender]:
    workers_params = {"delivery": workers_delivery, "workers": "2"}
    if workers_delivery == "hec":
        workers_params["hec_destination"] = "bench_noack"
    return [
        Contender("stream", "add-on, stream", {"delivery": "stream"}),
        Contender("actiontrail", "add-on, stream, auto -> aliyun:actiontrail", {
            "delivery": "stream", "sourcetype": "auto", "logstore": ACTIONTRAIL_LOGSTORE}),
        Contender("hec", "add-on, HEC, no ack", {"delivery": "hec", "hec_destination": "bench_noack"}),
        Contender("hec_ack", "add-on, HEC, ack", {"delivery": "hec", "hec_destination": "bench_ack"}),
        Contender("workers2", "add-on, workers=2 (%s)" % workers_delivery, workers_params),
        Contender("reference", "reference: SDK ConsumerWorker, 1 event/POST", {}),
    ]


class Bench:
    """The services and the sequence of contenders."""

    def __init__(self, args: argparse.Namespace, mode: Mode, app_dir: str) -> None:
        self.args = args
        self.mode = mode
        self.app_dir = app_dir
        self.python = resolve_python(args.python)
        self.sls: Optional[SlsServer] = None
        self.hec: Optional[HecSink] = None
        self.splunkd: Optional[SplunkdDouble] = None
        self.runner: Optional[ModInputRunner] = None
        self.expected = 0
        self.raw_bytes = 0
        self.run_id = time.strftime("%H%M%S")

    def __enter__(self) -> "Bench":
        with_actiontrail = "actiontrail" in self.args.only.split(",")
        say("loading %.0f MB%s into the SLS emulator (%d shards)" % (
            self.mode.size_mb, " x 2 (generic, ActionTrail shape A)" if with_actiontrail else "", self.args.shards))
        self.sls = SlsServer(self.mode.size_mb, self.args.shards, ACTIONTRAIL_LOGSTORE if with_actiontrail else "")
        self.expected = int(self.sls.info["events"])
        self.raw_bytes = int(self.sls.info["raw_bytes"])
        for name, loaded in self.sls.info["logstores"].items():
            say("loaded %s: %d %s events, %.1f MB raw, %d log groups" % (
                name, loaded["events"], loaded["kind"], loaded["raw_bytes"] / 1e6, loaded["log_groups"]))
        say("loading took %.1f s" % self.sls.info["load_seconds"])
        self.hec = HecSink()
        self.splunkd = SplunkdDouble(confs=app_default_confs(self.app_dir), server_name="hf1")
        self.splunkd.start()
        self.splunkd.store_encrypted("ta_aliyun_sls_account", "acct1", {"access_key_secret": AK_SECRET},
                                     {"access_key_id": AK_ID, "credential_type": "access_key"})
        for name, token, ack in (("bench_noack", HEC_TOKEN, "0"), ("bench_ack", HEC_ACK_TOKEN, "1")):
            self.splunkd.store_encrypted("ta_aliyun_sls_hec_destination", name, {"token": token},
                                         {"url": self.hec.url, "use_ack": ack, "verify_tls": "0", "gzip": "0"})
        self.runner = ModInputRunner(self.app_dir, self.python)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.runner is not None:
            self.runner.cleanup()
        if self.splunkd is not None:
            self.splunkd.stop()
        if self.hec is not None:
            self.hec.close()
        if self.sls is not None:
            self.sls.close()

    @property
    def bytes_per_event(self) -> float:
        return self.raw_bytes / self.expected

    def data_of(self, contender: Contender) -> Tuple[int, float]:
        """(events, raw bytes per event) of the contender's logstore."""
        assert self.sls is not None
        loaded = self.sls.info["logstores"][contender.logstore]
        return int(loaded["events"]), loaded["raw_bytes"] / loaded["events"]

    # -------------------------------------------------------------------------------------- add-on
    def addon_params(self, contender: Contender, group: str) -> Dict[str, str]:
        assert self.sls is not None
        params = {"account": "acct1", "endpoint": self.sls.url, "project": PROJECT, "logstore": LOGSTORE,
                  "consumer_group": group, "start_position": "begin", "index": "main", "sourcetype": "aliyun:sls",
                  # A short heartbeat lets a second worker take its shards within the run; checkpoints every
                  # second so "all checkpointed" is seen soon after "all delivered".
                  "heartbeat_interval": "3", "checkpoint_interval": "1", "interval": "60"}
        params.update(contender.params)
        return params

    def run_addon(self, contender: Contender) -> Result:
        assert self.runner is not None and self.splunkd is not None and self.hec is not None and self.sls is not None
        expected, bytes_per_event = self.data_of(contender)
        result = Result(contender.key, contender.label, events_expected=expected, python=python_version(self.python))
        if contender.key == "workers2" and not os.path.isfile(
                os.path.join(self.app_dir, "bin", "sls_forwarder", "workers.py")):
            result.status = "not available"
            result.reason = "the built app has no sls_forwarder/workers.py (workers = N is not implemented yet)"
            return result
        group = "bench-%s-%s" % (contender.key.replace("_", "-"), self.run_id)
        name = "bench_" + contender.key
        definition = self.runner.input_definition(name, self.addon_params(contender, group), self.splunkd.url,
                                                  self.splunkd.session_key, self.runner.default_checkpoint_dir())
        self.hec.reset()
        started = time.monotonic()
        process = subprocess.Popen([self.runner.python, self.runner.script_path], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.runner.cwd,
                                   env=self.runner.environment())
        sampler = TreeSampler(process.pid)
        stdout = StreamCounter(process.stdout, "bench-stdout")  # type: ignore[arg-type]
        stderr = TailBuffer(process.stderr, "bench-stderr")  # type: ignore[arg-type]
        assert process.stdin is not None
        process.stdin.write(definition.encode("utf-8"))
        process.stdin.close()
        counts = stdout.counts if contender.params.get("delivery") == "stream" else self.hec.counts
        try:
            window = monitor(process, counts, expected, started, sampler, cap=None, timeout=self.mode.timeout,
                             checkpointed=lambda: self.sls.checkpointed(group, contender.logstore))  # type: ignore
        finally:
            result.exit_code, killed, result.stop_s = stop_process(process)
            stdout.join(10)
        self.fill(result, window, sampler, bytes_per_event)
        if killed:
            result.notes.append("did not stop within %.0f s of SIGTERM (killed)" % STOP_TIMEOUT)
        if contender.params.get("delivery") != "stream" and stdout.counts()[0]:
            result.notes.append("also wrote %d events to stdout" % stdout.counts()[0])
        if window.outcome == "delivered" and window.checkpoint_s is None:
            result.status = "failed"
            result.reason = "every event arrived but the checkpoints did not reach the end within the timeout"
        elif window.outcome != "delivered":
            result.status = "failed" if window.outcome == "exited" or not window.distinct else "partial"
            result.reason = "%s after %.0f s with %d of %d events" % (
                "exited (code %s)" % process.returncode if window.outcome == "exited" else "timed out",
                window.wall_s, window.distinct, expected)
            if contender.key == "workers2" and not window.distinct:
                result.status = "not available"
            result.reason += "; stderr/log tail: " + self.failure_tail(name, stderr)
        if contender.key == "workers2" and result.max_processes < 3 and result.status == "ok":
            result.notes.append("only %d processes seen in the input's tree" % result.max_processes)
        if result.exit_code not in (0, None) and result.status == "ok":
            result.notes.append("exit code %s after SIGTERM" % result.exit_code)
        return result

    def failure_tail(self, name: str, stderr: TailBuffer) -> str:
        assert self.runner is not None
        log_path = os.path.join(self.runner.log_dir, "ta-aliyun-sls_%s.log" % name)
        log = open(log_path, encoding="utf-8", errors="replace").read() if os.path.exists(log_path) else ""
        lines = [line for line in (stderr.text() + "\n" + log).splitlines() if line.strip()]
        errors = [line for line in lines if "ERROR" in line or "Error" in line or "Traceback" in line]
        return " | ".join((errors or lines)[-3:])[-600:] or "(empty)"

    # ----------------------------------------------------------------------------------- reference
    def run_reference(self, contender: Contender) -> Result:
        assert self.sls is not None and self.hec is not None
        result = Result(contender.key, contender.label, events_expected=self.expected,
                        python=sys.version.split()[0])
        group = "bench-reference-" + self.run_id
        endpoint = self.sls.url.split("://", 1)[1]
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "https_proxy", "all_proxy")}
        env["HTTP_PROXY"] = env["http_proxy"] = self.sls.url  # the SDK reaches host:port only via a proxy
        self.hec.reset()
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.reference_consumer", "--endpoint", endpoint, "--access-key-id", AK_ID,
             "--access-key-secret", AK_SECRET, "--project", PROJECT, "--logstore", LOGSTORE, "--group", group,
             "--consumer", group + "-1", "--hec-url", self.hec.url, "--hec-token", HEC_TOKEN],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sampler = TreeSampler(process.pid)
        stderr = TailBuffer(process.stderr, "bench-reference-stderr")  # type: ignore[arg-type]
        cap = self.args.reference_seconds if self.args.reference_seconds is not None else self.mode.reference_seconds
        try:
            window = monitor(process, self.hec.counts, self.expected, started, sampler, cap=cap,
                             timeout=self.mode.timeout, checkpointed=None)
        finally:
            result.exit_code, _, result.stop_s = stop_process(process)
        self.fill(result, window, sampler)
        if window.outcome == "capped":
            result.status = "partial"
            result.notes.append("stopped after %.0f s (cap) with %d of %d events: its MB are the events delivered "
                                "x the data set's mean raw bytes per event (%.0f); not extrapolated"
                                % (cap, window.distinct, self.expected, self.bytes_per_event))
        elif window.outcome == "delivered":
            result.notes.append("all events delivered; its checkpoints are the SDK's (60 s interval), not waited for")
        else:
            result.status = "failed" if not window.distinct else "partial"
            result.reason = "%s after %.0f s with %d events; stderr tail: %s" % (
                window.outcome, window.wall_s, window.distinct, stderr.text().strip()[-600:] or "(empty)")
        return result

    # ------------------------------------------------------------------------------------- figures
    def fill(self, result: Result, window: Window, sampler: TreeSampler,
             bytes_per_event: Optional[float] = None) -> None:
        result.events_received = window.events
        result.events_distinct = window.distinct
        result.duplicates = window.events - window.distinct
        result.raw_mb = window.distinct * (bytes_per_event or self.bytes_per_event) / 1e6
        result.wall_s = window.wall_s
        result.cpu_s = window.cpu_s
        result.startup_s = window.first_event_s
        result.checkpoint_s = window.checkpoint_s
        result.wall_mb_s = result.raw_mb / window.wall_s if window.wall_s else 0.0
        result.mb_per_cpu_s = result.raw_mb / window.cpu_s if window.cpu_s else 0.0
        result.events_s = window.distinct / window.wall_s if window.wall_s else 0.0
        result.peak_rss_mb = sampler.peak_rss / 1e6
        result.max_processes = sampler.max_processes

    def run(self, keys: List[str]) -> List[Result]:
        results = []
        for contender in contenders(self.args.workers_delivery):
            if contender.key not in keys:
                continue
            say("running %s" % contender.label)
            assert self.sls is not None and self.hec is not None
            before = (process_cpu(self.sls.process.pid), process_cpu(self.hec.process.pid))
            result = self.run_reference(contender) if contender.key == "reference" else self.run_addon(contender)
            result.sls_emulator_cpu_s = process_cpu(self.sls.process.pid) - before[0]
            result.hec_sink_cpu_s = process_cpu(self.hec.process.pid) - before[1]
            say("  %s: %s" % (result.status, summary(result)))
            results.append(result)
        reference = next((r for r in results if r.key == "reference" and r.mb_per_cpu_s), None)
        for result in results:
            if reference is not None and result.status in ("ok", "partial"):
                result.ratio_cpu = result.mb_per_cpu_s / reference.mb_per_cpu_s
                result.ratio_wall = result.wall_mb_s / reference.wall_mb_s
        return results


# ------------------------------------------------------------------------------------------------ reporting
_BEGAN = time.monotonic()


def say(message: str) -> None:
    print("[bench %5.1fs] %s" % (time.monotonic() - _BEGAN, message), flush=True)


def summary(result: Result) -> str:
    if result.status == "not available":
        return result.reason
    text = "%.1f MB in %.1f s, %.1f MB/s, %.1f MB/CPU-s, peak RSS %.0f MB" % (
        result.raw_mb, result.wall_s, result.wall_mb_s, result.mb_per_cpu_s, result.peak_rss_mb)
    return text + ("; " + result.reason if result.reason else "")


def resolve_python(choice: str) -> str:
    """``3.9``/``3.13`` (pyenv, as the tests use) or a path."""
    found = interpreters()
    if choice in found:
        return found[choice]
    if os.path.isfile(choice):
        return choice
    raise SystemExit("no Python %r here (have %s)" % (choice, ", ".join(sorted(found))))


def python_version(python: str) -> str:
    completed = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                               text=True, check=True)
    return completed.stdout.strip()


def machine_info(app_dir: str) -> Dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    # Uncommitted changes under package/ mean the built add-on is not exactly that commit.
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "package"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    version = ""
    app_conf = os.path.join(app_dir, "default", "app.conf")
    if os.path.exists(app_conf):
        version = next((line.split("=", 1)[1].strip() for line in open(app_conf, encoding="utf-8")
                        if line.strip().startswith("version")), "")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": model,
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "os": platform.platform(),
        "driver_python": sys.version.split()[0],
        "commit": commit.stdout.strip() + ("+uncommitted package changes" if dirty else ""),
        "addon_version": version,
    }


COLUMNS = (("contender", 44), ("status", 13), ("raw MB", 8), ("wall s", 7), ("1st event s", 12), ("MB/s", 7),
           ("MB/CPU-s", 9), ("events/s", 9), ("RSS MB", 7), ("x ref CPU", 10), ("x ref wall", 11))


def _cells(result: Result) -> List[str]:
    if result.status == "not available":
        return [result.label, result.status] + ["-"] * (len(COLUMNS) - 2)

    def optional(value: Optional[float], pattern: str) -> str:
        return pattern % value if value is not None else "-"

    return [result.label, result.status, "%.1f" % result.raw_mb, "%.1f" % result.wall_s,
            optional(result.startup_s, "%.1f"), "%.1f" % result.wall_mb_s, "%.1f" % result.mb_per_cpu_s,
            "%.0f" % result.events_s,
            "%.0f" % result.peak_rss_mb, optional(result.ratio_cpu, "%.1f"), optional(result.ratio_wall, "%.1f")]


def text_table(results: List[Result]) -> str:
    lines = ["".join(name.ljust(width) if i == 0 else name.rjust(width) for i, (name, width) in enumerate(COLUMNS))]
    for result in results:
        lines.append("".join(cell.ljust(width) if i == 0 else cell.rjust(width)
                             for i, (cell, (_, width)) in enumerate(zip(_cells(result), COLUMNS))))
    return "\n".join(lines)


def notes_for(results: List[Result], report: Dict[str, Any]) -> List[str]:
    notes = []
    for result in results:
        for note in ([result.reason] if result.reason else []) + result.notes:
            notes.append("%s: %s" % (result.label, note))
        if result.status == "ok" and (result.duplicates or result.events_distinct != result.events_expected):
            notes.append("%s: %d duplicates, %d missing" % (result.label, result.duplicates,
                                                            result.events_expected - result.events_distinct))
    notes.append("Rates cover launch -> every event delivered, startup included ('1st event s' shows how long "
                 "that took). CPU = user+system of the forwarding process tree (psutil); the SLS emulator, HEC sink "
                 "and driver run in other processes and are not counted.")
    notes.append("add-on on Python %s; reference on Python %s (the test venv, where the SDK is installed)"
                 % (report["addon_python"], report["machine"]["driver_python"]))
    normalised = next((r for r in results if r.key == "actiontrail" and r.status == "ok"), None)
    generic = next((r for r in results if r.key == "stream" and r.status == "ok"), None)
    if normalised is not None:
        notes.append("add-on, stream, auto -> aliyun:actiontrail: its own data set of the same size, ActionTrail as a "
                     "trail delivers it (shape A: the record as JSON text in `event`, %.0f raw bytes per event), "
                     "normalised (parsed, key fields first, sls provenance)" % (
                         normalised.raw_mb * 1e6 / normalised.events_distinct if normalised.events_distinct else 0))
    if normalised is not None and generic is not None and generic.mb_per_cpu_s:
        share = normalised.mb_per_cpu_s / generic.mb_per_cpu_s
        notes.append("aliyun:actiontrail reaches %.0f%% of the generic stream path's MB/CPU-s in this run "
                     "(issue 11 requires at least %.0f%%): %s" % (100 * share, 100 * ACTIONTRAIL_FLOOR,
                                                                   "met" if share >= ACTIONTRAIL_FLOOR else "NOT MET"))
    return notes


def markdown(report: Dict[str, Any], results: List[Result]) -> str:
    machine, data = report["machine"], report["data"]
    lines = ["# TA-aliyun-sls throughput (%s run)" % report["mode"], "",
             "%s; %s, %s logical / %s physical cores, %s GB; load average at start %s; %s; commit %s, add-on %s."
             % (machine["date"], machine["cpu_model"], machine["logical_cores"], machine["physical_cores"],
                machine["memory_gb"], machine["load_average_at_start"], machine["os"], machine["commit"],
                machine["addon_version"]), "",
             "Data: %d ActionTrail-like events, %.1f MB raw (uncompressed LogGroup bytes), %d log groups of %d logs, "
             "%d shards, seed %d." % (data["events"], data["raw_bytes"] / 1e6, data["log_groups"],
                                      data["logs_per_group"], data["shards"], data["seed"]), "",
             "| " + " | ".join(name for name, _ in COLUMNS) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|"]
    lines += ["| " + " | ".join(_cells(result)) + " |" for result in results]
    lines += ["", "Notes:", ""] + ["- " + note for note in report["notes"]]
    lines += ["", "Rerun: `python3 build.py bench%s`." % (" --quick" if report["mode"] == "quick" else "")]
    return "\n".join(lines) + "\n"


def write_results(report: Dict[str, Any], results: List[Result], out_dir: str) -> Tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, "latest" if report["mode"] == "full" else "latest-" + report["mode"])
    with open(stem + ".json", "w", encoding="utf-8") as handle:
        json.dump(dict(report, results=[asdict(r) for r in results]), handle, indent=2)
        handle.write("\n")
    with open(stem + ".md", "w", encoding="utf-8") as handle:
        handle.write(markdown(report, results))
    return stem + ".json", stem + ".md"


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="%.0f MB, reference capped at %.0f s (under 2 minutes)"
                        % (QUICK.size_mb, QUICK.reference_seconds))
    parser.add_argument("--size-mb", type=float, help="raw MB to load (default %.0f, quick %.0f)"
                        % (FULL.size_mb, QUICK.size_mb))
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--python", default="3.13", help="the add-on's interpreter: 3.9, 3.13 or a path")
    parser.add_argument("--only", default=",".join(ALL_CONTENDERS),
                        help="comma-separated subset of %s" % ",".join(ALL_CONTENDERS))
    parser.add_argument("--reference-seconds", type=float,
                        help="stop the reference consumer after this long (default %.0f, quick %.0f)"
                        % (FULL.reference_seconds, QUICK.reference_seconds))
    parser.add_argument("--workers-delivery", choices=("hec", "stream"), default="hec",
                        help="delivery of the workers=2 contender (default hec without ack)")
    parser.add_argument("--out", default=RESULTS_DIR, help="results folder")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(ALL_CONTENDERS)
    if unknown:
        parser.error("unknown contenders: %s" % ", ".join(sorted(unknown)))
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    mode = Mode(base.name, args.size_mb or base.size_mb, base.reference_seconds, base.timeout)
    app_dir = os.environ.get("TA_ALIYUN_SLS_APP", "")
    if not os.path.isfile(os.path.join(app_dir, "bin", "aliyun_sls.py")):
        print("TA_ALIYUN_SLS_APP=%r is not a built app; run `python3 build.py bench`" % app_dir, file=sys.stderr)
        return 2
    began = time.monotonic()
    machine = machine_info(app_dir)
    with Bench(args, mode, app_dir) as bench:
        results = bench.run(args.only.split(","))
        assert bench.sls is not None
        data = dict(bench.sls.info, shards=args.shards)
        addon_python = python_version(bench.python)
    report: Dict[str, Any] = {"mode": mode.name, "machine": machine, "data": data, "addon_python": addon_python,
                              "settings": {"size_mb": mode.size_mb, "reference_seconds": args.reference_seconds
                                           or mode.reference_seconds, "timeout": mode.timeout,
                                           "workers_delivery": args.workers_delivery},
                              "duration_s": 0.0}
    report["notes"] = notes_for(results, report)
    report["duration_s"] = round(time.monotonic() - began, 1)
    print()
    print(text_table(results))
    print()
    for note in report["notes"]:
        print("* " + note)
    json_path, md_path = write_results(report, results, args.out)
    say("wrote %s and %s (%.0f s in all)" % (os.path.relpath(json_path, ROOT), os.path.relpath(md_path, ROOT),
                                           report["duration_s"]))
    return 0 if all(r.status in ("ok", "partial", "not available") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
