"""Scenario 4: a shard splits while it is being consumed, and its children later merge. Nothing is lost, each shard's
events arrive in the order they sit in the shard, and a parent's events all arrive before any of its children's."""

from __future__ import annotations

from typing import Dict, List, Set, Tuple

from tests.emulators.sls.datagen import DataSpec
from tests.integration.harness import LOGSTORE, PROJECT, wait_until

from .support import ReliabilityEnv, ShardLayout


def shard_ids(env: ReliabilityEnv) -> Set[int]:
    return {shard["shardID"] for shard in env.sls.shards(PROJECT, LOGSTORE)}


def test_split_and_merge_keep_order_and_lose_nothing(summary) -> None:
    # One log per group, so a shard's backlog needs several pulls (1000 groups each) and the split lands mid-shard.
    first = DataSpec(kind="actiontrail", seed=401, event_count=4000, logs_per_group=1, id_prefix="s1-")
    second = DataSpec(kind="actiontrail", seed=402, event_count=3000, logs_per_group=1, id_prefix="s2-")
    third = DataSpec(kind="actiontrail", seed=403, event_count=2000, logs_per_group=1, id_prefix="s3-")
    with ReliabilityEnv() as env:
        env.load(first, shards=2)
        # Armed before the input starts: shard 0 splits right after the input's first pull from it returned data.
        env.sls.faults.split_after_pulls(PROJECT, LOGSTORE, 0, pulls=1)
        running = env.start_input("prod")
        wait_until(lambda: env.sls.faults.pending_splits() == 0, timeout=60, message="the split of shard 0")
        split_children = shard_ids(env) - {0, 1}
        assert len(split_children) == 2
        env.load(second)  # readwrite shards: 1 and the two children
        left, right = sorted(split_children)
        env.sls.merge_shard(PROJECT, LOGSTORE, left)  # while the children may still be read
        merged = shard_ids(env) - {0, 1} - split_children
        assert len(merged) == 1
        env.load(third)
        expected = first.event_ids() | second.event_ids() | third.event_ids()
        wait_until(lambda: expected <= set(env.stream_ids(running)) and env.fully_checkpointed(), timeout=120,
                   message="every event and every shard checkpointed at its end")
        assert running.terminate(timeout=30) == 0, running.stderr_text()[-2000:]
        layout = ShardLayout(env).refresh()
        log = env.log_text("prod")

    arrived = env.stream_ids(running)
    result = env.compare(expected, arrived)
    summary(result.row("4 shard split + merge"))
    assert result.missing == set() and result.duplicates == 0, result
    first_arrival: Dict[int, int] = {}
    last_arrival: Dict[int, int] = {}
    by_shard: Dict[int, List[Tuple[int, str]]] = {}
    for order, event_id in enumerate(arrived):
        shard_id, index = layout.position[event_id]
        by_shard.setdefault(shard_id, []).append((index, event_id))
        first_arrival.setdefault(shard_id, order)
        last_arrival[shard_id] = order
    for shard_id, positions in by_shard.items():
        assert positions == sorted(positions), f"shard {shard_id} arrived out of order"
    (merged_id,) = merged
    for parent, children in ((0, split_children), (left, {merged_id}), (right, {merged_id})):
        for child in children:
            if child in first_arrival and parent in last_arrival:
                assert last_arrival[parent] < first_arrival[child], f"child {child} began before parent {parent} ended"
    assert set(by_shard) == {0, 1} | split_children | merged, "every shard should have carried data"
    assert "Traceback" not in log
