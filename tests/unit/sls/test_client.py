"""sls/client.py against a local fake SLS server (127.0.0.1, port 0) that checks signatures with our own signing.

The fake also acts as a forward proxy (absolute-form request targets). test_client_sdk_parity.py compares the
requests with those of the official SDK.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from sls_forwarder.errors import ConfigError, InvalidCursorError, PermanentError, RetryableError
from sls_forwarder.sls.client import Checkpoint, Credentials, PullResult, Shard, SlsClient
from sls_forwarder.sls.endpoint import parse_endpoint
from sls_forwarder.sls.signing import content_md5, sign_v1, sign_v4

AKID = "test-ak"
SECRET = "test-secret-value"
PROJECT = "proj1"


@dataclass
class Recorded:
    method: str
    target: str  # the request target as received (absolute-form through a proxy)
    path: str
    params: Dict[str, str]
    headers: Dict[str, str]  # lowercased names
    body: bytes
    client_port: int


Reply = Tuple[int, Dict[str, str], bytes]


@dataclass
class FakeSls:
    """A threaded HTTP/1.1 server: verifies signatures, records requests, answers from ``replies`` or ``route``."""

    secrets: Dict[str, str] = field(default_factory=lambda: {AKID: SECRET})
    region: str = "cn-test"
    requests: List[Recorded] = field(default_factory=list)
    replies: List[Reply] = field(default_factory=list)  # consumed first, one per request
    route: Optional[Callable[[Recorded], Reply]] = None
    signature_errors: List[str] = field(default_factory=list)

    def reply_json(self, payload, status: int = 200, **headers: str) -> Reply:
        return status, dict(headers), json.dumps(payload).encode()

    def error(self, status: int, code: str, message: str = "error") -> Reply:
        return self.reply_json({"errorCode": code, "errorMessage": message}, status, **{"x-log-requestid": "RID123"})

    def check_signature(self, rec: Recorded) -> Optional[str]:
        auth = rec.headers.get("authorization", "")
        if auth.startswith("LOG "):
            akid = auth[4:].split(":", 1)[0]
            if akid not in self.secrets:
                return "Unauthorized"
            expected = sign_v1(akid, self.secrets[akid], rec.method, rec.path, rec.params, rec.headers)
        elif auth.startswith("SLS4-HMAC-SHA256 "):
            akid = auth.split("Credential=", 1)[1].split("/", 1)[0]
            if akid not in self.secrets:
                return "Unauthorized"
            expected = sign_v4(akid, self.secrets[akid], self.region, rec.method, rec.path, rec.params, rec.headers)
        else:
            return "Unauthorized"
        if rec.body and rec.headers.get("content-md5", content_md5(rec.body)) != content_md5(rec.body):
            return "InvalidContentMD5"
        return None if expected == auth else "SignatureNotMatch"

    def handle(self, rec: Recorded) -> Reply:
        self.requests.append(rec)
        problem = self.check_signature(rec)
        if problem:
            self.signature_errors.append(problem)
            sig = rec.headers.get("authorization", "").rsplit(":", 1)[-1]
            return self.error(401, problem, "signature %s not match" % sig)
        if self.replies:
            return self.replies.pop(0)
        if self.route is not None:
            return self.route(rec)
        return 200, {}, b""


def _make_handler(fake: FakeSls):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            rec = Recorded(self.command, self.path, unquote(parts.path),
                           dict(parse_qsl(parts.query, keep_blank_values=True)),
                           {k.lower(): v for k, v in self.headers.items()}, body, self.client_address[1])
            status, headers, payload = fake.handle(rec)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


@pytest.fixture
def fake():
    fake = FakeSls()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.port = server.server_address[1]
    fake.server = server
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(5)


def make_client(fake, endpoint=None, **kwargs) -> SlsClient:
    kwargs.setdefault("backoff_initial", 0.01)
    kwargs.setdefault("backoff_cap", 0.05)
    credentials = kwargs.pop("credentials", Credentials(AKID, SECRET))
    endpoint = endpoint or "http://127.0.0.1:%d" % fake.port
    return SlsClient(parse_endpoint(endpoint), credentials, PROJECT, **kwargs)


def cursor(n: int) -> str:
    return base64.b64encode(str(1500000000000000000 + n).encode()).decode()


# --------------------------------------------------------------------------------------- addressing, headers


def test_direct_mode_host_header_and_common_headers(fake):
    fake.replies.append(fake.reply_json({"projectName": PROJECT}))
    client = make_client(fake, user_agent="TA-aliyun-sls/1.0")
    assert client.get_project() == {"projectName": PROJECT}
    (rec,) = fake.requests
    assert fake.signature_errors == []
    assert (rec.method, rec.target) == ("GET", "/")
    assert rec.headers["host"] == "proj1.127.0.0.1"  # no port, as the SDK sends it
    assert rec.headers["x-log-apiversion"] == "0.6.0"
    assert rec.headers["x-log-signaturemethod"] == "hmac-sha1"
    assert rec.headers["x-log-bodyrawsize"] == "0"
    assert rec.headers["content-length"] == "0"
    assert rec.headers["x-log-date"] == rec.headers["date"]
    assert rec.headers["date"].endswith(" GMT")
    assert rec.headers["user-agent"] == "TA-aliyun-sls/1.0"
    assert rec.headers["authorization"].startswith("LOG test-ak:")
    assert "content-md5" not in rec.headers and "content-type" not in rec.headers
    client.close()


def test_bodies_carry_uppercase_content_md5_and_json(fake):
    fake.replies.append(fake.reply_json([0, 1]))
    client = make_client(fake)
    assert client.heartbeat("ls1", "cg1", "c1", [0, 1]) == [0, 1]
    rec = fake.requests[0]
    assert rec.body == b"[0, 1]"
    assert rec.headers["content-md5"] == content_md5(b"[0, 1]") == content_md5(b"[0, 1]").upper()
    assert rec.headers["content-type"] == "application/json"
    assert rec.params == {"type": "heartbeat", "consumer": "c1"}
    assert rec.path == "/logstores/ls1/consumergroups/cg1"
    assert "x-log-bodyrawsize" not in rec.headers
    assert fake.signature_errors == []


def test_sts_token_is_sent_and_signed(fake):
    fake.replies.append(fake.reply_json([]))
    client = make_client(fake, credentials=Credentials(AKID, SECRET, "sts-token-xyz"))
    assert client.list_consumer_groups("ls1") == []
    assert fake.requests[0].headers["x-acs-security-token"] == "sts-token-xyz"
    assert fake.signature_errors == []
    assert "sts-token-xyz" not in repr(Credentials(AKID, SECRET, "sts-token-xyz"))
    assert SECRET not in repr(Credentials(AKID, SECRET))


def test_v4_signing_round_trip(fake):
    fake.replies.append(fake.reply_json({"cursor": cursor(0)}))
    client = make_client(fake, auth_version="v4", region="cn-test")
    assert client.get_cursor("ls1", 0, "begin") == cursor(0)
    rec = fake.requests[0]
    assert rec.headers["authorization"].startswith("SLS4-HMAC-SHA256 Credential=test-ak/")
    assert "date" not in rec.headers and "x-log-signaturemethod" not in rec.headers
    assert len(rec.headers["x-log-date"]) == 16 and rec.headers["x-log-date"].endswith("Z")
    assert fake.signature_errors == []


def test_wrong_secret_is_a_config_error_without_secret_or_signature(fake):
    client = make_client(fake, credentials=Credentials(AKID, "wrong-secret-value"))
    with pytest.raises(ConfigError) as info:
        client.list_shards("ls1")
    err = info.value
    signature = fake.requests[0].headers["authorization"].rsplit(":", 1)[-1]
    assert (err.code, err.status, err.request_id) == ("SignatureNotMatch", 401, "RID123")
    assert "AccessKey secret" in str(err)
    assert signature not in str(err) and "wrong-secret-value" not in str(err)
    assert len(fake.requests) == 1  # never retried


# ------------------------------------------------------------------------------------------- API shapes


def test_api_paths_params_and_parsing(fake):
    shards = [{"shardID": 0, "status": "readwrite", "inclusiveBeginKey": "00", "exclusiveEndKey": "80",
               "createTime": 1524222931},
              {"shardID": 1, "status": "readonly", "inclusiveBeginKey": "80", "exclusiveEndKey": "ff",
               "createTime": 1524222932}]
    checkpoints = [{"shard": 0, "checkpoint": cursor(5), "updateTime": 1524224984800922, "consumer": "c1"},
                   {"shard": 1, "checkpoint": "", "updateTime": 0, "consumer": ""}]
    fake.replies.extend([
        fake.reply_json(shards),
        fake.reply_json({"cursor_time": 1700000000}),
        fake.reply_json({"cursor": cursor(7)}),
        fake.reply_json([{"name": "cg1", "timeout": 20, "order": True}]),
        (200, {}, b""), (200, {}, b""),
        fake.reply_json(checkpoints),
        fake.reply_json(checkpoints[:1]),
        (200, {}, b""),
        fake.reply_json({"logstoreName": "ls1", "ttl": 30}),
    ])
    client = make_client(fake)
    assert client.list_shards("ls1") == [Shard(0, "readwrite", "00", "80", 1524222931),
                                         Shard(1, "readonly", "80", "ff", 1524222932)]
    assert client.get_cursor_time("ls1", 1, cursor(3)) == 1700000000
    assert client.get_cursor("ls1", 1, 1700000000) == cursor(7)
    assert client.list_consumer_groups("ls1") == [{"name": "cg1", "timeout": 20, "order": True}]
    client.create_consumer_group("ls1", "cg1", 20, True)
    client.update_consumer_group("ls1", "cg1", 20, True)
    assert client.get_checkpoints("ls1", "cg1") == {
        0: Checkpoint(0, cursor(5), "c1", 1524224984800922), 1: Checkpoint(1, "", "", 0)}
    assert client.get_checkpoints("ls1", "cg1", 0) == {0: Checkpoint(0, cursor(5), "c1", 1524224984800922)}
    client.update_checkpoint("ls1", "cg1", "c1", 0, cursor(9))
    assert client.get_logstore("ls1")["ttl"] == 30

    got = [(r.method, r.path, r.params, r.body) for r in fake.requests]
    assert got == [
        ("GET", "/logstores/ls1/shards", {}, b""),
        ("GET", "/logstores/ls1/shards/1", {"type": "cursor_time", "cursor": cursor(3)}, b""),
        ("GET", "/logstores/ls1/shards/1", {"type": "cursor", "from": "1700000000"}, b""),
        ("GET", "/logstores/ls1/consumergroups", {}, b""),
        ("POST", "/logstores/ls1/consumergroups", {}, b'{"consumerGroup": "cg1", "timeout": 20, "order": true}'),
        ("PUT", "/logstores/ls1/consumergroups/cg1", {}, b'{"order": true, "timeout": 20}'),
        ("GET", "/logstores/ls1/consumergroups/cg1", {}, b""),
        ("GET", "/logstores/ls1/consumergroups/cg1", {"shard": "0"}, b""),
        ("POST", "/logstores/ls1/consumergroups/cg1",
         {"type": "checkpoint", "consumer": "c1", "forceSuccess": "True"},
         b'{"shard": 0, "checkpoint": "%s"}' % cursor(9).encode()),
        ("GET", "/logstores/ls1", {}, b""),
    ]
    assert fake.requests[4].headers["x-log-bodyrawsize"] == "0"  # as the SDK signs create_consumer_group
    assert fake.requests[5].headers["x-log-bodyrawsize"] == str(len(fake.requests[5].body))
    assert fake.signature_errors == []
    # The cursor's "==" travels percent-encoded in the URL and is signed decoded.
    assert "%3D%3D" in fake.requests[1].target


def test_get_cursor_rejects_other_start_values(fake):
    with pytest.raises(PermanentError):
        make_client(fake).get_cursor("ls1", 0, "yesterday")
    assert fake.requests == []


# ------------------------------------------------------------------------------------------- pull + compression

GROUPS = b"\x0a\x05\x1a\x03abc" * 50


def pull_reply(body: bytes, compress: str = "", raw_size: Optional[int] = None, count: int = 50) -> Reply:
    headers = {"x-log-cursor": cursor(count), "x-log-count": str(count),
               "x-log-bodyrawsize": str(len(GROUPS) if raw_size is None else raw_size),
               "Content-Type": "application/x-protobuf"}
    if compress:
        headers["x-log-compresstype"] = compress
    return 200, headers, body


@pytest.mark.parametrize("accept", ["deflate", ""])
def test_pull_sends_accept_encoding_and_params(fake, accept):
    fake.replies.append(pull_reply(GROUPS))
    result = make_client(fake, accept_encoding=accept).pull_logs("ls1", 3, cursor(0), 100, end_cursor=cursor(9),
                                                                 query="* | where a = 'x'")
    rec = fake.requests[0]
    assert rec.headers["accept-encoding"] == accept
    assert rec.headers["accept"] == "application/x-protobuf"
    assert rec.params == {"type": "log", "cursor": cursor(0), "count": "100", "end_cursor": cursor(9),
                          "pullMode": "scan_on_stream", "query": "* | where a = 'x'"}
    assert result == PullResult(GROUPS, cursor(50), 50, len(GROUPS))
    assert fake.signature_errors == []


def test_pull_decompresses_deflate(fake):
    fake.replies.append(pull_reply(zlib.compress(GROUPS), "deflate"))
    assert make_client(fake).pull_logs("ls1", 0, cursor(0)).data == GROUPS


def test_pull_with_no_data_keeps_the_cursor(fake):
    fake.replies.append((200, {"x-log-cursor": cursor(0), "x-log-count": "0", "x-log-bodyrawsize": "0"}, b""))
    assert make_client(fake).pull_logs("ls1", 0, cursor(0)) == PullResult(b"", cursor(0), 0, 0)


def test_pull_lz4_body_is_a_clear_permanent_error(fake):
    fake.replies.append(pull_reply(b"\x00garbage", "lz4"))
    with pytest.raises(PermanentError) as info:
        make_client(fake).pull_logs("ls1", 0, cursor(0))
    assert info.value.code == "UnsupportedCompressType"
    assert "lz4" in str(info.value)


def test_pull_corrupt_deflate_and_missing_cursor_are_retried(fake):
    good = pull_reply(GROUPS)
    fake.replies.extend([pull_reply(b"not zlib", "deflate"),
                         (200, {"x-log-count": "1", "x-log-bodyrawsize": "0"}, b""),
                         good])
    assert make_client(fake).pull_logs("ls1", 0, cursor(0)).data == GROUPS
    assert len(fake.requests) == 3


# ------------------------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    "status, code, expected",
    [
        (401, "SignatureNotMatch", ConfigError),
        (401, "Unauthorized", ConfigError),
        (401, "InvalidAccessKeyId", ConfigError),
        (404, "InvalidAccessKeyId.NotFound", ConfigError),
        (401, "SecurityToken.Expired", ConfigError),
        (404, "ProjectNotExist", ConfigError),
        (404, "LogStoreNotExist", ConfigError),
        (400, "ConsumerGroupQuotaExceed", ConfigError),
        (400, "InvalidCursor", InvalidCursorError),
        (500, "InternalServerError", RetryableError),
        (502, "", RetryableError),
        (400, "RequestTimeout", RetryableError),
        (403, "ReadQuotaExceed", RetryableError),
        (403, "WriteQuotaExceed", RetryableError),
        (429, "", RetryableError),
        (400, "ConsumerGroupAlreadyExist", PermanentError),
        (404, "ConsumerGroupNotExist", PermanentError),
        (400, "ParameterInvalid", PermanentError),
        (404, "", PermanentError),
        (204, "", PermanentError),
    ],
)
def test_error_mapping(fake, status, code, expected):
    if code:
        fake.replies.append(fake.error(status, code, "details %s" % code))
    else:
        fake.replies.append((status, {"x-log-requestid": "RID123"}, b"<html>oops</html>" if status != 204 else b""))
    client = make_client(fake, max_attempts=1)
    with pytest.raises(expected) as info:
        client.get_cursor("ls1", 0, "end")
    err = info.value
    assert type(err) is expected
    expected_code = code or ("UnexpectedStatus" if status == 204 else "")
    assert (err.code, err.status, err.request_id) == (expected_code, status, "RID123")
    assert SECRET not in str(err)
    assert "get_cursor" in str(err) and PROJECT in str(err)


def test_connection_refused_is_retryable_with_status_zero(fake):
    port = fake.port
    fake.server.shutdown()
    fake.server.server_close()
    client = make_client(fake, endpoint="http://127.0.0.1:%d" % port, max_attempts=2, timeout=5)
    with pytest.raises(RetryableError) as info:
        client.get_project()
    assert (info.value.code, info.value.status) == ("ConnectionError", 0)


def test_name_resolution_failure_is_a_config_error(fake, monkeypatch):
    import socket

    import urllib3.util.connection as connection

    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(connection.socket, "getaddrinfo", no_dns)
    client = make_client(fake, endpoint="http://sls.invalid-host.test:%d" % fake.port)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        client.get_project()  # max_attempts=0, yet a ConfigError is never retried
    assert info.value.code == "NameResolutionFailed"
    assert "does not resolve" in str(info.value)
    assert time.monotonic() - started < 30


# ------------------------------------------------------------------------------------------------ retries


def test_retry_then_succeed_logs_one_warning_per_streak(fake, caplog):
    fake.replies.extend([fake.error(500, "InternalServerError"), fake.error(503, ""),
                         fake.error(403, "ReadQuotaExceed"), fake.reply_json({"cursor": cursor(1)})])
    caplog.set_level(logging.DEBUG, logger="sls_forwarder")
    assert make_client(fake).get_cursor("ls1", 0, "begin") == cursor(1)
    assert len(fake.requests) == 4
    retry_warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "action=sls_retry" in r.message]
    assert len(retry_warnings) == 1
    line = retry_warnings[0].message
    assert "api=get_cursor" in line and "code=InternalServerError" in line and "status=500" in line
    assert "request_id=RID123" in line and "attempt=1" in line
    assert retry_warnings[0].exc_info is None  # a line, not a traceback
    assert any("action=sls_recovered" in r.message for r in caplog.records)
    # Each attempt was signed anew and accepted.
    assert fake.signature_errors == []


def test_max_attempts_bounds_retries(fake):
    fake.route = lambda rec: fake.error(500, "InternalServerError")
    with pytest.raises(RetryableError):
        make_client(fake, max_attempts=3).get_project()
    assert len(fake.requests) == 3


def test_retry_forever_is_interrupted_by_stop(fake):
    fake.route = lambda rec: fake.error(503, "ServerBusy")
    stop = threading.Event()
    client = make_client(fake, stop=stop, backoff_initial=0.05, backoff_cap=0.2)
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(RetryableError) as info:
        client.heartbeat("ls1", "cg1", "c1", [])
    timer.join()
    assert info.value.code == "ServerBusy"
    assert len(fake.requests) >= 2
    assert time.monotonic() - started < 30


def test_long_backoff_sleep_wakes_on_stop(fake):
    fake.route = lambda rec: fake.error(500, "InternalServerError")
    stop = threading.Event()
    client = make_client(fake, stop=stop, backoff_initial=3600, backoff_cap=3600)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(RetryableError):
        client.get_project()
    assert time.monotonic() - started < 30
    assert len(fake.requests) == 1


def test_stopped_client_still_makes_one_attempt(fake):
    # Shutdown commits checkpoints after stop is set: one attempt must still go out.
    stop = threading.Event()
    stop.set()
    make_client(fake, stop=stop).update_checkpoint("ls1", "cg1", "c1", 0, cursor(3))
    assert len(fake.requests) == 1


# --------------------------------------------------------------------------------------- threads, proxy, TLS


def test_concurrent_use_reuses_keep_alive_connections(fake):
    fake.route = lambda rec: fake.reply_json({"cursor": cursor(1)})
    client = make_client(fake, pool_size=4)
    errors: List[BaseException] = []

    def worker():
        try:
            for _ in range(15):
                assert client.get_cursor("ls1", 0, "end") == cursor(1)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(fake.requests) == 60 and fake.signature_errors == []
    assert len({r.client_port for r in fake.requests}) <= 8  # connections were reused, not one per request


def test_proxy_mode_sends_absolute_form_with_virtual_host(fake):
    fake.replies.append(fake.reply_json({"projectName": PROJECT}))
    client = make_client(fake, endpoint="http://sls-emulator.test:18080",
                         proxy_url="http://user%%40corp:p%%3Ass@127.0.0.1:%d" % fake.port)
    assert client.get_project() == {"projectName": PROJECT}
    rec = fake.requests[0]
    assert rec.target == "http://proj1.sls-emulator.test:18080/"
    assert rec.headers["host"] == "proj1.sls-emulator.test"
    assert rec.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user@corp:p:ss").decode()
    assert fake.signature_errors == []


def test_proxy_url_must_be_http(fake):
    with pytest.raises(ConfigError):
        make_client(fake, proxy_url="socks5://127.0.0.1:1080")


def test_proxy_auth_rejection_is_a_config_error(fake):
    fake.replies.append((407, {"Proxy-Authenticate": "Basic"}, b""))
    client = make_client(fake, endpoint="http://sls-emulator.test:18080", proxy_url="http://127.0.0.1:%d" % fake.port)
    with pytest.raises(ConfigError) as info:
        client.get_project()
    assert info.value.status == 407


@pytest.mark.parametrize("kwargs", [{"auth_version": "v3"}, {"auth_version": "v4"}, {"accept_encoding": "lz4"},
                                    {"max_attempts": -1}, {"backoff_initial": 0}])
def test_invalid_arguments_are_config_errors(fake, kwargs):
    with pytest.raises(ConfigError):
        make_client(fake, **kwargs)


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_fake(fake, tls_cert):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_cert)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(fake))
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.tls_port = server.server_address[1]
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.skipif(not os.path.exists("/usr/bin/openssl"), reason="needs the openssl CLI")
def test_tls_verification(tls_fake, tls_cert):
    endpoint = "https://127.0.0.1:%d" % tls_fake.tls_port
    with pytest.raises(ConfigError) as info:
        make_client(tls_fake, endpoint=endpoint).get_project()
    assert info.value.code == "TLSVerifyFailed"
    assert "CA bundle" in str(info.value)

    tls_fake.route = lambda rec: tls_fake.reply_json({"projectName": PROJECT})
    assert make_client(tls_fake, endpoint=endpoint, ca_bundle=tls_cert[0]).get_project()["projectName"] == PROJECT
    assert make_client(tls_fake, endpoint=endpoint, verify_tls=False).get_project()["projectName"] == PROJECT
    assert tls_fake.requests[-1].headers["host"] == "proj1.127.0.0.1"
