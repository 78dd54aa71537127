"""The built add-on with ``workers = 2``: one input as two consumer processes under a supervisor (issue 7).

Stream events travel worker -> supervisor -> splunkd's stdout; HEC events go from the workers straight to HEC.
"""

from __future__ import annotations

import os
import re
import signal
from typing import Dict, Optional

import psutil
import pytest

from tests.emulators.sls.datagen import DataSpec, mixed_spec

from .harness import GROUP, PYTHONS, AddonEnv, wait_until

WORKER_CONSUMERS = {f"{GROUP}-hf1-prod-0", f"{GROUP}-hf1-prod-1"}
posix_only = pytest.mark.skipif(os.name == "nt", reason="kill -9 of a worker")


def worker_pid(env: AddonEnv, index: int, name: str = "prod") -> Optional[int]:
    """The pid a running worker wrote into its consumer lock file, if that process is alive."""
    path = os.path.join(env.checkpoint_dir, f"{GROUP}-hf1-{name}-{index}.lock")
    try:
        with open(path) as handle:
            pid = int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE else None


def worker_pids(env: AddonEnv) -> Dict[int, Optional[int]]:
    return {index: worker_pid(env, index) for index in (0, 1)}


def both_workers_own_shards(env: AddonEnv) -> bool:
    return set(env.owners().values()) - {""} == WORKER_CONSUMERS


def assert_clean_logs(env: AddonEnv, stderr: str) -> None:
    supervisor_log = env.log_text("prod")
    assert "action=supervisor_started workers=2" in supervisor_log
    assert "action=supervisor_stopped" in supervisor_log
    for index in (0, 1):
        assert "action=events_ingested modular_input_name=aliyun_sls://prod" in env.log_text(f"prod-{index}")
    for text in (stderr, supervisor_log, env.log_text("prod-0"), env.log_text("prod-1")):
        assert "Traceback" not in text


@pytest.mark.parametrize("python_label", sorted(PYTHONS), ids=lambda label: f"py{label}")
def test_two_workers_stream_every_event_once_through_the_supervisor(python_label: str) -> None:
    with AddonEnv(PYTHONS[python_label]) as env:
        spec = mixed_spec(seed=61, event_count=4000, logs_per_group=25, non_utf8_every=89, large_every=700,
                          large_size=150_000)
        env.create_logstore(shards=4)
        with env.start_input("prod", workers=2) as running:
            # Data arrives once the group is balanced, so each worker delivers (and commits) its own shards.
            wait_until(lambda: both_workers_own_shards(env), timeout=60, message="both workers to own shards")
            env.load(spec)
            wait_until(lambda: len(running.events) >= spec.event_count and env.fully_checkpointed(),
                       timeout=120, message="all events and final checkpoints")
            pids = worker_pids(env)
            assert all(pids.values()), pids
            assert running.pid not in pids.values()
            returncode = running.terminate(timeout=60)
        assert returncode == 0 and not running.killed, running.stderr_text()[-2000:]
        assert not any(psutil.pid_exists(pid) for pid in pids.values()), "workers outlived the supervisor"
        assert env.fully_checkpointed(), "the shutdown moved a checkpoint off the end"
        assert {point["consumer"] for point in env.checkpoints().values()} == WORKER_CONSUMERS
        result = env.compare(spec.event_ids(), env.stream_ids(running))
        assert result.missing == set() and result.duplicates == 0, result
        assert running.protocol_errors == [] and running.stream_closed
        assert {event["stanza"] for event in running.events} == {"aliyun_sls://prod"}
        assert_clean_logs(env, running.stderr_text())


def test_two_workers_post_to_hec_themselves() -> None:
    with AddonEnv(hec_ack=True) as env:
        env.add_hec_destination("hec1", use_ack=True)
        spec = DataSpec(kind="actiontrail", seed=71, event_count=3000, logs_per_group=30)
        env.create_logstore(shards=4)
        with env.start_input("prod", workers=2, delivery="hec", hec_destination="hec1",
                             max_inflight_mb=96) as running:
            wait_until(lambda: both_workers_own_shards(env), timeout=60, message="both workers to own shards")
            env.load(spec)
            wait_until(lambda: len(env.hec.events()) >= spec.event_count and env.fully_checkpointed(),
                       timeout=120, message="all events at HEC and final checkpoints")
            assert running.terminate(timeout=60) == 0, running.stderr_text()[-2000:]
        assert not running.killed
        result = env.compare(spec.event_ids(), env.hec_ids())
        assert result.missing == set() and result.duplicates == 0, result
        assert running.events == [], "with HEC the supervisor writes no stream"
        assert env.hec.pending_acks() == 0
        assert {point["consumer"] for point in env.checkpoints().values()} == WORKER_CONSUMERS
        for worker in ("prod-0", "prod-1"):
            assert re.search(r"memory_budget_mb=48\b", env.log_text(worker)), "each worker gets half the budget"
        assert_clean_logs(env, running.stderr_text())


@posix_only
def test_a_killed_worker_is_restarted_and_nothing_is_missing() -> None:
    # Small groups and slow pulls keep data flowing when the worker is killed.
    first = DataSpec(kind="slb_access", seed=81, event_count=8000, logs_per_group=1, id_prefix="a-")
    second = DataSpec(kind="slb_access", seed=82, event_count=1500, logs_per_group=20, id_prefix="b-")
    with AddonEnv(PYTHONS.get("3.9")) as env:
        env.load(first, shards=4)
        env.sls.faults.latency = 0.5
        with env.start_input("prod", workers=2) as running:
            wait_until(lambda: both_workers_own_shards(env) and len(running.events) > 0, timeout=60,
                       message="both workers consuming")
            victim = worker_pid(env, 1)
            assert victim is not None
            os.kill(victim, signal.SIGKILL)
            assert len(running.events) < first.event_count, "the kill did not land mid-stream"
            env.sls.faults.latency = 0.0
            wait_until(lambda: worker_pid(env, 1) not in (None, victim), timeout=60,
                       message="the supervisor to restart worker 1")
            env.load(second)
            wait_until(lambda: env.compare(first.event_ids() | second.event_ids(),
                                           env.stream_ids(running)).missing == set() and env.fully_checkpointed(),
                       timeout=120, message="every event after the restart")
            survivor = worker_pid(env, 0)
            assert running.terminate(timeout=60) == 0, running.stderr_text()[-2000:]
        # The killed worker's unacknowledged batches may arrive twice (at-least-once); none may be missing.
        result = env.compare(first.event_ids() | second.event_ids(), env.stream_ids(running))
        assert result.missing == set(), result
        assert running.protocol_errors == [] and running.stream_closed
        supervisor_log = env.log_text("prod")
        assert f"action=worker_exited worker=1 pid={victim} returncode=-9" in supervisor_log
        assert "action=worker_exited worker=0" not in supervisor_log, "the other worker was disturbed"
        assert survivor is not None and survivor != victim
        assert {point["consumer"] for point in env.checkpoints().values()} <= WORKER_CONSUMERS


def test_sigterm_mid_stream_exits_0_and_a_restart_resumes_without_gaps() -> None:
    # One log per group and slow answers: each shard needs several pulls, so the stop lands mid-stream.
    spec = DataSpec(kind="oss_access", seed=91, event_count=12000, logs_per_group=1)
    with AddonEnv() as env:
        env.load(spec, shards=4)
        env.sls.faults.latency = 0.3
        with env.start_input("prod", workers=2) as first:
            wait_until(lambda: len(first.events) > 0, timeout=60, message="the first events")
            assert first.terminate(timeout=60) == 0, first.stderr_text()[-2000:]
        assert not first.killed and first.protocol_errors == [] and first.stream_closed
        delivered_first = set(env.stream_ids(first))
        assert len(delivered_first) < spec.event_count, "the stop did not land mid-stream"
        env.sls.faults.latency = 0.0
        # Whatever is checkpointed was delivered: the second run starts from the checkpoints and fills the rest.
        with env.start_input("prod", workers=2) as second:
            wait_until(lambda: both_workers_own_shards(env), timeout=60, message="the second run's workers")
            wait_until(lambda: set(env.stream_ids(second)) | delivered_first >= spec.event_ids()
                       and env.fully_checkpointed(), timeout=120, message="the rest after the restart")
            assert second.terminate(timeout=60) == 0
        # A graceful stop lets the workers drain through the supervisor and commit, so nothing is read twice.
        result = env.compare(spec.event_ids(), env.stream_ids(first) + env.stream_ids(second))
        assert result.missing == set() and result.duplicates == 0, result


def test_workers_bootstrap_the_local_hec_token_together_without_a_configuration_error() -> None:
    """Three workers create the add-on's own HEC token at the same moment; the ones that lose the race read it."""
    spec = DataSpec(kind="actiontrail", seed=91, event_count=900, logs_per_group=10)
    with AddonEnv() as env:
        env.load(spec, shards=3)
        with env.start_input("prod", delivery="hec", workers=3, retry_interval=120) as running:
            wait_until(lambda: len(env.hec.events()) >= spec.event_count and env.fully_checkpointed(),
                       timeout=60, message="every event through the local HEC")
            assert running.terminate(timeout=60) == 0
        logs = "".join(env.log_text(f"prod-{index}") for index in range(3))
        assert "action=config_error" not in logs and "Traceback" not in logs
        assert list(env.splunkd.hec_tokens()) == ["ta_aliyun_sls"]
        result = env.compare(spec.event_ids(), env.hec_ids())
        assert result.missing == set() and result.duplicates == 0
