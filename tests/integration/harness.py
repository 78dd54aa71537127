"""One place that stands up what the built add-on talks to: SLS, splunkd, HEC, and splunkd's way of launching it.

    with AddonEnv(python=...) as env:
        spec = env.load(DataSpec(event_count=2000), shards=4)
        with env.start_input("prod", delivery="stream") as running:
            env.wait_until(lambda: env.delivered_ids(running) >= spec.event_ids(), timeout=60)
        report = env.compare(spec.event_ids(), env.delivered_ids(running))

Everything listens on 127.0.0.1 on free ports. The add-on is the BUILT package (TA_ALIYUN_SLS_APP, unpacked by
``build.py test``); nothing here imports the add-on's code.
"""

from __future__ import annotations

import collections
import configparser
import json
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Set

import pytest

from tests.emulators.hec import HecEmulator
from tests.emulators.sls.datagen import DataSpec, load_direct
from tests.emulators.sls.server import SlsEmulator
from tests.emulators.splunkd import SplunkdDouble
from tests.splunk_runner import ModInputRunner, RunningInput, interpreters

AK_ID = "LTAI5tIntegrationKey"
AK_SECRET = "integration-secret-9f8e7d6c5b4a"
HEC_TOKEN = "11111111-2222-3333-4444-555555555555"
PROJECT = "audit-prod"
LOGSTORE = "actiontrail"
GROUP = "splunk"
PYTHONS = interpreters()


def built_app_dir() -> str:
    """The built app folder; skips, or fails under REQUIRE_BUILT_APP=1 (the build's own test run)."""
    app_dir = os.environ.get("TA_ALIYUN_SLS_APP", "")
    if app_dir and os.path.isfile(os.path.join(app_dir, "bin", "aliyun_sls.py")):
        return app_dir
    reason = f"no built app at TA_ALIYUN_SLS_APP={app_dir!r}; run `python3 build.py test`"
    if os.environ.get("REQUIRE_BUILT_APP") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def app_default_confs(app_dir: str) -> Dict[str, Dict[str, Dict[str, str]]]:
    """The app's default/*.conf as splunkd's default layer would serve them (only the add-on's own confs)."""
    confs: Dict[str, Dict[str, Dict[str, str]]] = {}
    default = os.path.join(app_dir, "default")
    for name in ("ta_aliyun_sls_settings",):
        path = os.path.join(default, name + ".conf")
        if os.path.exists(path):
            parser = configparser.RawConfigParser(strict=False)
            parser.optionxform = str  # keep key case
            parser.read(path)
            confs[name] = {section: dict(parser.items(section)) for section in parser.sections()}
    return confs


@dataclass
class Comparison:
    """What arrived against what was put."""

    put: int
    delivered: int
    missing: Set[str]
    duplicates: int

    def row(self, scenario: str, peak_rss_mb: Optional[float] = None) -> Dict[str, Any]:
        return {"scenario": scenario, "put": self.put, "delivered": self.delivered, "missing": len(self.missing),
                "duplicates": self.duplicates, "peak_rss_mb": peak_rss_mb}


class AddonEnv:
    """SLS emulator + splunkd double (account, settings) + HEC emulator + a runner for the built add-on."""

    def __init__(self, python: Optional[str] = None, *, hec_ack: bool = False, hec_kwargs: Optional[dict] = None,
                 sls_kwargs: Optional[dict] = None) -> None:
        self.app_dir = built_app_dir()
        self.python = python or PYTHONS.get("3.13") or next(iter(PYTHONS.values()))
        self.sls = SlsEmulator(access_keys={AK_ID: AK_SECRET}, **(sls_kwargs or {}))
        self.hec = HecEmulator(tokens={HEC_TOKEN: {"ack": hec_ack, "indexes": None, "disabled": False}},
                               **(hec_kwargs or {}))
        # Linked to the HEC emulator: tokens the add-on creates over REST (local HEC) become valid there.
        self.splunkd = SplunkdDouble(confs=app_default_confs(self.app_dir), server_name="hf1", hec=self.hec)
        self.runner = ModInputRunner(self.app_dir, self.python)
        self._workdir = tempfile.mkdtemp(prefix="ta-aliyun-sls-it-")
        self.checkpoint_dir = os.path.join(self._workdir, "checkpoints")
        os.makedirs(self.checkpoint_dir)
        self.inputs: List[RunningInput] = []
        self._logstores: Set[str] = set()

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> "AddonEnv":
        self.sls.start()
        self.hec.start()
        self.splunkd.start()
        self.runner.__enter__()
        self.sls.create_project(PROJECT)
        self.splunkd.store_encrypted("ta_aliyun_sls_account", "acct1", {"access_key_secret": AK_SECRET},
                                     {"access_key_id": AK_ID, "credential_type": "access_key"})
        self.add_hec_destination("hec1")
        return self

    def __exit__(self, *exc_info: object) -> None:
        for running in self.inputs:
            if running.running:
                running.kill()
        self.runner.__exit__(*exc_info)
        self.splunkd.stop()
        self.hec.stop()
        self.sls.stop()

    def add_hec_destination(self, name: str, *, token: str = HEC_TOKEN, use_ack: bool = False,
                            gzip: bool = False) -> None:
        self.splunkd.store_encrypted("ta_aliyun_sls_hec_destination", name, {"token": token},
                                     {"url": self.hec.url, "use_ack": "1" if use_ack else "0", "verify_tls": "0",
                                      "gzip": "1" if gzip else "0"})

    # ---------------------------------------------------------------- data

    def create_logstore(self, shards: int = 4, logstore: str = LOGSTORE) -> None:
        if logstore not in self._logstores:
            self.sls.create_logstore(PROJECT, logstore, shard_count=shards)
            self._logstores.add(logstore)

    def load(self, spec: DataSpec, shards: int = 4, logstore: str = LOGSTORE) -> DataSpec:
        self.create_logstore(shards, logstore)
        load_direct(self.sls, PROJECT, logstore, spec)
        return spec

    # ---------------------------------------------------------------- inputs

    def params(self, **overrides: object) -> Dict[str, str]:
        params = {"account": "acct1", "endpoint": f"http://127.0.0.1:{self.sls.port}", "project": PROJECT,
                  "logstore": LOGSTORE, "consumer_group": GROUP, "start_position": "begin", "delivery": "stream",
                  "index": "main", "sourcetype": "aliyun:sls", "heartbeat_interval": "1",
                  "checkpoint_interval": "0.5", "retry_interval": "2", "idle_poll_max": "0.5", "interval": "60"}
        params.update({k: str(v) for k, v in overrides.items()})
        return params

    def start_input(self, name: str = "prod", **overrides: object) -> RunningInput:
        running = self.runner.start(name, self.params(**overrides), self.splunkd.url, self.splunkd.session_key,
                                    self.checkpoint_dir)
        self.inputs.append(running)
        return running

    def log_text(self, name: str = "prod") -> str:
        path = os.path.join(self.runner.log_dir, f"ta-aliyun-sls_{name}.log")
        return open(path, encoding="utf-8", errors="replace").read() if os.path.exists(path) else ""

    # ---------------------------------------------------------------- outcomes

    @staticmethod
    def stream_ids(running: RunningInput) -> List[str]:
        return [json.loads(event["data"])["event_id"] for event in running.events]

    def hec_ids(self) -> List[str]:
        return [event["event"]["event_id"] for event in self.hec.events()]

    def checkpoints(self, logstore: str = LOGSTORE, group: str = GROUP) -> Dict[int, Dict[str, object]]:
        return self.sls.checkpoints(PROJECT, logstore, group)

    def owners(self, logstore: str = LOGSTORE, group: str = GROUP) -> Dict[int, str]:
        """Shard owners, {} while the group does not exist yet."""
        from tests.emulators.sls.state import SlsError

        try:
            return self.sls.owners(PROJECT, logstore, group)
        except SlsError:
            return {}

    def fully_checkpointed(self, logstore: str = LOGSTORE, group: str = GROUP) -> bool:
        """Every shard's checkpoint equals its end cursor."""
        points = self.checkpoints(logstore, group)
        return bool(points) and all(
            points.get(shard["shardID"], {}).get("checkpoint") == self.sls.end_cursor(PROJECT, logstore, shard["shardID"])
            for shard in self.sls.shards(PROJECT, logstore))

    @staticmethod
    def compare(expected: Set[str], delivered: Iterable[str]) -> Comparison:
        counts = collections.Counter(delivered)
        return Comparison(put=len(expected), delivered=sum(counts.values()), missing=expected - set(counts),
                          duplicates=sum(n - 1 for n in counts.values() if n > 1))


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2,
               message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
