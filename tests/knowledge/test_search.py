"""The eventtype search subset."""

import pytest

from tests.knowledge.spl_search import SearchError, parse_search, required_sourcetype_patterns

EVENT = {
    "sourcetype": ["aliyun:actiontrail"], "eventName": ["CreateUser"], "serviceName": ["Ram"],
    "userIdentity.type": ["ram-user"], "multi": ["one", "two"], "spaced": ["a b"],
}


def no_eventtypes(pattern, fields):
    return False


def matches(search: str) -> bool:
    return parse_search(search).matches(EVENT, no_eventtypes)


@pytest.mark.parametrize("search, expected", [
    ("sourcetype=aliyun:actiontrail", True),
    ("sourcetype=ALIYUN:ACTIONTRAIL", True),            # values are case-insensitive
    ("SourceType=aliyun:actiontrail", False),           # field names are not
    ("eventName=Create*", True),
    ("eventName=*User", True),
    ("eventName=Cr*te*r", True),
    ("eventName=Create", False),
    ('eventName="CreateUser"', True),
    ('spaced="a b"', True),
    ('spaced="A*"', True),
    ("userIdentity.type=ram-user", True),
    ("sourcetype=aliyun:actiontrail eventName=CreateUser", True),        # implicit AND
    ("sourcetype=aliyun:actiontrail AND eventName=DeleteUser", False),
    ("eventName=DeleteUser OR serviceName=ram", True),
    ("NOT eventName=DeleteUser", True),
    ("NOT eventName=CreateUser", False),
    ("NOT absent=x", True),                            # NOT also matches events without the field
    ("absent!=x", False),                              # != needs the field
    ("eventName!=DeleteUser", True),
    ("eventName!=CreateUser", False),
    ("absent=*", False),
    ("eventName=*", True),
    ("serviceName IN (Ims, ram)", True),
    ('eventName IN ("DeleteUser", Update*)', False),
    ("eventName IN (Delete*, Create*)", True),
    ("multi=two", True),                               # any value of a multivalue field
    ("multi!=one", False),                            # != : no value may match (documented choice)
    ("(eventName=DeleteUser OR eventName=CreateUser) serviceName=Ram", True),
    ("NOT (eventName=DeleteUser OR serviceName=Ims)", True),
    ("eventName=CreateUser NOT NOT serviceName=Ram", True),
])
def test_matching(search, expected):
    assert matches(search) is expected


def test_or_binds_tighter_than_and():
    # Splunk: a AND (b OR c), not (a AND b) OR c.
    assert matches("serviceName=Ims eventName=DeleteUser OR eventName=CreateUser") is False
    assert matches("serviceName=Ram eventName=DeleteUser OR eventName=CreateUser") is True


def test_lower_case_or_is_a_bare_term_not_an_operator():
    with pytest.raises(SearchError, match="bare term"):
        parse_search("eventName=DeleteUser or eventName=CreateUser")


def test_eventtype_terms_use_the_resolver():
    seen = []

    def resolver(pattern, fields):
        seen.append(pattern)
        return pattern == "known"

    assert parse_search("eventtype=known").matches(EVENT, resolver) is True
    assert parse_search("eventtype!=known").matches(EVENT, resolver) is False
    assert seen == ["known", "known"]


@pytest.mark.parametrize("search, message", [
    ("CreateUser", "bare term"),
    ("tag=authentication", "tags come after"),
    ("count>5", "outside the simulated"),
    ("a=1 | stats count", "outside the simulated"),
    ("(a=1", "missing"),
    ("a IN b", "parenthesised"),
    ("a IN (x y)", "commas"),
    ('a="open', "unterminated"),
    ("a=", "missing value"),
])
def test_unsupported_or_malformed_searches(search, message):
    with pytest.raises(SearchError, match=message):
        parse_search(search)


def test_required_sourcetype_patterns():
    assert required_sourcetype_patterns(parse_search("sourcetype=a eventName=x")) == ["a"]
    assert required_sourcetype_patterns(parse_search("(sourcetype=a OR sourcetype=b) x=1")) == ["a", "b"]
    assert required_sourcetype_patterns(parse_search("sourcetype IN (a, b*)")) == ["a", "b*"]
    assert required_sourcetype_patterns(parse_search("sourcetype=a OR x=1")) is None
    assert required_sourcetype_patterns(parse_search("NOT sourcetype=a")) is None
    assert required_sourcetype_patterns(parse_search("eventName=x")) is None
