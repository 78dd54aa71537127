"""HecSink end to end against the local fake HEC: delivery, ack, retries, dead letters, back-pressure, close."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from typing import Any, Dict, Iterator, List

import pytest

from sls_forwarder.batch import ShardBatch
from sls_forwarder.errors import ConfigError
from sls_forwarder.splunk.hec.channel import HecChannel
from sls_forwarder.splunk.hec.client import HecSink
from sls_forwarder.splunk.hec.config import HecConfig

from .fake_hec import FakeHec

FAST = dict(ack_poll_interval=0.05, retry_initial=0.01, retry_cap=0.05, config_retry_interval=0.1)


def envelope(value: Any) -> bytes:
    return json.dumps({"time": 1700000000, "host": "h", "event": value}, separators=(",", ":")).encode()


def make_batch(shard: int, cursor: str, values: List[Any]) -> ShardBatch:
    return ShardBatch(shard_id=shard, cursor=cursor, next_cursor=cursor + "+", events=[envelope(v) for v in values])


class Done:
    """Collects on_done calls; thread-safe, with a wait."""

    def __init__(self) -> None:
        self.calls: List[str] = []
        self.changed = threading.Condition()

    def __call__(self, batch: ShardBatch) -> None:
        with self.changed:
            self.calls.append(batch.cursor)
            self.changed.notify_all()

    def wait_count(self, count: int, timeout: float = 15.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.calls) >= count, timeout)


@pytest.fixture
def dead_letter_path(tmp_path: Any) -> str:
    return str(tmp_path / "state" / "in1.deadletter.jsonl")


def make_sink(hec: FakeHec, dead_letter_path: str, on_config_error: Any = None, **options: Any) -> HecSink:
    settings = dict(FAST, **options)
    config = HecConfig(url=hec.url, token=settings.pop("token", "tok"), **settings)
    return HecSink(config, dead_letter_path, channel=HecChannel(), on_config_error=on_config_error)


def read_dead_letters(path: str) -> List[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]
    except FileNotFoundError:
        return []


@pytest.fixture
def hec() -> Iterator[FakeHec]:
    with FakeHec() as server:
        yield server


@pytest.fixture
def ack_hec() -> Iterator[FakeHec]:
    with FakeHec(ack=True) as server:
        yield server


@pytest.mark.parametrize("gzip", [False, True])
def test_without_ack_every_event_arrives_and_each_batch_is_done_once(hec: FakeHec, dead_letter_path: str,
                                                                     gzip: bool) -> None:
    sink = make_sink(hec, dead_letter_path, gzip=gzip, max_content_length=1024)
    done = Done()
    batches = [make_batch(s, "s%d-%d" % (s, n), ["%d-%d-%d" % (s, n, i) for i in range(40)])
               for s in range(3) for n in range(4)]
    for batch in batches:
        sink.send(batch, done)
    assert done.wait_count(len(batches))
    sink.close(5)
    assert sorted(done.calls) == sorted(b.cursor for b in batches)
    assert sorted(hec.event_values()) == sorted("%d-%d-%d" % (s, n, i) for s in range(3) for n in range(4)
                                                for i in range(40))
    posts = hec.event_posts()
    assert all(len(body) <= 1024 for _, _, body in posts) and len(posts) > len(batches)
    assert all((headers.get("content-encoding") == "gzip") == gzip for _, headers, _ in posts)
    assert sink.in_flight_bytes == 0


def test_with_ack_a_batch_is_done_only_when_its_acks_read_true(ack_hec: FakeHec, dead_letter_path: str) -> None:
    ack_hec.auto_ack = False
    sink = make_sink(ack_hec, dead_letter_path, ack=True)
    done = Done()
    sink.send(make_batch(0, "c0", ["a", "b"]), done)
    assert ack_hec.wait_for(lambda h: len(h.events) == 2)
    assert ack_hec.wait_for(lambda h: sum(p[0].endswith("/ack") for p in h.posts) >= 2)  # polled, still false
    assert done.calls == []
    ack_hec.release_acks()
    assert done.wait_count(1)
    sink.close(5)
    assert done.calls == ["c0"]
    ack_posts = [json.loads(body) for path, _, body in ack_hec.posts if path.endswith("/ack")]
    assert all(post == {"acks": [0]} for post in ack_posts)


def test_ack_timeout_resends_and_the_batch_is_done_exactly_once(ack_hec: FakeHec, dead_letter_path: str) -> None:
    ack_hec.never_ack = {0}  # the first request's ack never comes
    sink = make_sink(ack_hec, dead_letter_path, ack=True, ack_timeout=0.3)
    done = Done()
    sink.send(make_batch(0, "c0", ["x"]), done)
    assert done.wait_count(1)
    assert ack_hec.wait_for(lambda h: len(h.event_posts()) == 2)  # sent, timed out, sent again
    sink.close(5)
    assert done.calls == ["c0"]
    assert ack_hec.event_values() == ["x", "x"]  # at-least-once: the resend duplicates


def test_busy_burst_then_success_loses_nothing(hec: FakeHec, dead_letter_path: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    hec.script(*[(503, {"text": "Server is busy", "code": 9})] * 6)
    sink = make_sink(hec, dead_letter_path)
    done = Done()
    batches = [make_batch(1, "c%d" % n, ["%d-%d" % (n, i) for i in range(5)]) for n in range(3)]
    with caplog.at_level(logging.INFO, logger="sls_forwarder"):
        for batch in batches:
            sink.send(batch, done)
        assert done.wait_count(3)
        sink.close(5)
    assert sorted(done.calls) == ["c0", "c1", "c2"]
    assert sorted(hec.event_values()) == sorted("%d-%d" % (n, i) for n in range(3) for i in range(5))
    retry_lines = [r for r in caplog.records if "action=hec_retry" in r.getMessage()]
    assert 1 <= len(retry_lines) < 6  # one line per streak, not one per retry
    assert "code=hec:9 status=503" in retry_lines[0].getMessage()
    assert any("action=hec_recovered" in r.getMessage() for r in caplog.records)
    assert read_dead_letters(dead_letter_path) == []


@pytest.mark.parametrize("named", [True, False], ids=["invalid-event-number", "bisect"])
def test_rejected_event_goes_to_dead_letter_alone_and_the_batch_completes(
        hec: FakeHec, dead_letter_path: str, named: bool, caplog: pytest.LogCaptureFixture) -> None:
    hec.reject_marker = "POISON"
    hec.name_invalid_event = named
    sink = make_sink(hec, dead_letter_path)
    done = Done()
    values = ["ok-%d" % i for i in range(11)]
    values[7] = "POISON"
    with caplog.at_level(logging.ERROR, logger="sls_forwarder"):
        sink.send(make_batch(4, "cur-9", values), done)
        assert done.wait_count(1)
        sink.close(5)
    assert done.calls == ["cur-9"]
    records = read_dead_letters(dead_letter_path)
    assert len(records) == 1
    record = records[0]
    assert (record["shard"], record["cursor"], record["event_index"], record["reason"]) == (4, "cur-9", 7, "rejected")
    assert (record["hec_code"], record["status"]) == ("hec:6", 400)
    assert json.loads(record["event"])["event"] == "POISON"
    assert "Invalid data format" in record["text"]
    assert set(hec.event_values()) == set(values) - {"POISON"}
    assert any("action=hec_dead_letter shard=4 cursor=cur-9 event_index=7" in r.getMessage() for r in caplog.records)


def test_oversized_event_is_dead_lettered_without_sending(hec: FakeHec, dead_letter_path: str) -> None:
    sink = make_sink(hec, dead_letter_path, max_event_size=100)
    done = Done()
    sink.send(make_batch(2, "big", ["small", "x" * 200, "also small"]), done)
    assert done.wait_count(1)
    sink.close(5)
    (record,) = read_dead_letters(dead_letter_path)
    assert (record["event_index"], record["reason"], record["hec_code"]) == (1, "too_large", "")
    assert json.loads(record["event"])["event"] == "x" * 200
    assert sorted(hec.event_values()) == ["also small", "small"]


def test_batch_of_only_oversized_events_and_empty_batch_complete(hec: FakeHec, dead_letter_path: str) -> None:
    sink = make_sink(hec, dead_letter_path, max_event_size=10)
    done = Done()
    sink.send(make_batch(0, "all-big", ["y" * 50]), done)
    sink.send(make_batch(0, "empty", []), done)
    assert done.wait_count(2)
    sink.close(5)
    assert sorted(done.calls) == ["all-big", "empty"]
    assert hec.event_posts() == []


def test_invalid_token_is_retried_slowly_and_logged_once_until_fixed(hec: FakeHec, dead_letter_path: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    hec.token = "the-new-token"
    reported: List[ConfigError] = []
    sink = make_sink(hec, dead_letter_path, reported.append, senders=2, token="s3cret-old-token")
    done = Done()
    with caplog.at_level(logging.INFO, logger="sls_forwarder"):
        sink.send(make_batch(0, "c0", ["a"]), done)
        sink.send(make_batch(1, "c1", ["b"]), done)
        assert hec.wait_for(lambda h: len(h.event_posts()) >= 6)
        assert done.calls == []
        hec.token = "s3cret-old-token"
        assert done.wait_count(2)
        assert [error.code for error in reported] == ["hec:4"]   # once per failure streak, not per retry or thread
        hec.token = "rotated-again"   # a second streak is reported again
        sink.send(make_batch(2, "c2", ["c"]), done)
        assert hec.wait_for(lambda h: len(reported) == 2)
        hec.token = "s3cret-old-token"
        assert done.wait_count(3)
        sink.close(5)
    config_lines = [r for r in caplog.records if "action=hec_config_error" in r.getMessage()]
    assert len(config_lines) == 2
    assert "code=hec:4" in config_lines[0].getMessage() and "s3cret" not in config_lines[0].getMessage()
    assert sorted(hec.event_values()) == ["a", "b", "c"]
    assert all(isinstance(error, ConfigError) for error in reported)


@pytest.mark.parametrize("status, reply, code, says", [
    (400, {"text": "Incorrect index", "code": 7, "invalid-event-number": 0}, "hec:7", "may not write to the index"),
    (407, {"text": "Proxy Authentication Required"}, "none", "proxy requires authentication"),
    (400, {"text": "Bad Request"}, "none", "without a HEC code"),
    (409, {}, "none", "without a HEC code"),
], ids=["code-7", "407", "400-no-code", "409-no-code"])
def test_configuration_rejections_are_retried_never_dead_lettered(
        hec: FakeHec, dead_letter_path: str, caplog: pytest.LogCaptureFixture, status: int, reply: Dict[str, Any],
        code: str, says: str) -> None:
    hec.script(*[(status, reply)] * 4)
    reported: List[ConfigError] = []
    sink = make_sink(hec, dead_letter_path, reported.append, senders=1)
    done = Done()
    values = ["v%d" % i for i in range(6)]
    with caplog.at_level(logging.INFO, logger="sls_forwarder"):
        sink.send(make_batch(3, "c3", values), done)
        assert done.wait_count(1)   # the fifth attempt is accepted
        sink.close(5)
    assert read_dead_letters(dead_letter_path) == []
    assert len(hec.event_posts()) == 5   # the whole body each time: nothing was split
    assert sorted(hec.event_values()) == values
    assert [(error.code or "none", error.status) for error in reported] == [(code, status)]
    (line,) = [r.getMessage() for r in caplog.records if "action=hec_config_error" in r.getMessage()]
    assert "code=%s status=%d" % (code, status) in line and says in line


def test_back_pressure_blocks_send_until_bytes_are_delivered(hec: FakeHec, dead_letter_path: str) -> None:
    first = make_batch(0, "first", ["a" * 300])
    second = make_batch(0, "second", ["b" * 300])
    sink = make_sink(hec, dead_letter_path, max_in_flight_bytes=first.event_bytes + 10)
    done = Done()
    hec.released.clear()  # the server holds every event request
    sink.send(first, done)
    returned = threading.Event()
    blocked = threading.Thread(target=lambda: (sink.send(second, done), returned.set()), daemon=True)
    blocked.start()
    assert hec.wait_for(lambda h: len(h.event_posts()) >= 1)
    assert not returned.wait(0.5)  # still blocked: the first batch is in flight
    assert sink.in_flight_bytes == first.event_bytes
    hec.released.set()
    assert returned.wait(10)
    assert done.wait_count(2)
    sink.close(5)
    assert done.calls == ["first", "second"]


def test_send_blocked_by_back_pressure_gives_up_on_stop(hec: FakeHec, dead_letter_path: str) -> None:
    stop = threading.Event()
    config = HecConfig(url=hec.url, token="tok", max_in_flight_bytes=10, **FAST)
    sink = HecSink(config, dead_letter_path, stop=stop, channel=HecChannel())
    done = Done()
    hec.released.clear()
    sink.send(make_batch(0, "first", ["a"]), done)
    returned = threading.Event()
    threading.Thread(target=lambda: (sink.send(make_batch(0, "second", ["b"]), done), returned.set()),
                     daemon=True).start()
    assert not returned.wait(0.3)
    stop.set()
    assert returned.wait(10)
    hec.released.set()
    assert done.wait_count(1)
    sink.close(5)
    assert done.calls == ["first"]  # the abandoned batch was never accepted, so never reported


def test_close_drains_in_flight_batches_before_returning(ack_hec: FakeHec, dead_letter_path: str) -> None:
    ack_hec.auto_ack = False
    sink = make_sink(ack_hec, dead_letter_path, ack=True)
    done = Done()
    for n in range(5):
        sink.send(make_batch(n, "c%d" % n, ["v%d" % n]), done)
    assert ack_hec.wait_for(lambda h: len(h.events) == 5)
    releaser = threading.Timer(0.3, ack_hec.release_acks)
    releaser.start()
    sink.close(15)
    releaser.join()
    assert sorted(done.calls) == ["c%d" % n for n in range(5)]
    assert sink.in_flight_bytes == 0


def test_close_never_reports_undelivered_batches(hec: FakeHec, dead_letter_path: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    hec.script(*[(503, {"text": "Server is busy", "code": 9})] * 10000)
    sink = make_sink(hec, dead_letter_path)
    done = Done()
    sink.send(make_batch(0, "stuck", ["a"]), done)
    assert hec.wait_for(lambda h: len(h.event_posts()) >= 2)
    with caplog.at_level(logging.WARNING, logger="sls_forwarder"):
        sink.close(0.3)
    assert done.calls == []
    assert any("action=hec_close_undelivered batches=1" in r.getMessage() for r in caplog.records)
    posts = len(hec.event_posts())
    time.sleep(0.2)
    assert len(hec.event_posts()) == posts  # the sender threads stopped retrying
    sink.send(make_batch(0, "late", ["b"]), done)  # refused after close
    assert done.calls == []


def test_many_shards_in_parallel_each_batch_done_once(ack_hec: FakeHec, dead_letter_path: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    sink = make_sink(ack_hec, dead_letter_path, ack=True, senders=3, max_content_length=1500,
                     max_in_flight_bytes=20000)
    done = Done()
    expected: Counter = Counter()

    def shard(shard_id: int) -> None:
        for n in range(10):
            values = ["%d-%d-%d" % (shard_id, n, i) for i in range(30)]
            expected.update(values)
            sink.send(make_batch(shard_id, "%d-%d" % (shard_id, n), values), done)

    threads = [threading.Thread(target=shard, args=(s,)) for s in range(4)]
    with caplog.at_level(logging.WARNING, logger="sls_forwarder"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert done.wait_count(40)
        sink.close(10)
    assert Counter(done.calls) == Counter("%d-%d" % (s, n) for s in range(4) for n in range(10))
    assert Counter(ack_hec.event_values()) == expected   # exactly once: concurrent replies read out of order
    assert not any("action=hec_ack_channel_reset" in r.getMessage() for r in caplog.records)  # are not a reset


def test_ack_on_but_token_without_ack_counts_accepted_requests_as_delivered(
        hec: FakeHec, dead_letter_path: str, caplog: pytest.LogCaptureFixture) -> None:
    sink = make_sink(hec, dead_letter_path, ack=True)
    done = Done()
    with caplog.at_level(logging.WARNING, logger="sls_forwarder"):
        sink.send(make_batch(0, "c0", ["a"]), done)
        sink.send(make_batch(0, "c1", ["b"]), done)
        assert done.wait_count(2)
        sink.close(5)
    assert sum("action=hec_no_ack_id" in r.getMessage() for r in caplog.records) == 1
    assert sorted(hec.event_values()) == ["a", "b"]
