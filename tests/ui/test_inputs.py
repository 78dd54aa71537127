"""The Inputs page: the new-input dialog, its live check, the table's switches, and then the built modular input
running from exactly what the page saved."""

from __future__ import annotations

import json
import os
import socket
from typing import Dict, Iterator, List

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from sls_forwarder.config import parse_input
from sls_forwarder.errors import ConfigError
from sls_forwarder.modinput import explain
from tests.emulators.sls.datagen import DataSpec, load_direct
from tests.integration.harness import AK_ID, AK_SECRET, HEC_TOKEN, LOGSTORE, PROJECT, wait_until

from .browser import Browser
from .conftest import UiEnv
from .flows import add_account, add_hec_destination
from .pages import Dialog, UccPage

SCHEME = "aliyun_sls"
INPUTS_ENDPOINT = "ta_aliyun_sls_aliyun_sls"
EVENTS = 120


@pytest.fixture(scope="module")
def prepared(browser: Browser, ui_env: UiEnv) -> Iterator[UiEnv]:
    """An account and a HEC destination saved through the Configuration page, and data in the Logstore."""
    page = UccPage(browser, ui_env.web.page_url("configuration")).open()
    if ui_env.splunkd.stanza("ta_aliyun_sls_account", "acct_ui") is None:
        add_account(page, "acct_ui", AK_ID, AK_SECRET)
    if ui_env.splunkd.stanza("ta_aliyun_sls_hec_destination", "hec_ui") is None:
        add_hec_destination(page, "hec_ui", ui_env.hec.url, HEC_TOKEN, use_ack=True)
    ui_env.splunkd.store_encrypted("ta_aliyun_sls_account", "acct_wrong", {"access_key_secret": "not-the-secret"},
                                   {"access_key_id": AK_ID, "credential_type": "access_key"})
    load_direct(ui_env.sls, PROJECT, LOGSTORE, DataSpec(event_count=EVENTS, logs_per_group=10))
    yield ui_env


def fields(env: UiEnv, **overrides: str) -> Dict[str, str]:
    """What an admin types for an input against the SLS emulator."""
    values = {"name": "in_stream", "endpoint": f"http://127.0.0.1:{env.sls.port}", "project": PROJECT,
              "logstore": LOGSTORE, "consumer_group": "splunk", "start_position": "begin",
              "heartbeat_interval": "2"}
    values.update(overrides)
    return values


def new_input(page: UccPage, env: UiEnv, account: str = "acct_ui", delivery: str = "stream",
              hec_destination: str = "", **overrides: str) -> Dialog:
    dialog = page.add("Create New Input")
    dialog.fill(fields(env, **overrides))
    dialog.select("account", account)
    dialog.select("delivery", delivery)
    if hec_destination:
        dialog.select("hec_destination", hec_destination)
    dialog.set_combo("index", "main")
    return dialog


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_new_input_dialog_offers_the_saved_accounts(inputs_page: UccPage, prepared: UiEnv, shot) -> None:  # type: ignore[no-untyped-def]
    dialog = inputs_page.add("Create New Input")
    assert {"acct_ui", "acct_wrong"} <= set(dialog.options("account"))
    assert dialog.options("delivery") == ["stream", "hec"]
    dialog.fill(fields(prepared))
    dialog.select("account", "acct_ui")
    dialog.scroll_to_top()
    shot("new-input")
    inputs_page.browser.click(dialog.button("Cancel"))
    dialog.wait_closed()


def test_hec_destination_field_appears_only_with_hec(inputs_page: UccPage, prepared: UiEnv) -> None:
    dialog = inputs_page.add("Create New Input")
    assert "hec_destination" not in dialog.visible_fields()
    dialog.select("delivery", "hec")
    inputs_page.browser.wait(lambda: "hec_destination" in dialog.visible_fields(), 5, "the HEC destination field")
    assert dialog.options("hec_destination") == ["hec_ui"]
    dialog.select("delivery", "stream")
    inputs_page.browser.wait(lambda: "hec_destination" not in dialog.visible_fields(), 5, "no HEC destination field")
    inputs_page.browser.click(dialog.button("Cancel"))
    dialog.wait_closed()


def test_sourcetype_default_is_the_routing_one(inputs_page: UccPage, prepared: UiEnv) -> None:
    dialog = inputs_page.add("Create New Input")
    default = dialog.value("sourcetype")
    inputs_page.browser.click(dialog.button("Cancel"))
    dialog.wait_closed()
    assert default == "auto"


def sentence(code: str, values: Dict[str, str]) -> str:
    name = values.pop("name")
    return explain(ConfigError("", code=code), parse_input(name, values))


LIVE_CHECK_CASES = {
    "wrong secret": ({"account": "acct_wrong"}, "SignatureNotMatch"),
    "unknown logstore": ({"logstore": "no-such-logstore"}, "LogStoreNotExist"),
    "unreachable endpoint": ({"endpoint": "http://127.0.0.1:{port}"}, None),
}


@pytest.mark.parametrize("case", sorted(LIVE_CHECK_CASES))
def test_live_check_error_shows_in_the_dialog_as_a_sentence(inputs_page: UccPage, prepared: UiEnv,
                                                            case: str) -> None:
    overrides, code = LIVE_CHECK_CASES[case]
    overrides = {key: value.format(port=free_port()) for key, value in overrides.items()}
    account = overrides.pop("account", "acct_ui")
    dialog = new_input(inputs_page, prepared, account=account, name="in_refused", **overrides)
    dialog.submit()
    shown = dialog.wait_error()
    if code is None:
        assert f"endpoint {overrides['endpoint']!r} is unreachable or not answering" in shown, shown
    else:
        values = dict(fields(prepared, name="in_refused", **overrides), account=account, delivery="stream")
        assert sentence(code, values) in shown, shown
    for wrapper in ("Unexpected error", "REST Error", "unknown error", "Traceback"):
        assert wrapper not in shown, shown
    assert prepared.splunkd.input_stanza(SCHEME, "in_refused") is None
    inputs_page.browser.click(dialog.button("Cancel"))
    dialog.wait_closed()
    # The refused save was a 400 from the handler: expected, and the only failed request.
    inputs_page.browser.forget(lambda text: INPUTS_ENDPOINT in text or "status of 400" in text)


def stored(env: UiEnv, name: str) -> Dict[str, str]:
    stanza = env.splunkd.input_stanza(SCHEME, name)
    assert stanza is not None, f"input {name} was not saved"
    return stanza


# Optional fields the stream input sets, and what the delivered events must then show.
# The stream input names the generic sourcetype, so the host and JSON fields the page sets shape its events; the HEC
# input keeps the page's default, auto, which routes the ActionTrail data to aliyun:actiontrail.
STREAM_OPTIONS = {"event_source": "sls:ui-test", "host_field": "event.acsRegion", "json_fields": "event",
                  "sourcetype": "aliyun:sls"}


def test_create_an_input_with_each_delivery_mode(inputs_page: UccPage, prepared: UiEnv, shot) -> None:  # type: ignore[no-untyped-def]
    dialog = new_input(inputs_page, prepared, **STREAM_OPTIONS)
    dialog.submit()
    dialog.wait_closed(60)
    inputs_page.wait_row("in_stream")
    dialog = new_input(inputs_page, prepared, delivery="hec", hec_destination="hec_ui", name="in_hec",
                       consumer_group="splunk_hec")
    dialog.submit()
    dialog.wait_closed(60)
    inputs_page.wait_row("in_hec")
    assert inputs_page.cell("in_hec", "delivery") == "hec"
    shot("inputs")
    stream, hec = stored(prepared, "in_stream"), stored(prepared, "in_hec")
    assert stream["delivery"] == "stream" and stream["account"] == "acct_ui" and stream["index"] == "main"
    assert hec["delivery"] == "hec" and hec["hec_destination"] == "hec_ui" and hec["consumer_group"] == "splunk_hec"


def status_switch(page: UccPage, name: str) -> WebElement:
    row = page.wait_row(name)
    assert row is not None
    return row.find_element(By.CSS_SELECTOR, "td[data-column='disabled'] [data-test='toggle']")


def test_disable_enable_clone_delete(inputs_page: UccPage, prepared: UiEnv) -> None:
    inputs_page.browser.click(status_switch(inputs_page, "in_stream"))
    inputs_page.browser.wait(lambda: stored(prepared, "in_stream").get("disabled") == "1", 20, "in_stream disabled")
    inputs_page.browser.click(status_switch(inputs_page, "in_stream"))
    inputs_page.browser.wait(lambda: stored(prepared, "in_stream").get("disabled") == "0", 20, "in_stream enabled")

    dialog = inputs_page.row_action("in_stream", "clone")
    dialog.set_text("name", "in_copy")
    dialog.set_text("consumer_group", "splunk_copy")
    dialog.submit()
    dialog.wait_closed(60)
    inputs_page.wait_row("in_copy")
    assert stored(prepared, "in_copy")["logstore"] == LOGSTORE
    inputs_page.delete("in_copy")
    assert prepared.splunkd.input_stanza(SCHEME, "in_copy") is None


def event_ids_of_stream(events: List[dict]) -> List[str]:
    return [json.loads(event["data"])["event_id"] for event in events]


def test_the_modular_input_runs_from_what_the_pages_saved(prepared: UiEnv) -> None:
    """The pages and the input agree on every field name: the saved stanzas drive the built input to delivery."""
    runner, splunkd = prepared.stack.runner, prepared.splunkd
    checkpoints = os.path.join(runner.splunk_home, "var", "lib", "splunk", "modinputs", SCHEME)
    os.makedirs(checkpoints, exist_ok=True)
    stream = runner.start("in_stream", stored(prepared, "in_stream"), splunkd.url, splunkd.session_key, checkpoints)
    hec = runner.start("in_hec", stored(prepared, "in_hec"), splunkd.url, splunkd.session_key, checkpoints)
    try:
        events = stream.wait_for_events(EVENTS, timeout=60)
        wait_until(lambda: len(prepared.hec.events()) >= EVENTS, timeout=60, message=f"{EVENTS} events over HEC")
    finally:
        stream.terminate()
        hec.terminate()
    assert len(set(event_ids_of_stream(events))) == EVENTS, stream.stderr_text()[-3000:]
    assert {event["index"] for event in events} == {"main"}
    assert {event["source"] for event in events} == {STREAM_OPTIONS["event_source"]}
    bodies = [json.loads(event["data"]) for event in events]
    assert all(event["host"] == body["event.acsRegion"] for event, body in zip(events, bodies))
    assert all(isinstance(body["event"], dict) for body in bodies), "json_fields did not embed the event"
    assert stream.protocol_errors == []
    assert {event["sourcetype"] for event in events} == {"aliyun:sls"}
    hec_events = prepared.hec.events()
    assert {event["sourcetype"] for event in hec_events} == {"aliyun:actiontrail"}
    assert len({event["event"]["eventId"] for event in hec_events}) == EVENTS
