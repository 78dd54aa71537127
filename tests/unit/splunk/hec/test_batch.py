"""Request packing, splitting and batch completion counting."""

from __future__ import annotations

import gzip
from typing import List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sls_forwarder.batch import ShardBatch
from sls_forwarder.splunk.hec.batch import HecRequest, PendingBatch, pack_events, split_points


def _pending(events: List[bytes]) -> PendingBatch:
    return PendingBatch(ShardBatch(shard_id=3, cursor="c", next_cursor="n", events=events), lambda batch: None)


@given(sizes=st.lists(st.integers(1, 300), max_size=60), limit=st.integers(50, 1000))
def test_pack_keeps_order_and_stays_under_the_limit(sizes: List[int], limit: int) -> None:
    events = [bytes([65 + i % 26]) * size for i, size in enumerate(sizes)]
    bodies = pack_events(events, limit)
    assert [e for _, body in bodies for e in body] == events
    position = 0
    for start, body in bodies:
        assert start == position
        position += len(body)
        joined = len(b"\n".join(body))
        assert joined <= limit or len(body) == 1  # only a lone oversized event may exceed it
    for (_, first), (_, second) in zip(bodies, bodies[1:]):
        assert len(b"\n".join(first + second[:1])) > limit  # greedy: the next event would not have fitted


def test_split_points_isolate_the_named_event_or_bisect() -> None:
    assert split_points(10, 4) == [4, 5]
    assert split_points(10, None) == [5]
    assert split_points(10, 10) == [5]
    assert split_points(2, -1) == [1]


def test_split_keeps_batch_positions() -> None:
    events = [b"e%d" % i for i in range(10)]
    request = HecRequest(_pending(events), 20, events[3:8])
    parts = request.split([0, 2, 3, 5])
    assert [(p.start, p.events) for p in parts] == [(20, events[3:5]), (22, events[5:6]), (23, events[6:8])]
    assert parts[0].describe() == "shard=3 cursor=c events=20-21"


def test_payload_is_gzip_only_when_asked() -> None:
    request = HecRequest(_pending([b"a", b"b"]), 0, [b'{"event":1}', b'{"event":2}'])
    assert request.payload(False) == b'{"event":1}\n{"event":2}'
    assert gzip.decompress(request.payload(True)) == request.body
    assert request.payload(True) is request.payload(True)


def test_pending_batch_finishes_exactly_once() -> None:
    pending = _pending([b"a"])
    pending.add_requests(2)
    assert pending.finish_request() is False
    pending.add_requests(2)  # a split replaces one request by two
    assert pending.finish_request() is False
    assert pending.finish_request() is False
    assert pending.finish_request() is True
    with pytest.raises(RuntimeError, match="more requests"):
        pending.finish_request()
