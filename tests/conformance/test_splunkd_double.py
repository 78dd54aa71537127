"""The splunkd double serves what solnlib and splunklib expect, checked with those independent clients."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
import warnings
from pathlib import Path
from typing import Iterator

import pytest
import requests
import splunklib.binding as binding
import splunklib.client as client
import urllib3
from solnlib.conf_manager import ConfManager, ConfManagerException, ConfStanzaNotExistException
from solnlib.credentials import CredentialManager, CredentialNotExistException
from solnlib.hec_config import HECConfig

from tests.emulators.hec import HecEmulator
from tests.emulators.splunkd import CRED_END_MARK, CRED_SEP, SplunkdDouble, ucc_realm

ROOT = Path(__file__).resolve().parents[2]
APP = "TA-aliyun-sls"
ACCOUNT_CONF = "ta_aliyun_sls_account"
REALM = f"__REST_CREDENTIAL__#{APP}#configs/conf-{ACCOUNT_CONF}"


@pytest.fixture(autouse=True)
def _quiet_self_signed_warnings() -> Iterator[None]:
    # Both clients talk to splunkd with verify=False, as they do in production.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        yield


@pytest.fixture()
def splunkd() -> Iterator[SplunkdDouble]:
    double = SplunkdDouble(
        session_key="sk", app=APP, server_name="hf1",
        confs={"ta_aliyun_sls_settings": {"logging": {"loglevel": "DEBUG"}, "output": {"event_output": "stream"}},
               "inputs": {"aliyun_sls://prod": {"account": "acct1", "logstore": "audit"}}},
        passwords=[{"realm": "other_realm", "username": "acct1", "password": "not-mine"}],
    )
    double.store_encrypted(ACCOUNT_CONF, "acct1", {"access_key_secret": "s3cr3t"}, {"access_key_id": "LTAI-id"})
    with double:
        yield double


def conf_manager(splunkd: SplunkdDouble) -> ConfManager:
    return ConfManager("sk", APP, realm=REALM, scheme="https", host="127.0.0.1", port=splunkd.port)


def credential_manager(splunkd: SplunkdDouble) -> CredentialManager:
    return CredentialManager("sk", APP, realm=REALM, scheme="https", host="127.0.0.1", port=splunkd.port)


def service(splunkd: SplunkdDouble, token: str = "sk") -> client.Service:
    return client.connect(host="127.0.0.1", port=splunkd.port, token=token, app=APP, owner="nobody",
                          autologin=False)


def test_url_is_https_on_loopback(splunkd: SplunkdDouble) -> None:
    assert splunkd.url == f"https://127.0.0.1:{splunkd.port}"
    assert ucc_realm(APP, ACCOUNT_CONF) == REALM


def test_store_encrypted_is_laid_out_like_ucc(splunkd: SplunkdDouble) -> None:
    assert splunkd.stanza(ACCOUNT_CONF, "acct1") == {"access_key_id": "LTAI-id", "access_key_secret": "******"}
    stored = sorted((p["realm"], p["username"], p["clear_password"]) for p in splunkd.passwords()
                    if p["realm"] == REALM)
    assert stored == [(REALM, f"acct1{CRED_SEP}1", '{"access_key_secret": "s3cr3t"}'),
                      (REALM, f"acct1{CRED_SEP}2", CRED_END_MARK)]


def test_conf_manager_reads_and_decrypts_the_account(splunkd: SplunkdDouble) -> None:
    account = conf_manager(splunkd).get_conf(ACCOUNT_CONF).get("acct1")
    assert account["access_key_id"] == "LTAI-id"
    assert account["access_key_secret"] == "s3cr3t"
    assert account["eai:appName"] == APP and account["disabled"] == "0"
    settings = conf_manager(splunkd).get_conf("ta_aliyun_sls_settings").get_all()
    assert settings["logging"]["loglevel"] == "DEBUG"
    assert settings["output"]["event_output"] == "stream"


def test_conf_manager_calls_the_endpoints_splunkd_serves(splunkd: SplunkdDouble) -> None:
    conf_manager(splunkd).get_conf(ACCOUNT_CONF).get("acct1")
    paths = [path.split("?")[0] for _, path in splunkd.calls()]
    assert f"/servicesNS/nobody/{APP}/properties/{ACCOUNT_CONF}" in paths
    assert f"/servicesNS/nobody/{APP}/configs/conf-{ACCOUNT_CONF}/acct1" in paths
    realm_queries = [path for _, path in splunkd.calls() if "storage/passwords" in path]
    assert realm_queries and all("search=realm%3D" in path for path in realm_queries)


def test_conf_manager_missing_conf_and_stanza(splunkd: SplunkdDouble) -> None:
    with pytest.raises(ConfManagerException):
        conf_manager(splunkd).get_conf("no_such_conf")
    with pytest.raises(ConfStanzaNotExistException):
        conf_manager(splunkd).get_conf(ACCOUNT_CONF).get("nobody-here")


def test_clear_secret_can_be_moved_into_encrypted_storage(splunkd: SplunkdDouble) -> None:
    splunkd.set_stanza(ACCOUNT_CONF, "legacy", {"access_key_id": "id2", "access_key_secret": "in-clear"})
    conf = conf_manager(splunkd).get_conf(ACCOUNT_CONF)
    stanza = conf.get("legacy")
    conf.update("legacy", {"access_key_id": stanza["access_key_id"], "access_key_secret": stanza["access_key_secret"]},
                ["access_key_secret"])
    assert splunkd.stanza(ACCOUNT_CONF, "legacy")["access_key_secret"] == "******"
    assert splunkd.read_encrypted(ACCOUNT_CONF, "legacy") == {"access_key_secret": "in-clear"}
    assert conf.get("legacy")["access_key_secret"] == "in-clear"
    conf.update("legacy", {"access_key_secret": "rotated"}, ["access_key_secret"])  # 409 -> update path
    assert conf.get("legacy")["access_key_secret"] == "rotated"


def test_conf_manager_delete_removes_stanza_and_credentials(splunkd: SplunkdDouble) -> None:
    conf = conf_manager(splunkd).get_conf(ACCOUNT_CONF)
    conf.delete("acct1")
    assert splunkd.stanza(ACCOUNT_CONF, "acct1") is None
    assert [p for p in splunkd.passwords() if p["realm"] == REALM] == []
    assert [p["realm"] for p in splunkd.passwords()] == ["other_realm"]


def test_credential_manager_chunks_long_passwords_and_only_sees_its_realm(splunkd: SplunkdDouble) -> None:
    manager = credential_manager(splunkd)
    assert json.loads(manager.get_password("acct1")) == {"access_key_secret": "s3cr3t"}
    long_secret = "x" * 600
    manager.set_password("big", long_secret)
    assert manager.get_password("big") == long_secret
    chunks = [p for p in splunkd.passwords() if p["username"].startswith(f"big{CRED_SEP}")]
    assert len(chunks) == 4  # 255 + 255 + 90 + end mark
    manager.delete_password("big")
    with pytest.raises(CredentialNotExistException):
        manager.get_password("big")
    foreign = CredentialManager("sk", APP, realm="other_realm", scheme="https", host="127.0.0.1", port=splunkd.port)
    assert foreign.get_password("acct1") == "not-mine"


def test_splunklib_server_info_and_confs(splunkd: SplunkdDouble) -> None:
    splunk = service(splunkd)
    assert splunk.info["serverName"] == "hf1"
    assert splunk.info["version"] == "9.4.1"
    assert "inputs" in splunk.confs and "no_such_conf" not in splunk.confs
    stanza = splunk.confs["inputs"]["aliyun_sls://prod"]
    assert stanza.content["logstore"] == "audit"
    created = splunk.confs["ta_aliyun_sls_settings"].create("proxy")
    created.submit({"proxy_enabled": "1", "proxy_url": "http://127.0.0.1:3128"})
    assert splunkd.stanza("ta_aliyun_sls_settings", "proxy") == {"proxy_enabled": "1",
                                                                 "proxy_url": "http://127.0.0.1:3128"}
    splunk.confs["ta_aliyun_sls_settings"].delete("proxy")
    assert splunkd.stanza("ta_aliyun_sls_settings", "proxy") is None
    with pytest.raises(KeyError):
        splunk.confs["ta_aliyun_sls_settings"]["proxy"]


def test_splunklib_storage_passwords(splunkd: SplunkdDouble) -> None:
    passwords = service(splunkd).storage_passwords
    created = passwords.create("pw:with:colons", "user1", "realm1")
    assert created.name == "realm1:user1:"
    assert (created.realm, created.username, created.clear_password) == ("realm1", "user1", "pw:with:colons")
    with pytest.raises(binding.HTTPError) as conflict:
        passwords.create("again", "user1", "realm1")
    assert conflict.value.status == 409
    in_realm = passwords.list(count=-1, search="realm=realm1")
    assert [p.username for p in in_realm] == ["user1"]
    passwords.delete("user1", "realm1")
    assert passwords.list(count=-1, search="realm=realm1") == []


def test_wrong_session_key_is_refused(splunkd: SplunkdDouble) -> None:
    with pytest.raises(binding.HTTPError) as refused:
        service(splunkd, token="wrong").info
    assert refused.value.status == 401
    reply = requests.get(splunkd.url + "/services/server/info", verify=False)
    assert reply.status_code == 401
    assert '<msg type="WARN">call not properly authenticated</msg>' in reply.text


def test_login_with_username_and_password(splunkd: SplunkdDouble) -> None:
    splunk = client.connect(host="127.0.0.1", port=splunkd.port, username="admin", password="changeme")
    assert splunk.info["serverName"] == "hf1"
    with pytest.raises(binding.AuthenticationError):
        client.connect(host="127.0.0.1", port=splunkd.port, username="admin", password="nope")


def test_json_output_mode(splunkd: SplunkdDouble) -> None:
    headers = {"Authorization": "Splunk sk"}
    one = requests.get(f"{splunkd.url}/servicesNS/nobody/{APP}/configs/conf-{ACCOUNT_CONF}/acct1",
                       params={"output_mode": "json"}, headers=headers, verify=False)
    assert one.status_code == 200
    entry = one.json()["entry"][0]
    assert entry["name"] == "acct1"
    assert entry["content"]["access_key_secret"] == "******"
    assert entry["content"]["disabled"] is False
    assert entry["acl"]["app"] == APP
    realm = requests.get(f"{splunkd.url}/servicesNS/nobody/{APP}/storage/passwords",
                         params={"output_mode": "json", "search": f"realm={REALM}", "count": "-1"},
                         headers=headers, verify=False).json()
    assert {e["content"]["username"] for e in realm["entry"]} == {f"acct1{CRED_SEP}1", f"acct1{CRED_SEP}2"}
    assert realm["paging"]["total"] == 2
    missing = requests.get(f"{splunkd.url}/servicesNS/nobody/{APP}/configs/conf-{ACCOUNT_CONF}/nope",
                           params={"output_mode": "json"}, headers=headers, verify=False)
    assert missing.status_code == 404 and missing.json()["messages"][0]["type"] == "ERROR"
    info = requests.get(f"{splunkd.url}/services/server/info", params={"output_mode": "json"}, headers=headers,
                        verify=False).json()
    assert info["entry"][0]["content"]["serverName"] == "hf1"


def test_configs_create_update_delete_over_rest(splunkd: SplunkdDouble) -> None:
    headers = {"Authorization": "Splunk sk"}
    collection = f"{splunkd.url}/servicesNS/nobody/{APP}/configs/conf-inputs"
    created = requests.post(collection, data={"name": "aliyun_sls://dev", "logstore": "x"}, headers=headers,
                            verify=False)
    assert created.status_code == 201
    assert requests.post(collection, data={"name": "aliyun_sls://dev"}, headers=headers,
                         verify=False).status_code == 409
    stanza_url = collection + "/aliyun_sls%3A%2F%2Fdev"
    assert requests.post(stanza_url, data={"logstore": "y"}, headers=headers, verify=False).status_code == 200
    assert splunkd.stanza("inputs", "aliyun_sls://dev") == {"logstore": "y"}
    assert requests.delete(stanza_url, headers=headers, verify=False).status_code == 200
    assert requests.delete(stanza_url, headers=headers, verify=False).status_code == 404
    empty = requests.get(f"{splunkd.url}/servicesNS/nobody/{APP}/configs/conf-unknown", headers=headers,
                         params={"output_mode": "json"}, verify=False)
    assert empty.status_code == 200 and empty.json()["entry"] == []


def test_properties_endpoint(splunkd: SplunkdDouble) -> None:
    headers = {"Authorization": "Splunk sk"}
    base = f"{splunkd.url}/servicesNS/nobody/{APP}/properties"
    assert requests.get(f"{base}/no_such_conf", headers=headers, verify=False).status_code == 404
    stanzas = requests.get(f"{base}/ta_aliyun_sls_settings", headers=headers, params={"output_mode": "json"},
                           verify=False).json()
    assert [e["name"] for e in stanzas["entry"]] == ["logging", "output"]
    value = requests.get(f"{base}/ta_aliyun_sls_settings/logging/loglevel", headers=headers, verify=False)
    assert (value.status_code, value.text) == (200, "DEBUG")
    keys = requests.get(f"{base}/ta_aliyun_sls_settings/logging", headers=headers, params={"output_mode": "json"},
                        verify=False).json()
    assert [(e["name"], e["content"]) for e in keys["entry"]] == [("loglevel", "DEBUG")]


def test_hec_inputs_through_solnlib_drive_the_hec_emulator() -> None:
    with HecEmulator() as hec, SplunkdDouble(hec=hec, hec_enabled=False) as splunkd:
        hec_config = HECConfig("sk", scheme="https", host="127.0.0.1", port=splunkd.port)
        settings = hec_config.get_settings()
        assert settings["disabled"] == "1" and settings["port"] == str(hec.port)
        hec_config.update_settings({"disabled": 0})
        assert splunkd.hec_settings()["disabled"] == "0"
        assert hec_config.get_input("ta_aliyun_sls") is None
        hec_config.create_input("ta_aliyun_sls", {"index": "sls", "indexes": "sls,sls_audit", "useACK": 1})
        token_settings = hec_config.get_input("ta_aliyun_sls")
        token = token_settings["token"]
        uuid.UUID(token)
        assert token_settings["useACK"] == "1" and token_settings["indexes"] == ["sls", "sls_audit"]
        assert hec_config.get_limits()["max_content_length"] == "838860800"

        channel = str(uuid.uuid4())
        reply = requests.post(hec.url + "/services/collector/event", data=json.dumps({"event": "via splunkd"}),
                              headers={"Authorization": f"Splunk {token}", "X-Splunk-Request-Channel": channel})
        assert reply.json() == {"text": "Success", "code": 0, "ackId": 0}
        assert hec.events()[0]["_token"] == token
        wrong_index = requests.post(hec.url + "/services/collector/event",
                                    data=json.dumps({"event": "x", "index": "main"}),
                                    headers={"Authorization": f"Splunk {token}", "X-Splunk-Request-Channel": channel})
        assert wrong_index.json()["code"] == 7

        hec_config.update_input("ta_aliyun_sls", {"disabled": 1})
        disabled = requests.post(hec.url + "/services/collector/event", data=json.dumps({"event": "x"}),
                                 headers={"Authorization": f"Splunk {token}", "X-Splunk-Request-Channel": channel})
        assert disabled.json()["code"] == 1
        hec_config.delete_input("ta_aliyun_sls")
        assert splunkd.hec_tokens() == {}
        gone = requests.post(hec.url + "/services/collector/event", data=json.dumps({"event": "x"}),
                             headers={"Authorization": f"Splunk {token}"})
        assert gone.json()["code"] == 4


def test_hec_input_listing_in_both_namespaces() -> None:
    with SplunkdDouble(hec_tokens={"existing": {"token": "11111111-2222-4333-8444-555555555555"}}) as splunkd:
        headers = {"Authorization": "Splunk sk"}
        for path in ("/services/data/inputs/http", "/servicesNS/nobody/splunk_httpinput/data/inputs/http"):
            listing = requests.get(splunkd.url + path, params={"output_mode": "json"}, headers=headers,
                                   verify=False).json()
            assert [e["name"] for e in listing["entry"]] == ["http", "http://existing"]
        one = requests.get(splunkd.url + "/servicesNS/nobody/splunk_httpinput/data/inputs/http/http%3A%2F%2Fexisting",
                           params={"output_mode": "json"}, headers=headers, verify=False).json()
        assert one["entry"][0]["content"]["token"] == "11111111-2222-4333-8444-555555555555"
        enabled = requests.post(splunkd.url + "/servicesNS/nobody/splunk_httpinput/data/inputs/http/existing/disable",
                                headers=headers, verify=False)
        assert enabled.status_code == 200 and splunkd.hec_tokens()["existing"]["disabled"] == "1"


def test_plain_http_mode_works_with_solnlib() -> None:
    with SplunkdDouble(tls=False, confs={"c": {"s": {"k": "v"}}}) as splunkd:
        assert splunkd.url.startswith("http://")
        conf = ConfManager("sk", APP, scheme="http", host="127.0.0.1", port=splunkd.port).get_conf("c")
        assert conf.get("s")["k"] == "v"


def test_cli_serves_a_seed_and_stops_on_sigterm(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"encrypted": [{"conf": ACCOUNT_CONF, "stanza": "acct1",
                                               "fields": {"access_key_secret": "cli-secret"},
                                               "others": {"access_key_id": "id"}}]}), encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "tests.emulators.splunkd", "--seed", str(seed)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    try:
        line = process.stdout.readline()
        assert "listening url=https://127.0.0.1:" in line
        port = int(line.split("url=")[1].split()[0].rsplit(":", 1)[1])
        conf = ConfManager("sk", APP, realm=REALM, scheme="https", host="127.0.0.1", port=port).get_conf(ACCOUNT_CONF)
        assert conf.get("acct1")["access_key_secret"] == "cli-secret"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
