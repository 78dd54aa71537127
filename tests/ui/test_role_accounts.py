"""An STS AssumeRole account saved from the Configuration page in headless Chromium (issue 12): the live check on
save names a wrong ExternalId in the dialog; fixed, the account is stored with its ExternalId encrypted."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.emulators.sts import Role, StsEmulator
from tests.integration.credential_twins import BASE_KEY, BASE_SECRET, EXTERNAL_ID, ROLE_ARN

from .conftest import UiEnv
from .pages import UccPage

ACCOUNT_CONF = "ta_aliyun_sls_account"
ACCOUNT_ENDPOINT = "ta_aliyun_sls_account"


@pytest.fixture
def sts() -> Iterator[StsEmulator]:
    with StsEmulator({BASE_KEY: BASE_SECRET}, [Role(ROLE_ARN, trusted=frozenset({BASE_KEY}),
                                                    external_id=EXTERNAL_ID)]) as twin:
        yield twin


def test_assume_role_account_is_checked_on_save_and_stored_encrypted(configuration: UccPage, ui_env: UiEnv,
                                                                     sts: StsEmulator, shot) -> None:  # type: ignore[no-untyped-def]
    configuration.tab("Accounts")
    dialog = configuration.add()
    dialog.select("credential_type", "assume_role")
    dialog.fill({"name": "role_ui", "access_key_id": BASE_KEY, "access_key_secret": BASE_SECRET,
                 "role_arn": ROLE_ARN, "external_id": "ext-not-this-one", "sts_endpoint": sts.endpoint})
    dialog.submit()
    shown = dialog.wait_error()
    assert "wrong ExternalId" in shown and "account 'role_ui' (assume_role)" in shown, shown
    for leaked in (BASE_SECRET, "ext-not-this-one", "Traceback"):
        assert leaked not in shown, shown
    assert ui_env.splunkd.stanza(ACCOUNT_CONF, "role_ui") is None
    configuration.browser.forget(lambda text: ACCOUNT_ENDPOINT in text or "status of 400" in text)

    dialog.set_text("external_id", EXTERNAL_ID)
    shot("account_assume_role")
    dialog.submit()
    dialog.wait_closed()
    configuration.wait_row("role_ui")
    assert configuration.cell("role_ui", "credential_type") == "STS AssumeRole"
    assert configuration.cell("role_ui", "role_arn") == ROLE_ARN
    stanza = ui_env.splunkd.stanza(ACCOUNT_CONF, "role_ui")
    assert stanza["external_id"] == "******" and stanza["access_key_secret"] == "******"
    assert stanza["duration_seconds"] == "3600" and stanza["sts_endpoint"] == sts.endpoint
    assert ui_env.splunkd.read_encrypted(ACCOUNT_CONF, "role_ui") == {"access_key_secret": BASE_SECRET,
                                                                      "external_id": EXTERNAL_ID}
    assert sts.assumed() == ["NoPermission", "issued"]
    assert EXTERNAL_ID not in configuration.browser.driver.page_source
    configuration.delete("role_ui")
    assert ui_env.splunkd.stanza(ACCOUNT_CONF, "role_ui") is None
