"""Input, HEC-destination and proxy settings: parsed from the stanza strings Splunk passes, validated, no I/O."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple
from urllib.parse import quote

from .errors import ConfigError

__all__ = ["InputConfig", "HecDestination", "ProxySettings", "parse_input", "parse_start_position", "parse_bool",
           "parse_hec_urls"]

_PROJECT = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_LOGSTORE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,61}[a-z0-9]$")
_GROUP = re.compile(r"^[A-Za-z0-9_-]{2,128}$")
_INPUT_NAME = re.compile(r"^[A-Za-z]\w{0,99}$")
_PROXY_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_PROXY_IPV6 = re.compile(r"^\[[0-9A-Fa-f:.]+\]$")
_ISO_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_HEC_URL = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$")
# HEC's own paths, which people paste with the URL; the client adds the path it needs.
_HEC_PATHS = ("/services/collector/event", "/services/collector")
DELIVERIES = ("stream", "hec")


def parse_bool(value: object, default: bool = False) -> bool:
    """Splunk's boolean spellings: 1/0, true/false, yes/no, t/f, y/n, on/off."""
    if value is None or value == "":
        return default
    text = str(value).strip().lower()
    if text in ("1", "true", "t", "yes", "y", "on"):
        return True
    if text in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ConfigError(f"{value!r} is not a boolean (use true or false)")


def parse_hec_urls(text: str) -> Tuple[str, ...]:
    """``http(s)://host[:port]`` or a comma-separated list of them -> base URLs, in the order given.

    Each element may end in ``/`` or in ``/services/collector[/event]``, which are dropped.

    Raises:
        ConfigError: naming the element that is empty, not ``http(s)://host[:port]``, or listed twice.
    """
    elements = [element.strip() for element in str(text).split(",")]
    urls = []
    for number, element in enumerate(elements, 1):
        where = f"element {number} of {len(elements)}" if len(elements) > 1 else "url"
        url = element.rstrip("/")
        for path in _HEC_PATHS:
            if url.endswith(path):
                url = url[: -len(path)]
                break
        if not url:
            raise ConfigError(f"HEC {where} is empty" + ("; separate URLs with one comma" if len(elements) > 1 else ""))
        if not _HEC_URL.match(url):
            raise ConfigError(f"HEC {where} {element!r} must be http(s)://host[:port]")
        if url in urls:
            raise ConfigError(f"HEC {where} {element!r} is listed twice")
        urls.append(url)
    return tuple(urls)


def parse_start_position(text: str) -> str | int:
    """``begin``, ``end``, or an ISO-8601 time turned into unix seconds (UTC when no offset is given).

    Raises:
        ConfigError: the text is none of those, or names an impossible date.
    """
    value = (text or "").strip()
    if value.lower() in ("begin", "end"):
        return value.lower()
    match = _ISO_TIME.match(value)
    if not match:
        raise ConfigError(f"start_position {text!r} must be begin, end, or an ISO-8601 time such as 2026-11-01T00:00:00Z")
    year, month, day, hour, minute, second, _fraction, offset = match.groups()
    tz = datetime.timezone.utc
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                                   int(second or 0), tzinfo=tz)
    except ValueError as err:
        raise ConfigError(f"start_position {text!r} is not a valid time: {err}") from None
    return int(moment.timestamp())


def _positive_int(params: Mapping[str, str], name: str, default: int, maximum: int, minimum: int = 1) -> int:
    raw = str(params.get(name) or default).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} {raw!r} must be a whole number from {minimum} to {maximum}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} {value} must be a whole number from {minimum} to {maximum}")
    return value


@dataclass(frozen=True)
class ProxySettings:
    """The UCC proxy tab, used for both SLS and HEC."""

    enabled: bool = False
    host: str = ""
    port: int = 0
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        """``http://user:pass@host:port`` or "" when disabled; the password is never logged (repr hides it)."""
        if not self.enabled or not self.host:
            return ""
        auth = ""
        if self.username:
            auth = quote(self.username, safe="") + (":" + quote(self.password, safe="") if self.password else "") + "@"
        return f"http://{auth}{self.host}:{self.port or 8080}"

    @classmethod
    def from_settings(cls, stanza: Mapping[str, str]) -> "ProxySettings":
        enabled = parse_bool(stanza.get("proxy_enabled"), False)
        host = str(stanza.get("proxy_url") or "").strip()
        port_text = str(stanza.get("proxy_port") or "0").strip()
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"proxy_port {port_text!r} is not a port number") from None
        # Checked here because a malformed host would otherwise surface inside a URL parse error that quotes the
        # whole proxy URL, password included.
        if enabled and not (_PROXY_HOST.match(host) or _PROXY_IPV6.match(host)):
            raise ConfigError(f"proxy host {host!r} must be a host name or an IP address, without scheme or port")
        if enabled and not 0 <= port <= 65535:
            raise ConfigError(f"proxy_port {port} must be from 1 to 65535")
        return cls(enabled=enabled, host=host, port=port, username=str(stanza.get("proxy_username") or ""),
                   password=str(stanza.get("proxy_password") or ""))


@dataclass(frozen=True)
class HecDestination:
    """Where ``delivery = hec`` posts: ``url`` is one HEC URL or a comma-separated list (``parse_hec_urls``)."""

    name: str = ""
    url: str = ""
    token: str = field(default="", repr=False)
    use_ack: bool = False
    verify_tls: bool = True
    ca_bundle: str = ""
    gzip: bool = False

    @property
    def urls(self) -> Tuple[str, ...]:
        """The base URLs of ``url`` (one, or several to balance over)."""
        return parse_hec_urls(self.url)

    @classmethod
    def from_conf(cls, name: str, stanza: Mapping[str, str]) -> "HecDestination":
        try:
            url = ",".join(parse_hec_urls(str(stanza.get("url") or "")))
        except ConfigError as error:
            raise ConfigError(f"HEC destination {name!r}: {error}") from None
        if not stanza.get("token"):
            raise ConfigError(f"HEC destination {name!r} has no token")
        return cls(name=name, url=url, token=str(stanza["token"]), use_ack=parse_bool(stanza.get("use_ack"), False),
                   verify_tls=parse_bool(stanza.get("verify_tls"), True), ca_bundle=str(stanza.get("ca_bundle") or ""),
                   gzip=parse_bool(stanza.get("gzip"), False))


@dataclass(frozen=True)
class InputConfig:
    """One ``aliyun_sls://<name>`` stanza, validated."""

    name: str
    account: str
    endpoint: str
    project: str
    logstore: str
    consumer_group: str
    sls_ca_bundle: str = ""
    start_position: str | int = "end"
    query: str = ""
    delivery: str = "stream"
    hec_destination: str = ""
    workers: int = 1
    index: str = "default"
    sourcetype: str = "auto"  # "auto": per log group, by its source (routing.py)
    event_source: str = ""
    host: str = ""
    host_field: str = "__source__"
    json_fields: Tuple[str, ...] = ()
    heartbeat_interval: int = 20
    checkpoint_interval: float = 5.0
    max_inflight_mb: int = 64  # memory budget of the whole input, shared by its shards (and split among workers)

    @property
    def stanza(self) -> str:
        return f"aliyun_sls://{self.name}"

    @property
    def source(self) -> str:
        return self.event_source or f"sls:{self.project}:{self.logstore}"


def parse_input(name: str, params: Mapping[str, str], *, overrides: Optional[Dict[str, str]] = None) -> InputConfig:
    """Validate one stanza's parameters. ``name`` may be ``aliyun_sls://x`` or ``x``.

    Raises:
        ConfigError: naming the first wrong parameter and what a right value looks like.
    """
    from .sls.endpoint import parse_endpoint  # the endpoint grammar lives with the client that uses it

    values = dict(params)
    values.update(overrides or {})
    short = name.split("://", 1)[-1]
    if not _INPUT_NAME.match(short):
        raise ConfigError(f"input name {short!r} must start with a letter and contain only letters, digits and _")
    for required in ("account", "endpoint", "project", "logstore", "consumer_group"):
        if not str(values.get(required) or "").strip():
            raise ConfigError(f"{required} is required")
    endpoint = str(values["endpoint"]).strip()
    parse_endpoint(endpoint)
    project = str(values["project"]).strip()
    if not _PROJECT.match(project):
        raise ConfigError(f"project {project!r} must be 3-63 lowercase letters, digits and hyphens")
    logstore = str(values["logstore"]).strip()
    if not _LOGSTORE.match(logstore):
        raise ConfigError(f"logstore {logstore!r} must be 2-63 lowercase letters, digits, hyphens and underscores")
    group = str(values["consumer_group"]).strip()
    if not _GROUP.match(group):
        raise ConfigError(f"consumer_group {group!r} must be 2-128 letters, digits, hyphens and underscores")
    delivery = str(values.get("delivery") or "stream").strip().lower()
    if delivery not in DELIVERIES:
        raise ConfigError(f"delivery {delivery!r} must be stream or hec")
    json_fields = tuple(f.strip() for f in str(values.get("json_fields") or "").split(",") if f.strip())
    host = str(values.get("host") or "")
    if host.startswith("$decideOnStartup"):
        host = ""
    return InputConfig(
        name=short,
        account=str(values["account"]).strip(),
        endpoint=endpoint,
        project=project,
        logstore=logstore,
        consumer_group=group,
        sls_ca_bundle=str(values.get("sls_ca_bundle") or "").strip(),
        start_position=parse_start_position(str(values.get("start_position") or "end")),
        query=str(values.get("query") or "").strip(),
        delivery=delivery,
        hec_destination=str(values.get("hec_destination") or "").strip(),
        workers=_positive_int(values, "workers", 1, 64),
        index=str(values.get("index") or "default").strip(),
        sourcetype=str(values.get("sourcetype") or "auto").strip(),
        event_source=str(values.get("event_source") or "").strip(),
        host=host,
        host_field=str(values.get("host_field") or "__source__").strip(),
        json_fields=json_fields,
        heartbeat_interval=_positive_int(values, "heartbeat_interval", 20, 300),
        checkpoint_interval=float(values.get("checkpoint_interval") or 5.0),
        max_inflight_mb=_positive_int(values, "max_inflight_mb", 64, 4096, minimum=8),
    )
