"""STS twin: AssumeRole with RPC v1 signature checking (see server.py), and the temporary keys it issues."""

from .server import Role, StsEmulator
from .tokens import DEFAULT_ISSUER_KEY, TemporaryKey, TokenError, TokenIssuer

__all__ = ["StsEmulator", "Role", "TokenIssuer", "TemporaryKey", "TokenError", "DEFAULT_ISSUER_KEY"]
