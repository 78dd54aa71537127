"""FailureStreak: when a retry loop should log, so a long outage writes a handful of lines, not one per retry.

Every retry loop of the add-on (SLS calls, shard steps, credential renewals, HEC requests and ack queries) logs the
first failure of a streak, a change of cause, an optional reminder while it lasts, and one line when it heals.
Pure: no I/O; not thread-safe (each loop owns its streak, or its owner locks).
"""

from __future__ import annotations

import time
from typing import Callable, Hashable, Optional

__all__ = ["FailureStreak"]


class FailureStreak:
    """Counts consecutive failures and says which of them deserve a log line.

    Arguments:
        remind_every: Seconds after which a failure with an unchanged cause is worth a reminder line (None: never).
        clock: Monotonic seconds (tests pass a fake).
    """

    def __init__(self, remind_every: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._remind_every = remind_every
        self._clock = clock
        self.cause: Hashable = None   # the cause of the latest failure
        self._started = 0.0
        self._last_logged = 0.0
        self.count = 0

    def failed(self, cause: Hashable = None) -> bool:
        """Record a failure; True when it should be logged (first of a streak, new cause, or reminder due)."""
        now = self._clock()
        self.count += 1
        first = self.count == 1
        if first:
            self._started = now
        changed = not first and cause != self.cause
        self.cause = cause
        due = self._remind_every is not None and now - self._last_logged >= self._remind_every
        if first or changed or due:
            self._last_logged = now
            return True
        return False

    def failing_for(self) -> float:
        """Seconds since the streak's first failure (0 when not failing)."""
        return self._clock() - self._started if self.count else 0.0

    def succeeded(self) -> int:
        """End the streak; return how many failures it had (0: there was none, nothing to log)."""
        count, self.count, self.cause = self.count, 0, None
        return count
