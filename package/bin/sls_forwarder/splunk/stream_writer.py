"""StreamSink: delivery = stream. The only writer of stdout, where splunkd reads the modular-input XML stream."""

from __future__ import annotations

import logging
import threading
from typing import BinaryIO, Callable, Optional

from ..batch import ShardBatch
from ..error_labels import CONNECTION

__all__ = ["StreamSink"]

logger = logging.getLogger("sls_forwarder.splunk.stream_writer")

_OPEN = b"<stream>"
_CLOSE = b"</stream>"


class StreamSink:
    """Writes each batch's ``<event>`` elements to splunkd in one write and one flush.

    A batch counts as delivered once the flush returns: splunkd has the bytes in its pipe and there is no
    acknowledgement beyond that. ``<stream>`` goes out with the first batch, ``</stream>`` at ``close``.

    Thread-safe: shard threads call ``send`` concurrently; a lock keeps each batch's events contiguous.
    When a write fails (splunkd closed the pipe) the sink is broken: the batch is not reported done, ``stop`` is
    set so the process shuts down, and the error propagates to this and every later ``send``.

    Arguments:
        out: A binary stream, normally ``sys.stdout.buffer``.
        stop: The process's shutdown event, set when stdout breaks. Optional.
    """

    def __init__(self, out: BinaryIO, stop: Optional[threading.Event] = None) -> None:
        self._out = out
        self._stop = stop
        self._lock = threading.Lock()
        self._opened = False
        self._closed = False
        self._failure: Optional[BaseException] = None

    def send(self, batch: ShardBatch, on_done: Callable[[ShardBatch], None]) -> None:
        """Write ``batch`` and report it done after the flush.

        Arguments:
            batch: Shaped stream events of one pull.
            on_done: Called once with ``batch`` after its events are flushed.

        Raises:
            OSError: stdout is broken (now or by an earlier write); the batch is not done. The first failure
                propagates as raised by the stream (ValueError if it was closed).
            RuntimeError: The sink is closed.
        """
        with self._lock:
            if self._failure is not None:
                raise OSError("stdout to splunkd is broken: %s" % self._failure) from self._failure
            if self._closed:
                raise RuntimeError("stream sink is closed; batch shard=%d cursor=%s was not written"
                                   % (batch.shard_id, batch.cursor))
            if batch.events:
                payload = b"".join(batch.events)
                if not self._opened:
                    payload = _OPEN + payload
                self._write(payload)
                self._opened = True
        on_done(batch)

    def close(self, timeout: float) -> None:
        """Finish the stream with ``</stream>`` after any write in progress.

        Arguments:
            timeout: Seconds to wait for a write in progress (a full pipe blocks it).
        """
        if not self._lock.acquire(timeout=max(0.0, timeout)):
            logger.warning("action=stream_close_timeout timeout=%.1f detail=a write is still blocked", timeout)
            return
        try:
            if self._closed:
                return
            self._closed = True
            if self._opened and self._failure is None:
                try:
                    self._write(_CLOSE)
                except (OSError, ValueError):
                    pass  # already logged; nothing is left to deliver
        finally:
            self._lock.release()

    def _write(self, payload: bytes) -> None:
        """Write and flush under the lock; on failure mark the sink broken, set stop and re-raise."""
        try:
            self._out.write(payload)
            self._out.flush()
        except (OSError, ValueError) as error:  # ValueError: the stream object was closed
            self._failure = error
            logger.error("action=stream_write_failed error=%s detail=splunkd stopped reading stdout; stopping",
                         type(error).__name__, extra={"exc_l": CONNECTION})
            if self._stop is not None:
                self._stop.set()
            raise
