"""Caches bounded by an estimate of their bytes, and the hit-rate measure that decides whether caching pays off.

The data path caches what repeats from log to log (field headers, key sequences, seconds, hosts). A bound on the
number of entries is no bound on memory: logs whose keys never repeat (producers with dynamic keys) made 4,096
entries of 1,000-key templates hold about 450 MB. ``SizedCache`` accounts each entry's bytes instead, and
``HitRate`` lets a transcoder stop filling its caches when they do not pay off. Pure: imports nothing of the add-on.
"""

from __future__ import annotations

import sys
from typing import Dict, Hashable, Iterable, TypeVar

__all__ = ["SizedCache", "HitRate", "entry_bytes", "ENTRY_OVERHEAD"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# A dict slot (hash, key and value pointers) plus its share of the index and of the spare room a dict keeps.
ENTRY_OVERHEAD = 100

_getsizeof = sys.getsizeof


def entry_bytes(*objects: object, items: Iterable[object] = ()) -> int:
    """Estimated bytes of a cache entry made of ``objects`` (and the members of the container ``items``)."""
    size = ENTRY_OVERHEAD + sum(map(_getsizeof, objects))
    if items:
        size += sum(map(_getsizeof, items))
    return size


class SizedCache(Dict[K, V]):
    """A dict that empties itself when the estimated bytes of its entries would pass ``limit``.

    Emptied rather than evicted one by one: what repeats refills it at once, and data that changed shape does not
    keep the old shape's entries. Reads are plain dict reads (``get`` stays a C call on the hot path); ``put``
    accounts the bytes. Shared by threads without a lock (a miss is on the hot path of data with many distinct
    hosts): the dict operations are atomic, a key stored twice is counted twice (an over-estimate), and the rare lost
    update of ``size`` under-counts one entry until the next emptying.

    Arguments:
        limit: Bytes the entries may hold together; a single entry bigger than that is not stored.
    """

    __slots__ = ("limit", "size")

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.size = 0

    def put(self, key: K, value: V, size: int) -> None:
        """Store ``value`` under ``key``, accounted as ``size`` bytes (see ``entry_bytes``)."""
        if size > self.limit:
            return
        if self.size + size > self.limit:
            self.clear()
            self.size = 0
        self[key] = value
        self.size += size


class HitRate:
    """Whether a cache of per-key-sequence work pays off, judged over windows of ``window`` lookups.

    A window with fewer than ``min_rate`` hits turns caching off for the next ``pause`` windows (the caller takes its
    plain path for those and reports them with ``bypassed``); then a window tries the cache again, so data that
    becomes regular gets the cache back. The counters are a heuristic: concurrent callers may lose an update.

    Arguments:
        window: Lookups per judgement.
        min_rate: Lowest share of hits for which the cache is worth filling.
        pause: Windows the cache is left alone after a poor one.
    """

    __slots__ = ("window", "min_rate", "pause", "_lookups", "_misses", "_bypass_left")

    def __init__(self, window: int, min_rate: float, pause: int) -> None:
        self.window = window
        self.min_rate = min_rate
        self.pause = pause
        self._lookups = 0
        self._misses = 0
        self._bypass_left = 0

    @property
    def caching(self) -> bool:
        """False while the cache is left alone after a window of too few hits."""
        return self._bypass_left <= 0

    def observed(self, lookups: int, misses: int) -> None:
        """Count ``lookups`` made through the cache, ``misses`` of them missed; judge a full window."""
        self._lookups += lookups
        self._misses += misses
        if self._lookups >= self.window:
            if self._lookups - self._misses < self.min_rate * self._lookups:
                self._bypass_left = self.pause * self.window
            self._lookups = self._misses = 0

    def bypassed(self, count: int) -> None:
        """Count ``count`` items that took the plain path while caching was off."""
        self._bypass_left -= count
