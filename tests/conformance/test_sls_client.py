"""The unmodified official SDK's LogClient against the SLS emulator: data path, cursors, auth, errors."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
import zlib

import lz4.block
import pytest
import requests
from aliyun.log import LogClient, LogException, LogItem, PutLogsRequest
from aliyun.log.auth import make_auth
from aliyun.log.credentials import StaticCredentialsProvider

from tests.emulators.sls import SlsEmulator, decode_cursor, encode_cursor
from tests.emulators.sls.datagen import DataSpec, generate_log_groups, load_with_sdk, mixed_spec
from tests.emulators.sls.protobuf import decode_log_group, decode_log_group_list
from tests.emulators.sls.server import project_from_host
from tests.emulators.sls.testing import (  # noqa: F401 - pytest fixtures
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, PROJECT, make_client, sdk_env, sls_emulator)

LOGSTORE = "ls"


def _flat_ids(response: object) -> list:
    return [log["event_id"] for log in response.get_flatten_logs_json(decode_bytes=True)]  # type: ignore[attr-defined]


def _signed_raw_request(emulator: SlsEmulator, method: str, resource: str, params: dict, body: bytes,
                        headers: dict, secret: str = ACCESS_KEY_SECRET) -> requests.Response:
    """Send a request signed by the SDK's own v1 signer (for bodies the SDK cannot produce, e.g. deflate)."""
    headers = dict(headers)
    headers["x-log-apiversion"] = "0.6.0"
    headers["Content-Length"] = str(len(body))
    if not body:
        headers["x-log-bodyrawsize"] = "0"
    auth = make_auth(StaticCredentialsProvider(ACCESS_KEY_ID, secret, None), "v1", "")
    auth.sign_request(method, resource, dict(params), headers, body)
    headers["Host"] = "%s.127.0.0.1" % PROJECT
    with requests.Session() as session:
        session.trust_env = False  # talk to the emulator directly, as the add-on does
        return session.request(method, emulator.url + resource, params=params, data=body, headers=headers,
                               timeout=10)


@pytest.fixture
def client(sdk_env: SlsEmulator) -> LogClient:
    sdk_env.create_logstore(PROJECT, LOGSTORE, shard_count=2)
    return make_client(sdk_env)


@pytest.mark.parametrize("compress_type", ["lz4", "deflate", "none"])
def test_put_and_pull_round_trip_keeps_every_field(client: LogClient, sdk_env: SlsEmulator, compress_type: str) -> None:
    spec = mixed_spec(seed=3, event_count=60, logs_per_group=6, large_every=25, large_size=64 * 1024)
    # SDK put_logs: lz4 bodies by default, uncompressed with compress=False (it cannot send deflate).
    expected = load_with_sdk(client, PROJECT, LOGSTORE, spec, compress=compress_type != "none")
    kwargs = {"compress": False} if compress_type == "none" else {"accept_compress_type": compress_type}
    received = []
    for shard_id in (0, 1):
        cursor = client.get_begin_cursor(PROJECT, LOGSTORE, shard_id).get_cursor()
        response = client.pull_logs(PROJECT, LOGSTORE, shard_id, cursor, 1000, **kwargs)
        assert response.get_loggroup_count() == sdk_env.log_group_count(PROJECT, LOGSTORE, shard_id)
        assert response.get_next_cursor() == sdk_env.end_cursor(PROJECT, LOGSTORE, shard_id)
        received.extend(_flat_ids(response))
    assert sorted(received) == sorted(expected)
    wire = [r for r in sdk_env.request_log if r.api == "pull_logs"]
    assert len(wire) == 2 and all(r.status == 200 for r in wire)
    # The stored bytes are what the generator encoded, apart from the SDK's own Source/Time_ns handling.
    stored = [decode_log_group(g) for s in (0, 1) for g in sdk_env.log_groups(PROJECT, LOGSTORE, s)]
    generated = [decode_log_group(g) for g in generate_log_groups(spec)]
    stored_contents = sorted(c for g in stored for log in g.logs for c in log.contents)
    assert stored_contents == sorted(c for g in generated for log in g.logs for c in log.contents)
    assert any(b"\xff\xfe" in value for _, value in stored_contents)


def test_pull_response_headers_and_body_match_the_protocol(client: LogClient, sdk_env: SlsEmulator) -> None:
    groups = list(generate_log_groups(DataSpec(event_count=30, logs_per_group=3)))
    sdk_env.put_log_groups(PROJECT, LOGSTORE, 0, groups)
    begin = sdk_env.begin_cursor(PROJECT, LOGSTORE, 0)
    for encoding in ("lz4", "deflate", ""):
        response = _signed_raw_request(sdk_env, "GET", "/logstores/%s/shards/0" % LOGSTORE,
                                       {"type": "log", "cursor": begin, "count": "4"}, b"",
                                       {"Accept-Encoding": encoding, "Accept": "application/x-protobuf"})
        assert response.status_code == 200
        raw_names = [name for name, _ in response.raw._original_response.getheaders()]
        assert "Content-Encoding" not in response.headers
        assert {"x-log-cursor", "x-log-count", "x-log-bodyrawsize", "x-log-requestid", "Content-Length"} <= set(raw_names)
        assert response.headers["x-log-count"] == "4"
        assert decode_cursor(response.headers["x-log-cursor"]) == decode_cursor(begin) + 4
        assert response.headers.get("x-log-compresstype", "") == encoding
        raw_size = int(response.headers["x-log-bodyrawsize"])
        if encoding == "lz4":
            raw = lz4.block.decompress(response.content, uncompressed_size=raw_size)
        elif encoding == "deflate":
            raw = zlib.decompress(response.content)
        else:
            raw = response.content
        assert len(raw) == raw_size
        assert decode_log_group_list(raw) == groups[:4]


def test_deflate_and_uncompressed_put_bodies_are_accepted(client: LogClient, sdk_env: SlsEmulator) -> None:
    group = next(generate_log_groups(DataSpec(event_count=5, logs_per_group=5, seed=9)))
    for compress_type, body in (("deflate", zlib.compress(group)), ("", group)):
        headers = {"Content-Type": "application/x-protobuf", "x-log-bodyrawsize": str(len(group))}
        if compress_type:
            headers["x-log-compresstype"] = compress_type
        response = _signed_raw_request(sdk_env, "POST", "/logstores/%s/shards/route" % LOGSTORE,
                                       {"key": "0" * 32}, body, headers)
        assert response.status_code == 200, response.text
    assert sdk_env.log_groups(PROJECT, LOGSTORE, 0) == [group, group]
    bad = _signed_raw_request(sdk_env, "POST", "/logstores/%s/shards/lb" % LOGSTORE, {}, group,
                              {"Content-Type": "application/x-protobuf", "x-log-bodyrawsize": "7"})
    assert bad.status_code == 400 and bad.json()["errorCode"] == "InvalidBodyRawSize"


def test_cursors_by_begin_end_and_time(client: LogClient, sdk_env: SlsEmulator) -> None:
    groups = list(generate_log_groups(DataSpec(event_count=30, logs_per_group=5)))
    sdk_env.put_log_groups(PROJECT, LOGSTORE, 1, groups[:2], receive_time=1_700_000_000)
    sdk_env.put_log_groups(PROJECT, LOGSTORE, 1, groups[2:4], receive_time=1_700_000_100)
    sdk_env.put_log_groups(PROJECT, LOGSTORE, 1, groups[4:], receive_time=1_700_000_200)
    begin = client.get_cursor(PROJECT, LOGSTORE, 1, "begin").get_cursor()
    end = client.get_cursor(PROJECT, LOGSTORE, 1, "end").get_cursor()
    assert decode_cursor(end) - decode_cursor(begin) == 6
    assert base64.b64decode(begin).decode().isdigit()
    middle = client.get_cursor(PROJECT, LOGSTORE, 1, 1_700_000_050).get_cursor()
    assert decode_cursor(middle) == decode_cursor(begin) + 2
    assert client.get_cursor(PROJECT, LOGSTORE, 1, 1_700_000_100).get_cursor() == middle
    assert client.get_cursor(PROJECT, LOGSTORE, 1, 1_800_000_000).get_cursor() == end
    assert client.get_cursor_time(PROJECT, LOGSTORE, 1, middle).get_cursor_time() == 1_700_000_100
    # The SDK's cursor arithmetic: N-1 is the previous log group.
    assert client.get_previous_cursor_time(PROJECT, LOGSTORE, 1, middle).get_cursor_time() == 1_700_000_000
    pulled = client.pull_logs(PROJECT, LOGSTORE, 1, middle, 1000, end_cursor=encode_cursor(decode_cursor(middle) + 2))
    assert pulled.get_loggroup_count() == 2
    at_end = client.pull_logs(PROJECT, LOGSTORE, 1, end, 1000)
    assert at_end.get_loggroup_count() == 0 and at_end.get_next_cursor() == end
    ids = [i for r in client.pull_log(PROJECT, LOGSTORE, 1, 1_700_000_000, 1_700_000_150) for i in _flat_ids(r)]
    assert ids == [DataSpec(event_count=30, logs_per_group=5).event_id(i) for i in range(20)]
    # The SDK parses "from" itself; a raw request shows the server's own answer to a bad one.
    bad = _signed_raw_request(sdk_env, "GET", "/logstores/%s/shards/1" % LOGSTORE,
                              {"type": "cursor", "from": "yesterday"}, b"", {"Content-Type": "application/json"})
    assert (bad.status_code, bad.json()["errorCode"]) == (400, "ParameterInvalid")


def test_expired_and_malformed_cursors_are_invalid_cursor(client: LogClient, sdk_env: SlsEmulator) -> None:
    sdk_env.put_log_groups(PROJECT, LOGSTORE, 0, list(generate_log_groups(DataSpec(event_count=10, logs_per_group=1))))
    old_begin = sdk_env.begin_cursor(PROJECT, LOGSTORE, 0)
    sdk_env.expire(PROJECT, LOGSTORE, 0, 4)
    assert decode_cursor(sdk_env.begin_cursor(PROJECT, LOGSTORE, 0)) == decode_cursor(old_begin) + 4
    for cursor in (old_begin, "not-a-cursor", encode_cursor(decode_cursor(old_begin) + 11)):
        with pytest.raises(LogException) as raised:
            client.pull_logs(PROJECT, LOGSTORE, 0, cursor, 10)
        assert raised.value.get_error_code() == "InvalidCursor" and raised.value.resp_status == 400
    assert client.pull_logs(PROJECT, LOGSTORE, 0, sdk_env.begin_cursor(PROJECT, LOGSTORE, 0), 100).get_loggroup_count() == 6


@pytest.mark.parametrize("case", ["wrong_secret", "unknown_key", "no_secret"])
def test_wrong_credentials_are_rejected_like_the_real_service(sdk_env: SlsEmulator, case: str) -> None:
    sdk_env.create_logstore(PROJECT, LOGSTORE, shard_count=1)
    key_id, secret, code = {"wrong_secret": (ACCESS_KEY_ID, "nope", "SignatureNotMatch"),
                            "unknown_key": ("LTAI-unknown", "whatever", "Unauthorized"),
                            "no_secret": (ACCESS_KEY_ID, "", "Unauthorized")}[case]
    started = time.monotonic()
    with pytest.raises(LogException) as raised:
        make_client(sdk_env, key_id, secret).list_shards(PROJECT, LOGSTORE)
    assert raised.value.get_error_code() == code and raised.value.resp_status == 401
    assert raised.value.get_request_id()
    assert time.monotonic() - started < 5, "a 401 must not be retried by the SDK"
    from aliyun.log.consumer import ConsumerWorker, LogHubConfig
    from aliyun.log.consumer.exceptions import ClientWorkerException

    config = LogHubConfig("127.0.0.1:%d" % sdk_env.port, key_id, secret, PROJECT, LOGSTORE, "cg", "c1",
                          heartbeat_interval=1)
    with pytest.raises(ClientWorkerException, match=code):
        ConsumerWorker(object, config)  # the constructor creates the group, so it raises right there
    assert sdk_env.counters().get("heartbeat", 0) == 0


def test_v4_signature_and_sts_token(sdk_env: SlsEmulator) -> None:
    sdk_env.create_logstore(PROJECT, LOGSTORE, shard_count=3)
    v4 = make_client(sdk_env, auth_version="v4", region="cn-hangzhou")
    assert [s["shardID"] for s in v4.list_shards(PROJECT, LOGSTORE).get_shards_info()] == [0, 1, 2]
    with pytest.raises(LogException) as raised:
        make_client(sdk_env, secret="bad", auth_version="v4", region="cn-hangzhou").list_shards(PROJECT, LOGSTORE)
    assert raised.value.get_error_code() == "SignatureNotMatch"
    sdk_env.authenticator.access_keys["sts-id"] = "sts-secret"
    sdk_env.authenticator.sts_tokens["sts-id"] = "token-1"
    good = make_client(sdk_env, "sts-id", "sts-secret", securityToken="token-1")
    assert good.get_logstore(PROJECT, LOGSTORE).get_shard_count() == 3
    with pytest.raises(LogException) as raised:
        make_client(sdk_env, "sts-id", "sts-secret", securityToken="stale").get_logstore(PROJECT, LOGSTORE)
    assert raised.value.resp_status == 401 and "SecurityToken" in raised.value.get_error_code()


def test_unknown_resources_give_the_real_error_codes(client: LogClient, sdk_env: SlsEmulator) -> None:
    cases = [
        (lambda: make_client(sdk_env).get_logstore("nosuchproject", LOGSTORE), 404, "ProjectNotExist"),
        (lambda: client.get_logstore(PROJECT, "missing"), 404, "LogStoreNotExist"),
        (lambda: client.get_cursor(PROJECT, LOGSTORE, 99, "begin"), 400, "ShardNotExist"),
        (lambda: client.heart_beat(PROJECT, LOGSTORE, "nocg", "c1", []), 404, "ConsumerGroupNotExist"),
        (lambda: client.update_check_point(PROJECT, LOGSTORE, "nocg", 0, encode_cursor(1)), 404,
         "ConsumerGroupNotExist"),
        (lambda: client.create_logstore(PROJECT, LOGSTORE, shard_count=1), 400, "LogStoreAlreadyExist"),
        (lambda: client.create_project(PROJECT, "again"), 400, "ProjectAlreadyExist"),
    ]
    for call, status, code in cases:
        with pytest.raises(LogException) as raised:
            call()
        assert (raised.value.resp_status, raised.value.get_error_code()) == (status, code)
    client.create_consumer_group(PROJECT, LOGSTORE, "cg", 10)
    with pytest.raises(LogException) as raised:
        client.create_consumer_group(PROJECT, LOGSTORE, "cg", 10)
    assert raised.value.get_error_code() == "ConsumerGroupAlreadyExist"
    assert client.get_check_point(PROJECT, LOGSTORE, "cg", 7).get_consumer_group_check_points() == []
    with pytest.raises(LogException) as raised:
        client.update_check_point(PROJECT, LOGSTORE, "cg", 0, "%%%not-base64")
    assert raised.value.get_error_code() == "InvalidShardCheckPoint"


def test_consumer_group_crud_and_quota(client: LogClient, sdk_env: SlsEmulator) -> None:
    sdk_env.max_consumer_groups = 1
    client.create_consumer_group(PROJECT, LOGSTORE, "cg1", 10, in_order=True)
    with pytest.raises(LogException) as raised:
        client.create_consumer_group(PROJECT, LOGSTORE, "cg2", 10)
    assert (raised.value.resp_status, raised.value.get_error_code()) == (400, "ConsumerGroupQuotaExceed")
    client.update_consumer_group(PROJECT, LOGSTORE, "cg1", timeout=30, in_order=False)
    groups = client.list_consumer_group(PROJECT, LOGSTORE).get_consumer_groups()
    assert [(g.get_consumer_group_name(), g.get_timeout(), g.is_in_order()) for g in groups] == [("cg1", 30, False)]
    client.delete_consumer_group(PROJECT, LOGSTORE, "cg1")
    client.create_consumer_group(PROJECT, LOGSTORE, "cg2", 10)
    assert [g.get_consumer_group_name() for g in client.list_consumer_group(PROJECT, LOGSTORE).get_consumer_groups()] == ["cg2"]


def test_split_and_merge_through_the_api(client: LogClient, sdk_env: SlsEmulator) -> None:
    client.split_shard(PROJECT, LOGSTORE, 0, "40000000000000000000000000000000")
    shards = {s["shardID"]: s for s in client.list_shards(PROJECT, LOGSTORE).get_shards_info()}
    assert shards[0]["status"] == "readonly"
    assert (shards[2]["inclusiveBeginKey"], shards[2]["exclusiveEndKey"]) == ("0" * 32, "4" + "0" * 31)
    assert (shards[3]["inclusiveBeginKey"], shards[3]["exclusiveEndKey"]) == ("4" + "0" * 31, "8" + "0" * 31)
    client.merge_shard(PROJECT, LOGSTORE, 3)
    shards = {s["shardID"]: s for s in client.list_shards(PROJECT, LOGSTORE).get_shards_info()}
    assert shards[3]["status"] == shards[1]["status"] == "readonly"
    assert (shards[4]["inclusiveBeginKey"], shards[4]["exclusiveEndKey"], shards[4]["status"]) == (
        "4" + "0" * 31, "f" * 32, "readwrite")
    # Puts never land in readonly shards; a hash key routes to the shard covering it.
    request = PutLogsRequest(PROJECT, LOGSTORE, "t", "s", [LogItem(contents=[("event_id", "x")])],
                             hashKey="f" * 32)
    client.put_logs(request)
    client.put_logs(PutLogsRequest(PROJECT, LOGSTORE, "t", "s", [LogItem(contents=[("event_id", "y")])],
                                   hashKey="1" + "0" * 31))
    assert [sdk_env.log_group_count(PROJECT, LOGSTORE, s) for s in (0, 1, 2, 3, 4)] == [0, 0, 1, 0, 1]


def test_bare_ip_endpoint_on_port_80_is_served_in_origin_form() -> None:
    """Mode A of §0.1: endpoint "127.0.0.x" with no port; needs root to bind port 80."""
    host = "127.0.0.%d" % (100 + (int(time.time() * 1000) % 100))
    try:
        emulator = SlsEmulator(host=host, port=80, access_keys={ACCESS_KEY_ID: ACCESS_KEY_SECRET}).start()
    except OSError as error:
        pytest.skip("cannot bind %s:80 (%s)" % (host, error))
    try:
        emulator.create_project(PROJECT)
        emulator.create_logstore(PROJECT, LOGSTORE, shard_count=2)
        client = LogClient(host, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        client._session.trust_env = False  # ignore any proxy in the environment: connect straight to 127.0.0.x:80
        assert len(client.list_shards(PROJECT, LOGSTORE).get_shards_info()) == 2
        record = emulator.request_log[-1]
        assert (record.api, record.project, record.path) == ("list_shards", PROJECT, "/logstores/%s/shards" % LOGSTORE)
    finally:
        emulator.stop()


def test_add_on_style_direct_connection_with_project_in_host(sls_emulator: SlsEmulator) -> None:
    """The add-on connects to http://127.0.0.1:<port> and sends Host "<project>.127.0.0.1"."""
    sls_emulator.create_logstore(PROJECT, LOGSTORE, shard_count=1)
    response = _signed_raw_request(sls_emulator, "GET", "/logstores/%s/shards" % LOGSTORE, {}, b"", {})
    assert response.status_code == 200 and response.json()[0]["shardID"] == 0
    assert project_from_host("proj.127.0.0.1") == project_from_host("proj.127.0.0.1:8181") == "proj"
    assert project_from_host("127.0.0.1:8181") == "" and project_from_host("proj.cn-hangzhou.log.aliyuncs.com") == "proj"


def test_keep_alive_and_content_length_on_every_answer(sls_emulator: SlsEmulator) -> None:
    sls_emulator.create_logstore(PROJECT, LOGSTORE, shard_count=1)
    connection = http.client.HTTPConnection(sls_emulator.host, sls_emulator.port, timeout=5)
    try:
        for _ in range(3):  # one socket, several requests: the unsigned ones fail but keep the connection
            connection.request("GET", "/logstores/%s" % LOGSTORE, headers={"Host": "proj.127.0.0.1"})
            answer = connection.getresponse()
            body = answer.read()
            assert answer.status == 401 and answer.getheader("Content-Length") == str(len(body))
            assert json.loads(body)["errorCode"] == "Unauthorized"
        # absolute-form request target, as a proxy receives it
        connection.request("GET", "http://proj.sls.test:1234/logstores/%s" % LOGSTORE)
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 401
    finally:
        connection.close()
    assert [r.project for r in sls_emulator.request_log] == [PROJECT] * 4


def test_stop_closes_idle_keep_alive_connections(sls_emulator: SlsEmulator) -> None:
    sock = socket.create_connection((sls_emulator.host, sls_emulator.port), timeout=5)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: proj.127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        answer = b""
        while b"}" not in answer:  # the JSON error body ends the answer
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 401")
        sls_emulator.stop()
        sock.settimeout(5)
        assert sock.recv(65536) == b""  # the server closed the idle connection
        assert sls_emulator._server is None
    finally:
        sock.close()
