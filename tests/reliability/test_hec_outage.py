"""Scenario 1: HEC outage. HEC answers 503 code 9 mid-stream, then drops connections, then hands out acks that never
turn true (so requests are resent after the ack timeout). Nothing is lost, duplicates come only from the resent
requests, and no checkpoint ever passes data HEC has not acknowledged."""

from __future__ import annotations

import time
from typing import Dict, Optional

from tests.emulators.sls.datagen import DataSpec
from tests.integration.harness import wait_until

from .support import AckLedger, CheckpointWatch, ReliabilityEnv, ShardLayout, largest_request, scaled

BUSY_SECONDS = scaled(5, 60)
DROP_SECONDS = scaled(3, 20)
NEVER_ACKED_REQUESTS = scaled(3, 5)
ACK_TIMEOUT = scaled(2, 5)
PHASE_EVENTS = scaled(1500, 6000)


def test_hec_outage_loses_nothing_and_checkpoints_only_acknowledged_data(summary) -> None:
    phases = [DataSpec(kind="actiontrail", seed=101 + n, event_count=PHASE_EVENTS, logs_per_group=15,
                       id_prefix=f"{name}-") for n, name in enumerate(("before", "busy", "dropped", "unacked"))]
    with ReliabilityEnv(hec_ack=True) as env:
        env.add_hec_destination("hec1", use_ack=True)
        env.create_logstore(shards=3)
        layout = ShardLayout(env)
        ledger = AckLedger(env.hec)

        def checkpoint_not_ahead(points: Dict[int, Dict[str, object]]) -> Optional[str]:
            # Acked ids are read after the checkpoints: a checkpoint older than the ack snapshot must be covered.
            declared = layout.refresh().checkpointed_ids(points)
            unacked = declared - ledger.acked_event_ids()
            return f"checkpoint covers {len(unacked)} unacknowledged events, e.g. {sorted(unacked)[:3]}" if unacked \
                else None

        def delivered(spec: DataSpec) -> bool:
            return spec.event_ids() <= set(env.hec_ids())

        with CheckpointWatch(env, checkpoint_not_ahead) as watch:
            running = env.start_input("prod", delivery="hec", hec_destination="hec1", index="main",
                                      hec_ack_timeout=ACK_TIMEOUT, hec_ack_poll_interval=0.2)
            env.load(phases[0])
            wait_until(lambda: delivered(phases[0]) and env.fully_checkpointed(), timeout=90,
                       message="the first phase before the outage")

            env.hec.faults.busy_for(BUSY_SECONDS)
            busy_until = time.monotonic() + BUSY_SECONDS
            env.load(phases[1])
            wait_until(lambda: env.hec.requests.get("busy", 0) >= 2, timeout=30, message="503 answers")
            assert not delivered(phases[1]), "data arrived while HEC answered 503"
            wait_until(lambda: time.monotonic() >= busy_until, timeout=BUSY_SECONDS + 5, message="the outage to end")
            wait_until(lambda: delivered(phases[1]), timeout=90, message="delivery after the 503 outage")

            env.hec.faults.drop_rate(1.0)
            env.load(phases[2])
            wait_until(lambda: env.hec.requests.get("dropped", 0) >= 2, timeout=30, message="dropped connections")
            time.sleep(DROP_SECONDS)
            assert not delivered(phases[2]), "data arrived while HEC dropped every connection"
            env.hec.faults.drop_rate(0.0)
            wait_until(lambda: delivered(phases[2]), timeout=90, message="delivery after dropped connections")

            env.hec.faults.never_ack(NEVER_ACKED_REQUESTS)
            env.load(phases[3])
            wait_until(lambda: delivered(phases[3]) and env.fully_checkpointed()
                       and "action=hec_ack_timeout" in env.log_text("prod"), timeout=120,
                       message="delivery and checkpoints after the ack timeouts")
            assert running.terminate(timeout=30) == 0, running.stderr_text()[-2000:]
        watch.assert_ok()

        expected = set().union(*(spec.event_ids() for spec in phases))
        result = env.compare(expected, env.hec_ids())
        summary(result.row("1 HEC outage 503/drop/no-ack"))
        assert result.missing == set(), sorted(result.missing)[:5]
        # Busy answers and connections dropped before HEC read the data cannot duplicate; requests whose ack never
        # came are sent again, so at most their events arrive twice.
        assert result.duplicates <= NEVER_ACKED_REQUESTS * largest_request(env.hec), result
        assert layout.refresh().checkpointed_ids(env.checkpoints()) >= expected
        assert env.hec.requests.get("code_9", 0) >= 2 and env.hec.requests.get("dropped", 0) >= 2
        log = env.log_text("prod")
        for line in ("action=hec_retry code=hec:9 status=503", "action=hec_recovered", "action=hec_ack_timeout"):
            assert line in log, line
        assert "Traceback" not in log and "Traceback" not in running.stderr_text()
