"""Micro-benchmark of the data path's CPU (not a test): decode+shape before and after fusing, and the other stages.

Run from the repository root with any Python 3.9+ (stdlib only):

    python tests/unit/bench_transcode.py [--seconds 1] [--repeat 3] [--stages]

Figures are MB of raw log (the uncompressed LogGroupList a pull returns) per CPU-second of this process, so they
compare directly with the project's goal of 50 MB per CPU-second end to end. Each figure is measured ``--repeat``
times and printed as median (min-max): the machine may be shared. Before timing, every data set is checked to give
the same events both ways.

- "before": ``EventShaper.shape(decode_log_group_list(data))``, the straightforward path;
- "after": ``Transcoder.transcode(data)``, the fused path the pipeline uses (on the unique-key data set its plain
  path: decode_log + EventShaper without caching, once the hit rate has been judged);
- ``--stages``: the rest of a pull's CPU on the same data: ``zlib.decompress`` of the deflated pull, ``b"".join`` and a
  pipe write of the stream batch, the HEC body (newline join) and its optional gzip level 1.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import statistics
import subprocess
import sys
import time
import zlib
from typing import Callable, Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "package", "bin"))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit", "splunk"))

from bench_shaper import actiontrail_groups, flat_groups  # noqa: E402
from sls_forwarder.sls.decoder import decode_log_group_list  # noqa: E402
from sls_forwarder.splunk.events import EventMeta, EventShaper  # noqa: E402
from sls_forwarder.transcode import Transcoder  # noqa: E402
from tests.emulators.sls import datagen  # noqa: E402
from tests.emulators.sls.protobuf import encode_log, encode_log_group, encode_log_group_list  # noqa: E402


def encode(groups: list) -> bytes:
    """Serialize NamedTuple log groups (bench_shaper's) as a LogGroupList."""
    return encode_log_group_list(
        encode_log_group([encode_log(log.time, log.contents, log.time_ns) for log in group.logs],
                         group.topic, group.source, group.tags)
        for group in groups)


def unique_key_groups(groups: int, logs_per_group: int, keys: int) -> bytes:
    """Logs whose keys no other log has (producers with dynamic keys): ``keys`` short fields each."""
    serial = 0
    encoded = []
    for _ in range(groups):
        logs = []
        for _ in range(logs_per_group):
            serial += 1
            contents = [("attr_%d_%d" % (serial, k), "value-%d" % k) for k in range(keys)]
            logs.append(encode_log(1_700_000_000 + serial // 100, contents, serial % 1000))
        encoded.append(encode_log_group(logs, "app", "10.0.0.%d" % (serial % 250)))
    return encode_log_group_list(encoded)


def data_sets() -> Dict[str, bytes]:
    """About 5 MB each: a pull of 1000 log groups is up to a few MB."""
    rng = random.Random(7)
    return {
        "flat 20 fields": encode(flat_groups(rng, 10, 500)),
        "actiontrail (bench_shaper)": encode(actiontrail_groups(rng, 10, 500)),
        "actiontrail (datagen)": encode_log_group_list(datagen.generate_log_groups(
            datagen.DataSpec("actiontrail", event_count=3500, logs_per_group=100))),
        # Timed round after round, the same logs come back; with 1,000 keys each (~35 KB) they far exceed the
        # template cache's budget, so every round meets them as new, as dynamic keys would be.
        "unique keys (1000 per log)": unique_key_groups(15, 10, 1000),
    }


def rate(function: Callable[[], object], raw_bytes: int, seconds: float) -> float:
    """Raw MB per CPU-second of ``function`` over at least ``seconds`` of process time."""
    rounds = 0
    start = time.process_time()
    while True:
        function()
        rounds += 1
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return raw_bytes * rounds / elapsed / 1e6


def measured(function: Callable[[], object], raw_bytes: int, seconds: float, repeat: int) -> Tuple[float, str]:
    rates = [rate(function, raw_bytes, seconds) for _ in range(repeat)]
    return statistics.median(rates), "%6.1f (%5.1f-%5.1f)" % (statistics.median(rates), min(rates), max(rates))


def bench_decode_shape(sets: Dict[str, bytes], seconds: float, repeat: int) -> None:
    print("decode+shape, raw MB per CPU-second, median (min-max) of %d runs" % repeat)
    print("%-28s %-6s %-6s %-22s %-22s %s" % ("data", "json", "format", "before", "after", "speed-up"))
    for name, data in sets.items():
        for json_fields in ((), ("event",)):
            if name.startswith("flat") and json_fields:
                continue
            for fmt in ("stream", "hec"):
                meta = EventMeta(index="main", sourcetype="aliyun:sls", source="sls:proj:store", default_host="hf-1",
                                 json_fields=json_fields, stanza="aliyun_sls://bench")
                shaper = EventShaper(meta, fmt)
                transcoder = Transcoder(EventShaper(meta, fmt))
                if transcoder.transcode(data) != shaper.shape(decode_log_group_list(data)):
                    raise SystemExit("transcoder and decoder+shaper differ on %s %s %s" % (name, json_fields, fmt))
                before, before_text = measured(lambda: shaper.shape(decode_log_group_list(data)), len(data),
                                               seconds, repeat)
                after, after_text = measured(lambda: transcoder.transcode(data), len(data), seconds, repeat)
                print("%-28s %-6s %-6s %-22s %-22s x%.2f" % (name, ",".join(json_fields) or "-", fmt, before_text,
                                                            after_text, after / before), flush=True)


def bench_stages(sets: Dict[str, bytes], seconds: float, repeat: int) -> None:
    """Every CPU stage of a pull between the socket and the sink, each as raw MB per CPU-second."""
    sink = subprocess.Popen([sys.executable, "-c", "import sys\nwhile sys.stdin.buffer.read(1 << 20): pass"],
                            stdin=subprocess.PIPE)
    assert sink.stdin is not None
    try:
        print("\nstages, raw MB per CPU-second, median (min-max) of %d runs; share = CPU share in one pull" % repeat)
        for name, data in sets.items():
            compressed = zlib.compress(data, 6)
            meta = EventMeta(index="main", sourcetype="aliyun:sls", source="sls:proj:store", default_host="hf-1",
                             stanza="aliyun_sls://bench")
            stream = Transcoder(EventShaper(meta, "stream"))
            hec = Transcoder(EventShaper(meta, "hec"))
            stream_events = stream.transcode(data)[0]
            hec_events = hec.transcode(data)[0]
            stream_body = b"".join(stream_events)
            hec_body = b"\n".join(hec_events)

            def write() -> None:
                sink.stdin.write(stream_body)
                sink.stdin.flush()

            stages: List[Tuple[str, Callable[[], object]]] = [
                ("zlib.decompress (pull)", lambda: zlib.decompress(compressed, 47)),
                ("transcode stream", lambda: stream.transcode(data)),
                ("join stream batch", lambda: b"".join(stream_events)),
                ("write stream to a pipe", write),
                ("transcode hec", lambda: hec.transcode(data)),
                ("join hec body", lambda: b"\n".join(hec_events)),
                ("sum(len) of events", lambda: sum(len(e) for e in hec_events)),
                ("gzip level 1 (hec)", lambda: gzip.compress(hec_body, compresslevel=1)),
            ]
            rates = {label: measured(function, len(data), seconds, repeat) for label, function in stages}
            print("%s: %.1f MB raw, deflated %.1f MB, stream %.1f MB, hec %.1f MB"
                  % (name, len(data) / 1e6, len(compressed) / 1e6, len(stream_body) / 1e6, len(hec_body) / 1e6))
            pipelines = {
                "stream": ["zlib.decompress (pull)", "transcode stream", "join stream batch", "write stream to a pipe"],
                "hec": ["zlib.decompress (pull)", "transcode hec", "join hec body", "sum(len) of events"],
                "hec+gzip": ["zlib.decompress (pull)", "transcode hec", "join hec body", "sum(len) of events",
                             "gzip level 1 (hec)"],
            }
            for label, (median, text) in rates.items():
                print("  %-26s %s" % (label, text))
            for pipeline, labels in pipelines.items():
                cost = sum(1 / rates[label][0] for label in labels)
                shares = ", ".join("%s %.0f%%" % (label.split(" (")[0], 100 / rates[label][0] / cost)
                                   for label in labels)
                print("  -> %-8s %6.1f MB/s for these stages; %s" % (pipeline, 1 / cost, shares))
    finally:
        sink.stdin.close()
        sink.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per figure")
    parser.add_argument("--stages", action="store_true", help="also measure decompress, join, write and gzip")
    args = parser.parse_args()
    sets = data_sets()
    print("python %s on %s" % (sys.version.split()[0], sys.platform))
    bench_decode_shape(sets, args.seconds, args.repeat)
    if args.stages:
        bench_stages(sets, args.seconds, args.repeat)


if __name__ == "__main__":
    main()
