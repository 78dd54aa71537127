"""The built add-on delivering to the HEC emulator: a named destination with and without indexer ack, and the
forwarder's own HEC bootstrapped over splunkd REST (issue 5)."""

from __future__ import annotations

import pytest

from tests.emulators.sls.datagen import DataSpec, mixed_spec

from .harness import HEC_TOKEN, LOGSTORE, PROJECT, PYTHONS, AddonEnv, wait_until


@pytest.mark.parametrize("python_label", sorted(PYTHONS), ids=lambda label: f"py{label}")
@pytest.mark.parametrize("ack", [False, True], ids=["no-ack", "ack"])
def test_hec_destination_delivers_every_event_once(python_label: str, ack: bool) -> None:
    with AddonEnv(PYTHONS[python_label], hec_ack=ack) as env:
        env.add_hec_destination("hec1", use_ack=ack, gzip=ack)
        spec = env.load(mixed_spec(seed=41, event_count=3000, logs_per_group=30, non_utf8_every=50), shards=3)
        with env.start_input("prod", delivery="hec", hec_destination="hec1", index="aliyun") as running:
            wait_until(lambda: len(env.hec.events()) >= spec.event_count and env.fully_checkpointed(),
                       timeout=90, message="all events at HEC and final checkpoints")
            assert running.terminate(timeout=30) == 0, running.stderr_text()[-2000:]
        result = env.compare(spec.event_ids(), env.hec_ids())
        assert result.missing == set() and result.duplicates == 0, result
        assert running.events == [], "hec delivery must not also write the stream"
        events = env.hec.events()
        assert {e["_token"] for e in events} == {HEC_TOKEN}
        assert {e["index"] for e in events} == {"aliyun"}
        assert {e["source"] for e in events} == {f"sls:{PROJECT}:{LOGSTORE}"}
        assert {e["sourcetype"] for e in events} == {"aliyun:sls"}
        sample = events[0]
        assert sample["host"] == sample["event"]["__source__"]
        assert float(sample["time"]) == pytest.approx(sample["event"]["__time__"]
                                                      + sample["event"].get("__time_ns_part__", 0) / 1e9)
        if ack:  # every ackId was asked for and reported true before the checkpoint moved to the end
            assert env.hec.pending_acks() == 0
        assert "action=events_ingested" in env.log_text("prod")


def test_local_hec_is_enabled_and_used_when_no_destination_is_named() -> None:
    spec = DataSpec(kind="actiontrail", seed=51, event_count=500, logs_per_group=25)
    with AddonEnv() as env:
        env.load(spec, shards=2)
        with env.start_input("local", delivery="hec", index="main") as running:
            wait_until(lambda: len(env.hec.events()) >= spec.event_count and env.fully_checkpointed(),
                       timeout=60, message="events through the local HEC")
            assert running.terminate(timeout=30) == 0
        tokens = env.splunkd.hec_tokens()
        assert "ta_aliyun_sls" in tokens, tokens
        local_token = tokens["ta_aliyun_sls"]["token"]
        assert {e["_token"] for e in env.hec.events()} == {local_token}
        result = env.compare(spec.event_ids(), env.hec_ids())
        assert result.missing == set() and result.duplicates == 0
