"""The built add-on consumes a Logstore with each account type against the STS and metadata twins (issue 12).
The renewal of 60-second credentials over a long run is reliability scenario 10 (tests/reliability)."""

from __future__ import annotations

import pytest

from tests.emulators.sls.datagen import DataSpec

from .credential_twins import ACCOUNT_TYPES, CredentialTwins, keys_by_logstore
from .harness import PYTHONS, AddonEnv, wait_until

PY_IDS = sorted(PYTHONS)
@pytest.mark.parametrize("account", sorted(ACCOUNT_TYPES))
@pytest.mark.parametrize("python_label", PY_IDS, ids=lambda label: f"py{label}")
def test_each_account_type_consumes_a_logstore(python_label: str, account: str) -> None:
    spec = DataSpec(kind="actiontrail", seed=1201, event_count=600, logs_per_group=20)
    with AddonEnv(PYTHONS[python_label]) as env, CredentialTwins(env) as twins:
        env.load(spec, shards=2)
        with env.start_input("prod", account=account) as running:
            wait_until(lambda: len(running.events) >= spec.event_count and env.fully_checkpointed(), timeout=60,
                       message=f"delivery with account type {ACCOUNT_TYPES[account]}")
            assert running.terminate(timeout=30) == 0
        result = env.compare(spec.event_ids(), env.stream_ids(running))
        assert result.missing == set() and result.duplicates == 0, result
        keys = set(keys_by_logstore(env)["actiontrail"])
        assert keys and all(key.startswith("STS.") for key in keys), keys
        if account == "ecs_role":
            assert keys <= set(twins.imds.issued()) and twins.sts.assumed() == []
        else:
            assert twins.sts.assumed() and set(twins.sts.assumed()) == {"issued"}
            assert not keys & set(twins.imds.issued()), "SLS must be signed with the assumed role's keys"
        if account != "role_key":
            # The metadata twin runs in hardened mode: the add-on always asks for a token first.
            details = [served.detail for served in twins.imds.http.request_log]
            assert "token" in details and "token_required" not in details, details
        log = env.log_text("prod")
        assert "Traceback" not in log and "action=config_error" not in log
        for secret in twins.secrets():
            assert secret not in log and secret not in running.stderr_text()
