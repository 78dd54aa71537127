"""The REST handlers of the BUILT app: every one restmap.conf declares, and the inputs page's live check.

splunkd runs each UCC-generated ``bin/ta_aliyun_sls_rh_*.py``, which hands its handler class (for the inputs page
``ta_aliyun_sls_validation.InputHandler``) to ``splunk.admin.init``. ``splunk.admin`` is Splunk-private Python that does not exist outside Splunk, so each test
runs that script as ``__main__`` under a Splunk Python with the Splunk Web stand-in's ``splunk.admin`` shim
(tests/emulators/splunkweb/shim) on its ``sys.path``: its ``admin.init`` plays splunkd's dispatcher for one request. The live check inside goes to the
SLS emulator and the splunkd double, as in production. The base class's create/edit would write inputs.conf
through splunkd's ``data/inputs`` endpoint, which the double does not serve, so the driver records that they were
reached instead.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, Iterator, Optional

import pytest

from tests.emulators.splunkweb.handlers import SHIM_DIR

from .harness import AK_ID, AK_SECRET, PROJECT, PYTHONS, AddonEnv

# The source tree's core (tests/conftest.py puts package/bin on sys.path), to compute the expected sentence.
from sls_forwarder.config import parse_input
from sls_forwarder.errors import ConfigError
from sls_forwarder.modinput import explain

DRIVER = '''"""Run a UCC-generated REST handler script as __main__ under the splunk.admin shim; record base-class calls."""
import json
import os
import runpy
import sys

shim_dir, app_bin, handler_file = sys.argv[1:4]
sys.path[:0] = [shim_dir, app_bin]
import import_declare_test  # noqa: F401  (the app's lib/ first, as in every UCC handler)
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler

base_calls = []


def recorder(action):
    def handle(self, confInfo):
        base_calls.append({"action": action, "id": self.callerArgs.id, "payload": self.payload})
    return handle


AdminExternalHandler.handleCreate = recorder("create")
AdminExternalHandler.handleEdit = recorder("edit")
runpy.run_path(os.path.join(app_bin, handler_file), run_name="__main__")
with open(os.environ["BASE_CALLS"], "w") as handle:
    json.dump(base_calls, handle)
'''


@pytest.fixture(scope="module", params=sorted(PYTHONS), ids=lambda label: f"py{label}")
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AddonEnv]:
    with AddonEnv(PYTHONS[request.param]) as environment:
        environment.create_logstore(shards=1)
        environment.splunkd.store_encrypted("ta_aliyun_sls_account", "wrong_secret",
                                            {"access_key_secret": "not-the-secret"}, {"access_key_id": AK_ID})
        work_dir = tmp_path_factory.mktemp("admin-shim")
        (work_dir / "driver.py").write_text(DRIVER)
        environment.shim_work_dir = str(work_dir)  # type: ignore[attr-defined]
        yield environment


def page_fields(env: AddonEnv, **overrides: str) -> Dict[str, str]:
    """What the inputs page posts: the form's fields (no test-only knobs)."""
    fields = {"account": "acct1", "endpoint": f"http://127.0.0.1:{env.sls.port}", "project": PROJECT,
              "logstore": "actiontrail", "consumer_group": "splunk", "start_position": "end", "delivery": "stream",
              "workers": "1", "index": "main", "sourcetype": "aliyun:sls", "interval": "60"}
    fields.update(overrides)
    return fields


def handle(env: AddonEnv, action: str, stanza_id: str, data: Dict[str, str],
           handler_file: str = "ta_aliyun_sls_rh_aliyun_sls.py") -> Dict[str, Any]:
    """One create/edit request through a built handler; returns {"error": None|{status, message}, "base_calls"}."""
    work = env.shim_work_dir  # type: ignore[attr-defined]
    paths = {name: os.path.join(work, name + ".json") for name in ("request", "response", "base_calls")}
    with open(paths["request"], "w", encoding="utf-8") as handle_out:
        json.dump({"action": action, "id": stanza_id, "args": {key: [value] for key, value in data.items()},
                   "session_key": env.splunkd.session_key}, handle_out)
    for path in (paths["response"], paths["base_calls"]):
        if os.path.exists(path):
            os.remove(path)
    runner = env.runner
    process_env = dict(runner.environment(), SPLUNK_ADMIN_SHIM_REQUEST=paths["request"],
                       SPLUNK_ADMIN_SHIM_RESPONSE=paths["response"], BASE_CALLS=paths["base_calls"],
                       SPLUNKD_URI=env.splunkd.url)
    completed = subprocess.run([runner.python, os.path.join(work, "driver.py"), SHIM_DIR,
                                os.path.join(runner.app_dir, "bin"), handler_file],
                               cwd=runner.cwd, env=process_env, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(paths["response"], encoding="utf-8") as handle_in:
        response = json.load(handle_in)
    with open(paths["base_calls"], encoding="utf-8") as handle_in:
        base_calls = json.load(handle_in)
    error = None if response["status"] < 300 else {"status": response["status"], "message": response["error"]}
    return {"error": error, "base_calls": base_calls}


def expected_sentence(code: str, name: str, fields: Dict[str, str]) -> str:
    return explain(ConfigError("", code=code), parse_input(name, fields))


def error_message(outcome: Dict[str, Any]) -> Optional[str]:
    error = outcome["error"]
    assert error is None or error["status"] == 400, error  # an admin.ArgValidationException
    return None if error is None else error["message"]


def test_create_with_a_wrong_secret_is_refused_with_the_explanation(env: AddonEnv) -> None:
    fields = page_fields(env, account="wrong_secret")
    outcome = handle(env, "create", "prod", fields)
    message = error_message(outcome)
    assert message is not None
    assert message.startswith(expected_sentence("SignatureNotMatch", "prod", fields)), message
    assert "code=SignatureNotMatch" in message and AK_SECRET not in message
    assert outcome["base_calls"] == [], "an input that cannot work was saved"


def test_create_of_a_good_input_reaches_the_base_handler(env: AddonEnv) -> None:
    fields = page_fields(env)
    outcome = handle(env, "create", "prod", fields)
    assert error_message(outcome) is None
    assert len(outcome["base_calls"]) == 1
    call = outcome["base_calls"][0]
    assert call["action"] == "create" and call["id"] == "prod"
    assert {key: call["payload"][key] for key in fields} == fields


def test_edit_to_an_unknown_project_is_refused(env: AddonEnv) -> None:
    fields = page_fields(env, project="no-such-project")
    outcome = handle(env, "edit", "prod", fields)
    message = error_message(outcome)
    assert message is not None and message.startswith(expected_sentence("ProjectNotExist", "prod", fields))
    assert outcome["base_calls"] == []


def test_edit_to_an_unknown_account_is_refused(env: AddonEnv) -> None:
    outcome = handle(env, "edit", "prod", page_fields(env, account="nobody"))
    assert "account 'nobody' is not configured" in (error_message(outcome) or "")
    assert outcome["base_calls"] == []


def test_a_good_edit_reaches_the_base_handler(env: AddonEnv) -> None:
    outcome = handle(env, "edit", "prod", page_fields(env, start_position="begin"))
    assert error_message(outcome) is None
    assert [call["action"] for call in outcome["base_calls"]] == ["edit"]


def test_enable_disable_skips_the_live_check(env: AddonEnv) -> None:
    """The enable/disable switch posts only ``disabled``; the input's account may be broken at that moment."""
    env.sls.clear_request_log()
    outcome = handle(env, "edit", "prod", {"disabled": "1"})
    assert error_message(outcome) is None
    assert [call["payload"] for call in outcome["base_calls"]] == [{"disabled": "1"}]
    assert env.sls.request_log == [], "disabling must not call SLS"


# A valid create for each endpoint the app declares. A handler missing here fails the test below: every REST handler
# the package ships must be imported and exercised.
VALID_CREATES = {
    "ta_aliyun_sls_account": ("acct_new", {"credential_type": "access_key", "access_key_id": AK_ID,
                                           "access_key_secret": AK_SECRET}),
    "ta_aliyun_sls_hec_destination": ("hec_new", {"url": "https://127.0.0.1:8088", "token": "t0k3n", "use_ack": "0",
                                                  "verify_tls": "1", "gzip": "0"}),
    "ta_aliyun_sls_settings": ("logging", {"loglevel": "INFO"}),
    "ta_aliyun_sls_aliyun_sls": ("prod", {}),  # filled from page_fields: its live check needs the emulator's port
}


def declared_handlers(app_dir: str) -> Dict[str, str]:
    """{endpoint: handlerfile} of every [admin_external:*] stanza in the built app's restmap.conf."""
    handlers: Dict[str, str] = {}
    endpoint = None
    with open(os.path.join(app_dir, "default", "restmap.conf"), encoding="utf-8") as conf:
        for line in conf:
            line = line.strip()
            if line.startswith("["):
                endpoint = line[1:-1].split(":", 1)[1] if line.startswith("[admin_external:") else None
            elif endpoint and line.startswith("handlerfile"):
                handlers[endpoint] = line.split("=", 1)[1].strip()
    return handlers


def test_every_declared_rest_handler_imports_and_handles_a_create(env: AddonEnv) -> None:
    """splunkd fails an endpoint whose handler script cannot import; UCC then shows the whole page as broken."""
    handlers = declared_handlers(env.runner.app_dir)
    assert set(handlers) == set(VALID_CREATES), "a declared handler has no test create here (or one went away)"
    for endpoint, handler_file in sorted(handlers.items()):
        stanza, data = VALID_CREATES[endpoint]
        outcome = handle(env, "create", stanza, data or page_fields(env), handler_file)
        assert error_message(outcome) is None, (endpoint, outcome)
        assert [call["id"] for call in outcome["base_calls"]] == [stanza], (endpoint, outcome)


ACCOUNT_HANDLER = "ta_aliyun_sls_rh_account.py"


def test_account_of_an_unknown_credential_type_is_refused(env: AddonEnv) -> None:
    outcome = handle(env, "create", "acct_x", {"credential_type": "password", "access_key_id": AK_ID,
                                               "access_key_secret": AK_SECRET}, ACCOUNT_HANDLER)
    assert "credential type 'password' is not supported" in (error_message(outcome) or "")
    assert outcome["base_calls"] == []


def test_account_without_its_secret_is_refused_on_create_but_an_edit_keeps_the_stored_one(env: AddonEnv) -> None:
    # The key fields are required per credential type, so the REST layer does not declare them required (an
    # ecs_ram_role account has none): the handler refuses a missing one as it refuses a blank one.
    absent = handle(env, "create", "acct_x", {"credential_type": "access_key", "access_key_id": AK_ID},
                    ACCOUNT_HANDLER)
    assert error_message(absent) == "an account of type access_key needs access_key_secret"
    assert absent["base_calls"] == []
    created = handle(env, "create", "acct_x", {"credential_type": "access_key", "access_key_id": AK_ID,
                                               "access_key_secret": " "}, ACCOUNT_HANDLER)
    assert error_message(created) == "an account of type access_key needs access_key_secret"
    assert created["base_calls"] == []
    # The page never resends a masked secret on edit: the stored one stays.
    edited = handle(env, "edit", "acct1", {"credential_type": "access_key", "access_key_id": AK_ID},
                    ACCOUNT_HANDLER)
    assert error_message(edited) is None and len(edited["base_calls"]) == 1


# ------------------------------------------------------------------------------------------ role accounts (issue 12)


def role_account(twins, **overrides: str) -> Dict[str, str]:
    from .credential_twins import BASE_KEY, BASE_SECRET, EXTERNAL_ID, ROLE_ARN

    fields = {"credential_type": "assume_role", "role_arn": ROLE_ARN, "external_id": EXTERNAL_ID,
              "access_key_id": BASE_KEY, "access_key_secret": BASE_SECRET, "duration_seconds": "3600",
              "sts_endpoint": twins.sts.endpoint}
    fields.update(overrides)
    return fields


def test_role_accounts_are_checked_live_on_save(env: AddonEnv) -> None:
    from tests.emulators.sts import Role

    from .credential_twins import BASE_SECRET, EXTERNAL_ID, IMDS_URL_ENV, CredentialTwins

    with CredentialTwins(env) as twins:
        twins.sts.roles["acs:ram::123456789012:role/locked"] = Role("acs:ram::123456789012:role/locked",
                                                                    trusted=frozenset({"someone-else"}))
        good = handle(env, "create", "role_ok", role_account(twins), ACCOUNT_HANDLER)
        assert error_message(good) is None and [c["id"] for c in good["base_calls"]] == ["role_ok"]
        ecs = handle(env, "create", "ecs_ok", {"credential_type": "ecs_ram_role"}, ACCOUNT_HANDLER)
        assert error_message(ecs) is None and len(ecs["base_calls"]) == 1
        refusals = {
            "wrong ExternalId": role_account(twins, external_id="ext-not-this-one"),
            "no such role": role_account(twins, role_arn="acs:ram::123456789012:role/missing"),
            "not allowed to assume the role": role_account(twins, role_arn="acs:ram::123456789012:role/locked"),
            "base AccessKey secret is wrong": role_account(twins, access_key_secret="not-the-base-secret"),
        }
        for words, fields in refusals.items():
            outcome = handle(env, "create", "role_bad", fields, ACCOUNT_HANDLER)
            message = error_message(outcome) or ""
            assert words in message and "account 'role_bad' (assume_role)" in message, (words, message)
            assert outcome["base_calls"] == []
            assert EXTERNAL_ID not in message and BASE_SECRET not in message
        not_attached = handle(env, "create", "ecs_bad", {"credential_type": "ecs_ram_role",
                                                         "ecs_role_name": "other-role"}, ACCOUNT_HANDLER)
        assert "RAM role 'other-role' is not attached to this ECS instance" in (error_message(not_attached) or "")
        env.runner.extra_env[IMDS_URL_ENV] = "http://127.0.0.1:9"
        unreachable = handle(env, "create", "ecs_bad", {"credential_type": "ecs_ram_role"}, ACCOUNT_HANDLER)
        assert "metadata service at http://127.0.0.1:9 is unreachable from this host" in (
            error_message(unreachable) or "")
        assert unreachable["base_calls"] == []


def test_an_edit_is_checked_merged_into_the_stored_role_account(env: AddonEnv) -> None:
    from .credential_twins import CredentialTwins

    with CredentialTwins(env) as twins:
        # role_key is stored by the twins with the right ExternalId; the edit sends only the field that changes.
        wrong = handle(env, "edit", twins.ROLE_KEY_ACCOUNT, {"external_id": "ext-not-this-one"}, ACCOUNT_HANDLER)
        assert "wrong ExternalId" in (error_message(wrong) or "") and wrong["base_calls"] == []
        fine = handle(env, "edit", twins.ROLE_KEY_ACCOUNT, {"duration_seconds": "1800"}, ACCOUNT_HANDLER)
        assert error_message(fine) is None and len(fine["base_calls"]) == 1


def test_role_account_fields_are_required_per_type(env: AddonEnv) -> None:
    outcome = handle(env, "create", "role_x", {"credential_type": "assume_role"}, ACCOUNT_HANDLER)
    assert error_message(outcome) == "an account of type assume_role needs role_arn"
    half_key = handle(env, "create", "role_x", {"credential_type": "assume_role", "access_key_id": AK_ID,
                                                "role_arn": "acs:ram::123456789012:role/r"}, ACCOUNT_HANDLER)
    assert "give both the AccessKey ID and the secret of the base credentials, or neither" in (
        error_message(half_key) or "")
    assert outcome["base_calls"] == [] and half_key["base_calls"] == []
