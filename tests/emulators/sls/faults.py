"""Run-time fault switches for the SLS emulator. Every method is thread-safe."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Tuple

# HTTP status the real service uses with each error code a test may inject.
ERROR_STATUS = {
    "InternalServerError": 500,
    "RequestTimeout": 500,
    "ServerBusy": 503,
    "ReadQuotaExceed": 403,
    "WriteQuotaExceed": 403,
    "InvalidCursor": 400,
    "ParameterInvalid": 400,
    "SignatureNotMatch": 401,
    "Unauthorized": 401,
    "ConsumerGroupNotExist": 404,
    "ShardNotExist": 400,
    "ProjectNotExist": 404,
    "LogStoreNotExist": 404,
}

# The "code" next_errors understands as "close the connection without answering".
DROP = "drop"


@dataclass(frozen=True)
class Fault:
    """What the server must do instead of answering normally."""

    status: int = 0
    code: str = ""
    message: str = ""
    drop: bool = False


@dataclass
class _PendingSplit:
    project: str
    logstore: str
    shard_id: int
    remaining: int
    key: Optional[str]


class Faults:
    """Fault injection for tests; switch at any time, from any thread.

    Attributes (plain assignment is fine):
        latency: seconds added before every answer.
        error_rate: share (0..1) of requests answered 500 InternalServerError.
        read_quota_rate: share of pull_logs answered 403 ReadQuotaExceed.
        drop_rate: share of requests whose connection is closed without an answer.
        apis: limit the three rates above to these API names; None means every API.
    """

    def __init__(self, seed: int = 0):
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.latency = 0.0
        self.error_rate = 0.0
        self.read_quota_rate = 0.0
        self.drop_rate = 0.0
        self.apis: Optional[FrozenSet[str]] = None
        self._queued: Dict[str, List[Tuple[str, int, int]]] = {}
        self._splits: List[_PendingSplit] = []
        self.injected: Dict[str, int] = {}

    def clear(self) -> None:
        """Switch every fault off."""
        with self._lock:
            self.latency = 0.0
            self.error_rate = 0.0
            self.read_quota_rate = 0.0
            self.drop_rate = 0.0
            self.apis = None
            self._queued.clear()
            self._splits.clear()

    def next_errors(self, api: str, code: str, count: int = 1, status: Optional[int] = None) -> None:
        """Fail the next ``count`` calls of ``api`` with ``code``.

        Arguments:
            api: emulator API name, e.g. "pull_logs", "heartbeat", "update_checkpoint".
            code: SLS errorCode, or "drop" to close the connection without answering.
            count: how many calls fail.
            status: HTTP status; default from the real service's status for that code (else 500).
        """
        http_status = status if status is not None else ERROR_STATUS.get(code, 500)
        with self._lock:
            self._queued.setdefault(api, []).append((code, http_status, count))

    def cancel_queued(self, api: str) -> None:
        """Forget the errors still queued for ``api`` by ``next_errors``."""
        with self._lock:
            self._queued.pop(api, None)

    def split_after_pulls(self, project: str, logstore: str, shard_id: int, pulls: int,
                          key: Optional[str] = None) -> None:
        """Split a shard right after it has answered ``pulls`` more pulls that returned data.

        The split happens on the server between two pulls of a consumer, as a real split would.
        """
        with self._lock:
            self._splits.append(_PendingSplit(project, logstore, shard_id, pulls, key))

    def pending_splits(self) -> int:
        """How many scheduled splits have not happened yet."""
        with self._lock:
            return len(self._splits)

    def take_split(self, project: str, logstore: str, shard_id: int) -> Optional[Tuple[bool, Optional[str]]]:
        """Count one data-returning pull; return (True, key) when a scheduled split is due now."""
        with self._lock:
            for pending in self._splits:
                if (pending.project, pending.logstore, pending.shard_id) == (project, logstore, shard_id):
                    pending.remaining -= 1
                    if pending.remaining <= 0:
                        self._splits.remove(pending)
                        return True, pending.key
                    return None
        return None

    def decide(self, api: str) -> Optional[Fault]:
        """Return the fault for this call, or None to answer normally."""
        with self._lock:
            queued = self._queued.get(api)
            if queued:
                code, status, count = queued[0]
                if count <= 1:
                    queued.pop(0)
                else:
                    queued[0] = (code, status, count - 1)
                self._count(code)
                if code == DROP:
                    return Fault(drop=True)
                return Fault(status, code, "injected fault %s" % code)
            if self.apis is not None and api not in self.apis:
                return None
            if self.drop_rate and self._random.random() < self.drop_rate:
                self._count(DROP)
                return Fault(drop=True)
            if self.error_rate and self._random.random() < self.error_rate:
                self._count("InternalServerError")
                return Fault(500, "InternalServerError", "injected internal server error")
            if api == "pull_logs" and self.read_quota_rate and self._random.random() < self.read_quota_rate:
                self._count("ReadQuotaExceed")
                return Fault(403, "ReadQuotaExceed", "Read quota exceed")
        return None

    def _count(self, code: str) -> None:
        self.injected[code] = self.injected.get(code, 0) + 1
