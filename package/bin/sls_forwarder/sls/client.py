"""SlsClient: one method per SLS API call the add-on uses, over urllib3 with keep-alive, signing and retries.

Requests are built the way aliyun-log-python-sdk 0.9.52 builds them (same headers, parameters and bodies), so any
server the SDK works with works with this client. Pulls ask for ``deflate`` (zlib, stdlib) or no compression, never
lz4. The client is thread-safe: the pipeline, the heartbeat thread and the checkpoint writer share one instance.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import logging
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, Union
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import NewConnectionError, ProxyError
from urllib3.exceptions import SSLError as Urllib3SSLError

from ..backoff import Backoff
from ..errors import ConfigError, ForwarderError, InvalidCursorError, PermanentError, RetryableError, error_chain
from ..streak import FailureStreak
from .credentials import Credentials, CredentialsProvider, StaticCredentials
from .endpoint import Endpoint
from .signing import EMPTY_SHA256, content_md5, sign_v1, sign_v4
from .transport import OriginConnections, OriginResponse, proxy_manager, tls_context

__all__ = ["Credentials", "Shard", "PullResult", "Checkpoint", "SlsClient"]

logger = logging.getLogger("sls_forwarder.sls.client")
_T = TypeVar("_T")

API_VERSION = "0.6.0"
_JSON = "application/json"
# Error codes that mean the configuration or credentials are wrong.
_CONFIG_CODES = frozenset(
    {
        "SignatureNotMatch",
        "Unauthorized",
        "ProjectNotExist",
        "ProjectNotExists",
        "LogStoreNotExist",
        "ConsumerGroupQuotaExceed",
        "RequestTimeTooSkewed",
        "RequestTimeExpired",
    }
)
_RETRYABLE_CODES = frozenset({"InternalServerError", "RequestTimeout", "ServerBusy"})
# What SLS (and the SDK's list) call temporary credentials that are no longer valid.
_EXPIRED_TOKEN_CODES = frozenset({"SecurityTokenExpired", "SecurityToken.Expired", "InvalidSecurityToken",
                                  "InvalidSecurityToken.Expired"})
_HINTS = {
    "SignatureNotMatch": "check the AccessKey secret",
    "Unauthorized": "check the AccessKey id and its RAM permissions",
    "ProjectNotExist": "check the project name and the endpoint's region",
    "ProjectNotExists": "check the project name and the endpoint's region",
    "LogStoreNotExist": "check the logstore name",
    "ConsumerGroupQuotaExceed": "the logstore has too many consumer groups; delete unused ones",
    "RequestTimeTooSkewed": "the clock of this machine is wrong; sync it with NTP",
    "RequestTimeExpired": "the clock of this machine is wrong; sync it with NTP",
}
_MAX_SERVER_MESSAGE = 300
_STILL_FAILING_WARNING_INTERVAL = 300.0


@dataclass(frozen=True)
class Shard:
    shard_id: int
    status: str  # "readwrite" | "readonly"
    begin_key: str
    end_key: str
    create_time: int


@dataclass(frozen=True)
class PullResult:
    data: bytes  # uncompressed LogGroupList bytes (b"" if none)
    next_cursor: str
    count: int  # log groups (x-log-count)
    raw_size: int  # x-log-bodyrawsize


@dataclass(frozen=True)
class Checkpoint:
    shard_id: int
    cursor: str  # "" if never committed
    consumer: str
    update_time_us: int


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]  # lower-case names (OriginResponse) or case-insensitive (urllib3 HTTPHeaderDict)
    body: bytes
    request_id: str


class SlsClient:
    """Client of one SLS project.

    Arguments:
        endpoint: Where SLS is (see ``parse_endpoint``).
        credentials: An AccessKey pair, or a provider of (temporary) credentials; every attempt signs with the
            provider's current credentials.
        project: The SLS project.
        verify_tls: Verify the server certificate (on by default).
        ca_bundle: Path of a PEM CA bundle to verify against instead of the system store.
        proxy_url: ``http://[user:password@]host:port`` of an HTTP proxy; "" for none.
        timeout: Connect and read timeout of one request, in seconds.
        auth_version: "v1" (HMAC-SHA1, the SDK default) or "v4" (needs ``region``).
        region: SLS region for v4 signing, e.g. "cn-hangzhou".
        accept_encoding: "deflate" or "" (uncompressed pulls); never lz4.
        max_attempts: Attempts per call for retryable errors; 0 retries forever (the data path).
        stop: Set on shutdown; it wakes retry sleeps, after which the last error is raised.
        user_agent: The User-Agent header.
        pool_size: Keep-alive connections kept per host (one per thread sharing the client is enough).
        backoff_initial: First retry delay in seconds; it doubles per failure (with jitter) up to ``backoff_cap``.
        backoff_cap: Longest retry delay in seconds.

    Raises:
        ConfigError: An argument is invalid.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        credentials: Union[Credentials, CredentialsProvider],
        project: str,
        *,
        verify_tls: bool = True,
        ca_bundle: str = "",
        proxy_url: str = "",
        timeout: float = 60.0,
        auth_version: str = "v1",
        region: str = "",
        accept_encoding: str = "deflate",
        max_attempts: int = 0,
        stop: Optional[threading.Event] = None,
        user_agent: str = "TA-aliyun-sls",
        pool_size: int = 8,
        backoff_initial: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        if auth_version not in ("v1", "v4"):
            raise ConfigError("auth_version must be v1 or v4, got %r" % auth_version, code="InvalidAuthVersion")
        if auth_version == "v4" and not region:
            raise ConfigError("v4 signing needs the SLS region (e.g. cn-hangzhou)", code="InvalidAuthVersion")
        if accept_encoding not in ("deflate", ""):
            raise ConfigError("accept_encoding must be 'deflate' or '', got %r" % accept_encoding,
                              code="InvalidCompressType")
        if not project:
            raise ConfigError("the SLS project name is empty", code="InvalidProject")
        if max_attempts < 0:
            raise ConfigError("max_attempts must be >= 0", code="InvalidRetry")
        self.endpoint = endpoint
        self.project = project
        self._credentials: CredentialsProvider = (
            StaticCredentials(credentials) if isinstance(credentials, Credentials) else credentials)
        self._auth_version = auth_version
        self._region = region
        self._accept_encoding = accept_encoding
        self._max_attempts = max_attempts
        self._stop = stop if stop is not None else threading.Event()
        self._user_agent = user_agent
        try:
            Backoff(backoff_initial, backoff_cap)  # validate now rather than on the first failure
        except ValueError as exc:
            raise ConfigError("invalid retry backoff: %s" % exc, code="InvalidRetry") from None
        self._backoff_initial = backoff_initial
        self._backoff_cap = backoff_cap
        self._base_url = endpoint.base_url(project)
        self._host_header = endpoint.host_header(project)
        # Through a proxy, urllib3 (CONNECT or absolute-form); otherwise every call goes to one origin, through
        # http.client directly (see OriginConnections). Exactly one of the two is set.
        self._proxy: Optional[urllib3.ProxyManager] = None
        self._origin: Optional[OriginConnections] = None
        if proxy_url:
            pool_kw: Dict[str, Any] = {
                "num_pools": 4,
                "maxsize": pool_size,
                "block": False,
                "timeout": urllib3.Timeout(connect=timeout, read=timeout),
                "retries": False,  # every retry goes through _call, which re-signs and backs off
            }
            if endpoint.scheme == "https":
                pool_kw["cert_reqs"] = "CERT_REQUIRED" if verify_tls else "CERT_NONE"
                if verify_tls and ca_bundle:
                    pool_kw["ca_certs"] = ca_bundle
            self._proxy = proxy_manager(proxy_url, pool_kw)
        else:
            origin = urlsplit(self._base_url)
            tls = tls_context(verify_tls, ca_bundle) if endpoint.scheme == "https" else None
            self._origin = OriginConnections(endpoint.scheme, origin.hostname or endpoint.host,
                                             origin.port or endpoint.port, timeout, tls, pool_size)
        if endpoint.scheme == "https" and not verify_tls:
            logger.warning("action=sls_tls_verify_disabled project=%s host=%s", project, endpoint.host)

    # ------------------------------------------------------------------------------------------- API calls

    def get_project(self) -> dict:
        """Return the project's description (GetProject)."""
        return self._call("get_project", "GET", "/", parse=self._json_object)

    def get_logstore(self, logstore: str) -> dict:
        """Return the logstore's configuration (GetLogStore)."""
        return self._call("get_logstore", "GET", "/logstores/" + logstore, parse=self._json_object)

    def list_shards(self, logstore: str) -> List[Shard]:
        """Return every shard of the logstore, readonly ones included."""

        def parse(response: _Response) -> List[Shard]:
            return [
                Shard(
                    shard_id=int(item["shardID"]),
                    status=str(item.get("status", "")),
                    begin_key=str(item.get("inclusiveBeginKey", "")),
                    end_key=str(item.get("exclusiveEndKey", "")),
                    create_time=int(item.get("createTime", 0)),
                )
                for item in self._json_list(response)
            ]

        return self._call("list_shards", "GET", "/logstores/%s/shards" % logstore, parse=parse)

    def get_cursor(self, logstore: str, shard_id: int, start: Union[str, int]) -> str:
        """Return the cursor at ``start``: "begin", "end" or a unix time in seconds (server receive time)."""
        if start not in ("begin", "end") and (not isinstance(start, int) or isinstance(start, bool)):
            raise PermanentError("cursor start must be 'begin', 'end' or unix seconds, got %r" % (start,),
                                 code="ParameterInvalid")
        return self._call("get_cursor", "GET", self._shard_path(logstore, shard_id),
                          {"type": "cursor", "from": str(start)}, content_type=_JSON,
                          parse=lambda response: str(self._json_object(response)["cursor"]))

    def get_cursor_time(self, logstore: str, shard_id: int, cursor: str) -> int:
        """Return the server receive time (unix seconds) of the log group at ``cursor``."""
        return self._call("get_cursor_time", "GET", self._shard_path(logstore, shard_id),
                          {"type": "cursor_time", "cursor": cursor}, content_type=_JSON,
                          parse=lambda response: int(self._json_object(response)["cursor_time"]))

    def pull_logs(self, logstore: str, shard_id: int, cursor: str, count: int = 1000,
                  end_cursor: str = "", query: str = "") -> PullResult:
        """Pull up to ``count`` log groups from ``cursor`` (PullLogs).

        Arguments:
            logstore: The logstore.
            shard_id: The shard.
            cursor: Where to start; the result's ``next_cursor`` continues from there.
            count: Most log groups to return (1..1000).
            end_cursor: Stop before this cursor ("" for no limit).
            query: SPL filter run server side ("" for none).

        Returns:
            The uncompressed LogGroupList bytes and the next cursor. ``next_cursor == cursor`` with
            ``count == 0`` means there is no new data yet.

        Raises:
            InvalidCursorError: SLS rejected the cursor.
        """
        params, extra = self._pull_request(cursor, count, end_cursor, query)

        def parse(response: _Response) -> PullResult:
            headers = response.headers
            raw_size = int(headers["x-log-bodyrawsize"])
            return PullResult(
                data=self._decompressed("pull_logs", response, raw_size),
                next_cursor=headers["x-log-cursor"],
                count=int(headers["x-log-count"]),
                raw_size=raw_size,
            )

        return self._call("pull_logs", "GET", self._shard_path(logstore, shard_id), params,
                          extra_headers=extra, parse=parse)

    def has_data(self, logstore: str, shard_id: int, cursor: str, query: str = "") -> bool:
        """Whether the shard has data after ``cursor``: a PullLogs of one log group, sent once, never retried.

        For watching idle shards (idle.py); what it reads is dropped. Failures raise at once (classified as for
        ``pull_logs``), so the caller can hand the shard back to its own retry loop.
        """
        params, extra = self._pull_request(cursor, 1, "", query)
        response = self._send("pull_logs", "GET", self._shard_path(logstore, shard_id), params, b"", "", extra)
        return self._parse("pull_logs", response, lambda r: r.headers["x-log-cursor"]) != cursor

    def _pull_request(self, cursor: str, count: int, end_cursor: str,
                      query: str) -> Tuple[Dict[str, str], Dict[str, str]]:
        """Query parameters and extra headers of a PullLogs request."""
        params = {"type": "log", "cursor": cursor, "count": str(count)}
        if query.strip():
            params["pullMode"] = "scan_on_stream"
            params["query"] = query
        if end_cursor:
            params["end_cursor"] = end_cursor
        return params, {"Accept-Encoding": self._accept_encoding, "Accept": "application/x-protobuf"}

    def list_consumer_groups(self, logstore: str) -> List[dict]:
        """Return the consumer groups of the logstore as ``[{"name", "timeout", "order"}]``."""

        def parse(response: _Response) -> List[dict]:
            return [
                {"name": str(item["name"]), "timeout": int(item["timeout"]), "order": bool(item["order"])}
                for item in self._json_list(response)
            ]

        return self._call("list_consumer_groups", "GET", "/logstores/%s/consumergroups" % logstore, parse=parse)

    def create_consumer_group(self, logstore: str, group: str, timeout: int, order: bool) -> None:
        """Create a consumer group; an existing one raises PermanentError code ConsumerGroupAlreadyExist."""
        body = json.dumps({"consumerGroup": group, "timeout": timeout, "order": order}).encode("utf-8")
        # The SDK signs x-log-bodyrawsize: 0 here although there is a body.
        self._call("create_consumer_group", "POST", "/logstores/%s/consumergroups" % logstore, body=body,
                   content_type=_JSON, extra_headers={"x-log-bodyrawsize": "0"})

    def update_consumer_group(self, logstore: str, group: str, timeout: int, order: bool) -> None:
        """Set the timeout and order of an existing consumer group."""
        body = json.dumps({"order": order, "timeout": timeout}).encode("utf-8")
        self._call("update_consumer_group", "PUT", self._group_path(logstore, group), body=body,
                   content_type=_JSON, extra_headers={"x-log-bodyrawsize": str(len(body))})

    def heartbeat(self, logstore: str, group: str, consumer: str, shards: List[int]) -> List[int]:
        """Report the shards this consumer holds; return the shards the server assigns to it."""
        body = json.dumps([int(s) for s in shards]).encode("utf-8")
        return self._call("heartbeat", "POST", self._group_path(logstore, group),
                          {"type": "heartbeat", "consumer": consumer}, body=body, content_type=_JSON,
                          parse=lambda response: [int(s) for s in self._json_list(response)])

    def get_checkpoints(self, logstore: str, group: str, shard_id: Optional[int] = None) -> Dict[int, Checkpoint]:
        """Return the group's checkpoints, of one shard or of all shards."""

        def parse(response: _Response) -> Dict[int, Checkpoint]:
            result: Dict[int, Checkpoint] = {}
            for item in self._json_list(response):
                checkpoint = Checkpoint(
                    shard_id=int(item["shard"]),
                    cursor=str(item.get("checkpoint") or ""),
                    consumer=str(item.get("consumer") or ""),
                    update_time_us=int(item.get("updateTime") or 0),
                )
                result[checkpoint.shard_id] = checkpoint
            return result

        params = {} if shard_id is None else {"shard": str(shard_id)}
        return self._call("get_checkpoints", "GET", self._group_path(logstore, group), params, parse=parse)

    def update_checkpoint(self, logstore: str, group: str, consumer: str, shard_id: int, cursor: str) -> None:
        """Store ``cursor`` as the shard's checkpoint (forceSuccess, as the SDK's consumer does)."""
        params = {"type": "checkpoint", "consumer": consumer, "forceSuccess": "True"}
        body = json.dumps({"shard": int(shard_id), "checkpoint": cursor}).encode("utf-8")
        self._call("update_checkpoint", "POST", self._group_path(logstore, group), params, body=body,
                   content_type=_JSON)

    def close(self) -> None:
        """Close every pooled connection."""
        if self._proxy is not None:
            self._proxy.clear()
        if self._origin is not None:
            self._origin.close()

    # ---------------------------------------------------------------------------------------- the request

    @staticmethod
    def _shard_path(logstore: str, shard_id: int) -> str:
        return "/logstores/%s/shards/%d" % (logstore, shard_id)

    @staticmethod
    def _group_path(logstore: str, group: str) -> str:
        return "/logstores/%s/consumergroups/%s" % (logstore, group)

    def _call(self, api: str, method: str, resource: str, params: Optional[Dict[str, str]] = None, *,
              body: bytes = b"", content_type: str = "", extra_headers: Optional[Dict[str, str]] = None,
              parse: Optional[Callable[[_Response], _T]] = None) -> Optional[_T]:
        """Send one API call and parse its 200 response, retrying RetryableError as the retry policy says.

        A response ``parse`` cannot read (missing header or key, wrong JSON shape) counts as a retryable
        BadResponse, so a broken proxy or a server hiccup never turns into skipped data.
        """
        params = params or {}
        backoff = Backoff(self._backoff_initial, self._backoff_cap)
        streak = FailureStreak(remind_every=_STILL_FAILING_WARNING_INTERVAL)
        while True:
            try:
                response = self._send(api, method, resource, params, body, content_type, extra_headers or {})
                result = self._parse(api, response, parse) if parse is not None else None
            except RetryableError as err:
                attempt = streak.count + 1
                give_up = self._stop.is_set() or (self._max_attempts and attempt >= self._max_attempts)
                if give_up:
                    raise
                delay = backoff.next_delay()
                level = logging.WARNING if streak.failed() else logging.DEBUG
                if attempt == 1 and err.code in _EXPIRED_TOKEN_CODES:
                    level = logging.DEBUG  # the provider reported it once and is renewing the token
                self._log_retry(level, api, err, attempt, delay, streak.failing_for())
                if self._stop.wait(delay):
                    raise
                continue
            failures = streak.succeeded()
            if failures:
                logger.info("action=sls_recovered api=%s project=%s attempts=%d", api, self.project, failures + 1)
            return result

    @staticmethod
    def _parse(api: str, response: _Response, parse: Callable[[_Response], _T]) -> _T:
        try:
            return parse(response)
        except (KeyError, TypeError, ValueError) as exc:
            detail = "missing %s" % exc if isinstance(exc, KeyError) else str(exc)
            raise RetryableError("SLS %s returned a malformed response (%s)" % (api, detail[:200]),
                                 code="BadResponse", request_id=response.request_id, status=response.status) from None

    @staticmethod
    def _log_retry(level: int, api: str, err: ForwarderError, attempt: int, delay: float, failing_for: float) -> None:
        logger.log(level, "action=sls_retry api=%s code=%s status=%d request_id=%s attempt=%d delay=%.2f "
                   "failing_for=%.0f reason=\"%s\"", api, err.code or "-", err.status, err.request_id or "-",
                   attempt, delay, failing_for, err.message)

    def _signed_headers(self, credentials: Credentials, method: str, resource: str, params: Mapping[str, str],
                        body: bytes, content_type: str, extra_headers: Mapping[str, str]) -> Dict[str, str]:
        headers: Dict[str, str] = {"Host": self._host_header, "Content-Length": str(len(body))}
        if content_type:
            headers["Content-Type"] = content_type
        headers.update(extra_headers)
        if not body:
            headers["x-log-bodyrawsize"] = "0"
        headers["x-log-apiversion"] = API_VERSION
        if credentials.security_token:
            headers["x-acs-security-token"] = credentials.security_token
        if self._auth_version == "v4":
            headers["x-log-content-sha256"] = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
            headers["x-log-date"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            headers["Authorization"] = sign_v4(credentials.access_key_id, credentials.access_key_secret,
                                               self._region, method, resource, params, headers)
        else:
            headers["x-log-signaturemethod"] = "hmac-sha1"
            headers["Date"] = email.utils.formatdate(usegmt=True)
            if body:
                headers["Content-MD5"] = content_md5(body)
            headers["Authorization"] = sign_v1(credentials.access_key_id, credentials.access_key_secret,
                                               method, resource, params, headers)
            headers["x-log-date"] = headers["Date"]  # added after signing, as the SDK does
        headers["User-Agent"] = self._user_agent
        return headers

    def _send(self, api: str, method: str, resource: str, params: Mapping[str, str], body: bytes,
              content_type: str, extra_headers: Mapping[str, str]) -> _Response:
        """One signed attempt; returns a 200 response or raises a classified ForwarderError."""
        credentials = self._credentials.current()
        headers = self._signed_headers(credentials, method, resource, params, body, content_type, extra_headers)
        target = quote(resource, safe="/")
        if params:
            target += "?" + urlencode(params)
        try:
            if self._proxy is not None:
                proxied = self._proxy.urlopen(method, self._base_url + target, body=body or None, headers=headers,
                                              redirect=False, preload_content=True, decode_content=False)
                raw = OriginResponse(proxied.status, proxied.headers, proxied.data or b"")
            else:
                assert self._origin is not None
                raw = self._origin.request(method, target, body or None, headers)
        except (Urllib3HTTPError, OSError, http.client.HTTPException) as exc:
            raise self._transport_error(api, exc, headers, credentials) from None
        request_id = raw.headers.get("x-log-requestid", "")
        response = _Response(raw.status, raw.headers, raw.body, request_id)
        if response.status != 200:
            raise self._status_error(api, response, headers, credentials)
        return response

    # ------------------------------------------------------------------------------------- classification

    @staticmethod
    def _scrub(text: str, headers: Mapping[str, str], credentials: Credentials) -> str:
        """Remove the secret, the STS token and the signature from text that came from elsewhere."""
        secrets = [credentials.access_key_secret, credentials.security_token]
        authorization = headers.get("Authorization", "")
        secrets.append(authorization)
        secrets.append(authorization.rsplit(":", 1)[-1])
        secrets.append(authorization.rsplit("Signature=", 1)[-1])
        for secret in secrets:
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text[:_MAX_SERVER_MESSAGE]

    def _status_error(self, api: str, response: _Response, headers: Mapping[str, str],
                      credentials: Credentials) -> ForwarderError:
        code = server_message = ""
        try:
            payload = json.loads(response.body.decode("utf-8", "replace")) if response.body else None
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            code = str(payload.get("errorCode") or "")
            server_message = self._scrub(str(payload.get("errorMessage") or ""), headers, credentials)
        status = response.status
        where = "SLS %s failed for project %s" % (api, self.project)
        detail = "%s: %s" % (code, server_message) if code else "HTTP %d" % status
        kwargs = {"code": code, "request_id": response.request_id, "status": status}
        if code in _EXPIRED_TOKEN_CODES and self._credentials.renew_soon(credentials):
            # Renewing wakes the provider's thread and never waits here: a heartbeat must not hang on STS. The
            # retry (data path) or the next heartbeat signs with the renewed credentials.
            return RetryableError("%s: %s (the temporary credentials expired; renewing them)" % (where, detail),
                                  **kwargs)
        if (code in _CONFIG_CODES or code.startswith("InvalidAccessKeyId") or "SecurityToken" in code):
            hint = _HINTS.get(code) or ("the STS token is invalid or expired" if "SecurityToken" in code
                                        else "check the AccessKey id")
            return ConfigError("%s: %s; %s" % (where, detail, hint), **kwargs)
        if status == 407:
            return ConfigError("%s: the proxy rejected the request (HTTP 407); check the proxy user and password"
                               % where, **kwargs)
        if code == "InvalidCursor":
            return InvalidCursorError("%s: %s" % (where, detail), **kwargs)
        throttled = code.endswith("QuotaExceed") or status == 429
        if status >= 500 or code in _RETRYABLE_CODES or throttled:
            reason = "throttled by SLS" if throttled else "SLS is unavailable"
            return RetryableError("%s: %s (%s; will retry)" % (where, detail, reason), **kwargs)
        if 400 <= status < 500:
            return PermanentError("%s: %s" % (where, detail), **kwargs)
        kwargs["code"] = code or "UnexpectedStatus"
        return PermanentError("%s: unexpected HTTP %d (only 200 is success)" % (where, status), **kwargs)

    def _transport_error(self, api: str, exc: Exception, headers: Mapping[str, str],
                         credentials: Credentials) -> ForwarderError:
        chain = error_chain(exc)
        where = "SLS %s to %s" % (api, self._base_url)
        reason = self._scrub("%s: %s" % (type(exc).__name__, exc), headers, credentials)
        if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or (
            isinstance(exc, Urllib3SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc)
        ):
            return ConfigError("%s: the TLS certificate could not be verified; set the CA bundle or fix the "
                               "endpoint (%s)" % (where, reason), code="TLSVerifyFailed")
        if any(isinstance(e, socket.gaierror) for e in chain):
            return ConfigError("%s: the host name does not resolve; check the endpoint and DNS (%s)"
                               % (where, reason), code="NameResolutionFailed")
        if isinstance(exc, ProxyError) and "407" in str(exc):
            return ConfigError("%s: the proxy rejected the credentials (HTTP 407); check the proxy user and "
                               "password" % where, code="ProxyAuthRequired", status=407)
        if isinstance(exc, (NewConnectionError, ProxyError, ConnectionRefusedError)):
            return RetryableError("%s: cannot connect (%s)" % (where, reason), code="ConnectionError")
        return RetryableError("%s: the connection failed (%s)" % (where, reason), code="ConnectionError")

    def _decompressed(self, api: str, response: _Response, raw_size: int) -> bytes:
        """Return the uncompressed PullLogs body, per x-log-compresstype."""
        compress_type = response.headers.get("x-log-compresstype", "").lower()
        if raw_size <= 0:
            return b""  # the SDK ignores any body when bodyrawsize is 0
        if compress_type == "":
            return response.body
        if compress_type in ("deflate", "gzip"):
            try:
                # wbits=47 accepts both zlib (what SLS calls deflate) and gzip framing.
                return zlib.decompress(response.body, 47)
            except zlib.error as exc:
                raise RetryableError("SLS %s returned a corrupt %s body (%s)" % (api, compress_type, exc),
                                     code="BadResponse", request_id=response.request_id, status=200) from None
        raise PermanentError(
            "SLS %s returned a %s-compressed body, which this add-on cannot decode; it asked for %r"
            % (api, compress_type, self._accept_encoding or "no compression"),
            code="UnsupportedCompressType", request_id=response.request_id, status=200,
        )

    # ----------------------------------------------------------------------------------- response parsing

    @staticmethod
    def _json_body(response: _Response) -> Any:
        try:
            return json.loads(response.body.decode("utf-8", "replace")) if response.body else None
        except ValueError:
            raise ValueError("the body is not JSON") from None

    def _json_object(self, response: _Response) -> dict:
        body = self._json_body(response)
        if not isinstance(body, dict):
            raise TypeError("expected a JSON object, got %s" % type(body).__name__)
        return body

    def _json_list(self, response: _Response) -> list:
        body = self._json_body(response)
        if not isinstance(body, list):
            raise TypeError("expected a JSON array, got %s" % type(body).__name__)
        return body
