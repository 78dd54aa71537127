"""SLS request signatures: v1 (HMAC-SHA1, the SDK default) and v4 (HMAC-SHA256 with region). Pure functions.

Both follow aliyun-log-python-sdk 0.9.52 (aliyun/log/auth.py) byte for byte; the unit tests use the SDK as oracle.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Mapping
from urllib.parse import quote

__all__ = ["sign_v1", "sign_v4", "content_md5", "EMPTY_SHA256"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def content_md5(body: bytes) -> str:
    """Return the Content-MD5 header value SLS expects: uppercase hex MD5 of the body as sent."""
    return hashlib.md5(body).hexdigest().upper()


def _is_signed_log_header(lower_name: str) -> bool:
    return lower_name.startswith("x-acs-") or (
        lower_name.startswith("x-log-") and not lower_name.startswith("x-log-meta-")
    )


def _lower_headers(headers: Mapping[str, str]) -> dict:
    return {name.lower(): value for name, value in headers.items()}


def sign_v1(
    access_key_id: str,
    access_key_secret: str,
    method: str,
    resource: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
) -> str:
    """Return the v1 ``Authorization`` header value, ``LOG <AccessKeyId>:<base64 HMAC-SHA1>``.

    Arguments:
        access_key_id: The AccessKey id.
        access_key_secret: The AccessKey secret (HMAC key).
        method: HTTP verb, e.g. "GET".
        resource: The URL path before percent-encoding, e.g. "/logstores/ls1/shards/0".
        params: Query parameters with their raw (not encoded) string values; blank values are signed as "k=".
        headers: The request headers, including Date, Content-MD5 (when there is a body), Content-Type (when
            sent) and every x-log-*/x-acs-* header. x-log-date is ignored: the SDK adds it after signing.

    Returns:
        The Authorization header value.
    """
    lower = _lower_headers(headers)
    canonical_headers = "".join(
        "%s:%s\n" % (name, lower[name])
        for name in sorted(lower)
        if _is_signed_log_header(name) and name != "x-log-date"
    )
    canonical_resource = resource
    if params:
        canonical_resource += "?" + "&".join("%s=%s" % (key, params[key]) for key in sorted(params))
    string_to_sign = "%s\n%s\n%s\n%s\n%s%s" % (
        method,
        lower.get("content-md5", ""),
        lower.get("content-type", ""),
        lower.get("date", ""),
        canonical_headers,
        canonical_resource,
    )
    digest = hmac.new(access_key_secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return "LOG %s:%s" % (access_key_id, base64.b64encode(digest).decode("ascii"))


def _hmac_sha256(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign_v4(
    access_key_id: str,
    access_key_secret: str,
    region: str,
    method: str,
    resource: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
) -> str:
    """Return the v4 ``Authorization`` header value (``SLS4-HMAC-SHA256 Credential=...,Signature=...``).

    Arguments:
        access_key_id: The AccessKey id.
        access_key_secret: The AccessKey secret.
        region: The SLS region, e.g. "cn-hangzhou".
        method: HTTP verb.
        resource: The URL path before percent-encoding.
        params: Query parameters with raw string values.
        headers: The request headers, which must already hold ``x-log-date`` (``YYYYMMDDTHHMMSSZ``) and
            ``x-log-content-sha256`` (hex SHA-256 of the body, or of b"" when there is none). Host,
            Content-Type and x-log-*/x-acs-* headers are signed.

    Returns:
        The Authorization header value.

    Raises:
        KeyError: x-log-date or x-log-content-sha256 is missing.
    """
    lower = _lower_headers(headers)
    request_time = lower["x-log-date"]
    payload_sha256 = lower["x-log-content-sha256"]
    signed = sorted(
        name for name in lower if name in ("content-type", "host") or _is_signed_log_header(name)
    )
    canonical_headers = "".join("%s:%s\n" % (name, lower[name].strip()) for name in signed)
    query_parts = []
    for key in sorted(params):
        encoded = quote(str(params[key]).encode("utf-8"), safe="~")
        query_parts.append("%s=%s" % (key, encoded) if encoded else key)
    canonical_request = "\n".join(
        (method, resource, "&".join(query_parts), canonical_headers, ";".join(signed), payload_sha256)
    )
    date = request_time[:8]
    scope = "%s/%s/sls/aliyun_v4_request" % (date, region)
    string_to_sign = "SLS4-HMAC-SHA256\n%s\n%s\n%s" % (
        request_time,
        scope,
        hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
    )
    key = ("aliyun_v4" + access_key_secret).encode("utf-8")
    for part in (date, region, "sls", "aliyun_v4_request"):
        key = _hmac_sha256(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return "SLS4-HMAC-SHA256 Credential=%s/%s,Signature=%s" % (access_key_id, scope, signature)
