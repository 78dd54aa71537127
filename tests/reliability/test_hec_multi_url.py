"""Scenario: one HEC destination with three URLs (three HEC emulators), indexer acknowledgement on. Mid-run the
second HEC accepts requests it will never acknowledge and then goes down; later a fresh HEC comes up at its address
(a restart: its acks are gone, its channel numbering starts again). Every event is acknowledged somewhere (none
missing), the requests stranded on the dead URL are sent again elsewhere after the ack timeout, the URL is taken out
and probed back in (one log line each), it takes requests again once back, and no checkpoint ever passes data that
was not acknowledged. Duplicates come only from the requests stranded on the dead HEC and from the first request
the fresh one takes (its ackId reveals the restart)."""

from __future__ import annotations

from typing import Dict, List, Optional, Set

from tests.emulators.hec import HecEmulator
from tests.emulators.sls.datagen import DataSpec
from tests.integration.harness import HEC_TOKEN, wait_until

from .support import AckLedger, CheckpointWatch, ReliabilityEnv, ShardLayout, largest_request, scaled

PHASE_EVENTS = scaled(1200, 6000)
ACK_TIMEOUT = 4
ACK_DELAY = 0.2   # an indexer takes a moment to acknowledge, so requests do wait for their acks


def start_hec(host: str, port: int = 0) -> HecEmulator:
    return HecEmulator(host=host, port=port, tokens={HEC_TOKEN: {"ack": True}}, ack_delay=ACK_DELAY).start()


def test_one_of_three_hec_urls_down_then_back_loses_nothing(summary) -> None:
    phases = [DataSpec(kind="actiontrail", seed=301 + n, event_count=PHASE_EVENTS, logs_per_group=10,
                       id_prefix=f"{name}-") for n, name in enumerate(("before", "stranded", "down", "back"))]
    with ReliabilityEnv(hec_ack=True, hec_kwargs={"ack_delay": ACK_DELAY}) as env:
        hecs = [env.hec, start_hec("127.0.0.2"), start_hec("127.0.0.3")]
        env.extra_hecs.extend(hecs[1:])
        ledgers = [AckLedger(hec) for hec in hecs]
        env.splunkd.store_encrypted("ta_aliyun_sls_hec_destination", "three", {"token": HEC_TOKEN},
                                    {"url": ", ".join(hec.url for hec in hecs), "use_ack": "1", "verify_tls": "0",
                                     "gzip": "0"})
        second_url = hecs[1].url
        env.create_logstore(shards=3)
        layout = ShardLayout(env)

        def every_hec() -> List[HecEmulator]:
            return [env.hec] + env.extra_hecs

        def received() -> List[str]:
            return [event["event"]["event_id"] for hec in every_hec() for event in hec.events()]

        def acknowledged() -> Set[str]:
            return set().union(*(ledger.acked_event_ids() for ledger in ledgers))

        def checkpoint_not_ahead(points: Dict[int, Dict[str, object]]) -> Optional[str]:
            # Acked ids are read after the checkpoints: a checkpoint older than the ack snapshot must be covered.
            declared = layout.refresh().checkpointed_ids(points)
            unacked = declared - acknowledged()
            return f"checkpoint covers {len(unacked)} unacknowledged events, e.g. {sorted(unacked)[:3]}" if unacked \
                else None

        def settled(spec: DataSpec) -> bool:
            return spec.event_ids() <= acknowledged() and env.fully_checkpointed()

        with CheckpointWatch(env, checkpoint_not_ahead) as watch:
            running = env.start_input("prod", delivery="hec", hec_destination="three", index="main",
                                      hec_ack_timeout=ACK_TIMEOUT, hec_ack_poll_interval=0.5)
            env.load(phases[0])
            wait_until(lambda: settled(phases[0]), timeout=60, message="the first phase on three URLs")
            assert all(hec.events() for hec in hecs), [len(hec.events()) for hec in hecs]

            # The second HEC takes requests and never acknowledges them; then it goes down with them.
            hecs[1].faults.never_ack()
            stranded_before = len(hecs[1].events())
            env.load(phases[1])
            wait_until(lambda: len(hecs[1].events()) > stranded_before, timeout=30,
                       message="requests accepted by the second HEC")
            hecs[1].stop()
            env.load(phases[2])
            wait_until(lambda: settled(phases[1]) and settled(phases[2]), timeout=60,
                       message="the stranded requests sent again elsewhere and the checkpoints at the end")
            log = env.log_text("prod")
            assert f"action=hec_url_out url={second_url}" in log
            assert "action=hec_ack_timeout" in log

            # A fresh HEC at the same address: probed back in, then it takes requests again.
            restarted = start_hec("127.0.0.2", port=hecs[1].port)
            env.extra_hecs.append(restarted)
            ledgers.append(AckLedger(restarted))
            wait_until(lambda: f"action=hec_url_in url={second_url}" in env.log_text("prod"), timeout=40,
                       message="the second URL probed back into service")
            env.load(phases[3])
            wait_until(lambda: settled(phases[3]), timeout=60, message="delivery with the second URL back")
            assert running.terminate(timeout=30) == 0, running.stderr_text()[-2000:]
        watch.assert_ok()
        for hec in env.extra_hecs:
            hec.stop()

        expected = set().union(*(spec.event_ids() for spec in phases))
        result = env.compare(expected, received())
        summary(result.row("11 HEC 3 URLs, one down, back (ack)"))
        assert result.missing == set(), sorted(result.missing)[:5]
        # Sent twice: what the dead HEC took without acknowledging, and the first request the fresh one took (its
        # ackId, numbered from 0 again, shows the restart; the add-on cannot tell which side of it the id is from).
        unacknowledged = len(hecs[1].events()) - stranded_before
        bound = unacknowledged + largest_request(restarted)
        assert unacknowledged <= result.duplicates <= bound, (result.duplicates, unacknowledged, bound)
        assert expected <= acknowledged()
        assert layout.refresh().checkpointed_ids(env.checkpoints()) >= expected
        assert {e["event"]["event_id"] for e in restarted.events()} & phases[3].event_ids(), \
            "the URL back in service took no request"
        log = env.log_text("prod")
        assert log.count(f"action=hec_url_out url={second_url}") == 1, log.count("action=hec_url_out")
        assert log.count(f"action=hec_url_in url={second_url}") == 1
        assert log.count("action=hec_ack_channel_reset") == 1
        assert "Traceback" not in log and "Traceback" not in running.stderr_text()
