"""Error classes shared by the SLS and Splunk sides.

The class says what the caller should do; the attributes say what went wrong:

- RetryableError: try again later with backoff, forever, never skip data.
- PermanentError: this request is bad; retrying cannot help (dead-letter it).
- ConfigError: configuration or credentials are wrong; log one clear line, retry slowly.
- InvalidCursorError: SLS no longer knows the cursor (InvalidCursor).
"""

from __future__ import annotations

from typing import List

__all__ = [
    "ForwarderError",
    "RetryableError",
    "PermanentError",
    "ConfigError",
    "InvalidCursorError",
    "error_chain",
]


class ForwarderError(Exception):
    """Base class of every error the forwarder raises on purpose.

    Arguments:
        message: What is wrong, in words an admin understands. Never a secret.
        code: SLS errorCode (e.g. "SignatureNotMatch") or "hec:<n>" for HEC codes.
        request_id: SLS x-log-requestid, "" if none.
        status: HTTP status, 0 when no response was received.
    """

    def __init__(self, message: str, *, code: str = "", request_id: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id
        self.status = status

    def __str__(self) -> str:
        details = []
        if self.code:
            details.append("code=%s" % self.code)
        if self.status:
            details.append("status=%d" % self.status)
        if self.request_id:
            details.append("request_id=%s" % self.request_id)
        if not details:
            return self.message
        return "%s (%s)" % (self.message, " ".join(details))

    def __repr__(self) -> str:
        return "%s(%r, code=%r, request_id=%r, status=%r)" % (
            type(self).__name__,
            self.message,
            self.code,
            self.request_id,
            self.status,
        )


class RetryableError(ForwarderError):
    """Transient: 5xx, throttling, connection errors, HEC codes 8/9 and 503. Retry with backoff."""


class PermanentError(ForwarderError):
    """The event itself is bad (HEC codes 5, 6, 12, 13, 15; 413; an event over maxEventSize). Retrying cannot help,
    so only the offending events go to the dead-letter file."""


class ConfigError(ForwarderError):
    """Configuration or credentials are wrong (bad key, missing project, TLS verify failure, unknown host)."""


class InvalidCursorError(ForwarderError):
    """SLS rejected the cursor (InvalidCursor): it is malformed or its data has expired."""


def error_chain(exc: BaseException) -> List[BaseException]:
    """Return ``exc`` and every error it wraps: urllib3 wraps socket and ssl errors in several ways (``args``,
    ``reason``, ``original_error``, ``__cause__``, ``__context__``), and TLS or DNS failures are only recognisable
    by what is inside."""
    seen: List[BaseException] = []
    pending = [exc]
    while pending and len(seen) < 20:
        current = pending.pop()
        if any(current is known for known in seen):
            continue
        seen.append(current)
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None),
                  getattr(current, "original_error", None)]
        linked.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        pending.extend(e for e in linked if isinstance(e, BaseException))
    return seen
