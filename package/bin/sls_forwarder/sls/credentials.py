"""Credentials for SLS: a static AccessKey pair, or temporary STS credentials renewed before they expire.

Temporary credentials (ECS RAM role, AssumeRole) are renewed in the background once two thirds of their lifetime
have passed, while the current ones keep signing. Nothing that signs a request ever waits for STS or the metadata
service: a heartbeat stuck behind a slow STS would lose every shard of the consumer.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, Sequence

from ..backoff import Backoff
from ..errors import ForwarderError, RetryableError
from ..streak import FailureStreak

__all__ = ["Credentials", "CredentialsProvider", "StaticCredentials", "RefreshingCredentials"]

logger = logging.getLogger("sls_forwarder.sls.credentials")


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, with the STS token and expiry when the key is temporary."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(default="", repr=False)
    expiration: float = 0.0  # unix seconds; 0 = never expires

    def __repr__(self) -> str:  # never show the secret or the token
        return "Credentials(access_key_id=%r)" % self.access_key_id


class CredentialsProvider(Protocol):
    """What SlsClient signs with."""

    def current(self) -> Credentials:
        """The credentials to sign with now; never waits on the network."""

    def renew_soon(self, stale: Credentials) -> bool:
        """SLS said ``stale`` expired: start a renewal now, without waiting. False if they cannot be renewed."""

    def close(self) -> None:
        """Stop renewing."""


class StaticCredentials:
    """A long-lived AccessKey pair."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def current(self) -> Credentials:
        return self._credentials

    def renew_soon(self, stale: Credentials) -> bool:
        return False

    def close(self) -> None:
        return None


class RefreshingCredentials:
    """Temporary credentials from ``fetch``, renewed by a daemon thread before they expire.

    Arguments:
        fetch: Gets fresh credentials (with ``expiration``); raises ForwarderError.
        what: Names the source in log lines, e.g. ``account=prod type=assume_role`` (no secret).
        stop: Set on shutdown; it ends the renewal thread.
        backoff_initial: First delay after a failed renewal, in seconds; it doubles up to ``backoff_cap``.
        backoff_cap: Longest delay between renewal attempts.
        min_interval: Shortest wait between two renewals (credentials the source keeps handing out unchanged).
        clock: Wall clock in unix seconds (expirations are wall-clock times).
        dependents: Providers ``fetch`` relies on (AssumeRole's base ECS role), closed with this one.
    """

    RENEW_AT = 2.0 / 3.0

    def __init__(self, fetch: Callable[[], Credentials], what: str, *, stop: Optional[threading.Event] = None,
                 backoff_initial: float = 1.0, backoff_cap: float = 30.0, min_interval: float = 5.0,
                 clock: Callable[[], float] = time.time, dependents: Sequence[CredentialsProvider] = ()) -> None:
        self._fetch = fetch
        self._dependents = tuple(dependents)
        self._what = what
        self._outer_stop = stop
        self._closed = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._backoff = Backoff(backoff_initial, backoff_cap)
        self._min_interval = min_interval
        self._clock = clock
        self._credentials: Optional[Credentials] = None
        self._renew_at = 0.0
        self._expired_key = ""
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "RefreshingCredentials":
        """Fetch the first credentials in the caller, then renew in the background.

        Raises:
            ConfigError: the source refuses (no such role, not allowed, wrong ExternalId ...).
            RetryableError: the source is unreachable or failing for now.
        """
        self._install(self._fetch())
        self._thread = threading.Thread(target=self._run, name="sls-credentials", daemon=True)
        self._thread.start()
        return self

    def current(self) -> Credentials:
        with self._lock:
            credentials = self._credentials
        if credentials is None:
            raise RuntimeError("RefreshingCredentials.start() was not called")
        return credentials

    def renew_soon(self, stale: Credentials) -> bool:
        with self._lock:
            # Once per credential, however many threads were refused with it: later refusals wait for the renewal
            # (and its backoff when STS fails) rather than hammer STS.
            first_report = self._credentials == stale and self._expired_key != stale.access_key_id
            if first_report:
                self._expired_key = stale.access_key_id
                self._renew_at = 0.0
        if first_report:
            logger.warning("action=credentials_expired %s code=SecurityTokenExpired renewing=now", self._what)
            self._wake.set()
        return True

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        for dependent in self._dependents:
            dependent.close()

    # ------------------------------------------------------------------------------------------ internals

    def _install(self, credentials: Credentials) -> None:
        now = self._clock()
        lifetime = max(0.0, credentials.expiration - now) if credentials.expiration else 0.0
        delay = max(self._min_interval, lifetime * self.RENEW_AT) if lifetime else 3600.0
        with self._lock:
            self._credentials = credentials
            self._renew_at = now + delay

    def _stopped(self) -> bool:
        return self._closed.is_set() or (self._outer_stop is not None and self._outer_stop.is_set())

    def _run(self) -> None:
        streak = FailureStreak(clock=self._clock)
        while not self._stopped():
            with self._lock:
                wait = self._renew_at - self._clock()
            if wait > 0:
                # Short slices: a stop event we do not own cannot wake this wait.
                self._wake.wait(min(wait, 1.0))
                self._wake.clear()
                continue
            try:
                credentials = self._fetch()
                with self._lock:
                    if credentials.access_key_id == self._expired_key:
                        # The metadata service hands out one credential until it rotates it: ask again later.
                        raise RetryableError("the source handed back the credentials SLS refused as expired",
                                             code="SecurityTokenExpired")
            except Exception as exc:  # a bug must not end the renewals: the credentials would quietly expire
                err = exc if isinstance(exc, ForwarderError) else ForwarderError(
                    "unexpected %s while renewing" % type(exc).__name__, code="RenewalBug")
                delay = self._backoff.next_delay()
                if streak.failed():
                    logger.warning("action=credentials_refresh_failed %s code=%s status=%d retry_in_seconds=%.1f "
                                   "expires_in_seconds=%.0f error=\"%s\"", self._what, err.code or "-", err.status,
                                   delay, self._expires_in(), err.message)
                with self._lock:
                    self._renew_at = self._clock() + delay
                continue
            self._install(credentials)
            self._backoff.reset()
            failing_for = streak.failing_for()
            if streak.succeeded():
                logger.info("action=credentials_refreshed %s after_failing_seconds=%.0f expires_in_seconds=%.0f",
                            self._what, failing_for, self._expires_in())
            else:
                logger.debug("action=credentials_refreshed %s expires_in_seconds=%.0f", self._what,
                             self._expires_in())

    def _expires_in(self) -> float:
        with self._lock:
            credentials = self._credentials
        return credentials.expiration - self._clock() if credentials and credentials.expiration else -1.0
