"""AckPoller with a fake ack query and a fake clock: every request ends exactly once, acked or expired."""

from __future__ import annotations

import threading
from typing import Dict, List, Sequence

import pytest

from sls_forwarder.batch import ShardBatch
from sls_forwarder.errors import RetryableError
from sls_forwarder.splunk.hec.ack_poller import AckPoller
from sls_forwarder.splunk.hec.batch import HecRequest, PendingBatch


class Harness:
    def __init__(self) -> None:
        self.now = 100.0
        self.indexed: Dict[int, bool] = {}
        self.queries: List[List[int]] = []
        self.fail_next = False
        self.acked: List[HecRequest] = []
        self.expired: List[HecRequest] = []
        self.poller = AckPoller(self.query, self.acked.append, self.expired.append, interval=0.01, ack_timeout=30.0,
                                clock=lambda: self.now)

    def query(self, ack_ids: Sequence[int]) -> Dict[int, bool]:
        self.queries.append(list(ack_ids))
        if self.fail_next:
            self.fail_next = False
            raise RetryableError("HEC server is busy", code="hec:9", status=503)
        return {i: self.indexed.get(i, False) for i in ack_ids}

    def request(self, ack_id: int) -> HecRequest:
        batch = ShardBatch(shard_id=0, cursor="c%d" % ack_id, next_cursor="n", events=[b"e"])
        request = HecRequest(PendingBatch(batch, lambda b: None), 0, [b"e"])
        request.ack_id = ack_id
        request.sent_at = self.now
        return request


def test_acked_requests_leave_once_and_the_rest_wait() -> None:
    h = Harness()
    first, second = h.request(0), h.request(1)
    h.poller.add(first)
    h.poller.add(second)
    h.poller.poll_once()
    assert h.acked == [] and h.poller.outstanding() == 2
    h.indexed[1] = True
    h.poller.poll_once()
    h.poller.poll_once()
    assert h.acked == [second] and h.poller.outstanding() == 1
    assert h.queries[-1] == [0]


def test_failed_query_is_retried_next_time() -> None:
    h = Harness()
    request = h.request(5)
    h.poller.add(request)
    h.indexed[5] = True
    h.fail_next = True
    h.poller.poll_once()
    assert h.acked == []
    h.poller.poll_once()
    assert h.acked == [request]


def test_overdue_requests_expire_and_are_not_queried() -> None:
    h = Harness()
    old, young = h.request(0), h.request(1)
    h.poller.add(old)
    h.now += 20
    young.sent_at = h.now
    h.poller.add(young)
    h.now += 10  # old is 30 s old
    h.poller.poll_once()
    assert h.expired == [old] and h.queries == [[1]]
    h.indexed[0] = True  # a late true for the expired id changes nothing
    h.poller.poll_once()
    assert h.acked == [] and h.expired == [old]


def test_reused_ack_id_expires_the_older_request() -> None:
    h = Harness()
    older, newer = h.request(0), h.request(0)
    h.poller.add(older)
    h.poller.add(newer)
    assert h.expired == [older]
    h.indexed[0] = True
    h.poller.poll_once()
    assert h.acked == [newer]


def test_request_without_ack_id_is_refused() -> None:
    h = Harness()
    request = h.request(0)
    request.ack_id = None
    with pytest.raises(ValueError):
        h.poller.add(request)


def test_thread_polls_until_stopped() -> None:
    h = Harness()
    done = threading.Event()
    h.poller = AckPoller(h.query, lambda r: done.set(), h.expired.append, interval=0.01, ack_timeout=30.0,
                         clock=lambda: h.now)
    h.poller.add(h.request(3))
    h.indexed[3] = True
    h.poller.start()
    try:
        assert done.wait(10)
    finally:
        h.poller.stop()
