"""Helpers and pytest fixtures for driving the official SDK against the emulator.

The SDK reaches a ``host:port`` endpoint only through an HTTP proxy (§0.1 of the wire-protocol notes):
with endpoint ``127.0.0.1:<port>`` it builds ``http://<project>.127.0.0.1:<port>/...`` and sends
``Host: <project>.127.0.0.1``. ``sdk_proxy_env`` points HTTP_PROXY at the emulator, which accepts
the absolute-form request target, so every request stays on 127.0.0.1.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import pytest

from .server import SlsEmulator

ACCESS_KEY_ID = "test-ak"
ACCESS_KEY_SECRET = "test-secret"
PROJECT = "proj"
_PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy",
                    "ALL_PROXY", "all_proxy")


def sdk_endpoint(emulator: SlsEmulator) -> str:
    """The endpoint string to give the SDK (reached through the emulator acting as proxy)."""
    return "%s:%d" % (emulator.host, emulator.port)


@contextlib.contextmanager
def sdk_proxy_env(emulator: Union[SlsEmulator, str]) -> Iterator[None]:
    """Route the SDK's plain-HTTP requests through the emulator; restores the environment after.

    Arguments:
        emulator: a started SlsEmulator, or the URL of one ("http://127.0.0.1:8181").
    """
    url = emulator if isinstance(emulator, str) else emulator.url
    saved = {name: os.environ.get(name) for name in _PROXY_VARIABLES}
    for name in _PROXY_VARIABLES:
        os.environ.pop(name, None)
    os.environ["HTTP_PROXY"] = os.environ["http_proxy"] = url
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def wait_until(predicate: Callable[[], bool], timeout: float, message: str, interval: float = 0.1) -> None:
    """Poll ``predicate`` until it is true.

    Raises:
        AssertionError: with ``message`` when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs: %s" % (timeout, message))
        time.sleep(interval)


def make_client(emulator: SlsEmulator, key_id: str = ACCESS_KEY_ID, secret: str = ACCESS_KEY_SECRET,
                **kwargs: object) -> "object":
    """An official ``LogClient`` aimed at the emulator (use inside ``sdk_proxy_env``)."""
    from aliyun.log import LogClient

    return LogClient(sdk_endpoint(emulator), key_id, secret, **kwargs)


class Collector:
    """Thread-safe record of what consumers processed: event_id counts and who saw which shard."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Dict[str, int] = collections.Counter()
        self.by_consumer: Dict[str, List[str]] = collections.defaultdict(list)
        self.shards_by_consumer: Dict[str, set] = collections.defaultdict(set)
        self.batches = 0

    def add(self, consumer: str, shard_id: int, event_ids: Sequence[str]) -> None:
        with self._lock:
            self.batches += 1
            for event_id in event_ids:
                self.counts[event_id] += 1
            self.by_consumer[consumer].extend(event_ids)
            self.shards_by_consumer[consumer].add(shard_id)

    def seen(self) -> set:
        with self._lock:
            return set(self.counts)

    def duplicates(self) -> Dict[str, int]:
        with self._lock:
            return {event_id: n for event_id, n in self.counts.items() if n > 1}

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


def event_ids_of(log_group_list: object) -> List[str]:
    """The ``event_id`` contents of a LogGroupList protobuf (as handed to ``process``)."""
    ids = []
    for group in log_group_list.LogGroups:  # type: ignore[attr-defined]
        for log in group.Logs:
            for content in log.Contents:
                if content.Key == "event_id":
                    value = content.Value
                    ids.append(value.decode("utf-8") if isinstance(value, bytes) else value)
    return ids


def make_processor_class() -> type:
    """Build the collecting processor (imports the SDK lazily, so this module imports without it)."""
    from aliyun.log.consumer import ConsumerProcessorBase

    class CollectingProcessor(ConsumerProcessorBase):
        """Records every event_id it is handed, then checkpoints (forced or the SDK's batched way)."""

        def __init__(self, collector: Collector, consumer: str, force_checkpoint: bool = True):
            super().__init__()
            self.collector = collector
            self.consumer = consumer
            self.force_checkpoint = force_checkpoint

        def process(self, log_groups: object, check_point_tracker: object) -> None:
            self.collector.add(self.consumer, self.shard_id, event_ids_of(log_groups))
            self.save_checkpoint(check_point_tracker, force=self.force_checkpoint)

    return CollectingProcessor


def make_worker(emulator: SlsEmulator, logstore: str, group: str, consumer: str, collector: Collector,
                heartbeat_interval: int = 1, data_fetch_interval: float = 0.2, in_order: bool = False,
                max_fetch_log_group_size: int = 1000, force_checkpoint: bool = True,
                project: str = PROJECT, key_id: str = ACCESS_KEY_ID, secret: str = ACCESS_KEY_SECRET,
                **options: object) -> "object":
    """An official ``ConsumerWorker`` (not started) that feeds ``collector``.

    The constructor already talks to the server (ensure_consumer_group_created), so call it inside
    ``sdk_proxy_env``. Always ``shutdown()`` and ``join()`` it: its threads are not daemons.
    """
    from aliyun.log.consumer import ConsumerWorker, CursorPosition, LogHubConfig

    config = LogHubConfig(sdk_endpoint(emulator), key_id, secret, project, logstore, group, consumer,
                          cursor_position=options.pop("cursor_position", CursorPosition.BEGIN_CURSOR),
                          heartbeat_interval=heartbeat_interval, data_fetch_interval=data_fetch_interval,
                          in_order=in_order, max_fetch_log_group_size=max_fetch_log_group_size,
                          **options)  # type: ignore[arg-type]
    return ConsumerWorker(make_processor_class(), config, args=(collector, consumer, force_checkpoint))


def stop_workers(workers: Sequence[object], timeout: float = 30.0) -> None:
    """Shut workers down and join them (their threads are not daemons)."""
    for worker in workers:
        worker.shutdown()  # type: ignore[attr-defined]
    for worker in workers:
        worker.join(timeout)  # type: ignore[attr-defined]
        if worker.is_alive():  # type: ignore[attr-defined]
            raise AssertionError("consumer worker did not stop within %.0fs" % timeout)


@pytest.fixture
def sls_emulator() -> Iterator[SlsEmulator]:
    """A started emulator on a free 127.0.0.1 port with project ``proj``; stopped afterwards."""
    emulator = SlsEmulator(host="127.0.0.1", port=0, access_keys={ACCESS_KEY_ID: ACCESS_KEY_SECRET})
    emulator.start()
    emulator.create_project(PROJECT)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def sdk_env(sls_emulator: SlsEmulator) -> Iterator[SlsEmulator]:
    """The emulator with the SDK routed to it through HTTP_PROXY (restored afterwards)."""
    with sdk_proxy_env(sls_emulator):
        yield sls_emulator


def worker_threads_alive() -> List[str]:
    """Names of live non-daemon threads besides the main thread (leftover consumer workers)."""
    return [t.name for t in threading.enumerate()
            if t is not threading.main_thread() and not t.daemon and t.is_alive()]


def join_leftover_threads(timeout: float = 10.0) -> Optional[List[str]]:
    """Wait for non-daemon threads to finish; return the names still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while worker_threads_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    return worker_threads_alive() or None
