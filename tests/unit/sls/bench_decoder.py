"""Micro-benchmark of sls_forwarder.sls.decoder (not a test): MB/s of decode on ~20 MB of 1 KB / 20-field logs.

Run from the repository root with any Python 3.9+ (stdlib only):

    python tests/unit/sls/bench_decoder.py [--mb 20] [--rounds 5]
"""

import argparse
import os
import random
import string
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "package", "bin"))

from sls_forwarder.sls.decoder import decode_log_group_list  # noqa: E402


def _varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _pair(key, value):
    return _field(1, key) + _field(2, value)


def build_log_group_list(target_bytes, logs_per_group=256, seed=7):
    """Return LogGroupList bytes of about ``target_bytes``: 20 fields per log, about 1 KB per log."""
    rng = random.Random(seed)
    alphabet = (string.ascii_letters + string.digits + " :/._-").encode()
    keys = [("field_%02d" % i).encode() for i in range(20)]
    groups = []
    total = 0
    now = int(time.time())
    while total < target_bytes:
        logs = []
        for _ in range(logs_per_group):
            contents = b"".join(
                _field(2, _pair(key, bytes(rng.choice(alphabet) for _ in range(rng.randint(20, 70)))))
                for key in keys
            )
            log = b"\x08" + _varint(now) + contents + b"\x25" + rng.randrange(10**9).to_bytes(4, "little")
            logs.append(_field(1, log))
        group = b"".join(logs) + _field(3, b"topic") + _field(4, b"10.0.0.1") + _field(6, _pair(b"host", b"web-1"))
        groups.append(_field(1, group))
        total += len(groups[-1])
    return b"".join(groups)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = build_log_group_list(int(args.mb * 1024 * 1024))
    groups = decode_log_group_list(data)
    logs = sum(len(g.logs) for g in groups)
    best = float("inf")
    for _ in range(args.rounds):
        started = time.perf_counter()
        decode_log_group_list(data)
        best = min(best, time.perf_counter() - started)
    mb = len(data) / 1e6
    print("python %s: %.1f MB, %d logs, %.0f bytes/log, best of %d: %.3f s = %.1f MB/s"
          % (sys.version.split()[0], mb, logs, len(data) / logs, args.rounds, best, mb / best))


if __name__ == "__main__":
    main()
