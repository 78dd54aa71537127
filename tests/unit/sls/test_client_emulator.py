"""SlsClient + decoder against the SLS emulator; data is loaded with the official SDK (lz4 puts)."""

from __future__ import annotations

import pytest

from aliyun.log import LogItem, PutLogsRequest
from sls_forwarder.errors import ConfigError, InvalidCursorError, PermanentError, RetryableError
from sls_forwarder.sls.client import Credentials, SlsClient
from sls_forwarder.sls.decoder import decode_log_group_list
from sls_forwarder.sls.endpoint import parse_endpoint
from tests.emulators.sls import SlsEmulator
from tests.emulators.sls.testing import make_client as make_sdk_client
from tests.emulators.sls.testing import sdk_proxy_env

AKID, SECRET, PROJECT, LOGSTORE = "test-ak", "test-secret", "proj", "ls1"


@pytest.fixture
def emulator():
    with SlsEmulator(access_keys={AKID: SECRET}) as emu:
        emu.create_project(PROJECT)
        emu.create_logstore(PROJECT, LOGSTORE, shard_count=2)
        with sdk_proxy_env(emu):
            sdk = make_sdk_client(emu, AKID, SECRET)
            for batch in range(3):
                items = []
                for i in range(20):
                    item = LogItem(timestamp=1700000000 + i)
                    item.set_contents([("n", str(batch * 100 + i)), ("msg", "héllo \"world\" %d" % i),
                                       ("n", "dup")])
                    items.append(item)
                sdk.put_logs(PutLogsRequest(PROJECT, LOGSTORE, topic="t%d" % batch, source="10.0.0.%d" % batch,
                                            logitems=items, logtags=[("env", "test")], hashKey="0" * 32))
        yield emu


def ours(emu, secret=SECRET, **kwargs) -> SlsClient:
    kwargs.setdefault("max_attempts", 2)
    kwargs.setdefault("backoff_initial", 0.01)
    return SlsClient(parse_endpoint("http://127.0.0.1:%d" % emu.port), Credentials(AKID, secret), PROJECT, **kwargs)


@pytest.mark.parametrize("accept", ["deflate", ""])
def test_pull_and_decode_equals_the_sdk(emulator, accept):
    client = ours(emulator, accept_encoding=accept)
    begin = client.get_cursor(LOGSTORE, 0, "begin")
    result = client.pull_logs(LOGSTORE, 0, begin, count=10)
    assert result.count == 3 and result.raw_size == len(result.data)
    groups = decode_log_group_list(result.data)

    with sdk_proxy_env(emulator):
        sdk_result = make_sdk_client(emulator, AKID, SECRET).pull_logs(PROJECT, LOGSTORE, 0, begin, count=10)
    assert result.next_cursor == sdk_result.get_next_cursor()
    expected = []
    for group in sdk_result.get_loggroup_list().LogGroups:
        expected.append((group.Topic, group.Source, [(t.Key, t.Value) for t in group.LogTags],
                         [(log.Time, log.Time_ns, [(c.Key, c.Value) for c in log.Contents]) for log in group.Logs]))
    assert [(g.topic, g.source, g.tags, [(log.time, log.time_ns, log.contents) for log in g.logs])
            for g in groups] == expected
    assert groups[0].logs[0].contents == [("n", "0"), ("msg", "héllo \"world\" 0"), ("n", "dup")]
    pulls = [r for r in emulator.request_log if r.api == "pull_logs"]
    assert [(r.project, r.status, r.access_key_id) for r in pulls] == [(PROJECT, 200, AKID)] * 2
    empty = client.pull_logs(LOGSTORE, 0, result.next_cursor)
    assert (empty.count, empty.data, empty.next_cursor) == (0, b"", result.next_cursor)


def test_consumer_group_calls(emulator):
    client = ours(emulator)
    client.create_consumer_group(LOGSTORE, "cg1", 20, True)
    with pytest.raises(PermanentError) as info:
        client.create_consumer_group(LOGSTORE, "cg1", 20, True)
    assert info.value.code == "ConsumerGroupAlreadyExist"
    client.update_consumer_group(LOGSTORE, "cg1", 30, False)
    assert client.list_consumer_groups(LOGSTORE) == [{"name": "cg1", "timeout": 30, "order": False}]
    assigned = client.heartbeat(LOGSTORE, "cg1", "c1", [])
    assert sorted(assigned) == [0, 1]
    assert client.get_checkpoints(LOGSTORE, "cg1", 0)[0].cursor == ""
    end = client.get_cursor(LOGSTORE, 0, "end")
    client.update_checkpoint(LOGSTORE, "cg1", "c1", 0, end)
    checkpoint = client.get_checkpoints(LOGSTORE, "cg1")[0]
    assert (checkpoint.cursor, checkpoint.consumer) == (end, "c1")
    assert checkpoint.update_time_us > 0
    assert emulator.checkpoints(PROJECT, LOGSTORE, "cg1")[0]["checkpoint"] == end
    assert [s.shard_id for s in client.list_shards(LOGSTORE)] == [0, 1]
    assert client.get_cursor_time(LOGSTORE, 0, client.get_cursor(LOGSTORE, 0, "begin")) > 0


def test_expired_cursor_is_invalid_cursor_error(emulator):
    client = ours(emulator)
    begin = client.get_cursor(LOGSTORE, 0, "begin")
    emulator.expire(PROJECT, LOGSTORE, 0, 2)
    with pytest.raises(InvalidCursorError) as info:
        client.pull_logs(LOGSTORE, 0, begin)
    assert info.value.code == "InvalidCursor" and info.value.status == 400


def test_wrong_secret_and_missing_logstore_are_config_errors(emulator):
    with pytest.raises(ConfigError) as info:
        ours(emulator, secret="nope-nope").get_project()
    assert info.value.code == "SignatureNotMatch"
    with pytest.raises(ConfigError) as info:
        ours(emulator).list_shards("missing")
    assert info.value.code == "LogStoreNotExist"


def test_v4_signing_is_accepted(emulator):
    client = ours(emulator, auth_version="v4", region="cn-hangzhou")
    assert client.get_project()["projectName"] == PROJECT


def test_has_data_looks_once_and_never_retries(emulator):
    client = ours(emulator, max_attempts=0)  # the data client retries forever; the idle probe must not
    begin, end = client.get_cursor(LOGSTORE, 0, "begin"), client.get_cursor(LOGSTORE, 0, "end")
    assert client.has_data(LOGSTORE, 0, begin) is True
    assert client.has_data(LOGSTORE, 0, end) is False
    assert client.has_data(LOGSTORE, 1, client.get_cursor(LOGSTORE, 1, "begin")) is False
    probes = [r for r in emulator.request_log if r.api == "pull_logs"]
    assert len(probes) == 3 and all(r.params["count"] == "1" for r in probes)
    emulator.faults.next_errors("pull_logs", "InternalServerError", count=1, status=500)
    with pytest.raises(RetryableError):
        client.has_data(LOGSTORE, 0, end)
    assert len([r for r in emulator.request_log if r.api == "pull_logs"]) == 4
