"""ShardTracker: low watermark under out-of-order completion, exactly-once endings, draining."""

import threading

import pytest
from hypothesis import given, strategies as st

from sls_forwarder.batch import ShardBatch
from sls_forwarder.tracker import ShardTracker


def make_batches(shard_id, count):
    return [ShardBatch(shard_id, "c%d" % i, "c%d" % (i + 1), [b"e"]) for i in range(count)]


def test_commit_cursor_starts_at_the_committed_cursor():
    tracker = ShardTracker(3, "start")
    assert tracker.commit_cursor() == "start"
    assert tracker.in_flight() == 0


def test_add_assigns_increasing_sequence_numbers_in_pull_order():
    tracker = ShardTracker(0, "c0")
    batches = make_batches(0, 3)
    for batch in batches:
        tracker.add(batch)
    assert [b.seq for b in batches] == [1, 2, 3]
    assert tracker.in_flight() == 3


def test_watermark_waits_for_the_oldest_batch():
    tracker = ShardTracker(0, "c0")
    b0, b1, b2 = make_batches(0, 3)
    for batch in (b0, b1, b2):
        tracker.add(batch)
    tracker.mark_done(b2)
    tracker.mark_done(b1)
    assert tracker.commit_cursor() == "c0", "must not pass the undelivered first batch"
    assert tracker.in_flight() == 3
    tracker.mark_done(b0)
    assert tracker.commit_cursor() == "c3"
    assert tracker.in_flight() == 0


def test_watermark_stops_at_a_gap_in_the_middle():
    tracker = ShardTracker(0, "c0")
    b0, b1, b2, b3 = make_batches(0, 4)
    for batch in (b0, b1, b2, b3):
        tracker.add(batch)
    tracker.mark_done(b0)
    tracker.mark_done(b2)
    tracker.mark_done(b3)
    assert tracker.commit_cursor() == "c1"
    assert tracker.in_flight() == 3


def test_a_batch_ends_exactly_once():
    tracker = ShardTracker(0, "c0")
    (b0,) = make_batches(0, 1)
    tracker.add(b0)
    tracker.mark_done(b0)
    with pytest.raises(ValueError, match="not in flight"):
        tracker.mark_done(b0)


def test_a_done_batch_waiting_behind_the_watermark_cannot_end_twice():
    tracker = ShardTracker(0, "c0")
    b0, b1 = make_batches(0, 2)
    tracker.add(b0)
    tracker.add(b1)
    tracker.mark_done(b1)
    with pytest.raises(ValueError, match="already marked done"):
        tracker.mark_done(b1)


def test_unknown_and_foreign_batches_are_refused():
    tracker = ShardTracker(0, "c0")
    with pytest.raises(ValueError):
        tracker.add(ShardBatch(1, "x", "y"))
    stranger = ShardBatch(0, "x", "y", seq=1)
    with pytest.raises(ValueError):
        tracker.mark_done(stranger)


@given(st.permutations(list(range(12))))
def test_watermark_is_the_longest_done_prefix_for_any_completion_order(order):
    tracker = ShardTracker(0, "c0")
    batches = make_batches(0, 12)
    for batch in batches:
        tracker.add(batch)
    done = set()
    for index in order:
        tracker.mark_done(batches[index])
        done.add(index)
        prefix = 0
        while prefix in done:
            prefix += 1
        assert tracker.commit_cursor() == "c%d" % prefix
    assert tracker.in_flight() == 0


def test_wait_drained_times_out_then_returns_when_the_last_batch_ends():
    tracker = ShardTracker(0, "c0")
    b0, b1 = make_batches(0, 2)
    tracker.add(b0)
    tracker.add(b1)
    assert tracker.wait_drained(0.05) is False
    tracker.mark_done(b1)
    finisher = threading.Timer(0.05, tracker.mark_done, args=(b0,))
    finisher.start()
    try:
        assert tracker.wait_drained(10.0) is True
    finally:
        finisher.join()
    assert tracker.commit_cursor() == "c2"


def test_concurrent_completion_from_many_threads():
    tracker = ShardTracker(0, "c0")
    batches = make_batches(0, 400)
    for batch in batches:
        tracker.add(batch)
    workers = [threading.Thread(target=lambda part=batches[i::8]: [tracker.mark_done(b) for b in reversed(part)])
               for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert tracker.commit_cursor() == "c400"
    assert tracker.wait_drained(0) is True
