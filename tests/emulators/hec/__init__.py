"""Splunk HTTP Event Collector emulator (see README.md)."""

from .server import HEC_REPLIES, HecEmulator, HecFaults, TokenConfig

__all__ = ["HEC_REPLIES", "HecEmulator", "HecFaults", "TokenConfig"]
