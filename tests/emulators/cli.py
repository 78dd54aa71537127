"""What every emulator's command line does once its server runs: say where it listens, serve until told to stop."""

from __future__ import annotations

import signal
import time
from typing import List

__all__ = ["serve_until_terminated"]


def serve_until_terminated(banner: str) -> None:
    """Print ``banner`` (the one line tests wait for), then block until SIGTERM or SIGINT.

    The handlers are installed before the banner, so a stop sent as soon as it appears is never lost. They only
    append to a list: a handler that called ``Event.set()`` could deadlock against the main thread's own
    ``Event.wait()``, which holds the same lock for a moment on every call.
    """
    received: List[int] = []
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda signum, _frame: received.append(signum))
    print(banner, flush=True)
    while not received:
        time.sleep(0.2)
