"""The SLS emulator accepts what the real service accepts from Alibaba's other official SDKs (issue 12): v1
signatures with ``x-log-signaturemethod: hmac-sha256`` (the Tea gateway of alibabacloud_sls20201230 and
@alicloud/sls20201230), chunked request bodies (Node.js sends a PUT or POST chunked), and exactly one well-formed
response per request on a keep-alive connection, bodiless PUT UpdateConsumerGroup included."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import socket
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from tests.emulators.sls.server import SlsEmulator

AK, SK = "fidelity-ak", "fidelity-secret"
PROJECT, LOGSTORE = "proj", "ls"


@pytest.fixture
def sls() -> Iterator[SlsEmulator]:
    with SlsEmulator(access_keys={AK: SK}) as emulator:
        emulator.create_project(PROJECT)
        emulator.create_logstore(PROJECT, LOGSTORE, shard_count=2)
        yield emulator


def test_the_sls20201230_client_signs_hmac_sha256_and_updates_a_group(sls, monkeypatch):
    from alibabacloud_sls20201230 import models
    from alibabacloud_sls20201230.client import Client
    from alibabacloud_tea_openapi.models import Config

    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # The client addresses <project>.<endpoint>; the emulator, as its HTTP proxy, serves that absolute form.
    client = Client(Config(access_key_id=AK, access_key_secret=SK, endpoint="127.0.0.1:%d" % sls.port,
                           protocol="http", http_proxy=sls.url))
    assert client.get_project(PROJECT, models.GetProjectRequest()).body.project_name == PROJECT
    assert len(client.list_shards(PROJECT, LOGSTORE).body) == 2
    client.create_consumer_group(PROJECT, LOGSTORE, models.CreateConsumerGroupRequest(
        consumer_group="g", timeout=20, order=True))
    client.update_consumer_group(PROJECT, LOGSTORE, "g", models.UpdateConsumerGroupRequest(timeout=40, order=False))
    assert sls.consumer_groups(PROJECT, LOGSTORE) == [{"name": "g", "timeout": 40, "order": False}]
    bad = Client(Config(access_key_id=AK, access_key_secret="wrong", endpoint="127.0.0.1:%d" % sls.port,
                        protocol="http", http_proxy=sls.url))
    with pytest.raises(Exception, match="SignatureNotMatch"):
        bad.get_project(PROJECT, models.GetProjectRequest())


# ------------------------------------------------------------------------------------------ raw wire


def signed_request(method: str, path: str, body: Optional[bytes], *, digest: str = "hmac-sha256",
                   chunked: bool = False, params: str = "", secret: str = SK) -> bytes:
    """One request as the Tea gateway frames it (optionally chunked, as Node.js does)."""
    headers: Dict[str, str] = {"host": "%s.127.0.0.1" % PROJECT, "date": email.utils.formatdate(usegmt=True),
                               "x-log-apiversion": "0.6.0", "x-log-bodyrawsize": str(len(body or b"")),
                               "x-log-signaturemethod": digest}
    if body:
        headers["content-type"] = "application/json"
        headers["content-md5"] = hashlib.md5(body).hexdigest().upper()
    canonical = "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers) if k.startswith(("x-log-", "x-acs-")))
    resource = path + ("?" + "&".join(sorted(params.split("&"))) if params else "")
    to_sign = "%s\n%s\n%s\n%s\n%s%s" % (method, headers.get("content-md5", ""), headers.get("content-type", ""),
                                        headers["date"], canonical, resource)
    algorithm = hashlib.sha256 if digest == "hmac-sha256" else hashlib.sha1
    signature = base64.b64encode(hmac.new(secret.encode(), to_sign.encode(), algorithm).digest()).decode()
    headers["authorization"] = "LOG %s:%s" % (AK, signature)
    if chunked:
        headers["transfer-encoding"] = "chunked"
        payload = b""
        if body:
            payload += b"%x\r\n%s\r\n" % (len(body) // 2, body[:len(body) // 2])
            payload += b"%x\r\n%s\r\n" % (len(body) - len(body) // 2, body[len(body) // 2:])
        payload += b"0\r\n\r\n"
    else:
        headers["content-length"] = str(len(body or b""))
        payload = body or b""
    target = path + ("?" + params if params else "")
    head = "%s %s HTTP/1.1\r\n%s\r\n" % (method, target, "".join("%s: %s\r\n" % kv for kv in headers.items()))
    return head.encode() + payload


def read_responses(sock: socket.socket, count: int, idle: float = 1.0) -> Tuple[List[Tuple[int, bytes]], bytes]:
    """Read ``count`` responses framed by Content-Length, then whatever else arrives within ``idle`` seconds."""
    buffer = b""
    responses: List[Tuple[int, bytes]] = []
    sock.settimeout(5)
    while len(responses) < count:
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)
            if not data:
                raise AssertionError("connection closed after %d responses" % len(responses))
            buffer += data
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        assert lines[0].startswith("HTTP/1.1 ") and "content-length" in headers, lines
        length = int(headers["content-length"])
        while len(buffer) < length:
            buffer += sock.recv(65536)
        responses.append((status, buffer[:length]))
        buffer = buffer[length:]
    sock.settimeout(idle)
    try:
        extra = buffer + sock.recv(65536)
    except socket.timeout:
        extra = buffer
    return responses, extra


def test_keep_alive_gets_one_response_per_request_chunked_and_bodiless(sls):
    group_path = "/logstores/%s/consumergroups" % LOGSTORE
    body = json.dumps({"consumerGroup": "g", "timeout": 20, "order": True}).encode()
    requests = [
        signed_request("POST", group_path, body, chunked=True),                        # CreateConsumerGroup
        signed_request("PUT", group_path + "/g", json.dumps({"timeout": 25}).encode(), chunked=True),
        signed_request("PUT", group_path + "/g", None, chunked=True),                  # bodiless, chunked (Node)
        signed_request("PUT", group_path + "/g", json.dumps({"timeout": 30}).encode()),
        signed_request("PUT", group_path + "/g", None),                                # bodiless, Content-Length 0
        signed_request("POST", group_path + "/g", b"[]", chunked=True,
                       params="type=heartbeat&consumer=c1"),                            # chunked heartbeat
        signed_request("GET", group_path, None, digest="hmac-sha1"),
    ]
    with socket.create_connection((sls.host, sls.port)) as sock:
        sock.sendall(b"".join(requests))  # pipelined on one connection
        responses, extra = read_responses(sock, len(requests))
    assert [status for status, _ in responses] == [200, 200, 400, 200, 400, 200, 200], responses
    assert extra == b"", "a request got more than one response: %r" % extra[:200]
    # A bodiless update is refused, in one well-formed JSON error, and the connection goes on.
    assert {json.loads(responses[i][1])["errorCode"] for i in (2, 4)} == {"JsonInfoInvalid"}
    assert json.loads(responses[5][1]) in ([0, 1], [0], [1])
    assert json.loads(responses[6][1]) == [{"name": "g", "timeout": 30, "order": True}]
    assert [r.api for r in sls.request_log] == ["create_consumer_group"] + ["update_consumer_group"] * 4 + [
        "heartbeat", "list_consumer_groups"]


def test_a_wrong_hmac_sha256_signature_and_an_unknown_method_are_refused(sls):
    with socket.create_connection((sls.host, sls.port)) as sock:
        sock.sendall(signed_request("GET", "/logstores/%s" % LOGSTORE, None, secret="wrong"))
        sock.sendall(signed_request("GET", "/logstores/%s" % LOGSTORE, None, digest="hmac-md5"))
        responses, extra = read_responses(sock, 2)
    assert [(status, json.loads(payload)["errorCode"]) for status, payload in responses] == [
        (401, "SignatureNotMatch"), (400, "InvalidSignatureMethod")]
    assert extra == b""
