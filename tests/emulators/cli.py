"""What every emulator's command line does once its server runs: say where it listens, serve until told to stop."""

from __future__ import annotations

import signal
import time
from typing import Callable, List, Protocol

__all__ = ["serve_until_terminated", "serve"]


class _Server(Protocol):
    def start(self) -> object: ...

    def stop(self) -> None: ...


def serve(server: _Server, banner: Callable[[], str]) -> int:
    """Start ``server``, announce it with ``banner()`` (read after start: the URL has its port), serve until
    SIGTERM or SIGINT, stop it. Returns the exit code, 0."""
    server.start()
    try:
        serve_until_terminated(banner())
    finally:
        server.stop()
    return 0


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
