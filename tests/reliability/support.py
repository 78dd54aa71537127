"""Shared tools of the fault-injection scenarios (issue 6): scaling, the summary file, where each event sits in the
SLS emulator, what HEC acknowledged, process CPU and memory, and the secret scan every scenario ends with.

Nothing here imports the add-on's code; the add-on is the BUILT package run by tests.integration.harness.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

import psutil

from sls_forwarder.error_labels import AUTHENTICATION, CONFIGURATION, CONNECTION, DATA, INTERNAL, PERMISSION, SERVER

from tests.emulators.hec import HecEmulator
from tests.emulators.sls.protobuf import decode_log_group
from tests.integration.harness import AK_SECRET, GROUP, HEC_TOKEN, LOGSTORE, PROJECT, AddonEnv

FULL = os.environ.get("TA_RELIABILITY_FULL") == "1"
PROXY_PASSWORD = "proxy-pass-7Hq2Zx9Lw4"
# The labels the dashboard's Errors tab filters by (the first five; tests/integration/test_errors_tab.py) or shows
# under "All".
ERROR_LABELS = frozenset({PERMISSION, AUTHENTICATION, CONNECTION, CONFIGURATION, SERVER, DATA, INTERNAL})
# The emulator's cursors are base64(str(CURSOR_BASE + index of the log group in its shard)).
CURSOR_BASE = 1_500_000_000_000_000_000


def scaled(ci: Any, full: Any) -> Any:
    """The CI value, or the full-size one under ``build.py test --reliability --full``."""
    return full if FULL else ci


def record_summary_row(row: Dict[str, Any]) -> None:
    """Append ``row`` to the JSON list at $TA_RELIABILITY_SUMMARY (locked, written to a temporary file and renamed)."""
    path = os.environ.get("TA_RELIABILITY_SUMMARY")
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        rows: List[Dict[str, Any]] = []
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                rows = json.load(handle)
        rows.append(row)
        temporary = path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)
        os.replace(temporary, path)


def cursor_index(cursor: str) -> int:
    """Index of the log group an emulator cursor points at (0 for a never-committed "" checkpoint)."""
    if not cursor:
        return 0
    return int(base64.b64decode(cursor)) - CURSOR_BASE


# ------------------------------------------------------------------------------------------- where events sit


class ShardLayout:
    """Which log group of which shard holds each event_id, read back from the emulator (readonly shards too)."""

    def __init__(self, env: AddonEnv, logstore: str = LOGSTORE) -> None:
        self._env = env
        self._logstore = logstore
        self.groups: Dict[int, List[List[str]]] = {}
        self.position: Dict[str, Tuple[int, int]] = {}

    def refresh(self) -> "ShardLayout":
        """Decode the log groups added since the last refresh."""
        for shard in self._env.sls.shards(PROJECT, self._logstore):
            shard_id = shard["shardID"]
            known = self.groups.setdefault(shard_id, [])
            stored = self._env.sls.log_groups(PROJECT, self._logstore, shard_id)
            for index in range(len(known), len(stored)):
                ids = [dict(log.contents)[b"event_id"].decode("utf-8") for log in decode_log_group(stored[index]).logs]
                known.append(ids)
                for event_id in ids:
                    self.position[event_id] = (shard_id, index)
        return self

    def ids_before(self, shard_id: int, index: int) -> Iterable[str]:
        """Event ids of the shard's log groups [0, index)."""
        for group in self.groups.get(shard_id, [])[:index]:
            yield from group

    def checkpointed_ids(self, checkpoints: Dict[int, Dict[str, object]]) -> Set[str]:
        """Every event id a set of emulator checkpoints declares delivered."""
        done: Set[str] = set()
        for shard_id, point in checkpoints.items():
            done.update(self.ids_before(shard_id, cursor_index(str(point["checkpoint"]))))
        return done


# ------------------------------------------------------------------------------------------- HEC acknowledgement


class AckLedger:
    """Records every ackId the HEC emulator reports true, so a test can tell acknowledged events from merely received
    ones. It wraps the emulator's ack lookup on that one instance (test-side instrumentation, no emulator change)."""

    def __init__(self, hec: HecEmulator) -> None:
        self._hec = hec
        self._lock = threading.Lock()
        self._acked: Set[Tuple[str, int]] = set()
        original = hec._query_acks

        def recording(channel: str, ack_ids: List[int]) -> Dict[str, bool]:
            states = original(channel, ack_ids)
            with self._lock:
                self._acked.update((channel, int(ack_id)) for ack_id, done in states.items() if done)
            return states

        hec._query_acks = recording  # type: ignore[method-assign]

    def acked_event_ids(self) -> Set[str]:
        """Event ids of requests whose ackId HEC has reported true (received and acknowledged)."""
        with self._lock:
            acked = set(self._acked)
        return {event["event"]["event_id"] for event in self._hec.events()
                if (event["_channel"], event["_ack_id"]) in acked}


def largest_request(hec: HecEmulator) -> int:
    """Most events HEC recorded from one request."""
    sizes: Dict[int, int] = {}
    for event in hec.events():
        sizes[event["_request"]] = sizes.get(event["_request"], 0) + 1
    return max(sizes.values(), default=0)


# ------------------------------------------------------------------------------------------- process metering


class RssSampler:
    """Samples a process's resident memory on a thread; ``peak_mb`` is the highest value seen."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak_bytes = 0
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / (1024 * 1024)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self._interval)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def cpu_share_over(pid: int, seconds: float) -> float:
    """Share of one core the process used over the next ``seconds`` (0.0 .. 1.0+)."""
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


class CheckpointWatch:
    """Samples the emulator's checkpoints on a thread and checks each sample with ``check(sample)``.

    Failures are kept (not raised on the thread) and reported by ``assert_ok``.
    """

    def __init__(self, env: AddonEnv, check: Callable[[Dict[int, Dict[str, object]]], Optional[str]],
                 interval: float = 0.2, logstore: str = LOGSTORE, group: str = GROUP) -> None:
        self._env = env
        self._check = check
        self._interval = interval
        self._logstore = logstore
        self._group = group
        self._stop = threading.Event()
        self.samples = 0
        self.violations: List[str] = []
        self._thread = threading.Thread(target=self._run, name="checkpoint-watch", daemon=True)

    def __enter__(self) -> "CheckpointWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                points = self._env.checkpoints(self._logstore, self._group)
            except Exception:  # the group may not exist yet
                continue
            self.samples += 1
            problem = self._check(points)
            if problem:
                self.violations.append(problem)

    def assert_ok(self, min_samples: int = 5) -> None:
        assert self.samples >= min_samples, f"only {self.samples} checkpoint samples taken"
        assert not self.violations, self.violations[:3]


# ------------------------------------------------------------------------------------------- the environment


class ReliabilityEnv(AddonEnv):
    """AddonEnv that also stores a proxy password (loaded, proxy off) and, on a clean exit, asserts that no secret
    appears in any add-on log file, stderr, stream event, HEC event, dead-letter file or validation output (issue 6,
    scenario 9)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.secrets: Set[str] = {AK_SECRET, HEC_TOKEN, PROXY_PASSWORD}
        self.scanned_texts: List[Tuple[str, str]] = []   # (where, text) besides logs, stderr and events
        self.extra_hecs: List[HecEmulator] = []

    def __enter__(self) -> "ReliabilityEnv":
        super().__enter__()
        self.store_proxy(enabled=False)
        return self

    def store_proxy(self, enabled: bool, host: str = "127.0.0.1", port: int = 3128,
                    username: str = "proxyuser") -> None:
        self.splunkd.store_encrypted("ta_aliyun_sls_settings", "proxy", {"proxy_password": PROXY_PASSWORD},
                                     {"proxy_enabled": "1" if enabled else "0", "proxy_url": host,
                                      "proxy_port": str(port), "proxy_username": username, "proxy_type": "http"})

    def add_secret(self, secret: str) -> None:
        self.secrets.add(secret)

    def scan(self, where: str, text: str) -> None:
        """Have ``text`` (e.g. a validation's stdout and stderr) checked for secrets on exit."""
        self.scanned_texts.append((where, text))

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                self.assert_no_secrets()
                self.assert_errors_labelled()
        finally:
            for running in self.inputs:
                if running.running:
                    running.kill()
            super().__exit__(*exc_info)

    def assert_errors_labelled(self) -> int:
        """Every ERROR line of the add-on carries one of the Errors tab's exc_l labels (the tab lists no other);
        returns how many ERROR lines were checked."""
        checked = 0
        for name in os.listdir(self.runner.log_dir):
            if not name.startswith("ta-aliyun-sls_"):
                continue
            with open(os.path.join(self.runner.log_dir, name), encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if re.search(r"\blog_level=(ERROR|CRITICAL)\b", line):
                        checked += 1
                        label = re.search(r'\| exc_l="([^"]+)" ', line)
                        assert label and label.group(1) in ERROR_LABELS, f"{name}: {line.strip()}"
        return checked

    def assert_no_secrets(self) -> int:
        """Grep everything the add-on wrote for every secret; returns how many texts were checked."""
        texts: List[Tuple[str, str]] = list(self.scanned_texts)
        for directory in (self.runner.log_dir, self.checkpoint_dir):
            for root, _dirs, files in os.walk(directory):
                for name in files:
                    path = os.path.join(root, name)
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        texts.append((path, handle.read()))
        for running in self.inputs:
            texts.append((f"stderr of {running.stanza} pid {running.pid}", running.stderr_text()))
            texts.append((f"events of {running.stanza} pid {running.pid}",
                          "\n".join(json.dumps(event, ensure_ascii=False) for event in running.events)))
        for hec in [self.hec] + self.extra_hecs:
            # The emulator adds the token it authenticated as "_token"; only what the add-on sent counts.
            texts.append((f"HEC events at {hec.url}", "\n".join(
                json.dumps({k: v for k, v in event.items() if not k.startswith("_")}, ensure_ascii=False)
                for event in hec.events())))
        assert any(self.runner.log_dir in where for where, _ in texts), "no add-on log file was written"
        for where, text in texts:
            for secret in self.secrets:
                assert secret not in text, f"a secret ({secret[:3]}...) appears in {where}"
        return len(texts)
