"""Scenario 5: SLS misbehaves. 5xx bursts, ReadQuotaExceed throttling, latency spikes, dropped connections and an
InvalidCursor while data flows; then pulls that fail for a long stretch. Nothing is lost, the input backs off instead
of spinning (its CPU time stays low while SLS keeps failing), and each kind of failure is named in one clear line."""

from __future__ import annotations

import time

from tests.emulators.sls.datagen import DataSpec
from tests.integration.harness import wait_until

from .support import ReliabilityEnv, cpu_share_over, scaled

FAILING_WINDOW = scaled(8.0, 20.0)
SHARDS = 3


def test_sls_faults_lose_nothing_and_do_not_spin(summary) -> None:
    chunks = [DataSpec(kind="mixed", seed=500 + n, event_count=1500, logs_per_group=10, id_prefix=f"x{n}-")
              for n in range(4)]
    with ReliabilityEnv(sls_kwargs={"fault_seed": 5}) as env:
        env.create_logstore(shards=SHARDS)
        faults = env.sls.faults
        running = env.start_input("prod")
        wait_until(lambda: all(env.owners().values()) and len(env.owners()) == SHARDS, timeout=60,
                   message="ownership")

        # Data flows through a mix of faults on every API (heartbeats and checkpoints included).
        faults.error_rate = 0.15
        faults.read_quota_rate = 0.25
        faults.drop_rate = 0.05
        env.load(chunks[0])
        # Each kind of pull failure is held until the input has named it in its log. A single queued error would not
        # do: the idle poller's probe of a parked shard may take it (its failures are only debug lines, the shard's
        # own pull then names the next one), or a pull's retry may (only a call's first failure is a warning).
        for code, line in (("ReadQuotaExceed", "action=sls_retry api=pull_logs code=ReadQuotaExceed status=403"),
                           ("InvalidCursor", "action=invalid_cursor"),
                           ("drop", "action=sls_retry api=pull_logs code=ConnectionError")):
            faults.next_errors("pull_logs", code, 100_000)
            wait_until(lambda expected=line: expected in env.log_text("prod"), timeout=60, message=line)
            faults.cancel_queued("pull_logs")
        faults.latency = 0.4  # a latency spike
        env.load(chunks[1])
        time.sleep(2)
        faults.latency = 0.0
        faults.next_errors("pull_logs", "InternalServerError", 6)  # a 5xx burst
        env.load(chunks[2])
        wait_until(lambda: (chunks[0].event_ids() | chunks[1].event_ids() | chunks[2].event_ids())
                   <= set(env.stream_ids(running)), timeout=120, message="delivery through the faults")

        # Every pull fails for a while: the input must wait between attempts, not spin.
        faults.clear()
        faults.error_rate = 1.0
        faults.apis = frozenset({"pull_logs"})
        env.load(chunks[3])
        wait_until(lambda: faults.injected.get("InternalServerError", 0) >= 20, timeout=30,
                   message="pulls failing")
        env.sls.clear_request_log()
        cpu_share = cpu_share_over(running.pid, FAILING_WINDOW)
        failed_pulls = sum(1 for record in env.sls.request_log if record.api == "pull_logs")
        assert not chunks[3].event_ids() & set(env.stream_ids(running)), "data arrived although every pull failed"
        faults.clear()

        expected = set().union(*(chunk.event_ids() for chunk in chunks))
        wait_until(lambda: expected <= set(env.stream_ids(running)) and env.fully_checkpointed(), timeout=120,
                   message="delivery after SLS recovered")
        assert running.terminate(timeout=30) == 0, running.stderr_text()[-2000:]
        log = env.log_text("prod")

    result = env.compare(expected, env.stream_ids(running))
    summary(result.row("5 SLS faults"))
    assert result.missing == set(), sorted(result.missing)[:5]
    assert result.duplicates == 0, result  # one process, never restarted: a retried pull is never delivered twice
    assert cpu_share < 0.15, f"the input used {cpu_share:.0%} of a core while every pull failed"
    # Backoff doubles up to 30 s: a few attempts per shard in the window, not hundreds.
    assert failed_pulls <= SHARDS * (FAILING_WINDOW / 0.5 + 2) / 2, failed_pulls
    for line in ("action=sls_retry api=pull_logs code=InternalServerError status=500",
                 "action=sls_recovered api=pull_logs"):
        assert line in log, line
    assert "Traceback" not in log and "Traceback" not in running.stderr_text()
    print(f"cpu while failing: {cpu_share:.1%} of a core, pulls in {FAILING_WINDOW:.0f} s: {failed_pulls}")
