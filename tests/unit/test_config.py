"""config.py: each bad stanza value is rejected with a message naming it; good ones parse to the right types."""

import pytest

from sls_forwarder.config import HecDestination, ProxySettings, parse_bool, parse_input, parse_start_position
from sls_forwarder.errors import ConfigError

GOOD = {
    "account": "acct1", "endpoint": "cn-hangzhou.log.aliyuncs.com", "project": "audit-prod",
    "logstore": "actiontrail_main", "consumer_group": "splunk", "start_position": "begin",
    "index": "aliyun", "sourcetype": "aliyun:sls", "host": "$decideOnStartup",
}


def test_good_stanza_parses_with_defaults():
    config = parse_input("aliyun_sls://prod", GOOD)
    assert config.name == "prod"
    assert config.stanza == "aliyun_sls://prod"
    assert config.start_position == "begin"
    assert config.delivery == "stream"
    assert config.workers == 1
    assert config.source == "sls:audit-prod:actiontrail_main"
    assert config.host == ""  # $decideOnStartup is splunkd's placeholder, not a host
    assert config.heartbeat_interval == 20
    assert config.max_inflight_mb == 64


def test_sourcetype_defaults_to_auto_and_an_explicit_one_is_kept():
    without = {key: value for key, value in GOOD.items() if key != "sourcetype"}
    assert parse_input("prod", without).sourcetype == "auto"
    assert parse_input("prod", dict(GOOD, sourcetype="")).sourcetype == "auto"
    assert parse_input("prod", GOOD).sourcetype == "aliyun:sls"


def test_optional_values_are_parsed():
    config = parse_input("prod", dict(GOOD, delivery="HEC", workers="4", json_fields="event, extra ,",
                                      event_source="actiontrail", heartbeat_interval="5", max_inflight_mb="256"))
    assert config.delivery == "hec"
    assert config.workers == 4
    assert config.json_fields == ("event", "extra")
    assert config.source == "actiontrail"
    assert config.heartbeat_interval == 5
    assert config.max_inflight_mb == 256


@pytest.mark.parametrize("field,value,fragment", [
    ("endpoint", "ftp://x.example.com", "endpoint"),
    ("endpoint", "cn-hangzhou.log.aliyuncs.com/path", "endpoint"),
    ("endpoint", "host:99999", "endpoint"),
    ("project", "Audit_Prod", "project"),
    ("project", "ab", "project"),
    ("logstore", "Bad Name", "logstore"),
    ("consumer_group", "a", "consumer_group"),
    ("start_position", "yesterday", "start_position"),
    ("start_position", "2026-13-01T00:00:00Z", "start_position"),
    ("delivery", "kafka", "delivery"),
    ("workers", "0", "workers"),
    ("workers", "two", "workers"),
    ("heartbeat_interval", "900", "heartbeat_interval"),
    ("max_inflight_mb", "4", "max_inflight_mb 4 must be a whole number from 8 to 4096"),
    ("max_inflight_mb", "64MB", "max_inflight_mb"),
    ("account", "", "account is required"),
])
def test_bad_values_name_the_parameter(field, value, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_input("prod", dict(GOOD, **{field: value}))
    assert fragment in str(caught.value)


def test_bad_input_name_is_rejected():
    with pytest.raises(ConfigError, match="input name"):
        parse_input("aliyun_sls://9lives", GOOD)


@pytest.mark.parametrize("text,expected", [
    ("begin", "begin"), ("END", "end"),
    ("2026-11-01T00:00:00Z", 1793491200),
    ("2026-11-01", 1793491200),
    ("2026-11-01T08:00:00+08:00", 1793491200),
    ("2026-11-01 00:00:00.123", 1793491200),
])
def test_start_position(text, expected):
    assert parse_start_position(text) == expected


def test_booleans():
    assert parse_bool("1") and parse_bool("True") and parse_bool("yes")
    assert not parse_bool("0") and not parse_bool("false") and not parse_bool("", default=False)
    with pytest.raises(ConfigError):
        parse_bool("maybe")


def test_proxy_url_quotes_credentials_and_hides_password_in_repr():
    proxy = ProxySettings.from_settings({"proxy_enabled": "1", "proxy_url": "proxy.local", "proxy_port": "3128",
                                         "proxy_username": "u@corp", "proxy_password": "p:w/d"})
    assert proxy.url == "http://u%40corp:p%3Aw%2Fd@proxy.local:3128"
    assert "p:w/d" not in repr(proxy)
    assert ProxySettings.from_settings({"proxy_enabled": "0", "proxy_url": "x"}).url == ""


def test_hec_destination_requires_url_and_token():
    dest = HecDestination.from_conf("idx", {"url": "https://hec.example.com:8088/", "token": "tok-SECRET-42",
                                            "use_ack": "1"})
    assert dest.url == "https://hec.example.com:8088" and dest.use_ack and dest.verify_tls
    assert "tok-SECRET-42" not in repr(dest)
    with pytest.raises(ConfigError, match="url"):
        HecDestination.from_conf("idx", {"url": "hec.example.com", "token": "t"})
    with pytest.raises(ConfigError, match="token"):
        HecDestination.from_conf("idx", {"url": "https://hec.example.com"})


@pytest.mark.parametrize("host", ["[::1", "proxy host", "http://proxy", "proxy:3128", ""])
def test_malformed_proxy_host_is_rejected_without_the_password(host):
    with pytest.raises(ConfigError) as caught:
        ProxySettings.from_settings({"proxy_enabled": "1", "proxy_url": host, "proxy_port": "3128",
                                     "proxy_username": "u", "proxy_password": "pa55-SECRET"})
    assert "proxy host" in str(caught.value) and "pa55-SECRET" not in str(caught.value)


def test_ipv6_proxy_host_is_accepted():
    proxy = ProxySettings.from_settings({"proxy_enabled": "1", "proxy_url": "[::1]", "proxy_port": "3128"})
    assert proxy.url == "http://[::1]:3128"
