"""StreamSink: one write + flush per batch, done only after the flush, broken stdout stops everything."""

from __future__ import annotations

import io
import os
import threading
import xml.etree.ElementTree as ET
from typing import List

import pytest

from sls_forwarder.batch import ShardBatch
from sls_forwarder.splunk.stream_writer import StreamSink


class RecordingStream(io.RawIOBase):
    """A binary stream that logs writes, flushes and (through ``note``) callbacks in order."""

    def __init__(self, fail_with: BaseException = None) -> None:
        super().__init__()
        self.log: List[object] = []
        self.data = bytearray()
        self.fail_with = fail_with

    def writable(self) -> bool:
        return True

    def write(self, payload: bytes) -> int:
        if self.fail_with is not None:
            raise self.fail_with
        self.log.append(("write", bytes(payload)))
        self.data += payload
        return len(payload)

    def flush(self) -> None:
        self.log.append("flush")

    def note(self, batch: ShardBatch) -> None:
        self.log.append(("done", batch.cursor))


def _event(text: str) -> bytes:
    return b'<event unbroken="1"><data>' + text.encode() + b"</data><done/></event>"


def _batch(cursor: str, *texts: str) -> ShardBatch:
    return ShardBatch(shard_id=1, cursor=cursor, next_cursor=cursor + "+", events=[_event(t) for t in texts])


def test_each_batch_is_one_write_then_flush_then_done() -> None:
    out = RecordingStream()
    sink = StreamSink(out)
    sink.send(_batch("c1", "a", "b"), out.note)
    sink.send(_batch("c2", "c"), out.note)
    sink.close(1.0)
    assert out.log == [
        ("write", b"<stream>" + _event("a") + _event("b")), "flush", ("done", "c1"),
        ("write", _event("c")), "flush", ("done", "c2"),
        ("write", b"</stream>"), "flush",
    ]
    assert [e.findtext("data") for e in ET.fromstring(bytes(out.data))] == ["a", "b", "c"]


def test_empty_batch_is_done_without_writing() -> None:
    out = RecordingStream()
    sink = StreamSink(out)
    sink.send(_batch("c1"), out.note)
    sink.close(1.0)
    assert out.log == [("done", "c1")]


def test_concurrent_batches_stay_contiguous_and_all_arrive() -> None:
    out = RecordingStream()
    sink = StreamSink(out)
    done: List[str] = []
    done_lock = threading.Lock()

    def on_done(batch: ShardBatch) -> None:
        with done_lock:
            done.append(batch.cursor)

    def shard(shard_id: int) -> None:
        for n in range(50):
            sink.send(_batch("%d-%d" % (shard_id, n), *["%d-%d-%d" % (shard_id, n, i) for i in range(5)]), on_done)

    threads = [threading.Thread(target=shard, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    sink.close(1.0)
    assert sorted(done) == sorted("%d-%d" % (s, n) for s in range(4) for n in range(50))
    texts = [e.findtext("data") for e in ET.fromstring(bytes(out.data))]
    assert len(texts) == 4 * 50 * 5
    for start in range(0, len(texts), 5):  # every batch's 5 events are adjacent and in order
        prefix = texts[start].rsplit("-", 1)[0]
        assert texts[start:start + 5] == ["%s-%d" % (prefix, i) for i in range(5)]


def test_broken_stdout_reports_nothing_sets_stop_and_keeps_failing() -> None:
    out = RecordingStream(fail_with=BrokenPipeError(32, "Broken pipe"))
    stop = threading.Event()
    sink = StreamSink(out, stop)
    with pytest.raises(BrokenPipeError):
        sink.send(_batch("c1", "a"), out.note)
    assert stop.is_set()
    with pytest.raises(OSError, match="broken"):
        sink.send(_batch("c2", "b"), out.note)
    sink.close(1.0)
    assert out.log == []


def test_real_pipe_whose_reader_went_away() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    stop = threading.Event()
    done: List[ShardBatch] = []
    with open(write_fd, "wb", buffering=0) as out:
        sink = StreamSink(out, stop)
        with pytest.raises(BrokenPipeError):
            sink.send(_batch("c1", "a"), done.append)
        sink.close(1.0)
    assert done == [] and stop.is_set()


def test_close_without_output_writes_nothing_and_later_send_is_refused() -> None:
    out = RecordingStream()
    sink = StreamSink(out)
    sink.close(1.0)
    sink.close(1.0)
    assert out.log == []
    with pytest.raises(RuntimeError, match="closed"):
        sink.send(_batch("c1", "a"), out.note)
    assert out.log == []
