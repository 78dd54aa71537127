"""Parse an SLS endpoint of the form ``[http[s]://]host[:port]``."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Endpoint", "parse_endpoint"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# DNS labels (underscores tolerated, as some private zones use them); no empty labels, no trailing dot.
_HOST_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$")
_FORM = "[http[s]://]host[:port]"


@dataclass(frozen=True)
class Endpoint:
    """Where the SLS API lives.

    ``direct`` endpoints (IP literals, "localhost") are connected to as given and the project is named only in the
    Host header; other endpoints are reached through the virtual host ``<project>.<host>``, as real SLS expects.
    """

    scheme: str
    host: str
    port: int
    direct: bool

    def host_header(self, project: str) -> str:
        """Return the Host header the SDK sends: ``<project>.<host>`` without the port."""
        return "%s.%s" % (project, self.host)

    def base_url(self, project: str) -> str:
        """Return ``scheme://connect-host:port`` to send requests for ``project`` to."""
        connect_host = self.host if self.direct else self.host_header(project)
        return "%s://%s:%d" % (self.scheme, connect_host, self.port)


def _invalid(text: str, problem: str) -> ConfigError:
    return ConfigError("endpoint %r is not %s: %s" % (text, _FORM, problem), code="InvalidEndpoint")


def parse_endpoint(text: str) -> Endpoint:
    """Parse ``[http[s]://]host[:port]``; the scheme defaults to https.

    Arguments:
        text: The endpoint as configured, e.g. "cn-hangzhou.log.aliyuncs.com" or "http://127.0.0.1:8080".

    Returns:
        The Endpoint, host lowercased, port defaulted from the scheme.

    Raises:
        ConfigError: The text is not of that form; the message names the problem.
    """
    rest = text.strip()
    if not rest:
        raise _invalid(text, "it is empty")
    if any(ch.isspace() for ch in rest):
        raise _invalid(text, "it contains whitespace")
    scheme = "https"
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
        scheme = scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise _invalid(text, "scheme %r is not http or https" % scheme)
    if "@" in rest:
        raise _invalid(text, "it contains user information ('@')")
    for separator, what in (("/", "a path"), ("?", "a query"), ("#", "a fragment")):
        if separator in rest:
            raise _invalid(text, "it contains %s; give only host and port" % what)
    if rest.startswith("["):
        raise _invalid(text, "IPv6 literals are not supported")
    host, port_text = rest, ""
    if ":" in rest:
        host, port_text = rest.rsplit(":", 1)
        if ":" in host:
            raise _invalid(text, "it has more than one ':'")
    host = host.lower()
    if not host:
        raise _invalid(text, "the host is empty")
    if not _HOST_RE.match(host):
        raise _invalid(text, "host %r is not a valid host name or IPv4 address" % host)
    if port_text or rest.endswith(":"):
        if not re.match(r"^[0-9]{1,5}$", port_text) or not 1 <= int(port_text) <= 65535:
            raise _invalid(text, "port %r is not a number from 1 to 65535" % port_text)
        port = int(port_text)
    else:
        port = _DEFAULT_PORTS[scheme]
    return Endpoint(scheme=scheme, host=host, port=port, direct=_is_direct(host))


def _is_direct(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        if re.match(r"^[0-9.]+$", host):
            raise ConfigError("endpoint host %r is not a valid IPv4 address" % host, code="InvalidEndpoint")
        return False
    return True
