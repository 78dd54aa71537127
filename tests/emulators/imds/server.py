"""A local ECS instance metadata service: token mode, hardened mode, the attached RAM role and its credentials.

Paths as on ECS: ``PUT /latest/api/token`` (header ``X-aliyun-ecs-metadata-token-ttl-seconds``, 1-21600) answers a
token; ``GET /latest/meta-data/ram/security-credentials/`` names the attached role (no trailing newline);
``GET /latest/meta-data/ram/security-credentials/<role>`` answers the credentials JSON with ``Expiration`` in the strict
``%Y-%m-%dT%H:%M:%SZ`` form. In hardened mode a GET without a valid token is refused. Absolute-form targets
(``GET http://100.100.100.200/latest/...``) are served too, so a client can reach it as an HTTP proxy.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from ..http_twin import Answer, TwinLifecycle, TwinServer
from ..sts.tokens import DEFAULT_ISSUER_KEY, TemporaryKey, TokenIssuer, format_time

__all__ = ["ImdsEmulator"]

ROLE_PATH = "/latest/meta-data/ram/security-credentials/"
TOKEN_PATH = "/latest/api/token"
TEXT = "text/plain"


class ImdsEmulator(TwinLifecycle):
    """The metadata twin.

    Arguments:
        role_name: The RAM role attached to the instance; "" for none.
        account_id: The account the role belongs to (its ARN names it).
        hardened: Refuse GETs without a token (the instance option HttpTokens=required).
        lifetime: Seconds the role's credentials live; new ones are handed out once half of that has passed.
        issuer_key: Seals the temporary keys (shared with the SLS and STS twins).
    """

    def __init__(self, role_name: str = "sls-forwarder-role", *, account_id: str = "123456789012",
                 hardened: bool = True, lifetime: float = 21600, host: str = "127.0.0.1", port: int = 0,
                 issuer_key: str = DEFAULT_ISSUER_KEY) -> None:
        self.role_name = role_name
        self.account_id = account_id
        self.hardened = hardened
        self.lifetime = lifetime
        self.issuer = TokenIssuer(issuer_key)
        self.failing: Optional[int] = None     # HTTP status answered to every request while set
        self._tokens: Dict[str, float] = {}
        self._current: Optional[TemporaryKey] = None
        self._lock = threading.Lock()
        self.http = TwinServer(self._handle, host, port, name="imds-emulator")

    @property
    def role_arn(self) -> str:
        return "acs:ram::%s:role/%s" % (self.account_id, self.role_name)

    def fail_with(self, status: Optional[int]) -> None:
        """Answer every request with ``status`` (None: serve normally again)."""
        self.failing = status

    def rotate(self) -> None:
        """Hand out new credentials at the next request."""
        with self._lock:
            self._current = None

    def issued(self) -> List[str]:
        """Access key ids handed out so far, oldest first."""
        return [served.detail.split("=", 1)[1] for served in self.http.request_log if served.detail.startswith("key=")]

    # ------------------------------------------------------------------------------------------ requests

    def _handle(self, method: str, target: str, headers: Dict[str, str], body: bytes) -> Tuple[Answer, str]:
        path = urlsplit(target).path or "/"
        if self.failing is not None:
            return Answer(self.failing, b"", TEXT), "failing"
        if path == TOKEN_PATH:
            return self._token(method, headers)
        if method != "GET":
            return Answer(405, b"", TEXT), "method"
        token = headers.get("x-aliyun-ecs-metadata-token")
        if token is not None and not self._token_valid(token):
            return Answer(401, b"", TEXT), "bad_token"
        if token is None and self.hardened:
            return Answer(403, b"", TEXT), "token_required"
        if path == ROLE_PATH:
            if not self.role_name:
                return Answer(404, b"", TEXT), "no_role"
            return Answer(200, self.role_name.encode("utf-8"), TEXT), "role"
        if path.startswith(ROLE_PATH):
            if not self.role_name or path[len(ROLE_PATH):] != self.role_name:
                return Answer(404, b"", TEXT), "unknown_role"
            key = self._credentials()
            document = {"AccessKeyId": key.access_key_id, "AccessKeySecret": key.access_key_secret,
                        "SecurityToken": key.security_token, "Expiration": key.expiration_text,
                        "LastUpdated": format_time(key.issued_at), "Code": "Success"}
            return Answer(200, json.dumps(document).encode("utf-8"), TEXT), "key=" + key.access_key_id
        return Answer(404, b"", TEXT), "not_found"

    def _token(self, method: str, headers: Dict[str, str]) -> Tuple[Answer, str]:
        if method != "PUT":
            return Answer(405, b"", TEXT), "method"
        ttl = headers.get("x-aliyun-ecs-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return Answer(400, b"", TEXT), "bad_ttl"
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.time() + int(ttl)
        return Answer(200, token.encode("ascii"), TEXT), "token"

    def _token_valid(self, token: str) -> bool:
        with self._lock:
            return self._tokens.get(token, 0) > time.time()

    def _credentials(self) -> TemporaryKey:
        with self._lock:
            current = self._current
            if current is None or current.expiration - time.time() < self.lifetime / 2:
                current = self._current = self.issuer.issue(self.role_arn, self.lifetime)
            return current
