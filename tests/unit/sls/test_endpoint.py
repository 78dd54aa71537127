"""sls/endpoint.py: accepted forms, defaults, direct mode and clear rejections."""

import pytest

from sls_forwarder.errors import ConfigError
from sls_forwarder.sls.endpoint import Endpoint, parse_endpoint


@pytest.mark.parametrize(
    "text, expected",
    [
        ("cn-hangzhou.log.aliyuncs.com", Endpoint("https", "cn-hangzhou.log.aliyuncs.com", 443, False)),
        ("http://cn-hangzhou.log.aliyuncs.com", Endpoint("http", "cn-hangzhou.log.aliyuncs.com", 80, False)),
        ("HTTPS://CN-Shanghai.Log.Aliyuncs.com:8443", Endpoint("https", "cn-shanghai.log.aliyuncs.com", 8443, False)),
        ("  sls-emulator.test:18080 ", Endpoint("https", "sls-emulator.test", 18080, False)),
        ("127.0.0.1", Endpoint("https", "127.0.0.1", 443, True)),
        ("http://127.0.0.2:8080", Endpoint("http", "127.0.0.2", 8080, True)),
        ("localhost:9000", Endpoint("https", "localhost", 9000, True)),
        ("http://LOCALHOST", Endpoint("http", "localhost", 80, True)),
        ("my_zone.internal", Endpoint("https", "my_zone.internal", 443, False)),
    ],
)
def test_parses_valid_endpoints(text, expected):
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("https://", "host is empty"),
        (":8080", "host is empty"),
        ("cn-hangzhou.log.aliyuncs.com/path", "path"),
        ("https://host.example/", "path"),
        ("host.example?x=1", "query"),
        ("host.example#frag", "fragment"),
        ("host example", "whitespace"),
        ("ftp://host.example", "scheme 'ftp'"),
        ("host.example:0", "port '0'"),
        ("host.example:65536", "port '65536'"),
        ("host.example:abc", "port 'abc'"),
        ("host.example:", "port ''"),
        ("host.example:80:81", "more than one"),
        ("user:pw@host.example", "user information"),
        ("host..example", "not a valid host"),
        ("-host.example", "not a valid host"),
        ("host.example.", "not a valid host"),
        ("[::1]:80", "IPv6"),
        ("999.1.1.1", "not a valid IPv4"),
    ],
)
def test_rejects_with_a_named_problem(text, problem):
    with pytest.raises(ConfigError) as info:
        parse_endpoint(text)
    assert problem in str(info.value)
    assert info.value.code == "InvalidEndpoint"


def test_virtual_host_addressing():
    endpoint = parse_endpoint("cn-hangzhou.log.aliyuncs.com")
    assert endpoint.base_url("proj") == "https://proj.cn-hangzhou.log.aliyuncs.com:443"
    assert endpoint.host_header("proj") == "proj.cn-hangzhou.log.aliyuncs.com"


def test_direct_addressing_keeps_the_port_out_of_the_host_header():
    endpoint = parse_endpoint("http://127.0.0.1:8080")
    assert endpoint.base_url("proj") == "http://127.0.0.1:8080"
    assert endpoint.host_header("proj") == "proj.127.0.0.1"
