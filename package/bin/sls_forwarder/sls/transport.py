"""How the SLS and STS clients reach their servers: urllib3 pools (direct, or through an HTTP proxy), and plain
``http.client`` connections for the SLS client's direct requests."""

from __future__ import annotations

import functools
import http.client
import select
import ssl
import threading
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional
from urllib.parse import unquote, urlsplit

import urllib3

from ..errors import ConfigError

__all__ = ["proxy_manager", "pool_manager", "OriginConnections", "OriginResponse", "tls_context"]


def proxy_manager(proxy_url: str, pool_kw: Dict[str, Any]) -> urllib3.ProxyManager:
    """Build a ProxyManager; ``user:pass@`` in the URL becomes a Proxy-Authorization header."""
    parts = urlsplit(proxy_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "proxy URL must look like http://[user:password@]host:port (scheme %r is not supported)" % parts.scheme,
            code="InvalidProxy",
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConfigError("proxy URL has an invalid port", code="InvalidProxy") from None
    host = parts.hostname if ":" not in parts.hostname else "[%s]" % parts.hostname
    headers = None
    if parts.username is not None:
        auth = "%s:%s" % (unquote(parts.username), unquote(parts.password or ""))
        headers = urllib3.make_headers(proxy_basic_auth=auth)
    return urllib3.ProxyManager("%s://%s:%d" % (parts.scheme, host, port), proxy_headers=headers, **pool_kw)


def pool_manager(proxy_url: str, pool_kw: Dict[str, Any]) -> urllib3.PoolManager:
    """A ProxyManager when ``proxy_url`` is set, else a plain PoolManager (urllib3 never reads proxy variables)."""
    return proxy_manager(proxy_url, pool_kw) if proxy_url else urllib3.PoolManager(**pool_kw)


class OriginResponse(NamedTuple):
    status: int
    headers: Mapping[str, str]   # lower-case names; a missing one raises KeyError, as with urllib3
    body: bytes


class OriginConnections:
    """Keep-alive ``http.client`` connections to one origin, for a client that needs no proxy.

    An idle shard is polled every few seconds for as long as the input runs, and urllib3's request path costs about
    twice the CPU of ``http.client``'s for such a small request (it parses and re-encodes the URL, builds retry,
    timeout and response objects), so direct requests go through ``http.client`` itself; proxied ones through
    urllib3. Thread-safe: each request takes a connection of its own, kept for the next one if the server allows.

    Arguments:
        scheme: "http" or "https".
        host: The host to connect to (also the TLS server name).
        port: The port.
        timeout: Seconds for connecting and for each read.
        tls: The TLS context for https (verification, CA bundle); None for http.
        keep: Most idle connections kept.
    """

    def __init__(self, scheme: str, host: str, port: int, timeout: float, tls: Optional[ssl.SSLContext],
                 keep: int) -> None:
        self._factory: Callable[[], http.client.HTTPConnection]
        if scheme == "https":
            self._factory = functools.partial(http.client.HTTPSConnection, host, port, timeout=timeout, context=tls)
        else:
            self._factory = functools.partial(http.client.HTTPConnection, host, port, timeout=timeout)
        self._idle: List[http.client.HTTPConnection] = []
        self._keep = keep
        self._lock = threading.Lock()

    def request(self, method: str, target: str, body: Optional[bytes], headers: Mapping[str, str]) -> OriginResponse:
        """Send one request and read the whole answer.

        Raises:
            OSError, http.client.HTTPException: connecting, TLS, sending or reading failed. The caller retries: a
                request that got no answer may still have reached the server, so it is never resent here.
        """
        return self._exchange(self._kept_connection() or self._factory(), method, target, body, headers)

    def _kept_connection(self) -> Optional[http.client.HTTPConnection]:
        """The newest kept connection the server has not closed; closed ones are dropped on the way."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if _still_open(connection):
                return connection
            connection.close()

    def _exchange(self, connection: http.client.HTTPConnection, method: str, target: str, body: Optional[bytes],
                  headers: Mapping[str, str]) -> OriginResponse:
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            with self._lock:
                if len(self._idle) < self._keep:
                    self._idle.append(connection)
                    connection = None
            if connection is not None:
                connection.close()
        return OriginResponse(response.status, {name.lower(): value for name, value in response.getheaders()}, data)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """An idle connection is readable only when the server has closed it (or sent what nobody asked for)."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        if hasattr(select, "poll"):  # select() fails on descriptors above 1023, which hundreds of shards reach
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return not poller.poll(0)
        return not select.select([sock], [], [], 0)[0]  # Windows: no poll, and no such limit
    except (OSError, ValueError):  # closed under us
        return False


def tls_context(verify: bool, ca_bundle: str = "") -> ssl.SSLContext:
    """The TLS settings urllib3 used: the system's CAs (or ``ca_bundle``), host name checked, unless ``verify`` is off."""
    context = ssl.create_default_context(cafile=ca_bundle or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
