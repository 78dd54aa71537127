"""The Configuration page: every tab, and what each dialog saves where."""

from __future__ import annotations

import pytest

from tests.integration.harness import AK_ID, AK_SECRET, HEC_TOKEN

from .browser import Browser
from .conftest import UiEnv
from .flows import add_hec_destination, built_global_config, expected_visible, select_values, tab_config
from .pages import UccPage

ACCOUNT_CONF = "ta_aliyun_sls_account"
HEC_CONF = "ta_aliyun_sls_hec_destination"
SETTINGS_CONF = "ta_aliyun_sls_settings"


def test_every_tab_renders_its_table_or_fields(configuration: UccPage, ui_env: UiEnv) -> None:
    tabs = built_global_config(ui_env.web.app_dir)["pages"]["configuration"]["tabs"]
    for tab in tabs:
        configuration.tab(tab["title"])
        if "table" in tab:
            labels = [header["label"] for header in tab["table"]["header"]]
            configuration.browser.wait(
                lambda: all(label in configuration.browser.text() for label in labels), 10, f"{tab['title']} table")
            assert configuration.browser.visible("table"), tab["title"]
        else:
            form = configuration.settings(tab["name"])
            configuration.browser.wait(lambda: form.visible_fields(), 10, f"{tab['title']} fields")
            assert form.visible_fields() == [entity["field"] for entity in tab["entity"]], tab["title"]


def test_account_add_edit_clone_delete(configuration: UccPage, ui_env: UiEnv, shot) -> None:  # type: ignore[no-untyped-def]
    configuration.tab("Accounts")
    dialog = configuration.add()
    assert dialog.title() == "Add Account"
    dialog.fill({"name": "acct_ui", "access_key_id": AK_ID, "access_key_secret": AK_SECRET})
    dialog.submit()
    dialog.wait_closed()
    assert configuration.cell("acct_ui", "credential_type") == "AccessKey pair"
    assert configuration.cell("acct_ui", "access_key_id") == AK_ID
    assert AK_SECRET not in configuration.browser.driver.page_source
    shot("configuration")

    # Stored as UCC stores it: masked in the conf, the secret in storage/passwords; never returned by a GET.
    assert ui_env.splunkd.stanza(ACCOUNT_CONF, "acct_ui")["access_key_secret"] == "******"
    assert ui_env.splunkd.read_encrypted(ACCOUNT_CONF, "acct_ui") == {"access_key_secret": AK_SECRET}
    listed = ui_env.rest_get("ta_aliyun_sls_account")
    assert AK_SECRET not in str(listed)
    assert [e["content"]["access_key_secret"] for e in listed["entry"] if e["name"] == "acct_ui"] == ["******"]

    # Edit: the page never resends the masked secret, so the stored one stays.
    dialog = configuration.row_action("acct_ui", "edit")
    assert dialog.title() == "Update Account"
    assert AK_SECRET not in configuration.browser.driver.page_source
    dialog.set_text("access_key_id", "LTAI5tEditedKey")
    dialog.submit()
    dialog.wait_closed()
    configuration.browser.wait(lambda: configuration.cell("acct_ui", "access_key_id") == "LTAI5tEditedKey", 10,
                               "the edited key id")
    assert ui_env.splunkd.stanza(ACCOUNT_CONF, "acct_ui")["access_key_id"] == "LTAI5tEditedKey"
    assert ui_env.splunkd.read_encrypted(ACCOUNT_CONF, "acct_ui") == {"access_key_secret": AK_SECRET}

    # Clone: a new account with its own secret.
    dialog = configuration.row_action("acct_ui", "clone")
    dialog.set_text("name", "acct_clone")
    dialog.set_text("access_key_secret", "clone-secret")
    dialog.submit()
    dialog.wait_closed()
    assert configuration.cell("acct_clone", "access_key_id") == "LTAI5tEditedKey"
    assert ui_env.splunkd.read_encrypted(ACCOUNT_CONF, "acct_clone") == {"access_key_secret": "clone-secret"}

    configuration.delete("acct_clone")
    assert ui_env.splunkd.stanza(ACCOUNT_CONF, "acct_clone") is None
    assert ui_env.splunkd.read_encrypted(ACCOUNT_CONF, "acct_clone") is None

    # Put the real key back: the input tests use this account.
    dialog = configuration.row_action("acct_ui", "edit")
    dialog.set_text("access_key_id", AK_ID)
    dialog.submit()
    dialog.wait_closed()
    assert ui_env.splunkd.stanza(ACCOUNT_CONF, "acct_ui")["access_key_id"] == AK_ID


def test_each_credential_type_shows_only_its_fields(configuration: UccPage, ui_env: UiEnv) -> None:
    """Written from globalConfig, so every credential type the account tab declares is covered."""
    entities = tab_config(built_global_config(ui_env.web.app_dir), "account")["entity"]
    selector = next(entity for entity in entities if entity["field"] == "credential_type")
    kinds = select_values(selector)
    assert kinds, "the account tab declares no credential type"
    configuration.tab("Accounts")
    dialog = configuration.add()
    assert dialog.options("credential_type") == kinds
    for kind in kinds:
        dialog.select("credential_type", kind)
        expected = expected_visible(entities, "credential_type", kind)
        configuration.browser.wait(lambda: set(dialog.visible_fields()) == expected, 5,
                                   f"the fields of {kind}: {sorted(expected)}, shown {dialog.visible_fields()}")
    configuration.browser.click(dialog.button("Cancel"))
    dialog.wait_closed()


def test_hec_destination_add_edit_delete(configuration: UccPage, ui_env: UiEnv) -> None:
    add_hec_destination(configuration, "hec_ui", ui_env.hec.url, HEC_TOKEN, use_ack=True)
    assert configuration.cell("hec_ui", "use_ack") == "Yes"
    assert configuration.cell("hec_ui", "url") == ui_env.hec.url
    assert HEC_TOKEN not in configuration.browser.driver.page_source
    stanza = ui_env.splunkd.stanza(HEC_CONF, "hec_ui")
    assert stanza["token"] == "******" and stanza["use_ack"] in ("1", "true")
    assert ui_env.splunkd.read_encrypted(HEC_CONF, "hec_ui") == {"token": HEC_TOKEN}

    dialog = configuration.row_action("hec_ui", "edit")
    assert dialog.title() == "Update HEC destination"
    dialog.set_checkbox("gzip", True)
    dialog.submit()
    dialog.wait_closed()
    assert ui_env.splunkd.stanza(HEC_CONF, "hec_ui")["gzip"] in ("1", "true")
    assert ui_env.splunkd.read_encrypted(HEC_CONF, "hec_ui") == {"token": HEC_TOKEN}

    add_hec_destination(configuration, "hec_spare", "https://127.0.0.1:8088", "spare-token", use_ack=False)
    assert configuration.cell("hec_spare", "use_ack") == "No"
    configuration.delete("hec_spare")
    assert ui_env.splunkd.stanza(HEC_CONF, "hec_spare") is None


def test_hec_destination_saves_a_list_of_urls_and_names_a_bad_element(configuration: UccPage,
                                                                     ui_env: UiEnv) -> None:
    two = f"{ui_env.hec.url}, http://127.0.0.2:8088"
    add_hec_destination(configuration, "hec_two", two, HEC_TOKEN, use_ack=True)
    assert ui_env.splunkd.stanza(HEC_CONF, "hec_two")["url"] == two
    assert configuration.cell("hec_two", "url") == two

    dialog = configuration.add()
    dialog.fill({"name": "hec_bad", "url": "https://idx1.example:8088, idx2.example:8088", "token": "bad-list-token",
                 "verify_tls": False})
    dialog.submit()
    shown = dialog.wait_error()
    assert "HEC element 2 of 2 'idx2.example:8088' must be http(s)://host[:port]" in shown, shown
    for wrapper in ("Unexpected error", "REST Error", "Traceback", "bad-list-token"):
        assert wrapper not in shown, shown
    assert ui_env.splunkd.stanza(HEC_CONF, "hec_bad") is None
    configuration.browser.click(dialog.button("Cancel"))
    dialog.wait_closed()
    # The refused save was a 400 from the handler: expected, and the only failed request.
    configuration.browser.forget(lambda text: HEC_CONF in text or "status of 400" in text)

    dialog = configuration.add()   # not even a URL: the page refuses it before sending anything
    dialog.fill({"name": "hec_bad", "url": "idx1.example:8088", "token": "t", "verify_tls": False})
    dialog.submit()
    assert "Enter http(s)://host[:port], or several separated by commas." in dialog.wait_error()
    configuration.browser.click(dialog.button("Cancel"))
    dialog.wait_closed()
    assert ui_env.splunkd.stanza(HEC_CONF, "hec_bad") is None
    configuration.delete("hec_two")
    assert ui_env.splunkd.stanza(HEC_CONF, "hec_two") is None


def wait_saved(browser: Browser, ui_env: UiEnv, stanza: str, expected: dict) -> None:
    def saved() -> bool:
        values = ui_env.splunkd.stanza(SETTINGS_CONF, stanza) or {}
        return all(values.get(key) == value for key, value in expected.items())
    browser.wait(saved, 20, f"[{stanza}] {expected} in {SETTINGS_CONF}.conf")


def test_proxy_saves_disabled_and_empty_accepts_a_host_name_refuses_a_bad_one(configuration: UccPage,
                                                                                ui_env: UiEnv) -> None:
    configuration.tab("Proxy")
    form = configuration.settings("proxy")
    configuration.browser.wait(lambda: form.visible_fields(), 10, "the proxy fields")
    form.set_checkbox("proxy_enabled", False)
    form.set_text("proxy_url", "")
    form.set_text("proxy_port", "")
    configuration.browser.click(form.button("Save"))
    wait_saved(configuration.browser, ui_env, "proxy", {"proxy_url": ""})
    assert not form.errors()

    form.set_text("proxy_url", "bad host!")
    configuration.browser.click(form.button("Save"))
    assert "Enter a host name or IP address" in form.wait_error()
    assert ui_env.splunkd.stanza(SETTINGS_CONF, "proxy")["proxy_url"] == ""

    form.fill({"proxy_url": "proxy.corp.example.com", "proxy_port": "3128", "proxy_username": "fwd",
               "proxy_password": "proxy-pass"})
    configuration.browser.click(form.button("Save"))
    wait_saved(configuration.browser, ui_env, "proxy", {"proxy_url": "proxy.corp.example.com", "proxy_port": "3128"})
    assert ui_env.splunkd.stanza(SETTINGS_CONF, "proxy")["proxy_password"] == "******"
    assert ui_env.splunkd.read_encrypted(SETTINGS_CONF, "proxy") == {"proxy_password": "proxy-pass"}
    assert "proxy-pass" not in str(ui_env.rest_get("ta_aliyun_sls_settings/proxy"))
    assert ui_env.splunkd.stanza(SETTINGS_CONF, "proxy").get("proxy_enabled") in ("", "0", "false", None)


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_logging_level(configuration: UccPage, ui_env: UiEnv, level: str) -> None:
    configuration.tab("Logging")
    form = configuration.settings("logging")
    configuration.browser.wait(lambda: form.visible_fields(), 10, "the logging fields")
    form.select("loglevel", level)
    configuration.browser.click(form.button("Save"))
    wait_saved(configuration.browser, ui_env, "logging", {"loglevel": level})


def regex_validators(global_config: dict) -> list:
    """(where, pattern) of every regex validator of the Configuration tabs and the input services."""
    entities = [(f"configuration/{tab['name']}", entity)
                for tab in global_config["pages"]["configuration"]["tabs"] for entity in tab.get("entity", [])]
    entities += [(f"inputs/{service['name']}", entity)
                 for service in global_config["pages"].get("inputs", {}).get("services", [])
                 for entity in service.get("entity", [])]
    return [(f"{where}.{entity['field']}", validator["pattern"]) for where, entity in entities
            for validator in entity.get("validators", []) if validator.get("type") == "regex"]


def test_every_regex_validator_compiles_in_the_browser(configuration: UccPage, ui_env: UiEnv) -> None:
    """The dialogs build ``new RegExp(pattern)``; ucc-gen checks the patterns with Python's ``re`` only, so a
    Python-only construct (``(?P<name>...)``, ``(?i)``) passes the build and breaks the dialog."""
    validators = regex_validators(built_global_config(ui_env.web.app_dir))
    assert validators
    broken = configuration.browser.driver.execute_script(
        "return arguments[0].filter(function (v) { try { new RegExp(v[1]); return false; }"
        " catch (e) { return true; } }).map(function (v) { return v[0] + ': ' + v[1]; });", validators)
    assert broken == [], f"regex validators the browser cannot compile: {broken}"
