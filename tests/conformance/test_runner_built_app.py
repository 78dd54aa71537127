"""The runner against the real built app (``TA_ALIYUN_SLS_APP``, unpacked by ``build.py test``).

Skipped when no built app is given, except under ``REQUIRE_BUILT_APP=1`` (the build's test run), where a
missing app is a failure.
"""

from __future__ import annotations

import json
import os
import pytest

from tests.splunk_runner import ModInputRunner, interpreters

PYTHONS = interpreters()
# Input fields of globalConfig.json that UCC turns into scheme arguments (it leaves out index, interval, sourcetype).
REQUIRED_SCHEME_ARGS = {"name", "account", "endpoint", "project", "logstore", "consumer_group"}


def built_app_dir() -> str:
    """The built app folder, or skip (fail under REQUIRE_BUILT_APP=1) when it is not there."""
    app_dir = os.environ.get("TA_ALIYUN_SLS_APP", "")
    script = os.path.join(app_dir, "bin", "aliyun_sls.py")
    if app_dir and os.path.isfile(script):
        return app_dir
    reason = (f"TA_ALIYUN_SLS_APP={app_dir!r} holds no bin/aliyun_sls.py" if app_dir
              else "TA_ALIYUN_SLS_APP is not set")
    if os.environ.get("REQUIRE_BUILT_APP") == "1":
        pytest.fail(f"REQUIRE_BUILT_APP=1 but {reason}")
    pytest.skip(reason)


@pytest.mark.parametrize("python_label", sorted(PYTHONS), ids=lambda label: f"py{label}")
def test_built_app_scheme(python_label: str) -> None:
    with ModInputRunner(built_app_dir(), PYTHONS[python_label]) as runner:
        scheme = runner.scheme()
    assert scheme.title == "aliyun_sls"
    assert scheme.streaming_mode == "xml"
    assert scheme.use_external_validation is True
    assert scheme.use_single_instance is False
    assert REQUIRED_SCHEME_ARGS <= set(scheme.args), sorted(scheme.args)


@pytest.mark.parametrize("python_label", sorted(PYTHONS), ids=lambda label: f"py{label}")
def test_built_app_streams_a_trivial_stanza(python_label: str) -> None:
    """One log in SLS, one stream-delivery stanza: the runner gets the event back, and SIGTERM stops it cleanly."""
    from tests.emulators.sls.protobuf import encode_log, encode_log_group
    from tests.emulators.sls.server import SlsEmulator
    from tests.emulators.splunkd import SplunkdDouble

    app_dir = built_app_dir()
    with SlsEmulator(access_keys={"test-ak": "test-secret"}) as sls, SplunkdDouble() as splunkd, ModInputRunner(app_dir, PYTHONS[python_label]) as runner:
        sls.create_project("proj")
        sls.create_logstore("proj", "audit", shard_count=1)
        log = encode_log(1700000000, [("msg", "hello <&>")])
        sls.put_log_groups("proj", "audit", 0, [encode_log_group([log], topic="t", source="10.0.0.1")])
        splunkd.store_encrypted("ta_aliyun_sls_account", "acct1", {"access_key_secret": "test-secret"},
                                {"access_key_id": "test-ak"})
        params = {"account": "acct1", "endpoint": f"http://127.0.0.1:{sls.port}", "project": "proj",
                  "logstore": "audit", "consumer_group": "splunk", "start_position": "begin",
                  "delivery": "stream", "index": "main", "sourcetype": "aliyun:sls"}
        with runner.start("prod", params, splunkd.url, "sk") as running:
            events = running.wait_for_events(1, timeout=60)
            returncode = running.terminate(timeout=30)
        assert events, f"no event; stderr: {running.stderr_text()[-2000:]}"
        assert returncode == 0 and not running.killed, running.stderr_text()[-2000:]
        assert running.protocol_errors == []
        assert events[0]["stanza"] == "aliyun_sls://prod"
        assert json.loads(events[0]["data"])["msg"] == "hello <&>"
