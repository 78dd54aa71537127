"""Micro-benchmark: inflate, decode, shape and decode+shape alone, in raw MB per CPU-second, on the benchmark's data.

    python -m bench.micro [--mb 20] [--rounds 3] [--kind actiontrail] [--rows ROW,...] [--bin package/bin] [--json]

Run from the repository root with any Python 3.9+ (pyenv's 3.9 and 3.13 are the add-on's runtimes); only the
optional reference row needs the test venv (the official SDK and protobuf). The data is the ActionTrail-like set
of ``bench.run`` (tests/emulators/sls/datagen.py, seed 1; ``--kind`` picks another kind of the same generator),
cut into pulls of ``--groups-per-pull`` log groups. ``bench.run`` runs ``--rows reference`` on each of its data
sets for the calibrated table: the SDK's C-accelerated ceiling on the same data.
"Raw" MB are the uncompressed LogGroupList bytes, as in the throughput table. Each row is the best of
``--rounds`` passes over all pulls, timed with process CPU time.

Rows:
    inflate              zlib.decompress of each pull compressed as the emulator sends it (deflate level 1)
    decode               sls.decoder.decode_log_group_list
    shape stream / hec   EventShaper.shape on already decoded groups
    decode+shape ...     both, one pull at a time (the add-on's straightforward path, minus I/O)
    reference            the SDK path: protobuf parse, loggroups_to_flattern_list, json.dumps per event
                         (the header names the protobuf backend: ``upb`` is the C one)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = ("inflate", "decode", "shape stream", "shape hec", "decode+shape stream", "decode+shape hec", "reference")


def make_pulls(total_mb: float, groups_per_pull: int, kind: str = "actiontrail") -> Tuple[List[bytes], int]:
    """The data set as LogGroupList bodies of ``groups_per_pull`` groups each, and its event count."""
    from tests.emulators.sls.datagen import generate_log_groups, spec_for_bytes
    from tests.emulators.sls.protobuf import encode_log_group_list

    spec = spec_for_bytes(int(total_mb * 1e6), kind=kind, seed=1)
    groups = list(generate_log_groups(spec))
    return [encode_log_group_list(groups[start:start + groups_per_pull])
            for start in range(0, len(groups), groups_per_pull)], spec.event_count


def best_cpu_seconds(work: Callable[[], object], rounds: int) -> float:
    """The least process CPU time of ``rounds`` calls of ``work``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def reference_path() -> Optional[Callable[[Sequence[bytes]], None]]:
    """The SDK's decode and flatten with json.dumps per event, or None without the SDK."""
    try:
        from aliyun.log.proto import LogGroupList  # type: ignore[import]
        from aliyun.log.pulllog_response import PullLogResponse  # type: ignore[import]
    except ImportError:
        return None

    def run(pulls: Sequence[bytes]) -> None:
        for body in pulls:
            parsed = LogGroupList()
            parsed.ParseFromString(body)
            for log in PullLogResponse.loggroups_to_flattern_list(parsed, time_as_str=True, decode_bytes=True):
                json.dumps(log)

    return run


def protobuf_backend() -> str:
    """``upb`` (C), ``cpp`` or ``python``; empty without protobuf."""
    try:
        from google.protobuf.internal import api_implementation  # type: ignore[import]
    except ImportError:
        return ""
    return str(api_implementation.Type())


def addon_rows(bin_dir: str, pulls: List[bytes]) -> Dict[str, Callable[[], object]]:
    """The add-on's rows, with sls_forwarder imported from ``bin_dir``."""
    sys.path.insert(0, os.path.abspath(bin_dir))
    from sls_forwarder.sls.decoder import decode_log_group_list
    from sls_forwarder.splunk.events import EventMeta, EventShaper

    compressed = [zlib.compress(body, 1) for body in pulls]
    decoded = [decode_log_group_list(body) for body in pulls]
    shapers = {fmt: EventShaper(EventMeta(index="main", sourcetype="aliyun:sls", source="sls:audit-prod:actiontrail",
                                          default_host="hf1", stanza="aliyun_sls://bench"), fmt)
               for fmt in ("stream", "hec")}

    def shape_only(fmt: str) -> Callable[[], None]:
        return lambda: [shapers[fmt].shape(groups) for groups in decoded]

    def decode_and_shape(fmt: str) -> Callable[[], None]:
        return lambda: [shapers[fmt].shape(decode_log_group_list(body)) for body in pulls]

    return {
        "inflate": lambda: [zlib.decompress(body) for body in compressed],
        "decode": lambda: [decode_log_group_list(body) for body in pulls],
        "shape stream": shape_only("stream"),
        "shape hec": shape_only("hec"),
        "decode+shape stream": decode_and_shape("stream"),
        "decode+shape hec": decode_and_shape("hec"),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="raw MB of data (10^6 bytes)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--groups-per-pull", type=int, default=1000, help="the add-on's pull_count")
    parser.add_argument("--bin", default=os.path.join(ROOT, "package", "bin"),
                        help="folder holding sls_forwarder (the source tree, or a built app's bin/)")
    parser.add_argument("--kind", default="actiontrail", help="data set kind (tests/emulators/sls/datagen.py)")
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of %s" % ",".join(ROWS))
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    wanted = args.rows.split(",")
    unknown = set(wanted) - set(ROWS)
    if unknown:
        parser.error("unknown rows: %s" % ", ".join(sorted(unknown)))
    sys.path.insert(0, ROOT)

    pulls, events = make_pulls(args.mb, args.groups_per_pull, args.kind)
    raw_mb = sum(len(body) for body in pulls) / 1e6
    rows: Dict[str, Callable[[], object]] = {}
    if set(wanted) - {"reference"}:
        rows.update((name, work) for name, work in addon_rows(args.bin, pulls).items() if name in wanted)
    reference = reference_path() if "reference" in wanted else None
    if reference is not None:
        rows["reference (SDK + json.dumps)"] = lambda: reference(pulls)
    results = []
    for name, work in rows.items():
        seconds = best_cpu_seconds(work, args.rounds)
        results.append({"row": name, "cpu_s": round(seconds, 4), "raw_mb_per_cpu_s": round(raw_mb / seconds, 1),
                        "events_per_cpu_s": round(events / seconds)})
    header = {"python": sys.version.split()[0], "raw_mb": round(raw_mb, 1), "events": events, "pulls": len(pulls),
              "rounds": args.rounds, "bin": os.path.relpath(os.path.abspath(args.bin), ROOT), "kind": args.kind,
              "protobuf": protobuf_backend() or "none"}
    if args.json:
        print(json.dumps(dict(header, rows=results), indent=2))
        return 0
    print("python %(python)s, %(kind)s, %(raw_mb).1f MB raw, %(events)d events in %(pulls)d pulls, best of "
          "%(rounds)d, sls_forwarder from %(bin)s, protobuf %(protobuf)s" % header)
    print("%-30s %12s %14s" % ("row", "raw MB/CPU-s", "events/CPU-s"))
    for row in results:
        print("%-30s %12.1f %14d" % (row["row"], row["raw_mb_per_cpu_s"], row["events_per_cpu_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
