"""The SLS emulator in its own process, loaded with the benchmark's data sets, with a producer for freshness runs.

    python -m bench.sls_server --access-key-id ID --access-key-secret S --project P
        --load NAME=KIND:MB[:SHARDS] [--load ...] [--shards 8] [--seed 1]

Its own process keeps the emulator's CPU (deflate of every pull, the producer) away from the benchmark driver and
out of the measured processes. Each ``--load`` creates Logstore ``NAME`` with ``SHARDS`` shards (default
``--shards``) and loads ``MB`` raw megabytes of ``spec_for_bytes(MB, KIND, seed)`` round-robin over them (0 MB: an
empty Logstore). Logstores of the same kind and size get the same bytes, generated once. After loading it prints one
JSON line::

    {"url": "http://127.0.0.1:PORT", "load_seconds": S,
     "logstores": {"NAME": {"raw_bytes", "events", "log_groups", "logs_per_group", "seed", "kind", "shards"}, ...}}

then answers commands read from stdin, one JSON line each:

    checkpointed <group> <logstore>   {"done": bool, "shards": n, "at_end": k}  (every checkpoint at the end cursor)
    owned <group> <logstore>          {"shards": n, "owned": k}  (shards with an owner in the consumer group)
    counters                          {api: requests served}
    create <logstore> <shards>        {"created": logstore}
    put <logstore> <shard> <id>       {"put_at": t}  one log group of one producer log, now
    produce <logstore> <groups/s> <logs/group> <seconds> <id prefix>
                                      {"started": true}  puts producer logs at that rate in a thread
    produced <logstore>               {"groups", "events", "raw_bytes", "done", "max_lag_s"}  (of the last produce)

A producer log is a generated ActionTrail-like log whose first two contents are ``put_at`` (``time.time()`` when it
was appended, ``%.6f``) and ``event_id`` (``<id prefix><serial, 8 digits>``), so a receiver can tell, per event, how
long it took from the put to its arrival. EOF, ``quit`` or SIGTERM stop it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from tests.emulators.sls.datagen import DataSpec, generate, generate_log_groups, spec_for_bytes
from tests.emulators.sls.protobuf import encode_log, encode_log_group
from tests.emulators.sls.server import SlsEmulator
from tests.emulators.sls.state import SlsError

SERIAL_DIGITS = 8
PUT_AT_WIDTH = len("%.6f" % time.time())
TICK = 0.01  # the producer appends what is due every 10 ms


def checkpoint_progress(emulator: SlsEmulator, project: str, logstore: str, group: str) -> Dict[str, object]:
    """How many shards of ``group`` have their checkpoint at the shard's end cursor."""
    shard_ids = [shard["shardID"] for shard in emulator.shards(project, logstore)]
    try:
        points = emulator.checkpoints(project, logstore, group)
    except SlsError:  # the group does not exist yet
        points = {}
    at_end = sum(1 for shard_id in shard_ids
                 if points.get(shard_id, {}).get("checkpoint") == emulator.end_cursor(project, logstore, shard_id))
    return {"done": bool(shard_ids) and at_end == len(shard_ids), "shards": len(shard_ids), "at_end": at_end}


def ownership(emulator: SlsEmulator, project: str, logstore: str, group: str) -> Dict[str, int]:
    try:
        owners = emulator.owners(project, logstore, group)
    except SlsError:
        owners = {}
    return {"shards": len(emulator.shards(project, logstore)), "owned": sum(1 for o in owners.values() if o)}


class LogTemplates:
    """Encoded producer logs with fixed-width placeholders for ``put_at`` and ``event_id``: a put only substitutes
    two byte strings of the same length, so producing tens of MB per second costs the emulator little CPU."""

    def __init__(self, id_width: int, count: int = 64) -> None:
        self.id_placeholder = b"#" * id_width
        self.put_at_placeholder = b"~" * PUT_AT_WIDTH
        sample = next(generate(DataSpec(kind="actiontrail", seed=7, event_count=count, logs_per_group=count)))
        self.topic, self.source, self.tags = sample.topic, sample.source, sample.tags
        now = int(time.time())
        self.logs = [encode_log(now, [("put_at", self.put_at_placeholder.decode()),
                                      ("event_id", self.id_placeholder.decode())]
                                + [pair for pair in log.contents if pair[0] != "event_id"], log.time_ns)
                     for log in sample.logs]
        self.raw_bytes_per_log = sum(len(log) for log in self.logs) / len(self.logs)

    def group(self, ids: Sequence[bytes], put_at: bytes) -> bytes:
        logs = [self.logs[number % len(self.logs)].replace(self.put_at_placeholder, put_at, 1)
                .replace(self.id_placeholder, event_id, 1) for number, event_id in enumerate(ids)]
        return encode_log_group(logs, self.topic, self.source, self.tags)


@dataclass
class Production:
    """What one producer did so far."""

    groups: int = 0
    events: int = 0
    raw_bytes: int = 0
    done: bool = False
    max_lag_s: float = 0.0  # how far the producer fell behind its schedule (it cannot put faster than it is asked)


class Producer:
    """Puts log groups of producer logs on a Logstore's shards, round-robin, at a fixed rate, for a while."""

    def __init__(self, emulator: SlsEmulator, project: str, logstore: str, id_prefix: str) -> None:
        self.emulator = emulator
        self.project = project
        self.logstore = logstore
        self.id_prefix = id_prefix.encode()
        self.templates = LogTemplates(len(self.id_prefix) + SERIAL_DIGITS)
        self.shard_ids = [s["shardID"] for s in emulator.shards(project, logstore) if s["status"] == "readwrite"]
        self.progress = Production()
        self._serial = 0
        self._next_shard = 0

    def _ids(self, count: int) -> List[bytes]:
        first = self._serial
        self._serial += count
        return [self.id_prefix + b"%0*d" % (SERIAL_DIGITS, serial) for serial in range(first, first + count)]

    def put_one(self, shard_id: int, event_id: str) -> float:
        put_at = time.time()
        group = self.templates.group([event_id.encode()], b"%.6f" % put_at)
        self.emulator.put_log_groups(self.project, self.logstore, shard_id, [group])
        return put_at

    def put_due(self, count: int, logs_per_group: int) -> None:
        """Append ``count`` groups now, spread over the shards."""
        batches: Dict[int, List[bytes]] = {}
        put_at = b"%.6f" % time.time()
        for _ in range(count):
            group = self.templates.group(self._ids(logs_per_group), put_at)
            batches.setdefault(self.shard_ids[self._next_shard % len(self.shard_ids)], []).append(group)
            self._next_shard += 1
            self.progress.raw_bytes += len(group)
        for shard_id, groups in batches.items():
            self.emulator.put_log_groups(self.project, self.logstore, shard_id, groups)
        self.progress.groups += count
        self.progress.events += count * logs_per_group

    def run(self, groups_per_second: float, logs_per_group: int, seconds: float) -> None:
        started = time.monotonic()
        total = int(groups_per_second * seconds)
        while self.progress.groups < total:
            elapsed = time.monotonic() - started
            due = min(total, int(elapsed * groups_per_second) + 1) - self.progress.groups
            if due > 0:
                self.progress.max_lag_s = max(self.progress.max_lag_s,
                                              elapsed - (self.progress.groups / groups_per_second))
                self.put_due(due, logs_per_group)
            time.sleep(TICK)
        self.progress.done = True

    def start(self, groups_per_second: float, logs_per_group: int, seconds: float) -> None:
        threading.Thread(target=self.run, args=(groups_per_second, logs_per_group, seconds), daemon=True,
                         name="producer-" + self.logstore).start()


class CommandServer:
    """Answers the driver's stdin commands."""

    def __init__(self, emulator: SlsEmulator, project: str) -> None:
        self.emulator = emulator
        self.project = project
        self.producers: Dict[str, Producer] = {}

    def answer(self, words: List[str]) -> object:
        verb, args = words[0], words[1:]
        if verb == "checkpointed" and len(args) == 2:
            return checkpoint_progress(self.emulator, self.project, args[1], args[0])
        if verb == "owned" and len(args) == 2:
            return ownership(self.emulator, self.project, args[1], args[0])
        if verb == "counters":
            return self.emulator.counters()
        if verb == "create" and len(args) == 2:
            self.emulator.create_logstore(self.project, args[0], shard_count=int(args[1]))
            return {"created": args[0]}
        if verb == "put" and len(args) == 3:
            producer = Producer(self.emulator, self.project, args[0], args[2][:-SERIAL_DIGITS])
            return {"put_at": producer.put_one(int(args[1]), args[2])}
        if verb == "produce" and len(args) == 5:
            producer = Producer(self.emulator, self.project, args[0], args[4])
            self.producers[args[0]] = producer
            producer.start(float(args[1]), int(args[2]), float(args[3]))
            return {"started": True}
        if verb == "produced" and len(args) == 1 and args[0] in self.producers:
            return vars(self.producers[args[0]].progress)
        return {"error": "unknown command %r" % " ".join(words)}

    def serve(self) -> None:
        """Answer stdin commands until EOF or ``quit``."""
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                return
            try:
                answer = self.answer(words)
            except (SlsError, ValueError) as error:
                answer = {"error": str(error)}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


@dataclass(frozen=True)
class LoadSpec:
    name: str
    kind: str
    size_mb: float
    shards: int

    @classmethod
    def parse(cls, text: str, default_shards: int) -> "LoadSpec":
        name, _, rest = text.partition("=")
        parts = rest.split(":")
        if not name or len(parts) not in (2, 3):
            raise argparse.ArgumentTypeError("--load takes NAME=KIND:MB[:SHARDS], not %r" % text)
        return cls(name, parts[0], float(parts[1]), int(parts[2]) if len(parts) == 3 else default_shards)


def load_all(emulator: SlsEmulator, project: str, loads: Sequence[LoadSpec], seed: int) -> Dict[str, object]:
    """Create and fill every Logstore; returns what each holds."""
    generated: Dict[Tuple[str, float], Tuple[DataSpec, List[bytes]]] = {}
    loaded: Dict[str, object] = {}
    for load in loads:
        emulator.create_logstore(project, load.name, shard_count=load.shards)
        if load.size_mb <= 0:
            loaded[load.name] = {"raw_bytes": 0, "events": 0, "log_groups": 0, "logs_per_group": 0, "seed": seed,
                                 "kind": "", "shards": load.shards}
            continue
        key = (load.kind, load.size_mb)
        if key not in generated:
            spec = spec_for_bytes(int(load.size_mb * 1e6), kind=load.kind, seed=seed)
            generated[key] = (spec, list(generate_log_groups(spec)))
        spec, groups = generated[key]
        shard_ids = [s["shardID"] for s in emulator.shards(project, load.name)]
        for shard_number, shard_id in enumerate(shard_ids):
            emulator.put_log_groups(project, load.name, shard_id, groups[shard_number::len(shard_ids)])
        loaded[load.name] = {"raw_bytes": sum(len(g) for g in groups), "events": spec.event_count,
                             "log_groups": len(groups), "logs_per_group": spec.logs_per_group, "seed": spec.seed,
                             "kind": spec.kind, "shards": load.shards}
    return loaded


def _exit_on_sigterm(*_: object) -> None:
    """SIGTERM leaves the command loop through ``finally``, so the server threads are always joined."""
    raise SystemExit(0)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sls_server", description=__doc__.splitlines()[0])
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--load", action="append", default=[], metavar="NAME=KIND:MB[:SHARDS]",
                        help="create Logstore NAME and load MB raw megabytes (10^6) of KIND (0: empty)")
    parser.add_argument("--shards", type=int, default=8, help="shards of a --load that names none")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    loads = [LoadSpec.parse(text, args.shards) for text in args.load]

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    emulator = SlsEmulator(host="127.0.0.1", port=0, access_keys={args.access_key_id: args.access_key_secret})
    emulator.start()
    try:
        emulator.create_project(args.project)
        started = time.monotonic()
        logstores = load_all(emulator, args.project, loads, args.seed)
        sys.stdout.write(json.dumps({"url": emulator.url, "load_seconds": round(time.monotonic() - started, 2),
                                     "logstores": logstores}) + "\n")
        sys.stdout.flush()
        CommandServer(emulator, args.project).serve()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
