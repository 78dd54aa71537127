"""The HEC data channel: a GUID sent with every request and needed for indexer acknowledgement.

Each HecSink has a channel of its own, since its ack poller must see every ackId issued on it; ``process_channel``
is one shared channel for requests whose replies nobody tracks (the validation check).
"""

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
    """Return this process's shared channel, created on first use (for requests whose ackIds are not tracked)."""
    global _process_channel
    with _lock:
        if _process_channel is None:
            _process_channel = HecChannel()
        return _process_channel
