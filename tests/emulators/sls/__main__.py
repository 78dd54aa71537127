"""CLI: ``python3 -m tests.emulators.sls --host 127.0.0.1 --port 8181 --access-key-id ID --access-key-secret S``.

Prints one line "SLS emulator listening on http://HOST:PORT" and serves until SIGTERM or SIGINT (exit 0).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..cli import serve
from .server import SlsEmulator


def _parse(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m tests.emulators.sls", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8181, help="port to bind; 0 picks a free port")
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--security-token", default="", help="require this STS token with the key")
    parser.add_argument("--sts-issuer-key", default=None,
                        help="accept the temporary keys the STS/metadata twins seal with this key (default: theirs)")
    parser.add_argument("--project", help="pre-create this project")
    parser.add_argument("--logstore", help="pre-create this logstore (needs --project)")
    parser.add_argument("--shards", type=int, default=2, help="shard count of --logstore (default 2)")
    parser.add_argument("--load-demo", type=int, default=0, metavar="N",
                        help="load N generated ActionTrail events into --logstore")
    parser.add_argument("--seed", type=int, default=1, help="data generator seed for --load-demo")
    args = parser.parse_args(argv)
    if args.logstore and not args.project:
        parser.error("--logstore needs --project")
    if args.load_demo and not args.logstore:
        parser.error("--load-demo needs --project and --logstore")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse(argv)
    sts = {args.access_key_id: args.security_token} if args.security_token else None
    emulator = SlsEmulator(host=args.host, port=args.port,
                           access_keys={args.access_key_id: args.access_key_secret}, sts_tokens=sts,
                           **({"sts_issuer_key": args.sts_issuer_key} if args.sts_issuer_key else {}))
    if args.project:
        emulator.create_project(args.project)
    if args.logstore:
        emulator.create_logstore(args.project, args.logstore, shard_count=args.shards)
    if args.load_demo:
        from .datagen import DataSpec, load_direct

        load_direct(emulator, args.project, args.logstore,
                    DataSpec(kind="actiontrail", seed=args.seed, event_count=args.load_demo, logs_per_group=10))
    return serve(emulator, lambda: "SLS emulator listening on %s" % emulator.url)


if __name__ == "__main__":
    sys.exit(main())
