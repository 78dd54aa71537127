"""DeadLetterFile: where events HEC permanently rejects (or that are too large to send) are kept, never dropped."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Dict, Iterable

__all__ = ["DeadLetterFile"]


class DeadLetterFile:
    """Appends JSON lines to ``<checkpoint_dir>/<input>.deadletter.jsonl``; thread-safe, durable before returning.

    One record per event: ``time`` (UTC, ISO 8601), ``shard``, ``cursor`` (where its batch was pulled from),
    ``event_index`` (position in the batch), ``reason`` ("rejected" or "too_large"), ``hec_code``, ``status``,
    ``text`` (HEC's reply or the size rule) and ``event`` (the envelope as text, UTF-8 decoded).

    Arguments:
        path: The file; its directory is created when missing.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, records: Iterable[Dict[str, Any]]) -> None:
        """Append ``records`` and fsync, so a batch is reported done only once its rejects are on disk.

        Raises:
            OSError: The file cannot be written (the caller retries; the batch stays undelivered).
        """
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = "".join(json.dumps(dict({"time": stamp}, **record), ensure_ascii=False) + "\n" for record in records)
        with self._lock:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
