"""The Splunk Web stand-in's own contract, without a browser: CSRF, exposure, and splunkd's handling of handler
failures and arguments (what the pages rely on when they show an error)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlencode

from tests.integration.harness import AK_ID

from .conftest import UiEnv


def call(env: UiEnv, method: str, endpoint: str, body: Optional[Dict[str, str]] = None,
         form_key: bool = True) -> Tuple[int, Dict[str, Any]]:
    """One call as the pages make it: cookie from a page load, the form key header unless told otherwise."""
    web = env.web
    with urllib.request.urlopen(web.page_url("configuration"), timeout=30) as page:
        cookie = page.headers["Set-Cookie"].split(";")[0]
    headers = {"Cookie": cookie, "X-Requested-With": "XMLHttpRequest",
               "Content-Type": "application/x-www-form-urlencoded"}
    if form_key:
        headers["X-Splunk-Form-Key"] = cookie.split("=", 1)[1]
    url = f"{web.url}/en-US/splunkd/__raw/servicesNS/nobody/{web.app}/{endpoint}?output_mode=json"
    data = urlencode(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_a_post_without_the_form_key_is_refused(ui_env: UiEnv) -> None:
    status, body = call(ui_env, "POST", "ta_aliyun_sls_account",
                        {"name": "acct_csrf", "credential_type": "access_key", "access_key_id": AK_ID,
                         "access_key_secret": "s"}, form_key=False)
    assert status == 401
    assert body["messages"][0]["text"] == "Splunk cannot authenticate the request. CSRF validation failed."
    assert ui_env.splunkd.stanza("ta_aliyun_sls_account", "acct_csrf") is None


def test_an_endpoint_no_web_conf_exposes_is_refused(ui_env: UiEnv) -> None:
    status, _ = call(ui_env, "GET", "no/such/endpoint")
    assert status == 404


def test_an_argument_the_handler_does_not_declare_is_refused(ui_env: UiEnv) -> None:
    status, body = call(ui_env, "POST", "ta_aliyun_sls_account",
                        {"name": "acct_extra", "credential_type": "access_key", "access_key_id": AK_ID,
                         "access_key_secret": "s", "region": "cn-hangzhou"})
    assert status == 400
    assert body["messages"][0]["text"] == 'Argument "region" is not supported by this handler.'
    assert ui_env.splunkd.stanza("ta_aliyun_sls_account", "acct_extra") is None


def test_a_handler_that_cannot_import_fails_with_splunkds_message(ui_env: UiEnv) -> None:
    """What splunkd answered for the accounts endpoint while AccountHandler did not exist."""
    handlers = ui_env.stack.handlers
    assert handlers is not None
    broken = os.path.join(handlers.app_dir, "bin", "ta_aliyun_sls_rh_broken.py")
    with open(broken, "w", encoding="utf-8") as handle:
        handle.write("import import_declare_test\nfrom ta_aliyun_sls_validation import NoSuchHandler\n")
    handlers.handlers["ta_aliyun_sls_broken"] = os.path.basename(broken)
    try:
        response = handlers.call("ta_aliyun_sls_broken", "list", None, {}, ui_env.splunkd.session_key)
    finally:
        del handlers.handlers["ta_aliyun_sls_broken"]
        os.remove(broken)
    assert response.status == 500
    assert response.error is not None
    assert response.error.startswith('Unexpected error "<class \'ImportError\'>" from python handler: '
                                     '"cannot import name \'NoSuchHandler\''), response.error
