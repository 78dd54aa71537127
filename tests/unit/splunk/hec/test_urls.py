"""Several HEC URLs in one destination: the list is parsed in order and a bad element is named."""

from __future__ import annotations

import pytest

from sls_forwarder.config import HecDestination, parse_hec_urls
from sls_forwarder.errors import ConfigError
from sls_forwarder.splunk.hec.config import HecConfig


def test_a_list_keeps_its_order_and_drops_slashes_and_collector_paths() -> None:
    text = (" https://idx1.example:8088/ ,http://10.0.0.2:8088/services/collector,"
            "https://[::1]:8088/services/collector/event")
    assert parse_hec_urls(text) == ("https://idx1.example:8088", "http://10.0.0.2:8088", "https://[::1]:8088")
    assert parse_hec_urls("https://hec.example") == ("https://hec.example",)


@pytest.mark.parametrize("text, message", [
    ("https://a:8088,hec-b:8088", "HEC element 2 of 2 'hec-b:8088' must be http(s)://host[:port]"),
    ("https://a:8088,,https://c:8088", "HEC element 2 of 3 is empty; separate URLs with one comma"),
    ("https://a:8088,https://b:8088/x", "HEC element 2 of 2 'https://b:8088/x' must be http(s)://host[:port]"),
    ("https://a:8088, https://a:8088/", "HEC element 2 of 2 'https://a:8088/' is listed twice"),
    ("https://a:8088,", "HEC element 2 of 2 is empty"),
    ("ftp://a", "HEC url 'ftp://a' must be http(s)://host[:port]"),
    ("", "HEC url is empty"),
    ("https://a b:8088", "HEC url 'https://a b:8088' must be http(s)://host[:port]"),
    ("https://a:80x", "HEC url 'https://a:80x' must be http(s)://host[:port]"),
])
def test_a_bad_element_is_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_hec_urls(text)
    assert str(caught.value).startswith(message)


def test_destination_stanza_with_a_list_and_its_error_names_destination_and_element() -> None:
    destination = HecDestination.from_conf("idx", {"url": "https://a:8088/, https://b:8088", "token": "t"})
    assert destination.url == "https://a:8088,https://b:8088"
    assert destination.urls == ("https://a:8088", "https://b:8088")
    with pytest.raises(ConfigError) as caught:
        HecDestination.from_conf("idx", {"url": "https://a:8088,b:8088", "token": "t"})
    assert str(caught.value) == "HEC destination 'idx': HEC element 2 of 2 'b:8088' must be http(s)://host[:port]"


def test_hec_config_takes_the_list() -> None:
    config = HecConfig(url="https://a:8088,https://b:8088/services/collector", token="t")
    assert config.base_urls == ("https://a:8088", "https://b:8088")
    with pytest.raises(ConfigError, match="element 1 of 2"):
        HecConfig(url="a:8088,https://b:8088", token="t")
