"""Scenario 3: failover. Three processes share a consumer group. One is killed (-9): its shards move to the others
within about two heartbeat intervals (the group timeout) plus one heartbeat. Then another stops gracefully (SIGTERM):
it commits its checkpoints first, so the next owner resumes exactly where it stopped (no duplicates). Issue 6 also
asks that those shards move before the group timeout; SLS has no leave call, see the xfail test below."""

from __future__ import annotations

import time
from typing import Set

import pytest

from tests.emulators.sls.datagen import DataSpec
from tests.integration.harness import GROUP, wait_until

from .support import ReliabilityEnv, ShardLayout, cursor_index

HEARTBEAT = 3                # seconds; the group timeout is twice this
GROUP_TIMEOUT = 2 * HEARTBEAT
SLACK = 5.0                  # a loaded 2-core machine


def consumer(name: str) -> str:
    return f"{GROUP}-hf1-{name}"


def test_killed_and_stopped_consumers_hand_their_shards_over(summary) -> None:
    chunks = [DataSpec(kind="slb_access", seed=300 + n, event_count=3000, logs_per_group=10, id_prefix=f"f{n}-")
              for n in range(4)]
    with ReliabilityEnv() as env:
        env.create_logstore(shards=6)
        layout = ShardLayout(env)
        runs = {name: env.start_input(name, heartbeat_interval=HEARTBEAT) for name in ("hf_a", "hf_b", "hf_c")}

        def owned_by(name: str) -> Set[int]:
            return {shard for shard, owner in env.owners().items() if owner == consumer(name)}

        wait_until(lambda: all(len(owned_by(name)) == 2 for name in runs), timeout=60,
                   message="three consumers with two shards each")
        env.load(chunks[0])
        wait_until(env.fully_checkpointed, timeout=60, message="the first chunk")

        # --- kill -9: the shards wait for the group timeout, then the survivors take them on their next heartbeat.
        killed_shards = owned_by("hf_a")
        env.load(chunks[1])
        runs["hf_a"].kill()
        killed_at = time.monotonic()
        wait_until(lambda: killed_shards <= owned_by("hf_b") | owned_by("hf_c"), timeout=60,
                   interval=0.05, message="the killed consumer's shards to move")
        takeover_seconds = time.monotonic() - killed_at
        assert takeover_seconds <= GROUP_TIMEOUT + HEARTBEAT + SLACK, takeover_seconds
        env.load(chunks[2])
        wait_until(env.fully_checkpointed, timeout=60, message="the killed consumer's shards to be consumed")

        # --- SIGTERM: checkpoints first, then the consumer leaves; the next owner resumes exactly there.
        stopped_shards = owned_by("hf_b")
        env.load(chunks[3])
        wait_until(lambda: any(event_id.startswith("f3-") for event_id in env.stream_ids(runs["hf_b"])),
                   timeout=60, message="the stopping consumer to be busy with new data")
        env.sls.clear_request_log()
        terminated_at = time.monotonic()
        assert runs["hf_b"].terminate(timeout=30) == 0, runs["hf_b"].stderr_text()[-2000:]
        points = env.checkpoints()
        layout.refresh()
        for event_id in env.stream_ids(runs["hf_b"]):
            shard_id, index = layout.position[event_id]
            if shard_id in stopped_shards:
                assert index < cursor_index(str(points[shard_id]["checkpoint"])), \
                    f"{event_id} was delivered by the stopping consumer but not checkpointed before it exited"
        requests = [r for r in env.sls.request_log if r.params.get("consumer") == consumer("hf_b")]
        # A commit at shutdown (none if the interval commit already had everything) precedes the last heartbeat.
        commits = [r.time for r in requests if r.api == "update_checkpoint"]
        last_heartbeat = max(r.time for r in requests if r.api == "heartbeat")
        assert max(commits, default=0.0) <= last_heartbeat, "the last heartbeat went out before the last commit"
        wait_until(lambda: stopped_shards <= owned_by("hf_c"), timeout=60, interval=0.05,
                   message="the stopped consumer's shards to move")
        handover_seconds = time.monotonic() - terminated_at
        assert handover_seconds <= GROUP_TIMEOUT + HEARTBEAT + SLACK, handover_seconds
        wait_until(env.fully_checkpointed, timeout=60, message="the survivor to finish everything")
        assert runs["hf_c"].terminate(timeout=30) == 0

    expected = set().union(*(chunk.event_ids() for chunk in chunks))
    result = env.compare(expected, [i for run in runs.values() for i in env.stream_ids(run)])
    summary(result.row("3 failover, kill -9 + SIGTERM"))
    assert result.missing == set(), sorted(result.missing)[:5]
    # Only the killed consumer's uncommitted tail can arrive twice: the graceful stop committed all it delivered.
    killed_delivered = len(env.stream_ids(runs["hf_a"]))
    assert result.duplicates <= killed_delivered, result
    assert runs["hf_a"].killed and not runs["hf_b"].killed
    print(f"takeover after kill -9: {takeover_seconds:.1f} s, after SIGTERM: {handover_seconds:.1f} s")


@pytest.mark.xfail(strict=True, reason="issue 6 asks that a SIGTERM'd consumer's shards move before the group timeout; "
                   "SLS has no leave call and the final heartbeat [] registers the consumer again, so the server "
                   "re-grants it its share until the timeout (reference sls-wire-protocol.md 8.1/8.4)")
def test_graceful_stop_moves_shards_before_the_group_timeout() -> None:
    with ReliabilityEnv() as env:
        env.create_logstore(shards=2)
        runs = {name: env.start_input(name, heartbeat_interval=HEARTBEAT) for name in ("hf_a", "hf_b")}
        wait_until(lambda: set(env.owners().values()) == {consumer("hf_a"), consumer("hf_b")}, timeout=60,
                   message="one shard each")
        terminated_at = time.monotonic()
        assert runs["hf_b"].terminate(timeout=30) == 0
        wait_until(lambda: set(env.owners().values()) == {consumer("hf_a")}, timeout=60, interval=0.05,
                   message="hf_a to own both shards")
        moved_after = time.monotonic() - terminated_at
        assert runs["hf_a"].terminate(timeout=30) == 0
    assert moved_after < GROUP_TIMEOUT, f"the shard moved {moved_after:.1f} s after SIGTERM, the group timeout"
