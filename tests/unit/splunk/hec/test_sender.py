"""HecSender: headers, reply classification, connection errors, TLS and proxy, against local servers."""

from __future__ import annotations

import base64
import gzip
import socket
from typing import Any, Dict, List, Optional

import pytest
import urllib3
from urllib3.exceptions import NewConnectionError, ProtocolError

from sls_forwarder.errors import ConfigError, PermanentError, RetryableError
from sls_forwarder.splunk.hec.channel import HecChannel, process_channel
from sls_forwarder.splunk.hec.config import HecConfig
from sls_forwarder.splunk.hec.sender import HecSender, RejectedRequestError, classify_reply

from .fake_hec import FakeHec

CHANNEL = HecChannel("0b7e4ab4-7c65-4c40-9d1f-000000000001")


def _sender(url: str, **options: Any) -> HecSender:
    return HecSender(HecConfig(url=url, token=options.pop("token", "tok"), **options), CHANNEL)


@pytest.mark.parametrize("status, payload, kind, code", [
    (200, {"text": "Success", "code": 0}, None, ""),
    (200, {"text": "Success", "code": 0, "ackId": 3}, None, ""),
    (503, {"text": "Server is busy", "code": 9}, RetryableError, "hec:9"),
    (500, {"text": "Internal server error", "code": 8}, RetryableError, "hec:8"),
    (503, {"text": "HEC is unhealthy, queues are full", "code": 18}, RetryableError, "hec:18"),
    (502, None, RetryableError, ""),
    (429, None, RetryableError, ""),
    (403, {"text": "Token disabled", "code": 1}, ConfigError, "hec:1"),
    (401, {"text": "Token is required", "code": 2}, ConfigError, "hec:2"),
    (401, {"text": "Invalid authorization", "code": 3}, ConfigError, "hec:3"),
    (403, {"text": "Invalid token", "code": 4}, ConfigError, "hec:4"),
    (400, {"text": "Data channel is missing", "code": 10}, ConfigError, "hec:10"),
    (400, {"text": "ACK is disabled", "code": 14}, ConfigError, "hec:14"),
    (404, None, ConfigError, ""),
    (400, {"text": "Incorrect index", "code": 7}, ConfigError, "hec:7"),
    (407, None, ConfigError, ""),
    (407, {"text": "Proxy Authentication Required"}, ConfigError, ""),
    (400, None, ConfigError, ""),
    (400, {"text": "Bad Request"}, ConfigError, ""),
    (410, {}, ConfigError, ""),
    (302, None, ConfigError, ""),
    (200, None, ConfigError, ""),
    (400, {"text": "No data", "code": 5}, RejectedRequestError, "hec:5"),
    (400, {"text": "Invalid data format", "code": 6}, RejectedRequestError, "hec:6"),
    (400, {"text": "Event field is required", "code": 12}, RejectedRequestError, "hec:12"),
    (400, {"text": "Event field cannot be blank", "code": 13}, RejectedRequestError, "hec:13"),
    (400, {"text": "Error in handling indexed fields", "code": 15}, RejectedRequestError, "hec:15"),
    (413, {"text": "Content-Length of 9 too large (maximum is 8)"}, RejectedRequestError, ""),
    (413, None, RejectedRequestError, ""),
    (400, {"text": "something new", "code": 99}, RejectedRequestError, "hec:99"),
])
def test_classify_reply(status: int, payload: Optional[Dict[str, Any]], kind: Optional[type], code: str) -> None:
    error = classify_reply(status, payload)
    if kind is None:
        assert error is None
        return
    assert type(error) is kind
    assert error.code == code and error.status == status
    if kind is RejectedRequestError:
        assert isinstance(error, PermanentError)


def test_post_sends_token_channel_and_gzip_and_reads_ack_id() -> None:
    with FakeHec(ack=True) as hec:
        sender = _sender(hec.url)
        reply = sender.post_events(gzip.compress(b'{"event":"a"}\n{"event":"b"}'), gzipped=True)
        assert reply.ack_id == 0 and reply.code == 0
        path, headers, body = hec.event_posts()[0]
        assert path == "/services/collector/event"
        assert headers["authorization"] == "Splunk tok"
        assert headers["x-splunk-request-channel"] == CHANNEL.id
        assert headers["content-encoding"] == "gzip"
        assert body == b'{"event":"a"}\n{"event":"b"}'
        assert hec.event_values() == ["a", "b"]
        assert sender.query_acks([0, 7]) == {0: True, 7: False}
        sender.close()


def test_url_with_collector_path_posts_to_the_event_endpoint() -> None:
    with FakeHec() as hec:
        sender = _sender(hec.url + "/services/collector/")
        assert sender.post_events(b'{"event":1}', gzipped=False).ack_id is None
        assert hec.event_posts()[0][0] == "/services/collector/event"


def test_errors_from_a_real_server_carry_code_status_and_invalid_event_number() -> None:
    with FakeHec() as hec:
        sender = _sender(hec.url)
        hec.script((503, {"text": "Server is busy", "code": 9}),
                   (400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 2}))
        with pytest.raises(RetryableError) as busy:
            sender.post_events(b"{}", gzipped=False)
        assert (busy.value.code, busy.value.status) == ("hec:9", 503)
        with pytest.raises(RejectedRequestError) as rejected:
            sender.post_events(b"{}", gzipped=False)
        assert rejected.value.invalid_event_number == 2
        wrong_token = _sender(hec.url, token="nope")
        with pytest.raises(ConfigError, match="not valid") as refused:
            wrong_token.post_events(b"{}", gzipped=False)
        assert "nope" not in str(refused.value)
        with pytest.raises(ConfigError) as no_ack:
            sender.query_acks([1])
        assert no_ack.value.code == "hec:14"


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RetryableError) as error:
        _sender("http://127.0.0.1:%d" % port, connect_timeout=2).post_events(b"{}", gzipped=False)
    assert error.value.status == 0


class _ScriptedPool:
    """Stands in for urllib3.PoolManager: raises the scripted errors, then answers 200 Success."""

    def __init__(self, errors: List[BaseException]) -> None:
        self.errors = errors
        self.calls = 0

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return urllib3.HTTPResponse(body=b'{"text":"Success","code":0}', status=200, preload_content=True)

    def clear(self) -> None:
        pass


def _config() -> HecConfig:
    return HecConfig(url="http://hec.example:8088", token="tok")


def test_a_dropped_keep_alive_connection_is_retried_once_at_once() -> None:
    pool = _ScriptedPool([ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))])
    assert HecSender(_config(), CHANNEL, pool=pool).post_events(b"{}", gzipped=False).code == 0
    assert pool.calls == 2
    twice = _ScriptedPool([ProtocolError("Connection aborted."), ProtocolError("Connection aborted.")])
    with pytest.raises(RetryableError):
        HecSender(_config(), CHANNEL, pool=twice).post_events(b"{}", gzipped=False)


def _unresolvable() -> NewConnectionError:
    try:
        raise socket.gaierror(-2, "Name or service not known")
    except socket.gaierror:
        try:
            raise NewConnectionError(None, "Failed to establish a new connection")
        except NewConnectionError as error:
            return error


def test_unresolvable_host_is_a_config_error() -> None:
    pool = _ScriptedPool([_unresolvable()])
    with pytest.raises(ConfigError, match="hec.example cannot be resolved"):
        HecSender(_config(), CHANNEL, pool=pool).post_events(b"{}", gzipped=False)


def test_tls_verification(tmp_path: Any) -> None:
    tls = pytest.importorskip("tests.emulators.hec.tls")
    from tests.emulators.hec import HecEmulator
    try:
        cert, _ = tls.self_signed_cert()
    except tls.TlsUnavailable as error:
        pytest.skip(str(error))
    with HecEmulator(tokens={"tok": {}}, tls=True) as hec:
        with pytest.raises(ConfigError, match="could not be verified"):
            _sender(hec.url).post_events(b'{"event":1}', gzipped=False)
        assert _sender(hec.url, ca_bundle=cert).post_events(b'{"event":2}', gzipped=False).code == 0
        assert _sender(hec.url, verify_tls=False).post_events(b'{"event":3}', gzipped=False).code == 0
        assert [e["event"] for e in hec.events()] == [2, 3]
    # splunkd's own HEC certificate is trusted through its CA but names another host: check_hostname=False.
    with HecEmulator(host="127.0.0.2", tokens={"tok": {}}, tls=True) as other_host:
        with pytest.raises(ConfigError):
            _sender(other_host.url, ca_bundle=cert).post_events(b'{"event":4}', gzipped=False)
        reply = _sender(other_host.url, ca_bundle=cert, check_hostname=False).post_events(b'{"event":5}', gzipped=False)
        assert reply.code == 0


def test_proxy_gets_absolute_url_and_basic_auth() -> None:
    with FakeHec() as proxy:  # an HTTP proxy sees the absolute URL; the fake answers it like HEC would
        proxy_url = proxy.url.replace("http://", "http://user:p%40ss@")
        sender = _sender("http://hec.example:8088", proxy_url=proxy_url)
        assert sender.post_events(b'{"event":1}', gzipped=False).code == 0
        path, headers, _ = proxy.event_posts()[0]
        assert path == "http://hec.example:8088/services/collector/event"
        assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()


def test_process_channel_is_one_guid_per_process() -> None:
    assert process_channel() is process_channel()
    assert len(process_channel().id) == 36


def test_config_validation_and_repr_hides_secrets() -> None:
    config = HecConfig(url="https://hec.example:8088/services/collector/event", token="secret-token",
                       proxy_url="http://u:pw@proxy:3128")
    assert config.base_urls == ("https://hec.example:8088",)
    assert "secret-token" not in repr(config) and "pw" not in repr(config)
    for bad in ({"url": "hec.example:8088"}, {"url": "https://hec.example/x"}, {"token": ""},
                {"senders": 0}, {"max_content_length": 10}, {"retry_cap": 0.1}):
        with pytest.raises(ConfigError):
            HecConfig(**dict({"url": "https://hec.example", "token": "t"}, **bad))
