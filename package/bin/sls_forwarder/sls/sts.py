"""STS AssumeRole over the RPC API (version 2015-04-01), signed with RPC v1 (HMAC-SHA1), through the proxy like SLS.

The parameters travel in a form body, not the URL, so neither the security token of ECS base credentials nor the
ExternalId end up in a proxy's access log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import ssl
import time
import uuid
from typing import Any, Dict, Mapping
from urllib.parse import quote

import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from ..errors import ConfigError, ForwarderError, RetryableError, error_chain
from .credentials import Credentials
from .endpoint import parse_endpoint
from .imds import parse_expiration
from .transport import pool_manager

__all__ = ["StsClient", "sign_rpc_v1", "percent_encode"]

API_VERSION = "2015-04-01"
_MAX_MESSAGE = 300


def percent_encode(text: str) -> str:
    """RFC 3986 encoding as RPC v1 wants it: keep ``A-Za-z0-9-_.~``, everything else ``%XX`` (space is %20)."""
    return quote(text.encode("utf-8"), safe="-_.~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join("%s=%s" % (percent_encode(k), percent_encode(params[k])) for k in sorted(params))
    return "%s&%s&%s" % (method, percent_encode("/"), percent_encode(canonical))


def sign_rpc_v1(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign)) over every parameter except Signature."""
    digest = hmac.new((secret + "&").encode("utf-8"), string_to_sign(method, params).encode("utf-8"),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class StsClient:
    """AssumeRole against one STS endpoint.

    Arguments:
        endpoint: ``[http[s]://]host[:port]``, https by default (``sts.aliyuncs.com``, ``sts.<region>.aliyuncs.com``,
            ``sts-vpc.<region>.aliyuncs.com``).
        proxy_url: ``http://[user:password@]host:port`` or "".
        ca_bundle: PEM file of CAs to verify STS against ("" = the bundled store).
        timeout: Connect and read timeout in seconds.
    """

    def __init__(self, endpoint: str, *, proxy_url: str = "", ca_bundle: str = "", timeout: float = 10.0) -> None:
        parsed = parse_endpoint(endpoint)
        self.url = "%s://%s:%d/" % (parsed.scheme, parsed.host, parsed.port)
        pool_kw: Dict[str, Any] = {"num_pools": 2, "maxsize": 2, "retries": False,
                                   "timeout": urllib3.Timeout(connect=timeout, read=timeout)}
        if parsed.scheme == "https":
            pool_kw["cert_reqs"] = "CERT_REQUIRED"
            if ca_bundle:
                pool_kw["ca_certs"] = ca_bundle
        self._pool = pool_manager(proxy_url, pool_kw)

    def assume_role(self, base: Credentials, role_arn: str, session_name: str, duration_seconds: int,
                    external_id: str = "") -> Credentials:
        """Temporary credentials of ``role_arn``, signed with ``base`` (a RAM user's key, or STS credentials).

        Raises:
            ConfigError: STS refuses for a reason retrying cannot fix; the message says which.
            RetryableError: STS cannot be reached, is failing or throttles.
        """
        params = {
            "Action": "AssumeRole", "Version": API_VERSION, "Format": "JSON", "AccessKeyId": base.access_key_id,
            "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
            "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "RoleArn": role_arn,
            "RoleSessionName": session_name, "DurationSeconds": str(duration_seconds),
        }
        if external_id:
            params["ExternalId"] = external_id
        if base.security_token:
            params["SecurityToken"] = base.security_token
        params["Signature"] = sign_rpc_v1("POST", params, base.access_key_secret)
        body = "&".join("%s=%s" % (percent_encode(k), percent_encode(v)) for k, v in params.items())
        secrets = (base.access_key_secret, base.security_token, external_id, params["Signature"])
        try:
            response = self._pool.urlopen("POST", self.url, body=body.encode("utf-8"), redirect=False,
                                          headers={"Content-Type": "application/x-www-form-urlencoded",
                                                   "Accept": "application/json", "User-Agent": "TA-aliyun-sls"})
        except Urllib3HTTPError as exc:
            raise self._transport_error(exc, secrets) from None
        try:
            document = json.loads(response.data.decode("utf-8", "replace")) if response.data else {}
        except ValueError:
            document = {}
        if response.status != 200:
            raise self._status_error(response.status, document if isinstance(document, dict) else {}, role_arn,
                                     base, secrets)
        try:
            issued = document["Credentials"]
            return Credentials(str(issued["AccessKeyId"]), str(issued["AccessKeySecret"]),
                               str(issued["SecurityToken"]), parse_expiration(str(issued["Expiration"])))
        except (KeyError, TypeError, ValueError):
            raise RetryableError("STS sent an AssumeRole answer without readable credentials",
                                 code="StsBadResponse", status=200) from None

    # ------------------------------------------------------------------------------------------ errors

    @staticmethod
    def _scrub(text: str, secrets: tuple) -> str:
        """Remove secrets from text STS sent: its string to sign holds every parameter, encoded twice."""
        text = text.split("server string to sign is:", 1)[0]
        for secret in secrets:
            if secret and len(secret) >= 4:
                once = percent_encode(secret)
                for form in (secret, once, percent_encode(once)):
                    text = text.replace(form, "***")
        return text[:_MAX_MESSAGE]

    def _status_error(self, status: int, document: Mapping[str, Any], role_arn: str, base: Credentials,
                      secrets: tuple) -> ForwarderError:
        code = str(document.get("Code") or "")
        message = self._scrub(str(document.get("Message") or ""), secrets)
        kwargs = {"code": code or "StsHttp%d" % status, "request_id": str(document.get("RequestId") or ""),
                  "status": status}
        if status >= 500 or status == 429 or code.startswith("Throttling") or code == "ServiceUnavailable":
            return RetryableError(f"STS is failing or throttling ({code or status}); will retry", **kwargs)
        explained = _explain(code, message, role_arn, base.access_key_id)
        return ConfigError(f"STS AssumeRole of {role_arn} refused: {explained}", **kwargs)

    def _transport_error(self, exc: Urllib3HTTPError, secrets: tuple) -> ForwarderError:
        chain = error_chain(exc)
        reason = self._scrub("%s: %s" % (type(exc).__name__, exc), secrets)
        if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or "CERTIFICATE_VERIFY_FAILED" in reason:
            return ConfigError(f"the TLS certificate of STS at {self.url} could not be verified ({reason})",
                               code="TLSVerifyFailed")
        if any(isinstance(e, socket.gaierror) for e in chain):
            return ConfigError(f"the STS endpoint {self.url} does not resolve; check sts_endpoint and DNS",
                               code="NameResolutionFailed")
        return RetryableError(f"STS at {self.url} is unreachable ({reason})", code="StsUnreachable")


def _explain(code: str, message: str, role_arn: str, key_id: str) -> str:
    """What an admin must fix, for the codes STS answers AssumeRole with."""
    if code == "EntityNotExist.Role":
        return f"no such role: {role_arn} does not exist; check role_arn (account id and role name)"
    if code == "NoPermission" and "externalid" in message.lower():
        return "wrong ExternalId: it does not match the sts:ExternalId condition of the role's trust policy"
    if code == "NoPermission":
        return (f"not allowed to assume the role: its trust policy must name the caller ({key_id}), any "
                f"sts:ExternalId condition must match external_id, and the caller needs sts:AssumeRole "
                f"(roles cannot be assumed with an Alibaba Cloud root account's key) [{message}]")
    if code.startswith("InvalidAccessKeyId"):
        return f"the base AccessKey ID {key_id} is unknown or disabled"
    if code == "SignatureDoesNotMatch":
        return "the base AccessKey secret is wrong"
    if code == "InvalidParameter.RoleSessionName":
        return "role_session_name must be 2-64 letters, digits and . @ _ -"
    if code == "InvalidParameter.DurationSeconds":
        return "duration_seconds is outside what the role allows (900 to the role's MaxSessionDuration)"
    if code.startswith("InvalidSecurityToken") or code == "MissingSecurityToken":
        return "the base credentials' security token is invalid or expired"
    return f"{code or 'error'}: {message}"
