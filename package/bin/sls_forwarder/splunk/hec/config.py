"""HecConfig: every knob of HEC delivery with its default, validated once."""

from __future__ import annotations

from dataclasses import dataclass, field

from typing import Tuple

from ...config import parse_hec_urls
from ...errors import ConfigError

__all__ = ["HecConfig", "EVENT_PATH", "ACK_PATH", "HEALTH_PATH"]

EVENT_PATH = "/services/collector/event"
ACK_PATH = "/services/collector/ack"
HEALTH_PATH = "/services/collector/health"


@dataclass(frozen=True)
class HecConfig:
    """Where and how to post events to a Splunk HTTP Event Collector.

    Arguments:
        url: ``http(s)://host[:port]``, or a comma-separated list of them to balance over (``HecBalancer``); a
            trailing ``/services/collector[/event]`` is accepted and ignored.
        token: The HEC token (sent as ``Authorization: Splunk <token>``; never logged, hidden from repr).
        ack: Indexer acknowledgement: a request counts as delivered only when its ackId reads true.
        verify_tls: Verify the server certificate (on by default).
        ca_bundle: PEM file of CAs to trust instead of the system store ("" = system store).
        check_hostname: Match the certificate to the host name; off only for splunkd's own default HEC
            certificate, which is verified against ``ca_bundle`` but names no host.
        gzip: Compress request bodies (worth it for a remote HEC; costs CPU).
        max_content_length: Largest request body in bytes before compression (solnlib's fallback, 1,000,000).
        max_event_size: An event larger than this (HEC ``maxEventSize``, 5 MB) is dead-lettered, never sent.
        max_in_flight_bytes: ``send`` blocks while this many event bytes are accepted but not yet delivered (all
            URLs together).
        ack_timeout: Seconds to wait for an ackId to read true before sending the request again.
        ack_poll_interval: Longest delay between ``/services/collector/ack`` queries while requests wait; reached
            after queries that find nothing acknowledged.
        ack_poll_min_interval: Delay between ack queries while acknowledgements keep arriving, and before the first
            query after requests start waiting.
        proxy_url: ``http://[user:password@]host:port`` or "" for a direct connection.
        senders: Threads posting requests concurrently (all URLs together).
        connect_timeout: Seconds to open a connection.
        read_timeout: Seconds to wait for a reply.
        retry_initial: First delay after a retryable failure, and before the first health probe of a URL taken out;
            doubles up to ``retry_cap``.
        retry_cap: Longest delay between retries of a retryable failure.
        config_retry_interval: Delay between attempts while the HEC rejects the configuration (token, TLS, URL).
        user_agent: User-Agent header.

    Raises:
        ConfigError: A value is out of range or a URL is not http(s)://host[:port] (naming it).
    """

    url: str
    token: str = field(repr=False)
    ack: bool = False
    verify_tls: bool = True
    ca_bundle: str = ""
    check_hostname: bool = True
    gzip: bool = False
    max_content_length: int = 1_000_000
    max_event_size: int = 5 * 1024 * 1024
    max_in_flight_bytes: int = 32 * 1024 * 1024
    ack_timeout: float = 300.0
    ack_poll_interval: float = 2.0
    ack_poll_min_interval: float = 0.05
    proxy_url: str = field(default="", repr=False)
    senders: int = 2
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry_initial: float = 0.5
    retry_cap: float = 30.0
    config_retry_interval: float = 60.0
    user_agent: str = "TA-aliyun-sls"

    def __post_init__(self) -> None:
        parse_hec_urls(self.url)
        if not self.token:
            raise ConfigError("HEC token is empty")
        if self.max_content_length < 1024:
            raise ConfigError("HEC max_content_length %d must be at least 1024 bytes" % self.max_content_length)
        if self.max_event_size < 1:
            raise ConfigError("HEC max_event_size %d must be positive" % self.max_event_size)
        if self.max_in_flight_bytes < 1:
            raise ConfigError("HEC max_in_flight_bytes %d must be positive" % self.max_in_flight_bytes)
        if not 1 <= self.senders <= 32:
            raise ConfigError("HEC senders %d must be from 1 to 32" % self.senders)
        for name in ("ack_timeout", "ack_poll_interval", "ack_poll_min_interval", "connect_timeout", "read_timeout",
                     "retry_initial", "config_retry_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError("HEC %s must be positive, got %r" % (name, getattr(self, name)))
        if self.retry_cap < self.retry_initial:
            raise ConfigError("HEC retry_cap %r must be at least retry_initial %r" % (self.retry_cap, self.retry_initial))

    @property
    def base_urls(self) -> Tuple[str, ...]:
        """``scheme://host[:port]`` of each URL, without any collector path, in the order given."""
        return parse_hec_urls(self.url)
