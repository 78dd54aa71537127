"""The unmodified official ConsumerWorker against the SLS emulator: exactly-once, rebalancing, restart,
a killed worker's takeover, consumption across a shard split."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Iterator, List

import pytest
from aliyun.log import LogClient

from tests.emulators.sls import SlsEmulator, SlsError
from tests.emulators.sls.datagen import DataSpec, load_direct, load_with_sdk
from tests.emulators.sls.testing import (  # noqa: F401 - pytest fixtures
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, PROJECT, Collector, join_leftover_threads, make_client, make_worker,
    sdk_endpoint, sdk_env, sls_emulator, stop_workers, wait_until)

LOGSTORE = "ls"
GROUP = "cg"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def workers(sdk_env: SlsEmulator) -> Iterator[List[object]]:
    """Workers a test starts; all are shut down and joined afterwards, even on failure."""
    started: List[object] = []
    yield started
    stop_workers([w for w in started if w.is_alive()])  # type: ignore[attr-defined]
    assert join_leftover_threads() is None


def _start(workers: List[object], emulator: SlsEmulator, consumer: str, collector: Collector, **kwargs: object) -> object:
    worker = make_worker(emulator, LOGSTORE, GROUP, consumer, collector, **kwargs)
    workers.append(worker)
    worker.start()  # type: ignore[attr-defined]
    return worker


def _all_checkpoints_at_end(emulator: SlsEmulator, shard_ids: List[int]) -> bool:
    try:
        checkpoints = emulator.checkpoints(PROJECT, LOGSTORE, GROUP)
    except SlsError:  # the group does not exist until a worker has started
        return False
    return all(checkpoints[s]["checkpoint"] == emulator.end_cursor(PROJECT, LOGSTORE, s) for s in shard_ids)


def _balanced(emulator: SlsEmulator, consumers: List[str], shard_count: int) -> bool:
    owners = emulator.owners(PROJECT, LOGSTORE, GROUP)
    counts = [list(owners.values()).count(c) for c in consumers]
    return sum(counts) == shard_count and max(counts) - min(counts) <= 1


def test_one_worker_consumes_every_log_of_a_multi_shard_logstore_exactly_once(
        sdk_env: SlsEmulator, workers: List[object]) -> None:
    sdk_env.create_logstore(PROJECT, LOGSTORE, shard_count=4)
    expected = load_direct(sdk_env, PROJECT, LOGSTORE, DataSpec(event_count=2000, logs_per_group=10, seed=11))
    collector = Collector()
    _start(workers, sdk_env, "w1", collector)
    wait_until(lambda: collector.seen() >= expected, 30, "every event consumed")
    wait_until(lambda: _all_checkpoints_at_end(sdk_env, [0, 1, 2, 3]), 15, "checkpoints at the end cursors")
    assert collector.seen() == expected and collector.duplicates() == {}
    checkpoints = sdk_env.checkpoints(PROJECT, LOGSTORE, GROUP)
    assert {c["consumer"] for c in checkpoints.values()} == {"w1"}
    assert all(c["updateTime"] > 10 ** 15 for c in checkpoints.values())  # microseconds
    assert set(sdk_env.owners(PROJECT, LOGSTORE, GROUP).values()) == {"w1"}


def test_two_then_three_workers_rebalance_without_gaps(sdk_env: SlsEmulator, workers: List[object]) -> None:
    sdk_env.create_logstore(PROJECT, LOGSTORE, shard_count=6)
    client = make_client(sdk_env)
    expected = load_direct(sdk_env, PROJECT, LOGSTORE, DataSpec(event_count=600, seed=21))
    collector = Collector()
    stop_producing = threading.Event()
    produced: List[set] = []

    def produce() -> None:  # data keeps arriving, through the SDK, while shards move
        batch = 0
        while not stop_producing.wait(0.3):
            spec = DataSpec(event_count=40, seed=22, id_prefix="live%03d-" % batch)
            produced.append(load_with_sdk(client, PROJECT, LOGSTORE, spec))
            batch += 1

    producer = threading.Thread(target=produce, name="sls-test-producer")
    producer.start()
    try:
        _start(workers, sdk_env, "w1", collector, force_checkpoint=False)
        wait_until(lambda: len(collector.seen()) >= 300, 20, "w1 consuming")
        _start(workers, sdk_env, "w2", collector, force_checkpoint=False)
        wait_until(lambda: _balanced(sdk_env, ["w1", "w2"], 6), 20, "3 shards each for w1 and w2")
        _start(workers, sdk_env, "w3", collector, force_checkpoint=False)
        wait_until(lambda: _balanced(sdk_env, ["w1", "w2", "w3"], 6), 20, "2 shards each for w1, w2, w3")
    finally:
        stop_producing.set()
        producer.join()
    for batch in produced:
        expected |= batch
    wait_until(lambda: collector.seen() >= expected, 30, "every event consumed after rebalancing")
    assert collector.seen() == expected
    assert collector.duplicates() == {}, "a shard was consumed by two workers at once"
    assert all(collector.shards_by_consumer[c] for c in ("w1", "w2", "w3"))


def test_restart_resumes_from_the_server_checkpoint(sdk_env: SlsEmulator, workers: List[object]) -> None:
    sdk_env.create_logstore(PROJECT, LOGSTORE, shard_count=3)
    first = load_direct(sdk_env, PROJECT, LOGSTORE, DataSpec(event_count=300, seed=31))
    before = Collector()
    worker = _start(workers, sdk_env, "w1", before, force_checkpoint=False)
    wait_until(lambda: before.seen() >= first, 20, "first data set consumed")
    stop_workers([worker])  # processor.shutdown() commits the final checkpoints
    assert _all_checkpoints_at_end(sdk_env, [0, 1, 2])
    second = load_direct(sdk_env, PROJECT, LOGSTORE, DataSpec(event_count=300, seed=32))
    sdk_env.advance_clock(10)  # no "leave" call exists: let the stopped consumer time out now
    after = Collector()
    _start(workers, sdk_env, "w2", after)
    wait_until(lambda: after.seen() >= second, 20, "second data set consumed")
    assert after.seen() == second and after.duplicates() == {}
    assert before.seen() == first


def test_killed_worker_shards_are_taken_over_after_the_timeout(sdk_env: SlsEmulator, workers: List[object]) -> None:
    sdk_env.create_logstore(PROJECT, LOGSTORE, shard_count=2)
    first = load_direct(sdk_env, PROJECT, LOGSTORE, DataSpec(event_count=200, seed=41))
    with tempfile.NamedTemporaryFile("r", suffix=".ids", delete=False) as out:
        out_path = out.name
    env = dict(os.environ, PYTHONPATH=ROOT)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.sls.sdk_worker", "--endpoint", sdk_endpoint(sdk_env),
         "--access-key-id", ACCESS_KEY_ID, "--access-key-secret", ACCESS_KEY_SECRET, "--project", PROJECT,
         "--logstore", LOGSTORE, "--group", GROUP, "--consumer", "doomed", "--out", out_path],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _all_checkpoints_at_end(sdk_env, [0, 1]), 30, "the doomed worker committed everything")
        process.send_signal(signal.SIGKILL)  # no shutdown, no final checkpoint, no more heartbeats
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    with open(out_path, encoding="utf-8") as handle:
        doomed_ids = {line.split()[1] for line in handle if line.strip()}
    os.unlink(out_path)
    assert doomed_ids == first
    second = load_direct(sdk_env, PROJECT, LOGSTORE, DataSpec(event_count=200, seed=42))
    collector = Collector()
    _start(workers, sdk_env, "heir", collector)
    wait_until(lambda: set(sdk_env.owners(PROJECT, LOGSTORE, GROUP).values()) == {"heir"}, 15,
               "shards taken over once the dead consumer timed out")
    assert "doomed" not in sdk_env.consumers(PROJECT, LOGSTORE, GROUP)
    wait_until(lambda: collector.seen() >= second, 20, "the heir consumed the new data")
    assert collector.seen() == second, "the heir resumed from the dead worker's checkpoints"
    log = sdk_env.request_log
    last_doomed_heartbeat = max(r.time for r in log if r.api == "heartbeat" and r.params["consumer"] == "doomed")
    first_heir_pull = min(r.time for r in log if r.api == "pull_logs" and "-heir" in r.user_agent)
    timeout = {g["name"]: g["timeout"] for g in sdk_env.consumer_groups(PROJECT, LOGSTORE)}[GROUP]
    assert timeout == 2  # the SDK sets 2 * heartbeat_interval
    assert first_heir_pull - last_doomed_heartbeat > timeout - 0.05, "shards moved before the timeout"


def test_consumption_across_a_shard_split(sdk_env: SlsEmulator, workers: List[object]) -> None:
    sdk_env.create_logstore(PROJECT, LOGSTORE, shard_count=2)
    client: LogClient = make_client(sdk_env)
    before = load_direct(sdk_env, PROJECT, LOGSTORE, DataSpec(event_count=400, logs_per_group=2, seed=51),
                         shard_ids=[0])
    sdk_env.faults.split_after_pulls(PROJECT, LOGSTORE, 0, pulls=5)
    collector = Collector()
    _start(workers, sdk_env, "w1", collector, max_fetch_log_group_size=10)
    wait_until(lambda: sdk_env.faults.pending_splits() == 0, 20, "shard 0 split while being consumed")
    shards = {s["shardID"]: s["status"] for s in sdk_env.shards(PROJECT, LOGSTORE)}
    assert shards == {0: "readonly", 1: "readwrite", 2: "readwrite", 3: "readwrite"}
    after = load_with_sdk(client, PROJECT, LOGSTORE, DataSpec(event_count=90, seed=52),
                          hash_keys=["1" + "0" * 31, "7" + "0" * 31, "c" + "0" * 31])
    assert [sdk_env.log_group_count(PROJECT, LOGSTORE, s) for s in (1, 2, 3)] == [3, 3, 3]
    wait_until(lambda: collector.seen() >= before | after, 30, "parent and children consumed")
    assert collector.seen() == before | after and collector.duplicates() == {}
    # The finished readonly parent is "over": checkpoint at its end, no longer assigned to anyone.
    wait_until(lambda: sdk_env.owners(PROJECT, LOGSTORE, GROUP)[0] == "", 15, "parent released once over")
    assert sdk_env.checkpoints(PROJECT, LOGSTORE, GROUP)[0]["checkpoint"] == sdk_env.end_cursor(PROJECT, LOGSTORE, 0)
    assert {2, 3} <= collector.shards_by_consumer["w1"]
