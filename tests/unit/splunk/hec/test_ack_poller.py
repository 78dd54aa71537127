"""AckPoller with a fake ack query and a fake clock: every request ends exactly once, acked or expired, and an ackId
HEC reissued after a restart never completes the older request."""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
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

    def post(self, ack_id: int) -> HecRequest:
        """A POST that got ``ack_id``, sent after every earlier one was registered."""
        request = self.request(ack_id)
        with self.poller.posting() as start:
            self.poller.add(request, start)
        return request


def test_acked_requests_leave_once_and_the_rest_wait() -> None:
    h = Harness()
    first, second = h.post(0), h.post(1)
    h.poller.poll_once()
    assert h.acked == [] and h.poller.outstanding() == 2
    h.indexed[1] = True
    h.poller.poll_once()
    h.poller.poll_once()
    assert h.acked == [second] and h.poller.outstanding() == 1
    assert h.queries[-1] == [0] and first not in h.acked


def test_failed_query_is_retried_next_time() -> None:
    h = Harness()
    request = h.post(5)
    h.indexed[5] = True
    h.fail_next = True
    h.poller.poll_once()
    assert h.acked == []
    h.poller.poll_once()
    assert h.acked == [request]


def test_overdue_requests_expire_and_are_not_queried() -> None:
    h = Harness()
    old = h.post(0)
    h.now += 20
    h.post(1)
    h.now += 10  # old is 30 s old
    h.poller.poll_once()
    assert h.expired == [old] and h.queries == [[1]]
    h.indexed[0] = True  # a late true for the expired id changes nothing
    h.poller.poll_once()
    assert h.acked == [] and h.expired == [old]


def test_an_id_at_or_below_one_registered_before_is_a_reset_and_everything_outstanding_is_sent_again(
        caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()
    before = [h.post(4), h.post(5)]
    with caplog.at_level(logging.WARNING, logger="sls_forwarder"):
        after_restart = h.post(5)   # HEC restarted and counted up to 5 again
    assert h.expired == before + [after_restart] and h.poller.outstanding() == 0
    resets = [r.getMessage() for r in caplog.records if "action=hec_ack_channel_reset" in r.getMessage()]
    assert len(resets) == 1 and "ack_id=5 highest_before=5 resending=3" in resets[0]
    # The new numbering is trusted from here on: 0 is not a reset any more.
    fresh = h.post(0)
    h.indexed[0] = True
    h.poller.poll_once()
    assert h.acked == [fresh]


def test_concurrent_posts_answered_out_of_order_are_not_a_reset() -> None:
    h = Harness()
    first, second = h.request(0), h.request(1)
    with ExitStack() as stack:
        first_start = stack.enter_context(h.poller.posting())
        second_start = stack.enter_context(h.poller.posting())
        h.poller.add(second, second_start)   # HEC gave 0 then 1, but the reply with 1 is read first
        h.poller.add(first, first_start)
    assert h.expired == [] and h.poller.outstanding() == 2


def test_a_concurrent_post_given_an_outstanding_id_is_a_reset() -> None:
    h = Harness()
    older, newer = h.request(3), h.request(3)
    with ExitStack() as stack:
        older_start = stack.enter_context(h.poller.posting())
        newer_start = stack.enter_context(h.poller.posting())
        h.poller.add(older, older_start)
        h.poller.add(newer, newer_start)   # HEC issued 3 twice: it restarted in between; either may be the lost one
    assert h.expired == [older, newer] and h.poller.outstanding() == 0


def test_a_post_in_flight_during_a_reset_is_sent_again() -> None:
    h = Harness()
    h.post(7)
    in_flight = h.request(8)
    with h.poller.posting() as start:
        revealing = h.post(2)   # another POST shows the restart while this one is in flight
        h.poller.add(in_flight, start)   # 8 may be from before the restart or after it
    assert in_flight in h.expired and revealing in h.expired and h.poller.outstanding() == 0


def test_poll_applies_no_answer_while_a_post_is_between_its_ack_id_and_registration() -> None:
    """The reviewed race: R holds 5; HEC restarts; R' gets 5 and is indexed, but its thread has not registered it
    when the poller asks about 5. The poll must wait for R' to register (which reveals the reset)."""
    h = Harness()
    lost = h.post(5)
    reissued = h.request(5)
    issued, release = threading.Event(), threading.Event()

    def post_reissued() -> None:
        with h.poller.posting() as start:
            h.indexed[5] = True   # HEC indexed R' under 5 ...
            issued.set()
            release.wait(10)      # ... and its reply is still on the way
            h.poller.add(reissued, start)

    poster = threading.Thread(target=post_reissued)
    poster.start()
    assert issued.wait(10)
    polled = threading.Event()
    poll = threading.Thread(target=lambda: (h.poller.poll_once(), polled.set()))
    poll.start()
    assert not polled.wait(0.3)   # the poll waits for the POST in flight
    assert h.queries == []
    release.set()
    poster.join(10)
    poll.join(10)
    assert polled.is_set()
    assert h.acked == [] and h.expired == [lost, reissued]


def test_posts_wait_while_the_poller_holds_the_gate() -> None:
    h = Harness()
    querying, answer = threading.Event(), threading.Event()

    def slow_query(ack_ids: Sequence[int]) -> Dict[int, bool]:
        querying.set()
        answer.wait(10)
        return {i: False for i in ack_ids}

    h.poller = AckPoller(slow_query, h.acked.append, h.expired.append, interval=0.01, ack_timeout=30.0,
                         clock=lambda: h.now)
    h.post(1)
    poll = threading.Thread(target=h.poller.poll_once)
    poll.start()
    assert querying.wait(10)
    entered = threading.Event()

    def post() -> None:
        with h.poller.posting():
            entered.set()

    poster = threading.Thread(target=post)
    poster.start()
    assert not entered.wait(0.3)
    answer.set()
    assert entered.wait(10)
    poll.join(10)
    poster.join(10)


def test_request_without_ack_id_is_refused() -> None:
    h = Harness()
    request = h.request(0)
    request.ack_id = None
    with pytest.raises(ValueError), h.poller.posting() as start:
        h.poller.add(request, start)


def test_thread_polls_until_stopped() -> None:
    h = Harness()
    done = threading.Event()
    h.poller = AckPoller(h.query, lambda r: done.set(), h.expired.append, interval=0.01, ack_timeout=30.0,
                         clock=lambda: h.now)
    h.post(3)
    h.indexed[3] = True
    h.poller.start()
    try:
        assert done.wait(10)
    finally:
        h.poller.stop()


def test_a_failing_callback_does_not_strand_the_other_acked_requests(caplog) -> None:
    """Acked requests have left the registry; if the first callback raises, the others must still be resolved."""
    h = Harness()
    first, second, third = h.post(0), h.post(1), h.post(2)
    h.indexed.update({0: True, 1: True, 2: True})
    resolved: List[HecRequest] = []

    def on_acked(request: HecRequest) -> None:
        if request is first:
            raise RuntimeError("callback bug")
        resolved.append(request)

    h.poller._on_acked = on_acked
    with caplog.at_level(logging.ERROR, logger="sls_forwarder"):
        h.poller.poll_once()
    assert resolved == [second, third]
    assert h.poller.outstanding() == 0
    assert "action=hec_ack_callback_failed ack_id=0" in caplog.text
