"""FailureStreak: the first failure, a new cause and a due reminder are logged; the rest are not."""

from __future__ import annotations

from sls_forwarder.streak import FailureStreak


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_only_the_first_failure_of_a_streak_is_logged_without_reminders() -> None:
    streak = FailureStreak(clock=Clock())
    assert [streak.failed("503") for _ in range(5)] == [True, False, False, False, False]
    assert streak.count == 5


def test_a_new_cause_is_logged_once() -> None:
    streak = FailureStreak(clock=Clock())
    assert [streak.failed(cause) for cause in ("503", "503", "timeout", "timeout", "503")] == \
        [True, False, True, False, True]
    assert streak.cause == "503"


def test_reminders_come_every_interval_while_failing() -> None:
    clock = Clock()
    streak = FailureStreak(remind_every=300, clock=clock)
    logged = []
    for _ in range(10):
        logged.append(streak.failed())
        clock.now += 100
    assert logged == [True, False, False, True, False, False, True, False, False, True]
    assert streak.failing_for() == 1000


def test_success_ends_the_streak_and_reports_its_length_once() -> None:
    clock = Clock()
    streak = FailureStreak(clock=clock)
    assert streak.succeeded() == 0
    streak.failed("x")
    streak.failed("x")
    assert streak.succeeded() == 2
    assert streak.succeeded() == 0 and streak.failing_for() == 0.0
    assert streak.failed("x"), "the next failure starts a new streak"
