"""Coordinator: group creation, the assign/revoke/release dance, heartbeat failures and the final heartbeat."""

import threading

import pytest

from sls_forwarder.errors import ConfigError, PermanentError, RetryableError
from sls_forwarder.sls.coordinator import Coordinator
from tests.unit.fakes import FakeSlsClient, wait_for

INTERVAL = 0.1  # group timeout = ceil(2 * 0.1) = 1 s


class RecordingListener:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []

    def on_shard_assigned(self, shard_id):
        with self.lock:
            self.calls.append(("assigned", shard_id))

    def on_shard_revoked(self, shard_id):
        with self.lock:
            self.calls.append(("revoked", shard_id))

    def of(self, kind):
        with self.lock:
            return [s for k, s in self.calls if k == kind]


@pytest.fixture
def client():
    return FakeSlsClient(shard_count=4)


@pytest.fixture
def listener():
    return RecordingListener()


@pytest.fixture
def coordinator(client, listener):
    made = []

    def make(**kwargs):
        coord = Coordinator(client, "store", "cg", "w1", listener, kwargs.pop("heartbeat_interval", INTERVAL),
                            **kwargs)
        made.append(coord)
        return coord

    yield make
    for coord in made:
        coord.stop(timeout=5)


def reports(client, consumer="w1"):
    return [shards for _, who, shards in client.entries("heartbeat") if who == consumer]


# ---------------------------------------------------------------- ensure_group

def test_ensure_group_creates_a_missing_group_with_twice_the_heartbeat_as_timeout(client, listener):
    Coordinator(client, "store", "cg", "w1", listener, heartbeat_interval=20).ensure_group()
    assert client.groups == {"cg": {"timeout": 40, "order": True}}
    assert ("create_consumer_group", "cg", 40, True) in client.journal


def test_ensure_group_updates_an_existing_group_with_other_settings(client, listener):
    client.groups["cg"] = {"timeout": 60, "order": True}
    Coordinator(client, "store", "cg", "w1", listener, heartbeat_interval=10, order=False).ensure_group()
    assert client.groups["cg"] == {"timeout": 20, "order": False}
    assert not client.entries("create_consumer_group")


def test_ensure_group_leaves_a_matching_group_alone(client, listener):
    client.groups["cg"] = {"timeout": 20, "order": True}
    Coordinator(client, "store", "cg", "w1", listener, heartbeat_interval=10).ensure_group()
    assert not client.entries("update_consumer_group") and not client.entries("create_consumer_group")


def test_ensure_group_falls_back_to_update_when_create_races_with_another_consumer(client, listener):
    client.fail("create_consumer_group", PermanentError("exists", code="ConsumerGroupAlreadyExist", status=400))
    Coordinator(client, "store", "cg", "w1", listener, heartbeat_interval=5).ensure_group()
    assert ("update_consumer_group", "cg", 10, True) in client.journal


def test_ensure_group_creates_when_the_listing_fails(client, listener):
    client.fail("list_consumer_groups", RetryableError("boom", code="InternalServerError", status=500))
    Coordinator(client, "store", "cg", "w1", listener, heartbeat_interval=5).ensure_group()
    assert client.groups["cg"] == {"timeout": 10, "order": True}


def test_ensure_group_raises_config_errors(client, listener):
    client.fail("list_consumer_groups", ConfigError("bad key", code="SignatureNotMatch", status=401))
    with pytest.raises(ConfigError):
        Coordinator(client, "store", "cg", "w1", listener).ensure_group()
    client.fail("create_consumer_group", ConfigError("quota", code="ConsumerGroupQuotaExceed", status=400))
    with pytest.raises(ConfigError):
        Coordinator(client, "store", "cg", "w1", listener).ensure_group()
    assert client.groups == {}


# ---------------------------------------------------------------- assignment

def test_assigned_revoked_released_dance(client, listener, coordinator):
    client.assign("w1", {0, 1, 2})
    coord = coordinator()
    coord.start()
    assert wait_for(lambda: sorted(listener.of("assigned")) == [0, 1, 2])
    assert coord.held() == {0, 1, 2}
    assert reports(client)[0] == []

    client.assign("w1", {1, 2})
    assert wait_for(lambda: listener.of("revoked") == [0])
    # Still reported until the pipeline has drained and committed it: the server must not hand it over yet.
    before = len(reports(client))
    assert wait_for(lambda: len(reports(client)) >= before + 3)
    assert all(0 in r for r in reports(client)[before:])
    assert coord.held() == {0, 1, 2}
    assert listener.of("revoked") == [0], "revoked exactly once"

    coord.release(0)
    assert coord.held() == {1, 2}
    assert wait_for(lambda: reports(client)[-1] == [1, 2])
    assert sorted(listener.of("assigned")) == [0, 1, 2], "nothing reassigned"


def test_a_revoked_shard_returned_by_the_server_is_reassigned_only_after_release(client, listener, coordinator):
    client.assign("w1", {0})
    coord = coordinator()
    coord.start()
    assert wait_for(lambda: listener.of("assigned") == [0])
    client.assign("w1", set())
    assert wait_for(lambda: listener.of("revoked") == [0])
    client.assign("w1", {0})
    before = len(reports(client))
    assert wait_for(lambda: len(reports(client)) >= before + 3)
    assert listener.of("assigned") == [0], "no second assignment while the first consumer still drains"
    coord.release(0)
    assert wait_for(lambda: listener.of("assigned") == [0, 0])


def test_release_sends_the_next_heartbeat_without_waiting_for_the_interval(client, listener, coordinator):
    client.assign("w1", {0, 1})
    coord = coordinator(heartbeat_interval=30)  # the timer alone would not send another heartbeat in this test
    coord.start()
    assert wait_for(lambda: sorted(listener.of("assigned")) == [0, 1])
    coord.release(1)
    assert wait_for(lambda: reports(client)[-1:] == [[0]], timeout=5)


# ---------------------------------------------------------------- failures

def test_short_heartbeat_failures_keep_the_shards(client, listener, coordinator):
    client.assign("w1", {0, 1})
    coord = coordinator()
    coord.start()
    assert wait_for(lambda: sorted(listener.of("assigned")) == [0, 1])
    client.fail("heartbeat", *[RetryableError("down", status=503)] * 2)
    assert wait_for(lambda: not client.faults["heartbeat"])
    before = len(reports(client))
    assert wait_for(lambda: len(reports(client)) > before)
    assert listener.of("revoked") == []
    assert coord.held() == {0, 1}
    assert reports(client)[-1] == [0, 1]


def test_heartbeats_failing_longer_than_the_group_timeout_revoke_locally_once(client, listener, coordinator):
    client.assign("w1", {0, 1})
    coord = coordinator()
    coord.start()
    assert wait_for(lambda: sorted(listener.of("assigned")) == [0, 1])
    outage = threading.Event()

    def hook(consumer, shards):
        if outage.is_set():
            raise RetryableError("connection reset", status=0)

    client.heartbeat_hook = hook
    outage.set()
    # group timeout is 1 s; revocation must come after it, and only once per shard
    assert wait_for(lambda: sorted(listener.of("revoked")) == [0, 1], timeout=10)
    assert coord.held() == {0, 1}, "revoked shards stay held until the pipeline releases them"
    outage.clear()
    # Re-join with an empty report: the server has expired us and would refuse a non-empty one.
    assert wait_for(lambda: reports(client)[-1:] == [[]])
    coord.release(0)
    coord.release(1)
    assert wait_for(lambda: sorted(listener.of("assigned")) == [0, 0, 1, 1])
    assert sorted(listener.of("revoked")) == [0, 1]


def test_expired_consumer_answer_revokes_at_once_and_rejoins_empty(client, listener, coordinator):
    client.assign("w1", {2})
    coord = coordinator()
    coord.start()
    assert wait_for(lambda: listener.of("assigned") == [2])
    client.fail("heartbeat", PermanentError("non-exist consumer", code="NotExistConsumerWithBody", status=400))
    assert wait_for(lambda: listener.of("revoked") == [2], timeout=2)
    assert wait_for(lambda: reports(client)[-1:] == [[]])


def test_config_error_in_heartbeat_is_reported_once_per_streak(client, listener, coordinator):
    seen = []
    client.assign("w1", {0})
    coord = coordinator(on_config_error=seen.append)
    client.fail("heartbeat", *[ConfigError("signature mismatch", code="SignatureNotMatch", status=401)] * 3)
    coord.start()
    assert wait_for(lambda: listener.of("assigned") == [0])
    assert len(seen) == 1 and seen[0].code == "SignatureNotMatch"


def test_a_failing_listener_does_not_stop_the_heartbeat(client, coordinator):
    class Broken(RecordingListener):
        def on_shard_assigned(self, shard_id):
            super().on_shard_assigned(shard_id)
            raise RuntimeError("bug")

    broken = Broken()
    client.assign("w1", {0})
    coord = Coordinator(client, "store", "cg", "w1", broken, INTERVAL)
    coord.start()
    try:
        assert wait_for(lambda: broken.of("assigned") == [0])
        before = len(reports(client))
        assert wait_for(lambda: len(reports(client)) > before + 2)
    finally:
        coord.stop(timeout=5)


# ---------------------------------------------------------------- stop

def test_stop_sends_a_final_empty_heartbeat_and_ends_the_thread(client, listener, coordinator):
    client.assign("w1", {0, 1})
    coord = coordinator()
    coord.start()
    assert wait_for(lambda: sorted(listener.of("assigned")) == [0, 1])
    coord.stop(timeout=5)
    assert reports(client)[-1] == []
    count = len(reports(client))
    assert not wait_for(lambda: len(reports(client)) > count, timeout=0.5)
    assert coord.held() == set()


def test_stop_without_start_sends_nothing(client, listener):
    Coordinator(client, "store", "cg", "w1", listener).stop()
    assert reports(client) == []
