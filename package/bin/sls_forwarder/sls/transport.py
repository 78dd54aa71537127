"""The urllib3 pool the SLS and STS clients send through: direct, or through an HTTP proxy."""

from __future__ import annotations

from typing import Any, Dict
from urllib.parse import unquote, urlsplit

import urllib3

from ..errors import ConfigError

__all__ = ["proxy_manager", "pool_manager"]


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
