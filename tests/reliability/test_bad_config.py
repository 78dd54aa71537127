"""Scenario 7: bad configuration. For each mistake an admin can make: ``--validate-arguments`` refuses it with a
sentence naming the problem, the running input logs one clear line per attempt, keeps retrying at the configured
interval without spinning, writes no traceback, and checkpoints no data it did not deliver. An index the HEC token
may not write (code 7) is such a mistake too: nothing goes to the dead-letter file, and once the admin allows the
index on the token every event arrives without restarting the input.

All cases run at the same time against one set of emulators, each with its own input (and logstore where it
matters), so the suite stays short.
"""

from __future__ import annotations

import os
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from tests.emulators.hec import HecEmulator
from tests.emulators.sls.datagen import DataSpec
from tests.integration.harness import AK_ID, GROUP, HEC_TOKEN, LOGSTORE, PROJECT, wait_until

from .support import ReliabilityEnv, cpu_share_over, cursor_index, scaled

RETRY_INTERVAL = 2.0
WINDOW = scaled(8.0, 20.0)
WRONG_SECRET = "wrong-secret-5c4b3a2910"
UNKNOWN_KEY_SECRET = "unknown-key-secret-77aa"
BAD_TOKEN = "99999999-0000-0000-0000-000000000000"
DISABLED_TOKEN = "22222222-3333-4444-5555-666666666666"
INDEX_TOKEN = "33333333-4444-5555-6666-777777777777"


@dataclass
class Case:
    """One misconfiguration: the input's parameters and what the admin must be told."""

    name: str
    params: Dict[str, object]
    validation_says: Optional[str]      # None: validation cannot know without sending data
    log_says: str
    errors_tab: Optional[str] = None    # exc_l label of its ERROR lines; None: only warnings (it may heal alone)
    logstore: str = LOGSTORE
    exits: bool = False                 # the stanza itself is invalid: exit 1, splunkd runs it again after interval
    attempts: Optional[Callable[[], int]] = None   # retries observed so far (default: ERROR/WARNING attempt lines)
    extra: Dict[str, object] = field(default_factory=dict)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def attempt_lines(env: ReliabilityEnv, name: str) -> int:
    log = env.log_text(name)
    return log.count("action=config_error") + log.count("action=start_failed")


def test_bad_configuration_is_named_retried_slowly_and_checkpoints_nothing(summary) -> None:
    tls_hec = HecEmulator(tokens={HEC_TOKEN: {"ack": False}}, tls=True).start()
    try:
        with ReliabilityEnv() as env:
            env.extra_hecs.append(tls_hec)
            for secret in (WRONG_SECRET, UNKNOWN_KEY_SECRET, BAD_TOKEN, DISABLED_TOKEN, INDEX_TOKEN):
                env.add_secret(secret)
            run_cases(env, tls_hec, summary)
    finally:
        tls_hec.stop()


def run_cases(env: ReliabilityEnv, tls_hec: HecEmulator, summary: Callable[[Dict[str, object]], None]) -> None:
    splunkd, hec = env.splunkd, env.hec
    splunkd.store_encrypted("ta_aliyun_sls_account", "acct_badsecret", {"access_key_secret": WRONG_SECRET},
                            {"access_key_id": AK_ID, "credential_type": "access_key"})
    splunkd.store_encrypted("ta_aliyun_sls_account", "acct_unknownkey", {"access_key_secret": UNKNOWN_KEY_SECRET},
                            {"access_key_id": "LTAI5tNoSuchKey0000", "credential_type": "access_key"})
    hec.set_token(DISABLED_TOKEN, disabled=True)
    hec.set_token(INDEX_TOKEN, indexes=["allowed"])
    for name, token in (("hec_badtoken", BAD_TOKEN), ("hec_disabled", DISABLED_TOKEN), ("hec_index", INDEX_TOKEN)):
        env.add_hec_destination(name, token=token)
    splunkd.store_encrypted("ta_aliyun_sls_hec_destination", "hec_tls", {"token": HEC_TOKEN},
                            {"url": tls_hec.url, "use_ack": "0", "verify_tls": "1", "gzip": "0"})
    # The SLS maximum of 30 consumer groups is already used up on this logstore.
    env.create_logstore(shards=2, logstore="quota-store")
    for number in range(30):
        env.sls.state.create_consumer_group(PROJECT, "quota-store", f"other-{number}", 40, True)
    env.load(DataSpec(kind="oss_access", seed=701, event_count=400, id_prefix="main-"), shards=2)
    hec_data = {}
    for logstore in ("hec-badtoken", "hec-disabled", "hec-index", "hec-tls"):
        hec_data[logstore] = env.load(DataSpec(kind="oss_access", seed=702, event_count=300, logs_per_group=10,
                                               id_prefix=f"{logstore}-"), shards=2, logstore=logstore).event_ids()

    def hec_case(name: str, logstore: str, log_says: str, validation_says: Optional[str], errors_tab: str,
                 index: str = "main") -> Case:
        return Case(name, {"delivery": "hec", "hec_destination": name, "logstore": logstore, "index": index},
                    validation_says, log_says, errors_tab, logstore=logstore)

    cases: List[Case] = [
        Case("wrong_secret", {"account": "acct_badsecret"}, "AccessKey secret of account 'acct_badsecret' is wrong",
             "code=SignatureNotMatch", "Authentication Error"),
        Case("unknown_key", {"account": "acct_unknownkey"}, "AccessKey ID of account 'acct_unknownkey' is unknown",
             "code=Unauthorized", "Authentication Error"),
        Case("unknown_project", {"project": "no-such-project"}, "project 'no-such-project' does not exist",
             "code=ProjectNotExist", "Configuration Error"),
        Case("unknown_logstore", {"logstore": "missing-store"}, "logstore 'missing-store' does not exist",
             "code=LogStoreNotExist", "Configuration Error", logstore="missing-store"),
        Case("malformed_endpoint", {"endpoint": "http://127.0.0.1:port/x"}, "endpoint", "action=invalid_input",
             "Configuration Error", exits=True),
        Case("unreachable", {"endpoint": f"http://127.0.0.1:{closed_port()}"}, "is unreachable",
             "code=ConnectionError"),
        Case("quota", {"logstore": "quota-store"}, "maximum", "code=ConsumerGroupQuotaExceed", "Configuration Error",
             logstore="quota-store"),
        hec_case("hec_badtoken", "hec-badtoken", "action=hec_config_error code=hec:4",
                 "HEC token is not valid", "Authentication Error"),
        hec_case("hec_disabled", "hec-disabled", "action=hec_config_error code=hec:1",
                 "HEC token is disabled", "Authentication Error"),
        hec_case("hec_tls", "hec-tls", "TLS certificate of HEC host", "TLS certificate", "Configuration Error"),
        # Validation cannot know the index is refused without indexing an event; the log tells.
        hec_case("hec_index", "hec-index", "action=hec_config_error code=hec:7", None, "Permission Error",
                 index="forbidden"),
    ]
    by_code = {"hec_badtoken": "code_4", "hec_disabled": "code_1", "hec_index": "code_7"}
    for case in cases:
        if case.name in by_code:
            counter = by_code[case.name]
            case.attempts = lambda counter=counter: hec.requests.get(counter, 0)

    with ThreadPoolExecutor(max_workers=4) as pool:
        validations = dict(zip([c.name for c in cases], pool.map(
            lambda c: env.runner.validate(c.name, env.params(**c.params), env.splunkd.url,
                                          env.splunkd.session_key), cases)))
    for name, result in validations.items():
        env.scan(f"validation of {name}", result.stdout + result.stderr)
    for case in cases:
        result = validations[case.name]
        if case.validation_says is None:
            continue
        assert not result.ok and case.validation_says in (result.error_message or ""), \
            (case.name, result.returncode, result.error_message, result.stderr[-1000:])
        assert "Traceback" not in result.stderr, (case.name, result.stderr[-2000:])

    runs = {case.name: env.start_input(case.name, retry_interval=RETRY_INTERVAL, **case.params) for case in cases}
    for case in cases:
        wait_until(lambda: case.log_says in env.log_text(case.name), timeout=60,
                   message=f"{case.name}: {case.log_says!r} in the add-on log")
    for case in cases:
        if case.exits:
            assert runs[case.name].wait(timeout=30) == 1, case.name

    # Steady state: every live input is retrying; measure CPU and attempts over the same window for all.
    live = [case for case in cases if not case.exits]
    before = {case.name: (case.attempts or (lambda n=case.name: attempt_lines(env, n)))() for case in live}
    with ThreadPoolExecutor(max_workers=len(live)) as pool:
        shares = dict(zip([c.name for c in live], pool.map(lambda c: cpu_share_over(runs[c.name].pid, WINDOW),
                                                            live)))
    after = {case.name: (case.attempts or (lambda n=case.name: attempt_lines(env, n)))() for case in live}

    for case in cases:
        log, stderr = env.log_text(case.name), runs[case.name].stderr_text()
        assert "Traceback" not in log and "Traceback" not in stderr, (case.name, log[-2000:], stderr[-2000:])
        # What the dashboard's Errors tab lists for this input (every ERROR line's label is checked on exit).
        labels = set(re.findall(r'log_level=ERROR .*?\| exc_l="([^"]+)"', log))
        assert labels == ({case.errors_tab} if case.errors_tab else set()), (case.name, labels)
        if case.name in shares:
            assert shares[case.name] < 0.15, f"{case.name} used {shares[case.name]:.0%} of a core while failing"
            attempts = after[case.name] - before[case.name]
            # Per attempt one line (SLS) or one request per sender thread (HEC): never a tight loop.
            if case.name != "hec_tls":
                assert 1 <= attempts <= 2 * (WINDOW / RETRY_INTERVAL + 1), (case.name, attempts)
        assert_nothing_checkpointed(env, case.logstore, case.name)
    assert "add that index to the token's allowed indexes" in env.log_text("hec_index")
    dead_letter_path = os.path.join(env.checkpoint_dir, "hec_index.deadletter.jsonl")
    assert not os.path.exists(dead_letter_path) or os.path.getsize(dead_letter_path) == 0

    # The admin allows the index on the token: the running input delivers everything, nothing was skipped.
    hec.set_token(INDEX_TOKEN, indexes=["allowed", "forbidden"])
    wait_until(lambda: hec_data["hec-index"] <= set(index_case_ids(hec)), timeout=90,
               message="every hec-index event at HEC after the index was allowed")
    result = env.compare(hec_data["hec-index"], index_case_ids(hec))
    summary(result.row("7 bad config, 11 cases (index fixed)"))
    assert result.missing == set(), sorted(result.missing)[:5]
    assert not os.path.exists(dead_letter_path) or os.path.getsize(dead_letter_path) == 0
    for running in runs.values():  # all at once: an input whose HEC refuses it waits out its shutdown timeout
        if running.running:
            running.process.terminate()
    for case in cases:  # wait, not terminate: a second SIGTERM after the handlers are restored would kill it
        assert runs[case.name].wait(timeout=60) in (0, 1), case.name
    # The other HEC cases never got an event through.
    stray = [event["event"]["event_id"] for event in hec.events() + tls_hec.events()
             if event["event"]["event_id"].startswith(("hec-badtoken-", "hec-disabled-", "hec-tls-"))]
    assert stray == [], stray[:5]


def index_case_ids(hec: HecEmulator) -> List[str]:
    """Event ids of the hec_index input that HEC accepted, one per copy."""
    return [event["event"]["event_id"] for event in hec.events() if event["event"]["event_id"].startswith("hec-index-")]


def assert_nothing_checkpointed(env: ReliabilityEnv, logstore: str, case: str) -> None:
    """No checkpoint of the input's group may point past the first log group (a start cursor is allowed)."""
    try:
        points = env.checkpoints(logstore, GROUP)
    except Exception:  # the logstore or the group was never created: nothing can be checkpointed
        return
    moved = {shard: point["checkpoint"] for shard, point in points.items()
             if cursor_index(str(point["checkpoint"])) > 0}
    assert not moved, f"{case}: checkpoints moved on {logstore}: {moved}"
