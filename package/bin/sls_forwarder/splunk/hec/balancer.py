"""HecBalancer: several HEC URLs of one destination; round-robin over those in service, take out, probe back in.

Each URL is a ``HecTarget``: its own sender (own channel and connections) and, with indexer acknowledgement, the ack
poller of that channel, since an ackId means something only on the channel and URL that issued it.

A retryable failure there (connection error, 5xx, 503 busy or unhealthy) takes a URL out of service; a thread then
probes it with ``GET /services/collector/health`` under capped backoff and puts it back on a 200, as does any
successful POST to it. Each change is logged once. While every URL is out, ``pick`` still goes round-robin over all
of them, so the senders' own capped backoff retries the whole destination as it does for a single URL. A single URL
is never taken out (there is nowhere else to send) and never probed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, List, Optional, Protocol, Sequence

from ...backoff import Backoff
from ...errors import ForwarderError
from .ack_poller import AckPoller

__all__ = ["HecBalancer", "HecTarget"]

logger = logging.getLogger("sls_forwarder.splunk.hec.balancer")


class _Probed(Protocol):
    """What the balancer needs of a sender (HecSender)."""

    base_url: str

    def healthy(self) -> bool: ...


class HecTarget:
    """One HEC URL of a destination.

    Arguments:
        sender: Posts to this URL on its own channel (HecSender).
        poller: The ack poller of that channel, or None without indexer acknowledgement.
    """

    def __init__(self, sender: _Probed, poller: Optional[AckPoller] = None) -> None:
        self.sender = sender
        self.poller = poller

    @property
    def url(self) -> str:
        return self.sender.base_url

    def __repr__(self) -> str:
        return "HecTarget(%r)" % self.url


class _Outage:
    """A URL out of service: since when, and when to probe it next."""

    def __init__(self, since: float, backoff: Backoff) -> None:
        self.since = since
        self.backoff = backoff
        self.next_probe = since + backoff.next_delay()


class HecBalancer:
    """Chooses the URL for each POST attempt and keeps the URLs that fail out of the rotation until they heal.

    Arguments:
        targets: The destination's URLs, in the configured order.
        probe_initial: Seconds from taking a URL out to its first health probe; doubles per failed probe.
        probe_cap: Longest delay between probes of a URL.
        clock: Monotonic time source (tests).
    """

    def __init__(self, targets: Sequence[HecTarget], *, probe_initial: float, probe_cap: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not targets:
            raise ValueError("a HEC destination needs at least one URL")
        self.targets = list(targets)
        self._probe_initial = probe_initial
        self._probe_cap = probe_cap
        self._clock = clock
        self._out: Dict[int, _Outage] = {}
        self._next = 0
        self._changed = threading.Condition(threading.Lock())
        self._stopped = False
        self._thread: Optional[threading.Thread] = None

    def pick(self) -> HecTarget:
        """The next URL in service, round-robin; when every URL is out, the next one of all."""
        count = len(self.targets)
        with self._changed:
            for step in range(count):
                index = (self._next + step) % count
                if index not in self._out:
                    break
            else:
                index = self._next % count
            self._next = index + 1
        return self.targets[index]

    def in_service(self) -> List[str]:
        """URLs not taken out."""
        with self._changed:
            return [target.url for index, target in enumerate(self.targets) if index not in self._out]

    def failed(self, target: HecTarget, error: ForwarderError) -> bool:
        """A retryable failure at ``target``: take it out of service (logged once per outage).

        Returns:
            True when another URL is in service, so the request can go there at once.
        """
        if len(self.targets) == 1:
            return False
        index = self.targets.index(target)
        with self._changed:
            taken_out = index not in self._out
            if taken_out:
                self._out[index] = _Outage(self._clock(), Backoff(self._probe_initial, self._probe_cap))
                self._changed.notify_all()
            remaining = len(self.targets) - len(self._out)
        if taken_out:
            logger.warning("action=hec_url_out url=%s code=%s status=%d in_service=%d/%d detail=%s; probing "
                           "/services/collector/health until it is back", target.url, error.code or "none",
                           error.status, remaining, len(self.targets), error.message)
        return remaining > 0

    def succeeded(self, target: HecTarget) -> None:
        """A successful POST at ``target``: back in service if it was out."""
        if len(self.targets) > 1:
            self._bring_back(self.targets.index(target), "post")

    def probe_due(self) -> None:
        """Probe every URL out whose probe time has come; a healthy one is back in service."""
        now = self._clock()
        with self._changed:
            due = [(index, outage) for index, outage in self._out.items() if outage.next_probe <= now]
        for index, outage in due:
            if self.targets[index].sender.healthy():
                self._bring_back(index, "health")
                continue
            with self._changed:
                if self._out.get(index) is outage:
                    outage.next_probe = self._clock() + outage.backoff.next_delay()

    def start(self) -> None:
        """Start the probe thread (only with two URLs or more)."""
        if len(self.targets) > 1:
            self._thread = threading.Thread(target=self._run, name="hec-health-probe", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _until_next_probe(self) -> Optional[float]:
        if not self._out:
            return None
        return max(0.0, min(outage.next_probe for outage in self._out.values()) - self._clock())

    def _bring_back(self, index: int, by: str) -> None:
        with self._changed:
            outage = self._out.pop(index, None)
            remaining = len(self.targets) - len(self._out)
        if outage is not None:
            logger.info("action=hec_url_in url=%s by=%s after=%.1fs in_service=%d/%d", self.targets[index].url, by,
                        self._clock() - outage.since, remaining, len(self.targets))

    def _run(self) -> None:
        while True:
            try:
                self.probe_due()
            except Exception:  # a bug must not end probing: the URL would stay out for good
                logger.exception("action=hec_probe_error")
            with self._changed:
                while not self._stopped:
                    delay = self._until_next_probe()
                    if delay is not None and delay <= 0:
                        break
                    self._changed.wait(delay)
                if self._stopped:
                    return
