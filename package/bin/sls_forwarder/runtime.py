"""Process lifecycle of one input: consumer identity and its lock file, signals, orphan watch, retries after
configuration errors, and the ordered shutdown of the pipeline.

The modinput layer builds everything that needs configuration (clients, sink, shaper) inside a ``build_pipeline``
callable and hands it to ``run``; this module decides when to start, retry and stop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Set, Tuple, Union

from .error_labels import CONFIGURATION
from .errors import ConfigError, ForwarderError
from .pipeline import Pipeline

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt
else:
    import fcntl

__all__ = ["RuntimeOptions", "ConsumerLock", "OrphanWatch", "consumer_name", "install_signal_handlers", "run"]

logger = logging.getLogger("sls_forwarder.runtime")

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_NAME_MAX = 128
_PID_WIDTH = 20  # the lock file holds the owner's pid, space padded, so it is rewritten without truncation


def consumer_name(consumer_group: str, server_name: str, input_name: str,
                  worker: Union[int, str, None] = None) -> str:
    """Build this process's consumer name: stable across restarts, unique across the fleet.

    ``<consumer_group>-<server name>-<input name>[-<worker>]``, with characters outside ``[A-Za-z0-9_.-]`` replaced
    by ``_``. Names longer than 128 characters are shortened and end with a hash of the full name, so they stay unique.

    Arguments:
        consumer_group: The consumer group.
        server_name: Splunk's serverName (unique per Splunk instance).
        input_name: The stanza name without ``aliyun_sls://``.
        worker: Index of the worker process when one input runs several; omitted when None or "".

    Returns:
        The sanitised consumer name.

    Raises:
        ValueError: A part is empty.
    """
    parts = [consumer_group, server_name, input_name]
    if worker is not None and str(worker) != "":
        parts.append(str(worker))
    if any(not str(part).strip() for part in parts):
        raise ValueError("consumer name parts must not be empty: %r" % (parts,))
    name = "-".join(_NAME_UNSAFE.sub("_", str(part).strip()) for part in parts)
    if len(name) > _NAME_MAX:
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]
        name = "%s-%s" % (name[:_NAME_MAX - len(digest) - 1], digest)
    return name


class ConsumerLock:
    """An exclusive lock file per consumer name, so two processes never consume as the same consumer.

    ``fcntl.flock`` on POSIX and ``msvcrt.locking`` on Windows; the operating system drops the lock when the holder
    dies, so a crashed run never blocks the next one. The file is never deleted (deleting would race with a waiter).

    Arguments:
        directory: The checkpoint directory (created if missing).
        consumer: The consumer name; also the file name, ``<consumer>.lock``.
    """

    def __init__(self, directory: str, consumer: str) -> None:
        self.path = os.path.join(directory, consumer + ".lock")
        self._file = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free.

        Returns:
            True if this object now holds the lock.

        Raises:
            OSError: The directory or file cannot be created or opened.
        """
        if self._file is not None:
            return True
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        handle = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644), "r+")
        try:
            if os.name == "nt":  # pragma: no cover - Windows only
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, _PID_WIDTH)
            else:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.write(str(os.getpid()).ljust(_PID_WIDTH))
        handle.flush()
        self._file = handle
        return True

    def acquire(self, stop: threading.Event, wait: float, retry_interval: float) -> bool:
        """Take the lock, waiting for a previous run of the same input to exit.

        A restarted input usually finds its predecessor still shutting down; it waits up to ``wait`` seconds. After
        that it logs one ERROR line per ``retry_interval`` and keeps waiting, since running as a twin would
        duplicate data.

        Returns:
            True when locked, False if ``stop`` was set first.
        """
        started = time.monotonic()
        announced = False
        while not stop.is_set():
            if self.try_acquire():
                if announced:
                    logger.info("action=consumer_lock_acquired path=%s waited_seconds=%.1f", self.path,
                                time.monotonic() - started)
                return True
            waited = time.monotonic() - started
            if waited < wait:
                if not announced:
                    logger.info("action=consumer_lock_wait path=%s holder_pid=%s message=\"a previous run of this "
                                "input is still stopping\"", self.path, self.holder_pid())
                    announced = True
                stop.wait(min(0.5, wait - waited))
            else:
                announced = True
                logger.error("action=consumer_lock_busy path=%s holder_pid=%s waited_seconds=%.0f message=\"another "
                             "process consumes with this consumer name; waiting so data is not read twice\"",
                             self.path, self.holder_pid(), waited, extra={"exc_l": CONFIGURATION})
                stop.wait(retry_interval)
        return False

    def holder_pid(self) -> str:
        """Return the pid written by the lock holder, or "unknown"."""
        try:
            with open(self.path, "r") as handle:
                return handle.read(_PID_WIDTH).strip() or "unknown"
        except OSError:  # on Windows the locked bytes cannot be read by others
            return "unknown"

    def release(self) -> None:
        """Give the lock up (safe to call when not held)."""
        handle, self._file = self._file, None
        if handle is None:
            return
        try:
            if os.name == "nt":  # pragma: no cover - Windows only
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, _PID_WIDTH)
            else:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        finally:
            handle.close()


class OrphanWatch:
    """Sets ``stop`` when the parent process (splunkd) goes away, detected by a changed parent pid.

    On Windows the parent pid never changes, so this is a no-op there, as in solnlib's OrphanProcessMonitor.

    Arguments:
        stop: Event to set.
        interval: Seconds between checks.
        parent_pid: Returns the current parent pid (tests substitute it).
    """

    def __init__(self, stop: threading.Event, interval: float = 1.0,
                 parent_pid: Callable[[], int] = os.getppid) -> None:
        self._stop = stop
        self._interval = interval
        self._parent_pid = parent_pid
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if os.name == "nt":  # pragma: no cover - Windows only
            return
        original = self._parent_pid()
        self._thread = threading.Thread(target=self._watch, args=(original,), name="orphan-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _watch(self, original: int) -> None:
        while not self._done.wait(self._interval):
            current = self._parent_pid()
            if current != original:
                logger.warning("action=orphaned parent_pid=%d new_parent_pid=%d message=\"splunkd is gone; "
                               "stopping\"", original, current)
                self._stop.set()
                return


@dataclass(frozen=True)
class RuntimeOptions:
    """How ``run`` behaves around the pipeline.

    Arguments:
        checkpoint_dir: Directory for the consumer lock file (the input's checkpoint dir).
        consumer: The consumer name (see ``consumer_name``).
        retry_interval: Seconds between attempts after a configuration error.
        shutdown_timeout: Seconds the ordered shutdown may take.
        lock_wait: Seconds to wait quietly for a previous run of this input to release the consumer name.
        orphan_check_interval: Seconds between parent-process checks; 0 turns the orphan watch off.
        handle_signals: Install SIGTERM/SIGINT/SIGBREAK handlers (only possible on the main thread).
    """

    checkpoint_dir: str
    consumer: str
    retry_interval: float = 60.0
    shutdown_timeout: float = 30.0
    lock_wait: float = 60.0
    orphan_check_interval: float = 1.0
    handle_signals: bool = True


# glibc's mallopt parameters (malloc.h).
_M_ARENA_MAX = -8
# Two arenas: shard threads still allocate in parallel when they run outside the GIL (inflating, socket reads).
_ARENA_COUNT = 2


def limit_allocator_arenas() -> bool:
    """Cap glibc's malloc arenas before the shard threads start; True if the C library took it.

    glibc gives threads their own arenas (up to 8 per core), and each keeps what a shard's freed batches left,
    so one input with 64 shard threads held about twice its memory budget in freed memory; with two arenas it stays
    near the budget (``tests/reliability/test_memory_budget.py``). Nothing is loaded: ``CDLL(None)`` is the C
    library already in the process. Elsewhere (Windows, macOS, musl) this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, _ARENA_COUNT))


def run(build_pipeline: Callable[[threading.Event], Pipeline], options: RuntimeOptions,
        stop: Optional[threading.Event] = None) -> int:
    """Run one input until it is told to stop; never raises for configuration problems.

    Arguments:
        build_pipeline: Called with a fresh "stop pulling" event; returns a new, unstarted Pipeline whose data
            client uses that event as its ``stop`` and which was built with ``stop_event=`` that event. Called again
            after a configuration error during the run. May raise ConfigError (logged, retried).
        options: RuntimeOptions.
        stop: Set by the caller (or by signals and the orphan watch) to stop; created if None.

    Returns:
        0 (the process exit code) once stopped and shut down.
    """
    stop = stop if stop is not None else threading.Event()
    restore_signals = install_signal_handlers(stop) if options.handle_signals else _no_op
    watch = OrphanWatch(stop, options.orphan_check_interval) if options.orphan_check_interval > 0 else None
    if watch is not None:
        watch.start()
    lock = ConsumerLock(options.checkpoint_dir, options.consumer)
    try:
        if not lock.acquire(stop, options.lock_wait, options.retry_interval):
            return 0
        logger.info("action=input_started consumer=%s pid=%d", options.consumer, os.getpid())
        attempts = _Attempts(options)
        while not stop.is_set():
            try:
                pipeline = build_pipeline(threading.Event())
            except Exception as err:
                attempts.failed("build", err)
                stop.wait(options.retry_interval)
                continue
            step, failure = _run_pipeline(pipeline, stop, options, attempts)
            if failure is None:
                break
            attempts.failed(step, failure)
            stop.wait(options.retry_interval)
        logger.info("action=input_stopped consumer=%s", options.consumer)
        return 0
    finally:
        if watch is not None:
            watch.close()
        lock.release()
        restore_signals()


def _run_pipeline(pipeline: Pipeline, stop: threading.Event, options: RuntimeOptions,
                  attempts: "_Attempts") -> Tuple[str, Optional[BaseException]]:
    """Start, run until stop or failure, shut down in order.

    A failed start is returned rather than retried on this pipeline: the next attempt builds a new one, reading the
    account, proxy and HEC settings again, so a key or token fixed on the Configuration page is picked up without
    restarting the input.

    Returns:
        The step ("start" or "run") and the error that ended the run, or ("", None) if ``stop`` ended it.
    """
    try:
        pipeline.start()
    except Exception as err:
        pipeline.stop(options.shutdown_timeout)
        return "start", err
    attempts.succeeded()
    while not stop.is_set() and not pipeline.failed.is_set():
        stop.wait(0.2)
    pipeline.stop(options.shutdown_timeout)
    if pipeline.failed.is_set() and not stop.is_set():
        return "run", pipeline.error
    return "", None


class _Attempts:
    """One clear line per failed attempt: ERROR for configuration errors, a traceback only for the first bug."""

    def __init__(self, options: RuntimeOptions) -> None:
        self._options = options
        self._count = 0
        self._traceback_logged = False

    def failed(self, step: str, err: Optional[BaseException]) -> None:
        self._count += 1
        retry = self._options.retry_interval
        if isinstance(err, ConfigError):
            logger.error("action=config_error step=%s consumer=%s attempt=%d code=%s status=%d request_id=%s "
                         "retry_in_seconds=%.0f error=\"%s\"", step, self._options.consumer, self._count, err.code,
                         err.status, err.request_id, retry, err)
        elif isinstance(err, ForwarderError):
            logger.warning("action=start_failed step=%s consumer=%s attempt=%d code=%s status=%d "
                           "retry_in_seconds=%.0f error=\"%s\"", step, self._options.consumer, self._count, err.code,
                           err.status, retry, err)
        else:
            logger.error("action=unexpected_error step=%s consumer=%s attempt=%d retry_in_seconds=%.0f error=%r",
                         step, self._options.consumer, self._count, retry, err,
                         exc_info=err if not self._traceback_logged else None)
            self._traceback_logged = True

    def succeeded(self) -> None:
        if self._count:
            logger.info("action=input_recovered consumer=%s failed_attempts=%d", self._options.consumer, self._count)
        self._count = 0


def install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """Make SIGTERM, SIGINT and (Windows) SIGBREAK set ``stop``; return a function restoring the old handlers.

    The handler itself takes no lock: it runs on the main thread between two bytecodes, possibly while that thread
    holds ``stop``'s internal lock inside ``stop.wait()``, where ``stop.set()`` would block forever. Instead the
    interpreter writes the signal number to a wake-up socket (``signal.set_wakeup_fd``) and a relay thread sets
    ``stop``.
    """
    if threading.current_thread() is not threading.main_thread():
        logger.debug("action=signal_handlers_skipped reason=not_main_thread")
        return _no_op
    numbers = [n for n in (getattr(signal, name, None) for name in ("SIGTERM", "SIGINT", "SIGBREAK")) if n is not None]
    reader, writer = socket.socketpair()  # a socket, not a pipe: Windows accepts only sockets as wake-up fds
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    previous = {number: signal.signal(number, _wake_only) for number in numbers}
    relay = threading.Thread(target=_relay_signals, args=(reader, set(numbers), stop), name="signal-relay",
                             daemon=True)
    relay.start()

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)
        signal.set_wakeup_fd(previous_fd)
        writer.send(_RELAY_EXIT)
        relay.join(5.0)
        writer.close()
        reader.close()

    return restore


_RELAY_EXIT = b"\0"  # no signal has number 0


def _wake_only(_signum: int, _frame: object) -> None:
    """The Python-level handler: nothing to do, the wake-up byte is already on its way to the relay."""


def _relay_signals(reader: socket.socket, numbers: Set[int], stop: threading.Event) -> None:
    while True:
        try:
            received = reader.recv(64)
        except OSError:
            return
        if not received or _RELAY_EXIT[0] in received:
            return
        if numbers.intersection(received):
            logger.info("action=signal_received signals=%s", ",".join(str(n) for n in received if n in numbers))
            stop.set()


def _no_op() -> None:
    return None
