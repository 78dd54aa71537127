"""The data generator (determinism, ids, protobuf the SDK parses) and the emulator's CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from aliyun.log import LogClient
from aliyun.log.log_logs_raw_pb2 import LogGroupRaw

from tests.emulators.sls import SlsEmulator
from tests.emulators.sls.datagen import (
    KINDS, DataSpec, generate, generate_log_groups, load_direct, log_id, mixed_spec, spec_for_bytes)
from tests.emulators.sls.protobuf import decode_log_group, encode_log_group_list
from tests.emulators.sls.testing import sdk_proxy_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("kind", KINDS)
def test_generation_is_deterministic_and_ids_are_exact(kind: str) -> None:
    spec = DataSpec(kind=kind, seed=7, event_count=95, logs_per_group=10)
    first = list(generate_log_groups(spec))
    assert first == list(generate_log_groups(spec))
    assert first != list(generate_log_groups(DataSpec(kind=kind, seed=8, event_count=95, logs_per_group=10)))
    assert len(first) == spec.group_count == 10
    ids = []
    for raw in first:
        parsed = LogGroupRaw()
        parsed.ParseFromString(raw)  # the SDK's own protobuf classes accept the hand-written bytes
        # Shape C ActionTrail (alone or in soc_mixed) comes without a topic.
        assert (parsed.Topic or kind in ("actiontrail_flat", "soc_mixed")) and parsed.Source
        assert [t.Key for t in parsed.LogTags][:1] == ["__hostname__"]
        for log in parsed.Logs:
            ids.append(log_id([(c.Key, c.Value.decode()) for c in log.Contents]))
            assert log.Time >= spec.start_time and 0 <= log.Time_ns < 10 ** 9
    assert len(ids) == len(set(ids)) == 95 and set(ids) == spec.event_ids()


def test_actiontrail_events_look_like_actiontrail() -> None:
    group = next(generate(DataSpec(kind="actiontrail", seed=1, event_count=50, logs_per_group=50)))
    assert group.topic == "actiontrail_audit_event"
    sizes = [sum(len(k) + len(v) for k, v in log.contents) for log in group.logs]
    assert 15 <= len(group.logs[0].contents) <= 25
    assert 700 <= sum(sizes) / len(sizes) <= 1600
    import json

    event = json.loads(dict(group.logs[0].contents)["event"])
    assert event["eventType"] == "ApiCall" and event["userIdentity"]["accountId"]
    assert any(log.time_ns == 0 for log in group.logs) and any(log.time_ns for log in group.logs)


def test_mixed_data_has_non_utf8_and_large_events() -> None:
    spec = mixed_spec(seed=2, event_count=800)
    contents = [c for g in generate(spec) for log in g.logs for c in log.contents]
    raw = [v for k, v in contents if k == "raw_payload"]
    large = [v for k, v in contents if k == "large_blob"]
    assert raw and all(isinstance(v, bytes) for v in raw)
    assert all(not _is_utf8(v) for v in raw)
    assert len(large) == 2 and all(len(v) >= spec.large_size for v in large)
    assert {g.topic for g in generate(spec)} == {"actiontrail_audit_event", "oss_access_log", "slb_layer7_access_log"}


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_spec_for_bytes_and_direct_load_round_trip() -> None:
    spec = spec_for_bytes(2_000_000, seed=4)
    total = sum(len(g) for g in generate_log_groups(spec))
    assert 1_600_000 < total < 2_400_000
    emulator = SlsEmulator()
    emulator.create_project("p")
    emulator.create_logstore("p", "l", shard_count=3)
    ids = load_direct(emulator, "p", "l", spec)
    stored = [g for s in range(3) for g in emulator.log_groups("p", "l", s)]
    counts = [emulator.log_group_count("p", "l", s) for s in range(3)]
    assert sum(counts) == spec.group_count and max(counts) - min(counts) <= 1  # round-robin
    decoded_ids = {dict(log.contents)[b"event_id"].decode() for g in stored for log in decode_log_group(g).logs}
    assert decoded_ids == ids
    assert len(encode_log_group_list(stored)) > total


def test_cli_serves_until_sigterm_with_a_demo_logstore() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.sls", "--host", "127.0.0.1", "--port", "0", "--access-key-id", "cli-id",
         "--access-key-secret", "cli-secret", "--project", "demo", "--logstore", "audit", "--shards", "3",
         "--load-demo", "95"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("SLS emulator listening on http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        with sdk_proxy_env("http://127.0.0.1:%d" % port):
            client = LogClient("127.0.0.1:%d" % port, "cli-id", "cli-secret")
            shards = client.list_shards("demo", "audit").get_shards_info()
            assert len(shards) == 3
            total = 0
            for shard in shards:
                cursor = client.get_begin_cursor("demo", "audit", shard["shardID"]).get_cursor()
                total += client.pull_logs("demo", "audit", shard["shardID"], cursor, 1000).get_log_count()
            assert total == 95
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert process.stdout.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_unique_keys_logs_share_no_key() -> None:
    spec = DataSpec(kind="unique_keys", seed=1, event_count=30, logs_per_group=10)
    logs = [log for group in generate(spec) for log in group.logs]
    assert all(len(log.contents) == 1000 and log.contents[0][0] == "event_id" for log in logs)
    keys = [key for log in logs for key, _ in log.contents[1:]]
    assert len(keys) == len(set(keys)) == 30 * 999
