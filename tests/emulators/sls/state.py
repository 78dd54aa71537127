"""In-memory SLS state: projects, logstores, shards with their log groups, consumer groups.

Every public method of ``SlsState`` takes the one state lock, so the HTTP handler threads and the
test API see a consistent model. Rules follow §5-§8 of ``sls-wire-protocol.md``.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

# Cursors are base64(decimal sequence number); a large base makes them look like the real ones.
CURSOR_BASE = 1_500_000_000_000_000_000
HASH_SPACE = 1 << 128
HASH_MAX = "f" * 32
DEFAULT_MAX_CONSUMER_GROUPS = 30
MAX_PULL_COUNT = 1000


class SlsError(Exception):
    """An SLS API error: HTTP status, errorCode and errorMessage as the real service sends them."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__("%s %s: %s" % (status, code, message))
        self.status = status
        self.code = code
        self.message = message


def encode_cursor(seq: int) -> str:
    """Return the cursor string of a sequence number: base64 of its decimal digits."""
    return base64.b64encode(str(seq).encode("ascii")).decode("ascii")


def decode_cursor(cursor: str) -> int:
    """Return the sequence number of a cursor.

    Raises:
        SlsError: 400 InvalidCursor when it is not base64 of a decimal number.
    """
    text = cursor.strip()  # the SDK's e64() may leave a trailing newline
    try:
        decoded = base64.b64decode(text.encode("ascii"), validate=True).decode("ascii")
        if not decoded.isdigit():
            raise ValueError(decoded)
        return int(decoded)
    except (ValueError, UnicodeError, binascii.Error):
        raise SlsError(400, "InvalidCursor", "cursor %s is invalid" % cursor) from None


def _hash_key(value: int) -> str:
    return format(min(value, HASH_SPACE - 1), "032x")


@dataclass
class Shard:
    """One shard: its hash range, status and the log groups it holds."""

    shard_id: int
    begin_key: str
    end_key: str
    create_time: int
    status: str = "readwrite"
    parents: Tuple[int, ...] = ()
    groups: List[bytes] = field(default_factory=list)
    receive_times: List[int] = field(default_factory=list)
    expired: int = 0  # groups dropped from the front (TTL); the begin cursor moves past them

    @property
    def begin_seq(self) -> int:
        return CURSOR_BASE + self.expired

    @property
    def end_seq(self) -> int:
        return CURSOR_BASE + self.expired + len(self.groups)

    def describe(self) -> dict:
        return {"shardID": self.shard_id, "status": self.status, "inclusiveBeginKey": self.begin_key,
                "exclusiveEndKey": self.end_key, "createTime": self.create_time}

    def covers(self, key: str) -> bool:
        return self.begin_key <= key and (key < self.end_key or self.end_key == HASH_MAX)


@dataclass
class Checkpoint:
    cursor: str = ""
    consumer: str = ""
    update_time_us: int = 0


@dataclass
class ConsumerGroup:
    """Server-side consumer-group state (§8.1): live consumers, shard owners, revocations, checkpoints."""

    name: str
    timeout: int
    order: bool
    last_seen: Dict[str, float] = field(default_factory=dict)
    owner: Dict[int, str] = field(default_factory=dict)
    revoking: Set[int] = field(default_factory=set)
    checkpoints: Dict[int, Checkpoint] = field(default_factory=dict)

    def describe(self) -> dict:
        return {"name": self.name, "timeout": self.timeout, "order": self.order}

    def expire(self, now: float) -> None:
        """Drop consumers silent for more than ``timeout`` seconds and free their shards."""
        dead = [name for name, seen in self.last_seen.items() if now - seen > self.timeout]
        for name in dead:
            del self.last_seen[name]
            for shard_id in [s for s, owner in self.owner.items() if owner == name]:
                self._release(shard_id)

    def _release(self, shard_id: int) -> None:
        self.owner.pop(shard_id, None)
        self.revoking.discard(shard_id)


@dataclass
class Logstore:
    name: str
    ttl: int
    create_time: int
    config: dict
    shards: Dict[int, Shard] = field(default_factory=dict)
    consumer_groups: Dict[str, ConsumerGroup] = field(default_factory=dict)
    next_lb: int = 0

    def shard(self, shard_id: int) -> Shard:
        shard = self.shards.get(shard_id)
        if shard is None:
            raise SlsError(400, "ShardNotExist", "Shard %s does not exist" % shard_id)
        return shard

    def consumer_group(self, name: str) -> ConsumerGroup:
        group = self.consumer_groups.get(name)
        if group is None:
            raise SlsError(404, "ConsumerGroupNotExist", "consumer group %s not exist" % name)
        return group

    def is_over(self, group: ConsumerGroup, shard: Shard) -> bool:
        """A readonly shard whose checkpoint reached its end cursor is finished ("over")."""
        if shard.status != "readonly":
            return False
        checkpoint = group.checkpoints.get(shard.shard_id)
        if checkpoint is None or not checkpoint.cursor:
            return False
        try:
            return decode_cursor(checkpoint.cursor) >= shard.end_seq
        except SlsError:
            return False

    def _ancestors_over(self, group: ConsumerGroup, shard: Shard) -> bool:
        pending = list(shard.parents)
        seen: Set[int] = set()
        while pending:
            parent_id = pending.pop()
            if parent_id in seen or parent_id not in self.shards:
                continue
            seen.add(parent_id)
            parent = self.shards[parent_id]
            if not self.is_over(group, parent):
                return False
            pending.extend(parent.parents)
        return True

    def assignable(self, group: ConsumerGroup) -> List[int]:
        """Shards a consumer may hold: not over and, with order=true, not waiting on unfinished ancestors."""
        return [shard_id for shard_id, shard in sorted(self.shards.items())
                if not self.is_over(group, shard)
                and (not group.order or self._ancestors_over(group, shard))]


@dataclass
class Project:
    name: str
    description: str
    create_time: int
    logstores: Dict[str, Logstore] = field(default_factory=dict)

    def logstore(self, name: str) -> Logstore:
        logstore = self.logstores.get(name)
        if logstore is None:
            raise SlsError(404, "LogStoreNotExist", "logstore %s does not exist" % name)
        return logstore


def _even_ranges(count: int) -> List[Tuple[str, str]]:
    bounds = [i * HASH_SPACE // count for i in range(count)] + [HASH_SPACE]
    ranges = []
    for i in range(count):
        end = HASH_MAX if i == count - 1 else _hash_key(bounds[i + 1])
        ranges.append((_hash_key(bounds[i]), end))
    return ranges


class SlsState:
    """The whole emulated service.

    Arguments:
        max_consumer_groups: consumer groups allowed per logstore (real SLS: 30).
        clock: monotonic clock for consumer liveness (tests may fast-forward with ``advance_clock``).
        strict_heartbeat: reject a heartbeat from an unknown consumer that reports shards with
            400 NotExistConsumerWithBody, as the real service documents; off by default.
    """

    def __init__(self, max_consumer_groups: int = DEFAULT_MAX_CONSUMER_GROUPS,
                 clock: Callable[[], float] = time.monotonic, strict_heartbeat: bool = False):
        self.lock = threading.RLock()
        self.projects: Dict[str, Project] = {}
        self.max_consumer_groups = max_consumer_groups
        self.strict_heartbeat = strict_heartbeat
        self._clock = clock
        self._clock_offset = 0.0

    # ---- time ---------------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the liveness clock forward, so consumers time out without waiting."""
        with self.lock:
            self._clock_offset += seconds

    # ---- projects and logstores ---------------------------------------------------------------------

    def project(self, name: str) -> Project:
        project = self.projects.get(name)
        if project is None:
            raise SlsError(404, "ProjectNotExist", "The Project does not exist : %s" % name)
        return project

    def logstore(self, project: str, logstore: str) -> Logstore:
        return self.project(project).logstore(logstore)

    def create_project(self, name: str, description: str = "") -> None:
        with self.lock:
            if name in self.projects:
                raise SlsError(400, "ProjectAlreadyExist", "Project %s already exist" % name)
            self.projects[name] = Project(name, description, int(time.time()))

    def delete_project(self, name: str) -> None:
        with self.lock:
            self.project(name)
            del self.projects[name]

    def create_logstore(self, project: str, name: str, shard_count: int = 2, ttl: int = 30,
                        config: Optional[dict] = None) -> None:
        with self.lock:
            owner = self.project(project)
            if name in owner.logstores:
                raise SlsError(400, "LogStoreAlreadyExist", "logstore %s already exist" % name)
            if shard_count < 1:
                raise SlsError(400, "ParameterInvalid", "shardCount must be at least 1")
            created = int(time.time())
            logstore = Logstore(name, ttl, created, dict(config or {}))
            for shard_id, (begin, end) in enumerate(_even_ranges(shard_count)):
                logstore.shards[shard_id] = Shard(shard_id, begin, end, created)
            owner.logstores[name] = logstore

    def delete_logstore(self, project: str, name: str) -> None:
        with self.lock:
            owner = self.project(project)
            owner.logstore(name)
            del owner.logstores[name]

    # ---- shards -------------------------------------------------------------------------------------

    def list_shards(self, project: str, logstore: str) -> List[dict]:
        with self.lock:
            return [shard.describe() for _, shard in sorted(self.logstore(project, logstore).shards.items())]

    def split_shard(self, project: str, logstore: str, shard_id: int, key: Optional[str] = None) -> List[dict]:
        """Split a readwrite shard at ``key`` (default: the middle); the parent becomes readonly.

        Returns:
            The parent and the two children, as ListShards entries.
        """
        with self.lock:
            store = self.logstore(project, logstore)
            parent = store.shard(shard_id)
            if parent.status != "readwrite":
                raise SlsError(400, "ParameterInvalid", "shard %s is readonly and cannot be split" % shard_id)
            begin, end = int(parent.begin_key, 16), int(parent.end_key, 16)
            if parent.end_key == HASH_MAX:
                end = HASH_SPACE
            if key is None:
                key = _hash_key((begin + end) // 2)
            key = key.lower()
            if len(key) != 32 or not all(c in "0123456789abcdef" for c in key) \
                    or not begin < int(key, 16) < end:
                raise SlsError(400, "ParameterInvalid", "split key %s is not inside shard %s" % (key, shard_id))
            first_id = max(store.shards) + 1
            created = int(time.time())
            left = Shard(first_id, parent.begin_key, key, created, parents=(shard_id,))
            right = Shard(first_id + 1, key, parent.end_key, created, parents=(shard_id,))
            parent.status = "readonly"
            store.shards[left.shard_id] = left
            store.shards[right.shard_id] = right
            return [parent.describe(), left.describe(), right.describe()]

    def merge_shard(self, project: str, logstore: str, shard_id: int) -> List[dict]:
        """Merge a readwrite shard with its right neighbour; both become readonly.

        Returns:
            The new shard and the two parents, as ListShards entries.
        """
        with self.lock:
            store = self.logstore(project, logstore)
            left = store.shard(shard_id)
            right = next((s for s in store.shards.values()
                          if s.status == "readwrite" and s.begin_key == left.end_key), None)
            if left.status != "readwrite" or right is None:
                raise SlsError(400, "ParameterInvalid", "shard %s has no readwrite right neighbour to merge" % shard_id)
            merged = Shard(max(store.shards) + 1, left.begin_key, right.end_key, int(time.time()),
                           parents=(left.shard_id, right.shard_id))
            left.status = right.status = "readonly"
            store.shards[merged.shard_id] = merged
            return [merged.describe(), left.describe(), right.describe()]

    def pick_shard(self, project: str, logstore: str, hash_key: Optional[str]) -> int:
        """Choose the readwrite shard for a put: by hash key, else round-robin."""
        with self.lock:
            store = self.logstore(project, logstore)
            writable = [s for _, s in sorted(store.shards.items()) if s.status == "readwrite"]
            if not writable:
                raise SlsError(400, "LogStoreWithoutShard", "logstore %s has no writable shard" % logstore)
            if hash_key is None:
                store.next_lb += 1
                return writable[(store.next_lb - 1) % len(writable)].shard_id
            key = hash_key.lower()
            if len(key) != 32 or not all(c in "0123456789abcdef" for c in key):
                raise SlsError(400, "ParameterInvalid", "hash key %s is not 32 hex characters" % hash_key)
            for shard in writable:
                if shard.covers(key):
                    return shard.shard_id
            raise SlsError(400, "ShardNotExist", "no writable shard covers hash key %s" % hash_key)

    def append(self, project: str, logstore: str, shard_id: int, groups: Sequence[bytes],
               receive_time: Optional[int] = None, allow_readonly: bool = False) -> None:
        """Store serialized log groups at the end of a shard with their receive time."""
        with self.lock:
            shard = self.logstore(project, logstore).shard(shard_id)
            if shard.status != "readwrite" and not allow_readonly:
                raise SlsError(400, "ShardReadOnly", "shard %s is readonly" % shard_id)
            when = int(time.time()) if receive_time is None else int(receive_time)
            shard.groups.extend(groups)
            shard.receive_times.extend([when] * len(groups))

    def expire(self, project: str, logstore: str, shard_id: int, count: int) -> None:
        """Drop the ``count`` oldest groups of a shard, as TTL expiry does."""
        with self.lock:
            shard = self.logstore(project, logstore).shard(shard_id)
            count = min(count, len(shard.groups))
            del shard.groups[:count]
            del shard.receive_times[:count]
            shard.expired += count

    def cursor_for(self, project: str, logstore: str, shard_id: int, position: str) -> str:
        """GetCursor: ``begin``, ``end`` or unix seconds (first group received at or after it)."""
        with self.lock:
            shard = self.logstore(project, logstore).shard(shard_id)
            if position == "begin":
                return encode_cursor(shard.begin_seq)
            if position == "end":
                return encode_cursor(shard.end_seq)
            try:
                when = int(position)
            except ValueError:
                raise SlsError(400, "ParameterInvalid", "Parameter From is not valid") from None
            for index, received in enumerate(shard.receive_times):
                if received >= when:
                    return encode_cursor(shard.begin_seq + index)
            return encode_cursor(shard.end_seq)

    def cursor_time(self, project: str, logstore: str, shard_id: int, cursor: str) -> int:
        """GetCursorTime: the receive time of the group at ``cursor``."""
        with self.lock:
            shard = self.logstore(project, logstore).shard(shard_id)
            seq = decode_cursor(cursor)
            if not shard.begin_seq <= seq <= shard.end_seq:
                raise SlsError(400, "InvalidCursor", "cursor %s is out of range" % cursor)
            if seq == shard.end_seq:
                return shard.receive_times[-1] if shard.receive_times else int(time.time())
            return shard.receive_times[seq - shard.begin_seq]

    def read(self, project: str, logstore: str, shard_id: int, cursor: str, count: int,
             end_cursor: str = "") -> Tuple[List[bytes], str]:
        """PullLogs: the groups from ``cursor`` on (at most ``count``, stopping at ``end_cursor``).

        Returns:
            (serialized groups, next cursor); next == cursor when nothing is available.
        """
        if not 0 < count <= MAX_PULL_COUNT:
            raise SlsError(400, "ParameterInvalid", "count must be within [1, %d]" % MAX_PULL_COUNT)
        with self.lock:
            shard = self.logstore(project, logstore).shard(shard_id)
            seq = decode_cursor(cursor)
            if not shard.begin_seq <= seq <= shard.end_seq:
                raise SlsError(400, "InvalidCursor", "cursor %s is out of range" % cursor)
            stop = shard.end_seq
            if end_cursor:
                stop = min(stop, decode_cursor(end_cursor))
            stop = max(seq, min(seq + count, stop))
            first = seq - shard.begin_seq
            groups = shard.groups[first:first + (stop - seq)]
            return groups, (cursor if stop == seq else encode_cursor(stop))

    # ---- consumer groups ----------------------------------------------------------------------------

    def create_consumer_group(self, project: str, logstore: str, name: str, timeout: int, order: bool) -> None:
        with self.lock:
            store = self.logstore(project, logstore)
            if name in store.consumer_groups:
                raise SlsError(400, "ConsumerGroupAlreadyExist", "consumer group already exist")
            if len(store.consumer_groups) >= self.max_consumer_groups:
                raise SlsError(400, "ConsumerGroupQuotaExceed",
                               "consumer group quota exceed, at most %d per logstore" % self.max_consumer_groups)
            store.consumer_groups[name] = ConsumerGroup(name, timeout, order)

    def update_consumer_group(self, project: str, logstore: str, name: str, timeout: Optional[int],
                              order: Optional[bool]) -> None:
        with self.lock:
            group = self.logstore(project, logstore).consumer_group(name)
            if timeout is not None:
                group.timeout = timeout
            if order is not None:
                group.order = order

    def delete_consumer_group(self, project: str, logstore: str, name: str) -> None:
        with self.lock:
            store = self.logstore(project, logstore)
            store.consumer_group(name)
            del store.consumer_groups[name]

    def list_consumer_groups(self, project: str, logstore: str) -> List[dict]:
        with self.lock:
            return [group.describe() for group in self.logstore(project, logstore).consumer_groups.values()]

    def heartbeat(self, project: str, logstore: str, name: str, consumer: str, reported: Iterable[int]) -> List[int]:
        """One heartbeat (§8.1): refresh liveness, apply what the consumer gave up, rebalance.

        Returns:
            The shards this consumer holds and may keep consuming (never ones being revoked).
        """
        with self.lock:
            store = self.logstore(project, logstore)
            group = store.consumer_group(name)
            now = self.now()
            group.expire(now)
            reported_set = set(reported)
            if self.strict_heartbeat and consumer not in group.last_seen and reported_set:
                raise SlsError(400, "NotExistConsumerWithBody",
                               "non-exist consumer with non-empty body of heartbeat message")
            group.last_seen[consumer] = now
            for shard_id in [s for s, owner in group.owner.items() if owner == consumer and s not in reported_set]:
                group._release(shard_id)
            assignable = store.assignable(group)
            assignable_set = set(assignable)
            for shard_id in [s for s in group.owner if s not in assignable_set]:
                group._release(shard_id)
            active = self._active_counts(group)
            # Consumers already holding more get the remainder first, so a rebalance moves few shards.
            ranking = sorted(group.last_seen, key=lambda c: (-active.get(c, 0), c))
            shares, extra = divmod(len(assignable), len(ranking))
            allowed = shares + (1 if ranking.index(consumer) < extra else 0)
            mine = sorted(s for s, owner in group.owner.items() if owner == consumer and s not in group.revoking)
            if len(mine) > allowed:
                group.revoking.update(mine[allowed:])
                mine = mine[:allowed]
            else:
                for shard_id in assignable:
                    if len(mine) >= allowed:
                        break
                    if shard_id not in group.owner:
                        group.owner[shard_id] = consumer
                        mine.append(shard_id)
            return sorted(mine)

    @staticmethod
    def _active_counts(group: ConsumerGroup) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for shard_id, owner in group.owner.items():
            if shard_id not in group.revoking:
                counts[owner] = counts.get(owner, 0) + 1
        return counts

    def get_checkpoints(self, project: str, logstore: str, name: str, shard_id: Optional[int]) -> List[dict]:
        with self.lock:
            store = self.logstore(project, logstore)
            group = store.consumer_group(name)
            if shard_id is None:
                shard_ids = sorted(store.shards)
            else:
                shard_ids = [shard_id] if shard_id in store.shards else []
            result = []
            for sid in shard_ids:
                checkpoint = group.checkpoints.get(sid, Checkpoint())
                result.append({"shard": sid, "checkpoint": checkpoint.cursor,
                               "updateTime": checkpoint.update_time_us, "consumer": checkpoint.consumer})
            return result

    def update_checkpoint(self, project: str, logstore: str, name: str, consumer: str, shard_id: int,
                          cursor: str, force: bool) -> None:
        with self.lock:
            store = self.logstore(project, logstore)
            group = store.consumer_group(name)
            if shard_id not in store.shards:
                raise SlsError(404, "ShardNotExist", "shard not exist")
            try:
                decode_cursor(cursor)
            except SlsError:
                raise SlsError(400, "InvalidShardCheckPoint", "shard checkpoint not encoded by base64") from None
            if not force and group.owner.get(shard_id) != consumer:
                raise SlsError(400, "ConsumerNotMatch",
                               "consumer %s does not hold shard %s" % (consumer, shard_id))
            group.checkpoints[shard_id] = Checkpoint(cursor.strip(), consumer, int(time.time() * 1_000_000))

    def consumer_view(self, project: str, logstore: str, name: str) -> ConsumerGroup:
        """The consumer group after applying timeouts (for the test API; callers hold ``lock``)."""
        group = self.logstore(project, logstore).consumer_group(name)
        group.expire(self.now())
        return group
