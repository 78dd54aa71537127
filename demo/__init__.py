"""A five-minute look at TA-aliyun-sls with no Alibaba Cloud account and no Splunk.

    python3 build.py demo                        # builds the add-on if needed, then runs this
    python3 build.py demo -- --size-mb 200 --shards 8
    TA_ALIYUN_SLS_APP=<built app> python -m demo [options]   (from the repository root)

It starts, on 127.0.0.1 only: the SLS emulator loaded with a realistic data set (by default every source the add-on
routes: ActionTrail in its three shapes, WAF 3.0, OSS, SLB, Security Center alerts, Cloud Firewall traffic and an
application log), a splunkd double holding the add-on's configuration (account, HEC destination), and a HEC
emulator. Then it runs the BUILT add-on's modular input exactly as splunkd would launch it, with sourcetype
``auto``, first delivering as an XML event stream, then over HEC, with a live progress line, and ends with a
summary of what arrived, per sourcetype.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

from tests.emulators.hec import HecEmulator
from tests.emulators.sls.datagen import DataSpec, generate, spec_for_bytes
from tests.emulators.sls.server import SlsEmulator
from tests.emulators.splunkd import SplunkdDouble
from tests.splunk_runner import ModInputRunner, interpreters
from tests.splunk_runner.runner import read_conf

__all__ = ["main", "DemoResult"]

AK_ID = "LTAI5tDemoAccessKey"
AK_SECRET = "demo-secret-not-a-real-key"
HEC_TOKEN = "00000000-de00-4000-8000-000000000000"
PROJECT = "audit-prod"
LOGSTORE = "actiontrail"
ACCOUNT = "demo_account"
HEC_DESTINATION = "demo_hec"
MODES = ("stream", "hec")
POLL_INTERVAL = 0.5         # seconds between progress updates
PLAIN_PROGRESS_EVERY = 5.0  # without a terminal, one progress line per this many seconds
MB = 1024 * 1024
KIND_NAMES = {"soc_mixed": "ActionTrail (3 shapes), WAF 3.0, OSS, SLB, Security Center, Cloud Firewall and app logs",
              "mixed": "ActionTrail audit events, OSS and SLB access logs (with non-UTF-8 values and 256 KB events)",
              "actiontrail": "ActionTrail audit events", "actiontrail_json": "ActionTrail as a trail delivers it",
              "oss_access": "OSS access logs", "slb_access": "SLB access logs", "waf": "WAF 3.0 logs",
              "sas_alert": "Security Center alerts", "cloudfirewall": "Cloud Firewall traffic logs"}


@dataclass
class ModeResult:
    """What one delivery mode did."""

    mode: str
    put: int
    delivered: int = 0
    missing: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    delivered_mb: float = 0.0
    exit_code: Optional[int] = None
    checkpoints_at_end: bool = False
    timed_out: bool = False
    log_file: str = ""
    stderr_file: str = ""
    sample: Optional[Dict[str, Any]] = None
    sourcetypes: Dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.exit_code == 0 and self.checkpoints_at_end and not self.timed_out


@dataclass
class DemoResult:
    """Everything the summary reports."""

    spec: DataSpec
    shards: int
    sls_mb: float
    python: str
    modes: List[ModeResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.modes) and all(mode.ok for mode in self.modes)


class Progress:
    """One status line, redrawn in place on a terminal; an occasional plain line otherwise (logs, tests)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()
        self._last_plain = 0.0
        self._last_text = ""
        self._width = 0

    def show(self, text: str) -> None:
        if self.live:
            self.out.write("\r" + text.ljust(self._width))
            self._width = len(text)
            self.out.flush()
        elif time.monotonic() - self._last_plain >= PLAIN_PROGRESS_EVERY:
            self._last_plain = time.monotonic()
            self._print(text)

    def done(self, text: str) -> None:
        """The final state of a step, on a line of its own."""
        if self.live:
            self.out.write("\r" + text.ljust(self._width) + "\n")
            self.out.flush()
            self._width = 0
        elif text != self._last_text:
            self._print(text)

    def _print(self, text: str) -> None:
        self._last_text = text
        self.out.write(text + "\n")
        self.out.flush()


class Tally:
    """Delivered events seen so far, read incrementally from the stream parser or the HEC emulator."""

    def __init__(self, expected: int, body_of: Callable[[Dict[str, Any]], Tuple[Dict[str, Any], int]]) -> None:
        self.expected = expected
        self._body_of = body_of
        self.counts: Dict[str, int] = {}
        self.sourcetypes: Dict[str, int] = {}
        self.total = 0
        self.bytes = 0
        self.sample: Optional[Dict[str, Any]] = None

    def update(self, events: List[Dict[str, Any]]) -> None:
        for event in events[self.total:]:
            body, size = self._body_of(event)
            # Normalised ActionTrail events are the record itself: its eventId is the generator's event id.
            event_id = str(body.get("event_id") or body.get("eventId"))
            self.counts[event_id] = self.counts.get(event_id, 0) + 1
            self.bytes += size
            sourcetype = str(event.get("sourcetype"))
            self.sourcetypes[sourcetype] = self.sourcetypes.get(sourcetype, 0) + 1
            if self.sample is None or (sourcetype == "aliyun:actiontrail" and
                                       self.sample.get("sourcetype") != sourcetype):
                self.sample = event  # an ActionTrail event shows the normalisation best
        self.total = max(self.total, len(events))

    @property
    def unique(self) -> int:
        return len(self.counts)


def _stream_body(event: Dict[str, Any]) -> Tuple[Dict[str, Any], int]:
    data = event.get("data") or "{}"
    return json.loads(data), len(data.encode("utf-8"))


def _hec_body(event: Dict[str, Any]) -> Tuple[Dict[str, Any], int]:
    body = event.get("event") or {}
    return body, len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


class DemoWorld:
    """The emulators, the add-on's configuration in the splunkd double, and a splunkd-like runner."""

    def __init__(self, app_dir: str, python: str, workdir: str, hec_ack: bool, sourcetype: str = "auto") -> None:
        self.workdir = workdir
        self.sourcetype = sourcetype
        # A rerun in the same work dir must run the current build and start without old locks.
        for leftover in ("splunk-home", "checkpoints"):
            shutil.rmtree(os.path.join(workdir, leftover), ignore_errors=True)
        self.sls = SlsEmulator(access_keys={AK_ID: AK_SECRET})
        self.hec = HecEmulator(tokens={HEC_TOKEN: {"ack": hec_ack, "indexes": None, "disabled": False}})
        self.splunkd = SplunkdDouble(confs=_app_settings(app_dir), server_name="demo-hf")
        self.hec_ack = hec_ack
        # A SPLUNK_HOME of our own that is kept after the demo, so its logs can be read.
        self.runner = ModInputRunner(app_dir, python, splunk_home=os.path.join(workdir, "splunk-home"),
                                     server_host="demo-hf")
        self.checkpoint_dir = os.path.join(workdir, "checkpoints")
        os.makedirs(self.checkpoint_dir, exist_ok=True)

    def __enter__(self) -> "DemoWorld":
        self.sls.start()
        self.hec.start()
        self.splunkd.start()
        self.sls.create_project(PROJECT)
        self.splunkd.store_encrypted("ta_aliyun_sls_account", ACCOUNT, {"access_key_secret": AK_SECRET},
                                     {"access_key_id": AK_ID, "credential_type": "access_key"})
        self.splunkd.store_encrypted("ta_aliyun_sls_hec_destination", HEC_DESTINATION, {"token": HEC_TOKEN},
                                     {"url": self.hec.url, "use_ack": "1" if self.hec_ack else "0",
                                      "verify_tls": "0", "gzip": "0"})
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.splunkd.stop()
        self.hec.stop()
        self.sls.stop()

    def load(self, spec: DataSpec, shards: int, progress: Progress) -> float:
        """Put the data set into the logstore, log groups round-robin over the shards. Returns its size in MB."""
        self.sls.create_logstore(PROJECT, LOGSTORE, shard_count=shards)
        total = 0
        pending: Dict[int, List[bytes]] = {shard: [] for shard in range(shards)}
        for number, group in enumerate(generate(spec)):
            data = group.encode()
            total += len(data)
            shard = number % shards
            pending[shard].append(data)
            if len(pending[shard]) >= 256:  # a few large appends keep the emulator's state lock short
                self.sls.put_log_groups(PROJECT, LOGSTORE, shard, pending[shard])
                pending[shard] = []
                progress.show(f"loading SLS: {total / MB:6.1f} MB")
        for shard, groups in pending.items():
            if groups:
                self.sls.put_log_groups(PROJECT, LOGSTORE, shard, groups)
        progress.done(f"loaded SLS: {spec.event_count:,} events, {total / MB:.1f} MB in {shards} shards")
        return total / MB

    def params(self, mode: str) -> Dict[str, str]:
        """The input stanza (what an admin would save on the Inputs page), plus short demo intervals."""
        params = {"account": ACCOUNT, "endpoint": f"http://127.0.0.1:{self.sls.port}", "project": PROJECT,
                  "logstore": LOGSTORE, "consumer_group": f"splunk_{mode}", "start_position": "begin",
                  "delivery": mode, "index": "aliyun", "sourcetype": self.sourcetype, "interval": "60",
                  # Not on the setup page: shorter heartbeats and checkpoints so a one-minute demo settles fast.
                  "heartbeat_interval": "2", "checkpoint_interval": "1", "idle_poll_max": "0.5"}
        if mode == "hec":
            params["hec_destination"] = HEC_DESTINATION
        return params

    def checkpoints_at_end(self, group: str) -> bool:
        points = self.sls.checkpoints(PROJECT, LOGSTORE, group)
        return bool(points) and all(points[shard["shardID"]]["checkpoint"]
                                    == self.sls.end_cursor(PROJECT, LOGSTORE, shard["shardID"])
                                    for shard in self.sls.shards(PROJECT, LOGSTORE))

    def run_mode(self, mode: str, spec: DataSpec, timeout: float, progress: Progress) -> ModeResult:
        """Run the add-on in one delivery mode until everything is delivered and checkpointed, then stop it."""
        name = f"demo_{mode}"
        params = self.params(mode)
        result = ModeResult(mode=mode, put=spec.event_count,
                            log_file=os.path.join(self.runner.log_dir, f"ta-aliyun-sls_{name}.log"),
                            stderr_file=os.path.join(self.workdir, f"{name}.stderr.log"))
        tally = Tally(spec.event_count, _stream_body if mode == "stream" else _hec_body)
        seen_before = len(self.hec.events()) if mode == "hec" else 0
        started = time.monotonic()
        running = self.runner.start(name, params, self.splunkd.url, self.splunkd.session_key, self.checkpoint_dir)
        try:
            while True:
                events = running.events if mode == "stream" else self.hec.events()[seen_before:]
                tally.update(events)
                elapsed = time.monotonic() - started
                progress.show(_progress_text(mode, tally, elapsed))
                if tally.unique >= spec.event_count and self.checkpoints_at_end(params["consumer_group"]):
                    break
                if not running.running or elapsed > timeout:
                    result.timed_out = running.running
                    break
                time.sleep(POLL_INTERVAL)
            result.seconds = time.monotonic() - started
            result.exit_code = running.terminate(timeout=30)
        finally:
            if running.running:
                running.kill()
            with open(result.stderr_file, "w", encoding="utf-8") as handle:
                handle.write(running.stderr_text())
        tally.update(running.events if mode == "stream" else self.hec.events()[seen_before:])
        progress.done(_progress_text(mode, tally, result.seconds))
        result.delivered = tally.total
        result.missing = spec.event_count - len(set(tally.counts) & spec.event_ids())
        result.duplicates = sum(count - 1 for count in tally.counts.values())
        result.delivered_mb = tally.bytes / MB
        result.checkpoints_at_end = self.checkpoints_at_end(params["consumer_group"])
        result.sample = tally.sample
        result.sourcetypes = dict(sorted(tally.sourcetypes.items()))
        return result


def _app_settings(app_dir: str) -> Dict[str, Dict[str, Dict[str, str]]]:
    """The app's default settings conf, served by the splunkd double as splunkd's default layer would."""
    stanzas = read_conf(os.path.join(app_dir, "default", "ta_aliyun_sls_settings.conf"))
    stanzas.pop("default", None)
    return {"ta_aliyun_sls_settings": stanzas}


def _progress_text(mode: str, tally: Tally, elapsed: float) -> str:
    rate = tally.bytes / MB / elapsed if elapsed > 0 else 0.0
    lag = tally.expected - tally.unique
    return (f"[{mode:>6}] {tally.unique:>9,} / {tally.expected:,} events  {rate:6.1f} MB/s  "
            f"lag {lag:,} events  {elapsed:5.1f} s")


def render_summary(result: DemoResult, world: DemoWorld) -> str:
    """The closing report, for someone who has never seen the add-on."""
    spec = result.spec
    lines = ["", "=" * 78, "TA-aliyun-sls demo: summary", "=" * 78, "",
             "What ran (everything on 127.0.0.1, no cloud account, no Splunk):",
             f"  SLS emulator    {world.sls.url}  project {PROJECT}, logstore {LOGSTORE}, {result.shards} shards,",
             f"                  {spec.event_count:,} events, {result.sls_mb:.1f} MB of "
             f"{KIND_NAMES.get(spec.kind, spec.kind)}",
             f"  splunkd double  {world.splunkd.url}  holds account {ACCOUNT!r} (secret encrypted) and HEC "
             f"destination {HEC_DESTINATION!r}",
             f"  HEC emulator    {world.hec.url}  indexer acknowledgement {'on' if world.hec_ack else 'off'}",
             f"  the add-on      {world.runner.script_path}",
             f"                  run as splunkd runs it, under {result.python}",
             "", "Results (each mode reads the whole logstore in its own consumer group):",
             f"  {'mode':<8}{'put':>9}{'delivered':>11}{'missing':>9}{'duplicates':>12}{'seconds':>9}"
             f"{'MB/s':>7}  checkpoints"]
    for mode in result.modes:
        rate = mode.delivered_mb / mode.seconds if mode.seconds else 0.0
        lines.append(f"  {mode.mode:<8}{mode.put:>9,}{mode.delivered:>11,}{mode.missing:>9,}{mode.duplicates:>12,}"
                     f"{mode.seconds:>9.1f}{rate:>7.1f}  {'at the end' if mode.checkpoints_at_end else 'BEHIND'}")
    for mode in result.modes:
        lines.append(f"  {mode.mode:<8}by sourcetype: " + ", ".join(
            f"{sourcetype} {count:,}" for sourcetype, count in mode.sourcetypes.items()))
    lines += ["",
              "  sourcetype auto: each log goes to its source's sourcetype (README, Sourcetype routing); ActionTrail",
              "          arrives as the record itself, key fields first, with its SLS provenance in a trailing \"sls\".",
              "  stream: the input writes <stream><event> XML to stdout and splunkd indexes it; a shard's checkpoint",
              "          moves once the batch is flushed to splunkd.",
              "  hec:    the input POSTs to an HTTP Event Collector; with indexer acknowledgement the checkpoint",
              "          moves only after Splunk confirms the events are indexed.",
              "  Either way a crash re-delivers at most the last unconfirmed batches; it never skips data.",
              ""]
    if result.ok:
        lines.append("Every event arrived, the checkpoints sit at the end of every shard, and the input stopped "
                     "cleanly on SIGTERM.")
    else:
        for mode in result.modes:
            if not mode.ok:
                why = ("timed out" if mode.timed_out else f"exit code {mode.exit_code}" if mode.exit_code
                       else f"{mode.missing} missing" if mode.missing else "checkpoints behind")
                lines.append(f"PROBLEM in {mode.mode} mode: {why}; see its log and stderr below.")
    sample = next((mode.sample for mode in result.modes if mode.mode == "stream" and mode.sample), None)
    if sample:
        body = sample.get("data") or ""
        lines += ["", "One event as splunkd received it on the XML stream:",
                  f"  time={sample.get('time')} host={sample.get('host')} source={sample.get('source')} "
                  f"sourcetype={sample.get('sourcetype')} index={sample.get('index')}",
                  f"  data={body[:300]}{' ...' if len(body) > 300 else ''}"]
    lines += ["", "Where to look:"]
    for mode in result.modes:
        lines.append(f"  {mode.mode:<7} add-on log  {mode.log_file}")
        lines.append(f"  {'':<7} stderr      {mode.stderr_file}   (splunkd.log in production)")
    lines += [f"  checkpoints, lock and dead-letter files: {world.checkpoint_dir}",
              "", "What to try next:",
              "  python3 build.py demo -- --size-mb 200 --shards 8   a bigger backlog",
              "  python3 build.py demo -- --modes hec --no-hec-ack   HEC without indexer acknowledgement",
              "  python3 build.py demo -- --python 3.9               Splunk 9's Python",
              "  python3 build.py test                               the whole test suite (emulators, built add-on)",
              "  README.md: install in Splunk Web, configure the account (RAM policy), stream vs HEC, scaling out",
              ""]
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=30.0, help="data set size in MB (default 30)")
    parser.add_argument("--events", type=int, default=0, help="exact number of events (overrides --size-mb)")
    parser.add_argument("--shards", type=int, default=4, help="shards of the logstore (default 4)")
    parser.add_argument("--kind", choices=sorted(KIND_NAMES), default="soc_mixed",
                        help="data set kind (default soc_mixed: every routed source)")
    parser.add_argument("--sourcetype", default="auto",
                        help="the input's sourcetype (default auto; e.g. aliyun:sls for the generic format only)")
    parser.add_argument("--modes", default=",".join(MODES), help="delivery modes to run, in order (stream,hec)")
    parser.add_argument("--python", default="", help="Splunk Python to run the add-on with: 3.9 or 3.13 "
                                                     "(default the newest found)")
    parser.add_argument("--no-hec-ack", dest="hec_ack", action="store_false",
                        help="HEC destination without indexer acknowledgement")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on a mode after this many seconds")
    parser.add_argument("--workdir", default="", help="where logs and checkpoints go (default a new temp dir)")
    args = parser.parse_args(argv)
    args.modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = sorted(set(args.modes) - set(MODES))
    if unknown or not args.modes:
        parser.error(f"--modes takes stream and/or hec, not {','.join(unknown) or 'nothing'}")
    if args.shards < 1 or args.size_mb <= 0 or args.events < 0:
        parser.error("--shards, --size-mb and --events must be positive")
    return args


def _pick_python(wanted: str) -> Tuple[str, str]:
    """(label, interpreter) of the Splunk Python to use."""
    found = interpreters()
    if wanted:
        if wanted not in found:
            raise SystemExit(f"no Python {wanted} found (have: {', '.join(sorted(found))}); try `pyenv install {wanted}`")
        return wanted, found[wanted]
    label = max(found, key=lambda version: [int(part) if part.isdigit() else 0 for part in version.split(".")])
    return label, found[label]


def main(argv: Optional[Sequence[str]] = None, out: TextIO = sys.stdout) -> int:
    """Run the demo; 0 when every mode delivered every event and stopped cleanly."""
    args = parse_args(argv)
    app_dir = os.environ.get("TA_ALIYUN_SLS_APP", "")
    if not os.path.isfile(os.path.join(app_dir, "bin", "aliyun_sls.py")):
        out.write("The demo runs the built add-on: start it with `python3 build.py demo` "
                  "(or set TA_ALIYUN_SLS_APP to an unpacked build).\n")
        return 2
    label, python = _pick_python(args.python)
    workdir = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="ta-aliyun-sls-demo-"))
    os.makedirs(workdir, exist_ok=True)
    spec = (DataSpec(kind=args.kind, seed=7, event_count=args.events) if args.events
            else spec_for_bytes(int(args.size_mb * MB), kind=args.kind, seed=7))
    if args.kind == "mixed":  # the generator's realistic oddities: a few non-UTF-8 values and 256 KB events
        spec = dataclasses.replace(spec, non_utf8_every=97, large_every=2000)
    progress = Progress(out)
    out.write(f"TA-aliyun-sls demo: the built add-on at {app_dir}\n  under Python {label}, work dir {workdir}\n")
    with DemoWorld(app_dir, python, workdir, args.hec_ack, args.sourcetype) as world:
        result = DemoResult(spec=spec, shards=args.shards, sls_mb=world.load(spec, args.shards, progress),
                            python=f"Python {label} ({python})")
        for mode in args.modes:
            result.modes.append(world.run_mode(mode, spec, args.timeout, progress))
        out.write(render_summary(result, world) + "\n")
    return 0 if result.ok else 1
