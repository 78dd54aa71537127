"""Pipeline: exactly-once delivery with out-of-order completion, checkpoints never past undelivered data,
InvalidCursor handling, back-pressure, readonly shards, revocation and ordered shutdown. All with in-memory fakes."""

import collections
import dataclasses
import json
import threading
import time

import pytest

from sls_forwarder.errors import ConfigError, InvalidCursorError, RetryableError
from sls_forwarder.pipeline import Pipeline, PipelineSettings
from sls_forwarder.routing import Router
from sls_forwarder.sls.decoder import Log, LogGroup
from sls_forwarder.splunk.events import EventMeta, EventShaper
from tests.unit.fakes import FakeShaper, FakeSink, FakeSlsClient, cursor_index, encode_cursor, fake_decode, wait_for

CONSUMER = "cg-host-input"


def settings(**overrides):
    values = dict(logstore="store", consumer_group="cg", consumer=CONSUMER, start_position="begin", pull_count=10,
                  first_pull_count=10,
                  heartbeat_interval=0.1, checkpoint_interval=0.05, max_batches_in_flight=3, idle_poll_min=0.01,
                  idle_poll_max=0.05, shard_status_ttl=0.05, error_backoff_cap=0.05)
    values.update(overrides)
    return PipelineSettings(**values)


class CommitGuard:
    """Checks, at the moment of every checkpoint commit, that all data before the cursor was delivered."""

    def __init__(self, client, sink, first_index=None):
        self.sink = sink
        self.first_index = first_index or {}
        self.violations = []
        self.checked = 0
        self.lock = threading.Lock()
        client.commit_hook = self

    def __call__(self, shard_id, cursor):
        delivered = self.sink.delivered_ids()
        upto = cursor_index(cursor)
        missing = [i for i in range(self.first_index.get(shard_id, 0), upto) if (shard_id, i) not in delivered]
        with self.lock:
            self.checked += 1
            if missing:
                self.violations.append((shard_id, upto, missing[:5]))


@pytest.fixture
def made():
    pipelines = []
    yield pipelines
    for pipeline in pipelines:
        if not pipeline.stopping():
            pipeline.stop(timeout=10)


def start_pipeline(made, client, sink, shaper=None, **overrides):
    pipeline = Pipeline(client, sink, shaper or FakeShaper(), settings(**overrides), decode=fake_decode)
    made.append(pipeline)
    pipeline.start()
    return pipeline


def delivered_counts(sink):
    return collections.Counter(sink.delivered)


def committed_everything(client, shards):
    return all(client.committed_index(s) == len(client.shards[s].times) for s in shards)


# ---------------------------------------------------------------- delivery and checkpoints

def test_every_log_group_is_delivered_exactly_once_with_out_of_order_completion(made):
    journal = []
    client = FakeSlsClient(shard_count=3, journal=journal)
    for shard, count in ((0, 95), (1, 40), (2, 0)):
        client.append(shard, count)
    client.assign(CONSUMER, {0, 1, 2})
    sink = FakeSink(auto=True, journal=journal)
    guard = CommitGuard(client, sink)
    pipeline = start_pipeline(made, client, sink)

    assert wait_for(lambda: len(sink.delivered) == 135)
    client.append(1, 17)  # data arriving later is picked up too
    assert wait_for(lambda: len(sink.delivered) == 152)
    assert wait_for(lambda: committed_everything(client, (0, 1)))
    pipeline.stop(timeout=10)

    counts = delivered_counts(sink)
    assert set(counts.values()) == {1}, "no duplicates"
    assert set(counts) == {b"0:%d" % i for i in range(95)} | {b"1:%d" % i for i in range(57)}
    assert guard.violations == []
    assert guard.checked >= 2
    # the empty shard commits its start cursor, so a restart does not resolve the start position again
    assert client.committed_index(2) == 0
    assert client.queries == {""}


def test_checkpoint_stays_before_the_oldest_undelivered_batch(made):
    client = FakeSlsClient(shard_count=1)
    client.append(0, 30)
    client.assign(CONSUMER, {0})
    sink = FakeSink()
    guard = CommitGuard(client, sink)
    start_pipeline(made, client, sink, max_batches_in_flight=3)

    assert wait_for(lambda: sink.pending() == 3)
    assert [b.cursor for b in sink.pending_batches()] == [encode_cursor(0), encode_cursor(10), encode_cursor(20)]
    # deliver the two newer batches only: the checkpoint must not move past the first one
    assert sink.complete(only=lambda b: b.cursor != encode_cursor(0)) == 2
    assert wait_for(lambda: client.committed_index(0) == 0)
    assert not wait_for(lambda: client.committed_index(0) != 0, timeout=0.3)
    sink.complete()
    assert wait_for(lambda: client.committed_index(0) == 30)
    assert guard.violations == []


def test_resumes_from_the_server_checkpoint_and_ignores_the_start_position(made):
    client = FakeSlsClient(shard_count=1)
    client.append(0, 25)
    client.checkpoints[0] = (encode_cursor(12), "earlier-run")
    client.assign(CONSUMER, {0})
    sink = FakeSink(auto=True)
    start_pipeline(made, client, sink, start_position="end")
    assert wait_for(lambda: client.committed_index(0) == 25)
    assert sorted(sink.delivered_ids()) == [(0, i) for i in range(12, 25)]


def test_start_position_end_and_time_apply_only_without_a_checkpoint(made):
    client = FakeSlsClient(shard_count=2)
    client.append(0, 5, log_time=1000)
    client.append(1, 4, log_time=1000)
    client.append(1, 6, log_time=2000)
    client.assign(CONSUMER, {0, 1})
    sink = FakeSink(auto=True)
    start_pipeline(made, client, sink, start_position=1500)
    assert wait_for(lambda: committed_everything(client, (0, 1)))
    assert sorted(sink.delivered_ids()) == [(1, i) for i in range(4, 10)]


def test_start_position_end_commits_the_start_so_a_restart_does_not_skip(made):
    client = FakeSlsClient(shard_count=1)
    client.append(0, 7)
    client.assign(CONSUMER, {0})
    sink = FakeSink(auto=True)
    pipeline = start_pipeline(made, client, sink, start_position="end")
    assert wait_for(lambda: client.committed_index(0) == 7)
    pipeline.stop(timeout=10)
    assert sink.delivered == []


def test_batches_without_events_still_move_the_checkpoint(made):
    class DropShardOne(FakeShaper):
        def shape(self, groups):
            return super().shape([g for g in groups if g[0] != 1])

    client = FakeSlsClient(shard_count=2)
    client.append(0, 12)
    client.append(1, 23)
    client.assign(CONSUMER, {0, 1})
    sink = FakeSink(auto=True)
    start_pipeline(made, client, sink, shaper=DropShardOne(), query="* | where a = 1")
    assert wait_for(lambda: committed_everything(client, (0, 1)))
    assert sorted(sink.delivered_ids()) == [(0, i) for i in range(12)]
    assert client.queries == {"* | where a = 1"}


def test_delivered_hook_sees_every_batch(made):
    seen = []
    client = FakeSlsClient(shard_count=1)
    client.append(0, 21)
    client.assign(CONSUMER, {0})
    sink = FakeSink(auto=True)
    # A snapshot at call time: the pipeline drops a delivered batch's events right after the hook.
    pipeline = Pipeline(client, sink, FakeShaper(), settings(), decode=fake_decode,
                        on_delivered=lambda batch: seen.append(dataclasses.replace(batch)))
    made.append(pipeline)
    pipeline.start()
    assert wait_for(lambda: sum(len(b.events) for b in seen) == 21)


def routed_decode(data: bytes) -> list:
    """The fake client's logs as real LogGroups: every third an ActionTrail record, then WAF, then an app log."""
    groups = []
    for shard, index, time in fake_decode(data):
        event_id = "%d:%d" % (shard, index)
        if index % 3 == 0:
            record = '{"eventName":"CreateUser","eventTime":"2025-03-04T01:02:03Z","eventId":"%s"}' % event_id
            groups.append(LogGroup("actiontrail_audit_event", "", [], [Log(time, 0, [("event", record)])]))
        else:
            topic = "waf_access_log" if index % 3 == 1 else "app"
            groups.append(LogGroup(topic, "", [], [Log(time, 0, [("event_id", event_id)])]))
    return groups


def test_routed_batches_carry_events_per_sourcetype_and_their_shard(made):
    seen = []
    client = FakeSlsClient(shard_count=2)
    client.append(0, 9)
    client.append(1, 6)
    client.assign(CONSUMER, {0, 1})
    shaper = EventShaper(EventMeta(index="main", sourcetype="auto", source="s", default_host="h"), "hec")
    pipeline = Pipeline(client, FakeSink(auto=True), shaper, settings(), decode=routed_decode,
                        on_delivered=lambda batch: seen.append(dataclasses.replace(batch)),
                        router=Router("proj", "store"))
    made.append(pipeline)
    pipeline.start()
    assert wait_for(lambda: sum(len(b.events) for b in seen) == 15)
    counts = collections.Counter()
    for batch in seen:
        assert sum(batch.sourcetypes.values()) == len(batch.events)
        counts.update(batch.sourcetypes)
        for envelope in map(json.loads, batch.events):
            if envelope["sourcetype"] == "aliyun:actiontrail":
                assert envelope["event"]["sls"]["shard"] == batch.shard_id
                assert envelope["event"]["eventId"].startswith("%d:" % batch.shard_id)
    assert counts == {"aliyun:actiontrail": 5, "aliyun:waf": 5, "aliyun:sls": 5}


# ---------------------------------------------------------------- InvalidCursor

def test_a_transient_invalid_cursor_is_retried_without_skipping(made):
    client = FakeSlsClient(shard_count=1)
    client.append(0, 30)
    client.assign(CONSUMER, {0})
    client.fail("pull_logs", InvalidCursorError("invalid cursor", code="InvalidCursor", status=400))
    sink = FakeSink(auto=True)
    start_pipeline(made, client, sink)
    assert wait_for(lambda: client.committed_index(0) == 30)
    assert delivered_counts(sink) == collections.Counter(b"0:%d" % i for i in range(30))


def test_an_invalid_cursor_never_jumps_to_the_end(made):
    client = FakeSlsClient(shard_count=1)
    client.append(0, 40)
    client.assign(CONSUMER, {0})
    client.fail("pull_logs", *[InvalidCursorError("invalid cursor", code="InvalidCursor", status=400)] * 6)
    sink = FakeSink(auto=True)
    start_pipeline(made, client, sink)
    assert wait_for(lambda: client.committed_index(0) == 40)
    assert ("get_cursor", 0, "end") not in client.journal
    assert set(sink.delivered_ids()) == {(0, i) for i in range(40)}


def test_expired_data_restarts_from_the_oldest_retained_log_and_logs_the_gap(made, caplog):
    client = FakeSlsClient(shard_count=1)
    client.append(0, 50)
    client.checkpoints[0] = (encode_cursor(5), "earlier-run")
    client.expire(0, 20)  # groups 5..19 expired before we read them
    client.assign(CONSUMER, {0})
    sink = FakeSink(auto=True)
    with caplog.at_level("ERROR", logger="sls_forwarder.pipeline"):
        start_pipeline(made, client, sink)
        assert wait_for(lambda: client.committed_index(0) == 50)
    assert sorted(sink.delivered_ids()) == [(0, i) for i in range(20, 50)]
    assert ("get_cursor", 0, "end") not in client.journal
    gap = [r.getMessage() for r in caplog.records if "action=cursor_expired" in r.getMessage()]
    assert len(gap) == 1 and "shard=0" in gap[0] and "gap" in gap[0]


# ---------------------------------------------------------------- back-pressure

def test_a_stalled_sink_bounds_the_batches_in_flight(made):
    client = FakeSlsClient(shard_count=2)
    client.append(0, 2000)
    client.append(1, 2000)
    client.assign(CONSUMER, {0, 1})
    sink = FakeSink()  # never completes on its own
    pipeline = start_pipeline(made, client, sink, max_batches_in_flight=4)
    assert wait_for(lambda: sink.pending() == 8)
    pulls = client.pull_count
    assert not wait_for(lambda: client.pull_count > pulls, timeout=0.5), "no pulls while the shard is full"
    consumers = pipeline.consumers()
    assert all(c.tracker.in_flight() == 4 for c in consumers.values())
    assert client.committed_index(0) in (None, 0)

    # release the stall: the backlog drains with the same bound
    drain_thread_stop = threading.Event()

    def drain():
        while not drain_thread_stop.is_set():
            sink.complete()
            drain_thread_stop.wait(0.005)

    drainer = threading.Thread(target=drain)
    drainer.start()
    try:
        assert wait_for(lambda: committed_everything(client, (0, 1)), timeout=60)
    finally:
        drain_thread_stop.set()
        drainer.join()
    assert sink.peak_pending <= 8
    assert len(sink.delivered) == 4000


def test_a_sink_that_blocks_send_holds_the_pull_loop(made):
    client = FakeSlsClient(shard_count=1)
    client.append(0, 500)
    client.assign(CONSUMER, {0})
    sink = FakeSink(max_pending=1)
    pipeline = start_pipeline(made, client, sink, max_batches_in_flight=10)
    assert wait_for(lambda: sink.pending() == 1)
    assert not wait_for(lambda: client.pull_count > 3, timeout=0.3)
    pipeline.stop(timeout=10)
    assert sink.closed


# ---------------------------------------------------------------- readonly shards

def test_a_fully_read_readonly_shard_commits_its_end_cursor(made):
    client = FakeSlsClient(shard_count=2)
    client.append(0, 13)
    client.shards[0].status = "readonly"
    client.shards[1].status = "readonly"  # empty parent: must still be finished (SDK issue #126)
    client.assign(CONSUMER, {0, 1})
    sink = FakeSink(auto=True)
    start_pipeline(made, client, sink, checkpoint_interval=60)  # only the finish logic can commit here
    assert wait_for(lambda: client.over == {0, 1})
    assert client.committed_index(0) == 13 and client.committed_index(1) == 0


def test_a_parked_shard_that_turns_readonly_is_finished(made):
    client = FakeSlsClient(shard_count=1)
    client.append(0, 5)
    client.assign(CONSUMER, {0})
    sink = FakeSink(auto=True)
    pipeline = start_pipeline(made, client, sink, checkpoint_interval=60)
    assert wait_for(lambda: pipeline.idle_poller.parked() == 1)
    client.shards[0].status = "readonly"  # split while idle: its children wait for it to be finished
    assert wait_for(lambda: client.over == {0})
    assert client.committed_index(0) == 5


# ---------------------------------------------------------------- revocation and shutdown

def test_a_revoked_shard_is_drained_committed_then_released(made):
    journal = []
    client = FakeSlsClient(shard_count=2, journal=journal)
    client.append(0, 30)
    client.append(1, 30)
    client.assign(CONSUMER, {0, 1})
    sink = FakeSink(journal=journal)
    guard = CommitGuard(client, sink)
    pipeline = start_pipeline(made, client, sink, checkpoint_interval=60)
    assert wait_for(lambda: sink.pending() == 6)

    revoked_at = len(journal)
    client.assign(CONSUMER, {1})
    assert wait_for(lambda: pipeline.consumers()[0]._revoked)
    heartbeats = len(client.entries("heartbeat"))
    assert wait_for(lambda: len(client.entries("heartbeat")) > heartbeats + 2)
    assert all(0 in shards for _, _, shards in client.entries("heartbeat")[heartbeats:]), "held while draining"
    assert 0 in pipeline.consumers()

    sink.complete()
    assert wait_for(lambda: 0 not in pipeline.consumers())
    assert wait_for(lambda: client.entries("heartbeat")[-1][2] == [1])
    commit_at = journal.index(next(e for e in journal if e[0] == "commit" and e[1] == 0))
    released_at = next(i for i, e in enumerate(journal) if i >= revoked_at and e[0] == "heartbeat" and 0 not in e[2])
    assert commit_at < released_at
    assert client.committed_index(0) == 30
    assert guard.violations == []


def test_shutdown_drains_the_sink_then_commits_then_sends_the_final_heartbeat(made):
    journal = []
    client = FakeSlsClient(shard_count=2, journal=journal)
    client.append(0, 15)
    client.append(1, 15)
    client.assign(CONSUMER, {0, 1})
    sink = FakeSink(journal=journal)
    guard = CommitGuard(client, sink)
    pipeline = start_pipeline(made, client, sink, checkpoint_interval=60, max_batches_in_flight=2)
    assert wait_for(lambda: sink.pending() == 4)
    pipeline.stop(timeout=10)

    close_at = journal.index(("sink_close",))
    commits = [i for i, e in enumerate(journal) if e[0] == "commit"]
    final = max(i for i, e in enumerate(journal) if e[0] == "heartbeat")
    assert journal[final][2] == []
    assert commits and all(close_at < i < final for i in commits)
    assert client.committed_index(0) == 15 and client.committed_index(1) == 15
    assert guard.violations == []
    assert not any(c.is_alive() for c in pipeline.consumers().values())


def test_shutdown_never_commits_what_the_sink_could_not_deliver(made):
    class StuckSink(FakeSink):
        def close(self, timeout):  # delivers nothing on close: an outage that outlasts the shutdown budget
            with self._cond:
                self.closed = True
                self.journal.append(("sink_close",))
                self._cond.notify_all()

    client = FakeSlsClient(shard_count=1)
    client.append(0, 40)
    client.assign(CONSUMER, {0})
    sink = StuckSink()
    guard = CommitGuard(client, sink)
    pipeline = start_pipeline(made, client, sink, checkpoint_interval=60, max_batches_in_flight=3)
    assert wait_for(lambda: sink.pending() == 3)
    sink.complete(count=1, shuffle=False)
    pipeline.stop(timeout=5)
    assert client.committed_index(0) == 10
    assert guard.violations == []


# ---------------------------------------------------------------- errors

def test_config_error_while_pulling_fails_the_pipeline(made):
    client = FakeSlsClient(shard_count=1)
    client.append(0, 5)
    client.assign(CONSUMER, {0})
    client.fail("pull_logs", *[ConfigError("logstore gone", code="LogStoreNotExist", status=404)] * 50)
    sink = FakeSink(auto=True)
    pipeline = start_pipeline(made, client, sink)
    assert pipeline.failed.wait(10)
    assert pipeline.error.code == "LogStoreNotExist"


def test_retryable_pull_errors_are_retried_in_place(made):
    client = FakeSlsClient(shard_count=1)
    client.append(0, 25)
    client.assign(CONSUMER, {0})
    client.fail("pull_logs", *[RetryableError("throttled", code="ReadQuotaExceed", status=403)] * 3)
    sink = FakeSink(auto=True)
    pipeline = start_pipeline(made, client, sink)
    assert wait_for(lambda: client.committed_index(0) == 25)
    assert delivered_counts(sink) == collections.Counter(b"0:%d" % i for i in range(25))
    assert not pipeline.failed.is_set()


def test_start_raises_config_errors_and_can_be_retried(made):
    client = FakeSlsClient(shard_count=1)
    client.fail("list_consumer_groups", ConfigError("bad key", code="SignatureNotMatch", status=401))
    sink = FakeSink(auto=True)
    pipeline = Pipeline(client, sink, FakeShaper(), settings(), decode=fake_decode)
    made.append(pipeline)
    with pytest.raises(ConfigError):
        pipeline.start()
    assert client.entries("heartbeat") == []
    pipeline.start()
    assert wait_for(lambda: client.entries("heartbeat"))


def test_undecodable_data_is_retried_never_skipped_and_logged_as_an_error(made, caplog):
    from sls_forwarder.errors import PermanentError

    failures = {"left": 2}

    def flaky_decode(data):
        groups = fake_decode(data)
        if groups and groups[0][1] == 10 and failures["left"]:
            failures["left"] -= 1
            raise PermanentError("LogGroupList is truncated", code="DecodeError")
        return groups

    client = FakeSlsClient(shard_count=1)
    client.append(0, 30)
    client.assign(CONSUMER, {0})
    sink = FakeSink(auto=True)
    pipeline = Pipeline(client, sink, FakeShaper(), settings(), decode=flaky_decode)
    made.append(pipeline)
    with caplog.at_level("WARNING", logger="sls_forwarder.pipeline"):
        pipeline.start()
        assert wait_for(lambda: client.committed_index(0) == 30)
    assert delivered_counts(sink) == collections.Counter(b"0:%d" % i for i in range(30))
    errors = [r for r in caplog.records if "step=decode" in r.getMessage()]
    assert len(errors) == 1 and "cursor=%s" % encode_cursor(10) in errors[0].getMessage()
    assert errors[0].levelname == "ERROR" and errors[0].exc_info is None


def test_each_commit_logs_the_shard_lag(made, caplog):
    import time as time_module

    client = FakeSlsClient(shard_count=1)
    client.append(0, 5, log_time=int(time_module.time()) - 100)
    client.assign(CONSUMER, {0})
    sink = FakeSink(auto=True)
    with caplog.at_level("INFO", logger="sls_forwarder.pipeline"):
        start_pipeline(made, client, sink)
        assert wait_for(lambda: client.committed_index(0) == 5)
        assert wait_for(lambda: any("action=shard_lag" in r.getMessage() for r in caplog.records))
    line = next(r.getMessage() for r in caplog.records if "action=shard_lag" in r.getMessage())
    assert line.startswith("action=shard_lag shard=0 lag_seconds=")
    assert 100 <= int(line.rsplit("=", 1)[1]) < 200


# ---------------------------------------------------------------------------------------- pull sizing (memory bound)

@pytest.mark.parametrize("count,raw_size,expected", [
    (0, 0, 5),             # nothing seen yet: the first, cautious count
    (100, 100_000, 10),    # 1 KB groups: 16 would fit, the settings allow 10
    (100, 4_000_000, 1),   # 40 KB groups against a 16 KB target: one at a time, never zero
    (10, 80_000, 2),       # 8 KB groups: two fit the target
])
def test_next_pull_count_targets_bytes_not_groups(count, raw_size, expected):
    sizing = settings(pull_count=10, pull_target_bytes=16_000, first_pull_count=5)
    assert sizing.next_pull_count(count, raw_size) == expected


def test_pull_pause_follows_full_pulls_at_once_and_slows_trickles():
    sizing = settings(pull_target_bytes=1000, idle_poll_min=0.2, idle_poll_max=2.0)
    assert sizing.pull_pause(count=7, requested=7, raw_size=10) == 0.0          # every group asked for came
    assert sizing.pull_pause(count=1, requested=50, raw_size=1000) == 0.0       # the byte target was reached
    assert 0 < sizing.pull_pause(count=1, requested=50, raw_size=10) <= 2.0     # a trickle waits


class RecordingClient(FakeSlsClient):
    """Records the group count of every pull."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requested = []

    def pull_logs(self, logstore, shard_id, cursor, count=1000, end_cursor="", query=""):
        self.requested.append(count)
        return super().pull_logs(logstore, shard_id, cursor, count, end_cursor, query)


def test_pulls_shrink_to_the_byte_target_so_big_groups_do_not_grow_memory(made):
    client = RecordingClient(shard_count=1)
    client.append(0, 400)
    client.assign(CONSUMER, {0})
    sink = FakeSink(auto=True)
    # The fake's groups serialise to about 25 bytes each: a 100-byte target means about 4 groups per pull.
    start_pipeline(made, client, sink, pull_count=50, first_pull_count=20, pull_target_bytes=100)
    assert wait_for(lambda: len(sink.delivered) == 400, timeout=10)
    assert client.requested[0] == 20
    assert max(client.requested[1:]) <= 5, client.requested[:10]
    assert min(client.requested) >= 1


# ---------------------------------------------------------------------------------------- review findings

def test_a_failed_lookup_during_invalid_cursor_recovery_still_tries_the_server_checkpoint():
    """A transient error while asking for the server checkpoint must not skip that step (and replay the shard)."""
    from sls_forwarder.pipeline import _INVALID_CURSOR_RETRIES, ShardConsumer, _ErrorStreak

    client = FakeSlsClient(shard_count=1)
    client.append(0, 50)
    client.checkpoints[0] = (encode_cursor(30), "earlier-run")
    pipeline = Pipeline(client, FakeSink(auto=True), FakeShaper(), settings(), decode=fake_decode)
    consumer = ShardConsumer(pipeline, 0)
    invalid, lookups = _ErrorStreak(consumer), _ErrorStreak(consumer)
    err = InvalidCursorError("invalid cursor", code="InvalidCursor", status=400)
    stale = encode_cursor(10)
    for _ in range(_INVALID_CURSOR_RETRIES):
        assert consumer._recover_cursor(stale, err, invalid, lookups) == stale
    client.fail("get_checkpoints", RetryableError("SLS is busy", code="InternalServerError", status=500))
    assert consumer._recover_cursor(stale, err, invalid, lookups) == stale  # lookup failed: ask again next time
    assert consumer._recover_cursor(stale, err, invalid, lookups) == encode_cursor(30)
    assert ("get_cursor", 0, "begin") not in client.journal


class RefusingSink(FakeSink):
    """A sink that refuses every batch (e.g. its stdout broke), counting the attempts."""

    def __init__(self):
        super().__init__()
        self.attempts = 0

    def send(self, batch, on_done):
        self.attempts += 1
        raise RuntimeError("sink refuses")


def test_a_revoked_shard_backs_off_while_the_sink_refuses_instead_of_spinning(made):
    client = FakeSlsClient(shard_count=1)
    client.append(0, 20)
    client.assign(CONSUMER, {0})
    sink = RefusingSink()
    start_pipeline(made, client, sink, error_backoff_cap=0.2)
    assert wait_for(lambda: sink.attempts >= 1)
    client.assign(CONSUMER, set())  # the next heartbeat revokes the shard while its batch is refused
    assert wait_for(lambda: ("heartbeat", CONSUMER, [0]) in client.journal or sink.attempts > 3, timeout=2)
    before = sink.attempts
    assert not wait_for(lambda: sink.attempts - before > 40, timeout=1.0), "revoked shard retried in a hot loop"
    assert client.committed_index(0) in (None, 0), "nothing was delivered, so nothing may be committed"


# ---------------------------------------------------------------- memory budget


def test_shards_share_one_memory_budget_first_come_first_served(made):
    client = FakeSlsClient(shard_count=8)
    for shard in range(8):
        client.append(shard, 60)
    client.assign(CONSUMER, set(range(8)))
    sink = FakeSink()
    # 6,000 bytes: a pull reserves 750, a held batch of 10 fake events is 520, so about 11 batches fit; without the
    # budget the per-shard limit alone would let 24 wait.
    pipeline = Pipeline(client, sink, FakeShaper(), settings(max_inflight_bytes=6000), decode=fake_decode)
    made.append(pipeline)
    assert pipeline.settings.pull_reservation == 750
    # Another holder has the whole budget until every shard stands in line: then the order is the queue's alone.
    assert pipeline.budget.acquire(6000, lambda: True)
    pipeline.start()
    assert wait_for(lambda: len(pipeline.budget._waiting) == 8)
    pipeline.budget.release(6000)
    peak = [0]

    def stalled() -> bool:
        peak[0] = max(peak[0], pipeline.budget.held())
        return len(sink.pending_batches()) >= 8 and len(pipeline.budget._waiting) > 0

    assert wait_for(stalled)
    pending = sink.pending_batches()
    assert 8 <= len(pending) <= 11
    assert {batch.shard_id for batch in pending} == set(range(8)), "every shard got its turn before any got a second"
    assert pipeline.budget.held() == sum(batch.memory for batch in pending) <= 6000 and peak[0] <= 6000
    while not committed_everything(client, range(8)):
        sink.complete()
        peak[0] = max(peak[0], pipeline.budget.held())
        time.sleep(0.01)
    assert sorted(sink.delivered_ids()) == [(s, i) for s in range(8) for i in range(60)]
    assert peak[0] <= 6000
    assert wait_for(lambda: pipeline.budget.held() == 0)
    assert all(batch.events == [] for batch in sink.delivered_batches), "delivered events are dropped"


def test_empty_and_failed_pulls_give_their_reservation_back(made):
    client = FakeSlsClient(shard_count=2)
    client.append(0, 5)
    client.fail("pull_logs", RetryableError("SLS is down", status=503), RetryableError("still down", status=503))
    client.assign(CONSUMER, {0, 1})
    sink = FakeSink(auto=True)
    pipeline = start_pipeline(made, client, sink, error_backoff_cap=0.2, idle_poll_min=0.2, idle_poll_max=0.2)
    assert wait_for(lambda: committed_everything(client, (0,)))
    # Two failed pulls, one delivered shard and shard 1's empty pulls: a leaked reservation would never come back.
    assert wait_for(lambda: pipeline.budget.held() == 0)


# ---------------------------------------------------------------- idle shards


def test_idle_shards_park_with_one_poller_and_wake_when_data_arrives(made):
    client = FakeSlsClient(shard_count=4)
    client.assign(CONSUMER, {0, 1, 2, 3})
    sink = FakeSink(auto=True)
    pipeline = start_pipeline(made, client, sink)
    assert wait_for(lambda: pipeline.idle_poller.parked() == 4)
    pulls = client.pull_count
    assert wait_for(lambda: client.probe_count >= 12), "the poller keeps probing the parked shards"
    assert client.pull_count == pulls, "parked shard threads do not pull"
    client.append(2, 7)
    assert wait_for(lambda: sorted(sink.delivered_ids()) == [(2, i) for i in range(7)])
    assert wait_for(lambda: committed_everything(client, (2,)))
    assert wait_for(lambda: pipeline.idle_poller.parked() == 4), "shard 2 parks again once it is drained"


def test_a_failed_probe_hands_the_shard_back_to_its_own_retry_loop(made):
    client = FakeSlsClient(shard_count=1)
    client.assign(CONSUMER, {0})
    sink = FakeSink(auto=True)
    pipeline = start_pipeline(made, client, sink)
    assert wait_for(lambda: pipeline.idle_poller.parked() == 1)
    pulls = client.pull_count
    client.fail("has_data", RetryableError("SLS is down", status=503))
    assert wait_for(lambda: client.pull_count > pulls), "woken by the failed probe, the thread pulls itself"
    assert wait_for(lambda: pipeline.idle_poller.parked() == 1)


def test_a_parked_shard_is_released_on_revoke_and_the_pipeline_stops_promptly(made):
    client = FakeSlsClient(shard_count=2)
    client.append(0, 3)
    client.assign(CONSUMER, {0, 1})
    sink = FakeSink(auto=True)
    pipeline = start_pipeline(made, client, sink)
    assert wait_for(lambda: committed_everything(client, (0,)) and pipeline.idle_poller.parked() == 2)
    client.assign(CONSUMER, {1})
    assert wait_for(lambda: 0 not in pipeline.consumers() and pipeline.idle_poller.parked() == 1)
    started = time.monotonic()
    pipeline.stop(timeout=10)
    assert time.monotonic() - started < 5
    assert not any(consumer.is_alive() for consumer in pipeline.consumers().values())
