"""The emulator's own server rules, driven through the official SDK's LogClient: assignment balance,
transfers, timeouts, checkpoint ownership, readonly/over shards, ordered consumption, fault injection."""

from __future__ import annotations

import http.client
import json
import time
from typing import Dict, List

import pytest
import requests
from aliyun.log import LogClient, LogException
from aliyun.log.auth import make_auth
from aliyun.log.credentials import StaticCredentialsProvider

from tests.emulators.sls import SlsEmulator
from tests.emulators.sls.datagen import DataSpec, generate_log_groups
from tests.emulators.sls.testing import (  # noqa: F401 - pytest fixtures
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, PROJECT, make_client, sdk_env, sls_emulator)

LOGSTORE = "ls"
GROUP = "cg"


@pytest.fixture
def client(sdk_env: SlsEmulator) -> LogClient:
    return make_client(sdk_env)


def _setup(emulator: SlsEmulator, client: LogClient, shards: int, timeout: int = 10, order: bool = False) -> None:
    emulator.create_logstore(PROJECT, LOGSTORE, shard_count=shards)
    client.create_consumer_group(PROJECT, LOGSTORE, GROUP, timeout, in_order=order)


class Consumer:
    """A heartbeat loop the way the SDK's ConsumerHeatBeat reports: previous report + last response."""

    def __init__(self, client: LogClient, name: str):
        self.client = client
        self.name = name
        self.reported: List[int] = []
        self.held: List[int] = []

    def beat(self, release: tuple = ()) -> List[int]:
        self.reported = sorted(set(self.reported) - set(release))
        self.held = sorted(self.client.heart_beat(PROJECT, LOGSTORE, GROUP, self.name, self.reported).get_shards())
        self.reported = sorted(set(self.reported) | set(self.held))
        return self.held

    def drop_revoked(self) -> List[int]:
        """Finish shards the server stopped returning (what the SDK does after shard shutdown)."""
        revoked = tuple(set(self.reported) - set(self.held))
        return self.beat(release=revoked)


def _owners_consistent(emulator: SlsEmulator, consumers: List[Consumer]) -> Dict[str, List[int]]:
    owners = emulator.owners(PROJECT, LOGSTORE, GROUP)
    held = {c.name: c.held for c in consumers}
    for consumer in consumers:
        for shard_id in consumer.held:
            assert owners[shard_id] == consumer.name
    all_held = [s for shards in held.values() for s in shards]
    assert len(all_held) == len(set(all_held)), "a shard was handed to two consumers"
    return held


def test_assignment_is_balanced_within_one(client: LogClient, sdk_env: SlsEmulator) -> None:
    _setup(sdk_env, client, shards=7)
    consumers = [Consumer(client, name) for name in ("c-a", "c-b", "c-c")]
    for _ in range(4):
        for consumer in consumers:
            consumer.drop_revoked()
            _owners_consistent(sdk_env, consumers)
    counts = sorted(len(c.held) for c in consumers)
    assert counts == [2, 2, 3] and sum(counts) == 7
    assert sdk_env.consumers(PROJECT, LOGSTORE, GROUP) == ["c-a", "c-b", "c-c"]


def test_shard_moves_only_after_the_old_owner_stops_reporting_it(client: LogClient, sdk_env: SlsEmulator) -> None:
    _setup(sdk_env, client, shards=4)
    first, second = Consumer(client, "first"), Consumer(client, "second")
    assert first.beat() == [0, 1, 2, 3]
    assert second.beat() == []  # nothing is free yet
    kept = first.beat()  # still reports all four; two are now being revoked
    assert len(kept) == 2
    revoked = set(range(4)) - set(kept)
    assert sdk_env.revoking(PROJECT, LOGSTORE, GROUP) == revoked
    for _ in range(2):  # the old owner still reports them: they must not move
        assert second.beat() == []
        assert first.beat() == kept
    first.drop_revoked()  # shard consumers finished and committed: omit them from the report
    assert set(second.beat()) == revoked
    _owners_consistent(sdk_env, [first, second])


def test_dead_consumer_times_out_and_its_shards_are_reassigned(client: LogClient, sdk_env: SlsEmulator) -> None:
    _setup(sdk_env, client, shards=3, timeout=5)
    dead, alive = Consumer(client, "dead"), Consumer(client, "alive")
    assert dead.beat() == [0, 1, 2]
    assert alive.beat() == []
    sdk_env.advance_clock(4)
    assert alive.beat() == []  # 4 s of silence is within the 5 s timeout
    assert "dead" in sdk_env.consumers(PROJECT, LOGSTORE, GROUP)
    sdk_env.advance_clock(2)
    assert alive.beat() == [0, 1, 2]
    assert sdk_env.consumers(PROJECT, LOGSTORE, GROUP) == ["alive"]
    assert dead.beat() == []  # it comes back as a new consumer, and the shards are taken
    assert len(alive.beat()) == 2  # rebalance: one shard is being revoked from "alive"
    assert len(alive.drop_revoked()) == 2
    assert len(dead.beat()) == 1
    _owners_consistent(sdk_env, [dead, alive])


def test_reports_of_unowned_shards_are_ignored(client: LogClient, sdk_env: SlsEmulator) -> None:
    _setup(sdk_env, client, shards=2)
    owner = Consumer(client, "owner")
    assert owner.beat() == [0, 1]
    liar = client.heart_beat(PROJECT, LOGSTORE, GROUP, "liar", [0, 1]).get_shards()
    assert liar == []
    assert sdk_env.owners(PROJECT, LOGSTORE, GROUP) == {0: "owner", 1: "owner"}


def test_checkpoints_record_owner_and_microsecond_time(client: LogClient, sdk_env: SlsEmulator) -> None:
    _setup(sdk_env, client, shards=2)
    holder = Consumer(client, "holder")
    holder.beat()
    fresh = client.get_check_point(PROJECT, LOGSTORE, GROUP, 1).get_consumer_group_check_points()
    assert fresh == [{"shard": 1, "checkpoint": "", "updateTime": 0, "consumer": ""}]
    sdk_env.put_log_groups(PROJECT, LOGSTORE, 1, list(generate_log_groups(DataSpec(event_count=3, logs_per_group=1))))
    end = sdk_env.end_cursor(PROJECT, LOGSTORE, 1)
    before_us = int(time.time() * 1_000_000)
    client.update_check_point(PROJECT, LOGSTORE, GROUP, 1, end, "holder")
    row = client.get_check_point(PROJECT, LOGSTORE, GROUP, 1).get_consumer_group_check_points()[0]
    assert (row["checkpoint"], row["consumer"]) == (end, "holder")
    assert before_us <= row["updateTime"] <= int(time.time() * 1_000_000)
    assert sdk_env.checkpoints(PROJECT, LOGSTORE, GROUP)[1] == {"checkpoint": end, "consumer": "holder",
                                                                 "updateTime": row["updateTime"]}
    # forceSuccess=false: only the holder of the shard may move its checkpoint.
    for consumer, status, code in (("stranger", 400, "ConsumerNotMatch"), ("holder", 200, "")):
        response = _raw_checkpoint(sdk_env, consumer, shard=1, cursor=sdk_env.begin_cursor(PROJECT, LOGSTORE, 1))
        assert response.status_code == status
        assert (response.json()["errorCode"] if status != 200 else "") == code
    # The SDK always forces: anyone may write, and the writer is recorded.
    client.update_check_point(PROJECT, LOGSTORE, GROUP, 1, end, "stranger")
    assert sdk_env.checkpoints(PROJECT, LOGSTORE, GROUP)[1]["consumer"] == "stranger"


def _raw_checkpoint(emulator: SlsEmulator, consumer: str, shard: object, cursor: str) -> requests.Response:
    body = json.dumps({"shard": shard, "checkpoint": cursor}).encode()
    resource = "/logstores/%s/consumergroups/%s" % (LOGSTORE, GROUP)
    params = {"type": "checkpoint", "consumer": consumer, "forceSuccess": "false"}
    headers = {"Content-Type": "application/json", "x-log-apiversion": "0.6.0", "Content-Length": str(len(body))}
    make_auth(StaticCredentialsProvider(ACCESS_KEY_ID, ACCESS_KEY_SECRET, None), "v1", "").sign_request(
        "POST", resource, dict(params), headers, body)
    headers["Host"] = "%s.127.0.0.1" % PROJECT
    with requests.Session() as session:
        session.trust_env = False
        return session.post(emulator.url + resource, params=params, data=body, headers=headers, timeout=10)


def test_readonly_shard_is_over_when_its_checkpoint_reaches_the_end(client: LogClient, sdk_env: SlsEmulator) -> None:
    _setup(sdk_env, client, shards=1, order=True)
    sdk_env.put_log_groups(PROJECT, LOGSTORE, 0, list(generate_log_groups(DataSpec(event_count=4, logs_per_group=2))))
    worker = Consumer(client, "w")
    assert worker.beat() == [0]
    client.split_shard(PROJECT, LOGSTORE, 0, "8" + "0" * 31)
    # order=true: the children wait while their readonly parent is not finished
    assert worker.beat() == [0]
    assert worker.beat() == [0]
    client.update_check_point(PROJECT, LOGSTORE, GROUP, 0, sdk_env.begin_cursor(PROJECT, LOGSTORE, 0), "w")
    assert worker.beat() == [0]  # a checkpoint short of the end does not finish it
    client.update_check_point(PROJECT, LOGSTORE, GROUP, 0, sdk_env.end_cursor(PROJECT, LOGSTORE, 0), "w")
    assert worker.drop_revoked() == [1, 2]  # parent over -> released for good; children now assignable
    assert sdk_env.owners(PROJECT, LOGSTORE, GROUP) == {0: "", 1: "w", 2: "w"}


def test_unordered_children_are_consumable_at_once(client: LogClient, sdk_env: SlsEmulator) -> None:
    _setup(sdk_env, client, shards=1, order=False)
    worker = Consumer(client, "w")
    assert worker.beat() == [0]
    sdk_env.split_shard(PROJECT, LOGSTORE, 0)
    assert worker.beat() == [0, 1, 2]


def test_strict_heartbeat_rejects_unknown_consumers_reporting_shards(client: LogClient, sdk_env: SlsEmulator) -> None:
    _setup(sdk_env, client, shards=1)
    sdk_env.state.strict_heartbeat = True
    with pytest.raises(LogException) as raised:
        client.heart_beat(PROJECT, LOGSTORE, GROUP, "ghost", [0])
    assert (raised.value.resp_status, raised.value.get_error_code()) == (400, "NotExistConsumerWithBody")
    assert client.heart_beat(PROJECT, LOGSTORE, GROUP, "ghost", []).get_shards() == [0]


def test_injected_errors_hit_the_named_api_then_stop(client: LogClient, sdk_env: SlsEmulator) -> None:
    sdk_env.create_logstore(PROJECT, LOGSTORE, shard_count=1)
    cursor = sdk_env.begin_cursor(PROJECT, LOGSTORE, 0)
    sdk_env.faults.next_errors("pull_logs", "ReadQuotaExceed", 2)
    sdk_env.faults.next_errors("pull_logs", "InvalidCursor", 1)
    for status, code in ((403, "ReadQuotaExceed"), (403, "ReadQuotaExceed"), (400, "InvalidCursor")):
        with pytest.raises(LogException) as raised:
            client.pull_logs(PROJECT, LOGSTORE, 0, cursor, 10)
        assert (raised.value.resp_status, raised.value.get_error_code()) == (status, code)
    assert client.pull_logs(PROJECT, LOGSTORE, 0, cursor, 10).get_loggroup_count() == 0
    assert client.get_cursor(PROJECT, LOGSTORE, 0, "end").get_cursor() == cursor  # other APIs untouched
    # A 500 is retried by the SDK (1 s sleep) and the second attempt succeeds.
    sdk_env.faults.next_errors("list_shards", "InternalServerError", 1)
    assert len(client.list_shards(PROJECT, LOGSTORE).get_shards_info()) == 1
    statuses = [r.status for r in sdk_env.request_log if r.api == "list_shards"]
    assert statuses == [500, 200]
    assert sdk_env.faults.injected == {"ReadQuotaExceed": 2, "InvalidCursor": 1, "InternalServerError": 1}


def test_rates_latency_and_dropped_connections(sls_emulator: SlsEmulator) -> None:
    sls_emulator.create_logstore(PROJECT, LOGSTORE, shard_count=1)
    faults = sls_emulator.faults
    faults.error_rate = 0.5
    faults.apis = frozenset({"list_shards"})
    statuses = [_raw_get(sls_emulator, "/logstores/%s/shards" % LOGSTORE)[0] for _ in range(40)]
    assert set(statuses) == {200, 500} and 5 < statuses.count(500) < 35
    assert _raw_get(sls_emulator, "/logstores/%s" % LOGSTORE)[0] == 200  # outside faults.apis
    faults.clear()
    faults.read_quota_rate = 1.0
    cursor = sls_emulator.begin_cursor(PROJECT, LOGSTORE, 0)
    status, body = _raw_get(sls_emulator, "/logstores/%s/shards/0" % LOGSTORE, {"type": "log", "cursor": cursor})
    assert status == 403 and b"ReadQuotaExceed" in body
    faults.clear()
    faults.latency = 0.3
    started = time.monotonic()
    assert _raw_get(sls_emulator, "/logstores/%s/shards" % LOGSTORE)[0] == 200
    assert time.monotonic() - started >= 0.3
    faults.clear()
    faults.drop_rate = 1.0
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _raw_get(sls_emulator, "/logstores/%s/shards" % LOGSTORE)
    faults.clear()
    faults.next_errors("list_shards", "drop", 1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _raw_get(sls_emulator, "/logstores/%s/shards" % LOGSTORE)
    assert _raw_get(sls_emulator, "/logstores/%s/shards" % LOGSTORE)[0] == 200
    assert [r.error_code for r in sls_emulator.request_log if r.error_code == "drop"] == ["drop", "drop"]


def _raw_get(emulator: SlsEmulator, resource: str, params: Dict[str, str] = None) -> tuple:
    params = dict(params or {})
    headers = {"x-log-apiversion": "0.6.0", "x-log-bodyrawsize": "0", "Content-Length": "0"}
    make_auth(StaticCredentialsProvider(ACCESS_KEY_ID, ACCESS_KEY_SECRET, None), "v1", "").sign_request(
        "GET", resource, dict(params), headers, b"")
    headers["Host"] = "%s.127.0.0.1" % PROJECT
    query = "&".join("%s=%s" % (k, requests.utils.quote(v, safe="")) for k, v in params.items())
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    try:
        connection.request("GET", resource + ("?" + query if query else ""), headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_split_after_pulls_splits_between_two_pulls(client: LogClient, sdk_env: SlsEmulator) -> None:
    sdk_env.create_logstore(PROJECT, LOGSTORE, shard_count=1)
    sdk_env.put_log_groups(PROJECT, LOGSTORE, 0, list(generate_log_groups(DataSpec(event_count=10, logs_per_group=1))))
    sdk_env.faults.split_after_pulls(PROJECT, LOGSTORE, 0, pulls=2)
    cursor = sdk_env.begin_cursor(PROJECT, LOGSTORE, 0)
    statuses = []
    for _ in range(3):
        response = client.pull_logs(PROJECT, LOGSTORE, 0, cursor, 3)
        cursor = response.get_next_cursor()
        statuses.append([s["status"] for s in client.list_shards(PROJECT, LOGSTORE).get_shards_info()])
    assert statuses == [["readwrite"], ["readonly", "readwrite", "readwrite"], ["readonly", "readwrite", "readwrite"]]
    # the readonly parent still serves its remaining data
    rest = client.pull_logs(PROJECT, LOGSTORE, 0, cursor, 100)
    assert rest.get_loggroup_count() == 1 and rest.get_next_cursor() == sdk_env.end_cursor(PROJECT, LOGSTORE, 0)
    assert sdk_env.faults.pending_splits() == 0


def test_malformed_request_fields_are_400_not_a_dropped_connection(sls_emulator: SlsEmulator) -> None:
    sls_emulator.create_logstore(PROJECT, LOGSTORE, shard_count=1)
    status, body = _raw_get(sls_emulator, "/logstores/%s/shards/0" % LOGSTORE,
                            {"type": "log", "cursor": sls_emulator.begin_cursor(PROJECT, LOGSTORE, 0), "count": "many"})
    assert status == 400 and b"ParameterInvalid" in body
    status, body = _raw_get(sls_emulator, "/logstores/%s/shards/lb" % LOGSTORE)
    assert status == 400 and b"ParameterInvalid" in body  # GET on a put path is no SLS API
    sls_emulator.state.create_consumer_group(PROJECT, LOGSTORE, GROUP, 10, False)
    response = _raw_checkpoint(sls_emulator, "c1", shard="zero", cursor=sls_emulator.begin_cursor(PROJECT, LOGSTORE, 0))
    assert (response.status_code, response.json()["errorCode"]) == (400, "ParameterInvalid")
