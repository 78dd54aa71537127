"""Run a built app's modular input the way splunkd does (see README.md)."""

from .runner import ModInputRunner, RunningInput, Scheme, ValidationResult, interpreters, read_conf
from .stream import StreamParser

__all__ = ["ModInputRunner", "RunningInput", "Scheme", "StreamParser", "ValidationResult", "interpreters",
           "read_conf"]
