"""``workers = N``: one input consumed by N processes in the same consumer group, so it can use N cores.

The process splunkd launched becomes a supervisor. It starts N copies of ``bin/aliyun_sls_worker.py`` with
``sys.executable`` (a plain subprocess, no fork, so Windows works too). Worker ``i`` consumes as
``<group>-<server>-<input>-<i>``: stable across restarts, so a restarted worker reclaims its own shards at once.

Each worker's stdin and stdout are a private control channel to the supervisor. Every message is a frame::

    kind (1 byte) | frame id (8 bytes, big endian) | payload length (4 bytes, big endian) | payload

- supervisor -> worker: ``I`` once (JSON: stanza, params, metadata), then ``A <id>`` acknowledgements and ``S``
  (stop gracefully).
- worker -> supervisor: ``E <id>`` with whole stream ``<event>`` elements (delivery = stream only).

Stream delivery goes through the supervisor, since splunkd reads only its stdout. The worker's ``RelaySink`` frames
each batch; the supervisor writes the frame into its one ``<stream>`` (``StreamSink``), flushes, and only then
acknowledges it. A batch counts as delivered when all its frames are acknowledged, so a worker never checkpoints
data the supervisor had not handed to splunkd. The supervisor reads one frame per worker at a time, and a frame
holds at most ``RELAY_FRAME_BYTES`` of events unless a single event is larger (never above ``MAX_FRAME_BYTES``), so
it holds a bounded number of bytes per worker. With delivery = hec the workers post directly; the channel then only
carries the stop request, and its end of file tells a worker that its supervisor is gone.

Stopping: on SIGTERM (or orphaning) the supervisor sends each worker ``S`` plus SIGTERM (POSIX) or CTRL_BREAK_EVENT
(Windows), keeps relaying and acknowledging while they drain and commit, kills any still running after
``shutdown_timeout`` plus a margin, closes the stream and exits 0. A worker stops on SIGTERM, on ``S``, when its
parent pid changes (the runtime's orphan watch) and when the channel reaches end of file or breaks.

Logging: each worker logs to its own ``ta-aliyun-sls_<input>-<i>.log``; the supervisor to ``ta-aliyun-sls_<input>.log``.
One file per process, because ``RotatingFileHandler`` cannot rotate a file that another process holds open (Windows)
and loses lines when several processes rotate the same file (POSIX).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Sequence

from .backoff import Backoff
from .batch import ShardBatch

if TYPE_CHECKING:
    from .config import InputConfig
    from .pipeline import EventSink

__all__ = ["ChannelError", "Frame", "write_frame", "read_frame", "chunk_events", "SupervisorLink", "RelaySink",
           "SupervisorOptions", "Supervisor", "supervise", "worker_script"]

logger = logging.getLogger("sls_forwarder.workers")

KIND_INIT = b"I"
KIND_ACK = b"A"
KIND_STOP = b"S"
KIND_EVENTS = b"E"
_KINDS = (KIND_INIT, KIND_ACK, KIND_STOP, KIND_EVENTS)
_HEADER = struct.Struct(">cQI")

# Target size of one relayed frame: small enough that the supervisor holds little, big enough to amortise a write.
RELAY_FRAME_BYTES = 1 << 20
# Largest frame either side accepts. An SLS log group is at most a few MB raw, so one shaped event stays far below.
MAX_FRAME_BYTES = 64 << 20
# Unacknowledged bytes a worker may have on the channel before ``send`` waits (back-pressure).
RELAY_WINDOW_BYTES = 8 << 20
WORKER_SCRIPT = "aliyun_sls_worker.py"


class ChannelError(Exception):
    """The control channel carried something that is not a valid frame (or ended inside one)."""


@dataclass(frozen=True)
class Frame:
    """One message on the control channel."""

    kind: bytes
    frame_id: int = 0
    payload: bytes = b""


def write_frame(stream: BinaryIO, kind: bytes, frame_id: int = 0, payload: bytes = b"") -> None:
    """Write one frame completely (unbuffered streams may accept part of a write) and flush it.

    Raises:
        ValueError: Unknown kind or payload over ``MAX_FRAME_BYTES``; also when ``stream`` is closed.
        OSError: The other end is gone (BrokenPipeError).
    """
    if kind not in _KINDS:
        raise ValueError("unknown frame kind %r" % (kind,))
    if len(payload) > MAX_FRAME_BYTES:
        raise ValueError("frame payload of %d bytes exceeds the limit of %d" % (len(payload), MAX_FRAME_BYTES))
    view = memoryview(_HEADER.pack(kind, frame_id, len(payload)) + payload)
    while view:
        written = stream.write(view)
        if written is None:  # a non-blocking stream that would block; the channel's streams are blocking
            raise OSError("control channel write would block")
        view = view[written:]
    stream.flush()


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    """Read exactly ``size`` bytes; fewer only at end of file."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not count:
            break
        got += count
    return bytes(buffer[:got]) if got < size else bytes(buffer)


def read_frame(stream: BinaryIO) -> Optional[Frame]:
    """Read the next frame.

    Returns:
        The frame, or None at a clean end of file (between frames).

    Raises:
        ChannelError: End of file inside a frame, an unknown kind, or a length over ``MAX_FRAME_BYTES``.
        OSError: Reading failed.
    """
    header = _read_exact(stream, _HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise ChannelError("control channel ended inside a frame header")
    kind, frame_id, length = _HEADER.unpack(header)
    if kind not in _KINDS:
        raise ChannelError("unknown frame kind %r" % (kind,))
    if length > MAX_FRAME_BYTES:
        raise ChannelError("frame of %d bytes exceeds the limit of %d" % (length, MAX_FRAME_BYTES))
    payload = _read_exact(stream, length) if length else b""
    if len(payload) < length:
        raise ChannelError("control channel ended inside a frame (%d of %d bytes)" % (len(payload), length))
    return Frame(kind, frame_id, payload)


def chunk_events(events: Sequence[bytes], limit: int = RELAY_FRAME_BYTES) -> List[bytes]:
    """Join whole events into payloads of at most ``limit`` bytes; an event larger than ``limit`` stands alone.

    Raises:
        ValueError: An event is larger than ``MAX_FRAME_BYTES`` and cannot be relayed.
    """
    payloads: List[bytes] = []
    current: List[bytes] = []
    size = 0
    for event in events:
        if len(event) > MAX_FRAME_BYTES:
            raise ValueError("an event of %d bytes exceeds the worker relay's limit of %d bytes"
                             % (len(event), MAX_FRAME_BYTES))
        if current and size + len(event) > limit:
            payloads.append(b"".join(current))
            current, size = [], 0
        current.append(event)
        size += len(event)
    if current:
        payloads.append(b"".join(current))
    return payloads


# ---------------------------------------------------------------------------------------------------------------
# Worker side


class SupervisorLink:
    """A worker's end of the control channel: reads the definition, sends event frames, receives acks and stop.

    Arguments:
        reader: Unbuffered binary stream from the supervisor (the worker's stdin).
        writer: Unbuffered binary stream to the supervisor (the worker's original stdout).
    """

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self._reader = reader
        self._writer = writer
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._on_ack: Dict[int, Callable[[], None]] = {}
        self._next_id = 1
        self._thread: Optional[threading.Thread] = None
        self.lost = threading.Event()

    @classmethod
    def from_stdio(cls) -> "SupervisorLink":
        """Take stdin and stdout for the channel, and point fd 1 (``print``, stray library output) at stderr so
        nothing but frames can ever reach the supervisor."""
        channel_out = os.dup(1)
        os.dup2(2, 1)
        return cls(open(0, "rb", buffering=0, closefd=False), open(channel_out, "wb", buffering=0))

    def read_init(self) -> Dict[str, Any]:
        """Read the definition the supervisor sends first.

        Returns:
            ``{"stanza": str, "params": dict, "metadata": dict}``.

        Raises:
            ChannelError: The first frame is missing or is not a valid definition.
        """
        frame = read_frame(self._reader)
        if frame is None or frame.kind != KIND_INIT:
            raise ChannelError("expected the input definition from the supervisor, got %r"
                               % (frame.kind if frame else "end of file",))
        try:
            definition = json.loads(frame.payload.decode("utf-8"))
        except ValueError as err:
            raise ChannelError("the input definition is not JSON: %s" % err) from None
        if not isinstance(definition, dict) or not {"stanza", "params", "metadata"} <= set(definition):
            raise ChannelError("the input definition lacks stanza, params or metadata")
        return definition

    def start(self, stop: threading.Event) -> None:
        """Listen for acks and stop requests; set ``stop`` on a stop request and when the channel ends or breaks."""
        self._thread = threading.Thread(target=self._listen, args=(stop,), name="supervisor-link", daemon=True)
        self._thread.start()

    def send_events(self, payload: bytes, on_ack: Callable[[], None]) -> None:
        """Send one frame of events; ``on_ack`` runs (on the listener thread) once the supervisor has flushed it.

        Raises:
            OSError: The channel is lost; ``on_ack`` will never run.
        """
        if self.lost.is_set():
            raise OSError("the supervisor is gone; events cannot be relayed")
        with self._lock:
            frame_id = self._next_id
            self._next_id += 1
            self._on_ack[frame_id] = on_ack
        try:
            with self._write_lock:
                write_frame(self._writer, KIND_EVENTS, frame_id, payload)
        except (OSError, ValueError) as err:
            self._lose("write failed: %s" % type(err).__name__)
            raise OSError("the supervisor is gone; events cannot be relayed") from err

    def _listen(self, stop: threading.Event) -> None:
        reason = "end of file"
        try:
            while True:
                frame = read_frame(self._reader)
                if frame is None:
                    break
                if frame.kind == KIND_ACK:
                    with self._lock:
                        on_ack = self._on_ack.pop(frame.frame_id, None)
                    if on_ack is not None:
                        try:
                            on_ack()
                        except Exception:  # a bug after delivery: keep listening, or every later ack is lost too
                            logger.exception("action=relay_ack_callback_failed frame=%d", frame.frame_id)
                elif frame.kind == KIND_STOP:
                    logger.info("action=worker_stop_requested pid=%d", os.getpid())
                    stop.set()  # keep listening: the drain needs the acks that are still to come
                else:
                    raise ChannelError("unexpected frame kind %r from the supervisor" % (frame.kind,))
        except (ChannelError, OSError, ValueError) as err:
            reason = str(err)
        self._lose(reason)
        stop.set()

    def _lose(self, reason: str) -> None:
        """The supervisor is gone: unacknowledged frames stay undelivered (their batches are never done)."""
        with self._lock:
            if self.lost.is_set():
                return
            self.lost.set()
            unacknowledged = len(self._on_ack)
            self._on_ack.clear()
        logger.warning("action=supervisor_channel_closed reason=\"%s\" unacknowledged_frames=%d message=\"the "
                       "supervisor is gone; stopping without committing what it did not confirm\"", reason,
                       unacknowledged)


class _RelayedBatch:
    """A batch on its way through the supervisor: done when its last frame is acknowledged."""

    __slots__ = ("batch", "on_done", "frames_left", "size")

    def __init__(self, batch: ShardBatch, on_done: Callable[[ShardBatch], None], frames: int, size: int) -> None:
        self.batch = batch
        self.on_done = on_done
        self.frames_left = frames
        self.size = size


class RelaySink:
    """The EventSink of a stream-mode worker: batches go to the supervisor, which writes them to splunkd.

    ``on_done(batch)`` runs once every frame of the batch is acknowledged, i.e. after the supervisor has flushed
    it into its stdout. Thread-safe. ``send`` waits while more than ``window_bytes`` are unacknowledged.

    Arguments:
        link: The worker's SupervisorLink (started).
        frame_bytes: Target frame size (see ``chunk_events``).
        window_bytes: Unacknowledged bytes allowed before ``send`` waits.
    """

    def __init__(self, link: SupervisorLink, frame_bytes: int = RELAY_FRAME_BYTES,
                 window_bytes: int = RELAY_WINDOW_BYTES) -> None:
        self._link = link
        self._frame_bytes = frame_bytes
        self._window_bytes = window_bytes
        self._state = threading.Condition()
        self._in_flight_bytes = 0
        self._in_flight_batches = 0
        self._closed = False

    def send(self, batch: ShardBatch, on_done: Callable[[ShardBatch], None]) -> None:
        """Relay ``batch``; ``on_done`` follows the supervisor's acknowledgement of its last frame.

        Raises:
            OSError: The supervisor is gone; the batch is not done.
            RuntimeError: The sink is closed.
            ValueError: An event is too large to relay.
        """
        if not batch.events:
            on_done(batch)
            return
        payloads = chunk_events(batch.events, self._frame_bytes)
        size = sum(len(payload) for payload in payloads)
        with self._state:
            while (not self._closed and not self._link.lost.is_set() and self._in_flight_bytes
                   and self._in_flight_bytes + size > self._window_bytes):
                self._state.wait(0.2)  # the link may be lost without notifying this condition
            if self._closed:
                raise RuntimeError("relay sink is closed; batch shard=%d cursor=%s was not sent"
                                   % (batch.shard_id, batch.cursor))
            self._in_flight_bytes += size
            self._in_flight_batches += 1
        relayed = _RelayedBatch(batch, on_done, len(payloads), size)
        try:
            for payload in payloads:
                self._link.send_events(payload, lambda: self._acknowledged(relayed))
        except Exception:
            self._forget(relayed)
            raise

    def close(self, timeout: float) -> None:
        """Refuse new batches and wait up to ``timeout`` for the acknowledgements of those in flight.

        Batches still unacknowledged then (or when the supervisor is gone) are never reported done.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._state:
            self._closed = True
            self._state.notify_all()
            while self._in_flight_batches and not self._link.lost.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logger.warning("action=relay_close_timeout timeout=%.1f unacknowledged_batches=%d",
                                   timeout, self._in_flight_batches)
                    return
                self._state.wait(min(0.2, remaining))

    def _acknowledged(self, relayed: _RelayedBatch) -> None:
        with self._state:
            relayed.frames_left -= 1
            if relayed.frames_left:
                return
            self._in_flight_bytes -= relayed.size
            self._in_flight_batches -= 1
            self._state.notify_all()
        relayed.on_done(relayed.batch)

    def _forget(self, relayed: _RelayedBatch) -> None:
        """A send failed part-way: the channel is lost, so no frame of this batch will be acknowledged."""
        with self._state:
            self._in_flight_bytes -= relayed.size
            self._in_flight_batches -= 1
            self._state.notify_all()


# ---------------------------------------------------------------------------------------------------------------
# Supervisor side


@dataclass(frozen=True)
class SupervisorOptions:
    """How the supervisor runs its workers.

    Arguments:
        workers: Number of worker processes.
        command: How to start one worker (``[sys.executable, <bin>/aliyun_sls_worker.py]``).
        shutdown_timeout: Seconds a worker gets to drain and commit after the stop request.
        kill_margin: Extra seconds before a worker that is still running is killed.
        restart_initial: First delay before restarting a worker that died (seconds).
        restart_cap: Longest delay between restarts of a worker that keeps dying (seconds).
        stable_after: A worker that ran this long before dying is restarted after ``restart_initial`` again.
        poll_interval: Seconds between checks of the workers.
    """

    workers: int
    command: Sequence[str]
    shutdown_timeout: float = 30.0
    kill_margin: float = 5.0
    restart_initial: float = 1.0
    restart_cap: float = 60.0
    stable_after: float = 60.0
    poll_interval: float = 0.2


class _Slot:
    """One worker position: its current process (if any) and its restart schedule."""

    def __init__(self, index: int, options: SupervisorOptions) -> None:
        self.index = index
        self.process: Optional["subprocess.Popen[bytes]"] = None
        self.relay: Optional[threading.Thread] = None
        self.stdin_lock = threading.Lock()
        self.started_at = 0.0
        self.restart_at = 0.0
        self.backoff = Backoff(initial=options.restart_initial, cap=max(options.restart_cap, options.restart_initial))


class Supervisor:
    """Starts N workers, relays their stream frames to ``sink``, restarts dead ones, stops them all on ``stop``.

    Arguments:
        options: SupervisorOptions.
        definition: Returns the JSON-serialisable definition for worker ``i`` (``{"stanza", "params", "metadata"}``).
        sink: The supervisor's StreamSink (delivery = stream), or None when workers deliver themselves (HEC).
        stop: Set to stop (signals, orphan watch, a broken stdout).
    """

    def __init__(self, options: SupervisorOptions, definition: Callable[[int], Dict[str, Any]],
                 sink: Optional["EventSink"], stop: threading.Event) -> None:
        self._options = options
        self._definition = definition
        self._sink = sink
        self._stop = stop
        self._slots = [_Slot(index, options) for index in range(options.workers)]

    def run(self) -> int:
        """Supervise until ``stop``, then stop every worker and close the sink.

        Returns:
            0, the exit code for splunkd.
        """
        logger.info("action=supervisor_started workers=%d pid=%d", self._options.workers, os.getpid())
        for slot in self._slots:
            self._start(slot)
        while not self._stop.wait(self._options.poll_interval):
            now = time.monotonic()
            for slot in self._slots:
                if slot.process is None:
                    if now >= slot.restart_at:
                        self._start(slot)
                elif slot.process.poll() is not None:
                    self._exited(slot, now)
        self._stop_all()
        if self._sink is not None:
            self._sink.close(self._options.kill_margin)
        logger.info("action=supervisor_stopped workers=%d", self._options.workers)
        return 0

    def pids(self) -> Dict[int, int]:
        """Worker index -> pid of the running workers (diagnostics and tests)."""
        return {slot.index: slot.process.pid for slot in self._slots
                if slot.process is not None and slot.process.poll() is None}

    # ------------------------------------------------------------------ one worker

    def _start(self, slot: _Slot) -> None:
        # A new process group on Windows, so CTRL_BREAK_EVENT reaches this worker alone.
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) if os.name == "nt" else 0
        try:
            process = subprocess.Popen(list(self._options.command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       bufsize=0, creationflags=flags)
        except OSError as err:
            slot.process = None
            delay = slot.backoff.next_delay()
            slot.restart_at = time.monotonic() + delay
            logger.error("action=worker_start_failed worker=%d error=\"%s\" restart_in_seconds=%.1f", slot.index, err,
                         delay)
            return
        slot.process = process
        slot.started_at = time.monotonic()
        payload = json.dumps(self._definition(slot.index)).encode("utf-8")
        try:
            with slot.stdin_lock:
                write_frame(process.stdin, KIND_INIT, 0, payload)  # type: ignore[arg-type]
        except (OSError, ValueError):
            pass  # it died at once; the next check sees the exit and restarts it
        slot.relay = threading.Thread(target=self._relay, args=(slot, process),
                                      name="worker-relay-%d" % slot.index, daemon=True)
        slot.relay.start()
        logger.info("action=worker_started worker=%d pid=%d", slot.index, process.pid)

    def _exited(self, slot: _Slot, now: float) -> None:
        process = slot.process
        assert process is not None
        ran = now - slot.started_at
        if ran >= self._options.stable_after:
            slot.backoff.reset()
        delay = slot.backoff.next_delay()
        slot.restart_at = now + delay
        slot.process = None
        self._release(slot, process)
        logger.warning("action=worker_exited worker=%d pid=%d returncode=%s ran_seconds=%.1f restart_in_seconds=%.1f",
                       slot.index, process.pid, process.returncode, ran, delay)

    def _relay(self, slot: _Slot, process: "subprocess.Popen[bytes]") -> None:
        """Write each event frame of ``process`` to the stream, then acknowledge it. Ends at the worker's exit."""
        try:
            while True:
                frame = read_frame(process.stdout)  # type: ignore[arg-type]
                if frame is None:
                    return
                if frame.kind != KIND_EVENTS or self._sink is None:
                    raise ChannelError("unexpected frame kind %r from the worker" % (frame.kind,))
                # The supervisor's StreamSink takes ShardBatch; here one batch is one frame of worker ``index``.
                relayed = ShardBatch(shard_id=slot.index, cursor="frame-%d" % frame.frame_id, next_cursor="",
                                     events=[frame.payload])
                self._sink.send(relayed, lambda _batch, frame_id=frame.frame_id: self._ack(slot, process, frame_id))
        except ChannelError as err:
            logger.error("action=worker_protocol_error worker=%d pid=%d error=\"%s\" message=\"killing the worker; it "
                         "is restarted and resumes from its last checkpoint\"", slot.index, process.pid, err)
            _kill(process)
        except (OSError, ValueError, RuntimeError) as err:
            # stdout to splunkd is broken (the StreamSink has set stop) or the worker's pipe failed. The frame in hand
            # is not acknowledged, so the worker never checkpoints it; a worker left alive would wait for acks
            # forever, so it is killed and (unless we are stopping) restarted from its last checkpoint.
            logger.warning("action=worker_relay_ended worker=%d pid=%d error=\"%s\" message=\"restarting the worker\"",
                           slot.index, process.pid, err)
            _kill(process)

    @staticmethod
    def _ack(slot: _Slot, process: "subprocess.Popen[bytes]", frame_id: int) -> None:
        try:
            with slot.stdin_lock:
                write_frame(process.stdin, KIND_ACK, frame_id)  # type: ignore[arg-type]
        except (OSError, ValueError):
            pass  # the worker is gone; its successor re-reads from the last checkpoint

    # ------------------------------------------------------------------ stopping

    def _stop_all(self) -> None:
        """Ask every worker to stop, keep relaying while they drain, then kill the ones that do not exit."""
        running = [(slot, slot.process) for slot in self._slots
                   if slot.process is not None and slot.process.poll() is None]
        for slot, process in running:
            self._request_stop(slot, process)
        deadline = time.monotonic() + self._options.shutdown_timeout + self._options.kill_margin
        for slot, process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("action=worker_killed worker=%d pid=%d waited_seconds=%.0f message=\"the worker did "
                               "not stop in time; uncommitted data is read again after the restart\"", slot.index,
                               process.pid, self._options.shutdown_timeout + self._options.kill_margin)
                _kill(process)
            logger.info("action=worker_stopped worker=%d pid=%d returncode=%s", slot.index, process.pid,
                        process.returncode)
        for slot in self._slots:
            if slot.process is not None:
                self._release(slot, slot.process)
                slot.process = None

    @staticmethod
    def _request_stop(slot: _Slot, process: "subprocess.Popen[bytes]") -> None:
        """The stop frame works everywhere; the signal also reaches a worker that is not reading its channel."""
        try:
            with slot.stdin_lock:
                write_frame(process.stdin, KIND_STOP)  # type: ignore[arg-type]
        except (OSError, ValueError):
            pass
        try:
            if os.name == "nt":  # pragma: no cover - Windows only
                # Fails when the supervisor has no console (splunkd service); the stop frame covers that case.
                process.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
            else:
                process.send_signal(signal.SIGTERM)
        except OSError:
            pass

    @staticmethod
    def _release(slot: _Slot, process: "subprocess.Popen[bytes]") -> None:
        """After the worker exited: let its relay thread finish the last frames, then close the pipes."""
        if slot.relay is not None:
            slot.relay.join(5.0)
            slot.relay = None
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def _kill(process: "subprocess.Popen[bytes]") -> None:
    try:
        process.kill()
        process.wait(30)
    except (OSError, subprocess.TimeoutExpired):
        logger.error("action=worker_kill_failed pid=%d", process.pid)


def worker_script() -> str:
    """Absolute path of ``bin/aliyun_sls_worker.py`` (this package lives in ``bin/sls_forwarder``)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), WORKER_SCRIPT)


def supervise(config: "InputConfig", stanza_name: str, params: Mapping[str, Any], metadata: Mapping[str, Any],
              shutdown_timeout: float = 30.0) -> int:
    """Run ``config.workers`` worker processes for one stanza until SIGTERM or splunkd goes away.

    Arguments:
        config: The parsed stanza.
        stanza_name: ``aliyun_sls://<name>`` as splunkd passed it.
        params: The stanza's parameters; each worker gets them plus ``__worker = <i>``.
        metadata: The input definition's metadata (server_host, server_uri, session_key, checkpoint_dir).
        shutdown_timeout: Seconds each worker gets for its ordered shutdown.

    Returns:
        0, the exit code for splunkd.
    """
    from .runtime import OrphanWatch, install_signal_handlers
    from .splunk.stream_writer import StreamSink

    stop = threading.Event()
    restore_signals = install_signal_handlers(stop)
    watch = OrphanWatch(stop)
    watch.start()
    sink = StreamSink(sys.stdout.buffer, stop) if config.delivery == "stream" else None

    def definition(index: int) -> Dict[str, Any]:
        return {"stanza": stanza_name, "params": dict(params, __worker=str(index)), "metadata": dict(metadata)}

    options = SupervisorOptions(workers=config.workers, command=(sys.executable, worker_script()),
                                shutdown_timeout=shutdown_timeout)
    try:
        return Supervisor(options, definition, sink, stop).run()
    finally:
        watch.close()
        restore_signals()
