"""Scenario 2: crash. The input is killed with SIGKILL at seeded random points, again and again, and restarted each
time. Nothing is lost; an event arrives twice only if its run was killed before its checkpoint covered it."""

from __future__ import annotations

import random
import time

from tests.emulators.sls.datagen import DataSpec
from tests.integration.harness import wait_until

from .support import ReliabilityEnv, ShardLayout, cursor_index, scaled

KILLS = scaled(6, 20)
CHUNK_EVENTS = scaled(2500, 5000)


def test_repeated_kill_9_loses_nothing(summary) -> None:
    rng = random.Random(20260601)
    chunks = [DataSpec(kind="oss_access", seed=200 + n, event_count=CHUNK_EVENTS, logs_per_group=10,
                       id_prefix=f"c{n}-") for n in range(KILLS + 1)]
    with ReliabilityEnv() as env:
        env.create_logstore(shards=4)
        layout = ShardLayout(env)
        runs = []
        replay_allowance = 0
        for round_number in range(KILLS):
            env.load(chunks[round_number])
            running = env.start_input("prod")
            runs.append(running)
            # Seeded points from "still starting" to "well into the backlog".
            time.sleep(rng.uniform(0.3, 3.0))
            assert running.running, running.stderr_text()[-2000:]
            running.kill()
            # What this run delivered past the checkpoints it left is all a restart may deliver again.
            points = env.checkpoints()
            layout.refresh()
            for event_id in env.stream_ids(running):
                shard_id, index = layout.position[event_id]
                if index >= cursor_index(str(points.get(shard_id, {}).get("checkpoint", ""))):
                    replay_allowance += 1
        env.load(chunks[-1])
        final = env.start_input("prod")
        runs.append(final)
        expected = set().union(*(chunk.event_ids() for chunk in chunks))
        wait_until(lambda: expected <= {i for run in runs for i in env.stream_ids(run)} and env.fully_checkpointed(),
                   timeout=120, message="every event after the last restart")
        assert final.terminate(timeout=30) == 0, final.stderr_text()[-2000:]
        assert final.protocol_errors == [] and final.stream_closed

    result = env.compare(expected, [i for run in runs for i in env.stream_ids(run)])
    summary(result.row(f"2 crash, kill -9 x{KILLS}"))
    assert result.missing == set(), sorted(result.missing)[:5]
    assert result.duplicates <= replay_allowance, (result, replay_allowance)
    assert sum(1 for run in runs if run.killed) == KILLS
