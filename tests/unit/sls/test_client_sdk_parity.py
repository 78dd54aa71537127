"""Our requests against the official SDK's: same method, path, query, body and headers, call by call.

Both clients talk to the fake SLS of test_client.py; the SDK reaches it as an HTTP proxy (absolute-form targets).
Transport headers that requests adds on its own (Accept-Encoding default, Accept */*, Connection) and the
per-request values (Date, signature, User-Agent) are left out of the comparison.
"""

from __future__ import annotations

import base64

import pytest

from aliyun.log import LogClient
from sls_forwarder.sls.client import Credentials, SlsClient
from sls_forwarder.sls.endpoint import parse_endpoint
from tests.unit.sls.test_client import AKID, PROJECT, SECRET, fake  # noqa: F401 - fixture

VARYING = {"date", "x-log-date", "authorization", "user-agent", "connection", "proxy-connection"}
CURSOR = base64.b64encode(b"1500000000000000042").decode()

CALLS = [
    ("get_project", lambda sdk: sdk.get_project(PROJECT), lambda c: c.get_project()),
    ("get_logstore", lambda sdk: sdk.get_logstore(PROJECT, "ls1"), lambda c: c.get_logstore("ls1")),
    ("list_shards", lambda sdk: sdk.list_shards(PROJECT, "ls1"), lambda c: c.list_shards("ls1")),
    ("get_cursor", lambda sdk: sdk.get_cursor(PROJECT, "ls1", 1, "begin"), lambda c: c.get_cursor("ls1", 1, "begin")),
    ("get_cursor_ts", lambda sdk: sdk.get_cursor(PROJECT, "ls1", 1, 1700000000),
     lambda c: c.get_cursor("ls1", 1, 1700000000)),
    ("get_cursor_time", lambda sdk: sdk.get_cursor_time(PROJECT, "ls1", 1, CURSOR),
     lambda c: c.get_cursor_time("ls1", 1, CURSOR)),
    ("pull_logs", lambda sdk: sdk.pull_logs(PROJECT, "ls1", 1, CURSOR, 100, compress=False),
     lambda c: c.pull_logs("ls1", 1, CURSOR, 100)),
    ("pull_logs_end", lambda sdk: sdk.pull_logs(PROJECT, "ls1", 1, CURSOR, 100, end_cursor=CURSOR, compress=False,
                                                query="* | where a = 'b'"),
     lambda c: c.pull_logs("ls1", 1, CURSOR, 100, end_cursor=CURSOR, query="* | where a = 'b'")),
    ("list_consumer_group", lambda sdk: sdk.list_consumer_group(PROJECT, "ls1"),
     lambda c: c.list_consumer_groups("ls1")),
    ("create_consumer_group", lambda sdk: sdk.create_consumer_group(PROJECT, "ls1", "cg1", 20, True),
     lambda c: c.create_consumer_group("ls1", "cg1", 20, True)),
    ("update_consumer_group", lambda sdk: sdk.update_consumer_group(PROJECT, "ls1", "cg1", 20, False),
     lambda c: c.update_consumer_group("ls1", "cg1", 20, False)),
    ("heart_beat", lambda sdk: sdk.heart_beat(PROJECT, "ls1", "cg1", "c1", [0, 3]),
     lambda c: c.heartbeat("ls1", "cg1", "c1", [0, 3])),
    ("get_check_point", lambda sdk: sdk.get_check_point(PROJECT, "ls1", "cg1"),
     lambda c: c.get_checkpoints("ls1", "cg1")),
    ("get_check_point_shard", lambda sdk: sdk.get_check_point(PROJECT, "ls1", "cg1", 2),
     lambda c: c.get_checkpoints("ls1", "cg1", 2)),
    ("update_check_point", lambda sdk: sdk.update_check_point(PROJECT, "ls1", "cg1", 2, CURSOR, "c1"),
     lambda c: c.update_checkpoint("ls1", "cg1", "c1", 2, CURSOR)),
]


def _comparable(rec):
    headers = {k: v for k, v in rec.headers.items() if k not in VARYING}
    if headers.get("accept") == "*/*":  # requests' default, not an SDK choice
        del headers["accept"]
    if headers.get("accept-encoding") in ("gzip, deflate", "identity"):  # requests' / http.client's default
        del headers["accept-encoding"]
    return rec.method, rec.path, rec.params, rec.body, headers


@pytest.mark.parametrize("name, sdk_call, our_call", CALLS, ids=[c[0] for c in CALLS])
def test_request_matches_sdk(fake, name, sdk_call, our_call):  # noqa: F811 - fixture
    fake.route = lambda rec: fake.error(400, "ParityCheck")  # neither client retries this; only the request matters
    sdk = LogClient("sls-parity.test:%d" % fake.port, AKID, SECRET, source="127.0.0.1")
    sdk._session.trust_env = False
    sdk._session.proxies = {"http": "http://127.0.0.1:%d" % fake.port}
    with pytest.raises(Exception):
        sdk_call(sdk)
    (sdk_request,) = fake.requests
    assert sdk_request.target.startswith("http://%s.sls-parity.test:%d/" % (PROJECT, fake.port))
    fake.requests.clear()

    ours = SlsClient(parse_endpoint("http://sls-parity.test:%d" % fake.port), Credentials(AKID, SECRET), PROJECT,
                     proxy_url="http://127.0.0.1:%d" % fake.port, accept_encoding="", max_attempts=1)
    with pytest.raises(Exception):
        our_call(ours)
    (our_request,) = fake.requests
    assert our_request.target.startswith("http://%s.sls-parity.test:%d/" % (PROJECT, fake.port))
    assert _comparable(our_request) == _comparable(sdk_request)
    assert fake.signature_errors == []
