"""Run the Splunk Web stand-in: ``python3 -m tests.emulators.splunkweb --app build/test-app/TA-aliyun-sls``.

Installs the built app under a temporary ``$SPLUNK_HOME``, starts the splunkd double and the stand-in, prints one
line with the Configuration page's URL, and serves until SIGTERM or Ctrl-C. Open the URL in a browser.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from tests.splunk_runner import interpreters

from ..cli import serve_until_terminated
from .stack import SplunkWebStack


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.emulators.splunkweb", description=__doc__)
    parser.add_argument("--app", required=True, help="the built app folder (build/test-app/TA-aliyun-sls)")
    parser.add_argument("--port", type=int, default=8000, help="port of the stand-in; 0 picks a free port")
    parser.add_argument("--python", help="Splunk's Python for the handlers (default: newest of pyenv 3.9/3.13)")
    args = parser.parse_args(argv)
    python = args.python or list(interpreters().values())[-1]
    with SplunkWebStack(args.app, python, port=args.port) as stack:
        assert stack.web is not None
        serve_until_terminated(f"Splunk Web stand-in listening url={stack.web.page_url('configuration')} "
                               f"splunkd={stack.splunkd.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
