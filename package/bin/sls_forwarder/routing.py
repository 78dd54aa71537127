"""Which sourcetype each SLS log group goes to when the input's sourcetype is ``auto``.

A log group is routed by its ``__topic__``, which Alibaba's services set to a fixed value per log type; when the
topic is empty, by the input's Logstore name where the service writes to a Logstore of a well-known name. Anything
else is the generic ``aliyun:sls``, except single logs with flattened ActionTrail keys (``event.eventName`` and
``event.eventTime``), which the pipeline layer diverts to ``aliyun:actiontrail`` (``looks_flattened_actiontrail``).

Sources and the documentation each name comes from are listed in the README's "Sourcetype routing" section.
Pure: no I/O, imports nothing of the add-on.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, Iterable, NamedTuple, Tuple

__all__ = ["AUTO", "GENERIC", "ACTIONTRAIL", "Route", "Router", "looks_flattened_actiontrail", "ROUTES_BY_TOPIC",
           "ROUTES_BY_LOGSTORE"]

AUTO = "auto"

# Body formats: the generic SLS body (each content key at the root, then __topic__ ... __time__), or the ActionTrail
# record itself at the root with a trailing "sls" provenance object.
GENERIC = "generic"
ACTIONTRAIL = "actiontrail"


class Route(NamedTuple):
    """Where a log group goes.

    Attributes:
        sourcetype: The Splunk sourcetype.
        body: GENERIC or ACTIONTRAIL.
        time_field: For GENERIC routes, the content key whose value is the service's own event time ("" = none;
            ``__time__`` is used, and also when the value does not parse).
    """

    sourcetype: str
    body: str
    time_field: str = ""


ACTIONTRAIL_ROUTE = Route("aliyun:actiontrail", ACTIONTRAIL)
OSS_ACCESS_ROUTE = Route("aliyun:oss:access", GENERIC, "time")
SLB_ACCESS_ROUTE = Route("aliyun:slb:access", GENERIC, "time")
WAF_ROUTE = Route("aliyun:waf", GENERIC, "time")
# The security alert log documents no time field of its own (data_source, level, name, op, status, uuid, detail,
# unique_info), so its events keep __time__.
SAS_ALERT_ROUTE = Route("aliyun:sas:alert", GENERIC)
CLOUDFIREWALL_ROUTE = Route("aliyun:cloudfirewall", GENERIC, "start_time")
DEFAULT_ROUTE = Route("aliyun:sls", GENERIC)

ROUTES_BY_TOPIC: Dict[str, Route] = {
    "actiontrail_audit_event": ACTIONTRAIL_ROUTE,
    "actiontrail_event": ACTIONTRAIL_ROUTE,  # the legacy shape, with owner_id
    "oss_access_log": OSS_ACCESS_ROUTE,
    "slb_layer7_access_log": SLB_ACCESS_ROUTE,
    "waf_access_log": WAF_ROUTE,  # WAF 3.0 and WAF 2.0 use the same topic
    "sas-security-log": SAS_ALERT_ROUTE,
    "cloudfirewall_access_log": CLOUDFIREWALL_ROUTE,
}

# Dedicated Logstores the services create; used only when a group's topic is empty.
ROUTES_BY_LOGSTORE: Dict[str, Route] = {
    "oss-log-store": OSS_ACCESS_ROUTE,
    "wafng-logstore": WAF_ROUTE,  # WAF 3.0, subscription
    "wafnew-logstore": WAF_ROUTE,  # WAF 3.0, pay-as-you-go
    "waf-logstore": WAF_ROUTE,  # WAF 2.0
    "sas-security-log": SAS_ALERT_ROUTE,
    "cloudfirewall-logstore": CLOUDFIREWALL_ROUTE,
}
# A trail delivering to SLS creates the Logstore actiontrail_<trail name>.
ACTIONTRAIL_LOGSTORE_PREFIX = "actiontrail_"

# Both keys must be present for a log of the generic route to count as a flattened ActionTrail record.
_FLATTENED_MARKERS: FrozenSet[str] = frozenset(("event.eventName", "event.eventTime"))


def looks_flattened_actiontrail(keys: Iterable[str]) -> bool:
    """True when content keys are those of a flattened ActionTrail record (``event.eventName``, ``event.eventTime``).

    A plain application log with an ``event`` field, or with other ``event.*`` keys, does not qualify.
    """
    return _FLATTENED_MARKERS.issubset(keys)


class Router:
    """Routes the log groups of one input.

    Arguments:
        project: The input's project (for the ActionTrail provenance object).
        logstore: The input's Logstore: the fallback key for groups without a topic.
    """

    def __init__(self, project: str, logstore: str) -> None:
        self.project = project
        self.logstore = logstore
        if logstore.startswith(ACTIONTRAIL_LOGSTORE_PREFIX):
            self._untopiced = ACTIONTRAIL_ROUTE
        else:
            self._untopiced = ROUTES_BY_LOGSTORE.get(logstore, DEFAULT_ROUTE)

    def route(self, topic: str) -> Route:
        """The route of a log group with this ``__topic__``."""
        if not topic:
            return self._untopiced
        return ROUTES_BY_TOPIC.get(topic, DEFAULT_ROUTE)

    @staticmethod
    def routes() -> Tuple[Route, ...]:
        """Every route a group can take (for building one shaper per sourcetype up front)."""
        return tuple(dict.fromkeys((*ROUTES_BY_TOPIC.values(), *ROUTES_BY_LOGSTORE.values(), ACTIONTRAIL_ROUTE,
                                    DEFAULT_ROUTE)))

    @property
    def default(self) -> Route:
        """The generic route (``aliyun:sls``), also taken by ActionTrail logs that are not a record."""
        return DEFAULT_ROUTE
