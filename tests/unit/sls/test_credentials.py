"""Credentials providers, the STS and metadata clients, against the STS, metadata and SLS twins (issue 12)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from sls_forwarder.account import AccountSettings, session_name
from sls_forwarder.errors import ConfigError, RetryableError
from sls_forwarder.sls.client import SlsClient
from sls_forwarder.sls.credentials import Credentials, RefreshingCredentials, StaticCredentials
from sls_forwarder.sls.endpoint import parse_endpoint
from sls_forwarder.sls.imds import IMDS_URL_ENV, MetadataService, parse_expiration
from sls_forwarder.sls.providers import ProviderCache, make_provider
from sls_forwarder.sls.sts import StsClient, percent_encode
from tests.emulators.imds import ImdsEmulator
from tests.emulators.sls.server import SlsEmulator
from tests.emulators.sts import Role, StsEmulator

USER_KEY, USER_SECRET = "LTAI5tRamUserKey", "ram-user-secret-0123456789"
ROLE_ARN = "acs:ram::123456789012:role/sls-reader"
OPEN_ROLE_ARN = "acs:ram::123456789012:role/open-role"
EXTERNAL_ID = "ext-7Yq2Lm9Pz"
PROJECT = "proj"


@pytest.fixture
def imds():
    with ImdsEmulator("sls-forwarder-role", lifetime=3600) as twin:
        yield twin


@pytest.fixture
def sts(imds):
    roles = [Role(ROLE_ARN, trusted=frozenset({USER_KEY, imds.role_arn}), external_id=EXTERNAL_ID),
             Role(OPEN_ROLE_ARN)]
    with StsEmulator({USER_KEY: USER_SECRET, "LTAI5tOtherUser": "other-secret"}, roles) as twin:
        yield twin


@pytest.fixture
def imds_env(imds, monkeypatch):
    monkeypatch.setenv(IMDS_URL_ENV, imds.url)
    return imds


def user() -> Credentials:
    return Credentials(USER_KEY, USER_SECRET)


# ------------------------------------------------------------------------------------------ STS


def test_percent_encoding_is_rfc3986():
    assert percent_encode("a b*c~d/é") == "a%20b%2Ac~d%2F%C3%A9"


def test_assume_role_returns_temporary_credentials(sts):
    issued = StsClient(sts.endpoint).assume_role(user(), ROLE_ARN, "splunk-hf1", 1800, EXTERNAL_ID)
    assert issued.access_key_id.startswith("STS.") and issued.security_token.startswith("CAIS")
    assert 1790 <= issued.expiration - time.time() <= 1801
    assert sts.assumed() == ["issued"]


@pytest.mark.parametrize("base, arn, session, duration, external_id, code, words", [
    (Credentials(USER_KEY, "wrong-secret"), ROLE_ARN, "s1", 1800, EXTERNAL_ID, "SignatureDoesNotMatch",
     "base AccessKey secret is wrong"),
    (Credentials("LTAI5tNobody", "x"), ROLE_ARN, "s1", 1800, EXTERNAL_ID, "InvalidAccessKeyId.NotFound",
     "unknown or disabled"),
    (Credentials("LTAI5tOtherUser", "other-secret"), ROLE_ARN, "s1", 1800, EXTERNAL_ID, "NoPermission",
     "not allowed to assume the role"),
    (user(), ROLE_ARN, "s1", 1800, "ext-wrong", "NoPermission", "wrong ExternalId"),
    (user(), ROLE_ARN, "s1", 1800, "", "NoPermission", "wrong ExternalId"),
    (user(), "acs:ram::123456789012:role/nope", "s1", 1800, "", "EntityNotExist.Role", "no such role"),
    (user(), ROLE_ARN, "s", 1800, EXTERNAL_ID, "InvalidParameter.RoleSessionName", "role_session_name"),
    (user(), ROLE_ARN, "s1", 7200, EXTERNAL_ID, "InvalidParameter.DurationSeconds", "duration_seconds"),
])
def test_assume_role_refusals_name_what_is_wrong(sts, base, arn, session, duration, external_id, code, words):
    with pytest.raises(ConfigError) as caught:
        StsClient(sts.endpoint).assume_role(base, arn, session, duration, external_id)
    assert caught.value.code == code and words in caught.value.message, caught.value
    assert caught.value.request_id
    text = str(caught.value)
    for secret in (USER_SECRET, "wrong-secret", "other-secret", EXTERNAL_ID):
        assert secret not in text


def test_sts_down_or_failing_is_retryable(sts):
    sts.go_down()
    with pytest.raises(RetryableError) as caught:
        StsClient(sts.endpoint, timeout=2).assume_role(user(), ROLE_ARN, "s1", 1800, EXTERNAL_ID)
    assert caught.value.code == "StsUnreachable"
    sts.come_back()
    sts.fail_with(503, "ServiceUnavailable")
    with pytest.raises(RetryableError):
        StsClient(sts.endpoint).assume_role(user(), ROLE_ARN, "s1", 1800, EXTERNAL_ID)


def test_sts_goes_through_the_configured_proxy(sts):
    # The STS twin also serves absolute-form targets, so it can stand in for the proxy; the endpoint's own port is
    # closed, so only a request sent through the proxy succeeds.
    issued = StsClient("http://127.0.0.1:9", proxy_url=sts.url).assume_role(user(), OPEN_ROLE_ARN, "s1", 900)
    assert issued.access_key_id.startswith("STS.")


# ------------------------------------------------------------------------------------------ metadata service


def test_metadata_token_mode_and_role_discovery(imds):
    service = MetadataService(imds.url)
    assert service.role_name() == "sls-forwarder-role"
    issued = service.credentials()
    assert issued.access_key_id.startswith("STS.") and issued.expiration > time.time() + 3000
    assert service.credentials("sls-forwarder-role") == issued  # the instance hands out the same until rotation
    methods = [(served.method, served.detail) for served in imds.http.request_log]
    assert methods[0] == ("PUT", "token") and ("GET", "token_required") not in methods


def test_metadata_failures_are_classified(imds):
    with pytest.raises(ConfigError, match="'other-role' is not attached to this ECS instance"):
        MetadataService(imds.url).credentials("other-role")
    imds.role_name = ""
    with pytest.raises(ConfigError, match="no RAM role is attached"):
        MetadataService(imds.url).credentials()
    imds.role_name = "sls-forwarder-role"
    imds.fail_with(500)
    with pytest.raises(RetryableError):
        MetadataService(imds.url).credentials()
    imds.fail_with(None)
    with pytest.raises(RetryableError) as caught:
        MetadataService("http://127.0.0.1:9", timeout=1).credentials()
    assert caught.value.code == "MetadataUnreachable" and "unreachable" in caught.value.message


def test_expiration_format_is_strict():
    assert parse_expiration("2026-01-01T12:00:00Z") == 1767268800.0
    for wrong in ("2026-01-01T12:00:00.000Z", "2026-01-01T12:00:00+00:00", "2026-01-01 12:00:00"):
        with pytest.raises(ValueError):
            parse_expiration(wrong)


def test_the_metadata_url_is_fixed_unless_the_test_variable_is_set(monkeypatch):
    monkeypatch.delenv(IMDS_URL_ENV, raising=False)
    assert MetadataService().url == "http://100.100.100.200"
    monkeypatch.setenv(IMDS_URL_ENV, "http://127.0.0.1:1234")
    assert MetadataService().url == "http://127.0.0.1:1234"


# ------------------------------------------------------------------------------------------ renewal


class FakeSource:
    """Hands out credentials living ``lifetime`` seconds; fails while ``failing`` is set."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.calls = 0
        self.failing = False

    def __call__(self) -> Credentials:
        self.calls += 1
        if self.failing:
            raise RetryableError("STS at http://sts is unreachable", code="StsUnreachable")
        return Credentials("STS.key%d" % self.calls, "secret-%d" % self.calls, "token-%d" % self.calls,
                           time.time() + self.lifetime)


def test_renews_after_two_thirds_of_the_lifetime_while_the_old_ones_serve():
    source = FakeSource(lifetime=3.0)
    provider = RefreshingCredentials(source, "account=a type=assume_role", min_interval=0.1).start()
    try:
        first = provider.current()
        time.sleep(1.6)
        assert provider.current() is first and source.calls == 1, "renewed before two thirds of the lifetime"
        time.sleep(0.9)
        assert provider.current().access_key_id == "STS.key2", "not renewed after two thirds of the lifetime"
    finally:
        provider.close()


def test_failed_renewals_back_off_log_once_per_streak_and_recover(caplog):
    source = FakeSource(lifetime=1.5)
    provider = RefreshingCredentials(source, "account=a type=assume_role", backoff_initial=0.1, backoff_cap=0.3,
                                     min_interval=0.1).start()
    try:
        with caplog.at_level(logging.INFO, logger="sls_forwarder"):
            source.failing = True
            time.sleep(2.5)
            failed_calls = source.calls - 1
            source.failing = False
            time.sleep(0.8)
        assert 4 <= failed_calls <= 20, "renewal retries not capped-backoff paced: %d" % failed_calls
        assert caplog.text.count("action=credentials_refresh_failed") == 1
        assert "action=credentials_refreshed account=a type=assume_role after_failing_seconds=" in caplog.text
        assert provider.current().security_token.startswith("token-") and provider.current().expiration > time.time()
        assert "secret-" not in caplog.text and "token-" not in caplog.text
    finally:
        provider.close()


def test_renew_soon_fetches_at_once():
    source = FakeSource(lifetime=3600)
    provider = RefreshingCredentials(source, "account=a type=ecs_ram_role").start()
    try:
        stale = provider.current()
        assert provider.renew_soon(stale) is True
        deadline = time.monotonic() + 3
        while provider.current() is stale and time.monotonic() < deadline:
            time.sleep(0.05)
        assert provider.current().access_key_id == "STS.key2"
    finally:
        provider.close()


def test_static_credentials_cannot_be_renewed():
    static = StaticCredentials(user())
    assert static.renew_soon(static.current()) is False


# ------------------------------------------------------------------------------------------ providers per type


def test_assume_role_with_an_access_key(sts):
    account = AccountSettings.from_conf("x", {"credential_type": "assume_role", "access_key_id": USER_KEY,
                                              "access_key_secret": USER_SECRET, "role_arn": ROLE_ARN,
                                              "external_id": EXTERNAL_ID, "sts_endpoint": sts.endpoint})
    provider = make_provider(account, server_name="hf 1")
    try:
        assert provider.current().access_key_id.startswith("STS.")
    finally:
        provider.close()
    assert session_name("hf 1") == "splunk-hf-1"


def test_assume_role_based_on_the_ecs_role(sts, imds_env):
    account = AccountSettings.from_conf("x", {"credential_type": "assume_role", "role_arn": ROLE_ARN,
                                              "external_id": EXTERNAL_ID, "sts_endpoint": sts.endpoint})
    provider = make_provider(account, server_name="hf1")
    try:
        assert provider.current().access_key_id.startswith("STS.")
        assert provider.current().access_key_id not in imds_env.issued()
    finally:
        provider.close()


def test_ecs_role_account(imds_env):
    provider = make_provider(AccountSettings.from_conf("x", {"credential_type": "ecs_ram_role"}), server_name="h")
    try:
        assert provider.current().access_key_id == imds_env.issued()[-1]
    finally:
        provider.close()


def test_provider_cache_reuses_while_the_account_is_unchanged(imds_env):
    cache = ProviderCache(server_name="h")
    account = AccountSettings.from_conf("x", {"credential_type": "ecs_ram_role"})
    first = cache.get(account)
    assert cache.get(AccountSettings.from_conf("x", {"credential_type": "ecs_ram_role"})) is first
    assert cache.get(AccountSettings.from_conf("x", {"credential_type": "ecs_ram_role",
                                                     "ecs_role_name": "sls-forwarder-role"})) is not first
    cache.close()


@pytest.mark.parametrize("fields, words", [
    ({"credential_type": "assume_role", "role_arn": "arn:aws:iam::1:role/x"}, "role_arn"),
    ({"credential_type": "assume_role", "role_arn": ROLE_ARN, "duration_seconds": "600"}, "from 900"),
    ({"credential_type": "assume_role", "role_arn": ROLE_ARN, "access_key_id": "AK"}, "both the AccessKey ID"),
    ({"credential_type": "assume_role", "role_arn": ROLE_ARN, "sts_endpoint": "ftp://x"}, "sts_endpoint"),
    ({"credential_type": "assume_role", "role_arn": ROLE_ARN, "role_session_name": "a b"}, "role_session_name"),
    ({"credential_type": "access_key", "access_key_id": "AK"}, "no AccessKey ID or secret"),
    ({"credential_type": "password"}, "not one of"),
])
def test_account_settings_name_the_wrong_field(fields, words):
    with pytest.raises(ConfigError, match=words):
        AccountSettings.from_conf("acct", fields)


# ------------------------------------------------------------------------------------------ SLS with STS keys


@pytest.fixture
def sls():
    with SlsEmulator(access_keys={USER_KEY: USER_SECRET}) as twin:
        twin.create_project(PROJECT)
        twin.create_logstore(PROJECT, "ls", shard_count=1)
        yield twin


def test_sls_accepts_issued_keys_and_a_renewal_heals_an_expired_token(sls, imds_env, caplog):
    provider = make_provider(AccountSettings.from_conf("x", {"credential_type": "ecs_ram_role"}), server_name="h")
    client = SlsClient(parse_endpoint(sls.url), provider, PROJECT, backoff_initial=0.1, backoff_cap=0.5)
    try:
        assert client.get_project()["projectName"] == PROJECT
        first_key = provider.current().access_key_id
        sls.expire_security_tokens()
        imds_env.rotate()
        with caplog.at_level(logging.WARNING, logger="sls_forwarder"):
            assert [s.shard_id for s in client.list_shards("ls")] == [0]
        assert provider.current().access_key_id != first_key
        # The retry that follows the renewal may still come before the new credentials arrive (a retry never
        # waits for them); what matters is that it heals and that the expiry is logged once.
        expired = [r for r in sls.request_log if r.error_code == "SecurityTokenExpired"]
        assert 1 <= len(expired) <= 3, [r.error_code for r in sls.request_log]
        assert caplog.text.count("SecurityTokenExpired") == 1, caplog.text
        assert "action=credentials_expired account=x type=ecs_ram_role" in caplog.text
        assert provider.current().security_token not in caplog.text
    finally:
        client.close()
        provider.close()


def test_an_expired_token_of_static_credentials_is_a_config_error(sls, sts):
    issued = StsClient(sts.endpoint).assume_role(user(), OPEN_ROLE_ARN, "s1", 900)
    client = SlsClient(parse_endpoint(sls.url), issued, PROJECT, max_attempts=3)
    assert client.get_project()["projectName"] == PROJECT
    sls.expire_security_tokens()
    with pytest.raises(ConfigError) as caught:
        client.get_project()
    assert caught.value.code == "SecurityTokenExpired"
    assert issued.security_token not in str(caught.value) and issued.access_key_secret not in str(caught.value)


def test_the_heartbeat_client_never_waits_for_sts(sls, sts):
    """A control client (two attempts) facing an expired token returns at once while STS hangs up."""
    account = AccountSettings.from_conf("x", {"credential_type": "assume_role", "access_key_id": USER_KEY,
                                              "access_key_secret": USER_SECRET, "role_arn": OPEN_ROLE_ARN,
                                              "sts_endpoint": sts.endpoint})
    provider = make_provider(account, server_name="h")
    control = SlsClient(parse_endpoint(sls.url), provider, PROJECT, max_attempts=2, backoff_initial=0.1)
    try:
        control.create_consumer_group("ls", "g", 20, True)
        sts.go_down()
        sls.expire_security_tokens()
        started = time.monotonic()
        with pytest.raises(RetryableError) as caught:
            control.heartbeat("ls", "g", "c", [])
        assert caught.value.code == "SecurityTokenExpired"
        assert time.monotonic() - started < 1.0
        sts.come_back()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                control.heartbeat("ls", "g", "c", [])
                break
            except RetryableError:
                time.sleep(0.2)
        else:
            raise AssertionError("the heartbeat did not recover after STS came back")
    finally:
        control.close()
        provider.close()


def test_threads_end_with_close(imds_env):
    before = {t.name for t in threading.enumerate()}
    provider = make_provider(AccountSettings.from_conf("x", {"credential_type": "ecs_ram_role"}), server_name="h")
    provider.close()
    time.sleep(1.5)
    assert "sls-credentials" not in {t.name for t in threading.enumerate()} - before


def test_sts_messages_never_carry_the_secrets_it_echoes(sts, imds):
    """STS's SignatureDoesNotMatch message holds the string to sign: every parameter, percent-encoded twice."""
    role = imds.issuer.issue(imds.role_arn, 600)
    base = Credentials(role.access_key_id, "wrong-secret", role.security_token)
    with pytest.raises(ConfigError) as caught:
        StsClient(sts.endpoint).assume_role(base, ROLE_ARN, "s1", 1800, "ext+/=Secret:1")
    assert caught.value.code == "SignatureDoesNotMatch"
    text = str(caught.value) + repr(caught.value)
    for secret in (role.security_token, "ext+/=Secret:1", "ext%2B%2F%3DSecret%3A1", "ext%252B%252F"):
        assert secret not in text
    echoed = "denied: server string to sign is:POST&%2F&ExternalId%3Dext%252B%252F%253DSecret%253A1"
    assert StsClient._scrub("x ext%2B%2F%3DSecret%3A1 y", ("ext+/=Secret:1",)) == "x *** y"
    assert StsClient._scrub(echoed, ("ext+/=Secret:1",)) == "denied: "


def test_a_bug_in_a_renewal_does_not_end_the_renewals(caplog):
    calls = []

    def fetch() -> Credentials:
        calls.append(1)
        if len(calls) == 2:
            raise KeyError("secret-value-in-a-bug")
        return Credentials("STS.k%d" % len(calls), "s", "t", time.time() + 0.6)

    provider = RefreshingCredentials(fetch, "account=a type=ecs_ram_role", backoff_initial=0.1,
                                     min_interval=0.1).start()
    try:
        with caplog.at_level(logging.WARNING, logger="sls_forwarder"):
            deadline = time.monotonic() + 5
            while len(calls) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert len(calls) >= 3 and provider.current().access_key_id.startswith("STS.k")
        assert "code=RenewalBug" in caplog.text and "secret-value-in-a-bug" not in caplog.text
    finally:
        provider.close()
