"""workers = N: the control-channel framing, the worker's relay sink, and the supervisor's relay, restart and stop
logic, the last with small fake worker processes built on the real SupervisorLink and RelaySink."""

import io
import logging
import os
import re
import signal
import sys
import textwrap
import threading
from typing import List

import pytest

from sls_forwarder.batch import ShardBatch
from sls_forwarder.splunk.stream_writer import StreamSink
from sls_forwarder.workers import (KIND_ACK, KIND_EVENTS, KIND_INIT, KIND_STOP, MAX_FRAME_BYTES, ChannelError, Frame,
                                   RelaySink, Supervisor, SupervisorLink, SupervisorOptions, chunk_events,
                                   read_frame, write_frame)
from tests.unit.fakes import wait_for

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "package", "bin")
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")


# ---------------------------------------------------------------- framing

def test_frames_round_trip_and_end_cleanly_between_frames():
    stream = io.BytesIO()
    write_frame(stream, KIND_INIT, 0, b'{"a": 1}')
    write_frame(stream, KIND_EVENTS, 2 ** 40, b"x" * 70000)
    write_frame(stream, KIND_STOP)
    stream.seek(0)
    assert read_frame(stream) == Frame(KIND_INIT, 0, b'{"a": 1}')
    assert read_frame(stream) == Frame(KIND_EVENTS, 2 ** 40, b"x" * 70000)
    assert read_frame(stream) == Frame(KIND_STOP, 0, b"")
    assert read_frame(stream) is None


class TrickleWriter(io.RawIOBase):
    """Accepts at most 3 bytes per write, as an unbuffered pipe may."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, chunk):
        taken = bytes(chunk[:3])
        self.data.extend(taken)
        return len(taken)


def test_partial_writes_are_completed():
    writer = TrickleWriter()
    write_frame(writer, KIND_EVENTS, 7, b"0123456789")
    assert read_frame(io.BytesIO(bytes(writer.data))) == Frame(KIND_EVENTS, 7, b"0123456789")


@pytest.mark.parametrize("cut", [1, 12, 14], ids=["in-header", "end-of-header", "in-payload"])
def test_a_stream_ending_inside_a_frame_is_a_channel_error(cut):
    stream = io.BytesIO()
    write_frame(stream, KIND_EVENTS, 1, b"abcdef")
    with pytest.raises(ChannelError):
        read_frame(io.BytesIO(stream.getvalue()[:cut]))


def test_unknown_kinds_and_oversized_lengths_are_rejected():
    with pytest.raises(ChannelError, match="kind"):
        read_frame(io.BytesIO(b"Z" + b"\0" * 12))
    header = KIND_EVENTS + (1).to_bytes(8, "big") + (MAX_FRAME_BYTES + 1).to_bytes(4, "big")
    with pytest.raises(ChannelError, match="exceeds"):
        read_frame(io.BytesIO(header))
    with pytest.raises(ValueError):
        write_frame(io.BytesIO(), b"Z")


def test_events_are_chunked_whole_and_an_oversized_event_stands_alone():
    events = [b"a" * 4, b"b" * 4, b"c" * 12, b"d" * 3, b"e" * 3]
    assert chunk_events(events, limit=10) == [b"a" * 4 + b"b" * 4, b"c" * 12, b"d" * 3 + b"e" * 3]
    assert b"".join(chunk_events(events, limit=1)) == b"".join(events)
    with pytest.raises(ValueError, match="exceeds"):
        chunk_events([b"x" * (MAX_FRAME_BYTES + 1)])


# ---------------------------------------------------------------- worker side: link and relay sink

class FakeSupervisor:
    """The supervisor's end of an in-process channel: collects event frames, acknowledges on request."""

    def __init__(self):
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        self.link = SupervisorLink(open(to_worker_r, "rb", buffering=0), open(from_worker_w, "wb", buffering=0))
        self._to_worker = open(to_worker_w, "wb", buffering=0)
        self._from_worker = open(from_worker_r, "rb", buffering=0)
        self.frames: List[Frame] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while True:
            try:
                frame = read_frame(self._from_worker)
            except (OSError, ValueError):
                frame = None
            with self._changed:
                if frame is None:
                    return
                self.frames.append(frame)
                self._changed.notify_all()

    def wait_frames(self, count):
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.frames) >= count, timeout=10), self.frames
            return list(self.frames)

    def send(self, kind, frame_id=0, payload=b""):
        write_frame(self._to_worker, kind, frame_id, payload)

    def ack_all(self):
        for frame in list(self.frames):
            self.send(KIND_ACK, frame.frame_id)

    def hang_up(self):
        self._to_worker.close()

    def close(self):
        for stream in (self._to_worker, self._from_worker):
            if not stream.closed:
                stream.close()


@pytest.fixture
def supervisor_end():
    fake = FakeSupervisor()
    yield fake
    fake.close()


def batch(shard, name, events):
    return ShardBatch(shard, name, name + "-next", list(events))


def test_init_definition_is_read_and_validated(supervisor_end):
    supervisor_end.send(KIND_INIT, 0, b'{"stanza": "aliyun_sls://a", "params": {"__worker": "1"}, "metadata": {}}')
    assert supervisor_end.link.read_init()["params"] == {"__worker": "1"}
    supervisor_end.send(KIND_INIT, 0, b'{"stanza": "x"}')
    with pytest.raises(ChannelError, match="lacks"):
        supervisor_end.link.read_init()


def test_a_batch_is_done_only_after_every_frame_is_acknowledged(supervisor_end):
    stop = threading.Event()
    supervisor_end.link.start(stop)
    sink = RelaySink(supervisor_end.link, frame_bytes=8)
    done = []
    sink.send(batch(0, "c1", [b"<e1>", b"<e2>", b"<e3456789>"]), done.append)
    frames = supervisor_end.wait_frames(2)
    assert [f.payload for f in frames] == [b"<e1><e2>", b"<e3456789>"]
    assert {f.kind for f in frames} == {KIND_EVENTS}
    supervisor_end.send(KIND_ACK, frames[0].frame_id)
    supervisor_end.send(KIND_ACK, 999)  # unknown ids are ignored
    assert not wait_for(lambda: done, timeout=0.3)
    supervisor_end.send(KIND_ACK, frames[1].frame_id)
    assert wait_for(lambda: [b.cursor for b in done] == ["c1"])
    sink.close(5)
    assert not stop.is_set()


def test_an_empty_batch_is_done_without_a_frame(supervisor_end):
    sink = RelaySink(supervisor_end.link)
    done = []
    sink.send(batch(0, "empty", []), done.append)
    assert len(done) == 1 and supervisor_end.frames == []


def test_stop_request_sets_stop_and_acks_still_complete_the_drain(supervisor_end):
    stop = threading.Event()
    supervisor_end.link.start(stop)
    sink = RelaySink(supervisor_end.link)
    done = []
    sink.send(batch(1, "c1", [b"<e/>"]), done.append)
    supervisor_end.wait_frames(1)
    supervisor_end.send(KIND_STOP)
    assert stop.wait(5)
    closer = threading.Thread(target=sink.close, args=(10,))
    closer.start()
    supervisor_end.ack_all()
    closer.join(10)
    assert not closer.is_alive() and [b.cursor for b in done] == ["c1"]
    with pytest.raises(RuntimeError, match="closed"):
        sink.send(batch(1, "c2", [b"<e/>"]), done.append)


def test_supervisor_gone_sets_stop_and_leaves_unacknowledged_batches_undone(supervisor_end, caplog):
    stop = threading.Event()
    supervisor_end.link.start(stop)
    sink = RelaySink(supervisor_end.link)
    done = []
    sink.send(batch(2, "c1", [b"<e/>"]), done.append)
    supervisor_end.wait_frames(1)
    with caplog.at_level(logging.WARNING, logger="sls_forwarder.workers"):
        supervisor_end.hang_up()
        assert stop.wait(5)
        assert wait_for(supervisor_end.link.lost.is_set)
    with pytest.raises(OSError):
        sink.send(batch(2, "c2", [b"<e/>"]), done.append)
    sink.close(5)  # returns at once: nothing can be acknowledged any more
    assert done == []
    assert any("action=supervisor_channel_closed" in r.getMessage() and "unacknowledged_frames=1" in r.getMessage()
               for r in caplog.records)


def test_close_gives_up_after_its_timeout_without_reporting_undelivered_batches(supervisor_end):
    supervisor_end.link.start(threading.Event())
    sink = RelaySink(supervisor_end.link)
    done = []
    sink.send(batch(0, "c1", [b"<e/>"]), done.append)
    sink.close(0.3)
    assert done == []


def test_send_waits_while_the_window_is_full(supervisor_end):
    supervisor_end.link.start(threading.Event())
    sink = RelaySink(supervisor_end.link, frame_bytes=100, window_bytes=100)
    done = []
    sink.send(batch(0, "c1", [b"x" * 80]), done.append)
    second = threading.Thread(target=sink.send, args=(batch(0, "c2", [b"y" * 80]), done.append))
    second.start()
    assert not wait_for(lambda: len(supervisor_end.frames) > 1, timeout=0.3), "sent past the window"
    supervisor_end.send(KIND_ACK, supervisor_end.wait_frames(1)[0].frame_id)
    frames = supervisor_end.wait_frames(2)
    second.join(5)
    supervisor_end.send(KIND_ACK, frames[1].frame_id)
    assert wait_for(lambda: [b.cursor for b in done] == ["c1", "c2"])


# ---------------------------------------------------------------- supervisor with fake workers

FAKE_WORKER = textwrap.dedent("""
    import os, signal, sys, threading, time
    sys.path.insert(0, sys.argv[1])
    from sls_forwarder.batch import ShardBatch
    from sls_forwarder.workers import RelaySink, SupervisorLink

    link = SupervisorLink.from_stdio()
    params = link.read_init()["params"]
    index = int(params["__worker"])
    mode = params.get("mode", "send")
    if mode == "crash":
        sys.exit(3)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else (lambda *_: stop.set()))
    link.start(stop)
    print("stray output must go to stderr, not into the channel", flush=True)
    open(os.path.join(params["out_dir"], "ready-%d-%d" % (index, os.getpid())), "w").close()
    sink = RelaySink(link, frame_bytes=64)
    done_path = os.path.join(params["out_dir"], "done-%d-%d" % (index, os.getpid()))

    def on_done(batch):
        with open(done_path, "a") as handle:
            handle.write(batch.cursor + "\\n")

    for number in range(int(params.get("batches", 3))):
        events = [b"<event><data>w%d-b%d-e%d</data><done/></event>" % (index, number, e) for e in range(4)]
        sink.send(ShardBatch(index, "w%d-b%d" % (index, number), "", events), on_done)
    if mode == "stubborn":
        while True:
            time.sleep(1)
    stop.wait()
    sink.close(10)
    with open(os.path.join(params["out_dir"], "stopped-%d-%d" % (index, os.getpid())), "w"):
        pass
""")


class RecordingOut(io.BytesIO):
    """The supervisor's stdout; ``flush_gate`` can hold flushes back."""

    def __init__(self):
        super().__init__()
        self.flush_gate = threading.Event()
        self.flush_gate.set()

    def flush(self):
        assert self.flush_gate.wait(30)
        super().flush()


class SupervisorRun:
    def __init__(self, tmp_path, workers=2, delivery="stream", **params):
        self.out_dir = tmp_path
        script = tmp_path / "fake_worker.py"
        script.write_text(FAKE_WORKER)
        self.out = RecordingOut()
        self.stop = threading.Event()
        self.sink = StreamSink(self.out, self.stop) if delivery == "stream" else None
        self.params = dict(params, out_dir=str(tmp_path))
        options = SupervisorOptions(workers=workers, command=(sys.executable, str(script), BIN), shutdown_timeout=5,
                                    kill_margin=1, restart_initial=0.1, restart_cap=0.4, stable_after=60,
                                    poll_interval=0.05)
        self.supervisor = Supervisor(options, self.definition, self.sink, self.stop)
        self.result = {}
        self.thread = threading.Thread(target=lambda: self.result.setdefault("code", self.supervisor.run()))

    def definition(self, index):
        return {"stanza": "aliyun_sls://fake", "params": dict(self.params, __worker=str(index)), "metadata": {}}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "supervisor did not stop"

    def done(self, index=None):
        names = []
        for path in sorted(self.out_dir.glob("done-*")):
            if index is None or path.name.startswith("done-%d-" % index):
                names.extend(path.read_text().split())
        return names

    def files(self, prefix):
        return sorted(path.name for path in self.out_dir.glob(prefix + "*"))

    def stream_text(self):
        return self.out.getvalue().decode()


def event_data(text):
    return re.findall(r"<data>([^<]*)</data>", text)


def test_workers_relay_into_one_stream_and_every_batch_is_acknowledged(tmp_path):
    with SupervisorRun(tmp_path, workers=2, batches=5) as run:
        assert wait_for(lambda: len(run.done()) == 10, timeout=30), run.done()
    assert run.result == {"code": 0}
    text = run.stream_text()
    assert text.startswith("<stream>") and text.endswith("</stream>") and text.count("<stream>") == 1
    data = event_data(text)
    expected = {"w%d-b%d-e%d" % (w, b, e) for w in range(2) for b in range(5) for e in range(4)}
    assert sorted(data) == sorted(expected), "each event exactly once"
    for worker in range(2):  # within one worker, the stream keeps batch order
        mine = [d for d in data if d.startswith("w%d-" % worker)]
        assert mine == sorted(mine, key=lambda d: tuple(int(x[1:]) for x in d.split("-")))
    assert "stray output" not in text
    assert len(run.files("stopped-")) == 2, "both workers drained and exited on the stop request"


def test_a_batch_is_acknowledged_only_after_the_supervisor_flushed_it(tmp_path):
    run = SupervisorRun(tmp_path, workers=1, batches=1)
    run.out.flush_gate.clear()
    with run:
        # One event per frame (frame_bytes=64): the first frame is written and its flush is held.
        assert wait_for(lambda: b"w0-b0-e0" in run.out.getvalue(), timeout=20)
        assert not wait_for(run.done, timeout=0.5), "acknowledged before the flush"
        run.out.flush_gate.set()
        assert wait_for(lambda: run.done() == ["w0-b0"], timeout=20)


@posix_only
def test_a_killed_worker_is_restarted_and_the_others_keep_running(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="sls_forwarder.workers"):
        with SupervisorRun(tmp_path, workers=2, batches=2) as run:
            assert wait_for(lambda: len(run.supervisor.pids()) == 2 and len(run.done()) == 4, timeout=30)
            before = run.supervisor.pids()
            os.kill(before[1], signal.SIGKILL)
            assert wait_for(lambda: run.supervisor.pids().get(1, before[1]) != before[1], timeout=30)
            after = run.supervisor.pids()
            assert after[0] == before[0]
            assert wait_for(lambda: len(run.done(1)) == 4, timeout=30), "the new worker 1 relays again"
    exited = [r.getMessage() for r in caplog.records if "action=worker_exited" in r.getMessage()]
    assert len(exited) == 1 and "worker=1 pid=%d returncode=-9" % before[1] in exited[0]
    assert run.result == {"code": 0}


def test_a_crashing_worker_is_restarted_with_capped_growing_delays(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="sls_forwarder.workers"):
        with SupervisorRun(tmp_path, workers=1, mode="crash") as run:
            assert wait_for(lambda: sum("action=worker_exited" in r.getMessage() for r in caplog.records) >= 5,
                            timeout=30)
    delays = [float(re.search(r"restart_in_seconds=([\d.]+)", r.getMessage()).group(1))
              for r in caplog.records if "action=worker_exited" in r.getMessage()]
    assert all("returncode=3" in r.getMessage() for r in caplog.records if "action=worker_exited" in r.getMessage())
    assert delays[0] <= 0.1 * 1.2 + 0.05
    assert max(delays) <= 0.4 and delays[-1] >= 0.4 * 0.8 - 0.05, delays
    assert run.result == {"code": 0}


@posix_only
def test_a_worker_ignoring_the_stop_is_killed_after_the_grace_period(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="sls_forwarder.workers"):
        with SupervisorRun(tmp_path, workers=1, batches=1, mode="stubborn") as run:
            assert wait_for(lambda: run.done() == ["w0-b0"], timeout=30)
            pid = run.supervisor.pids()[0]
    assert run.result == {"code": 0}
    assert any("action=worker_killed worker=0 pid=%d" % pid in r.getMessage() for r in caplog.records)
    with pytest.raises(OSError):
        os.kill(pid, 0)  # gone (and reaped)


def test_hec_mode_supervises_without_a_stream(tmp_path):
    with SupervisorRun(tmp_path, workers=2, delivery="hec", batches=0) as run:
        assert wait_for(lambda: len(run.files("ready-")) == 2, timeout=30)
    assert run.result == {"code": 0}
    assert run.out.getvalue() == b""
    assert len(run.files("stopped-")) == 2


def test_a_worker_sending_garbage_is_killed_and_restarted(tmp_path, caplog):
    garbage = tmp_path / "garbage.py"
    garbage.write_text("import sys\nsys.stdin.buffer.read(13)\nsys.stdout.buffer.write(b'Q' * 13)\n"
                       "sys.stdout.buffer.flush()\nimport time\ntime.sleep(60)\n")
    stop = threading.Event()
    options = SupervisorOptions(workers=1, command=(sys.executable, str(garbage)), shutdown_timeout=1,
                                kill_margin=1, restart_initial=5, restart_cap=5, poll_interval=0.05)
    supervisor = Supervisor(options, lambda i: {"stanza": "s", "params": {}, "metadata": {}},
                            StreamSink(io.BytesIO(), stop), stop)
    with caplog.at_level(logging.WARNING, logger="sls_forwarder.workers"):
        thread = threading.Thread(target=supervisor.run)
        thread.start()
        try:
            assert wait_for(lambda: any("action=worker_exited" in r.getMessage() for r in caplog.records),
                            timeout=30)
        finally:
            stop.set()
            thread.join(30)
    assert any("action=worker_protocol_error" in r.getMessage() for r in caplog.records)
