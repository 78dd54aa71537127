"""routing.py: which sourcetype each log group gets with sourcetype auto."""

from __future__ import annotations

import pytest

from sls_forwarder.routing import ACTIONTRAIL, GENERIC, Router, looks_flattened_actiontrail

TOPICS = {
    "actiontrail_audit_event": ("aliyun:actiontrail", ACTIONTRAIL, ""),
    "actiontrail_event": ("aliyun:actiontrail", ACTIONTRAIL, ""),
    "oss_access_log": ("aliyun:oss:access", GENERIC, "time"),
    "slb_layer7_access_log": ("aliyun:slb:access", GENERIC, "time"),
    "waf_access_log": ("aliyun:waf", GENERIC, "time"),
    "sas-security-log": ("aliyun:sas:alert", GENERIC, ""),
    "cloudfirewall_access_log": ("aliyun:cloudfirewall", GENERIC, "start_time"),
    # Documented topics without a sourcetype of their own stay generic.
    "aegis-log-login": ("aliyun:sls", GENERIC, ""),
    "cloudfirewall_ips_log": ("aliyun:sls", GENERIC, ""),
    "app_log": ("aliyun:sls", GENERIC, ""),
    "ACTIONTRAIL_AUDIT_EVENT": ("aliyun:sls", GENERIC, ""),  # topics are exact values
}


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_topic_decides_whatever_the_logstore(topic: str) -> None:
    for logstore in ("app-logs", "actiontrail_main", "wafnew-logstore"):
        assert tuple(Router("p", logstore).route(topic)) == TOPICS[topic]


@pytest.mark.parametrize("logstore, sourcetype", [
    ("actiontrail_org-audit", "aliyun:actiontrail"), ("oss-log-store", "aliyun:oss:access"),
    ("wafng-logstore", "aliyun:waf"), ("wafnew-logstore", "aliyun:waf"), ("waf-logstore", "aliyun:waf"),
    ("sas-security-log", "aliyun:sas:alert"), ("cloudfirewall-logstore", "aliyun:cloudfirewall"),
    ("actiontrail", "aliyun:sls"), ("my-actiontrail_copy", "aliyun:sls"), ("app-logs", "aliyun:sls")])
def test_an_empty_topic_goes_by_the_logstore_name(logstore: str, sourcetype: str) -> None:
    assert Router("p", logstore).route("").sourcetype == sourcetype


def test_every_route_is_listed_once_and_the_default_is_generic() -> None:
    routes = Router.routes()
    assert len(routes) == len(set(routes)) == 7
    assert {route.sourcetype for route in routes} == {
        "aliyun:actiontrail", "aliyun:oss:access", "aliyun:slb:access", "aliyun:waf", "aliyun:sas:alert",
        "aliyun:cloudfirewall", "aliyun:sls"}
    assert Router("p", "l").default.sourcetype == "aliyun:sls" and Router("p", "l").default.body == GENERIC


def test_flattened_actiontrail_needs_both_marker_keys() -> None:
    assert looks_flattened_actiontrail(["event.eventId", "event.eventName", "event.eventTime"])
    assert looks_flattened_actiontrail(iter(["x", "event.eventTime", "event.eventName"]))
    # A plain application log with an "event" field (or other event.* keys) stays generic.
    assert not looks_flattened_actiontrail(["event", "level", "message"])
    assert not looks_flattened_actiontrail(["event.eventName", "event.name"])
    assert not looks_flattened_actiontrail([])
