"""HecSink: the EventSink for delivery = hec. Wires request packing, sender threads, the ack poller and dead letters.

Life of a ShardBatch:

1. ``send`` waits while more than ``max_in_flight_bytes`` are in flight (back-pressure), then accepts the batch.
   Events larger than ``max_event_size`` go straight to the dead-letter file (truncating would break the JSON
   envelope, and HEC would reject it anyway); the rest are packed into bodies under ``max_content_length``.
2. Sender threads post the bodies, each attempt to the URL ``HecBalancer.pick`` gives (round-robin over the URLs in
   service; a URL that fails retryably is taken out and the request goes to another one at once). Retryable
   failures with no URL left in service are retried forever with capped backoff, configuration
   failures (token, index, TLS, URL, proxy) every ``config_retry_interval`` and never dead-lettered; one log line per
   failure streak, one when it recovers. The first configuration failure of a streak is also reported to
   ``on_config_error``, so the owner can rebuild the sink with fresh settings.
3. Without ack a 200 delivers the request; with ack the ack poller of the URL that answered delivers it when its
   ackId reads true, or hands it back for resending (to any URL) after ``ack_timeout`` or when HEC restarted and
   numbers the channel anew.
4. A permanently rejected body is split (at HEC's ``invalid-event-number`` when given, else in halves) until the
   offending events stand alone; those are written to the dead-letter file and logged with shard and cursor.
   Events before an invalid one may already be indexed, so isolating can duplicate but never loses.
5. When every request of the batch is finished, ``on_done(batch)`` runs once (from a sender or poller thread).

``close`` waits for in-flight batches up to its timeout, then abandons the rest unreported: their checkpoint
never moves, so they are pulled again on restart (at-least-once).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ...backoff import Backoff
from ...batch import ShardBatch
from ...error_labels import CONFIGURATION, DATA, error_label
from ...errors import ConfigError, ForwarderError, PermanentError, RetryableError
from ...streak import FailureStreak
from .ack_poller import AckPoller
from .balancer import HecBalancer, HecTarget
from .batch import HecRequest, PendingBatch, pack_events, split_points
from .channel import HecChannel
from .config import HecConfig
from .deadletter import DeadLetterFile
from .sender import HecReply, HecSender

__all__ = ["HecSink"]

logger = logging.getLogger("sls_forwarder.splunk.hec.client")


class HecSink:
    """Delivers shaped HEC envelopes to a HEC destination (one URL or several), at least once, in parallel across
    shards.

    Arguments:
        config: The destination and its limits.
        dead_letter_path: The JSON-lines file for rejected events (``<checkpoint_dir>/<input>.deadletter.jsonl``).
        stop: The process's shutdown event: a ``send`` blocked by back-pressure gives up when it is set.
        channel: The data channel of the first URL; by default a new one (every other URL always gets a new one).
            Every ackId on it must come from this sink's requests: the ack poller detects a HEC restart from the ids
            it sees, and on a shared channel a closed sink's request still in flight could take an id unseen.
        sender: The HTTP side of a single URL; by default one HecSender per URL of ``config`` (tests pass fakes).
        on_config_error: Called (from a sender thread) with the first ConfigError of each failure streak, e.g. to
            rebuild the sink with fresh settings; the sink itself keeps retrying every ``config_retry_interval``.
    """

    def __init__(self, config: HecConfig, dead_letter_path: str, *, stop: Optional[threading.Event] = None,
                 channel: Optional[HecChannel] = None, sender: Optional[HecSender] = None,
                 on_config_error: Optional[Callable[[ConfigError], None]] = None) -> None:
        self.config = config
        senders = [sender] if sender is not None else [
            HecSender(config, channel if channel is not None and number == 0 else HecChannel(), base_url=url)
            for number, url in enumerate(config.base_urls)]
        self._balancer = HecBalancer([HecTarget(each, self._make_poller(each)) for each in senders],
                                     probe_initial=config.retry_initial, probe_cap=config.retry_cap)
        self.on_config_error = on_config_error
        self._dead_letters = DeadLetterFile(dead_letter_path)
        self._stop = stop
        self._abort = threading.Event()
        self._queue: "queue.Queue[Optional[HecRequest]]" = queue.Queue()
        self._state = threading.Condition()
        self._in_flight_bytes = 0
        self._in_flight_batches = 0
        self._closing = False
        self._closed = False
        self._report_lock = threading.Lock()
        self._failures = FailureStreak()   # cause: (error class, code, status)
        self._config_failing = False
        self._warned_no_ack_id = False
        for target in self._balancer.targets:
            if target.poller is not None:
                target.poller.start()
        self._balancer.start()
        self._workers = [threading.Thread(target=self._work, name="hec-sender-%d" % n, daemon=True)
                         for n in range(config.senders)]
        for worker in self._workers:
            worker.start()

    def _make_poller(self, sender: HecSender) -> Optional[AckPoller]:
        """The ack poller of ``sender``'s channel, or None without indexer acknowledgement."""
        if not self.config.ack:
            return None
        return AckPoller(sender.query_acks, self._finish_request, self._resend, interval=self.config.ack_poll_interval,
                         ack_timeout=self.config.ack_timeout, shortest_interval=self.config.ack_poll_min_interval)

    @property
    def in_flight_bytes(self) -> int:
        """Event bytes accepted by ``send`` and not yet delivered."""
        with self._state:
            return self._in_flight_bytes

    def send(self, batch: ShardBatch, on_done: Callable[[ShardBatch], None]) -> None:
        """Accept ``batch`` for delivery; blocks while too many bytes are in flight.

        Returns without accepting (``on_done`` never runs) when ``stop`` is set or the sink closes while waiting,
        or when the sink is already closing.

        Arguments:
            batch: Shaped HEC envelopes of one pull.
            on_done: Called once when all events are delivered (acknowledged with ack) or dead-lettered.
        """
        pending = PendingBatch(batch, on_done)
        with self._state:
            while (self._in_flight_batches and not self._closing
                   and self._in_flight_bytes + pending.size > self.config.max_in_flight_bytes):
                if self._stop is not None and self._stop.is_set():
                    logger.info("action=hec_send_abandoned shard=%d cursor=%s reason=stopping",
                                batch.shard_id, batch.cursor)
                    return
                self._state.wait(0.2)
            if self._closing:
                logger.info("action=hec_send_refused shard=%d cursor=%s reason=closing", batch.shard_id, batch.cursor)
                return
            self._in_flight_bytes += pending.size
            self._in_flight_batches += 1
        too_large: List[Tuple[int, bytes]] = []
        sendable: List[bytes] = []
        positions: List[int] = []
        for index, event in enumerate(batch.events):
            if len(event) > self.config.max_event_size:
                too_large.append((index, event))
            else:
                sendable.append(event)
                positions.append(index)
        bodies = pack_events(sendable, self.config.max_content_length)
        pending.add_requests(len(bodies) + (1 if too_large else 0))
        if not bodies and not too_large:
            self._batch_done(pending)
            return
        for start, events in bodies:
            self._queue.put(HecRequest(pending, positions[start], events))
        if too_large:
            self._dead_letter_oversized(pending, too_large)

    def close(self, timeout: float) -> None:
        """Deliver what is in flight within ``timeout`` seconds, then stop threads; later ``send`` calls are refused.

        Batches still undelivered at the deadline are never reported done.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._state:
            self._closing = True
            self._state.notify_all()
            while self._in_flight_batches and time.monotonic() < deadline:
                self._state.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            undelivered = (self._in_flight_batches, self._in_flight_bytes)
            self._closed = True
        self._abort.set()
        self._balancer.stop(timeout=1.0)
        for target in self._balancer.targets:
            if target.poller is not None:
                target.poller.stop(timeout=1.0)
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            # A worker may sit in an HTTP call until read_timeout; it is a daemon and reports nothing from now on.
            worker.join(max(0.1, deadline - time.monotonic()))
        for target in self._balancer.targets:
            target.sender.close()
        if undelivered[0]:
            logger.warning("action=hec_close_undelivered batches=%d bytes=%d detail=not checkpointed; they are "
                           "pulled again after restart", undelivered[0], undelivered[1])
        else:
            logger.info("action=hec_closed detail=everything accepted was delivered")

    # -- sender threads --------------------------------------------------------------------------------------

    def _work(self) -> None:
        backoff = Backoff(self.config.retry_initial, self.config.retry_cap)
        while True:
            request = self._queue.get()
            if request is None or self._abort.is_set():
                return
            self._deliver(request, backoff)

    def _deliver(self, request: HecRequest, backoff: Backoff) -> None:
        """Post ``request`` until it is delivered, handed to the ack poller, split or dead-lettered, or abort."""
        while not self._abort.is_set():
            target = self._balancer.pick()
            try:
                reply = self._post(target, request)
            except RetryableError as error:
                self._report_failure(error, request)
                if self._balancer.failed(target, error):
                    continue  # that URL is out now; another one in service takes the request at once
                if backoff.wait(self._abort):
                    return
                continue
            except ConfigError as error:
                self._report_failure(error, request)
                if self._abort.wait(self.config.config_retry_interval):
                    return
                continue
            except PermanentError as error:
                backoff.reset()
                self._report_recovery()
                self._reject(request, error)
                return
            except Exception:  # a bug must not kill the thread and strand the batch: log, wait, try again
                logger.exception("action=hec_send_error %s", request.describe())
                if backoff.wait(self._abort):
                    return
                continue
            backoff.reset()
            self._report_recovery()
            self._balancer.succeeded(target)
            if target.poller is not None and reply.ack_id is not None:
                return  # registered with the ack poller of that URL's channel, which finishes it or hands it back
            if target.poller is not None and not self._warned_no_ack_id:
                self._warned_no_ack_id = True
                logger.warning("action=hec_no_ack_id detail=ack is on but HEC returned no ackId; the token has indexer "
                               "acknowledgement disabled, so requests count as delivered when accepted")
            self._finish_request(request)
            return

    def _post(self, target: HecTarget, request: HecRequest) -> HecReply:
        """POST once to ``target``; with ack, register the reply's ackId with that channel's poller inside
        ``posting`` (see AckPoller)."""
        payload = request.payload(self.config.gzip)
        if target.poller is None:
            return target.sender.post_events(payload, self.config.gzip)
        with target.poller.posting() as start:
            reply = target.sender.post_events(payload, self.config.gzip)
            if reply.ack_id is not None:
                request.ack_id = reply.ack_id
                request.sent_at = time.monotonic()
                target.poller.add(request, start)
        return reply

    def _reject(self, request: HecRequest, error: PermanentError) -> None:
        """Split a rejected body, or dead-letter its single event."""
        if len(request.events) == 1:
            record = self._record(request.pending.batch, request.start, request.events[0], "rejected",
                                  error.code, error.status, error.message)
            if self._write_dead_letters([record]):
                self._finish_request(request)
            return
        parts = request.split(split_points(len(request.events), getattr(error, "invalid_event_number", None)))
        logger.info("action=hec_split %s parts=%d code=%s status=%d detail=finding the rejected events",
                    request.describe(), len(parts), error.code, error.status)
        request.pending.add_requests(len(parts))
        for part in parts:
            self._queue.put(part)
        self._finish_request(request)

    def _resend(self, request: HecRequest) -> None:
        """Ack poller: the request's ack did not come (or its ackId was reused); post it again."""
        request.ack_id = None
        self._queue.put(request)

    # -- completion ------------------------------------------------------------------------------------------

    def _finish_request(self, request: HecRequest) -> None:
        with self._state:
            if request.finished:
                logger.error("action=hec_request_finished_twice %s", request.describe())
                return
            request.finished = True
        if request.pending.finish_request():
            self._batch_done(request.pending)

    def _batch_done(self, pending: PendingBatch) -> None:
        if not self._closed:
            try:
                pending.on_done(pending.batch)
            except Exception:
                logger.exception("action=hec_on_done_error shard=%d cursor=%s", pending.batch.shard_id,
                                 pending.batch.cursor)
        with self._state:
            self._in_flight_bytes -= pending.size
            self._in_flight_batches -= 1
            self._state.notify_all()

    # -- dead letters ----------------------------------------------------------------------------------------

    def _dead_letter_oversized(self, pending: PendingBatch, events: List[Tuple[int, bytes]]) -> None:
        limit = self.config.max_event_size
        records = [self._record(pending.batch, index, event, "too_large", "", 0,
                                "event of %d bytes exceeds max_event_size %d" % (len(event), limit))
                   for index, event in events]
        if self._write_dead_letters(records):
            if pending.finish_request():
                self._batch_done(pending)

    @staticmethod
    def _record(batch: ShardBatch, index: int, event: bytes, reason: str, code: str, status: int,
                text: str) -> Dict[str, Any]:
        return {"shard": batch.shard_id, "cursor": batch.cursor, "event_index": index, "reason": reason,
                "hec_code": code, "status": status, "text": text, "event": event.decode("utf-8", "replace")}

    def _write_dead_letters(self, records: List[Dict[str, Any]]) -> bool:
        """Write until it works (a full disk must not lose them) or the sink aborts; True when written."""
        backoff = Backoff(self.config.retry_initial, self.config.retry_cap)
        while True:
            try:
                self._dead_letters.write(records)
                break
            except OSError as error:
                logger.error("action=hec_dead_letter_write_failed path=%s error=%s", self._dead_letters.path, error,
                             extra={"exc_l": CONFIGURATION})
                if backoff.wait(self._abort):
                    return False
        for record in records:
            logger.error("action=hec_dead_letter shard=%d cursor=%s event_index=%d reason=%s code=%s status=%d "
                         "path=%s detail=%s", record["shard"], record["cursor"], record["event_index"],
                         record["reason"], record["hec_code"] or "none", record["status"], self._dead_letters.path,
                         record["text"], extra={"exc_l": DATA})
        return True

    # -- logging ---------------------------------------------------------------------------------------------

    def _report_failure(self, error: ForwarderError, request: HecRequest) -> None:
        """Log the first failure of a streak (and any change of cause), not every retry; then tell
        ``on_config_error`` about the first configuration failure of the streak."""
        key = (type(error).__name__, error.code, error.status)
        with self._report_lock:
            changed = self._failures.failed(key)
            first_config_error = isinstance(error, ConfigError) and not self._config_failing
            if first_config_error:
                self._config_failing = True
        if changed and isinstance(error, ConfigError):
            logger.error("action=hec_config_error code=%s status=%d %s retry_every=%gs detail=%s",
                         error.code or "none", error.status, request.describe(), self.config.config_retry_interval,
                         error.message, extra={"exc_l": error_label(error)})
        elif changed:
            logger.warning("action=hec_retry code=%s status=%d %s detail=%s", error.code or "none", error.status,
                           request.describe(), error.message)
        if first_config_error and self.on_config_error is not None:
            try:
                self.on_config_error(error)
            except Exception:  # the owner's bug must not stop delivery
                logger.exception("action=hec_on_config_error_failed")

    def _report_recovery(self) -> None:
        with self._report_lock:
            previous = self._failures.cause
            failures = self._failures.succeeded()
            self._config_failing = False
        if failures:
            logger.info("action=hec_recovered after=%s", previous[0])
