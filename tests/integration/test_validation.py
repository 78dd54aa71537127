"""``--scheme`` and ``--validate-arguments`` of the BUILT input, run as splunkd runs them (issue 4).

Validation is what Splunk calls before it saves a new or edited input: exit 0 with nothing on stdout accepts it;
exit 1 with ``<error><message>`` rejects it and Splunk Web shows the message. Every bad input below must be
rejected with a message naming the parameter and value at fault, and every case runs under each Splunk Python.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Dict, Iterator, List, Tuple

import certifi
import pytest

from tests.splunk_runner import ModInputRunner
from tests.splunk_runner.runner import ValidationResult

from .harness import AK_ID, AK_SECRET, GROUP, LOGSTORE, PROJECT, PYTHONS, AddonEnv, built_app_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Inputs-page fields UCC leaves out of the scheme: Splunk defines them for every input.
SPLUNK_BUILT_IN_FIELDS = {"index", "sourcetype", "interval"}
# Splunk Web gives up on a REST call after 30 s; validation must answer before that.
SPLUNK_WEB_TIMEOUT = 30.0
FULL_LOGSTORE = "full-quota"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module", params=sorted(PYTHONS), ids=lambda label: f"py{label}")
def env(request: pytest.FixtureRequest) -> Iterator[AddonEnv]:
    """Emulators with one good account, two broken ones, a logstore and a logstore whose group quota is full."""
    with AddonEnv(PYTHONS[request.param]) as environment:
        environment.create_logstore(shards=2)
        environment.create_logstore(shards=1, logstore=FULL_LOGSTORE)
        for number in range(environment.sls.max_consumer_groups):
            environment.sls.state.create_consumer_group(PROJECT, FULL_LOGSTORE, f"other-{number:02d}", 40, True)
        environment.splunkd.store_encrypted("ta_aliyun_sls_account", "wrong_secret",
                                            {"access_key_secret": "not-the-secret"}, {"access_key_id": AK_ID})
        environment.splunkd.store_encrypted("ta_aliyun_sls_account", "unknown_key",
                                            {"access_key_secret": AK_SECRET}, {"access_key_id": "LTAI5tNoSuchKey"})
        yield environment


def validate(env: AddonEnv, **overrides: object) -> ValidationResult:
    return env.runner.validate("prod", env.params(**overrides), env.splunkd.url, env.splunkd.session_key)


def assert_rejected(result: ValidationResult, *phrases: str) -> None:
    """Exit 1 with an <error><message> holding every phrase, no traceback, never the secret."""
    assert result.returncode == 1, (result.stdout, result.stderr[-2000:])
    assert result.error_message, f"no <error><message>: {result.stdout!r}"
    for phrase in phrases:
        assert phrase in result.error_message, f"{phrase!r} not in {result.error_message!r}"
    assert AK_SECRET not in result.error_message and AK_SECRET not in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-2000:]


# --------------------------------------------------------------------------------------------------- accepted


@pytest.mark.parametrize("overrides", [
    {},
    {"delivery": "hec", "hec_destination": "hec1"},
    {"delivery": "hec"},  # no destination: the forwarder's own HEC, bootstrapped at run time
    {"start_position": "2026-11-01T00:00:00+08:00", "workers": "4", "consumer_group": "splunk_hf-2"},
    {"logstore": FULL_LOGSTORE, "consumer_group": "other-07"},  # a full quota still admits an existing group
    {"sls_ca_bundle": certifi.where()},  # an existing PEM file (used for https endpoints)
], ids=["stream", "hec-destination", "local-hec", "iso-start-workers", "existing-group-full-quota", "ca-bundle"])
def test_a_good_input_is_accepted(env: AddonEnv, overrides: Dict[str, str]) -> None:
    result = validate(env, **overrides)
    assert result.ok and result.error_message is None, (result.stdout, result.stderr[-2000:])
    assert "<error>" not in result.stdout
    assert "Traceback" not in result.stderr


def test_validation_has_no_side_effects_on_sls(env: AddonEnv) -> None:
    """Saving an input must not create its consumer group: only the running input does."""
    assert validate(env, consumer_group="validation_only").ok
    names = {group["name"] for group in env.sls.consumer_groups(PROJECT, LOGSTORE)}
    assert "validation_only" not in names


# --------------------------------------------------------------------------------------------------- rejected

STATIC_CASES: List[Tuple[str, Dict[str, str], Tuple[str, ...]]] = [
    ("endpoint-with-space", {"endpoint": "http://bad host:99x"},
     ("endpoint 'http://bad host:99x'", "is not [http[s]://]host[:port]")),
    ("endpoint-scheme", {"endpoint": "ftp://cn-hangzhou.log.aliyuncs.com"},
     ("endpoint 'ftp://cn-hangzhou.log.aliyuncs.com'",)),
    ("project", {"project": "Bad_Project"}, ("project 'Bad_Project' must be 3-63 lowercase letters",)),
    ("logstore", {"logstore": "A"}, ("logstore 'A' must be 2-63 lowercase letters",)),
    ("consumer-group", {"consumer_group": "a b"}, ("consumer_group 'a b' must be 2-128 letters",)),
    ("start-position", {"start_position": "yesterday"},
     ("start_position 'yesterday' must be begin, end, or an ISO-8601 time",)),
    ("start-position-date", {"start_position": "2026-02-30T00:00:00Z"},
     ("start_position '2026-02-30T00:00:00Z' is not a valid time",)),
    ("workers-zero", {"workers": "0"}, ("workers 0 must be a whole number from 1 to 64",)),
    ("workers-text", {"workers": "many"}, ("workers 'many' must be a whole number from 1 to 64",)),
    ("delivery", {"delivery": "kafka"}, ("delivery 'kafka' must be stream or hec",)),
    ("missing-account", {"account": ""}, ("account is required",)),
]


@pytest.mark.parametrize("overrides,phrases", [(o, p) for _, o, p in STATIC_CASES],
                         ids=[case for case, _, _ in STATIC_CASES])
def test_a_malformed_parameter_is_rejected_by_name(env: AddonEnv, overrides: Dict[str, str],
                                                   phrases: Tuple[str, ...]) -> None:
    assert_rejected(validate(env, **overrides), *phrases)


LIVE_CASES: List[Tuple[str, Dict[str, str], Tuple[str, ...]]] = [
    ("unknown-account", {"account": "nobody"}, ("account 'nobody' is not configured",)),
    ("missing-ca-bundle", {"sls_ca_bundle": "/nonexistent/corp-ca.pem"},
     ("sls_ca_bundle '/nonexistent/corp-ca.pem' is not a file on this forwarder",)),
    ("wrong-secret", {"account": "wrong_secret"},
     ("the AccessKey secret of account 'wrong_secret' is wrong", "code=SignatureNotMatch", "request_id=")),
    ("unknown-key-id", {"account": "unknown_key"},
     ("the AccessKey ID of account 'unknown_key' is unknown or disabled", "code=Unauthorized")),
    ("unknown-project", {"project": "no-such-project"},
     ("project 'no-such-project' does not exist at endpoint", "code=ProjectNotExist")),
    ("unknown-logstore", {"logstore": "no_such_store"},
     (f"logstore 'no_such_store' does not exist in project '{PROJECT}'", "code=LogStoreNotExist")),
    ("group-quota", {"logstore": FULL_LOGSTORE, "consumer_group": GROUP},
     (f"logstore '{FULL_LOGSTORE}' already has 30 consumer groups", "code=ConsumerGroupQuotaExceed")),
    ("unknown-hec-destination", {"delivery": "hec", "hec_destination": "nohec"},
     ("HEC destination 'nohec' is not configured",)),
]


@pytest.mark.parametrize("overrides,phrases", [(o, p) for _, o, p in LIVE_CASES],
                         ids=[case for case, _, _ in LIVE_CASES])
def test_an_input_that_cannot_work_is_rejected_with_the_reason(env: AddonEnv, overrides: Dict[str, str],
                                                               phrases: Tuple[str, ...]) -> None:
    assert_rejected(validate(env, **overrides), *phrases)


def test_each_code_appears_once(env: AddonEnv) -> None:
    """The explained sentence and the error's own details are not both appended (a past defect)."""
    result = validate(env, project="no-such-project")
    assert result.error_message is not None
    assert result.error_message.count("ProjectNotExist") == 1, result.error_message


def test_a_closed_port_is_reported_unreachable_at_once(env: AddonEnv) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    result = validate(env, endpoint=endpoint)
    elapsed = time.monotonic() - started
    assert_rejected(result, f"endpoint '{endpoint}' is unreachable or not answering", "code=ConnectionError")
    assert "object at 0x" not in (result.error_message or ""), result.error_message
    assert elapsed < SPLUNK_WEB_TIMEOUT, f"validation took {elapsed:.1f} s"


def test_a_silent_endpoint_is_reported_within_splunk_webs_timeout() -> None:
    """An endpoint that accepts connections and never answers (a black-holing proxy or firewall)."""
    with AddonEnv() as environment, socket.socket() as silent:
        environment.create_logstore(shards=1)
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nothing ever reads or answers
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = validate(environment, endpoint=endpoint)
        elapsed = time.monotonic() - started
    assert_rejected(result, f"endpoint '{endpoint}' is unreachable or not answering")
    assert elapsed < SPLUNK_WEB_TIMEOUT, f"validation took {elapsed:.1f} s"


# ----------------------------------------------------------------------------------------------------- scheme


def test_scheme_arguments_match_the_inputs_page() -> None:
    with open(os.path.join(ROOT, "globalConfig.json"), encoding="utf-8") as handle:
        services = json.load(handle)["pages"]["inputs"]["services"]
    entity = {field["field"]: field for field in next(s for s in services if s["name"] == "aliyun_sls")["entity"]}
    with ModInputRunner(built_app_dir()) as runner:
        scheme = runner.scheme()
    assert set(scheme.args) == set(entity) - SPLUNK_BUILT_IN_FIELDS
    for name, arg in scheme.args.items():
        expected = "true" if entity[name].get("required") else "false"
        assert arg.get("required_on_create", "false").lower() == expected, (name, arg)
    assert scheme.use_external_validation and not scheme.use_single_instance
    assert scheme.streaming_mode == "xml"
