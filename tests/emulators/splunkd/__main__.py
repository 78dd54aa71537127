"""Run the splunkd double: ``python3 -m tests.emulators.splunkd --session-key sk [--seed seed.json]``.

The seed file is JSON: ``{"confs": {conf: {stanza: {key: value}}}, "passwords": [...],
"encrypted": [{"conf": ..., "stanza": ..., "fields": {...}, "others": {...}}], "hec_tokens": {...}}``.
Prints one line with the URL it listens on, then serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from ..cli import serve
from .server import SplunkdDouble


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.emulators.splunkd", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--session-key", default="sk")
    parser.add_argument("--app", default="TA-aliyun-sls")
    parser.add_argument("--server-name", default="hf1")
    parser.add_argument("--http", action="store_true", help="serve plain HTTP instead of HTTPS")
    parser.add_argument("--seed", help="JSON seed file")
    args = parser.parse_args(argv)

    seed = {}
    if args.seed:
        with open(args.seed, encoding="utf-8") as handle:
            seed = json.load(handle)
    double = SplunkdDouble(session_key=args.session_key, app=args.app, confs=seed.get("confs"),
                           passwords=seed.get("passwords"), server_name=args.server_name, host=args.host,
                           port=args.port, tls=not args.http, hec_tokens=seed.get("hec_tokens"))
    for item in seed.get("encrypted", []):
        double.store_encrypted(item["conf"], item["stanza"], item["fields"], item.get("others"))
    return serve(double, lambda: f"splunkd double listening url={double.url} app={args.app}")


if __name__ == "__main__":
    sys.exit(main())
