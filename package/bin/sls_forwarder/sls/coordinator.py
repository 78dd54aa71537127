"""Consumer-group membership: create/update the group, heartbeat, and track which shards this consumer holds.

Ownership rules (sls-wire-protocol.md §8.1):

- A heartbeat reports the shards this consumer still *holds*: assigned ones, plus revoked ones whose consumer has not
  yet drained and committed. The server does not hand a shard to its next owner while the old owner still reports
  it, which is what makes the final checkpoint of a revoked shard safe.
- Shards in the response that we do not hold are new: ``listener.on_shard_assigned``. Assigned shards missing from
  the response are revoked: ``listener.on_shard_revoked`` (once). The pipeline drains and commits the shard, then
  calls ``release``; only then does the shard disappear from our reports.
- Failed heartbeats keep the shards and are retried with backoff. Once no heartbeat has succeeded for longer than the
  group timeout, the server has already given our shards away, so they are revoked locally. The pipeline still
  commits the delivered position of such a shard: it never points past delivered data, so at worst it moves a
  checkpoint back and causes duplicates, never loss, and it spares the next owner a replay when the commit lands
  first.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Callable, List, Optional, Protocol, Set

from ..backoff import Backoff
from ..errors import ConfigError, ForwarderError

if TYPE_CHECKING:
    from .client import SlsClient

__all__ = ["ShardListener", "Coordinator"]

logger = logging.getLogger("sls_forwarder.sls.coordinator")

# The server answers this when a consumer it has already expired reports a non-empty shard list.
_EXPIRED_CONSUMER_CODE = "NotExistConsumerWithBody"
_GROUP_EXISTS_CODE = "ConsumerGroupAlreadyExist"


class ShardListener(Protocol):
    """Receives assignment changes; implemented by the pipeline. Called from the heartbeat thread: do not block."""

    def on_shard_assigned(self, shard_id: int) -> None:
        ...

    def on_shard_revoked(self, shard_id: int) -> None:
        """Stop pulling, drain, commit, then call ``Coordinator.release(shard_id)``."""
        ...


class Coordinator:
    """One consumer's membership in a consumer group.

    Arguments:
        client: SLS client for control calls. It should give up after a few attempts (``max_attempts`` > 0) so a
            failing heartbeat returns in time to notice lost ownership.
        logstore: Logstore of the group.
        group: Consumer group name.
        consumer: This consumer's name (stable across restarts).
        listener: Told about assigned and revoked shards.
        heartbeat_interval: Seconds between heartbeats; the group timeout is twice this.
        order: Consume parent shards before their children after a split or merge.
        on_config_error: Called from the heartbeat thread when the server rejects our configuration or credentials
            (``ConfigError``), once per failure streak, so the runtime can stop and retry slowly.
    """

    def __init__(self, client: "SlsClient", logstore: str, group: str, consumer: str, listener: ShardListener,
                 heartbeat_interval: float = 10.0, order: bool = True, *,
                 on_config_error: Optional[Callable[[ConfigError], None]] = None) -> None:
        if heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be > 0, got %r" % heartbeat_interval)
        self.client = client
        self.logstore = logstore
        self.group = group
        self.consumer = consumer
        self.listener = listener
        self.heartbeat_interval = heartbeat_interval
        self.order = order
        self.group_timeout = max(1, int(math.ceil(2 * heartbeat_interval)))
        self._on_config_error = on_config_error
        self._lock = threading.Lock()
        self._assigned: Set[int] = set()
        self._revoking: Set[int] = set()
        self._rejoin = False
        self._stopping = False
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._last_success = time.monotonic()
        self._failures = 0

    # ------------------------------------------------------------------ group

    def ensure_group(self) -> None:
        """Create the consumer group, or update its timeout and order if it exists.

        Raises:
            ConfigError: Credentials, project or logstore are wrong, or the group quota is exhausted.
            ForwarderError: SLS kept failing (the client gave up).
        """
        try:
            groups: Optional[List[dict]] = self.client.list_consumer_groups(self.logstore)
        except ConfigError:
            raise
        except ForwarderError as err:
            # Same fallback as the official library: without a listing, try to create and fall back to update.
            logger.warning("action=list_consumer_groups_failed logstore=%s error=%s", self.logstore, err)
            groups = None
        existing = next((g for g in groups or () if g.get("name") == self.group), None)
        if existing is not None:
            if existing.get("timeout") == self.group_timeout and bool(existing.get("order")) == self.order:
                logger.info("action=consumer_group_ready group=%s timeout=%d order=%s created=false",
                            self.group, self.group_timeout, self.order)
                return
            self.client.update_consumer_group(self.logstore, self.group, self.group_timeout, self.order)
            created = False
        else:
            try:
                self.client.create_consumer_group(self.logstore, self.group, self.group_timeout, self.order)
                created = True
            except ForwarderError as err:
                if err.code != _GROUP_EXISTS_CODE:
                    raise
                self.client.update_consumer_group(self.logstore, self.group, self.group_timeout, self.order)
                created = False
        logger.info("action=consumer_group_ready group=%s timeout=%d order=%s created=%s",
                    self.group, self.group_timeout, self.order, str(created).lower())

    # ------------------------------------------------------------------ ownership

    def held(self) -> Set[int]:
        """Return the shards we report: assigned ones plus revoked ones not yet released."""
        with self._lock:
            return self._assigned | self._revoking

    def release(self, shard_id: int) -> None:
        """Stop reporting a shard; call after its in-flight batches are delivered and its checkpoint committed.

        The next heartbeat is sent at once so the server can hand the shard to its next owner without waiting.
        """
        with self._lock:
            known = shard_id in self._revoking or shard_id in self._assigned
            self._revoking.discard(shard_id)
            self._assigned.discard(shard_id)
        if known:
            logger.info("action=shard_released shard=%d consumer=%s", shard_id, self.consumer)
            self._wake.set()

    # ------------------------------------------------------------------ heartbeat thread

    def start(self) -> None:
        """Start the heartbeat thread; the first heartbeat is sent at once."""
        if self._thread is not None:
            raise RuntimeError("coordinator already started")
        self._last_success = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="sls-heartbeat-%s" % self.consumer, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop heartbeating and send one last heartbeat with no shards, so they move to other consumers now.

        Call only after the pipeline has committed every checkpoint.

        Arguments:
            timeout: Seconds to wait for the heartbeat thread to finish its current call.
        """
        with self._lock:
            self._stopping = True
        self._wake.set()
        if self._thread is None:
            return  # never joined the group: nothing to leave
        self._thread.join(timeout)
        try:
            self.client.heartbeat(self.logstore, self.group, self.consumer, [])
            logger.info("action=consumer_left consumer=%s group=%s", self.consumer, self.group)
        except Exception as err:  # the group timeout frees the shards anyway; shutdown must go on
            logger.warning("action=final_heartbeat_failed consumer=%s error=%s", self.consumer, err)
        with self._lock:
            self._assigned.clear()
            self._revoking.clear()

    def _run(self) -> None:
        backoff = Backoff(initial=min(1.0, self.heartbeat_interval / 4), cap=self.heartbeat_interval / 2)
        while True:
            with self._lock:
                if self._stopping:
                    return
            if self._beat():
                backoff.reset()
                delay = self.heartbeat_interval
            else:
                delay = backoff.next_delay()
            self._wake.wait(delay)
            self._wake.clear()

    def _beat(self) -> bool:
        """Send one heartbeat and apply its answer; return True on success."""
        with self._lock:
            report = [] if self._rejoin else sorted(self._assigned | self._revoking)
        started = time.monotonic()
        try:
            response = self.client.heartbeat(self.logstore, self.group, self.consumer, report)
        except Exception as err:  # any failure keeps the shards until the group timeout says otherwise
            self._heartbeat_failed(err)
            return False
        if self._failures:
            logger.info("action=heartbeat_recovered consumer=%s failures=%d", self.consumer, self._failures)
            self._failures = 0
        with self._lock:
            self._last_success = started
            self._rejoin = False
            if self._stopping:
                return True
            answer = set(response)
            new = answer - self._assigned - self._revoking
            gone = self._assigned - answer
            self._assigned = (self._assigned | new) - gone
            self._revoking |= gone
        self._notify(gone, new, reason="rebalanced")
        return True

    def _heartbeat_failed(self, err: Exception) -> None:
        self._failures += 1
        if self._failures == 1:
            if isinstance(err, ForwarderError):
                logger.warning("action=heartbeat_failed consumer=%s code=%s status=%d error=%s",
                               self.consumer, err.code, err.status, err)
            else:
                logger.error("action=heartbeat_failed consumer=%s error=%r", self.consumer, err, exc_info=err)
            if isinstance(err, ConfigError) and self._on_config_error is not None:
                self._on_config_error(err)
        expired = isinstance(err, ForwarderError) and err.code == _EXPIRED_CONSUMER_CODE
        with self._lock:
            silent_for = time.monotonic() - self._last_success
            if not (expired or silent_for > self.group_timeout) or self._stopping:
                return
            # The server no longer counts us as the owner: stop consuming, and re-join with an empty report.
            self._rejoin = True
            gone = set(self._assigned)
            self._assigned.clear()
            self._revoking |= gone
        if gone:
            logger.warning("action=ownership_lost consumer=%s shards=%s seconds_without_heartbeat=%.1f "
                           "group_timeout=%d", self.consumer, sorted(gone), silent_for, self.group_timeout)
        self._notify(gone, set(), reason="heartbeat_lost")

    def _notify(self, revoked: Set[int], assigned: Set[int], reason: str) -> None:
        for shard_id in sorted(revoked):
            logger.info("action=shard_revoked shard=%d consumer=%s reason=%s", shard_id, self.consumer, reason)
            self._call(self.listener.on_shard_revoked, shard_id)
        for shard_id in sorted(assigned):
            logger.info("action=shard_assigned shard=%d consumer=%s", shard_id, self.consumer)
            self._call(self.listener.on_shard_assigned, shard_id)

    def _call(self, callback: Callable[[int], None], shard_id: int) -> None:
        try:
            callback(shard_id)
        except Exception:  # a listener bug must not stop the heartbeat, or every shard would be lost
            logger.exception("action=listener_failed shard=%d callback=%s", shard_id, callback.__name__)
