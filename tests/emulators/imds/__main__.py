"""CLI: ``python3 -m tests.emulators.imds [--role-name NAME] [--no-hardened] [--lifetime S]``.

Prints one line "metadata emulator listening on http://HOST:PORT" and serves until SIGTERM or SIGINT (exit 0).
Point the add-on at it with ``TA_ALIYUN_SLS_IMDS_URL=http://HOST:PORT`` (tests only).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..cli import serve
from ..sts.tokens import DEFAULT_ISSUER_KEY
from .server import ImdsEmulator


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.emulators.imds", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--role-name", default="sls-forwarder-role", help="the attached RAM role ('' for none)")
    parser.add_argument("--account-id", default="123456789012")
    parser.add_argument("--no-hardened", action="store_true", help="also serve GETs without a token")
    parser.add_argument("--lifetime", type=float, default=21600, help="seconds the role's credentials live")
    parser.add_argument("--issuer-key", default=DEFAULT_ISSUER_KEY, help="shared with the SLS and STS twins")
    args = parser.parse_args(argv)
    emulator = ImdsEmulator(args.role_name, account_id=args.account_id, hardened=not args.no_hardened,
                            lifetime=args.lifetime, host=args.host, port=args.port, issuer_key=args.issuer_key)
    return serve(emulator, lambda: "metadata emulator listening on %s" % emulator.url)


if __name__ == "__main__":
    sys.exit(main())
