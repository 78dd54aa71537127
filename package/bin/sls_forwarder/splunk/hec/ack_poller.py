"""AckPoller: ackId -> request for one channel; a thread asks HEC which are indexed and expires the overdue ones.

Every outstanding request ends exactly once through one of two callbacks: ``on_acked`` (its ackId read true) or
``on_expired`` (no true within ``ack_timeout``, or HEC numbered the channel anew, see below). Expired requests are
for the caller to send again.

HEC numbers ackIds per channel, 0, 1, 2, ..., and starts again from 0 when it restarts (acks live in memory), so
"ackId 5 is indexed" may be about a newer request that HEC gave 5 after the restart while the older request holding
5 was lost with the restart. Two rules keep such an answer from completing the wrong request:

- The barrier. ``posting`` numbers each POST from before it is sent until its ackId is registered (``add``).
  ``poll_once`` snapshots the registry, asks HEC, then waits until every POST that started before the answer arrived
  has registered (or failed) before it applies the answer, and then only to requests of its snapshot that are still
  registered in the same epoch. So when an answer is applied every id HEC had issued when it answered is registered,
  and a reused one has already been detected (and the answer dropped). POSTs never wait for the poller: a query
  does not hold up delivery.
- Reset detection, in ``add``. HEC issues increasing ids, so a new id at or below the highest one registered before
  this POST was sent, or equal to one still outstanding, means HEC started the channel again. POSTs in flight
  together may be answered in any order, so a new id is compared only with ids registered before its POST was sent
  and with the ids outstanding. An id leaves the registry through an ack or an expiry only after the barrier, and
  only when it was registered before the poll's snapshot: a POST still in flight then started after the answer, so
  it saw that id among the highest, and a reuse of it is still caught.
  On a reset every outstanding request and every POST in flight is sent again: which side of the restart their
  ids came from cannot be told, and sending again only costs duplicates.

What no client can see: an id HEC issued to a POST whose reply never arrived (connection lost after HEC read it).

When to ask (``AckPollSchedule``): soon after requests are answered, then less and less often while nothing new reads
true, never less often than ``interval``; an answer with a true ack starts again from the shortest delay. A fixed
interval would hold every request (and the in-flight bytes behind it) for half an interval on average, and the last
requests of a burst for a whole one.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Set

from ...errors import ForwarderError
from ...streak import FailureStreak
from .batch import HecRequest

__all__ = ["AckPoller", "AckPollSchedule", "PostStart"]

logger = logging.getLogger("sls_forwarder.splunk.hec.ack_poller")


class PostStart(NamedTuple):
    """What the poller knew when a POST was sent (from ``AckPoller.posting``, for ``AckPoller.add``)."""

    epoch: int      # resets detected so far
    highest: int    # highest ackId registered in this epoch, -1 when none


class AckPollSchedule:
    """The delay before the next ack query: ``shortest`` after a query that found acks (or when requests start
    waiting), doubled after each query that found none, up to ``longest``. Pure: the poller feeds it outcomes.

    Arguments:
        shortest: Delay after progress: about the time HEC needs to index a request that was just answered.
        longest: The cap while nothing reads true (``HecConfig.ack_poll_interval``).
    """

    def __init__(self, shortest: float, longest: float) -> None:
        self._shortest = min(shortest, longest)
        self._longest = longest
        self.delay = self._shortest

    def restart(self) -> None:
        """Requests started waiting after none were: ask soon."""
        self.delay = self._shortest

    def polled(self, acked: int) -> None:
        """Record a query's outcome: ``acked`` requests read true."""
        self.delay = self._shortest if acked else min(self.delay * 2, self._longest)


class _PostsInFlight:
    """Numbers POSTs as they start, so the poller can wait for those that started before a moment to finish."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._next = 0
        self._active: Set[int] = set()

    def begin(self) -> int:
        with self._changed:
            ticket = self._next
            self._next += 1
            self._active.add(ticket)
            return ticket

    def end(self, ticket: int) -> None:
        with self._changed:
            self._active.discard(ticket)
            self._changed.notify_all()

    def wait_for_earlier(self) -> None:
        """Return once every POST begun before this call has ended (later ones are not waited for)."""
        with self._changed:
            mark = self._next
            while self._active and min(self._active) < mark:
                self._changed.wait()


class AckPoller:
    """Tracks requests waiting for indexer acknowledgement and polls for them on a timer.

    Arguments:
        query_acks: ``HecSender.query_acks``: ackIds -> indexed? (raises ForwarderError on failure).
        on_acked: Called with each request whose ackId read true.
        on_expired: Called with each request that must be sent again.
        interval: Longest delay between polls while requests wait (``AckPollSchedule``).
        ack_timeout: Seconds after sending before a request without a true ack is expired.
        clock: Monotonic time source (tests).
        shortest_interval: Delay between polls while acks keep arriving, and before the first poll of requests that
            start waiting on an idle channel.
    """

    def __init__(self, query_acks: Callable[[Sequence[int]], Dict[int, bool]],
                 on_acked: Callable[[HecRequest], None], on_expired: Callable[[HecRequest], None],
                 interval: float, ack_timeout: float, clock: Callable[[], float] = time.monotonic,
                 shortest_interval: float = 0.05) -> None:
        self._query_acks = query_acks
        self._on_acked = on_acked
        self._on_expired = on_expired
        self._schedule = AckPollSchedule(shortest_interval, interval)
        self._ack_timeout = ack_timeout
        self._clock = clock
        self._outstanding: Dict[int, HecRequest] = {}
        self._epoch = 0
        self._highest = -1
        self._posts = _PostsInFlight()
        self._lock = threading.Lock()
        self._registered = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._failures = FailureStreak()

    @contextmanager
    def posting(self) -> Iterator[PostStart]:
        """Hold around one POST on this channel, from before it is sent until its ackId is ``add``-ed (or it failed).

        Yields:
            The PostStart to pass to ``add``.
        """
        ticket = self._posts.begin()   # before reading the start: a POST the poller does not wait for saw its snapshot
        try:
            with self._lock:
                start = PostStart(self._epoch, self._highest)
            yield start
        finally:
            self._posts.end(ticket)

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
                self._registered.notify()
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

    def poll_once(self) -> int:
        """Expire overdue requests, then query the others once; failures are logged and retried next time.

        Returns:
            How many requests read true.
        """
        now = self._clock()
        with self._lock:
            if not self._outstanding:
                return 0
            epoch = self._epoch
            snapshot = dict(self._outstanding)
        overdue = {ack_id for ack_id, request in snapshot.items() if now - request.sent_at >= self._ack_timeout}
        waiting = sorted(set(snapshot) - overdue)
        states = self._query(waiting) if waiting else {}
        # The barrier (module docstring): every id HEC had issued when it answered is registered after this.
        self._posts.wait_for_earlier()
        expired: List[HecRequest] = []
        acked: List[HecRequest] = []
        with self._lock:
            if self._epoch != epoch:
                return 0   # a reset handed every request of the snapshot over for resending; the answer is void
            for ack_id, request in snapshot.items():
                if self._outstanding.get(ack_id) is not request:
                    continue
                if ack_id in overdue:
                    expired.append(request)
                elif states.get(ack_id):
                    acked.append(request)
                else:
                    continue
                del self._outstanding[ack_id]
        for request in expired:
            logger.warning("action=hec_ack_timeout ack_id=%s %s timeout=%.0f detail=sending again",
                           request.ack_id, request.describe(), self._ack_timeout)
            self._hand_over(self._on_expired, request)
        for request in acked:
            self._hand_over(self._on_acked, request)
        return len(acked)

    @staticmethod
    def _hand_over(callback: Callable[[HecRequest], None], request: HecRequest) -> None:
        """Run one outcome callback. These requests have left the registry, so a failing callback must not keep the
        ones after it from being resolved: their batches would never complete and their shards would stall."""
        try:
            callback(request)
        except Exception:
            logger.exception("action=hec_ack_callback_failed ack_id=%s %s", request.ack_id, request.describe())

    def _query(self, waiting: List[int]) -> Dict[int, bool]:
        """Ask HEC about the ackIds ``waiting``; {} when the query failed (logged once per failure streak)."""
        try:
            states = self._query_acks(waiting)
        except ForwarderError as error:
            if self._failures.failed():
                logger.warning("action=hec_ack_query_failed error=%s detail=%s", type(error).__name__, error)
            return {}
        if self._failures.succeeded():
            logger.info("action=hec_ack_query_recovered")
        return states

    def start(self) -> None:
        """Start the polling thread."""
        self._thread = threading.Thread(target=self._run, name="hec-ack-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; outstanding requests stay undelivered (never reported)."""
        self._stop.set()
        with self._registered:
            self._registered.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while self._wait_for_outstanding() and not self._stop.wait(self._schedule.delay):
            try:
                acked = self.poll_once()
            except Exception:  # a callback bug must not end acknowledgement for the whole process
                logger.exception("action=hec_ack_poll_error")
                acked = 0
            self._schedule.polled(acked)

    def _wait_for_outstanding(self) -> bool:
        """Sleep while no request waits for its ack (an idle channel costs no queries); False once stopped."""
        with self._registered:
            if self._outstanding:
                return not self._stop.is_set()
            while not self._outstanding and not self._stop.is_set():
                self._registered.wait()
        self._schedule.restart()
        return not self._stop.is_set()
