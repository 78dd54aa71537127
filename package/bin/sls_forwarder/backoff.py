"""Capped exponential backoff with jitter, sleeping on a threading.Event so shutdown wakes it at once."""

from __future__ import annotations

import random
import threading

__all__ = ["Backoff"]


class Backoff:
    """Delays of ``initial * factor**n`` seconds, capped at ``cap``, each moved by up to +-``jitter`` (a fraction).

    Not thread-safe: use one instance per retry loop.

    Arguments:
        initial: First delay in seconds (> 0).
        cap: Largest delay in seconds (>= initial).
        factor: Growth per attempt (>= 1).
        jitter: Relative spread, 0 <= jitter < 1; 0.2 means +-20 %.

    Raises:
        ValueError: A parameter is out of range.
    """

    def __init__(self, initial: float = 0.5, cap: float = 30.0, factor: float = 2.0, jitter: float = 0.2) -> None:
        if initial <= 0:
            raise ValueError("backoff initial delay must be > 0, got %r" % initial)
        if cap < initial:
            raise ValueError("backoff cap %r must be >= initial delay %r" % (cap, initial))
        if factor < 1:
            raise ValueError("backoff factor must be >= 1, got %r" % factor)
        if not 0 <= jitter < 1:
            raise ValueError("backoff jitter must be in [0, 1), got %r" % jitter)
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._base = initial

    def next_delay(self) -> float:
        """Return the next delay and grow the following one.

        Returns:
            Seconds to wait, within [base * (1 - jitter), min(cap, base * (1 + jitter))].
        """
        base = self._base
        # Stop growing at the cap so the float never overflows however long the streak lasts.
        self._base = min(self.cap, base * self.factor)
        delay = base * (1.0 + random.uniform(-self.jitter, self.jitter))
        return min(self.cap, delay)

    def reset(self) -> None:
        """Start again from the initial delay (after a success)."""
        self._base = self.initial

    def wait(self, stop: threading.Event) -> bool:
        """Sleep for ``next_delay()`` seconds or until ``stop`` is set.

        Returns:
            True if ``stop`` was set (the caller should give up), False if the full delay passed.
        """
        return stop.wait(self.next_delay())
