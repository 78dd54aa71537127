"""AckPoller with a fake ack query and a fake clock: every request ends exactly once, acked or expired, and an ackId
HEC reissued after a restart never completes the older request."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack
from typing import Callable, Dict, List, Sequence

import pytest

from sls_forwarder.batch import ShardBatch
from sls_forwarder.errors import RetryableError
from sls_forwarder.splunk.hec.ack_poller import AckPoller, AckPollSchedule
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
    when the poller asks about 5. HEC answers "5 is true" (about R'); the poll must not apply that answer before R'
    registers (which reveals the reset and voids the answer)."""
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
    assert not polled.wait(0.3)   # the poll has its answer but waits for the POST in flight
    assert h.queries == [[5]] and h.acked == [] and h.expired == []
    release.set()
    poster.join(10)
    poll.join(10)
    assert polled.is_set()
    assert h.acked == [] and h.expired == [lost, reissued]


def test_posts_go_on_while_the_poller_queries_and_an_answer_waits_only_for_posts_begun_before_it() -> None:
    h = Harness()
    querying, answer = threading.Event(), threading.Event()

    def slow_query(ack_ids: Sequence[int]) -> Dict[int, bool]:
        querying.set()
        answer.wait(10)
        return {i: True for i in ack_ids}

    h.poller = AckPoller(slow_query, h.acked.append, h.expired.append, interval=0.01, ack_timeout=30.0,
                         clock=lambda: h.now)
    waiting = h.post(1)
    polled = threading.Event()
    poll = threading.Thread(target=lambda: (h.poller.poll_once(), polled.set()))
    poll.start()
    assert querying.wait(10)
    during = h.post(2)                      # a whole POST while the query is out: not held up
    slow_post_started, finish_slow_post = threading.Event(), threading.Event()

    def slow_post() -> None:
        with h.poller.posting() as start:
            slow_post_started.set()
            finish_slow_post.wait(10)
            h.poller.add(h.request(3), start)

    poster = threading.Thread(target=slow_post)
    poster.start()
    assert slow_post_started.wait(10)
    answer.set()
    assert not polled.wait(0.3)             # the answer waits for the POST begun before it arrived
    assert h.acked == []
    finish_slow_post.set()
    poster.join(10)
    poll.join(10)
    assert h.acked == [waiting]             # only the snapshot's request: 2 and 3 were not asked about
    assert h.poller.outstanding() == 2 and during not in h.acked


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


def test_schedule_asks_soon_after_progress_and_backs_off_to_the_interval_while_nothing_is_acked() -> None:
    schedule = AckPollSchedule(shortest=0.05, longest=1.0)
    assert schedule.delay == 0.05
    delays = []
    for _ in range(7):
        schedule.polled(acked=0)
        delays.append(schedule.delay)
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    schedule.polled(acked=3)
    assert schedule.delay == 0.05
    schedule.polled(acked=0)
    schedule.restart()   # requests start waiting again after the channel was idle
    assert schedule.delay == 0.05
    assert AckPollSchedule(shortest=0.5, longest=0.2).delay == 0.2   # the interval is also a cap on the shortest


def test_thread_asks_about_new_requests_after_the_shortest_delay_not_the_interval() -> None:
    """With a 60 s interval, only the short first delay can deliver within the wait below."""
    h = Harness()
    acked = threading.Event()
    h.poller = AckPoller(h.query, lambda r: acked.set(), h.expired.append, interval=60.0, ack_timeout=300.0,
                         clock=lambda: h.now, shortest_interval=0.01)
    h.poller.start()
    try:
        h.indexed[0] = True
        h.post(0)
        assert acked.wait(20)
        assert h.queries == [[0]]
    finally:
        h.poller.stop()


def test_idle_poller_sends_no_queries() -> None:
    h = Harness()
    h.poller.start()
    try:
        h.indexed[0] = True
        h.post(0)
        assert _wait_until(lambda: h.poller.outstanding() == 0)
        asked = len(h.queries)
        time.sleep(0.3)   # 30 intervals of 10 ms with nothing outstanding
        assert len(h.queries) == asked
    finally:
        h.poller.stop()


def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
