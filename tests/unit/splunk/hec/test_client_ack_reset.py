"""HecSink across an HEC restart that renumbers the channel's ackIds: no batch is reported done before its events
are indexed, even when a reissued ackId reads true while the request holding it is still on its way back."""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, List, Sequence, Set

import pytest

from sls_forwarder.batch import ShardBatch
from sls_forwarder.splunk.hec.channel import HecChannel
from sls_forwarder.splunk.hec.client import HecSink
from sls_forwarder.splunk.hec.config import HecConfig
from sls_forwarder.splunk.hec.sender import HecReply

from .test_client import make_batch


class RestartingHec:
    """A HecSender stand-in for one channel that numbers ackIds like HEC (0, 1, ... and from 0 again after
    ``restart``, which loses what was not indexed yet). ``hold_next_post`` makes the next POST stop after HEC issued
    its ackId and indexed it, as if the reply were still on the wire."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.next_ack_id = 0
        self.index_on_arrival = True
        self.unindexed: Dict[int, List[bytes]] = {}
        self.reads_true: Set[int] = set()
        self.indexed: List[bytes] = []
        self.queries: List[List[int]] = []
        self.answered_while_held: List[Dict[int, bool]] = []
        self.held = threading.Event()
        self.release = threading.Event()
        self._hold_next = False

    def hold_next_post(self) -> None:
        with self.changed:
            self._hold_next = True

    def restart(self) -> None:
        with self.changed:
            self.next_ack_id = 0
            self.unindexed.clear()
            self.reads_true.clear()

    def post_events(self, body: bytes, gzipped: bool) -> HecReply:
        with self.changed:
            events = body.split(b"\n")
            ack_id = self.next_ack_id
            self.next_ack_id += 1
            if self.index_on_arrival:
                self.indexed.extend(events)
                self.reads_true.add(ack_id)
            else:
                self.unindexed[ack_id] = events
            hold, self._hold_next = self._hold_next, False
            self.changed.notify_all()
        if hold:
            self.held.set()
            self.release.wait(30)
        return HecReply(status=200, code=0, text="Success", ack_id=ack_id)

    def query_acks(self, ack_ids: Sequence[int]) -> Dict[int, bool]:
        with self.changed:
            self.queries.append(list(ack_ids))
            states = {ack_id: ack_id in self.reads_true for ack_id in ack_ids}
            self.reads_true -= {ack_id for ack_id, done in states.items() if done}  # HEC reports a true ack once
            if self.held.is_set() and not self.release.is_set():
                self.answered_while_held.append(states)
            self.changed.notify_all()
            return states

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def close(self) -> None:
        pass


class CheckedDone:
    """on_done that records which batches were reported before all their events were indexed."""

    def __init__(self, hec: RestartingHec) -> None:
        self.hec = hec
        self.calls: List[str] = []
        self.premature: List[str] = []
        self.changed = threading.Condition()

    def __call__(self, batch: ShardBatch) -> None:
        with self.hec.changed:
            missing = [event for event in batch.events if event not in self.hec.indexed]
        with self.changed:
            self.calls.append(batch.cursor)
            if missing:
                self.premature.append(batch.cursor)
            self.changed.notify_all()

    def wait_count(self, count: int, timeout: float = 15.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.calls) >= count, timeout)


def test_reissued_ack_id_read_true_before_its_request_registers_does_not_complete_the_lost_request(
        tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    hec = RestartingHec()
    config = HecConfig(url="http://hec.invalid:8088", token="tok", ack=True, ack_poll_interval=0.02,
                       ack_timeout=120.0, retry_initial=0.01, retry_cap=0.05, senders=2)
    sink = HecSink(config, str(tmp_path / "dl.jsonl"), channel=HecChannel(), sender=hec)  # type: ignore[arg-type]
    done = CheckedDone(hec)
    lost, newer = make_batch(0, "lost", ["a"]), make_batch(1, "newer", ["b"])
    try:
        with caplog.at_level(logging.WARNING, logger="sls_forwarder"):
            # R gets ackId 0 and is polled, still unindexed; then HEC restarts and R's data is gone.
            hec.index_on_arrival = False
            sink.send(lost, done)
            assert hec.wait_for(lambda: [0] in hec.queries)
            hec.restart()
            # R' gets ackId 0 again and is indexed at once, but its reply is held back.
            hec.index_on_arrival = True
            hec.hold_next_post()
            sink.send(newer, done)
            assert hec.held.wait(10)
            # The poller runs every 20 ms: it asks about 0 now and reads true (R' is indexed); that answer must not
            # complete R, whose data the restart lost.
            assert hec.wait_for(lambda: hec.answered_while_held, timeout=5.0)
            assert {0: True} in hec.answered_while_held
            assert done.calls == []
            hec.release.set()
            assert done.premature == []
            assert done.wait_count(2)
        assert done.premature == []
        assert sorted(done.calls) == ["lost", "newer"]
        assert hec.indexed.count(lost.events[0]) == 1   # R was sent again after the reset
        resets = [r for r in caplog.records if "action=hec_ack_channel_reset" in r.getMessage()]
        assert len(resets) == 1
    finally:
        hec.release.set()
        sink.close(5)
