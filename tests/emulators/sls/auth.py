"""Server-side verification of SLS request signatures (v1 HMAC-SHA1 and v4 HMAC-SHA256).

The algorithms mirror what ``aliyun-log-python-sdk`` 0.9.52 signs (auth.py / util.py); see §3 of
``sls-wire-protocol.md``. Verification recomputes the signature from exactly what was received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Dict, List, Mapping, Optional, Tuple
import time
from urllib.parse import quote

from ..sts.tokens import TokenError, TokenIssuer


class AuthFailure(Exception):
    """A request failed authentication; carries the SLS error the real service would give."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _is_signed_log_header(name: str) -> bool:
    return name.startswith("x-acs-") or (name.startswith("x-log-") and not name.startswith("x-log-meta-"))


def string_to_sign_v1(method: str, path: str, params: List[Tuple[str, str]], headers: Mapping[str, str]) -> str:
    """Build the v1 string to sign.

    Arguments:
        method: HTTP verb.
        path: URL-decoded request path ("/logstores/ls").
        params: decoded query parameters, blank values kept.
        headers: request headers with lowercase names.

    Returns:
        The canonical string the client signed.
    """
    canonical_headers = "".join(
        "%s:%s\n" % (name, headers[name]) for name in sorted(headers)
        if _is_signed_log_header(name) and name != "x-log-date")
    resource = path
    if params:
        resource += "?" + "&".join("%s=%s" % pair for pair in sorted(params))
    # The SDK adds x-log-date after signing with the same value as Date; either may survive a proxy.
    date = headers.get("date") or headers.get("x-log-date", "")
    return "%s\n%s\n%s\n%s\n%s%s" % (method, headers.get("content-md5", ""), headers.get("content-type", ""),
                                      date, canonical_headers, resource)


V1_DIGESTS = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256}


def sign_v1(secret: str, string_to_sign: str, method: str = "hmac-sha1") -> str:
    """Return base64(HMAC(secret, string_to_sign)) with the digest ``x-log-signaturemethod`` names: hmac-sha1 (the
    Python SDK) or hmac-sha256 (the Tea gateway of the newer SDKs, e.g. @alicloud/sls20201230)."""
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), V1_DIGESTS[method]).digest()
    return base64.b64encode(digest).decode("ascii")


def canonical_request_v4(method: str, path: str, params: List[Tuple[str, str]], headers: Mapping[str, str]) -> Tuple[str, str]:
    """Build the v4 canonical request and its signed-header list.

    Returns:
        (canonical request, signed headers joined with ";").
    """
    query = "&".join(
        key + ("=" + quote(value.encode("utf-8"), safe="~") if value else "")
        for key, value in sorted(params))
    names = sorted(name for name in headers
                   if name in ("content-type", "host") or _is_signed_log_header(name))
    canonical_headers = "".join("%s:%s\n" % (name, headers[name].strip()) for name in names)
    signed_headers = ";".join(names)
    payload_hash = headers.get("x-log-content-sha256", "")
    return "\n".join((method, path, query, canonical_headers, signed_headers, payload_hash)), signed_headers


def sign_v4(secret: str, date: str, region: str, string_to_sign: str) -> str:
    """Return the hex v4 signature (key chain aliyun_v4+secret -> date -> region -> sls -> aliyun_v4_request)."""
    key = ("aliyun_v4" + secret).encode("utf-8")
    for part in (date, region, "sls", "aliyun_v4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


class Authenticator:
    """Checks Authorization headers against configured AccessKey pairs, optional STS tokens, and the temporary keys
    the STS and metadata twins issue.

    Arguments:
        access_keys: {AccessKeyId: AccessKeySecret}.
        sts_tokens: {AccessKeyId: security token}; requests with such a key must carry the token in
            ``x-acs-security-token``. None: no STS keys.
        issuer: Verifies temporary keys (``STS.`` ids) by their sealed token; None accepts none.
    """

    def __init__(self, access_keys: Mapping[str, str], sts_tokens: Optional[Mapping[str, str]] = None,
                 issuer: Optional[TokenIssuer] = None):
        self.access_keys: Dict[str, str] = dict(access_keys)
        self.sts_tokens: Dict[str, str] = dict(sts_tokens or {})
        self.issuer = issuer
        # Temporary keys issued before this time count as expired (the test knob "expire them early").
        self.expired_before = 0.0

    def verify(self, method: str, path: str, params: List[Tuple[str, str]], headers: Mapping[str, str],
               body: bytes) -> str:
        """Verify one request.

        Arguments:
            method: HTTP verb.
            path: URL-decoded path.
            params: decoded query parameters.
            headers: request headers, lowercase names.
            body: the request body as received.

        Returns:
            The AccessKeyId that signed the request.

        Raises:
            AuthFailure: with the status and errorCode real SLS returns.
        """
        authorization = headers.get("authorization", "").strip()
        if not authorization:
            raise AuthFailure(401, "Unauthorized", "The Authorization header is missing.")
        if authorization.startswith("LOG "):
            key_id, signature = self._split_v1(authorization)
            digest = headers.get("x-log-signaturemethod", "hmac-sha1").strip().lower() or "hmac-sha1"
            if digest not in V1_DIGESTS:
                raise AuthFailure(400, "InvalidSignatureMethod", "signature method %s is not supported" % digest)
            secret = self._secret(key_id, headers)
            expected = sign_v1(secret, string_to_sign_v1(method, path, params, headers), digest)
            if not hmac.compare_digest(expected, signature):
                raise AuthFailure(401, "SignatureNotMatch", "signature %s not match" % signature)
            return key_id
        if authorization.startswith("SLS4-HMAC-SHA256 "):
            return self._verify_v4(method, path, params, headers, body, authorization)
        raise AuthFailure(401, "Unauthorized", "The Authorization header is not a supported signature.")

    @staticmethod
    def _split_v1(authorization: str) -> Tuple[str, str]:
        credential = authorization[len("LOG "):]
        key_id, sep, signature = credential.rpartition(":")
        if not sep or not key_id:
            raise AuthFailure(401, "Unauthorized", "The Authorization header is malformed.")
        return key_id, signature

    def _secret(self, key_id: str, headers: Mapping[str, str]) -> str:
        if key_id.startswith("STS.") and self.issuer is not None and key_id not in self.access_keys:
            return self._temporary_secret(key_id, headers.get("x-acs-security-token", ""))
        secret = self.access_keys.get(key_id)
        if secret is None:
            raise AuthFailure(401, "Unauthorized", "AccessKeyId not found: %s" % key_id)
        token = self.sts_tokens.get(key_id)
        if token is not None and headers.get("x-acs-security-token", "") != token:
            raise AuthFailure(401, "InvalidSecurityToken", "The security token you provided is invalid.")
        return secret

    def _temporary_secret(self, key_id: str, token: str) -> str:
        """The secret of an issued temporary key; the token must be its own and still valid."""
        if not token:
            raise AuthFailure(401, "InvalidSecurityToken", "The security token you provided is invalid.")
        try:
            key = self.issuer.verify(key_id, token)  # type: ignore[union-attr]
        except TokenError:
            raise AuthFailure(401, "InvalidSecurityToken", "The security token you provided is invalid.") from None
        if key.expiration <= time.time() or key.issued_at < self.expired_before:
            raise AuthFailure(401, "SecurityTokenExpired", "The security token you provided has expired.")
        return key.access_key_secret

    def _verify_v4(self, method: str, path: str, params: List[Tuple[str, str]], headers: Mapping[str, str],
                   body: bytes, authorization: str) -> str:
        fields = dict(part.strip().split("=", 1) for part in authorization[len("SLS4-HMAC-SHA256 "):].split(",")
                      if "=" in part)
        credential = fields.get("Credential", "").split("/")
        if len(credential) != 5 or not fields.get("Signature"):
            raise AuthFailure(401, "Unauthorized", "The Authorization header is malformed.")
        key_id, date, region = credential[0], credential[1], credential[2]
        secret = self._secret(key_id, headers)
        payload_hash = headers.get("x-log-content-sha256", "")
        if payload_hash != hashlib.sha256(body).hexdigest():
            raise AuthFailure(401, "SignatureNotMatch", "x-log-content-sha256 does not match the body")
        canonical, _ = canonical_request_v4(method, path, params, headers)
        string_to_sign = "\n".join((
            "SLS4-HMAC-SHA256", headers.get("x-log-date", ""), "/".join(credential[1:]),
            hashlib.sha256(canonical.encode("utf-8")).hexdigest()))
        expected = sign_v4(secret, date, region, string_to_sign)
        if not hmac.compare_digest(expected, fields["Signature"]):
            raise AuthFailure(401, "SignatureNotMatch", "signature %s not match" % fields["Signature"])
        return key_id
