"""HecSink with real shaped events against the project's HEC emulator (tests/emulators/hec)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any, Callable, List

import pytest

from sls_forwarder.batch import ShardBatch
from sls_forwarder.errors import ConfigError
from sls_forwarder.splunk.events import EventMeta, EventShaper
from sls_forwarder.sls.decoder import Log, LogGroup
from sls_forwarder.splunk.hec.channel import HecChannel
from sls_forwarder.splunk.hec.client import HecSink
from sls_forwarder.splunk.hec.config import HecConfig

from .test_client import FAST, Done, read_dead_letters

HecEmulator = pytest.importorskip("tests.emulators.hec").HecEmulator




def shaped_batches(meta: EventMeta, shards: int, per_shard: int, logs: int) -> List[ShardBatch]:
    shaper = EventShaper(meta, "hec")
    batches = []
    for shard in range(shards):
        for n in range(per_shard):
            group = LogGroup("topic", "10.0.0.%d" % shard, [("__hostname__", "web-%d" % shard)],
                             [Log(1700000000 + i, i * 1000, [("seq", "%d-%d-%d" % (shard, n, i)),
                                                             ("msg", 'quote " back \\ 日本 \u2028')])
                              for i in range(logs)])
            events, newest = shaper.shape([group])
            batches.append(ShardBatch(shard_id=shard, cursor="%d-%d" % (shard, n), next_cursor="%d-%d+" % (shard, n),
                                      events=events, newest_time=newest))
    return batches


META = EventMeta(index="main", sourcetype="aliyun:sls", source="sls:p:l", default_host="hf")


@pytest.mark.parametrize("ack", [False, True], ids=["no-ack", "ack"])
def test_every_event_arrives_once_with_its_metadata(tmp_path: Any, ack: bool) -> None:
    with HecEmulator(tokens={"tok": {"ack": ack, "indexes": ["main"]}}) as hec:
        config = HecConfig(url=hec.url, token="tok", ack=ack, gzip=True, max_content_length=4096, **FAST)
        sink = HecSink(config, str(tmp_path / "dl.jsonl"), channel=HecChannel())
        done = Done()
        batches = shaped_batches(META, shards=3, per_shard=4, logs=25)
        for batch in batches:
            sink.send(batch, done)
        assert done.wait_count(len(batches))
        sink.close(10)
        events = hec.events()
    assert Counter(e["event"]["seq"] for e in events) == Counter(
        "%d-%d-%d" % (s, n, i) for s in range(3) for n in range(4) for i in range(25))
    sample = next(e for e in events if e["event"]["seq"] == "1-2-3")
    assert sample["time"] == pytest.approx(1700000003.000003)
    assert (sample["host"], sample["source"], sample["sourcetype"], sample["index"]) == (
        "10.0.0.1", "sls:p:l", "aliyun:sls", "main")
    assert sample["event"]["msg"] == 'quote " back \\ 日本 \u2028'
    assert sample["event"]["__tag__:__hostname__"] == "web-1"
    assert sample["event"]["__time_ns_part__"] == 3000
    assert all((e["_ack_id"] is not None) == ack for e in events)


def test_busy_then_never_acked_then_delivered_exactly_once_reported(tmp_path: Any) -> None:
    with HecEmulator(tokens={"tok": {"ack": True}}) as hec:
        hec.faults.busy_for(0.5)
        hec.faults.never_ack(1)
        config = HecConfig(url=hec.url, token="tok", ack=True, ack_timeout=0.5, **FAST)
        sink = HecSink(config, str(tmp_path / "dl.jsonl"), channel=HecChannel())
        done = Done()
        batches = shaped_batches(META, shards=2, per_shard=2, logs=5)
        for batch in batches:
            sink.send(batch, done)
        assert done.wait_count(len(batches))
        sink.close(10)
        counters = hec.requests
        seqs = Counter(e["event"]["seq"] for e in hec.events())
    assert Counter(done.calls) == Counter(b.cursor for b in batches)
    assert counters.get("busy", 0) >= 1
    assert set(seqs) == {"%d-%d-%d" % (s, n, i) for s in range(2) for n in range(2) for i in range(5)}
    assert sum(seqs.values()) == 20 + 5  # the never-acked request of 5 events was sent again


def test_index_the_token_may_not_write_is_retried_until_allowed_and_never_dead_lettered(tmp_path: Any) -> None:
    with HecEmulator(tokens={"tok": {"indexes": ["main"]}}) as hec:
        config = HecConfig(url=hec.url, token="tok", **FAST)
        dead_letters = str(tmp_path / "dl.jsonl")
        reported: List[ConfigError] = []
        sink = HecSink(config, dead_letters, channel=HecChannel(), on_config_error=reported.append)
        done = Done()
        events = [json.dumps({"time": 1, "index": "secret", "event": {"n": n}}).encode() for n in range(4)]
        sink.send(ShardBatch(shard_id=7, cursor="cur", next_cursor="next", events=events), done)
        assert wait_until(lambda: hec.requests.get("code_7", 0) >= 3)   # retried at config_retry_interval
        assert done.calls == [] and hec.events() == []
        assert [error.code for error in reported] == ["hec:7"]
        hec.set_token("tok", indexes=["main", "secret"])   # the admin allows the index on the token
        assert done.wait_count(1)
        sink.close(10)
        delivered = sorted(e["event"]["n"] for e in hec.events())
    assert read_dead_letters(dead_letters) == []
    assert delivered == [0, 1, 2, 3]


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
