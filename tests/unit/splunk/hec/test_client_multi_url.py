"""HecSink over three HEC emulators: round-robin, a busy URL taken out and probed back in, acks asked on the URL
and channel that issued them, and a whole-destination outage that holds delivery until HEC is back."""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import ExitStack
from typing import Any, List

import pytest

from sls_forwarder.splunk.hec.channel import HecChannel
from sls_forwarder.splunk.hec.client import HecSink
from sls_forwarder.splunk.hec.config import HecConfig
from sls_forwarder.splunk.hec.sender import HecSender

from .test_client import FAST, Done
from .test_client_emulator import META, shaped_batches, wait_until

HecEmulator = pytest.importorskip("tests.emulators.hec").HecEmulator

ALL_SEQS = Counter("%d-%d-%d" % (s, n, i) for s in range(3) for n in range(4) for i in range(10))


def three_emulators(stack: ExitStack, ack: bool) -> List[Any]:
    return [stack.enter_context(HecEmulator(host="127.0.0.%d" % (n + 1), tokens={"tok": {"ack": ack}}))
            for n in range(3)]


def seqs(hecs: List[Any]) -> Counter:
    return Counter(e["event"]["seq"] for hec in hecs for e in hec.events())


@pytest.mark.parametrize("ack", [False, True], ids=["no-ack", "ack"])
def test_requests_go_round_robin_and_acks_are_asked_where_they_were_issued(tmp_path: Any, ack: bool) -> None:
    with ExitStack() as stack:
        hecs = three_emulators(stack, ack)
        # ack_timeout is far beyond the wait: only acks asked on the issuing URL and channel can complete the batches.
        config = HecConfig(url=",".join(h.url for h in hecs), token="tok", ack=ack, ack_timeout=120.0,
                           max_content_length=2048, **FAST)
        sink = HecSink(config, str(tmp_path / "dl.jsonl"))
        done = Done()
        batches = shaped_batches(META, shards=3, per_shard=4, logs=10)
        for batch in batches:
            sink.send(batch, done)
        assert done.wait_count(len(batches))
        sink.close(10)
        assert seqs(hecs) == ALL_SEQS
        assert Counter(done.calls) == Counter(b.cursor for b in batches)
        accepted = [h.requests.get("accepted", 0) for h in hecs]
        assert min(accepted) >= 1 and max(accepted) - min(accepted) <= 2   # round-robin, 2 sender threads
        for hec in hecs:
            assert len({e["_channel"] for e in hec.events()}) == 1   # one channel per URL ...
            if ack:
                assert hec.requests.get("ack", 0) >= 1 and hec.pending_acks() == 0
        assert len({e["_channel"] for h in hecs for e in h.events()}) == 3   # ... and a different one on each


def test_a_busy_url_is_taken_out_probed_and_back_without_losing_anything(
        tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    with ExitStack() as stack:
        hecs = three_emulators(stack, ack=True)
        busy = hecs[1]
        busy.faults.busy_for(1.0)        # 503 code 9 on data, 503 code 18 on health, for one second
        config = HecConfig(url=",".join(h.url for h in hecs), token="tok", ack=True, ack_timeout=120.0,
                           max_content_length=2048, **dict(FAST, retry_initial=0.2, retry_cap=0.4))
        sink = HecSink(config, str(tmp_path / "dl.jsonl"))
        done = Done()
        first, second = shaped_batches(META, shards=3, per_shard=4, logs=10)[:6], \
            shaped_batches(META, shards=3, per_shard=4, logs=10)[6:]
        with caplog.at_level(logging.INFO, logger="sls_forwarder"):
            for batch in first:
                sink.send(batch, done)
            assert done.wait_count(len(first))
            assert wait_until(lambda: any("action=hec_url_in" in r.getMessage() for r in caplog.records))
            for batch in second:
                sink.send(batch, done)
            assert done.wait_count(len(first) + len(second))
            sink.close(10)
        messages = [r.getMessage() for r in caplog.records]
        assert seqs(hecs) == ALL_SEQS
        # Taken out at its first 503 (each of the 2 sender threads may have one under way): no more POSTs while out,
        # where round-robin alone would have sent it a third of them all second long.
        assert 1 <= busy.requests.get("busy", 0) <= 2
        assert busy.requests.get("health", 0) >= 1
        assert busy.requests.get("accepted", 0) >= 1   # back in rotation for the second half
    outs = [m for m in messages if "action=hec_url_out" in m]
    ins = [m for m in messages if "action=hec_url_in" in m]
    assert len(outs) == 1 and "url=%s code=hec:9 status=503 in_service=2/3" % busy.url in outs[0]
    assert len(ins) == 1 and "url=%s by=health" % busy.url in ins[0]


def test_every_url_down_holds_delivery_until_one_is_back(tmp_path: Any) -> None:
    with ExitStack() as stack:
        hecs = three_emulators(stack, ack=False)
        for hec in hecs:
            hec.faults.busy_for(60)
        config = HecConfig(url=",".join(h.url for h in hecs), token="tok", **FAST)
        sink = HecSink(config, str(tmp_path / "dl.jsonl"))
        done = Done()
        batch = shaped_batches(META, shards=1, per_shard=1, logs=5)[0]
        sink.send(batch, done)
        assert wait_until(lambda: sum(h.requests.get("busy", 0) for h in hecs) >= 6)   # retried on all, no loss
        assert done.calls == [] and seqs(hecs) == Counter()
        hecs[2].faults.clear()
        assert done.wait_count(1)
        sink.close(10)
        assert sorted(seqs(hecs)) == sorted("0-0-%d" % i for i in range(5))


def test_sender_health_reads_the_collector_health_endpoint() -> None:
    with HecEmulator(tokens={"tok": {}}) as hec:
        sender = HecSender(HecConfig(url=hec.url, token="tok", connect_timeout=2.0), HecChannel())
        assert sender.healthy() is True
        hec.faults.health_unhealthy(18)
        assert sender.healthy() is False
        hec.faults.clear()
        hec.faults.busy_for(30)
        assert sender.healthy() is False
        hec.faults.clear()
        assert sender.healthy() is True
        assert hec.requests["health"] == 4
        url = hec.url
    assert HecSender(HecConfig(url=url, token="tok", connect_timeout=2.0), HecChannel()).healthy() is False
