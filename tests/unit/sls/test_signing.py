"""sls/signing.py against the official SDK's own signing code (aliyun.log.auth) as the oracle."""

import copy
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from aliyun.log.auth import AuthV1, AuthV4
from aliyun.log.credentials import StaticCredentialsProvider
from sls_forwarder.sls.signing import EMPTY_SHA256, content_md5, sign_v1, sign_v4

AKID = "test-ak"
SECRET = "s3cr3t/+=ключ"

param_values = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.sampled_from(["", "begin", "MTUwMDAwMDAwMDAwMDAwMA==", "a b&c=d", "True"]),
)
param_dicts = st.dictionaries(st.sampled_from(["type", "cursor", "count", "from", "consumer", "shard", "query"]),
                              param_values, max_size=5)
bodies = st.one_of(st.just(b""), st.binary(min_size=1, max_size=64))
content_types = st.sampled_from([None, "application/json", "application/x-protobuf"])
extra_headers = st.dictionaries(
    st.sampled_from(["x-log-bodyrawsize", "x-log-compresstype", "x-log-meta-foo", "x-acs-extra", "Accept"]),
    st.text(alphabet="abcdef0123456789 ", min_size=1, max_size=10),
    max_size=4,
)


def _sdk_headers(content_type, extra, body):
    headers = {"x-log-apiversion": "0.6.0", "Host": "proj.127.0.0.1", "Content-Length": str(len(body))}
    if content_type:
        headers["Content-Type"] = content_type
    headers.update(extra)
    return headers


@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "PUT"]), params=param_dicts, body=bodies,
       content_type=content_types, extra=extra_headers, token=st.sampled_from(["", "sts-token"]))
def test_v1_matches_sdk(method, params, body, content_type, extra, token):
    headers = _sdk_headers(content_type, extra, body)
    resource = "/logstores/ls1/shards/0"
    AuthV1(StaticCredentialsProvider(AKID, SECRET, token)).sign_request(
        method, resource, copy.copy(params), headers, body
    )
    expected = headers["Authorization"]
    # The SDK's header dict now holds everything it sent, including x-log-date (which must not be signed).
    assert "x-log-date" in headers
    assert sign_v1(AKID, SECRET, method, resource, params, headers) == expected


def test_v1_known_vector():
    # Computed once with aliyun.log.auth.AuthV1; pins the algorithm even without the SDK.
    headers = {
        "Date": "Mon, 30 Nov 2026 01:12:09 GMT",
        "Content-Type": "application/json",
        "Content-MD5": content_md5(b"[]"),
        "x-log-apiversion": "0.6.0",
        "x-log-signaturemethod": "hmac-sha1",
        "x-log-date": "ignored",
    }
    params = {"type": "heartbeat", "consumer": "c1"}
    assert headers["Content-MD5"] == "D751713988987E9331980363E24189CE"
    auth = sign_v1("test-ak", "test-secret", "POST", "/logstores/ls1/consumergroups/cg1", params, headers)
    assert auth == "LOG test-ak:D4NCqWucarG/wvrI5ZoitO/RbkM="


def test_v1_secret_changes_signature():
    headers = {"Date": "Mon, 30 Nov 2026 01:12:09 GMT", "x-log-apiversion": "0.6.0"}
    assert sign_v1(AKID, "a", "GET", "/", {}, headers) != sign_v1(AKID, "b", "GET", "/", {}, headers)


@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from(["GET", "POST"]), params=param_dicts, body=bodies, content_type=content_types,
       extra=extra_headers, token=st.sampled_from(["", "sts-token"]),
       region=st.sampled_from(["cn-hangzhou", "ap-southeast-1"]))
def test_v4_matches_sdk(method, params, body, content_type, extra, token, region):
    headers = _sdk_headers(content_type, extra, body)
    resource = "/logstores/ls1/consumergroups/cg1"
    request_time = "20261130T011209Z"
    expected = AuthV4(StaticCredentialsProvider(AKID, SECRET, token), region)._do_sign_request(
        method, resource, copy.copy(params), headers, body, request_time
    )
    # _do_sign_request added x-log-date, x-log-content-sha256 and the token header to `headers`.
    assert headers["x-log-content-sha256"] == (hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256)
    assert sign_v4(AKID, SECRET, region, method, resource, params, headers) == expected
