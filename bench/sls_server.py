"""The SLS emulator in its own process, loaded with the benchmark's data set.

    python -m bench.sls_server --access-key-id ID --access-key-secret S --project P --logstore L
        [--shards 8] [--size-mb 200] [--seed 1] [--actiontrail-logstore L2]

Its own process keeps the emulator's CPU (deflate of every pull) away from the benchmark driver and out of the
measured processes. ``L`` gets the ActionTrail-like generic data set (``actiontrail`` kind); with
``--actiontrail-logstore``, ``L2`` gets as many MB of ActionTrail as a trail delivers it (``actiontrail_json``,
shape A), for the ``aliyun:actiontrail`` contender. After loading it prints one JSON line::

    {"url": "http://127.0.0.1:PORT", "raw_bytes": N, "events": N, "log_groups": N, "load_seconds": S,
     "logstores": {"L": {"raw_bytes", "events", "log_groups", "logs_per_group", "seed", "kind"}, "L2": {...}}}

(the top-level counts are those of ``L``), then answers commands read from stdin, one JSON line each:

    checkpointed <group> [<logstore>]  {"done": bool, "shards": n, "at_end": k}  (every checkpoint at the end cursor)
    counters                           {api: requests served}

EOF, ``quit`` or SIGTERM stop it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from typing import Dict, List, Optional

from tests.emulators.sls.datagen import load_direct, spec_for_bytes
from tests.emulators.sls.server import SlsEmulator
from tests.emulators.sls.state import SlsError


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


def serve_commands(emulator: SlsEmulator, project: str, logstore: str) -> None:
    """Answer stdin commands until EOF or ``quit``."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            return
        if words[0] == "checkpointed" and len(words) in (2, 3):
            answer: object = checkpoint_progress(emulator, project, words[2] if len(words) == 3 else logstore,
                                                 words[1])
        elif words[0] == "counters":
            answer = emulator.counters()
        else:
            answer = {"error": "unknown command %r" % line.strip()}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def load(emulator: SlsEmulator, project: str, logstore: str, kind: str, args: argparse.Namespace) -> Dict[str, object]:
    """Create ``logstore`` and load ``size_mb`` of ``kind``; returns what was loaded."""
    emulator.create_logstore(project, logstore, shard_count=args.shards)
    spec = spec_for_bytes(int(args.size_mb * 1e6), kind=kind, seed=args.seed)
    load_direct(emulator, project, logstore, spec)
    sizes = [len(group) for shard in emulator.shards(project, logstore)
             for group in emulator.log_groups(project, logstore, shard["shardID"])]
    return {"raw_bytes": sum(sizes), "events": spec.event_count, "log_groups": len(sizes),
            "logs_per_group": spec.logs_per_group, "seed": spec.seed, "kind": spec.kind}


def _exit_on_sigterm(*_: object) -> None:
    """SIGTERM leaves the command loop through ``finally``, so the server threads are always joined."""
    raise SystemExit(0)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sls_server", description=__doc__.splitlines()[0])
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--logstore", required=True)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--size-mb", type=float, default=200.0, help="raw (uncompressed LogGroup) megabytes, 10^6")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--actiontrail-logstore", default="",
                        help="also load this logstore with shape-A ActionTrail (actiontrail_json) of the same size")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    emulator = SlsEmulator(host="127.0.0.1", port=0, access_keys={args.access_key_id: args.access_key_secret})
    emulator.start()
    try:
        emulator.create_project(args.project)
        started = time.monotonic()
        loads = [(args.logstore, "actiontrail")]
        if args.actiontrail_logstore:
            loads.append((args.actiontrail_logstore, "actiontrail_json"))
        logstores = {name: load(emulator, args.project, name, kind, args) for name, kind in loads}
        ready = dict(logstores[args.logstore], url=emulator.url, load_seconds=round(time.monotonic() - started, 2),
                     logstores=logstores)
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        serve_commands(emulator, args.project, args.logstore)
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
