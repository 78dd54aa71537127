"""Temporary AccessKeys as Alibaba Cloud issues them (STS AssumeRole, ECS RAM roles), self-contained.

The security token carries the key id, the principal and the validity, sealed with an issuer key that the STS,
metadata and SLS twins share (a default one, or ``--issuer-key`` on their command lines), so the SLS emulator
verifies a token without asking the twin that issued it, even in another process. The secret is derived from the
key id with the same issuer key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Callable, List

__all__ = ["TokenIssuer", "TemporaryKey", "TokenError", "DEFAULT_ISSUER_KEY", "format_time"]

DEFAULT_ISSUER_KEY = "ta-aliyun-sls-emulator-issuer"
_ALPHABET = string.ascii_letters + string.digits


def format_time(epoch: float) -> str:
    """The one time format STS and ECS metadata use: ``2026-01-01T12:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class TokenError(Exception):
    """The token is not one this issuer made, or does not belong to the key id."""


@dataclass(frozen=True)
class TemporaryKey:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    principal: str            # the ARN of the role the key acts as
    issued_at: float          # unix seconds (sub-second, so "expire everything issued so far" is exact)
    expiration: int           # unix seconds

    @property
    def expiration_text(self) -> str:
        return format_time(self.expiration)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


class TokenIssuer:
    """Issues and verifies temporary keys.

    Arguments:
        issuer_key: The shared sealing key.
        clock: Unix seconds (tests may move it).
    """

    def __init__(self, issuer_key: str = DEFAULT_ISSUER_KEY, clock: Callable[[], float] = time.time) -> None:
        self._key = issuer_key.encode("utf-8")
        self.clock = clock
        self.issued: List[TemporaryKey] = []  # every key handed out (tests grep the add-on's output for them)

    def _mac(self, purpose: str, text: str) -> str:
        return _b64(hmac.new(self._key, (purpose + "|" + text).encode("utf-8"), hashlib.sha256).digest())

    def secret_of(self, access_key_id: str) -> str:
        return self._mac("secret", access_key_id)[:30]

    def issue(self, principal: str, lifetime: float) -> TemporaryKey:
        """A new key acting as ``principal``, valid ``lifetime`` seconds from now (whole seconds, as STS states)."""
        now = self.clock()
        expiration = int(now + lifetime)
        key_id = "STS." + "".join(secrets.choice(_ALPHABET) for _ in range(24))
        claims = _b64(json.dumps({"k": key_id, "p": principal, "i": round(now, 6), "e": expiration},
                                 separators=(",", ":")).encode("utf-8"))
        token = "CAIS" + claims + "." + self._mac("token", claims)
        key = TemporaryKey(key_id, self.secret_of(key_id), token, principal, round(now, 6), expiration)
        self.issued.append(key)
        return key

    def verify(self, access_key_id: str, token: str) -> TemporaryKey:
        """The key a token describes (expired or not: the caller decides).

        Raises:
            TokenError: the token is malformed, forged, or belongs to another key id.
        """
        if not token.startswith("CAIS") or "." not in token:
            raise TokenError("the security token is malformed")
        claims, _, mac = token[4:].rpartition(".")
        if not hmac.compare_digest(mac, self._mac("token", claims)):
            raise TokenError("the security token was not issued here")
        try:
            data = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        except ValueError:
            raise TokenError("the security token is malformed") from None
        if data.get("k") != access_key_id:
            raise TokenError("the security token belongs to another AccessKey")
        return TemporaryKey(access_key_id, self.secret_of(access_key_id), token, str(data["p"]), float(data["i"]),
                            int(data["e"]))
