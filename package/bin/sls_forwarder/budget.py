"""MemoryBudget: one input's cap on the data it holds, pulled but not yet delivered, shared by all its shards.

Per-shard limits alone let memory grow with the shard count (64 shards x 4 batches x 2 MB); an admin sizing a
forwarder needs one number per input. Pure: no I/O, thread-safe.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Deque, List

__all__ = ["MemoryBudget", "shaped_size", "EVENT_OVERHEAD_BYTES"]

# What a shaped event costs besides its bytes: the bytes object's header and its slot in the batch's list.
EVENT_OVERHEAD_BYTES = 48
# A waiter re-checks ``active`` this often even when nobody wakes it.
_RECHECK_SECONDS = 0.5


def shaped_size(events: List[bytes]) -> int:
    """Bytes a batch of shaped events holds in memory."""
    return sum(map(len, events)) + EVENT_OVERHEAD_BYTES * len(events)


class MemoryBudget:
    """Bytes reserved against a limit; waiters are served first come, first served.

    Arguments:
        limit_bytes: The most bytes held at once, except that a request is granted when nothing else is held, so
            one oversized pull (a single huge log group) still goes through instead of waiting forever.
    """

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes < 1:
            raise ValueError("memory budget %d must be positive" % limit_bytes)
        self.limit = limit_bytes
        self._held = 0
        self._waiting: Deque[object] = deque()
        self._changed = threading.Condition(threading.Lock())

    def acquire(self, nbytes: int, active: Callable[[], bool]) -> bool:
        """Block until ``nbytes`` fit and every earlier waiter has been served, then hold them.

        Arguments:
            nbytes: Bytes to hold.
            active: Returns False when the caller should give up (revoked, stopping); re-checked on ``wake``.

        Returns:
            True when the bytes are held; False (nothing held) once ``active()`` is false.
        """
        ticket = object()
        with self._changed:
            self._waiting.append(ticket)
            try:
                while not (self._waiting[0] is ticket and (self._held == 0 or self._held + nbytes <= self.limit)):
                    if not active():
                        return False
                    self._changed.wait(_RECHECK_SECONDS)
                if not active():
                    return False
                self._held += nbytes
                return True
            finally:
                self._waiting.remove(ticket)
                self._changed.notify_all()

    def resize(self, old: int, new: int) -> None:
        """Change a holding from ``old`` to ``new`` bytes without waiting: the data already exists."""
        with self._changed:
            self._held += new - old
            if new < old:
                self._changed.notify_all()

    def release(self, nbytes: int) -> None:
        self.resize(nbytes, 0)

    def wake(self) -> None:
        """Let waiters re-check ``active`` now (a shard was revoked, or the pipeline stops)."""
        with self._changed:
            self._changed.notify_all()

    def held(self) -> int:
        with self._changed:
            return self._held
