"""AckPoller: ackId -> request for one channel; a thread asks HEC which are indexed and expires the overdue ones.

Every outstanding request ends exactly once through one of two callbacks: ``on_acked`` (its ackId read true) or
``on_expired`` (no true within ``ack_timeout``, or HEC handed its ackId to a newer request, which happens when
HEC restarts and numbers the channel from 0 again). Expired requests are for the caller to send again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

from ...errors import ForwarderError
from .batch import HecRequest

__all__ = ["AckPoller"]

logger = logging.getLogger("sls_forwarder.splunk.hec.ack_poller")


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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._failing = False

    def add(self, request: HecRequest) -> None:
        """Wait for ``request.ack_id`` (set, with ``sent_at``, by the caller from the POST reply)."""
        if request.ack_id is None:
            raise ValueError("request %s has no ackId" % request.describe())
        with self._lock:
            replaced = self._outstanding.get(request.ack_id)
            self._outstanding[request.ack_id] = request
        if replaced is not None:
            logger.warning("action=hec_ack_id_reused ack_id=%d %s detail=HEC reissued the ackId (restarted?); "
                           "sending the older request again", request.ack_id, replaced.describe())
            self._on_expired(replaced)

    def outstanding(self) -> int:
        """Requests still waiting for their ack."""
        with self._lock:
            return len(self._outstanding)

    def poll_once(self) -> None:
        """Expire overdue requests, then query the others once; failures are logged and retried next time."""
        now = self._clock()
        with self._lock:
            expired = [r for r in self._outstanding.values() if now - r.sent_at >= self._ack_timeout]
            for request in expired:
                del self._outstanding[request.ack_id]
            waiting = dict(self._outstanding)
        for request in expired:
            logger.warning("action=hec_ack_timeout ack_id=%s %s timeout=%.0f detail=sending again",
                           request.ack_id, request.describe(), self._ack_timeout)
            self._on_expired(request)
        if not waiting:
            return
        try:
            states = self._query_acks(sorted(waiting))
        except ForwarderError as error:
            if not self._failing:
                logger.warning("action=hec_ack_query_failed error=%s detail=%s", type(error).__name__, error)
            self._failing = True
            return
        if self._failing:
            logger.info("action=hec_ack_query_recovered")
            self._failing = False
        acked: List[HecRequest] = []
        with self._lock:
            for ack_id, request in waiting.items():
                # Identity check: the id may have been handed to a newer request since the snapshot.
                if states.get(ack_id) and self._outstanding.get(ack_id) is request:
                    del self._outstanding[ack_id]
                    acked.append(request)
        for request in acked:
            self._on_acked(request)

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
