"""HEC requests: a ShardBatch's events packed into byte-bounded request bodies, and the batch's completion count.

A ShardBatch becomes a ``PendingBatch`` and one or more ``HecRequest`` bodies. The batch is done when every one of
its requests is finished (delivered, acknowledged, or its events dead-lettered). A rejected request is split into
smaller ones (``split``) that join the same PendingBatch, so the batch still finishes exactly once.
"""

from __future__ import annotations

import gzip
import threading
from typing import Callable, List, Optional, Sequence, Tuple

from ...batch import ShardBatch

__all__ = ["PendingBatch", "HecRequest", "pack_events", "split_points"]

# Envelopes in a body are separated by a newline: valid for HEC (it reads concatenated JSON) and readable in logs.
_SEPARATOR = b"\n"


class PendingBatch:
    """A ShardBatch in flight, with the number of its requests not yet finished.

    Arguments:
        batch: The batch being delivered.
        on_done: The sink caller's callback, invoked by the sink once ``finish_request`` reports the last one.
    """

    def __init__(self, batch: ShardBatch, on_done: Callable[[ShardBatch], None]) -> None:
        self.batch = batch
        self.on_done = on_done
        self.size = batch.event_bytes
        self._open = 0
        self._lock = threading.Lock()

    def add_requests(self, count: int) -> None:
        """Count ``count`` more requests (call before the request they replace is finished)."""
        with self._lock:
            self._open += count

    def finish_request(self) -> bool:
        """Count one request as finished.

        Returns:
            True exactly once: when the last open request of the batch finishes.
        """
        with self._lock:
            if self._open <= 0:
                raise RuntimeError("batch shard=%d cursor=%s finished more requests than it had"
                                   % (self.batch.shard_id, self.batch.cursor))
            self._open -= 1
            return self._open == 0


class HecRequest:
    """One POST body: consecutive events ``events`` starting at ``start`` in the batch's event list.

    Its state (ackId, send time) lives here so retry and ack-timeout policy stay out of the HTTP code.

    Arguments:
        pending: The batch this request belongs to.
        start: Index of the first event in ``pending.batch.events`` (for dead-letter records).
        events: The serialized HEC envelopes.
    """

    __slots__ = ("pending", "start", "events", "body", "ack_id", "sent_at", "finished", "_gzipped")

    def __init__(self, pending: PendingBatch, start: int, events: List[bytes]) -> None:
        self.pending = pending
        self.start = start
        self.events = events
        self.body = _SEPARATOR.join(events)
        self.ack_id: Optional[int] = None
        self.sent_at = 0.0
        self.finished = False
        self._gzipped: Optional[bytes] = None

    def payload(self, compress: bool) -> bytes:
        """The body to post: as is, or gzip-compressed (computed once, reused by retries)."""
        if not compress:
            return self.body
        if self._gzipped is None:
            # Level 1: most of the size gain for a fraction of level 9's CPU, which the hot path cannot spare.
            self._gzipped = gzip.compress(self.body, compresslevel=1)
        return self._gzipped

    def split(self, points: Sequence[int]) -> List["HecRequest"]:
        """Cut this request at the given event offsets (relative to ``self.events``) into new requests."""
        bounds = [0] + [p for p in points if 0 < p < len(self.events)] + [len(self.events)]
        return [HecRequest(self.pending, self.start + low, self.events[low:high])
                for low, high in zip(bounds, bounds[1:]) if high > low]

    def describe(self) -> str:
        """``shard=.. cursor=.. events=a-b`` for log lines."""
        batch = self.pending.batch
        return "shard=%d cursor=%s events=%d-%d" % (batch.shard_id, batch.cursor, self.start,
                                                    self.start + len(self.events) - 1)


def pack_events(events: Sequence[bytes], max_content_length: int) -> List[Tuple[int, List[bytes]]]:
    """Group consecutive events into bodies no longer than ``max_content_length`` bytes.

    An event that alone exceeds the limit gets a body of its own (the caller screens events above
    ``max_event_size`` before packing).

    Arguments:
        events: Serialized envelopes in batch order.
        max_content_length: Body size limit, counting the newline separators.

    Returns:
        ``(start index, events)`` per body, covering ``events`` in order.
    """
    bodies: List[Tuple[int, List[bytes]]] = []
    current: List[bytes] = []
    start = 0
    size = 0
    for index, event in enumerate(events):
        length = len(event)
        if current and size + 1 + length > max_content_length:
            bodies.append((start, current))
            current = []
        if not current:
            start = index
            size = length
        else:
            size += 1 + length
        current.append(event)
    if current:
        bodies.append((start, current))
    return bodies


def split_points(count: int, invalid_event_number: Optional[int]) -> List[int]:
    """Where to cut a rejected request of ``count`` events (count >= 2).

    When HEC names the invalid event, isolate it (events before it may already be indexed: resending them can
    duplicate, never lose); otherwise bisect.
    """
    if invalid_event_number is not None and 0 <= invalid_event_number < count:
        return [invalid_event_number, invalid_event_number + 1]
    return [count // 2]
