"""HecBalancer with fake senders and a fake clock: round-robin over URLs in service, a failing URL taken out and
probed back in with capped backoff, each change logged once, and a whole-destination outage left to the senders."""

from __future__ import annotations

import logging
import threading
from typing import List

import pytest

from sls_forwarder.errors import RetryableError
from sls_forwarder.splunk.hec.balancer import HecBalancer, HecTarget

BUSY = RetryableError("HEC server is busy (Server is busy)", code="hec:9", status=503)


class FakeSender:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.health = False
        self.probes = 0

    def healthy(self) -> bool:
        self.probes += 1
        return self.health


class Harness:
    def __init__(self, count: int = 3) -> None:
        self.now = 1000.0
        self.senders = [FakeSender("http://127.0.0.%d:8088" % (n + 1)) for n in range(count)]
        self.targets = [HecTarget(sender) for sender in self.senders]
        self.balancer = HecBalancer(self.targets, probe_initial=1.0, probe_cap=4.0, clock=lambda: self.now)

    def picks(self, count: int) -> List[str]:
        return [self.balancer.pick().url[-6:-5] for _ in range(count)]


def test_round_robin_over_every_url_in_order() -> None:
    h = Harness()
    assert h.picks(7) == ["1", "2", "3", "1", "2", "3", "1"]


def test_a_failing_url_is_taken_out_and_requests_go_elsewhere_at_once(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()
    with caplog.at_level(logging.INFO, logger="sls_forwarder"):
        assert h.balancer.failed(h.targets[1], BUSY) is True
        assert h.balancer.failed(h.targets[1], BUSY) is True   # a second failure of the same outage
    assert h.picks(4) == ["1", "3", "1", "3"]
    assert h.balancer.in_service() == ["http://127.0.0.1:8088", "http://127.0.0.3:8088"]
    outs = [r.getMessage() for r in caplog.records if "action=hec_url_out" in r.getMessage()]
    assert outs == ["action=hec_url_out url=http://127.0.0.2:8088 code=hec:9 status=503 in_service=2/3 "
                    "detail=HEC server is busy (Server is busy); probing /services/collector/health until it is back"]


def test_probes_follow_capped_backoff_until_healthy_then_the_url_is_back_once(
        caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()
    sender = h.senders[0]
    h.balancer.failed(h.targets[0], BUSY)
    h.now += 0.7                       # before the first probe (1 s +- 20 %)
    h.balancer.probe_due()
    assert sender.probes == 0
    h.now += 0.6
    h.balancer.probe_due()
    assert sender.probes == 1          # unhealthy: the next one in 2 s +- 20 %
    h.now += 1.5
    h.balancer.probe_due()
    assert sender.probes == 1
    h.now += 1.0
    h.balancer.probe_due()
    assert sender.probes == 2
    for _ in range(5):                 # the delay stops growing at the 4 s cap (+- 20 %)
        h.now += 4.9
        h.balancer.probe_due()
    assert sender.probes == 7
    sender.health = True
    with caplog.at_level(logging.INFO, logger="sls_forwarder"):
        h.now += 4.9
        h.balancer.probe_due()
        h.now += 10
        h.balancer.probe_due()         # in service: never probed again
    assert sender.probes == 8
    assert h.picks(3) == ["1", "2", "3"]
    ins = [r.getMessage() for r in caplog.records if "action=hec_url_in" in r.getMessage()]
    assert len(ins) == 1 and ins[0].startswith("action=hec_url_in url=http://127.0.0.1:8088 by=health after=")
    assert ins[0].endswith("in_service=3/3")


def test_a_successful_post_brings_a_url_back_without_a_probe() -> None:
    h = Harness()
    h.balancer.failed(h.targets[2], BUSY)
    h.balancer.succeeded(h.targets[2])
    h.balancer.succeeded(h.targets[0])  # in service already: nothing changes
    assert h.balancer.in_service() == [t.url for t in h.targets]
    assert h.senders[2].probes == 0


def test_when_every_url_is_out_requests_go_round_robin_to_all_and_the_senders_back_off() -> None:
    h = Harness()
    assert h.balancer.failed(h.targets[0], BUSY) is True
    assert h.balancer.failed(h.targets[1], BUSY) is True
    assert h.balancer.failed(h.targets[2], BUSY) is False   # nowhere else to go: the sender waits its backoff
    assert h.balancer.in_service() == []
    assert h.picks(4) == ["1", "2", "3", "1"]


def test_a_single_url_is_never_taken_out_nor_probed() -> None:
    h = Harness(count=1)
    assert h.balancer.failed(h.targets[0], BUSY) is False
    h.now += 100
    h.balancer.probe_due()
    assert h.senders[0].probes == 0 and h.balancer.in_service() == [h.targets[0].url]
    h.balancer.start()   # no probe thread for one URL
    assert h.balancer._thread is None
    h.balancer.stop()


def test_the_probe_thread_brings_a_healthy_url_back() -> None:
    senders = [FakeSender("http://127.0.0.1:1"), FakeSender("http://127.0.0.2:1")]
    senders[1].health = True
    targets = [HecTarget(sender) for sender in senders]
    balancer = HecBalancer(targets, probe_initial=0.01, probe_cap=0.05)
    balancer.start()
    try:
        balancer.failed(targets[1], BUSY)
        back = threading.Event()
        for _ in range(500):
            if balancer.in_service() == [t.url for t in targets]:
                back.set()
                break
            back.wait(0.02)
        assert back.is_set() and senders[1].probes >= 1
    finally:
        balancer.stop()
