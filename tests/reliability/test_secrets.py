"""Scenario 9: secrets. Every scenario's environment (ReliabilityEnv) ends by grepping all add-on log files, stderr,
stream and HEC events, dead letters and validation output for the AccessKey secret, the HEC token and the proxy
password. This test adds the runs most likely to leak the proxy password: SLS reached through an authenticating
proxy, and a proxy that cannot be reached (connection errors are logged and shown by validation)."""

from __future__ import annotations

import socket

from tests.emulators.sls.datagen import DataSpec
from tests.integration.harness import wait_until

from .support import PROXY_PASSWORD, ReliabilityEnv


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_secrets_never_reach_logs_events_or_validation(summary) -> None:
    spec = DataSpec(kind="actiontrail", seed=901, event_count=600, logs_per_group=20)
    with ReliabilityEnv() as env:
        env.load(spec, shards=2)
        # The SLS emulator also serves absolute-form requests, so it can stand in for the proxy. The endpoint is a
        # closed port: only a request that really goes through the proxy can succeed.
        env.store_proxy(enabled=True, port=env.sls.port)
        unreachable_endpoint = f"http://127.0.0.1:{closed_port()}"
        via_proxy = env.start_input("via_proxy", endpoint=unreachable_endpoint)
        wait_until(lambda: len(via_proxy.events) >= spec.event_count and env.fully_checkpointed(), timeout=60,
                   message="delivery through the proxy")
        assert via_proxy.terminate(timeout=30) == 0

        env.store_proxy(enabled=True, port=closed_port())
        validation = env.runner.validate("proxy_down", env.params(), env.splunkd.url, env.splunkd.session_key)
        env.scan("validation with the proxy down", validation.stdout + validation.stderr)
        assert not validation.ok and "unreachable" in (validation.error_message or ""), validation
        proxy_down = env.start_input("proxy_down", retry_interval=1)
        wait_until(lambda: env.log_text("proxy_down").count("action=start_failed") >= 2, timeout=60,
                   message="failed attempts through the unreachable proxy")
        assert proxy_down.terminate(timeout=30) == 0
        assert PROXY_PASSWORD not in validation.error_message
        scanned = env.assert_no_secrets()

    result = env.compare(spec.event_ids(), env.stream_ids(via_proxy))
    summary(result.row(f"9 secrets, {scanned} texts grepped"))
    assert result.missing == set() and result.duplicates == 0, result
