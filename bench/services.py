"""The processes a bench part talks to: the SLS emulator (bench/sls_server.py), the HEC sink (bench/hec_sink.py), the
splunkd REST double, and the built add-on launched as splunkd launches a modular input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any, Dict, List, Optional, Sequence, Tuple

from bench.measure import StreamCounter, TailBuffer, TreeSampler, stop_process
from tests.emulators.splunkd import SplunkdDouble
from tests.integration.harness import app_default_confs
from tests.splunk_runner import ModInputRunner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AK_ID = "LTAI5tBenchmarkKey"
AK_SECRET = "benchmark-secret-0a1b2c3d4e5f"
HEC_TOKEN = "aaaaaaaa-1111-2222-3333-444444444444"
HEC_ACK_TOKEN = "bbbbbbbb-1111-2222-3333-444444444444"
PROJECT = "audit-prod"


class SlsServer:
    """bench/sls_server.py in its own process, with ``loads`` (``NAME=KIND:MB[:SHARDS]``) loaded."""

    def __init__(self, loads: Sequence[str], shards: int) -> None:
        arguments = [argument for load in loads for argument in ("--load", load)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.sls_server", "--access-key-id", AK_ID, "--access-key-secret", AK_SECRET,
             "--project", PROJECT, "--shards", str(shards), *arguments], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
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
            answer = json.loads(self.process.stdout.readline())
        if "error" in answer:
            raise RuntimeError("SLS emulator: %s" % answer["error"])
        return answer

    def logstore(self, name: str) -> Dict[str, Any]:
        return self.info["logstores"][name]

    def checkpointed(self, group: str, logstore: str) -> bool:
        return bool(self.ask("checkpointed %s %s" % (group, logstore))["done"])

    def all_owned(self, group: str, logstore: str) -> bool:
        answer = self.ask("owned %s %s" % (group, logstore))
        return answer["shards"] > 0 and answer["owned"] == answer["shards"]

    def create(self, logstore: str, shards: int) -> None:
        self.ask("create %s %d" % (logstore, shards))

    def put(self, logstore: str, shard_id: int, event_id: str) -> float:
        """Put one producer log now; returns its put time."""
        return float(self.ask("put %s %d %s" % (logstore, shard_id, event_id))["put_at"])

    def produce(self, logstore: str, groups_per_second: float, logs_per_group: int, seconds: float,
                id_prefix: str) -> None:
        self.ask("produce %s %f %d %f %s" % (logstore, groups_per_second, logs_per_group, seconds, id_prefix))

    def produced(self, logstore: str) -> Dict[str, Any]:
        return self.ask("produced %s" % logstore)

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

    def _call(self, method: str, path: str) -> Dict[str, Any]:
        request = urllib.request.Request(self.url + path, data=b"" if method == "POST" else None, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> Dict[str, int]:
        return self._call("GET", "/bench/stats")

    def counts(self) -> Tuple[int, int]:
        stats = self.stats()
        return stats["events"], stats["distinct"]

    def latencies(self) -> List[float]:
        return self._call("GET", "/bench/latencies")["latencies"]

    def reset(self) -> None:
        self._call("POST", "/bench/reset")

    def close(self) -> None:
        stop_process(self.process)  # type: ignore[arg-type]


class RunningInput:
    """One launched add-on input: its process, the sampler of its tree, its stdout and stderr readers."""

    def __init__(self, process: "subprocess.Popen[bytes]", stdout_rate: Optional[float]) -> None:
        self.started = time.monotonic()
        self.process = process
        self.sampler = TreeSampler(process.pid)
        self.stdout = StreamCounter(process.stdout, "bench-stdout", stdout_rate)  # type: ignore[arg-type]
        self.stderr = TailBuffer(process.stderr, "bench-stderr")  # type: ignore[arg-type]

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def stop(self) -> Tuple[int, bool, float]:
        """SIGTERM (reading stdout at full speed, so a slow reader does not hold the stop); (code, killed, s)."""
        self.stdout.unthrottle()
        try:
            return stop_process(self.process)
        finally:
            self.stdout.join(10)


class AddonHost:
    """The HEC sink, the splunkd double with the bench account and destinations, and the modular-input runner."""

    def __init__(self, app_dir: str, python: str) -> None:
        self.app_dir = app_dir
        self.python = python
        self.hec: Optional[HecSink] = None
        self.splunkd: Optional[SplunkdDouble] = None
        self.runner: Optional[ModInputRunner] = None

    def __enter__(self) -> "AddonHost":
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

    def supports(self, parameter: str) -> bool:
        """Whether the built app's inputs.conf.spec declares ``parameter`` (so the bench works before and after)."""
        spec = os.path.join(self.app_dir, "README", "inputs.conf.spec")
        if not os.path.exists(spec):
            return False
        with open(spec, encoding="utf-8") as handle:
            return any(line.split("=", 1)[0].strip() == parameter for line in handle)

    @staticmethod
    def params(sls_url: str, logstore: str, group: str, **overrides: str) -> Dict[str, str]:
        """The bench's stanza: generic sourcetype, from ``begin``, short heartbeat and checkpoint intervals."""
        params = {"account": "acct1", "endpoint": sls_url, "project": PROJECT, "logstore": logstore,
                  "consumer_group": group, "start_position": "begin", "index": "main", "sourcetype": "aliyun:sls",
                  # A short heartbeat lets a second worker take its shards within the run; checkpoints every
                  # second so "all checkpointed" is seen soon after "all delivered".
                  "heartbeat_interval": "3", "checkpoint_interval": "1", "interval": "60"}
        params.update(overrides)
        return params

    def launch(self, name: str, params: Dict[str, str], stdout_rate: Optional[float] = None) -> RunningInput:
        """Start the built input as splunkd does, with ``params`` as its stanza."""
        assert self.runner is not None and self.splunkd is not None
        definition = self.runner.input_definition(name, params, self.splunkd.url, self.splunkd.session_key,
                                                  self.runner.default_checkpoint_dir())
        process = subprocess.Popen([self.runner.python, self.runner.script_path], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.runner.cwd,
                                   env=self.runner.environment())
        running = RunningInput(process, stdout_rate)
        assert process.stdin is not None
        process.stdin.write(definition.encode("utf-8"))
        process.stdin.close()
        return running

    def failure_tail(self, name: str, running: RunningInput) -> str:
        """The last error lines of the input's stderr and log file."""
        assert self.runner is not None
        log_path = os.path.join(self.runner.log_dir, "ta-aliyun-sls_%s.log" % name)
        log = open(log_path, encoding="utf-8", errors="replace").read() if os.path.exists(log_path) else ""
        lines = [line for line in (running.stderr.text() + "\n" + log).splitlines() if line.strip()]
        errors = [line for line in lines if "ERROR" in line or "Error" in line or "Traceback" in line]
        return " | ".join((errors or lines)[-3:])[-600:] or "(empty)"
