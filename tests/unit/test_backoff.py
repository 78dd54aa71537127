"""backoff.py: growth, cap, jitter bounds, reset and interruptible waits."""

import threading
import time

import pytest

from sls_forwarder.backoff import Backoff


def test_grows_exponentially_without_jitter():
    backoff = Backoff(initial=0.5, cap=30.0, factor=2.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_never_exceeds_cap_even_after_many_attempts():
    backoff = Backoff(initial=1.0, cap=5.0, factor=3.0, jitter=0.2)
    delays = [backoff.next_delay() for _ in range(5000)]
    assert max(delays) <= 5.0
    assert min(delays[10:]) >= 5.0 * 0.8


def test_jitter_stays_within_bounds_and_varies():
    delays = [Backoff(initial=10.0, cap=100.0, jitter=0.2).next_delay() for _ in range(300)]
    assert all(8.0 <= d <= 12.0 for d in delays)
    assert len(set(delays)) > 1


def test_reset_starts_over():
    backoff = Backoff(initial=0.25, cap=10.0, jitter=0.0)
    for _ in range(4):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.25


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": 0}, {"initial": 2.0, "cap": 1.0}, {"factor": 0.5}, {"jitter": 1.0}, {"jitter": -0.1}],
)
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_wait_returns_false_after_full_delay():
    stop = threading.Event()
    assert Backoff(initial=0.01, cap=0.01, jitter=0.0).wait(stop) is False


def test_wait_is_woken_by_stop():
    stop = threading.Event()
    backoff = Backoff(initial=60.0, cap=60.0, jitter=0.0)
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert backoff.wait(stop) is True
    assert time.monotonic() - started < 30.0
