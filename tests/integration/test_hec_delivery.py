"""The built add-on delivering to the HEC emulator: a named destination with and without indexer ack, and the
forwarder's own HEC bootstrapped over splunkd REST (issue 5)."""

from __future__ import annotations

import pytest

from tests.emulators.hec import HecEmulator
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


def test_a_destination_with_two_urls_spreads_events_and_validation_names_the_url_that_refuses_the_token() -> None:
    spec = DataSpec(kind="actiontrail", seed=61, event_count=1500, logs_per_group=25)
    with AddonEnv(hec_ack=True) as env, \
            HecEmulator(host="127.0.0.2", tokens={HEC_TOKEN: {"ack": True}}) as second, \
            HecEmulator(host="127.0.0.3", tokens={"another-token": {"ack": True}}) as stranger:
        urls = f"{env.hec.url}, {second.url}/services/collector"
        env.splunkd.store_encrypted("ta_aliyun_sls_hec_destination", "pair", {"token": HEC_TOKEN},
                                    {"url": urls, "use_ack": "1", "verify_tls": "0", "gzip": "0"})
        env.splunkd.store_encrypted("ta_aliyun_sls_hec_destination", "mixed", {"token": HEC_TOKEN},
                                    {"url": f"{env.hec.url},{stranger.url}", "use_ack": "1", "verify_tls": "0"})
        env.load(spec, shards=3)
        accepted = env.runner.validate("prod", env.params(delivery="hec", hec_destination="pair"), env.splunkd.url,
                                       env.splunkd.session_key)
        assert accepted.returncode == 0, (accepted.stdout, accepted.stderr[-2000:])
        refused = env.runner.validate("prod", env.params(delivery="hec", hec_destination="mixed"), env.splunkd.url,
                                      env.splunkd.session_key)
        assert refused.returncode == 1 and refused.error_message is not None, refused.stdout
        assert f"HEC destination 'mixed' at {stranger.url}: the HEC token is not valid" in refused.error_message
        with env.start_input("prod", delivery="hec", hec_destination="pair", index="main") as running:
            wait_until(lambda: len(env.hec.events()) + len(second.events()) >= spec.event_count
                       and env.fully_checkpointed(), timeout=60, message="all events at the two HECs")
            assert running.terminate(timeout=30) == 0, running.stderr_text()[-2000:]
        delivered = env.hec_ids() + [event["event"]["event_id"] for event in second.events()]
        result = env.compare(spec.event_ids(), delivered)
        assert result.missing == set() and result.duplicates == 0, result
        assert env.hec.events() and second.events(), "round-robin reached only one URL"
        assert env.hec.pending_acks() == 0 and second.pending_acks() == 0
        assert "Traceback" not in env.log_text("prod")
