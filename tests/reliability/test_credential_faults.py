"""Credentials (issue 12): 60-second credentials renewed over a long run (90 s; 5 minutes with --full), STS down
while the credentials expire (delivery pauses, resumes, nothing lost), and a wrong ExternalId (a configuration error
at run time, retried slowly, never a hot loop). The secret scan of ReliabilityEnv also covers the base AccessKey
secret, the ExternalId and every temporary secret and token issued."""

from __future__ import annotations

import collections
import concurrent.futures
import re
import time

from tests.emulators.sls.datagen import DataSpec
from tests.integration.credential_twins import ACCOUNT_TYPES, CredentialTwins, keys_by_logstore
from tests.integration.harness import PYTHONS, wait_until

from .support import ReliabilityEnv, scaled

PY_IDS = sorted(PYTHONS)


def test_sts_down_while_credentials_expire_pauses_and_resumes_delivery(summary) -> None:
    outage = scaled(75, 120)
    before = DataSpec(kind="actiontrail", seed=1211, event_count=400, logs_per_group=20, id_prefix="before-")
    during = DataSpec(kind="actiontrail", seed=1212, event_count=400, logs_per_group=20, id_prefix="during-")
    with ReliabilityEnv() as env, CredentialTwins(env, lifetime=60) as twins:
        env.load(before, shards=2)
        with env.start_input("prod", account=twins.ROLE_KEY_ACCOUNT) as running:
            wait_until(lambda: len(running.events) >= before.event_count, timeout=60, message="first data set")
            issued_before = twins.sts.stats.issued
            twins.sts.go_down()
            down_at = time.monotonic()
            # The credentials were issued at start: they expire while STS is down.
            wait_until(lambda: "action=credentials_expired" in env.log_text("prod"), timeout=outage,
                       message="the credentials to expire during the outage")
            env.load(during)
            time.sleep(max(0.0, down_at + outage - time.monotonic()))
            delivered_while_down = set(env.stream_ids(running)) & during.event_ids()
            attempts_while_down = len(twins.sts.http.request_log)
            twins.sts.come_back()
            wait_until(lambda: during.event_ids() <= set(env.stream_ids(running)) and env.fully_checkpointed(),
                       timeout=90, message="delivery to resume once STS is back")
            assert running.terminate(timeout=30) == 0
        log = env.log_text("prod")
        for secret in twins.secrets():
            env.add_secret(secret)
    result = env.compare(before.event_ids() | during.event_ids(), env.stream_ids(running))
    summary(result.row(f"12 STS down {outage} s while 60 s credentials expire"))
    assert result.missing == set(), result
    assert not delivered_while_down, "events were delivered with expired credentials"
    assert twins.sts.stats.issued > issued_before
    # Capped backoff (1 s doubling to 30 s) plus the one immediate renewal SLS's refusal asks for: no hot loop.
    assert attempts_while_down <= 15, attempts_while_down
    assert log.count("action=credentials_refresh_failed") == 1, "one line per failure streak"
    assert "action=credentials_refreshed" in log and "after_failing_seconds=" in log
    # The expiry itself is logged once (action=credentials_expired); what it stops says so once each: the heartbeat
    # streak and each shard's pending checkpoint (2 shards). Never a line per refused request.
    expired_lines = [line for line in log.splitlines() if "SecurityTokenExpired" in line]
    assert log.count("action=credentials_expired") == 1 and len(expired_lines) <= 4, expired_lines
    assert "Traceback" not in log


def test_wrong_external_id_is_a_config_error_retried_slowly(summary) -> None:
    with ReliabilityEnv() as env, CredentialTwins(env) as twins:
        twins.store_role_account("wrong_ext", external_id="ext-not-the-right-one", with_key=True)
        env.add_secret("ext-not-the-right-one")
        env.create_logstore(shards=1)
        validation = env.runner.validate("bad_role", env.params(account="wrong_ext"), env.splunkd.url,
                                         env.splunkd.session_key)
        env.scan("validation with a wrong ExternalId", validation.stdout + validation.stderr)
        assert not validation.ok and "wrong ExternalId" in (validation.error_message or ""), validation
        twins.sts.http.clear_request_log()
        started = time.monotonic()
        with env.start_input("bad_role", account="wrong_ext", retry_interval=2) as running:
            wait_until(lambda: env.log_text("bad_role").count("action=config_error") >= 3, timeout=30,
                       message="repeated configuration errors")
            elapsed = time.monotonic() - started
            calls = len(twins.sts.http.request_log)
            assert running.terminate(timeout=30) == 0
        log = env.log_text("bad_role")
        for secret in twins.secrets():
            env.add_secret(secret)
    assert "wrong ExternalId" in log and "code=NoPermission" in log
    assert calls <= elapsed / 2 + 2, f"{calls} STS calls in {elapsed:.0f} s: a hot loop"
    summary({"scenario": "12 wrong ExternalId at run time", "put": 0, "delivered": 0, "missing": 0,
             "duplicates": 0, "peak_rss_mb": None})


def test_sixty_second_credentials_renew_in_the_background_and_every_event_arrives(summary) -> None:
    """Three inputs, one per account type, for 90 s (5 minutes with --full) with credentials living 60 s: each renews
    at about 40 s, and once (at 60 s) SLS is told every token has expired: one renewal each, no event lost.

    The run is mostly waiting, so each Python's run (its own emulators and twins) goes in its own thread, together:
    the suite waits 90 s instead of 180 s. ``result()`` raises a run's failure here."""
    with concurrent.futures.ThreadPoolExecutor(len(PY_IDS)) as pool:
        runs = [pool.submit(renewal_run, label, summary) for label in PY_IDS]
        for run in runs:
            run.result()


def renewal_run(python_label: str, summary) -> None:  # type: ignore[no-untyped-def]
    run_seconds = scaled(90, 300)
    waves = int(run_seconds // 10)
    with ReliabilityEnv(PYTHONS[python_label]) as env, CredentialTwins(env, lifetime=60) as twins:
        inputs, specs = {}, collections.defaultdict(list)
        for account in ACCOUNT_TYPES:
            env.create_logstore(shards=2, logstore=f"ls-{account.replace('_', '-')}")
        for account in ACCOUNT_TYPES:
            logstore = f"ls-{account.replace('_', '-')}"
            inputs[account] = env.start_input(f"in_{account}", account=account, logstore=logstore)
        started = time.monotonic()
        injected_at = 0.0
        for wave in range(waves):
            for account in ACCOUNT_TYPES:
                logstore = f"ls-{account.replace('_', '-')}"
                specs[account].append(env.load(DataSpec(kind="oss_access", seed=wave, event_count=100,
                                                        logs_per_group=10, id_prefix=f"{account}-w{wave}-"),
                                               logstore=logstore))
            if wave == 6:  # t = 60 s: between the renewals at about 40 s and 80 s, so each input is refused
                env.sls.expire_security_tokens()
                twins.imds.rotate()  # as after a revocation, the instance gets new credentials
                injected_at = time.time()
            time.sleep(max(0.0, started + 10 * (wave + 1) - time.monotonic()))
        for account, running in inputs.items():
            expected = set().union(*(spec.event_ids() for spec in specs[account]))
            wait_until(lambda: expected <= set(env.stream_ids(running)), timeout=60,
                       message=f"every event of input in_{account}")
        for running in inputs.values():
            assert running.terminate(timeout=30) == 0

        logs = {account: env.log_text(f"in_{account}") for account in ACCOUNT_TYPES}
        for secret in twins.secrets():
            env.add_secret(secret)
        used = keys_by_logstore(env)
        for account, running in inputs.items():
            expected = set().union(*(spec.event_ids() for spec in specs[account]))
            result = env.compare(expected, env.stream_ids(running))
            assert result.missing == set() and result.duplicates == 0, (account, result)
            keys = list(dict.fromkeys(used[f"ls-{account.replace('_', '-')}"]))
            # One key at the start, one per 40 s of running, one after the injected expiry.
            assert len(keys) >= scaled(3, 7), (account, len(keys))
            log = logs[account]
            # The expiry is logged once; a heartbeat or a shard's checkpoint whose quick retry still came before the
            # new credentials (a loaded machine) may say so once each, never a line per refused request.
            expired_lines = re.findall(r".*SecurityTokenExpired.*", log)
            assert log.count("action=credentials_expired") == 1 and len(expired_lines) <= 4, (account, expired_lines)
            assert "action=credentials_refresh_failed" not in log and "Traceback" not in log
            assert "action=config_error" not in log and "ownership_lost" not in log
            summary(result.row(f"10 60 s credentials renewed over {run_seconds} s, {account}, py{python_label}"))
        refused = [r for r in env.sls.request_log if r.error_code == "SecurityTokenExpired"]
        assert refused and all(injected_at - 1 <= r.time <= injected_at + 15 for r in refused), \
            "a token expired at SLS without the test expiring it: renewal was not proactive"
