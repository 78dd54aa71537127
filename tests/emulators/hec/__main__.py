"""Run the HEC emulator: ``python3 -m tests.emulators.hec --port 8088 --token T [--ack] [--record events.jsonl]``.

Prints one line with the URL it listens on, then serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..cli import serve
from .server import HecEmulator


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.emulators.hec", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088, help="0 picks a free port")
    parser.add_argument("--token", action="append", required=True, help="HEC token (repeatable)")
    parser.add_argument("--ack", action="store_true", help="enable indexer acknowledgement on the tokens")
    parser.add_argument("--ack-delay", type=float, default=0.0, help="seconds before an ack reads true")
    parser.add_argument("--index", action="append", help="allowed index (repeatable); default: any")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed certificate")
    parser.add_argument("--record", help="append every accepted event as a JSON line to this file")
    args = parser.parse_args(argv)

    tokens = {token: {"ack": args.ack, "indexes": args.index} for token in args.token}
    emulator = HecEmulator(host=args.host, port=args.port, tokens=tokens, ack_delay=args.ack_delay,
                           tls=args.tls, record_path=args.record)
    return serve(emulator, lambda: f"hec emulator listening url={emulator.url} ack={args.ack} tokens={len(tokens)}")


if __name__ == "__main__":
    sys.exit(main())
