"""The data path: one ShardConsumer thread per assigned shard pulls, decodes, shapes and hands batches to the sink;
the Pipeline ties them to the consumer-group Coordinator and commits each shard's low-watermark checkpoint.

Guarantees:

- A checkpoint is only ever ``ShardTracker.commit_cursor()``: the end of the longest run of delivered batches, so it
  never moves past data the sink has not delivered (at-least-once).
- Memory is bounded by one number per input, whatever the shard count: every pull first reserves its share of the
  input's MemoryBudget (``max_inflight_bytes``), held until its events are delivered (see budget.py); each pull asks
  for about ``pull_target_bytes`` of raw data (the log-group count adapts to the groups' size, which varies from
  bytes to megabytes), a shard stops pulling while ``max_batches_in_flight`` of its batches are undelivered, and the
  sink may block ``send`` as well.
- ``InvalidCursor`` never jumps to the end of a shard: the cursor is retried, then the server checkpoint, and only if
  the data is really gone does the shard restart from the oldest retained data, with an ERROR naming the gap.

This is the only module that imports both the SLS and the Splunk side.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, NamedTuple, Optional, Protocol, Union

from .backoff import Backoff
from .batch import ShardBatch
from .budget import MemoryBudget, shaped_size
from .error_labels import DATA
from .errors import ConfigError, ForwarderError, InvalidCursorError, RetryableError
from .idle import IdlePoller
from .streak import FailureStreak
from .sls.coordinator import Coordinator
from .sls.decoder import decode_log_group_list
from .tracker import ShardTracker
from .transcode import make_batch_transcode

if TYPE_CHECKING:
    from .routing import Router
    from .sls.client import SlsClient
    from .splunk.events import EventShaper

__all__ = ["PipelineSettings", "Pipeline", "ShardConsumer", "EventSink"]

logger = logging.getLogger("sls_forwarder.pipeline")

# Retries of the same cursor before the server checkpoint and then the oldest data are tried (InvalidCursor).
_INVALID_CURSOR_RETRIES = 2
# Attempts to commit a revoked shard before releasing it anyway (the next owner then replays: duplicates, no loss).
_RELEASE_COMMIT_ATTEMPTS = 3
# A failure streak logs its first failure, then one reminder per this many seconds.
_STREAK_REMINDER_SECONDS = 600.0
# A pull reserves this many times its target size: while it transcodes, the compressed body, the raw LogGroupList
# and the shaped events (XML escaping makes them larger than the raw data) are all in memory.
PULL_RESERVE_FACTOR = 3
# A budget holds at least this many full pulls, so prefetch keeps the sink busy however small the budget is.
_PULLS_PER_BUDGET = 8
# A parked shard thread re-checks revoke and stop this often even if nobody wakes it.
_PARKED_RECHECK_SECONDS = 30.0


class EventSink(Protocol):
    """What the pipeline needs from a sink (StreamSink, HecSink); see docs/architecture.md."""

    def send(self, batch: ShardBatch, on_done: Callable[[ShardBatch], None]) -> None:
        ...

    def close(self, timeout: float) -> None:
        ...


@dataclass(frozen=True)
class PipelineSettings:
    """Knobs of one input's data path.

    Arguments:
        logstore: Logstore to consume.
        consumer_group: Consumer group name.
        consumer: This process's consumer name (see runtime.consumer_name).
        start_position: "begin", "end" or unix seconds; used only for shards without a server checkpoint.
        query: Optional SPL filter sent with every pull.
        pull_count: Most log groups per pull (SLS allows 1..1000).
        pull_target_bytes: Raw bytes a pull should return; the group count adapts to the observed group size so a
            shard's prefetch stays bounded in bytes, whatever the producers put into one group.
        first_pull_count: Log groups asked for before any group size is known.
        heartbeat_interval: Seconds between heartbeats; the group timeout is twice this.
        order: Consume parent shards before their children after a split or merge.
        checkpoint_interval: Seconds between periodic checkpoint commits.
        max_batches_in_flight: Pulled batches per shard that may wait for delivery (bounded prefetch).
        idle_poll_min: Pause after a nearly empty pull; also the first idle pause (seconds).
        idle_poll_max: Longest pause between pulls of an idle shard (seconds).
        shard_status_ttl: Seconds a ListShards answer is trusted when checking for finished readonly shards.
        error_backoff_cap: Longest pause between retries after errors (seconds).
        max_inflight_bytes: The input's memory budget: raw pulled bytes plus shaped events not yet delivered,
            across all shards (see budget.py).
    """

    logstore: str
    consumer_group: str
    consumer: str
    start_position: Union[str, int] = "end"
    query: str = ""
    pull_count: int = 1000
    pull_target_bytes: int = 2 << 20
    # One group first: groups range from bytes to megabytes (100 groups of 1,000-key logs were 24 MB per shard, far
    # past the budget); the next pull is sized from what this one weighed.
    first_pull_count: int = 1
    heartbeat_interval: float = 10.0
    order: bool = True
    checkpoint_interval: float = 5.0
    max_batches_in_flight: int = 4
    idle_poll_min: float = 0.2
    # A new log on an idle shard is delivered within 3 s, and 64 idle shards cost about 1% of a core (bench).
    idle_poll_max: float = 2.5
    shard_status_ttl: float = 10.0
    error_backoff_cap: float = 30.0
    max_inflight_bytes: int = 64 << 20

    @property
    def pull_bytes(self) -> int:
        """Raw bytes a pull aims at: ``pull_target_bytes``, less when the budget could not hold enough pulls."""
        return max(1, min(self.pull_target_bytes,
                          self.max_inflight_bytes // (PULL_RESERVE_FACTOR * _PULLS_PER_BUDGET)))

    @property
    def pull_reservation(self) -> int:
        """Bytes of the memory budget a pull holds until it is transcoded."""
        return self.pull_bytes * PULL_RESERVE_FACTOR

    def pull_pause(self, count: int, requested: int, raw_size: int) -> float:
        """Pause after a pull that returned data; the official consumer's throttling table, scaled.

        A full pull (all ``requested`` groups, or the byte target) is followed at once; smaller ones wait longer so a
        trickling shard is not polled in a hot loop.
        """
        target = self.pull_bytes
        if count >= requested or raw_size >= target:
            return 0.0
        if count * 2 >= requested or raw_size * 2 >= target:
            return self.idle_poll_min / 4
        if count * 10 >= requested or raw_size * 4 >= target:
            return self.idle_poll_min
        return min(self.idle_poll_max, self.idle_poll_min * 2.5)

    def next_pull_count(self, count: int, raw_size: int) -> int:
        """Groups to ask for next so the pull returns about ``pull_bytes``, within 1..``pull_count``."""
        if count <= 0 or raw_size <= 0:
            return min(self.first_pull_count, self.pull_count)
        return max(1, min(self.pull_count, int(self.pull_bytes * count / raw_size)))


class _ShardStatus:
    """Cached readonly flags from ListShards. A readonly shard never becomes readwrite again, so that is kept."""

    def __init__(self, client: "SlsClient", logstore: str, ttl: float) -> None:
        self._client = client
        self._logstore = logstore
        self._ttl = ttl
        self._lock = threading.Lock()
        self._readonly: set = set()
        self._fetched_at = float("-inf")

    def is_readonly(self, shard_id: int) -> bool:
        with self._lock:
            if shard_id in self._readonly:
                return True
            if time.monotonic() - self._fetched_at < self._ttl:
                return False
            try:
                shards = self._client.list_shards(self._logstore)
            except ForwarderError as err:
                logger.warning("action=list_shards_failed logstore=%s error=%s", self._logstore, err)
                return False
            finally:
                self._fetched_at = time.monotonic()
            self._readonly.update(s.shard_id for s in shards if s.status.lower() == "readonly")
            return shard_id in self._readonly


class ShardConsumer(threading.Thread):
    """Consumes one shard until it is revoked or the pipeline stops.

    Created by the Pipeline on assignment; not meant to be used alone.
    """

    def __init__(self, pipeline: "Pipeline", shard_id: int) -> None:
        super().__init__(name="sls-shard-%d" % shard_id, daemon=True)
        self.shard_id = shard_id
        self._pipeline = pipeline
        self._settings = pipeline.settings
        self._state = threading.Condition()   # guards the fields below; notified on delivery, revoke and stop
        self._revoked = False
        self._finished = False                 # a readonly shard read to its end
        self._parked = False                   # idle, watched by the pipeline's IdlePoller
        self._newest_delivered = 0
        self.tracker: Optional[ShardTracker] = None
        self._commit_lock = threading.Lock()
        self._last_committed = ""

    # ------------------------------------------------------------------ control (any thread)

    def revoke(self) -> None:
        """Stop pulling; the thread then drains, commits and releases the shard."""
        with self._state:
            self._revoked = True
            self._state.notify_all()
        self._pipeline.budget.wake()

    def wake(self) -> None:
        """Cut any pause short (the pipeline is stopping)."""
        with self._state:
            self._state.notify_all()
        self._pipeline.budget.wake()

    def commit(self, reason: str) -> bool:
        """Commit the shard's low-watermark cursor if it moved since the last commit.

        Arguments:
            reason: Why ("interval", "revoked", "finished", "shutdown"), for the log.

        Returns:
            True if the server has the current position (committed now or before), False if the commit failed.
        """
        with self._commit_lock:
            tracker = self.tracker
            if tracker is None:
                return True
            cursor = tracker.commit_cursor()
            if not cursor or cursor == self._last_committed:
                return True
            settings = self._settings
            try:
                self._pipeline.control_client.update_checkpoint(
                    settings.logstore, settings.consumer_group, settings.consumer, self.shard_id, cursor)
            except Exception as err:  # the next interval retries; the position only ever grows more conservative
                logger.warning("action=checkpoint_failed shard=%d reason=%s error=%s", self.shard_id, reason, err)
                return False
            self._last_committed = cursor
        with self._state:
            newest = self._newest_delivered
        logger.debug("action=checkpoint_committed shard=%d reason=%s cursor=%s", self.shard_id, reason, cursor)
        if newest:
            logger.info("action=shard_lag shard=%d lag_seconds=%d", self.shard_id, max(0, int(time.time()) - newest))
        return True

    # ------------------------------------------------------------------ thread

    def run(self) -> None:
        try:
            self._consume()
        except Exception:  # a bug: never lose the shard silently, hand it back instead
            logger.exception("action=shard_consumer_crashed shard=%d", self.shard_id)
        if self._pipeline.stopping():
            return  # the pipeline drains the sink and commits every shard itself
        try:
            self._drain_commit_release()
        except Exception:  # a bug: release uncommitted (the next owner replays, duplicates only), never keep it
            logger.exception("action=shard_release_failed shard=%d", self.shard_id)
            self._pipeline.consumer_finished(self)

    def _active(self) -> bool:
        return not (self._revoked or self._pipeline.stopping())

    def _pause(self, seconds: float) -> None:
        """Sleep, waking early on revoke or stop (deliveries also notify, but do not cut the pause short)."""
        deadline = time.monotonic() + seconds
        with self._state:
            while self._active():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._state.wait(remaining)

    def _consume(self) -> None:
        cursor = self._resolve_start()
        pull_count = min(self._settings.first_pull_count, self._settings.pull_count)
        idle_pause = self._settings.idle_poll_min
        errors = _ErrorStreak(self)
        invalid_cursor = _ErrorStreak(self)
        while cursor is not None and self._active():
            if not (self._wait_for_slot() and self._pipeline.budget.acquire(self._settings.pull_reservation,
                                                                                 self._active)):
                return
            pulled = self._pull(cursor, pull_count)
            if isinstance(pulled.error, InvalidCursorError):
                cursor = self._recover_cursor(cursor, pulled.error, invalid_cursor, errors)
                continue
            if pulled.next_cursor:
                invalid_cursor.cleared()
            if pulled.error is not None:  # corrupt data is retried, never skipped; the ERROR names where it is
                errors.failed(pulled.step, pulled.error, cursor)
                continue
            errors.cleared()
            if pulled.batch is None:
                if self._finished or self._at_end_of_readonly_shard(cursor):
                    self._finish_readonly_shard()
                if idle_pause >= self._settings.idle_poll_max and not self._finished:
                    self._wait_for_data(cursor)
                else:
                    self._pause(idle_pause)
                idle_pause = min(self._settings.idle_poll_max, idle_pause * 2)
                continue
            idle_pause = self._settings.idle_poll_min
            if not self._deliver(pulled.batch):
                return
            cursor = pulled.next_cursor
            self._pause(self._settings.pull_pause(pulled.count, pull_count, pulled.raw_size))
            pull_count = self._settings.next_pull_count(pulled.count, pulled.raw_size)

    def _wait_for_data(self, cursor: str) -> None:
        """Idle for a while: the pipeline's idle poller watches the shard until it has data, or revoke or stop."""
        poller = self._pipeline.idle_poller
        with self._state:
            self._parked = True
        poller.park(self.shard_id, cursor, self._unpark)
        with self._state:
            while self._parked and self._active():
                self._state.wait(_PARKED_RECHECK_SECONDS)
        poller.unpark(self.shard_id)

    def _unpark(self) -> None:
        """The idle poller saw data (or a failure) after the parked cursor: pull again."""
        with self._state:
            self._parked = False
            self._state.notify_all()

    def _pull(self, cursor: str, pull_count: int) -> "_Pulled":
        """Pull and transcode once, holding ``pull_reservation`` of the budget; keep only the batch's bytes after.

        The raw data is dropped here, so nothing but the shaped events stays in memory while the batch waits for
        the sink, and the reservation is settled before the caller pauses or backs off.
        """
        held = 0
        try:
            try:
                result = self._pipeline.client.pull_logs(
                    self._settings.logstore, self.shard_id, cursor, pull_count, query=self._settings.query)
            except Exception as err:
                return _Pulled(error=err, step="pull_logs")
            if result.next_cursor == cursor:
                return _Pulled(next_cursor=cursor)
            try:
                events, newest, sourcetypes = self._pipeline.transcode(result.data, self.shard_id, cursor)
            except Exception as err:
                return _Pulled(next_cursor=result.next_cursor, error=err, step="decode")
            held = shaped_size(events)
            batch = ShardBatch(self.shard_id, cursor, result.next_cursor, events, result.raw_size, newest,
                               sourcetypes=sourcetypes, memory=held)
            return _Pulled(result.next_cursor, result.count, result.raw_size, batch)
        finally:
            self._pipeline.budget.resize(self._settings.pull_reservation, held)

    def _resolve_start(self) -> Optional[str]:
        """Server checkpoint if there is one, else ``start_position``; None if stopped first."""
        settings = self._settings
        control = self._pipeline.control_client
        errors = _ErrorStreak(self)
        while self._active():
            try:
                checkpoint = control.get_checkpoints(settings.logstore, settings.consumer_group, self.shard_id)
                committed = checkpoint[self.shard_id].cursor if self.shard_id in checkpoint else ""
                if committed:
                    cursor, source = committed, "checkpoint"
                else:
                    cursor = control.get_cursor(settings.logstore, self.shard_id, settings.start_position)
                    source = str(settings.start_position)
            except Exception as err:
                errors.failed("resolve_start", err, "")
                continue
            # Uncommitted starts are committed at the first interval, so a restart before any data arrives resumes
            # here instead of re-resolving "end" and skipping what arrived in between.
            with self._commit_lock:
                self._last_committed = committed
                self.tracker = ShardTracker(self.shard_id, cursor)
            logger.info("action=shard_consumer_started shard=%d start=%s cursor=%s", self.shard_id, source, cursor)
            return cursor
        return None

    def _wait_for_slot(self) -> bool:
        """Bounded prefetch: wait while too many batches of this shard are undelivered. False if stopped."""
        assert self.tracker is not None
        with self._state:
            while self.tracker.in_flight() >= self._settings.max_batches_in_flight:
                if not self._active():
                    return False
                self._state.wait(0.5)
            return self._active()

    def _deliver(self, batch: ShardBatch) -> bool:
        """Track the batch and hand it to the sink; False if the pipeline stopped before the sink took it."""
        assert self.tracker is not None
        self.tracker.add(batch)
        if not batch.events:
            # Nothing to deliver (e.g. the query filtered everything): done at once, in order behind its elders.
            self._on_done(batch)
            return True
        errors = _ErrorStreak(self)
        while True:
            try:
                self._pipeline.sink.send(batch, self._on_done)
                return True
            except Exception as err:
                # Not accepted: the batch stays in flight so the watermark cannot pass it. A revoke does not cut the
                # pause short here (it would spin): the shard is released once this batch is delivered, or on stop.
                if self._pipeline.stopping():
                    return False
                errors.failed("sink_send", err, batch.cursor, wake_on_revoke=False)

    def _on_done(self, batch: ShardBatch) -> None:
        """Sink callback (any thread): the batch is delivered or dead-lettered."""
        assert self.tracker is not None
        try:
            self.tracker.mark_done(batch)
        except ValueError as err:
            logger.error("action=batch_completion_invalid shard=%d cursor=%s error=%s", self.shard_id, batch.cursor,
                         err)
            return
        with self._state:
            self._newest_delivered = max(self._newest_delivered, batch.newest_time)
            self._state.notify_all()
        self._pipeline.delivered(batch)
        # The tracker keeps the batch until older ones are done too; only its cursor is needed from here on.
        batch.events = []
        self._pipeline.budget.release(batch.memory)

    def _recover_cursor(self, cursor: str, err: InvalidCursorError, invalid: "_ErrorStreak",
                        lookup_errors: "_ErrorStreak") -> str:
        """Choose where to read after InvalidCursor: the same cursor, the server checkpoint, or the oldest data.

        ``invalid`` counts InvalidCursor answers only; a failed lookup is counted in ``lookup_errors``, so a
        transient control-plane error cannot skip the server-checkpoint step and replay the whole shard.
        """
        invalid.count += 1
        settings = self._settings
        control = self._pipeline.control_client
        if invalid.count <= _INVALID_CURSOR_RETRIES:
            logger.warning("action=invalid_cursor shard=%d cursor=%s attempt=%d next=retry error=%s",
                           self.shard_id, cursor, invalid.count, err)
            invalid.pause()
            return cursor
        try:
            if invalid.count == _INVALID_CURSOR_RETRIES + 1:
                checkpoint = control.get_checkpoints(settings.logstore, settings.consumer_group, self.shard_id)
                stored = checkpoint[self.shard_id].cursor if self.shard_id in checkpoint else ""
                if stored and stored != cursor:
                    logger.warning("action=invalid_cursor shard=%d cursor=%s next=server_checkpoint checkpoint=%s",
                                   self.shard_id, cursor, stored)
                    return stored
            oldest = control.get_cursor(settings.logstore, self.shard_id, "begin")
        except Exception as lookup_error:
            invalid.count -= 1  # this answer is asked about again: the next InvalidCursor repeats this step
            lookup_errors.failed("invalid_cursor_recovery", lookup_error, cursor)
            return cursor
        with self._state:
            newest = self._newest_delivered
        logger.error("action=cursor_expired shard=%d lost_cursor=%s restart_cursor=%s newest_delivered_time=%d "
                     "message=\"the cursor is no longer valid; reading again from the oldest data still stored. "
                     "Logs written after newest_delivered_time that expired before they were read are lost (gap)\"",
                     self.shard_id, cursor, oldest, newest, extra={"exc_l": DATA})
        invalid.pause()
        return oldest

    def _at_end_of_readonly_shard(self, cursor: str) -> bool:
        if not self._pipeline.shard_status.is_readonly(self.shard_id):
            return False
        try:
            end = self._pipeline.control_client.get_cursor(self._settings.logstore, self.shard_id, "end")
        except Exception as err:
            logger.warning("action=end_cursor_failed shard=%d error=%s", self.shard_id, err)
            return False
        return end == cursor

    def _finish_readonly_shard(self) -> None:
        """Commit the end cursor of a fully read readonly shard, so the server marks it over (children may start)."""
        assert self.tracker is not None
        if not self._finished:
            logger.info("action=shard_finished shard=%d status=readonly", self.shard_id)
            self._finished = True
        while not self.tracker.wait_drained(0.5):
            if not self._active():
                return
        self.commit("finished")

    def _drain_commit_release(self) -> None:
        """After a revoke: wait for in-flight batches, commit, then let the coordinator stop reporting the shard."""
        if self.tracker is not None:
            while not self.tracker.wait_drained(0.5):
                if self._pipeline.stopping():
                    return  # shutdown: the pipeline's final commit covers this shard
            backoff = Backoff(initial=0.5, cap=2.0)
            for _ in range(_RELEASE_COMMIT_ATTEMPTS):
                if self.commit("revoked") or self._pipeline.stopping():
                    break
                backoff.wait(self._pipeline.stop_event)
        self._pipeline.consumer_finished(self)


class _Pulled(NamedTuple):
    """What one pull produced: a batch to deliver, nothing new (``batch`` None), or a failed ``step``."""

    next_cursor: str = ""            # "" when the pull itself failed
    count: int = 0
    raw_size: int = 0
    batch: Optional[ShardBatch] = None
    error: Optional[Exception] = None
    step: str = ""


class _ErrorStreak:
    """Backoff and rate-limited logging for one retry loop of a ShardConsumer."""

    def __init__(self, consumer: ShardConsumer) -> None:
        self._consumer = consumer
        cap = consumer._settings.error_backoff_cap
        self._backoff = Backoff(initial=min(0.5, cap), cap=cap)
        self._streak = FailureStreak(remind_every=_STREAK_REMINDER_SECONDS)

    @property
    def count(self) -> int:
        return self._streak.count

    @count.setter
    def count(self, value: int) -> None:  # InvalidCursor recovery counts its own steps
        self._streak.count = value

    def failed(self, step: str, err: Exception, cursor: str, wake_on_revoke: bool = True) -> None:
        """Log (first failure of a streak, then a reminder every few minutes), report config errors, pause."""
        if self._streak.failed():
            shard_id = self._consumer.shard_id
            if isinstance(err, ForwarderError):
                # Transient errors are expected now and then; anything else leaves the shard stuck until fixed.
                level = logging.WARNING if isinstance(err, RetryableError) else logging.ERROR
                logger.log(level, "action=shard_step_failed shard=%d step=%s cursor=%s failures=%d code=%s "
                           "status=%d error=%s", shard_id, step, cursor, self.count, err.code, err.status, err)
            else:
                logger.error("action=shard_step_failed shard=%d step=%s cursor=%s failures=%d error=%r", shard_id,
                             step, cursor, self.count, err, exc_info=err if self.count == 1 else None)
        if isinstance(err, ConfigError):
            self._consumer._pipeline.config_failed(err)
        self.pause(wake_on_revoke)

    def pause(self, wake_on_revoke: bool = True) -> None:
        if wake_on_revoke:
            self._consumer._pause(self._backoff.next_delay())
        else:
            self._consumer._pipeline.stop_event.wait(self._backoff.next_delay())

    def cleared(self) -> None:
        failures = self._streak.succeeded()
        if failures:
            logger.info("action=shard_step_recovered shard=%d failures=%d", self._consumer.shard_id, failures)
        self._backoff.reset()


class Pipeline:
    """One input's consumer: coordinator, shard consumers, sink and checkpoint committer.

    Arguments:
        client: SLS client for pulls; should retry forever (``max_attempts=0``) and wake on ``stop_event``.
        control_client: SLS client for heartbeats, checkpoints, cursors and shard lists; should give up after a few
            attempts so a failing heartbeat is noticed in time. Defaults to ``client``.
        sink: Where batches go (StreamSink or HecSink).
        shaper: Turns decoded log groups into events (EventShaper).
        settings: PipelineSettings.
        stop_event: Set when pulling must stop; pass the same event to the data client as its ``stop``.
        decode: LogGroupList decoder (tests may substitute one).
        on_delivered: Called with every delivered batch (e.g. to log events_ingested); must not block.
        router: With the input's sourcetype ``auto``, routes each log group to its sourcetype (see transcode.py).
    """

    def __init__(self, client: "SlsClient", sink: EventSink, shaper: "EventShaper", settings: PipelineSettings, *,
                 control_client: Optional["SlsClient"] = None, stop_event: Optional[threading.Event] = None,
                 decode: Callable[[bytes], list] = decode_log_group_list,
                 on_delivered: Optional[Callable[[ShardBatch], None]] = None,
                 router: Optional["Router"] = None) -> None:
        self.client = client
        self.control_client = control_client if control_client is not None else client
        self.sink = sink
        self.settings = settings
        # decode + shape (+ route); fused into one pass over the bytes for the real decoder and EventShaper
        self.transcode = make_batch_transcode(shaper, decode, router)
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.failed = threading.Event()
        self.error: Optional[ConfigError] = None
        self.shard_status = _ShardStatus(self.control_client, settings.logstore, settings.shard_status_ttl)
        self.budget = MemoryBudget(settings.max_inflight_bytes)
        self.idle_poller = IdlePoller(self._has_data, settings.idle_poll_max, self.stop_event)
        self.coordinator = Coordinator(self.control_client, settings.logstore, settings.consumer_group,
                                       settings.consumer, self, settings.heartbeat_interval, settings.order,
                                       on_config_error=self.config_failed)
        self._on_delivered = on_delivered
        self._lock = threading.Lock()
        self._consumers: Dict[int, ShardConsumer] = {}
        self._committer: Optional[threading.Thread] = None
        self._committer_stop = threading.Event()
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Join the consumer group and start heartbeating and committing. May be called again after it raised.

        Raises:
            ConfigError: The group cannot be created or updated (credentials, project, logstore, quota).
            ForwarderError: SLS kept failing.
        """
        if self._started:
            raise RuntimeError("pipeline already started")
        self.coordinator.ensure_group()
        self._started = True
        self.coordinator.start()
        self._committer = threading.Thread(target=self._commit_periodically, name="sls-checkpoints", daemon=True)
        self._committer.start()
        self.idle_poller.start()
        logger.info("action=pipeline_started consumer=%s group=%s logstore=%s memory_budget_mb=%g",
                    self.settings.consumer, self.settings.consumer_group, self.settings.logstore,
                    self.budget.limit / (1 << 20))

    def stop(self, timeout: float = 30.0) -> None:
        """Ordered shutdown: stop pulling, let the sink deliver what is in flight, commit, leave the group.

        Arguments:
            timeout: Seconds for the whole sequence (approximately; each step gets what is left).
        """
        deadline = time.monotonic() + max(0.0, timeout)
        # Keep time for the commits and the final heartbeat after the sink has drained.
        reserve = min(10.0, timeout * 0.25)
        # No new pulls from here on. A pull already under way may still produce a batch; if the closing sink refuses
        # it, it stays in flight and the watermark stops before it.
        self.stop_event.set()
        consumers = self._snapshot()
        for consumer in consumers:
            consumer.wake()
        self._committer_stop.set()
        if self._committer is not None:
            self._committer.join(max(0.0, deadline - reserve - time.monotonic()))
        # Consumers blocked in send() by back-pressure are released by close(), so close before joining them.
        self.sink.close(max(0.0, deadline - reserve - time.monotonic()))
        joined_by = min(deadline - reserve, time.monotonic() + 5.0)
        for consumer in consumers:
            consumer.join(max(0.0, joined_by - time.monotonic()))
        for consumer in self._snapshot():
            consumer.commit("shutdown")
        if self._started:
            self.coordinator.stop(timeout=max(0.5, deadline - time.monotonic()))
        logger.info("action=pipeline_stopped consumer=%s", self.settings.consumer)

    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def _has_data(self, shard_id: int, cursor: str) -> bool:
        """The idle poller's probe: one look at the shard after ``cursor``, not retried.

        A shard that became readonly (split or merged) counts as having data: its thread must see its end and
        commit it, or its children would wait for it forever.
        """
        return (self.shard_status.is_readonly(shard_id)
                or self.client.has_data(self.settings.logstore, shard_id, cursor, self.settings.query))

    def consumers(self) -> Dict[int, ShardConsumer]:
        """Return the live shard consumers by shard id (diagnostics and tests)."""
        with self._lock:
            return dict(self._consumers)

    # ------------------------------------------------------------------ ShardListener (heartbeat thread)

    def on_shard_assigned(self, shard_id: int) -> None:
        with self._lock:
            if self.stopping() or shard_id in self._consumers:
                return  # shutting down: the final heartbeat gives it back
            consumer = ShardConsumer(self, shard_id)
            self._consumers[shard_id] = consumer
        consumer.start()

    def on_shard_revoked(self, shard_id: int) -> None:
        with self._lock:
            consumer = self._consumers.get(shard_id)
        if consumer is None:
            self.coordinator.release(shard_id)
        else:
            consumer.revoke()

    # ------------------------------------------------------------------ called by shard consumers

    def consumer_finished(self, consumer: ShardConsumer) -> None:
        """A revoked shard is drained and committed: forget it, then stop reporting it."""
        with self._lock:
            if self._consumers.get(consumer.shard_id) is consumer:
                del self._consumers[consumer.shard_id]
        self.coordinator.release(consumer.shard_id)

    def config_failed(self, err: ConfigError) -> None:
        """The server rejects our configuration or credentials: the runtime stops this pipeline and retries later."""
        with self._lock:
            if self.error is None:
                self.error = err
        self.failed.set()

    def delivered(self, batch: ShardBatch) -> None:
        if self._on_delivered is None:
            return
        try:
            self._on_delivered(batch)
        except Exception:  # metrics must never break delivery tracking
            logger.exception("action=on_delivered_failed shard=%d", batch.shard_id)

    # ------------------------------------------------------------------ internals

    def _snapshot(self) -> List[ShardConsumer]:
        with self._lock:
            return list(self._consumers.values())

    def _commit_periodically(self) -> None:
        while not self._committer_stop.wait(self.settings.checkpoint_interval):
            for consumer in self._snapshot():
                consumer.commit("interval")
