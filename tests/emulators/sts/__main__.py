"""CLI: ``python3 -m tests.emulators.sts --access-key-id ID --access-key-secret S --role ARN[,trusted=ID][,external_id=X]``.

Prints one line "STS emulator listening on http://HOST:PORT" and serves until SIGTERM or SIGINT (exit 0).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..cli import serve
from .server import Role, StsEmulator
from .tokens import DEFAULT_ISSUER_KEY


def _role(text: str) -> Role:
    arn, *options = text.split(",")
    values = dict(option.split("=", 1) for option in options if "=" in option)
    trusted = frozenset(filter(None, values.get("trusted", "").split("+")))
    return Role(arn=arn, trusted=trusted, external_id=values.get("external_id", ""),
                max_session_duration=int(values.get("max_session_duration", 3600)))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.emulators.sts", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--access-key-id", required=True, help="a RAM user's AccessKey id allowed to call STS")
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--role", action="append", type=_role, default=[], metavar="ARN[,trusted=ID+ID][,external_id=X]",
                        help="a role that exists (repeatable); trusted names the principals its trust policy allows")
    parser.add_argument("--lifetime", type=float, default=None,
                        help="issued credentials live this many seconds whatever DurationSeconds asks (test knob)")
    parser.add_argument("--issuer-key", default=DEFAULT_ISSUER_KEY, help="shared with the SLS and metadata twins")
    args = parser.parse_args(argv)
    emulator = StsEmulator({args.access_key_id: args.access_key_secret}, args.role, host=args.host, port=args.port,
                           issuer_key=args.issuer_key, lifetime=args.lifetime)
    return serve(emulator, lambda: "STS emulator listening on %s" % emulator.url)


if __name__ == "__main__":
    sys.exit(main())
