"""HEC delivery, modelled on kafka-connect-splunk's hecclient: one small class per concern.

config (HecConfig) -> batch (request packing) -> sender (HTTP + error classes) -> ack_poller (indexer acks)
-> deadletter (rejected events) -> client (HecSink, the EventSink facade).
"""

from .client import HecSink
from .config import HecConfig

__all__ = ["HecSink", "HecConfig"]
