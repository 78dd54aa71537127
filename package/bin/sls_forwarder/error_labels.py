"""The ``exc_l`` label of each ERROR line, for the UCC dashboard's Errors tab.

That tab charts ``log_level=ERROR`` lines by ``exc_l`` and lists only the lines that have one (solnlib's
``log_exception`` writes it). ErrorLabels gives every ERROR line of the add-on a label: the one the call site passes
(``extra={"exc_l": ...}``), else the one of the exception it logs, else "Internal Error".
"""

from __future__ import annotations

import logging
from typing import Optional

from .errors import ConfigError, ForwarderError, PermanentError, RetryableError

__all__ = ["AUTHENTICATION", "CONFIGURATION", "CONNECTION", "DATA", "INTERNAL", "PERMISSION", "SERVER",
           "ErrorLabels", "error_label"]

# The first five are the Errors tab's type filter; the last two show under its "All".
PERMISSION = "Permission Error"
AUTHENTICATION = "Authentication Error"
CONNECTION = "Connection Error"
CONFIGURATION = "Configuration Error"
SERVER = "Server Error"
DATA = "Data Error"          # events Splunk refused (dead-lettered) or data that cannot be read
INTERNAL = "Internal Error"  # a defect of the add-on

_AUTHENTICATION_CODES = frozenset({"SignatureNotMatch", "ProxyAuthRequired", "hec:1", "hec:2", "hec:3", "hec:4",
                                   "hec:16"})
_PERMISSION_CODES = frozenset({"hec:7"})


def error_label(error: BaseException) -> str:
    """The Errors tab's label for ``error``."""
    if not isinstance(error, ForwarderError):
        return CONNECTION if isinstance(error, (ConnectionError, TimeoutError)) else INTERNAL
    code = error.code
    if code in _AUTHENTICATION_CODES or code.startswith("InvalidAccessKeyId") or "SecurityToken" in code:
        return AUTHENTICATION
    if code in _PERMISSION_CODES:
        return PERMISSION
    if code == "Unauthorized":  # SLS says so for an unknown AccessKey and for an action RAM denies
        return PERMISSION if "denied" in error.message else AUTHENTICATION
    if error.status == 403:
        return PERMISSION
    if error.status in (401, 407):
        return AUTHENTICATION
    if isinstance(error, RetryableError) and not error.status:  # no answer at all
        return CONNECTION
    if isinstance(error, ConfigError):
        return CONFIGURATION
    if isinstance(error, PermanentError):
        return DATA
    return SERVER


class ErrorLabels(logging.Filter):
    """Put ``exc_l="<label>"`` in front of every ERROR and CRITICAL line (a handler filter; it drops nothing)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Several handlers see the same record, and solnlib's log_exception writes its own label.
        if record.levelno >= logging.ERROR and not str(record.msg).startswith("exc_l="):
            label = getattr(record, "exc_l", None) or self._label_of(record)
            record.msg = 'exc_l="%s" %s' % (label, record.msg)
        return True

    @staticmethod
    def _label_of(record: logging.LogRecord) -> str:
        error: Optional[BaseException] = None
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
        elif isinstance(record.args, tuple):
            error = next((arg for arg in record.args if isinstance(arg, BaseException)), None)
        return error_label(error) if error is not None else INTERNAL
