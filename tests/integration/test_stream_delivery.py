"""The built add-on, launched as splunkd launches it, consuming the SLS emulator in stream mode (issue 5)."""

from __future__ import annotations

import json
import re
import pytest

from tests.emulators.sls.datagen import DataSpec, generate, mixed_spec

from .harness import GROUP, LOGSTORE, PROJECT, PYTHONS, AddonEnv, wait_until

PY_IDS = sorted(PYTHONS)


@pytest.mark.parametrize("python_label", PY_IDS, ids=lambda label: f"py{label}")
def test_every_event_arrives_exactly_once_and_checkpoints_match(python_label: str) -> None:
    with AddonEnv(PYTHONS[python_label]) as env:
        spec = env.load(mixed_spec(seed=5, event_count=3000, logs_per_group=25, non_utf8_every=97,
                                   large_every=500, large_size=200_000), shards=4)
        with env.start_input("prod") as running:
            wait_until(lambda: len(running.events) >= spec.event_count and env.fully_checkpointed(),
                       timeout=90, message="all events and final checkpoints")
            returncode = running.terminate(timeout=30)
        result = env.compare(spec.event_ids(), env.stream_ids(running))
        assert returncode == 0, running.stderr_text()[-2000:]
        assert running.protocol_errors == [] and running.stream_closed
        assert result.missing == set() and result.duplicates == 0, result
        owners = {point["consumer"] for point in env.checkpoints().values()}
        assert owners == {f"{GROUP}-hf1-prod"}
        log = env.log_text("prod")
        assert "action=events_ingested modular_input_name=aliyun_sls://prod" in log
        ingested = sum(int(n) for n in re.findall(r"action=events_ingested .*?n_events=(\d+)", log))
        assert ingested == spec.event_count, "the dashboard's event count must match what was delivered"
        assert "Traceback" not in running.stderr_text() and "Traceback" not in log


def test_events_carry_fields_time_and_splunk_metadata() -> None:
    spec = DataSpec(kind="actiontrail", seed=11, event_count=120, logs_per_group=12, zero_ns_every=7,
                    non_utf8_every=5)
    with AddonEnv() as env:
        env.load(spec, shards=1)
        with env.start_input("meta", index="aliyun_audit", sourcetype="aliyun:actiontrail",
                             json_fields="event") as running:
            wait_until(lambda: len(running.events) >= spec.event_count, timeout=60, message="events")
            running.terminate(timeout=30)
    by_id = {json.loads(e["data"])["event_id"]: e for e in running.events}
    checked = 0
    for group in generate(spec):
        tags = dict(group.tags)
        for log in group.logs:
            contents = dict(log.contents)
            event = by_id[contents["event_id"]]
            body = json.loads(event["data"])
            assert event["stanza"] == "aliyun_sls://meta"
            assert event["index"] == "aliyun_audit" and event["sourcetype"] == "aliyun:actiontrail"
            assert event["source"] == f"sls:{PROJECT}:{LOGSTORE}"
            assert event["host"] == group.source
            expected_time = str(log.time) if log.time_ns == 0 else f"{log.time}.{log.time_ns:09d}"
            assert event["time"] == expected_time
            assert body["__time__"] == log.time
            assert body.get("__time_ns_part__", 0) == log.time_ns
            assert body["__topic__"] == group.topic and body["__source__"] == group.source
            for key, value in tags.items():
                assert body[f"__tag__:{key}"] == value
            for key, value in contents.items():
                if key == "event":  # json_fields: embedded as an object, not a string
                    assert body[key] == json.loads(value)
                elif isinstance(value, bytes):  # non-UTF-8 bytes arrive with U+FFFD, never dropped
                    assert body[key] == value.decode("utf-8", "replace") and "\ufffd" in body[key]
                else:
                    assert body[key] == value
            checked += 1
    assert checked == spec.event_count


def test_restart_continues_where_it_stopped() -> None:
    first = DataSpec(kind="oss_access", seed=21, event_count=800, logs_per_group=20, id_prefix="a-")
    second = DataSpec(kind="oss_access", seed=22, event_count=600, logs_per_group=20, id_prefix="b-")
    with AddonEnv() as env:
        env.load(first, shards=2)
        with env.start_input("prod") as running:
            wait_until(lambda: len(running.events) >= first.event_count and env.fully_checkpointed(),
                       timeout=60, message="first data set")
            assert running.terminate(timeout=30) == 0
        env.load(second)
        with env.start_input("prod") as again:
            wait_until(lambda: len(again.events) >= second.event_count and env.fully_checkpointed(),
                       timeout=60, message="second data set")
            assert again.terminate(timeout=30) == 0
    assert env.compare(first.event_ids(), env.stream_ids(running)).missing == set()
    resumed = env.compare(second.event_ids(), env.stream_ids(again))
    assert resumed.missing == set() and resumed.duplicates == 0
    assert set(env.stream_ids(again)) == second.event_ids(), "the restart re-read committed data"


def test_two_processes_share_the_shards_and_deliver_everything() -> None:
    spec = DataSpec(kind="slb_access", seed=31, event_count=4000, logs_per_group=20)
    with AddonEnv() as env:
        env.create_logstore(shards=4)
        with env.start_input("hf_a") as one, env.start_input("hf_b") as two:
            wait_until(lambda: len(set(env.owners().values()) - {""}) == 2,
                       timeout=30, message="both consumers to own shards")
            env.load(spec)
            wait_until(lambda: len(one.events) + len(two.events) >= spec.event_count and env.fully_checkpointed(),
                       timeout=90, message="both consumers to finish")
            owners = set(env.owners().values())
            assert one.terminate(timeout=30) == 0 and two.terminate(timeout=30) == 0
    result = env.compare(spec.event_ids(), env.stream_ids(one) + env.stream_ids(two))
    assert result.missing == set() and result.duplicates == 0, result
    assert owners == {f"{GROUP}-hf1-hf_a", f"{GROUP}-hf1-hf_b"}
    assert one.events and two.events, "the group did not spread the shards"
