"""In-memory doubles for the pipeline's neighbours: an SLS logstore (FakeSlsClient), a sink (FakeSink), and a
decoder/shaper pair that turn pulled log groups into one event per group (``b"<shard>:<index>"``).

Cursors are real-looking ``base64(str(BASE + index))`` values, so tests can tell how far a checkpoint points.
Every call the pipeline makes is appended to a shared ``journal`` so tests can assert on ordering.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Set, Tuple

from sls_forwarder.batch import ShardBatch
from sls_forwarder.errors import InvalidCursorError, PermanentError
from sls_forwarder.sls.client import Checkpoint, PullResult, Shard

BASE = 1_500_000_000_000_000_000


def encode_cursor(index: int) -> str:
    return base64.b64encode(str(BASE + index).encode()).decode()


def cursor_index(cursor: str) -> int:
    """Index of the log group a cursor points before; raises InvalidCursorError like SLS for garbage."""
    try:
        return int(base64.b64decode(cursor.encode(), validate=True)) - BASE
    except (binascii.Error, ValueError):
        raise InvalidCursorError("cursor %r is not valid" % cursor, code="InvalidCursor", status=400) from None


class FakeShardState:
    def __init__(self, shard_id: int) -> None:
        self.shard_id = shard_id
        self.status = "readwrite"
        self.times: List[int] = []      # __time__ of each log group, by index
        self.begin = 0                  # first retained index (grows when data "expires")


class FakeSlsClient:
    """One logstore and its consumer group, in memory. Thread-safe.

    Arguments:
        shard_count: Shards 0..n-1, all readwrite and empty.
        journal: Shared list that records ("commit", shard, cursor), ("heartbeat", consumer, shards), ...
    """

    def __init__(self, shard_count: int = 2, journal: Optional[list] = None) -> None:
        self.lock = threading.RLock()
        self.shards: Dict[int, FakeShardState] = {i: FakeShardState(i) for i in range(shard_count)}
        self.checkpoints: Dict[int, Tuple[str, str]] = {}   # shard -> (cursor, consumer)
        self.groups: Dict[str, dict] = {}
        self.assignment: Dict[str, Set[int]] = {}
        self.over: Set[int] = set()
        self.journal = journal if journal is not None else []
        self.faults: Dict[str, Deque[Exception]] = {}
        self.heartbeat_hook: Optional[Callable[[str, List[int]], None]] = None
        self.commit_hook: Optional[Callable[[int, str], None]] = None
        self.pull_count = 0
        self.probe_count = 0
        self.queries: Set[str] = set()

    # -- test controls
    def append(self, shard_id: int, count: int, log_time: Optional[int] = None) -> None:
        with self.lock:
            stamp = int(time.time()) if log_time is None else log_time
            self.shards[shard_id].times.extend([stamp] * count)

    def expire(self, shard_id: int, upto: int) -> None:
        """Drop log groups before ``upto`` as the TTL would."""
        with self.lock:
            self.shards[shard_id].begin = upto

    def fail(self, api: str, *errors: Exception) -> None:
        """Raise ``errors`` one by one from the next calls of ``api``."""
        with self.lock:
            self.faults.setdefault(api, deque()).extend(errors)

    def assign(self, consumer: str, shards) -> None:
        with self.lock:
            self.assignment[consumer] = set(shards)

    def committed_index(self, shard_id: int) -> Optional[int]:
        with self.lock:
            entry = self.checkpoints.get(shard_id)
        return cursor_index(entry[0]) if entry else None

    def entries(self, kind: str) -> list:
        with self.lock:
            return [e for e in self.journal if e[0] == kind]

    def _fault(self, api: str) -> None:
        with self.lock:
            queue = self.faults.get(api)
            error = queue.popleft() if queue else None
        if error is not None:
            raise error

    def _shard(self, shard_id: int) -> FakeShardState:
        if shard_id not in self.shards:
            raise PermanentError("shard %d does not exist" % shard_id, code="ShardNotExist", status=400)
        return self.shards[shard_id]

    def _valid_index(self, state: FakeShardState, cursor: str) -> int:
        index = cursor_index(cursor)
        if not state.begin <= index <= len(state.times):
            raise InvalidCursorError("cursor out of range", code="InvalidCursor", status=400)
        return index

    # -- SlsClient API used by the coordinator and the pipeline
    def list_consumer_groups(self, logstore: str) -> List[dict]:
        self._fault("list_consumer_groups")
        with self.lock:
            self.journal.append(("list_consumer_groups",))
            return [dict(name=name, **attrs) for name, attrs in self.groups.items()]

    def create_consumer_group(self, logstore: str, group: str, timeout: int, order: bool) -> None:
        self._fault("create_consumer_group")
        with self.lock:
            self.journal.append(("create_consumer_group", group, timeout, order))
            if group in self.groups:
                raise PermanentError("consumer group already exist", code="ConsumerGroupAlreadyExist", status=400)
            self.groups[group] = {"timeout": timeout, "order": order}

    def update_consumer_group(self, logstore: str, group: str, timeout: int, order: bool) -> None:
        self._fault("update_consumer_group")
        with self.lock:
            self.journal.append(("update_consumer_group", group, timeout, order))
            self.groups[group] = {"timeout": timeout, "order": order}

    def heartbeat(self, logstore: str, group: str, consumer: str, shards: List[int]) -> List[int]:
        if self.heartbeat_hook is not None:
            self.heartbeat_hook(consumer, list(shards))
        self._fault("heartbeat")
        with self.lock:
            self.journal.append(("heartbeat", consumer, list(shards)))
            return sorted(self.assignment.get(consumer, set()) - self.over)

    def list_shards(self, logstore: str) -> List[Shard]:
        self._fault("list_shards")
        with self.lock:
            return [Shard(s.shard_id, s.status, "", "", 0) for s in self.shards.values()]

    def get_cursor(self, logstore: str, shard_id: int, start) -> str:
        self._fault("get_cursor")
        with self.lock:
            state = self._shard(shard_id)
            if start == "begin":
                index = state.begin
            elif start == "end":
                index = len(state.times)
            else:
                index = next((i for i in range(state.begin, len(state.times)) if state.times[i] >= int(start)),
                             len(state.times))
            self.journal.append(("get_cursor", shard_id, start))
            return encode_cursor(index)

    def get_checkpoints(self, logstore: str, group: str, shard_id: Optional[int] = None) -> Dict[int, Checkpoint]:
        self._fault("get_checkpoints")
        with self.lock:
            ids = self.shards if shard_id is None else [shard_id]
            result = {}
            for sid in ids:
                cursor, consumer = self.checkpoints.get(sid, ("", ""))
                result[sid] = Checkpoint(sid, cursor, consumer, 0)
            return result

    def update_checkpoint(self, logstore: str, group: str, consumer: str, shard_id: int, cursor: str) -> None:
        if self.commit_hook is not None:
            self.commit_hook(shard_id, cursor)
        self._fault("update_checkpoint")
        with self.lock:
            state = self._shard(shard_id)
            cursor_index(cursor)
            self.checkpoints[shard_id] = (cursor, consumer)
            self.journal.append(("commit", shard_id, cursor))
            if state.status == "readonly" and cursor_index(cursor) == len(state.times):
                self.over.add(shard_id)

    def has_data(self, logstore: str, shard_id: int, cursor: str, query: str = "") -> bool:
        self._fault("has_data")
        with self.lock:
            self.probe_count += 1
            state = self._shard(shard_id)
            return self._valid_index(state, cursor) < len(state.times)

    def pull_logs(self, logstore: str, shard_id: int, cursor: str, count: int = 1000, end_cursor: str = "",
                  query: str = "") -> PullResult:
        self._fault("pull_logs")
        with self.lock:
            self.pull_count += 1
            self.queries.add(query)
            state = self._shard(shard_id)
            start = self._valid_index(state, cursor)
            stop = min(len(state.times), start + count)
            groups = [[shard_id, i, state.times[i]] for i in range(start, stop)]
        data = json.dumps(groups).encode() if groups else b""
        return PullResult(data, encode_cursor(stop), len(groups), len(data))


def fake_decode(data: bytes) -> list:
    """Stands in for decode_log_group_list: the fake client's payload is a JSON list of [shard, index, time]."""
    return json.loads(data) if data else []


class FakeShaper:
    """Stands in for EventShaper: one event ``b"<shard>:<index>"`` per log group."""

    def shape(self, groups: list) -> Tuple[List[bytes], int]:
        events = [("%d:%d" % (shard, index)).encode() for shard, index, _ in groups]
        return events, max((t for _, _, t in groups), default=0)


class FakeSink:
    """Accepts batches and completes them when told, or automatically in shuffled order.

    Arguments:
        max_pending: ``send`` blocks while this many batches are undelivered (back-pressure); None = never.
        auto: Complete pending batches in random order from a background thread.
        journal: Shared list; ``close`` is recorded as ("sink_close",).
    """

    def __init__(self, max_pending: Optional[int] = None, auto: bool = False, seed: int = 7,
                 journal: Optional[list] = None) -> None:
        self.max_pending = max_pending
        self.journal = journal if journal is not None else []
        self._cond = threading.Condition()
        self._pending: List[Tuple[ShardBatch, Callable[[ShardBatch], None]]] = []
        self._random = random.Random(seed)
        self.delivered: List[bytes] = []
        self.delivered_batches: List[ShardBatch] = []
        self.peak_pending = 0
        self.closed = False
        self._thread: Optional[threading.Thread] = None
        if auto:
            self._thread = threading.Thread(target=self._auto_complete, daemon=True)
            self._thread.start()

    def send(self, batch: ShardBatch, on_done: Callable[[ShardBatch], None]) -> None:
        with self._cond:
            while self.max_pending is not None and len(self._pending) >= self.max_pending and not self.closed:
                self._cond.wait(0.05)
            if self.closed:
                raise RuntimeError("sink is closed")
            self._pending.append((batch, on_done))
            self.peak_pending = max(self.peak_pending, len(self._pending))
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def delivered_ids(self) -> Set[Tuple[int, int]]:
        with self._cond:
            return {tuple(int(x) for x in e.decode().split(":")) for e in self.delivered}

    def pending_batches(self) -> List[ShardBatch]:
        with self._cond:
            return [batch for batch, _ in self._pending]

    def complete(self, count: Optional[int] = None, shuffle: bool = True,
                 only: Optional[Callable[[ShardBatch], bool]] = None) -> int:
        """Deliver up to ``count`` pending batches (all if None) accepted by ``only``, shuffled when ``shuffle``."""
        with self._cond:
            chosen = [item for item in self._pending if only is None or only(item[0])]
            if shuffle:
                self._random.shuffle(chosen)
            chosen = chosen[:count] if count is not None else chosen
            for item in chosen:
                self._pending.remove(item)
            for batch, _ in chosen:
                self.delivered.extend(batch.events)
                self.delivered_batches.append(batch)
            self._cond.notify_all()
        for batch, on_done in chosen:
            on_done(batch)
        return len(chosen)

    def close(self, timeout: float) -> None:
        with self._cond:
            self.closed = True
            self.journal.append(("sink_close",))
            self._cond.notify_all()
        self.complete()
        if self._thread is not None:
            self._thread.join(timeout)

    def _auto_complete(self) -> None:
        while True:
            with self._cond:
                if self.closed:
                    return
                self._cond.wait(0.01)
                size = len(self._pending)
            if size:
                # Leave the newest batch waiting now and then, so completions really arrive out of order.
                self.complete(count=max(1, size - self._random.randint(0, 1)))


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
