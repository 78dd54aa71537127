"""SplunkdSettings against the splunkd double: decrypted secrets, clear text moved to encrypted storage, clear
errors without solnlib's retries, and the local HEC bootstrap (including losing the token-creation race)."""

from __future__ import annotations

import json
import logging
import time

import pytest

from sls_forwarder.account import AccountSettings
from sls_forwarder.errors import ConfigError
from sls_forwarder.splunk.splunkd import SplunkdSettings
from tests.emulators.splunkd import SplunkdDouble

ACCOUNT_CONF = "ta_aliyun_sls_account"


@pytest.fixture
def double():
    with SplunkdDouble(session_key="sk", server_name="hf-7") as running:
        yield running


def settings_for(double: SplunkdDouble) -> SplunkdSettings:
    return SplunkdSettings(double.url, double.session_key)


def _key_pair(account: AccountSettings) -> tuple:
    return account.access_key_id, account.access_key_secret


def test_encrypted_secret_is_read_back_and_left_alone(double, caplog):
    double.store_encrypted(ACCOUNT_CONF, "acct1", {"access_key_secret": "s3cret-value"}, {"access_key_id": "AK1"})
    with caplog.at_level(logging.INFO, logger="sls_forwarder"):
        assert _key_pair(settings_for(double).account("acct1")) == ("AK1", "s3cret-value")
    assert "secret_encrypted" not in caplog.text
    assert double.stanza(ACCOUNT_CONF, "acct1")["access_key_secret"] == "******"


def test_clear_text_secret_moves_to_encrypted_storage(double, caplog):
    double.set_stanza(ACCOUNT_CONF, "pushed", {"access_key_id": "AK2", "access_key_secret": "from-the-ds"})
    with caplog.at_level(logging.INFO, logger="sls_forwarder"):
        assert _key_pair(settings_for(double).account("pushed")) == ("AK2", "from-the-ds")
    assert "action=secret_encrypted conf=ta_aliyun_sls_account stanza=pushed" in caplog.text
    assert "from-the-ds" not in caplog.text
    assert double.stanza(ACCOUNT_CONF, "pushed")["access_key_secret"] == "******"
    assert _key_pair(settings_for(double).account("pushed")) == ("AK2", "from-the-ds")  # and it still reads back


def test_masked_secret_without_storage_says_what_happened(double):
    double.set_stanza(ACCOUNT_CONF, "wiped", {"access_key_id": "AK3", "access_key_secret": "******"})
    with pytest.raises(ConfigError, match="reads \\*\\*\\*\\*\\*\\* but no secret is stored"):
        settings_for(double).account("wiped")


def test_unknown_account_fails_at_once_without_retries(double):
    started = time.monotonic()
    with pytest.raises(ConfigError, match="account 'nope' is not configured"):
        settings_for(double).account("nope")
    assert time.monotonic() - started < 2.0, "solnlib's retry would sleep 1 + 2 + 4 s here"


def test_server_name_and_log_level(double):
    double.set_stanza("ta_aliyun_sls_settings", "logging", {"loglevel": "debug"})
    settings = settings_for(double)
    assert settings.server_name("fallback") == "hf-7"
    assert settings.log_level() == "DEBUG"


def test_local_hec_enables_hec_and_creates_one_token(double):
    destination, max_content_length = settings_for(double).local_hec("main")
    tokens = double.hec_tokens()
    assert list(tokens) == ["ta_aliyun_sls"]
    assert destination.token == tokens["ta_aliyun_sls"]["token"]
    assert destination.url.endswith(":" + double.hec_settings()["port"])
    assert max_content_length > 0
    # A second input (or worker) reuses the token instead of creating another.
    assert settings_for(double).local_hec("other_index")[0].token == destination.token
    assert list(double.hec_tokens()) == ["ta_aliyun_sls"]


def test_local_hec_reads_the_token_when_another_worker_created_it_first(double, monkeypatch):
    """GET says 404, then another worker creates the token, so our POST gets 409: we read theirs, no error."""
    from splunklib import binding

    original_post = binding.Context.post
    raced = []

    def post_after_a_rival(self, path_segment, *args, **kwargs):
        if path_segment == "data/inputs/http" and not raced:
            raced.append(path_segment)
            original_post(self, path_segment, *args, **kwargs)  # the rival worker's create succeeds
        return original_post(self, path_segment, *args, **kwargs)  # ours answers 409

    monkeypatch.setattr(binding.Context, "post", post_after_a_rival)
    destination, _ = settings_for(double).local_hec("main")
    assert raced == ["data/inputs/http"]
    assert destination.token == double.hec_tokens()["ta_aliyun_sls"]["token"]


def test_local_hec_needs_rights_and_says_so(double, monkeypatch):
    from splunklib import binding

    def forbidden(self, path_segment, *args, **kwargs):
        raise binding.HTTPError(_FakeResponse(403))

    monkeypatch.setattr(binding.Context, "post", forbidden)
    with pytest.raises(ConfigError, match="edit_token_http"):
        settings_for(double).local_hec("main")


class _FakeResponse:
    """The minimum splunklib's HTTPError reads from a response."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = "Forbidden"
        self.headers = []
        self.body = _Body(json.dumps({"messages": [{"type": "ERROR", "text": "forbidden"}]}).encode())


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


def test_assume_role_account_reads_its_encrypted_external_id(double):
    double.store_encrypted(ACCOUNT_CONF, "cross", {"access_key_secret": "base-secret", "external_id": "ext-123abc"},
                           {"credential_type": "assume_role", "access_key_id": "AKB",
                            "role_arn": "acs:ram::123456789012:role/sls-reader", "duration_seconds": "1800",
                            "sts_endpoint": "sts.cn-hangzhou.aliyuncs.com"})
    account = settings_for(double).account("cross")
    assert (account.credential_type, account.role_arn, account.external_id, account.duration_seconds) == (
        "assume_role", "acs:ram::123456789012:role/sls-reader", "ext-123abc", 1800)
    assert _key_pair(account) == ("AKB", "base-secret")
    assert "ext-123abc" not in repr(account) and "base-secret" not in repr(account)


def test_clear_text_external_id_moves_to_encrypted_storage(double):
    double.set_stanza(ACCOUNT_CONF, "pushed_role", {"credential_type": "assume_role", "external_id": "from-the-ds",
                                                    "role_arn": "acs:ram::123456789012:role/r"})
    assert settings_for(double).account("pushed_role").external_id == "from-the-ds"
    assert double.stanza(ACCOUNT_CONF, "pushed_role")["external_id"] == "******"


def test_ecs_role_account_needs_no_key(double):
    double.set_stanza(ACCOUNT_CONF, "ecs", {"credential_type": "ecs_ram_role", "ecs_role_name": ""})
    account = settings_for(double).account("ecs")
    assert (account.credential_type, account.ecs_role_name, account.has_access_key) == ("ecs_ram_role", "", False)
