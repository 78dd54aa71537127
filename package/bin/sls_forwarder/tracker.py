"""Per-shard delivery tracking: which pulled batches are still in flight, and how far the checkpoint may move.

Batches are added in pull order and may be delivered in any order. The checkpoint a shard may commit is the
``next_cursor`` of the longest run of delivered batches from the oldest one (a low watermark), so a checkpoint
never moves past data the sink has not delivered. Pure: no I/O, thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from .batch import ShardBatch

__all__ = ["ShardTracker"]


class ShardTracker:
    """In-flight batches of one shard and their low-watermark cursor.

    Arguments:
        shard_id: The shard this tracker belongs to; batches of other shards are refused.
        committed_cursor: The position already safe to commit (the server checkpoint or the start cursor).
    """

    def __init__(self, shard_id: int, committed_cursor: str) -> None:
        self.shard_id = shard_id
        self._cursor = committed_cursor
        self._next_seq = 1
        # seq -> [batch, done]; insertion order is pull order.
        self._pending: "OrderedDict[int, list]" = OrderedDict()
        self._changed = threading.Condition(threading.Lock())

    def add(self, batch: ShardBatch) -> None:
        """Start tracking a batch; batches must be added in pull order.

        Arguments:
            batch: The batch about to be handed to the sink. Its ``seq`` is assigned here.

        Raises:
            ValueError: The batch belongs to another shard.
        """
        if batch.shard_id != self.shard_id:
            raise ValueError("batch of shard %d added to the tracker of shard %d" % (batch.shard_id, self.shard_id))
        with self._changed:
            batch.seq = self._next_seq
            self._next_seq += 1
            self._pending[batch.seq] = [batch, False]

    def mark_done(self, batch: ShardBatch) -> None:
        """Record that every event of ``batch`` was delivered (or dead-lettered); any order is fine.

        Arguments:
            batch: A batch previously passed to ``add``.

        Raises:
            ValueError: The batch is unknown or was already marked done (a batch must end exactly once).
        """
        with self._changed:
            entry = self._pending.get(batch.seq) if batch.shard_id == self.shard_id else None
            if entry is None or entry[0] is not batch:
                raise ValueError("shard %d: batch seq=%d is not in flight" % (batch.shard_id, batch.seq))
            if entry[1]:
                raise ValueError("shard %d: batch seq=%d was already marked done" % (batch.shard_id, batch.seq))
            entry[1] = True
            while self._pending:
                oldest_batch, done = next(iter(self._pending.values()))
                if not done:
                    break
                self._pending.popitem(last=False)
                self._cursor = oldest_batch.next_cursor
            self._changed.notify_all()

    def commit_cursor(self) -> str:
        """Return the cursor that is safe to commit.

        Returns:
            ``next_cursor`` of the longest delivered prefix, else the cursor given at construction.
        """
        with self._changed:
            return self._cursor

    def in_flight(self) -> int:
        """Return the number of added batches not yet covered by the watermark (delivered or not)."""
        with self._changed:
            return len(self._pending)

    def wait_drained(self, timeout: float) -> bool:
        """Block until no batch is in flight.

        Arguments:
            timeout: Seconds to wait at most.

        Returns:
            True if drained, False if the timeout expired first.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True
