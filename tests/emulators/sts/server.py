"""A local STS (API 2015-04-01) serving AssumeRole the way the real service does.

Requests are RPC style: every parameter in the query or a form body, GET or POST, signed with RPC v1 (HMAC-SHA1 over
``METHOD&%2F&percentEncode(sorted k=v)``, key ``secret + "&"``). The signature is recomputed from exactly what
arrived; a ``+`` in the query is a space, as on the real service, so a client that form-encodes spaces fails here
as it does there. Answers are the real JSON bodies: success with ``Credentials``/``AssumedRoleUser``, errors with
``RequestId``, ``HostId``, ``Code``, ``Message`` and ``Recommend``.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Mapping, Optional, Set, Tuple
from urllib.parse import parse_qsl, quote, urlsplit

from ..http_twin import Answer, TwinLifecycle, TwinServer
from .tokens import DEFAULT_ISSUER_KEY, TokenError, TokenIssuer

__all__ = ["StsEmulator", "Role", "string_to_sign"]

HOST_ID = "sts.aliyuncs.com"
_SESSION_NAME = re.compile(r"^[A-Za-z0-9.@_-]{2,64}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_COMMON = ("Action", "Version", "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce",
           "Timestamp", "Signature")
_SKEW_SECONDS = 15 * 60


def percent_encode(text: str) -> str:
    return quote(text.encode("utf-8"), safe="-_.~")


def string_to_sign(method: str, params: List[Tuple[str, str]]) -> str:
    """What the client must have signed: every parameter but Signature, encoded, sorted by encoded name."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in params if k != "Signature")
    canonical = "&".join("%s=%s" % pair for pair in encoded)
    return "%s&%s&%s" % (method, percent_encode("/"), percent_encode(canonical))


@dataclass
class Role:
    """A RAM role that may be assumed.

    Arguments:
        arn: ``acs:ram::<account>:role/<name>``.
        trusted: Principals the trust policy names: AccessKey ids of RAM users or role ARNs (of callers using
            temporary keys). Empty: anyone with a valid key.
        external_id: The trust policy's ``sts:ExternalId`` condition; "" for none.
        max_session_duration: The role's MaxSessionDuration in seconds.
    """

    arn: str
    trusted: FrozenSet[str] = frozenset()
    external_id: str = ""
    max_session_duration: int = 3600


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, recommend: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.recommend = status, code, message, recommend


@dataclass
class StsStats:
    issued: int = 0
    refused: Dict[str, int] = field(default_factory=dict)


class StsEmulator(TwinLifecycle):
    """The STS twin.

    Arguments:
        access_keys: {AccessKeyId: secret} of RAM users allowed to call STS.
        roles: The roles that exist.
        host, port: Where to listen (127.0.0.x; port 0 picks a free one).
        issuer_key: Seals the temporary keys (shared with the SLS and metadata twins).
        lifetime: Test knob: issued credentials live this many seconds whatever DurationSeconds says (None: as asked).
        root_keys: AccessKey ids that belong to a root account (refused: roles may not be assumed by root accounts).
    """

    def __init__(self, access_keys: Mapping[str, str], roles: List[Role], *, host: str = "127.0.0.1", port: int = 0,
                 issuer_key: str = DEFAULT_ISSUER_KEY, lifetime: Optional[float] = None,
                 root_keys: FrozenSet[str] = frozenset()) -> None:
        self.access_keys = dict(access_keys)
        self.roles = {role.arn: role for role in roles}
        self.issuer = TokenIssuer(issuer_key)
        self.lifetime = lifetime
        self.root_keys = set(root_keys)
        self.failing: Optional[Tuple[int, str]] = None   # (status, code) answered to every request while set
        self.stats = StsStats()
        self._nonces: Set[str] = set()
        self._lock = threading.Lock()
        self.http = TwinServer(self._handle, host, port, name="sts-emulator")

    @property
    def endpoint(self) -> str:
        """The ``sts_endpoint`` value an account uses to reach this twin."""
        return self.http.url

    # ------------------------------------------------------------------------------------------ faults

    def go_down(self) -> None:
        """Close every connection without an answer (STS unreachable)."""
        self.http.drop_connections = True

    def come_back(self) -> None:
        self.http.drop_connections = False
        self.failing = None

    def fail_with(self, status: int = 503, code: str = "ServiceUnavailable") -> None:
        """Answer every request with this error until ``come_back``."""
        self.failing = (status, code)

    def assumed(self) -> List[str]:
        """The detail of every served request: "issued" or the error code."""
        return [served.detail for served in self.http.request_log]

    # ------------------------------------------------------------------------------------------ requests

    def _handle(self, method: str, target: str, headers: Dict[str, str], body: bytes) -> Tuple[Answer, str]:
        request_id = str(uuid.uuid4()).upper()
        try:
            if self.failing is not None:
                status, code = self.failing
                raise _Refusal(status, code, "The request has failed due to a temporary failure of the server.")
            params = parse_qsl(urlsplit(target).query, keep_blank_values=True)
            if method == "POST" and body and "form-urlencoded" in headers.get("content-type", ""):
                params += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            document = self._assume_role(method, params)
        except _Refusal as refusal:
            with self._lock:
                self.stats.refused[refusal.code] = self.stats.refused.get(refusal.code, 0) + 1
            error = {"RequestId": request_id, "HostId": HOST_ID, "Code": refusal.code, "Message": refusal.message,
                     "Recommend": refusal.recommend or
                     "https://api.aliyun.com/troubleshoot?q=%s&product=Sts" % refusal.code}
            return Answer(refusal.status, json.dumps(error).encode("utf-8")), refusal.code
        document = dict(document, RequestId=request_id)
        with self._lock:
            self.stats.issued += 1
        return Answer(200, json.dumps(document).encode("utf-8")), "issued"

    def _assume_role(self, method: str, pairs: List[Tuple[str, str]]) -> Dict[str, object]:
        params = dict(pairs)
        for name in _COMMON:
            if not params.get(name):
                raise _Refusal(400, "MissingParameter", "The input parameter \"%s\" that is mandatory for processing "
                                                        "this request is not supplied." % name)
        if params["Action"] != "AssumeRole":
            raise _Refusal(400, "InvalidAction.NotFound", "Specified api is not found, please check your url and "
                                                          "method.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            raise _Refusal(400, "InvalidSignatureMethod", "Specified signature method is not supported.")
        self._check_timestamp(params["Timestamp"])
        caller = self._caller(params)
        secret = self._secret_of(params)
        expected_sts = string_to_sign(method, pairs)
        expected = base64.b64encode(hmac.new((secret + "&").encode("utf-8"), expected_sts.encode("utf-8"),
                                             hashlib.sha1).digest()).decode("ascii")
        if not hmac.compare_digest(expected, params["Signature"]):
            raise _Refusal(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. "
                                                         "server string to sign is:" + expected_sts)
        with self._lock:
            if params["SignatureNonce"] in self._nonces:
                raise _Refusal(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self._nonces.add(params["SignatureNonce"])
        return self._issue(params, caller)

    @staticmethod
    def _check_timestamp(text: str) -> None:
        try:
            when = calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            raise _Refusal(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well "
                                                           "formatted.") from None
        if abs(time.time() - when) > _SKEW_SECONDS:
            raise _Refusal(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")

    def _caller(self, params: Mapping[str, str]) -> str:
        """The principal calling: a RAM user's AccessKey id, or the role ARN a temporary key acts as."""
        key_id = params["AccessKeyId"]
        if key_id.startswith("STS."):
            token = params.get("SecurityToken", "")
            if not token:
                raise _Refusal(400, "MissingSecurityToken", "SecurityToken is mandatory for this action.")
            try:
                key = self.issuer.verify(key_id, token)
            except TokenError:
                raise _Refusal(400, "InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed.") from None
            if key.expiration <= time.time():
                raise _Refusal(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
            return key.principal
        if key_id not in self.access_keys:
            raise _Refusal(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        return key_id

    def _secret_of(self, params: Mapping[str, str]) -> str:
        key_id = params["AccessKeyId"]
        return self.issuer.secret_of(key_id) if key_id.startswith("STS.") else self.access_keys[key_id]

    def _issue(self, params: Mapping[str, str], caller: str) -> Dict[str, object]:
        session = params.get("RoleSessionName", "")
        if not _SESSION_NAME.match(session):
            raise _Refusal(400, "InvalidParameter.RoleSessionName", "The parameter RoleSessionName is wrongly "
                                                                    "formed.")
        role = self.roles.get(params.get("RoleArn", ""))
        duration_text = params.get("DurationSeconds") or "3600"
        max_duration = role.max_session_duration if role else 3600
        if not duration_text.isdigit() or not 900 <= int(duration_text) <= max_duration:
            raise _Refusal(400, "InvalidParameter.DurationSeconds",
                           "The Min/Max value of DurationSeconds is 15min/%dhr." % (max_duration // 3600))
        external_id = params.get("ExternalId")
        if external_id is not None and not _EXTERNAL_ID.match(external_id):
            raise _Refusal(400, "InvalidParameter.ExternalId", "The parameter ExternalId is wrongly formed.")
        if caller in self.root_keys:
            raise _Refusal(403, "NoPermission", "Roles may not be assumed by root accounts.")
        if role is None:
            raise _Refusal(404, "EntityNotExist.Role", "The role not exists: %s." % params.get("RoleArn", ""))
        if role.trusted and caller not in role.trusted:
            raise _Refusal(403, "NoPermission", "You are not authorized to do this action. You should be authorized "
                                                "by RAM.")
        if role.external_id and external_id != role.external_id:
            raise _Refusal(403, "NoPermission", "No permission perform sts:AssumeRole on this Role: the ExternalId "
                                                "does not match the condition of the role's trust policy.")
        lifetime = self.lifetime if self.lifetime is not None else int(duration_text)
        key = self.issuer.issue(role.arn, lifetime)
        account = role.arn.split(":")[3]
        return {
            "AssumedRoleUser": {"Arn": "%s/%s" % (role.arn, session),
                                "AssumedRoleId": "3%s:%s" % (account[:17], session)},
            "Credentials": {"AccessKeyId": key.access_key_id, "AccessKeySecret": key.access_key_secret,
                            "SecurityToken": key.security_token, "Expiration": key.expiration_text},
        }
