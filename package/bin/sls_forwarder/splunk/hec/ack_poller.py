"""AckPoller: ackId -> request for one channel; a thread asks HEC which are indexed and expires the overdue ones.

Every outstanding request ends exactly once through one of two callbacks: ``on_acked`` (its ackId read true) or
``on_expired`` (no true within ``ack_timeout``, or HEC numbered the channel anew, see below). Expired requests are
for the caller to send again.

HEC numbers ackIds per channel, 0, 1, 2, ..., and starts again from 0 when it restarts (acks live in memory), so
"ackId 5 is indexed" may be about a newer request that HEC gave 5 after the restart while the older request holding
5 was lost with the restart. Two rules keep such an answer from completing the wrong request:

- The gate. A POST holds it shared (``posting``) from before it is sent until its ackId is registered (``add``);
  ``poll_once`` holds it exclusively from its snapshot until the answer is applied. So while an answer is applied no
  request is between "HEC issued its ackId" and "registered": every id HEC has given us is in the registry, and a
  reused one has already been detected. POSTs still run concurrently with each other; the gate prefers the poller,
  which waits for POSTs in flight (bounded by the HTTP timeouts) and is not starved by a steady stream of new ones.
- Reset detection, in ``add``. HEC issues increasing ids, so a new id at or below the highest one registered before
  this POST was sent, or equal to one still outstanding, means HEC started the channel again. POSTs in flight
  together may be answered in any order, so a new id is compared only with ids registered before its POST was sent
  and with the ids outstanding (while a POST is in flight nothing leaves the registry but through a reset, since
  acks and expiries need the gate).
  On a reset every outstanding request and every POST in flight is sent again: which side of the restart their
  ids came from cannot be told, and sending again only costs duplicates.

What no client can see: an id HEC issued to a POST whose reply never arrived (connection lost after HEC read it).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence

from ...errors import ForwarderError
from .batch import HecRequest

__all__ = ["AckPoller", "PostStart"]

logger = logging.getLogger("sls_forwarder.splunk.hec.ack_poller")


class PostStart(NamedTuple):
    """What the poller knew when a POST was sent (from ``AckPoller.posting``, for ``AckPoller.add``)."""

    epoch: int      # resets detected so far
    highest: int    # highest ackId registered in this epoch, -1 when none


class _Gate:
    """Readers-writer lock preferring the writer: POSTs share it, the poller takes it alone."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._posts = 0
        self._poller_waiting = False
        self._poller_inside = False

    def acquire_shared(self) -> None:
        with self._changed:
            while self._poller_waiting or self._poller_inside:
                self._changed.wait()
            self._posts += 1

    def release_shared(self) -> None:
        with self._changed:
            self._posts -= 1
            if self._posts == 0:
                self._changed.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._changed:
            self._poller_waiting = True
            while self._posts or self._poller_inside:
                self._changed.wait()
            self._poller_waiting = False
            self._poller_inside = True
        try:
            yield
        finally:
            with self._changed:
                self._poller_inside = False
                self._changed.notify_all()


class AckPoller:
    """Tracks requests waiting for indexer acknowledgement and polls for them on a timer.

    Arguments:
        query_acks: ``HecSender.query_acks``: ackIds -> indexed? (raises ForwarderError on failure).
        on_acked: Called with each request whose ackId read true.
        on_expired: Called with each request that must be sent again.
        interval: Seconds between polls.
        ack_timeout: Seconds after sending before a request without a true ack is expired.
        clock: Monotonic time source (tests).
    """

    def __init__(self, query_acks: Callable[[Sequence[int]], Dict[int, bool]],
                 on_acked: Callable[[HecRequest], None], on_expired: Callable[[HecRequest], None],
                 interval: float, ack_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._query_acks = query_acks
        self._on_acked = on_acked
        self._on_expired = on_expired
        self._interval = interval
        self._ack_timeout = ack_timeout
        self._clock = clock
        self._outstanding: Dict[int, HecRequest] = {}
        self._epoch = 0
        self._highest = -1
        self._gate = _Gate()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._failing = False

    @contextmanager
    def posting(self) -> Iterator[PostStart]:
        """Hold around one POST on this channel, from before it is sent until its ackId is ``add``-ed (or it failed).

        Yields:
            The PostStart to pass to ``add``.
        """
        self._gate.acquire_shared()
        try:
            with self._lock:
                start = PostStart(self._epoch, self._highest)
            yield start
        finally:
            self._gate.release_shared()

    def add(self, request: HecRequest, start: PostStart) -> None:
        """Wait for ``request.ack_id`` (set, with ``sent_at``, by the caller from the POST reply), or send it again.

        Call inside the ``posting`` block of the POST that got the ackId. When that ackId shows HEC numbered the
        channel anew, this request and every outstanding one go to ``on_expired`` instead.
        """
        ack_id = request.ack_id
        if ack_id is None:
            raise ValueError("request %s has no ackId" % request.describe())
        resend: List[HecRequest] = []
        reset = False
        with self._lock:
            if start.epoch != self._epoch:
                # A reset was detected while this POST was in flight: its id may be from before or after it.
                resend.append(request)
            elif ack_id <= start.highest or ack_id in self._outstanding:
                reset = True
                self._epoch += 1
                self._highest = -1
                resend.extend(self._outstanding.values())
                resend.append(request)
                self._outstanding.clear()
            else:
                self._outstanding[ack_id] = request
                self._highest = max(self._highest, ack_id)
        if reset:
            logger.warning("action=hec_ack_channel_reset ack_id=%d highest_before=%d resending=%d %s detail=HEC "
                           "numbers this channel's ackIds from the start again (restarted?); sending again every "
                           "request it has not acknowledged", ack_id, start.highest, len(resend), request.describe())
        for stale in resend:
            self._hand_over(self._on_expired, stale)

    def outstanding(self) -> int:
        """Requests still waiting for their ack."""
        with self._lock:
            return len(self._outstanding)

    def poll_once(self) -> None:
        """Expire overdue requests, then query the others once; failures are logged and retried next time."""
        with self._lock:
            if not self._outstanding:
                return  # nothing to ask: do not hold up the POSTs
        acked: List[HecRequest] = []
        # Alone on the channel from snapshot to applied answer (module docstring): no request is between getting its
        # ackId and being registered, so every reuse of an id has been detected before the answer is read.
        with self._gate.exclusive():
            now = self._clock()
            with self._lock:
                expired = [r for r in self._outstanding.values() if now - r.sent_at >= self._ack_timeout]
                for request in expired:
                    del self._outstanding[request.ack_id]
                waiting = dict(self._outstanding)
            states = self._query(waiting) if waiting else {}
            with self._lock:
                for ack_id, request in waiting.items():
                    if states.get(ack_id):
                        del self._outstanding[ack_id]
                        acked.append(request)
        for request in expired:
            logger.warning("action=hec_ack_timeout ack_id=%s %s timeout=%.0f detail=sending again",
                           request.ack_id, request.describe(), self._ack_timeout)
            self._hand_over(self._on_expired, request)
        for request in acked:
            self._hand_over(self._on_acked, request)

    @staticmethod
    def _hand_over(callback: Callable[[HecRequest], None], request: HecRequest) -> None:
        """Run one outcome callback. These requests have left the registry, so a failing callback must not keep the
        ones after it from being resolved: their batches would never complete and their shards would stall."""
        try:
            callback(request)
        except Exception:
            logger.exception("action=hec_ack_callback_failed ack_id=%s %s", request.ack_id, request.describe())

    def _query(self, waiting: Dict[int, HecRequest]) -> Dict[int, bool]:
        """Ask HEC about ``waiting``; {} when the query failed (logged once per failure streak)."""
        try:
            states = self._query_acks(sorted(waiting))
        except ForwarderError as error:
            if not self._failing:
                logger.warning("action=hec_ack_query_failed error=%s detail=%s", type(error).__name__, error)
            self._failing = True
            return {}
        if self._failing:
            logger.info("action=hec_ack_query_recovered")
            self._failing = False
        return states

    def start(self) -> None:
        """Start the polling thread."""
        self._thread = threading.Thread(target=self._run, name="hec-ack-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; outstanding requests stay undelivered (never reported)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll_once()
            except Exception:  # a callback bug must not end acknowledgement for the whole process
                logger.exception("action=hec_ack_poll_error")
