"""The bench: the built add-on's throughput calibrated against the official SDK's C-accelerated ceiling, a unique-keys
contender, the many-shards table (memory under a backlog, idle CPU, wake-up delay) and the freshness table.

    python3 build.py bench [--quick] [-- --size-mb 50 --only stream,ceiling,freshness ...]
    TA_ALIYUN_SLS_APP=<built app> python -m bench.run [--quick] [options]   (from the repository root)

One SLS emulator process holds deterministic data sets; each throughput contender consumes all of its data set
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
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import psutil

from bench import freshness, many_shards
from bench.measure import TailBuffer, TreeSampler, Window, monitor, process_cpu, say, stop_process
from bench.services import AK_ID, AK_SECRET, HEC_TOKEN, PROJECT, AddonHost, SlsServer
from tests.splunk_runner import interpreters

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "bench", "results")
LOGSTORE = "actiontrail"
ACTIONTRAIL_LOGSTORE = "actiontrail_bench"  # shape-A ActionTrail for the aliyun:actiontrail contender
UNIQUE_KEYS_LOGSTORE = "unique_keys"        # logs whose keys never repeat (issue 13)
# Issue 11: normalising ActionTrail must keep at least this share of the generic path's MB per CPU-second.
ACTIONTRAIL_FLOOR = 0.5
# Issue 13's stretch goal: the generic stream path at this multiple of the SDK's C-accelerated ceiling (MB/CPU-s).
CEILING_STRETCH = 2.5
CONTENDER_KEYS = ("stream", "actiontrail", "hec", "hec_ack", "workers2", "unique_keys", "reference")
PART_KEYS = ("ceiling", "many_shards", "freshness")
ALL_KEYS = CONTENDER_KEYS + PART_KEYS
# Freshness loads at half of the capacity these contenders measure in the same run.
CAPACITY_CONTENDERS = {"stream": "stream", "hec": "hec"}


@dataclass(frozen=True)
class Mode:
    """Sizes of a run."""

    name: str
    size_mb: float
    reference_seconds: float    # the reference consumer is stopped after this long (one event per request is slow)
    timeout: float              # any other contender is given up after this long
    ceiling_mb: float           # raw MB of each data set the ceiling is measured on
    ceiling_rounds: int
    scale: many_shards.ScaleSettings
    fresh: freshness.FreshSettings


FULL = Mode("full", size_mb=200.0, reference_seconds=60.0, timeout=900.0, ceiling_mb=20.0, ceiling_rounds=3,
            scale=many_shards.FULL_SCALE, fresh=freshness.FULL_FRESH)
QUICK = Mode("quick", size_mb=64.0, reference_seconds=15.0, timeout=90.0, ceiling_mb=20.0, ceiling_rounds=3,
             scale=many_shards.QUICK_SCALE, fresh=freshness.QUICK_FRESH)


@dataclass
class Result:
    """One contender's row. Rates are over the measured window: from launch until every event was delivered
    (or until the cap or timeout, for a partial run)."""

    key: str
    label: str
    status: str = "ok"               # ok | partial | failed | not available
    reason: str = ""
    data_kind: str = ""              # the datagen kind of its data set
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
    ceiling_mb_per_cpu_s: Optional[float] = None   # the SDK's C-accelerated ceiling on the same data, this run
    ratio_ceiling: Optional[float] = None          # mb_per_cpu_s / ceiling_mb_per_cpu_s
    python: str = ""
    # CPU the emulators spent during the run (not counted above): shows whether they could have been the limit.
    sls_emulator_cpu_s: float = 0.0
    hec_sink_cpu_s: float = 0.0
    notes: List[str] = field(default_factory=list)

    @property
    def steady_mb_s(self) -> Optional[float]:
        """MB/s from the first event to the last: the capacity, without startup."""
        if self.status != "ok" or self.startup_s is None or self.wall_s <= self.startup_s:
            return None
        return self.raw_mb / (self.wall_s - self.startup_s)


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
        Contender("unique_keys", "add-on, stream, unique keys (1,000/log)", {
            "delivery": "stream", "logstore": UNIQUE_KEYS_LOGSTORE}),
        Contender("reference", "reference: SDK ConsumerWorker, 1 event/POST", {}),
    ]


def data_sets(keys: Sequence[str]) -> Dict[str, str]:
    """{logstore: kind} the selected parts consume."""
    sets = {LOGSTORE: "actiontrail"}  # the generic set: every table's reference point
    if "actiontrail" in keys:
        sets[ACTIONTRAIL_LOGSTORE] = "actiontrail_json"
    if "unique_keys" in keys:
        sets[UNIQUE_KEYS_LOGSTORE] = "unique_keys"
    return sets


class Bench:
    """The services and the sequence of throughput contenders."""

    def __init__(self, args: argparse.Namespace, mode: Mode, app_dir: str, keys: Sequence[str]) -> None:
        self.args = args
        self.mode = mode
        self.app_dir = app_dir
        self.python = resolve_python(args.python)
        self.sets = data_sets(keys)
        self.sls: Optional[SlsServer] = None
        self.host = AddonHost(app_dir, self.python)
        self.run_id = time.strftime("%H%M%S")

    def __enter__(self) -> "Bench":
        say("loading %.0f MB of each of %s into the SLS emulator (%d shards)" % (
            self.mode.size_mb, ", ".join(sorted(set(self.sets.values()))), self.args.shards))
        self.sls = SlsServer(["%s=%s:%g" % (name, kind, self.mode.size_mb) for name, kind in self.sets.items()],
                             self.args.shards)
        for name, loaded in self.sls.info["logstores"].items():
            say("loaded %s: %d %s events, %.1f MB raw, %d log groups" % (
                name, loaded["events"], loaded["kind"], loaded["raw_bytes"] / 1e6, loaded["log_groups"]))
        say("loading took %.1f s" % self.sls.info["load_seconds"])
        self.host.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.host.__exit__(*exc_info)
        if self.sls is not None:
            self.sls.close()

    def data_of(self, logstore: str) -> Tuple[int, float]:
        """(events, raw bytes per event) of a loaded logstore."""
        assert self.sls is not None
        loaded = self.sls.logstore(logstore)
        return int(loaded["events"]), loaded["raw_bytes"] / loaded["events"]

    # -------------------------------------------------------------------------------------- add-on
    def run_addon(self, contender: Contender) -> Result:
        assert self.sls is not None and self.host.hec is not None
        hec = self.host.hec
        expected, bytes_per_event = self.data_of(contender.logstore)
        result = Result(contender.key, contender.label, events_expected=expected, python=python_version(self.python),
                        data_kind=self.sets[contender.logstore])
        if contender.key == "workers2" and not os.path.isfile(
                os.path.join(self.app_dir, "bin", "sls_forwarder", "workers.py")):
            result.status = "not available"
            result.reason = "the built app has no sls_forwarder/workers.py (workers = N is not implemented yet)"
            return result
        group = "bench-%s-%s" % (contender.key.replace("_", "-"), self.run_id)
        name = "bench_" + contender.key
        hec.reset()
        overrides = {key: value for key, value in contender.params.items() if key != "logstore"}
        params = AddonHost.params(self.sls.url, contender.logstore, group, **overrides)
        running = self.host.launch(name, params)
        counts = running.stdout.counts if contender.params.get("delivery") == "stream" else hec.counts
        try:
            window = monitor(running.process, counts, expected, running.started, running.sampler, cap=None,
                             timeout=self.mode.timeout,
                             checkpointed=lambda: self.sls.checkpointed(group, contender.logstore))  # type: ignore
        finally:
            result.exit_code, killed, result.stop_s = running.stop()
        self.fill(result, window, running.sampler, bytes_per_event)
        if killed:
            result.notes.append("did not stop within the SIGTERM grace period (killed)")
        if contender.params.get("delivery") != "stream" and running.stdout.counts()[0]:
            result.notes.append("also wrote %d events to stdout" % running.stdout.counts()[0])
        if window.outcome == "delivered" and window.checkpoint_s is None:
            result.status = "failed"
            result.reason = "every event arrived but the checkpoints did not reach the end within the timeout"
        elif window.outcome != "delivered":
            result.status = "failed" if window.outcome == "exited" or not window.distinct else "partial"
            result.reason = "%s after %.0f s with %d of %d events" % (
                "exited (code %s)" % running.process.returncode if window.outcome == "exited" else "timed out",
                window.wall_s, window.distinct, expected)
            if contender.key == "workers2" and not window.distinct:
                result.status = "not available"
            result.reason += "; stderr/log tail: " + self.host.failure_tail(name, running)
        if contender.key == "workers2" and result.max_processes < 3 and result.status == "ok":
            result.notes.append("only %d processes seen in the input's tree" % result.max_processes)
        if result.exit_code not in (0, None) and result.status == "ok":
            result.notes.append("exit code %s after SIGTERM" % result.exit_code)
        return result

    # ----------------------------------------------------------------------------------- reference
    def run_reference(self, contender: Contender) -> Result:
        assert self.sls is not None and self.host.hec is not None
        hec = self.host.hec
        expected, bytes_per_event = self.data_of(LOGSTORE)
        result = Result(contender.key, contender.label, events_expected=expected, python=sys.version.split()[0],
                        data_kind=self.sets[LOGSTORE])
        group = "bench-reference-" + self.run_id
        endpoint = self.sls.url.split("://", 1)[1]
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "https_proxy", "all_proxy")}
        env["HTTP_PROXY"] = env["http_proxy"] = self.sls.url  # the SDK reaches host:port only via a proxy
        hec.reset()
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.reference_consumer", "--endpoint", endpoint, "--access-key-id", AK_ID,
             "--access-key-secret", AK_SECRET, "--project", PROJECT, "--logstore", LOGSTORE, "--group", group,
             "--consumer", group + "-1", "--hec-url", hec.url, "--hec-token", HEC_TOKEN],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sampler = TreeSampler(process.pid)
        stderr = TailBuffer(process.stderr, "bench-reference-stderr")  # type: ignore[arg-type]
        cap = self.args.reference_seconds if self.args.reference_seconds is not None else self.mode.reference_seconds
        try:
            window = monitor(process, hec.counts, expected, started, sampler, cap=cap,
                             timeout=self.mode.timeout, checkpointed=None)
        finally:
            result.exit_code, _, result.stop_s = stop_process(process)
        self.fill(result, window, sampler, bytes_per_event)
        if window.outcome == "capped":
            result.status = "partial"
            result.notes.append("stopped after %.0f s (cap) with %d of %d events: its MB are the events delivered "
                                "x the data set's mean raw bytes per event (%.0f); not extrapolated"
                                % (cap, window.distinct, expected, bytes_per_event))
        elif window.outcome == "delivered":
            result.notes.append("all events delivered; its checkpoints are the SDK's (60 s interval), not waited for")
        else:
            result.status = "failed" if not window.distinct else "partial"
            result.reason = "%s after %.0f s with %d events; stderr tail: %s" % (
                window.outcome, window.wall_s, window.distinct, stderr.text().strip()[-600:] or "(empty)")
        return result

    # ------------------------------------------------------------------------------------- figures
    @staticmethod
    def fill(result: Result, window: Window, sampler: TreeSampler, bytes_per_event: float) -> None:
        result.events_received = window.events
        result.events_distinct = window.distinct
        result.duplicates = window.events - window.distinct
        result.raw_mb = window.distinct * bytes_per_event / 1e6
        result.wall_s = window.wall_s
        result.cpu_s = window.cpu_s
        result.startup_s = window.first_event_s
        result.checkpoint_s = window.checkpoint_s
        result.wall_mb_s = result.raw_mb / window.wall_s if window.wall_s else 0.0
        result.mb_per_cpu_s = result.raw_mb / window.cpu_s if window.cpu_s else 0.0
        result.events_s = window.distinct / window.wall_s if window.wall_s else 0.0
        result.peak_rss_mb = sampler.peak_rss / 1e6
        result.max_processes = sampler.max_processes

    def run(self, keys: Sequence[str]) -> List[Result]:
        assert self.sls is not None and self.host.hec is not None
        results = []
        for contender in contenders(self.args.workers_delivery):
            if contender.key not in keys:
                continue
            say("running %s" % contender.label)
            before = (process_cpu(self.sls.process.pid), process_cpu(self.host.hec.process.pid))
            result = self.run_reference(contender) if contender.key == "reference" else self.run_addon(contender)
            result.sls_emulator_cpu_s = process_cpu(self.sls.process.pid) - before[0]
            result.hec_sink_cpu_s = process_cpu(self.host.hec.process.pid) - before[1]
            say("  %s: %s" % (result.status, summary(result)))
            results.append(result)
        reference = next((r for r in results if r.key == "reference" and r.mb_per_cpu_s), None)
        for result in results:
            if reference is not None and result.status in ("ok", "partial"):
                result.ratio_cpu = result.mb_per_cpu_s / reference.mb_per_cpu_s
                result.ratio_wall = result.wall_mb_s / reference.wall_mb_s
        return results


# ------------------------------------------------------------------------------------------------ ceiling
def measure_ceilings(kinds: Sequence[str], mode: Mode) -> Dict[str, Dict[str, Any]]:
    """The SDK's C-accelerated ceiling (bench/micro.py's reference row: protobuf parse, flattening, json.dumps per
    event, sending nothing) on each data set kind, in the test venv (this interpreter), one after another."""
    ceilings: Dict[str, Dict[str, Any]] = {}
    for kind in kinds:
        completed = subprocess.run(
            [sys.executable, "-m", "bench.micro", "--kind", kind, "--mb", str(min(mode.ceiling_mb, mode.size_mb)),
             "--rounds", str(mode.ceiling_rounds), "--rows", "reference", "--json"],
            cwd=ROOT, capture_output=True, text=True)
        if completed.returncode != 0:
            say("  ceiling on %s failed: %s" % (kind, completed.stderr.strip()[-400:]))
            continue
        report = json.loads(completed.stdout)
        if not report["rows"]:
            say("  ceiling on %s: the official SDK is not installed in %s" % (kind, sys.executable))
            continue
        row = report["rows"][0]
        ceilings[kind] = {"mb_per_cpu_s": row["raw_mb_per_cpu_s"], "events_per_cpu_s": row["events_per_cpu_s"],
                          "raw_mb": report["raw_mb"], "rounds": report["rounds"], "python": report["python"],
                          "protobuf": report["protobuf"]}
        say("  ceiling on %s: %.1f MB/CPU-s (%.0f MB, best of %d, Python %s, protobuf %s)" % (
            kind, row["raw_mb_per_cpu_s"], report["raw_mb"], report["rounds"], report["python"], report["protobuf"]))
    return ceilings


def apply_ceilings(results: List[Result], ceilings: Dict[str, Dict[str, Any]]) -> None:
    for result in results:
        ceiling = ceilings.get(result.data_kind)
        if ceiling is None or result.key == "reference":
            continue
        result.ceiling_mb_per_cpu_s = ceiling["mb_per_cpu_s"]
        if result.status in ("ok", "partial") and result.mb_per_cpu_s:
            result.ratio_ceiling = result.mb_per_cpu_s / ceiling["mb_per_cpu_s"]


# ------------------------------------------------------------------------------------------------ reporting
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


COLUMNS = (("contender", 42), ("status", 8), ("raw MB", 7), ("wall s", 7), ("1st event s", 12), ("MB/s", 7),
           ("MB/CPU-s", 9), ("ceiling", 8), ("x ceiling", 10), ("events/s", 9), ("RSS MB", 7), ("x ref CPU", 10),
           ("x ref wall", 11))


def optional(value: Optional[float], pattern: str) -> str:
    return pattern % value if value is not None else "-"


def _cells(result: Result) -> List[str]:
    if result.status == "not available":
        return [result.label, result.status] + ["-"] * (len(COLUMNS) - 2)
    return [result.label, result.status, "%.1f" % result.raw_mb, "%.1f" % result.wall_s,
            optional(result.startup_s, "%.1f"), "%.1f" % result.wall_mb_s, "%.1f" % result.mb_per_cpu_s,
            optional(result.ceiling_mb_per_cpu_s, "%.1f"), optional(result.ratio_ceiling, "%.2f"),
            "%.0f" % result.events_s, "%.0f" % result.peak_rss_mb, optional(result.ratio_cpu, "%.1f"),
            optional(result.ratio_wall, "%.1f")]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned first column, right-aligned others, each as wide as its widest cell."""
    widths = [max(len(str(cell)) for cell in column) + 2 for column in zip(headers, *rows)]
    return "\n".join("".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                             for i, (cell, width) in enumerate(zip(line, widths)))
                     for line in [headers, *rows])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    return (["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
            + ["| " + " | ".join(row) + " |" for row in rows])


def tables(results: List[Result], scale_rows: List[many_shards.ShardsRow],
           fresh_rows: List[freshness.FreshRow]) -> List[Tuple[str, Sequence[str], List[List[str]]]]:
    """(title, headers, rows) of every table the run has."""
    out: List[Tuple[str, Sequence[str], List[List[str]]]] = []
    if results:
        out.append(("Throughput, calibrated (ceiling = the official SDK's C-accelerated parse + flatten + json.dumps "
                    "on the same data, this run, MB/CPU-s)", [name for name, _ in COLUMNS],
                    [_cells(result) for result in results]))
    if scale_rows:
        out.append(("Many shards (stream; backlog read at %.1f MB/s; idle = every shard empty)"
                    % scale_rows[0].reader_mb_s, many_shards.HEADERS, [many_shards.cells(row) for row in scale_rows]))
    if fresh_rows:
        out.append(("Freshness: put -> delivered (stream: read from stdout; HEC: received by the sink)",
                    freshness.HEADERS, [freshness.cells(row) for row in fresh_rows]))
    return out


def notes_for(results: List[Result], report: Dict[str, Any], scale_rows: List[many_shards.ShardsRow],
              fresh_rows: List[freshness.FreshRow]) -> List[str]:
    notes = []
    for result in results:
        for note in ([result.reason] if result.reason else []) + result.notes:
            notes.append("%s: %s" % (result.label, note))
        if result.status == "ok" and (result.duplicates or result.events_distinct != result.events_expected):
            notes.append("%s: %d duplicates, %d missing" % (result.label, result.duplicates,
                                                            result.events_expected - result.events_distinct))
    if results:
        notes.append("Rates cover launch -> every event delivered, startup included ('1st event s' shows how long "
                     "that took). CPU = user+system of the forwarding process tree (psutil); the SLS emulator, HEC "
                     "sink and driver run in other processes and are not counted.")
        notes.append("add-on on Python %s; reference and ceiling on Python %s (the test venv, where the SDK is "
                      "installed)" % (report["addon_python"], report["machine"]["driver_python"]))
    ceilings = report.get("ceilings") or {}
    if ceilings:
        notes.append("ceiling: " + "; ".join(
            "%s %.1f MB/CPU-s (%.0f MB, best of %d, protobuf %s)" % (kind, c["mb_per_cpu_s"], c["raw_mb"],
                                                                      c["rounds"], c["protobuf"])
            for kind, c in ceilings.items()) + ". Each contender is divided by the ceiling of its own data set.")
    generic = next((r for r in results if r.key == "stream" and r.status == "ok"), None)
    if generic is not None and generic.ratio_ceiling is not None:
        notes.append("stretch goal (issue 13): the generic stream path at %.1fx the ceiling's MB/CPU-s or more; this "
                     "run %.2fx: %s" % (CEILING_STRETCH, generic.ratio_ceiling,
                                        "met" if generic.ratio_ceiling >= CEILING_STRETCH else "not met"))
    normalised = next((r for r in results if r.key == "actiontrail" and r.status == "ok"), None)
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
    unique = next((r for r in results if r.key == "unique_keys" and r.status in ("ok", "partial")), None)
    if unique is not None:
        notes.append("add-on, stream, unique keys: its own data set of the same size, %.0f raw bytes per log, about "
                     "1,000 keys per log that occur in no other log (producers with dynamic keys)"
                     % (unique.raw_mb * 1e6 / unique.events_distinct if unique.events_distinct else 0))
    for row in scale_rows:
        notes += ["many shards, %d: %s" % (row.shards, note) for note in row.notes]
    if scale_rows:
        budget = scale_rows[0].max_inflight_mb
        notes.append("many shards: %s; 'peak RSS' is the input's process tree over the backlog window, 'idle CPU %%' "
                     "its CPU over %.0f s once every shard was owned and startup settled, 'wake-up' the delay from "
                     "putting one log on an idle shard to its arrival on stdout (%d puts on different shards)" % (
                         "max_inflight_mb = %d passed to the input" % budget if budget is not None
                         else "the built app has no max_inflight_mb parameter (nothing passed)",
                         scale_rows[0].idle_window_s, len(scale_rows[0].wake_delays_s)))
    for row in fresh_rows:
        notes += ["freshness, %s, %s: %s" % (row.delivery, row.load, note) for note in row.notes]
    generic_ceiling = ceilings.get("actiontrail")
    for row in fresh_rows:
        if row.load != "trickle" and row.status == "ok" and row.cpu_pct and generic_ceiling:
            steady = row.put_mb_s / (row.cpu_pct / 100)
            notes.append("freshness, %s, half capacity: %.1f MB/CPU-s steady (no startup in the window), %.2fx the "
                         "ceiling" % (row.delivery, steady, steady / generic_ceiling["mb_per_cpu_s"]))
    if fresh_rows:
        notes.append("freshness: %.0f s of puts per row on a fresh %d-shard Logstore (trickle: 1 log per second per "
                     "shard; half capacity: half the steady MB/s (first to last event) of the same delivery's "
                     "throughput contender in this run, in groups of 10 logs); 'input CPU %%' is the input's CPU over "
                     "that window as %% of one core" % (fresh_rows[0].window_s, fresh_rows[0].shards))
    return notes


def markdown(report: Dict[str, Any], table_list: List[Tuple[str, Sequence[str], List[List[str]]]]) -> str:
    machine, data = report["machine"], report["data"]
    lines = ["# TA-aliyun-sls bench (%s run)" % report["mode"], "",
             "%s; %s, %s logical / %s physical cores, %s GB; load average at start %s; %s; commit %s, add-on %s."
             % (machine["date"], machine["cpu_model"], machine["logical_cores"], machine["physical_cores"],
                machine["memory_gb"], machine["load_average_at_start"], machine["os"], machine["commit"],
                machine["addon_version"]), ""]
    lines += ["Data: " + "; ".join(
        "`%s`: %d %s events, %.1f MB raw, %d log groups of %d logs, %d shards, seed %d" % (
            name, d["events"], d["kind"], d["raw_bytes"] / 1e6, d["log_groups"], d["logs_per_group"], d["shards"],
            d["seed"]) for name, d in data.items()) + ".", ""]
    for title, headers, rows in table_list:
        lines += ["## " + title, ""] + markdown_table(headers, rows) + [""]
    lines += ["Notes:", ""] + ["- " + note for note in report["notes"]]
    lines += ["", "Rerun: `python3 build.py bench%s`." % (" --quick" if report["mode"] == "quick" else "")]
    return "\n".join(lines) + "\n"


def write_results(report: Dict[str, Any], markdown_text: str, out_dir: str) -> Tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, "latest" if report["mode"] == "full" else "latest-" + report["mode"])
    with open(stem + ".json", "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    with open(stem + ".md", "w", encoding="utf-8") as handle:
        handle.write(markdown_text)
    return stem + ".json", stem + ".md"


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data sets and windows (about 4 minutes)")
    parser.add_argument("--size-mb", type=float, help="raw MB to load per data set (default %.0f, quick %.0f)"
                        % (FULL.size_mb, QUICK.size_mb))
    parser.add_argument("--shards", type=int, default=8, help="shards of the throughput and freshness Logstores")
    parser.add_argument("--python", default="3.13", help="the add-on's interpreter: 3.9, 3.13 or a path")
    parser.add_argument("--only", default=",".join(ALL_KEYS),
                        help="comma-separated subset of %s (freshness also runs stream and hec, whose capacity it "
                             "loads at half)" % ",".join(ALL_KEYS))
    parser.add_argument("--reference-seconds", type=float,
                        help="stop the reference consumer after this long (default %.0f, quick %.0f)"
                        % (FULL.reference_seconds, QUICK.reference_seconds))
    parser.add_argument("--workers-delivery", choices=("hec", "stream"), default="hec",
                        help="delivery of the workers=2 contender (default hec without ack)")
    parser.add_argument("--out", default=RESULTS_DIR, help="results folder")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(ALL_KEYS)
    if unknown:
        parser.error("unknown parts: %s" % ", ".join(sorted(unknown)))
    return args


def selected_keys(only: str) -> List[str]:
    """The parts to run: freshness needs the capacity of the stream and HEC contenders of the same run."""
    keys = only.split(",")
    if "freshness" in keys:
        keys += [key for key in CAPACITY_CONTENDERS.values() if key not in keys]
    return keys


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    mode = Mode(base.name, args.size_mb or base.size_mb, base.reference_seconds, base.timeout, base.ceiling_mb,
                base.ceiling_rounds, base.scale, base.fresh)
    app_dir = os.environ.get("TA_ALIYUN_SLS_APP", "")
    if not os.path.isfile(os.path.join(app_dir, "bin", "aliyun_sls.py")):
        print("TA_ALIYUN_SLS_APP=%r is not a built app; run `python3 build.py bench`" % app_dir, file=sys.stderr)
        return 2
    keys = selected_keys(args.only)
    began = time.monotonic()
    machine = machine_info(app_dir)
    scale_rows: List[many_shards.ShardsRow] = []
    fresh_rows: List[freshness.FreshRow] = []
    ceilings: Dict[str, Dict[str, Any]] = {}
    with Bench(args, mode, app_dir, keys) as bench:
        assert bench.sls is not None
        results = bench.run(keys)
        if "ceiling" in keys:
            say("measuring the SDK's C-accelerated ceiling on each data set")
            ceilings = measure_ceilings(sorted(set(bench.sets.values())), mode)
            apply_ceilings(results, ceilings)
        if "many_shards" in keys:
            say("many shards")
            scale_rows = many_shards.ManyShards(bench.host, mode.scale, bench.run_id).run()
        if "freshness" in keys:
            say("freshness")
            capacities = {delivery: next((r.steady_mb_s for r in results if r.key == key), None)
                          for delivery, key in CAPACITY_CONTENDERS.items()}
            fresh_rows = freshness.Freshness(bench.host, bench.sls, mode.fresh, args.shards, bench.run_id,
                                             bench.data_of(LOGSTORE)[1]).run(capacities)
        data = bench.sls.info["logstores"]
        addon_python = python_version(bench.python)
    report: Dict[str, Any] = {"mode": mode.name, "machine": machine, "data": data, "addon_python": addon_python,
                              "settings": {"size_mb": mode.size_mb, "reference_seconds": args.reference_seconds
                                           or mode.reference_seconds, "timeout": mode.timeout,
                                           "workers_delivery": args.workers_delivery, "parts": keys,
                                           "scale": asdict(mode.scale), "freshness": asdict(mode.fresh)},
                              "ceilings": ceilings, "duration_s": 0.0}
    report["notes"] = notes_for(results, report, scale_rows, fresh_rows)
    report["duration_s"] = round(time.monotonic() - began, 1)
    report["results"] = [asdict(r) for r in results]
    report["many_shards"] = [dict(asdict(row), wake_median_s=row.wake_median_s, wake_max_s=row.wake_max_s)
                             for row in scale_rows]
    report["freshness"] = [asdict(row) for row in fresh_rows]
    table_list = tables(results, scale_rows, fresh_rows)
    for title, headers, rows in table_list:
        print()
        print(title)
        print(text_table(headers, rows))
    print()
    for note in report["notes"]:
        print("* " + note)
    json_path, md_path = write_results(report, markdown(report, table_list), args.out)
    say("wrote %s and %s (%.0f s in all)" % (os.path.relpath(json_path, ROOT), os.path.relpath(md_path, ROOT),
                                           report["duration_s"]))
    statuses = ([r.status for r in results] + [row.status for row in scale_rows] + [row.status for row in fresh_rows])
    return 0 if all(status in ("ok", "partial", "not available") for status in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
