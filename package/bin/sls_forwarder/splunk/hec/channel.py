"""The HEC data channel: one GUID per process, sent with every request and needed for indexer acknowledgement."""

from __future__ import annotations

import threading
import uuid
from typing import Optional

__all__ = ["HecChannel", "process_channel"]


class HecChannel:
    """A data channel identifier (``X-Splunk-Request-Channel``); ackIds are numbered per channel.

    Arguments:
        channel_id: A GUID; a new random one when empty.
    """

    def __init__(self, channel_id: str = "") -> None:
        self.id = channel_id or str(uuid.uuid4())

    def __repr__(self) -> str:
        return "HecChannel(%r)" % self.id


_lock = threading.Lock()
_process_channel: Optional[HecChannel] = None


def process_channel() -> HecChannel:
    """Return this process's channel, created on first use.

    Each worker process of an input has its own channel, so its ackIds never mix with another's.
    """
    global _process_channel
    with _lock:
        if _process_channel is None:
            _process_channel = HecChannel()
        return _process_channel
