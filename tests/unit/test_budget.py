"""MemoryBudget: the input's one memory bound, shared first come, first served by its shards."""

from __future__ import annotations

import threading
from typing import List

import pytest

from sls_forwarder.budget import EVENT_OVERHEAD_BYTES, MemoryBudget, shaped_size
from tests.unit.fakes import wait_for


def always() -> bool:
    return True


class Waiter(threading.Thread):
    """Acquires in the background and records the order in which requests were granted."""

    def __init__(self, budget: MemoryBudget, nbytes: int, granted: List[str], name: str,
                 active=always) -> None:
        super().__init__(daemon=True)
        self.budget, self.nbytes, self.granted, self.label, self.active = budget, nbytes, granted, name, active
        self.result = None

    def run(self) -> None:
        self.result = self.budget.acquire(self.nbytes, self.active)
        if self.result:
            self.granted.append(self.label)


def start_waiter(budget: MemoryBudget, nbytes: int, granted: List[str], name: str, active=always) -> Waiter:
    """Start a waiter and return once it is queued (its ticket is in line)."""
    queued = len(budget._waiting)
    waiter = Waiter(budget, nbytes, granted, name, active)
    waiter.start()
    assert wait_for(lambda: len(budget._waiting) == queued + 1 or waiter.result is not None)
    return waiter


def test_requests_within_the_limit_are_granted_at_once() -> None:
    budget = MemoryBudget(100)
    assert budget.acquire(60, always) and budget.acquire(40, always)
    assert budget.held() == 100


def test_a_request_waits_until_enough_is_released() -> None:
    budget = MemoryBudget(100)
    budget.acquire(80, always)
    granted: List[str] = []
    waiter = start_waiter(budget, 30, granted, "late")
    assert granted == [] and budget.held() == 80
    budget.release(80)
    waiter.join(5)
    assert granted == ["late"] and budget.held() == 30


def test_waiters_are_served_in_arrival_order_so_a_busy_shard_cannot_starve_others() -> None:
    budget = MemoryBudget(100)
    budget.acquire(100, always)
    granted: List[str] = []
    first = start_waiter(budget, 60, granted, "first")
    second = start_waiter(budget, 10, granted, "second")  # would fit before "first", but it came later
    budget.release(50)
    assert not wait_for(lambda: granted, timeout=0.3)
    budget.release(50)
    first.join(5)
    second.join(5)
    assert granted == ["first", "second"]


def test_an_oversized_request_is_granted_when_nothing_is_held() -> None:
    budget = MemoryBudget(100)
    assert budget.acquire(500, always)
    granted: List[str] = []
    waiter = start_waiter(budget, 1, granted, "small")
    assert granted == []
    budget.release(500)
    waiter.join(5)
    assert granted == ["small"]


def test_a_waiter_gives_up_when_no_longer_active_and_holds_nothing() -> None:
    budget = MemoryBudget(100)
    budget.acquire(100, always)
    active = threading.Event()
    active.set()
    granted: List[str] = []
    waiter = start_waiter(budget, 50, granted, "revoked", active=active.is_set)
    behind = start_waiter(budget, 50, granted, "behind")
    active.clear()
    budget.wake()
    waiter.join(5)
    assert waiter.result is False and budget.held() == 100
    budget.release(100)
    behind.join(5)
    assert granted == ["behind"] and budget.held() == 50


def test_resize_never_waits_and_may_exceed_the_limit() -> None:
    budget = MemoryBudget(100)
    budget.acquire(90, always)
    budget.resize(90, 150)  # the data is already in memory
    assert budget.held() == 150
    budget.resize(150, 20)
    assert budget.held() == 20


def test_shaped_size_counts_bytes_and_per_event_overhead() -> None:
    assert shaped_size([b"abc", b"de"]) == 5 + 2 * EVENT_OVERHEAD_BYTES
    assert shaped_size([]) == 0


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MemoryBudget(0)
