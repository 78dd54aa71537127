"""The STS and metadata twins judged by the unmodified official clients (issue 12): alibabacloud-credentials against
the metadata twin and AssumeRole, aliyun-python-sdk-sts against the STS twin, and aliyun-log-python-sdk signing with
the temporary keys they issue against the SLS emulator. Plus the wire details the clients do not exercise: hardened
mode, the strict Expiration format, the error bodies, signature and nonce checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from typing import Dict, Iterator
from urllib.parse import quote, urlencode

import pytest
import urllib3

from tests.emulators.imds import ImdsEmulator
from tests.emulators.sls.testing import PROJECT, sdk_proxy_env
from tests.emulators.sts import Role, StsEmulator

USER_KEY, USER_SECRET = "LTAI5tConformanceUser", "conformance-user-secret-1a2b"
ROLE_ARN = "acs:ram::123456789012:role/sls-reader"
EXTERNAL_ID = "ext-Conformance-42"
EXPIRATION = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture
def imds() -> Iterator[ImdsEmulator]:
    with ImdsEmulator("ecs-role", lifetime=3600) as twin:
        yield twin


@pytest.fixture
def sts(imds: ImdsEmulator) -> Iterator[StsEmulator]:
    roles = [Role(ROLE_ARN, trusted=frozenset({USER_KEY, imds.role_arn}), external_id=EXTERNAL_ID)]
    with StsEmulator({USER_KEY: USER_SECRET}, roles) as twin:
        yield twin


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY",
                 "all_proxy", "ALIBABA_CLOUD_ECS_METADATA", "ALIBABA_CLOUD_IMDSV1_DISABLED"):
        monkeypatch.delenv(name, raising=False)


# ------------------------------------------------------------------------------------------ official clients


def test_alibabacloud_credentials_reads_the_metadata_twin_in_token_mode(imds, no_proxy_env, monkeypatch):
    from alibabacloud_credentials.provider.ecs_ram_role import EcsRamRoleCredentialsProvider

    # The client always talks to 100.100.100.200 but honours HTTP_PROXY: the twin serves absolute-form targets.
    monkeypatch.setenv("HTTP_PROXY", imds.url)
    monkeypatch.setenv("ALIBABA_CLOUD_IMDSV1_DISABLED", "true")  # fail rather than fall back to tokenless GETs
    provider = EcsRamRoleCredentialsProvider(async_update_enabled=False, disable_imds_v1=True)
    credentials = provider.get_credentials()
    assert credentials.get_access_key_id() == imds.issued()[-1]
    assert credentials.get_security_token().startswith("CAIS")
    assert [served.detail for served in imds.http.request_log][:2] == ["token", "role"]
    assert all(served.status == 200 for served in imds.http.request_log)


def test_alibabacloud_credentials_assumes_a_role_at_the_sts_twin(sts, no_proxy_env):
    from alibabacloud_credentials.provider.ram_role_arn import RamRoleArnCredentialsProvider

    provider = RamRoleArnCredentialsProvider(access_key_id=USER_KEY, access_key_secret=USER_SECRET,
                                             role_arn=ROLE_ARN, role_session_name="conformance",
                                             duration_seconds=3600, external_id=EXTERNAL_ID,
                                             sts_endpoint=sts.endpoint)
    credentials = provider.get_credentials()
    assert credentials.get_access_key_id().startswith("STS.") and sts.assumed() == ["issued"]


def test_alibabacloud_credentials_sees_the_real_error_of_a_wrong_external_id(sts, no_proxy_env):
    from alibabacloud_credentials.provider.ram_role_arn import RamRoleArnCredentialsProvider

    provider = RamRoleArnCredentialsProvider(access_key_id=USER_KEY, access_key_secret=USER_SECRET,
                                             role_arn=ROLE_ARN, role_session_name="conformance",
                                             external_id="ext-wrong-one", sts_endpoint=sts.endpoint)
    with pytest.raises(Exception) as caught:
        provider.get_credentials()
    assert "NoPermission" in str(caught.value) and sts.assumed() == ["NoPermission"]


def test_alibabacloud_credentials_chains_the_ecs_role_into_assume_role(imds, sts, no_proxy_env):
    from alibabacloud_credentials.http import HttpOptions
    from alibabacloud_credentials.provider.ecs_ram_role import EcsRamRoleCredentialsProvider
    from alibabacloud_credentials.provider.ram_role_arn import RamRoleArnCredentialsProvider

    # Only the metadata client goes through the twin as its proxy; the STS call goes straight to the STS twin.
    base = EcsRamRoleCredentialsProvider(async_update_enabled=False, http_options=HttpOptions(proxy=imds.url))
    provider = RamRoleArnCredentialsProvider(credentials_provider=base, role_arn=ROLE_ARN,
                                             role_session_name="chain", external_id=EXTERNAL_ID,
                                             sts_endpoint=sts.endpoint, duration_seconds=900)
    assert provider.get_credentials().get_access_key_id().startswith("STS.")


def _sdk_assume_role(sts: StsEmulator, key_id: str, secret: str, **fields: object) -> Dict[str, object]:
    from aliyunsdkcore.client import AcsClient
    from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest

    client = AcsClient(key_id, secret, "cn-hangzhou")
    request = AssumeRoleRequest()
    request.set_endpoint("127.0.0.1:%d" % sts.port)
    request.set_protocol_type("http")
    request.set_accept_format("JSON")
    request.set_RoleArn(fields.get("role_arn", ROLE_ARN))
    request.set_RoleSessionName(fields.get("session", "sdk-session"))
    request.set_DurationSeconds(fields.get("duration", 3600))
    request.add_query_param("ExternalId", fields.get("external_id", EXTERNAL_ID))
    return json.loads(client.do_action_with_exception(request))


def test_aliyun_python_sdk_sts_assumes_a_role(sts, no_proxy_env):
    answer = _sdk_assume_role(sts, USER_KEY, USER_SECRET)
    credentials = answer["Credentials"]
    assert credentials["AccessKeyId"].startswith("STS.") and EXPIRATION.match(credentials["Expiration"])
    assert answer["AssumedRoleUser"]["Arn"] == ROLE_ARN + "/sdk-session" and answer["RequestId"]


@pytest.mark.parametrize("key_id, secret, fields, code", [
    (USER_KEY, "not-the-secret", {}, "InvalidAccessKeySecret"),     # the SDK's own name for a matching StringToSign
    ("LTAI5tNobody", USER_SECRET, {}, "InvalidAccessKeyId.NotFound"),
    (USER_KEY, USER_SECRET, {"external_id": "ext-wrong-one"}, "NoPermission"),
    (USER_KEY, USER_SECRET, {"role_arn": "acs:ram::123456789012:role/missing"}, "EntityNotExist.Role"),
    (USER_KEY, USER_SECRET, {"session": "x"}, "InvalidParameter.RoleSessionName"),
    (USER_KEY, USER_SECRET, {"duration": 600}, "InvalidParameter.DurationSeconds"),
])
def test_aliyun_python_sdk_sts_reads_the_real_errors(sts, no_proxy_env, key_id, secret, fields, code):
    from aliyunsdkcore.acs_exception.exceptions import ServerException

    with pytest.raises(ServerException) as caught:
        _sdk_assume_role(sts, key_id, secret, **fields)
    assert caught.value.get_error_code() == code, caught.value
    assert caught.value.get_request_id()


def test_aliyun_log_sdk_signs_with_issued_keys_and_sees_expiry(sts, no_proxy_env):
    from aliyun.log import LogClient, LogException

    from tests.emulators.sls.server import SlsEmulator

    answer = _sdk_assume_role(sts, USER_KEY, USER_SECRET)["Credentials"]
    with SlsEmulator() as sls:
        sls.create_project(PROJECT)
        sls.create_logstore(PROJECT, "ls", shard_count=1)
        with sdk_proxy_env(sls):
            client = LogClient("%s:%d" % (sls.host, sls.port), answer["AccessKeyId"], answer["AccessKeySecret"],
                               securityToken=answer["SecurityToken"])
            assert client.get_project(PROJECT).get_projectname() == PROJECT
            assert [shard["shardID"] for shard in client.list_shards(PROJECT, "ls").get_shards_info()] == [0]
            forged = LogClient("%s:%d" % (sls.host, sls.port), answer["AccessKeyId"], answer["AccessKeySecret"],
                               securityToken=answer["SecurityToken"][:-2] + "xx")
            with pytest.raises(LogException) as refused:
                forged.get_project(PROJECT)
            assert refused.value.get_error_code() == "InvalidSecurityToken"
            sls.expire_security_tokens()
            with pytest.raises(LogException) as expired:
                client.get_project(PROJECT)
            assert expired.value.get_error_code() == "SecurityTokenExpired"
    assert {r.error_code for r in sls.request_log} == {"", "InvalidSecurityToken", "SecurityTokenExpired"}


# ------------------------------------------------------------------------------------------ wire details


def test_metadata_hardened_mode_and_strict_expiration(imds):
    http = urllib3.PoolManager()
    base = imds.url + "/latest/meta-data/ram/security-credentials/"
    assert http.request("GET", base).status == 403, "hardened mode serves no GET without a token"
    assert http.request("PUT", imds.url + "/latest/api/token").status == 400, "the TTL header is required"
    token = http.request("PUT", imds.url + "/latest/api/token",
                         headers={"X-aliyun-ecs-metadata-token-ttl-seconds": "21600"}).data.decode()
    header = {"X-aliyun-ecs-metadata-token": token}
    assert http.request("GET", base, headers={"X-aliyun-ecs-metadata-token": "forged"}).status == 401
    name = http.request("GET", base, headers=header).data.decode()
    assert name == "ecs-role", "the role name has no trailing newline: the SDK uses the whole body"
    document = json.loads(http.request("GET", base + name, headers=header).data)
    assert document["Code"] == "Success" and EXPIRATION.match(document["Expiration"])
    assert EXPIRATION.match(document["LastUpdated"])
    assert http.request("GET", base + "other", headers=header).status == 404
    imds.hardened = False
    assert http.request("GET", base).status == 200, "without hardening a tokenless GET is served"
    imds.fail_with(500)
    assert http.request("GET", base, headers=header).status == 500


def _signed_query(params: Dict[str, str], secret: str, method: str = "GET") -> str:
    def enc(text: str) -> str:
        return quote(text, safe="-_.~")

    canonical = "&".join("%s=%s" % (enc(k), enc(params[k])) for k in sorted(params))
    to_sign = "%s&%s&%s" % (method, enc("/"), enc(canonical))
    signature = base64.b64encode(hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
    return urlencode(dict(params, Signature=signature), quote_via=quote)


def _params(**extra: str) -> Dict[str, str]:
    params = {"Action": "AssumeRole", "Version": "2015-04-01", "Format": "JSON", "AccessKeyId": USER_KEY,
              "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
              "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "RoleArn": ROLE_ARN,
              "RoleSessionName": "wire", "ExternalId": EXTERNAL_ID}
    params.update(extra)
    return params


def test_sts_error_bodies_signature_and_nonce(sts):
    http = urllib3.PoolManager()
    params = _params(RoleSessionName="with space")  # encoded %20: a strict verifier accepts it, signed as such
    answer = http.request("GET", sts.url + "/?" + _signed_query(params, USER_SECRET))
    assert answer.status == 400 and json.loads(answer.data)["Code"] == "InvalidParameter.RoleSessionName"
    params = _params()
    query = _signed_query(params, USER_SECRET)
    assert http.request("GET", sts.url + "/?" + query).status == 200
    reused = http.request("GET", sts.url + "/?" + query)
    assert reused.status == 400 and json.loads(reused.data)["Code"] == "SignatureNonceUsed"
    bad = http.request("GET", sts.url + "/?" + _signed_query(_params(), "wrong"))
    body = json.loads(bad.data)
    assert bad.status == 400 and body["Code"] == "SignatureDoesNotMatch"
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert "server string to sign is:GET&%2F&AccessKeyId%3D" in body["Message"]
    form = http.request("POST", sts.url + "/", body=_signed_query(_params(), USER_SECRET, "POST"),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 200 and json.loads(form.data)["Credentials"]["SecurityToken"].startswith("CAIS")
    stale = http.request("GET", sts.url + "/?" + _signed_query(_params(Timestamp="2020-01-01T00:00:00Z"),
                                                                USER_SECRET))
    assert json.loads(stale.data)["Code"] == "InvalidTimeStamp.Expired"


def test_sts_lifetime_knob_and_temporary_base_keys(sts, imds):
    sts.lifetime = 60
    http = urllib3.PoolManager()
    answer = json.loads(http.request("GET", sts.url + "/?" + _signed_query(_params(), USER_SECRET)).data)
    expires = time.mktime(time.strptime(answer["Credentials"]["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 55 <= expires - time.time() <= 61
    # A temporary base key (the instance role) must send its token, and it is checked.
    role = imds.issuer.issue(imds.role_arn, 600)
    without = http.request("GET", sts.url + "/?" + _signed_query(_params(AccessKeyId=role.access_key_id),
                                                                  role.access_key_secret))
    assert json.loads(without.data)["Code"] == "MissingSecurityToken"
    with_token = http.request("GET", sts.url + "/?" + _signed_query(
        _params(AccessKeyId=role.access_key_id, SecurityToken=role.security_token), role.access_key_secret))
    assert with_token.status == 200, with_token.data


# ------------------------------------------------------------------------------------------ command lines


def _start_cli(module: str, *args: str):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=root, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline().strip()  # type: ignore[union-attr]
    return process, line.rsplit(" ", 1)[-1]


def test_the_twins_command_lines_serve_until_sigterm():
    sts_process, sts_url = _start_cli("tests.emulators.sts", "--access-key-id", USER_KEY, "--access-key-secret",
                                      USER_SECRET, "--role", "%s,trusted=%s,external_id=%s" % (
                                          ROLE_ARN, USER_KEY, EXTERNAL_ID), "--lifetime", "60")
    imds_process, imds_url = _start_cli("tests.emulators.imds", "--role-name", "cli-role")
    try:
        assert sts_url.startswith("http://127.0.0.1:") and imds_url.startswith("http://127.0.0.1:")
        http = urllib3.PoolManager()
        answer = json.loads(http.request("GET", sts_url + "/?" + _signed_query(_params(), USER_SECRET)).data)
        assert answer["Credentials"]["AccessKeyId"].startswith("STS.")
        token = http.request("PUT", imds_url + "/latest/api/token",
                             headers={"X-aliyun-ecs-metadata-token-ttl-seconds": "60"}).data.decode()
        assert http.request("GET", imds_url + "/latest/meta-data/ram/security-credentials/",
                            headers={"X-aliyun-ecs-metadata-token": token}).data == b"cli-role"
    finally:
        for process in (sts_process, imds_process):
            process.terminate()
            assert process.wait(10) == 0
