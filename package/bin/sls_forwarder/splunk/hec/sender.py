"""HecSender: POST to one HEC URL over keep-alive connections and turn every outcome into a reply or an error class.

Classification (HTTP status + HEC ``code``), see errors.py for what each class makes the caller do:

- 200 with ``code`` 0: success (``ackId`` when the token has indexer acknowledgement).
- RetryableError: HTTP 5xx and 429/408, codes 8 (internal error), 9 (busy), 18-20 (queues full / ack service
  unavailable), connection errors and timeouts.
- ConfigError: codes 1-4 (token disabled, required, bad authorization, invalid), 7 (the token may not write to the
  index: every event of an input names the same index), 10/11 (data channel), 14 (ack disabled on the token), 16
  (query-string auth), HTTP 401/403/404/405, 407 (proxy authentication) and any other 4xx without a HEC code (a
  proxy or something else that is not HEC answered), redirects, TLS verification failure, unresolvable host, or a
  200 that is not a HEC reply. Nothing the data can fix: the caller retries slowly and never dead-letters.
- PermanentError: codes 5, 6, 12, 13, 15, any other HEC code on a 4xx, and 413 (body too large): the request's
  content is the problem, so the caller splits it to find the offending events.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple
from urllib.parse import unquote

import urllib3
from urllib3.exceptions import HTTPError, ProtocolError, SSLError

from ...errors import ConfigError, ForwarderError, PermanentError, RetryableError, error_chain
from .channel import HecChannel
from .config import ACK_PATH, EVENT_PATH, HEALTH_PATH, HecConfig

__all__ = ["HecReply", "HecSender", "RejectedRequestError", "classify_reply"]

logger = logging.getLogger("sls_forwarder.splunk.hec.sender")

_CONFIG_CODES = {
    1: "the HEC token is disabled",
    2: "the HEC token is missing from the request",
    3: "the HEC authorization header is malformed",
    4: "the HEC token is not valid on this Splunk instance",
    7: "the HEC token may not write to the index the input sends to; add that index to the token's allowed indexes "
       "or change the input's index",
    10: "HEC requires a data channel",
    11: "HEC rejected the data channel",
    14: "indexer acknowledgement is disabled for this HEC token; turn off ack in the destination or enable it on the token",
    16: "HEC query-string authentication is not enabled",
}
_RETRY_CODES = {8: "HEC internal error", 9: "HEC server is busy", 18: "HEC is unhealthy: queues are full",
                19: "HEC ack service is unavailable", 20: "HEC queues are full and the ack service is unavailable"}
_DATA_CODES = {5: "no data", 6: "invalid data format", 12: "event field is required", 13: "event field cannot be blank",
               15: "error in handling indexed fields"}


class RejectedRequestError(PermanentError):
    """HEC rejected the request's content; ``invalid_event_number`` is the offending envelope when HEC named it.

    Arguments:
        message: HEC's reason in words.
        code: ``hec:<n>`` or "".
        status: HTTP status.
        invalid_event_number: 0-based index of the first invalid envelope in the body, or None.
    """

    def __init__(self, message: str, *, code: str = "", status: int = 0,
                 invalid_event_number: Optional[int] = None) -> None:
        super().__init__(message, code=code, status=status)
        self.invalid_event_number = invalid_event_number


@dataclass(frozen=True)
class HecReply:
    """A successful reply of ``/services/collector/event``.

    Arguments:
        status: HTTP status (200).
        code: HEC code (0).
        text: HEC text ("Success").
        ack_id: The request's ackId when the token has indexer acknowledgement, else None.
    """

    status: int
    code: int
    text: str
    ack_id: Optional[int] = None


def classify_reply(status: int, payload: Any) -> Optional[ForwarderError]:
    """Map an HTTP status and decoded HEC reply to an error, or None for success.

    Arguments:
        status: HTTP status.
        payload: The decoded JSON reply body, or None when it was not JSON.

    Returns:
        None for a HEC success, else a RetryableError, ConfigError or PermanentError whose ``code`` is
        ``hec:<n>`` (or "" without a HEC code), ``status`` the HTTP status and message the HEC text.
    """
    reply = payload if isinstance(payload, dict) else {}
    code = _integer(reply.get("code"))
    text = str(reply.get("text", ""))
    error_code = "hec:%d" % code if code is not None else ""
    if status == 200 and code == 0:
        return None
    if code in _CONFIG_CODES:
        return ConfigError("%s (%s)" % (_CONFIG_CODES[code], text or "no text"), code=error_code, status=status)
    if code in _RETRY_CODES or status >= 500 or status in (408, 429):
        reason = _RETRY_CODES.get(code, "HEC answered HTTP %d" % status)
        return RetryableError("%s (%s)" % (reason, text or "no text"), code=error_code, status=status)
    invalid_event_number = _integer(reply.get("invalid-event-number"))
    if code in _DATA_CODES:
        return RejectedRequestError("HEC rejected the data: %s (%s)" % (_DATA_CODES[code], text or "no text"),
                                    code=error_code, status=status, invalid_event_number=invalid_event_number)
    if status in (401, 403):
        return ConfigError("HEC refused the credentials (HTTP %d)" % status, code=error_code, status=status)
    if status in (404, 405):
        return ConfigError("no HEC event endpoint at this url (HTTP %d); check the HEC url" % status,
                           code=error_code, status=status)
    if status == 407:
        return ConfigError("the proxy requires authentication (HTTP 407); check the proxy username and password",
                           code=error_code, status=status)
    if status == 413 or (400 <= status < 500 and code is not None):
        return RejectedRequestError("HEC rejected the request (HTTP %d: %s)" % (status, text or "no text"),
                                    code=error_code, status=status, invalid_event_number=invalid_event_number)
    if 400 <= status < 500:
        # No HEC code: a proxy or another server answered, and splitting the data cannot change its mind.
        return ConfigError("the HEC url answered HTTP %d without a HEC code (%s); check the HEC url and the proxy"
                           % (status, text or "no text"), code=error_code, status=status)
    return ConfigError("the HEC url did not answer like a HEC (HTTP %d, code %s); check the HEC url"
                       % (status, code if code is not None else "none"), code=error_code, status=status)


def _integer(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _caused_by(error: BaseException, kinds: tuple, names: Tuple[str, ...] = ()) -> bool:
    """True when ``error`` or anything it wraps is one of ``kinds`` or has a class name in ``names`` (for classes
    whose home module differs between urllib3 versions)."""
    return any(isinstance(e, kinds) or type(e).__name__ in names for e in error_chain(error))


def _connection_error(error: HTTPError, url: str) -> ForwarderError:
    """Classify a urllib3 error raised before any HTTP reply was read."""
    host = urllib3.util.parse_url(url).host or url
    if isinstance(error, SSLError) and (_caused_by(error, (ssl.SSLCertVerificationError,), ("CertificateError",))
                                        or "CERTIFICATE_VERIFY_FAILED" in str(error)):
        return ConfigError("the TLS certificate of HEC host %s could not be verified; set a CA bundle or fix "
                           "the certificate (%s)" % (host, error))
    if _caused_by(error, (socket.gaierror,)):
        return ConfigError("HEC host %s cannot be resolved; check the HEC url" % host)
    return RetryableError("cannot reach HEC host %s: %s" % (host, type(error).__name__))


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


class HecSender:
    """Posts event bodies and ack queries to one HEC URL over a shared, thread-safe keep-alive pool.

    Arguments:
        config: The destination.
        channel: The data channel sent with every request.
        pool: A urllib3 PoolManager to use instead of building one from ``config`` (tests).
        base_url: Which of ``config.base_urls`` this sender posts to; "" for the first.
    """

    def __init__(self, config: HecConfig, channel: HecChannel, pool: Optional[urllib3.PoolManager] = None,
                 base_url: str = "") -> None:
        self.config = config
        self.channel = channel
        self.base_url = base_url or config.base_urls[0]
        self._event_url = self.base_url + EVENT_PATH
        self._ack_url = self.base_url + ACK_PATH
        self._health_url = self.base_url + HEALTH_PATH
        self._pool = pool if pool is not None else self._make_pool(config, self.base_url)
        self._headers = {
            "Authorization": "Splunk " + config.token,
            "X-Splunk-Request-Channel": channel.id,
            "Content-Type": "application/json",
            "User-Agent": config.user_agent,
        }
        self._timeout = urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout)
        self._probe_timeout = urllib3.Timeout(connect=config.connect_timeout, read=config.connect_timeout)

    @staticmethod
    def _make_pool(config: HecConfig, base_url: str) -> urllib3.PoolManager:
        options: Dict[str, Any] = {"num_pools": 2, "maxsize": config.senders + 1, "block": False}
        if base_url.startswith("https://"):
            if config.verify_tls:
                options["cert_reqs"] = "CERT_REQUIRED"
                if config.ca_bundle:
                    options["ca_certs"] = config.ca_bundle
                if not config.check_hostname:
                    options["assert_hostname"] = False
            else:
                options["cert_reqs"] = "CERT_NONE"
                options["assert_hostname"] = False
                logger.warning("action=hec_tls_unverified detail=TLS certificate verification of the HEC is off")
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        if not config.proxy_url:
            return urllib3.PoolManager(**options)
        proxy = urllib3.util.parse_url(config.proxy_url)
        # The URL carries user and password percent-encoded (config.ProxySettings.url); the header wants them plain.
        proxy_headers = urllib3.make_headers(proxy_basic_auth=unquote(proxy.auth)) if proxy.auth else None
        plain_proxy = proxy._replace(auth=None).url
        return urllib3.ProxyManager(plain_proxy, proxy_headers=proxy_headers, **options)

    def post_events(self, body: bytes, gzipped: bool) -> HecReply:
        """POST one body of envelopes to ``/services/collector/event``.

        Arguments:
            body: Newline-separated envelopes, gzip-compressed when ``gzipped``.
            gzipped: Whether to send ``Content-Encoding: gzip``.

        Returns:
            The success reply (with ``ack_id`` when HEC assigned one).

        Raises:
            RetryableError, ConfigError: as classified (module docstring).
            RejectedRequestError: the PermanentError for this request's content.
        """
        headers = dict(self._headers, **{"Content-Encoding": "gzip"}) if gzipped else self._headers
        status, payload = self._post(self._event_url, body, headers)
        error = classify_reply(status, payload)
        if error is not None:
            raise error
        return HecReply(status=status, code=0, text=str(payload.get("text", "")), ack_id=_integer(payload.get("ackId")))

    def query_acks(self, ack_ids: Sequence[int]) -> Dict[int, bool]:
        """Ask ``/services/collector/ack`` which ackIds of this channel are indexed.

        Returns:
            ackId -> True when indexed (ids missing from the reply read as False).

        Raises:
            RetryableError, ConfigError, PermanentError: as classified.
        """
        body = json.dumps({"acks": list(ack_ids)}).encode("ascii")
        status, payload = self._post(self._ack_url, body, self._headers)
        if status == 200 and isinstance(payload, dict) and isinstance(payload.get("acks"), dict):
            states: Dict[int, bool] = {}
            for key, value in payload["acks"].items():
                try:
                    states[int(key)] = value is True
                except ValueError:
                    continue
            return states
        error = classify_reply(status, payload)
        raise error if error is not None else ConfigError(
            "HEC ack endpoint gave no acks (HTTP %d); check the HEC url" % status, status=status)

    def healthy(self) -> bool:
        """``GET /services/collector/health``: True when HEC answers 200 (code 17, "HEC is healthy"); False for
        503 (codes 18-20: queues full, ack service unavailable), any other answer, or no answer."""
        try:
            # A probe wants a quick answer: an indexer too slow to answer it is not back yet.
            response = self._pool.request("GET", self._health_url, headers={"User-Agent": self.config.user_agent},
                                          timeout=self._probe_timeout, retries=False, redirect=False)
        except HTTPError:
            return False
        return response.status == 200

    def _post(self, url: str, body: bytes, headers: Dict[str, str]) -> Tuple[int, Any]:
        """POST and return (status, decoded JSON or None); a dropped keep-alive connection is retried once."""
        retried = False
        while True:
            try:
                response = self._pool.request("POST", url, body=body, headers=headers, timeout=self._timeout,
                                              retries=False, redirect=False)
                return response.status, _decode(response.data)
            except ProtocolError as error:
                # The usual cause is a pooled connection the server closed while idle; a fresh one works at once.
                if retried:
                    raise _connection_error(error, url) from None
                retried = True
            except HTTPError as error:
                raise _connection_error(error, url) from None

    def close(self) -> None:
        """Close pooled connections."""
        self._pool.clear()
