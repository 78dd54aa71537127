"""Runtime: consumer names, the consumer lock (also across processes), the orphan watch, signals, retries after
configuration errors, and the ordered shutdown of a running pipeline."""

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from sls_forwarder.errors import ConfigError
from sls_forwarder.pipeline import Pipeline, PipelineSettings
from sls_forwarder.runtime import ConsumerLock, OrphanWatch, RuntimeOptions, consumer_name, install_signal_handlers, run
from tests.unit.fakes import FakeShaper, FakeSink, FakeSlsClient, fake_decode, wait_for

CONSUMER = "cg-host-input"
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX signals and flock")


# ---------------------------------------------------------------- consumer names

def test_consumer_name_joins_group_server_input_and_worker():
    assert consumer_name("cg", "hf-01", "waf") == "cg-hf-01-waf"
    assert consumer_name("cg", "hf-01", "waf", worker=2) == "cg-hf-01-waf-2"
    assert consumer_name("cg", "hf-01", "waf", worker="") == "cg-hf-01-waf"


def test_consumer_name_is_sanitised_to_what_sls_accepts():
    name = consumer_name("cg", "Splunk HF (Hangzhou)", "in/put:1")
    assert name == "cg-Splunk_HF_Hangzhou_-in_put_1"


def test_long_consumer_names_are_shortened_but_stay_distinct():
    first = consumer_name("cg", "h" * 200, "a")
    second = consumer_name("cg", "h" * 200, "b")
    assert len(first) == len(second) == 128
    assert first != second


def test_consumer_name_rejects_empty_parts():
    with pytest.raises(ValueError):
        consumer_name("cg", "", "input")


# ---------------------------------------------------------------- lock

def test_a_second_holder_cannot_take_the_lock_until_it_is_released(tmp_path):
    first = ConsumerLock(str(tmp_path / "checkpoints"), CONSUMER)
    second = ConsumerLock(str(tmp_path / "checkpoints"), CONSUMER)
    assert first.try_acquire()
    assert not second.try_acquire()
    assert second.holder_pid() == str(os.getpid())
    first.release()
    assert second.try_acquire()
    second.release()


def test_acquire_waits_for_the_previous_run_then_takes_the_lock(tmp_path):
    previous = ConsumerLock(str(tmp_path), CONSUMER)
    assert previous.try_acquire()
    releaser = threading.Timer(0.2, previous.release)
    releaser.start()
    try:
        assert ConsumerLock(str(tmp_path), CONSUMER).acquire(threading.Event(), wait=10, retry_interval=10)
    finally:
        releaser.join()


def test_acquire_keeps_waiting_past_the_bound_and_gives_up_only_on_stop(tmp_path, caplog):
    holder = ConsumerLock(str(tmp_path), CONSUMER)
    assert holder.try_acquire()
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    with caplog.at_level(logging.ERROR, logger="sls_forwarder.runtime"):
        assert ConsumerLock(str(tmp_path), CONSUMER).acquire(stop, wait=0.1, retry_interval=0.1) is False
    busy = [r for r in caplog.records if "action=consumer_lock_busy" in r.getMessage()]
    assert busy and all(r.exc_info is None for r in busy)
    holder.release()


@posix_only
def test_the_lock_excludes_another_process_and_dies_with_it(tmp_path):
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from sls_forwarder.runtime import ConsumerLock
        lock = ConsumerLock(sys.argv[2], sys.argv[3])
        print("locked" if lock.try_acquire() else "busy", flush=True)
        sys.stdin.read()
    """)
    bin_dir = os.path.join(os.path.dirname(__file__), "..", "..", "package", "bin")
    child = subprocess.Popen([sys.executable, "-c", script, bin_dir, str(tmp_path), CONSUMER],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        mine = ConsumerLock(str(tmp_path), CONSUMER)
        assert not mine.try_acquire()
        assert mine.holder_pid() == str(child.pid)
        child.kill()  # a crash: the OS drops the lock
        child.wait(10)
        assert mine.try_acquire()
        mine.release()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdin.close()
        child.stdout.close()


# ---------------------------------------------------------------- orphan watch

@posix_only
def test_orphan_watch_sets_stop_when_the_parent_changes():
    parents = iter([100, 100, 100, 1])
    stop = threading.Event()
    watch = OrphanWatch(stop, interval=0.01, parent_pid=lambda: next(parents, 1))
    watch.start()
    try:
        assert stop.wait(5)
    finally:
        watch.close()


@posix_only
def test_orphan_watch_stays_quiet_while_the_parent_lives():
    stop = threading.Event()
    watch = OrphanWatch(stop, interval=0.01, parent_pid=lambda: 100)
    watch.start()
    assert not stop.wait(0.2)
    watch.close()


# ---------------------------------------------------------------- run

class Harness:
    """Builds pipelines over one shared fake logstore, as the modinput layer would."""

    def __init__(self, shards=2, groups=30):
        self.journal = []
        self.client = FakeSlsClient(shard_count=shards, journal=self.journal)
        for shard in range(shards):
            self.client.append(shard, groups)
        self.client.assign(CONSUMER, set(range(shards)))
        self.sinks = []
        self.pipelines = []
        self.build_errors = []

    def build(self, stop_pulling):
        if self.build_errors:
            raise self.build_errors.pop(0)
        sink = FakeSink(auto=True, journal=self.journal)
        settings = PipelineSettings(logstore="store", consumer_group="cg", consumer=CONSUMER, start_position="begin",
                                    pull_count=10, heartbeat_interval=0.1, checkpoint_interval=0.05,
                                    idle_poll_min=0.01, idle_poll_max=0.05, error_backoff_cap=0.05)
        pipeline = Pipeline(self.client, sink, FakeShaper(), settings, stop_event=stop_pulling, decode=fake_decode)
        self.sinks.append(sink)
        self.pipelines.append(pipeline)
        return pipeline

    def delivered(self):
        return sum(len(s.delivered) for s in self.sinks)


def options(tmp_path, **overrides):
    values = dict(checkpoint_dir=str(tmp_path), consumer=CONSUMER, retry_interval=0.05, shutdown_timeout=10,
                  lock_wait=5, orphan_check_interval=0, handle_signals=False)
    values.update(overrides)
    return RuntimeOptions(**values)


def run_in_thread(harness, opts, stop):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", run(harness.build, opts, stop)))
    thread.start()
    return thread, result


def test_run_delivers_then_shuts_down_in_order_and_releases_the_lock(tmp_path):
    harness = Harness()
    stop = threading.Event()
    thread, result = run_in_thread(harness, options(tmp_path), stop)
    try:
        assert wait_for(lambda: harness.delivered() == 60)
    finally:
        stop.set()
        thread.join(30)
    assert result == {"code": 0}
    journal = harness.journal
    close_at = journal.index(("sink_close",))
    final = max(i for i, e in enumerate(journal) if e[0] == "heartbeat")
    assert journal[final][2] == []
    assert all(i < final for i, e in enumerate(journal) if e[0] == "commit")
    assert harness.client.committed_index(0) == 30 and harness.client.committed_index(1) == 30
    assert close_at < final
    assert ConsumerLock(str(tmp_path), CONSUMER).try_acquire(), "lock released at exit"


def test_config_error_at_start_is_one_line_per_attempt_then_recovers(tmp_path, caplog):
    harness = Harness()
    bad_key = ConfigError("AccessKey secret is wrong", code="SignatureNotMatch", status=401, request_id="r1")
    harness.client.fail("list_consumer_groups", bad_key, bad_key, bad_key)
    stop = threading.Event()
    with caplog.at_level(logging.INFO, logger="sls_forwarder"):
        thread, result = run_in_thread(harness, options(tmp_path), stop)
        try:
            assert wait_for(lambda: harness.delivered() == 60)
        finally:
            stop.set()
            thread.join(30)
    errors = [r for r in caplog.records if "action=config_error" in r.getMessage()]
    assert len(errors) == 3
    assert all(r.levelno == logging.ERROR and r.exc_info is None for r in errors)
    assert "code=SignatureNotMatch" in errors[0].getMessage() and "AccessKey secret is wrong" in errors[0].getMessage()
    # Each attempt builds a new pipeline, so settings fixed in the meantime (the key here) are read again.
    assert len(harness.pipelines) == 4
    assert all(p.stopping() for p in harness.pipelines[:3]), "failed pipelines are shut down, not leaked"
    assert any("action=input_recovered" in r.getMessage() for r in caplog.records)


def test_config_error_that_never_clears_checkpoints_nothing_and_stops_promptly(tmp_path):
    harness = Harness()
    quota = ConfigError("consumer group quota exceeded", code="ConsumerGroupQuotaExceed", status=400)
    harness.client.fail("list_consumer_groups", *[quota] * 10_000)
    stop = threading.Event()
    thread, result = run_in_thread(harness, options(tmp_path, retry_interval=0.02), stop)
    assert wait_for(lambda: len(harness.client.faults["list_consumer_groups"]) < 10_000 - 5)
    stop.set()
    thread.join(30)
    assert result == {"code": 0}
    assert harness.client.entries("commit") == [] and harness.client.entries("heartbeat") == []
    assert harness.sinks[0].closed


def test_config_error_while_running_rebuilds_the_pipeline(tmp_path):
    harness = Harness(shards=1, groups=0)
    revoked = ConfigError("AccessKey disabled", code="Unauthorized", status=401)
    stop = threading.Event()
    thread, result = run_in_thread(harness, options(tmp_path), stop)
    try:
        assert wait_for(lambda: harness.client.entries("heartbeat"))
        harness.client.fail("pull_logs", revoked)
        assert wait_for(lambda: len(harness.pipelines) == 2)
        harness.client.append(0, 12)
        assert wait_for(lambda: harness.client.committed_index(0) == 12)
    finally:
        stop.set()
        thread.join(30)
    assert harness.pipelines[0].stopping() and harness.sinks[0].closed


def test_a_failing_build_is_retried(tmp_path):
    harness = Harness(shards=1, groups=5)
    harness.build_errors.append(ConfigError("HEC token is invalid", code="hec:4", status=403))
    stop = threading.Event()
    thread, result = run_in_thread(harness, options(tmp_path), stop)
    try:
        assert wait_for(lambda: harness.delivered() == 5)
    finally:
        stop.set()
        thread.join(30)
    assert result == {"code": 0}


def test_run_waits_for_the_consumer_lock(tmp_path):
    harness = Harness(shards=1, groups=3)
    previous = ConsumerLock(str(tmp_path), CONSUMER)
    assert previous.try_acquire()
    stop = threading.Event()
    thread, result = run_in_thread(harness, options(tmp_path), stop)
    try:
        assert not wait_for(lambda: harness.pipelines, timeout=0.3), "no twin while the name is locked"
        previous.release()
        assert wait_for(lambda: harness.delivered() == 3)
    finally:
        stop.set()
        thread.join(30)


@posix_only
def test_sigterm_triggers_the_ordered_shutdown(tmp_path):
    harness = Harness(shards=1, groups=20)
    before = signal.getsignal(signal.SIGTERM)

    def terminate_once_delivered():
        if wait_for(lambda: harness.delivered() == 20):
            os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_delivered)
    killer.start()
    code = run(harness.build, options(tmp_path, handle_signals=True), threading.Event())
    killer.join()
    assert code == 0
    assert harness.client.committed_index(0) == 20
    assert harness.client.entries("heartbeat")[-1][2] == []
    assert signal.getsignal(signal.SIGTERM) == before


SIGNAL_WHILE_WAITING = textwrap.dedent("""
    import os, signal, sys, threading, time
    sys.path.insert(0, sys.argv[1])
    from sls_forwarder.runtime import install_signal_handlers

    stop = threading.Event()
    restore = install_signal_handlers(stop)
    # The main thread holds the Event's internal lock, as it does for a moment on each stop.wait() call, when the
    # signal arrives: a handler that takes that lock never returns.
    with stop._cond:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.3)  # the Python-level handler runs here, on the main thread
    print("stopped" if stop.wait(5) else "not stopped")
    restore()
""")


@posix_only
def test_a_signal_that_lands_while_the_main_thread_holds_the_stop_lock_still_stops(tmp_path):
    """issue 13: workers deadlocked on SIGTERM because the handler called Event.set() inside stop.wait()."""
    bin_dir = os.path.join(os.path.dirname(__file__), "..", "..", "package", "bin")
    script = tmp_path / "signal_while_waiting.py"
    script.write_text(SIGNAL_WHILE_WAITING)
    try:
        done = subprocess.run([sys.executable, str(script), os.path.abspath(bin_dir)], capture_output=True,
                              text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the signal handler deadlocked on the stop event's lock")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped"


@posix_only
def test_signal_handlers_restore_the_previous_wakeup_fd_and_handlers():
    previous = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(previous)
    before = signal.getsignal(signal.SIGINT)
    stop = threading.Event()
    restore = install_signal_handlers(stop)
    restore()
    assert signal.set_wakeup_fd(previous) == previous
    assert signal.getsignal(signal.SIGINT) == before
    assert not stop.is_set()
