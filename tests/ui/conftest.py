"""The built add-on's setup pages in headless Chromium, against the Splunk Web stand-in (one per session).

SLS and HEC emulators stand behind the add-on as in tests/integration; the stand-in's splunkd double is where the
pages' REST handlers persist, and where the modular input later reads its configuration.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Iterator

import pytest

from tests.emulators.hec import HecEmulator
from tests.emulators.sls.server import SlsEmulator
from tests.emulators.splunkweb import SplunkWebStack
from tests.integration.harness import AK_ID, AK_SECRET, HEC_TOKEN, LOGSTORE, PROJECT, PYTHONS, built_app_dir

from .browser import Browser, BrowserUnavailable
from .pages import UccPage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCREENSHOTS = os.environ.get("UI_SCREENSHOTS") or os.path.join(ROOT, "build", "ui-screenshots")


@dataclass
class UiEnv:
    stack: SplunkWebStack
    sls: SlsEmulator
    hec: HecEmulator

    @property
    def web(self) -> Any:
        assert self.stack.web is not None
        return self.stack.web

    @property
    def splunkd(self) -> Any:
        return self.stack.splunkd

    def rest_get(self, endpoint: str) -> Dict[str, Any]:
        """What the browser gets for ``GET <endpoint>?output_mode=json`` through the stand-in."""
        url = f"{self.web.url}/en-US/splunkd/__raw/servicesNS/nobody/{self.web.app}/{endpoint}?output_mode=json"
        with urllib.request.urlopen(url, timeout=60) as response:
            return json.load(response)


@pytest.fixture(scope="session")
def ui_env() -> Iterator[UiEnv]:
    app_dir = built_app_dir()
    python = PYTHONS.get("3.13") or list(PYTHONS.values())[-1]
    sls = SlsEmulator(access_keys={AK_ID: AK_SECRET}).start()
    hec = HecEmulator(tokens={HEC_TOKEN: {"ack": True, "indexes": None, "disabled": False}}).start()
    sls.create_project(PROJECT)
    sls.create_logstore(PROJECT, LOGSTORE, shard_count=2)
    try:
        with SplunkWebStack(app_dir, python, hec=hec) as stack:
            yield UiEnv(stack, sls, hec)
    finally:
        hec.stop()
        sls.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    try:
        session = Browser()
    except BrowserUnavailable as err:
        pytest.fail(f"the browser tests need headless Chromium: {err}")
    yield session
    session.quit()


@pytest.fixture(autouse=True)
def no_page_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every browser test ends with no console error and no failed request beyond those it accounted for, and the
    stand-in answered no request with a server error (also those the browser gave up on)."""
    if "browser" not in request.fixturenames:
        yield
        return
    env: UiEnv = request.getfixturevalue("ui_env")
    served_before = len(env.web.served())
    yield
    session: Browser = request.getfixturevalue("browser")
    errors, failed = session.console_errors(), session.failed_requests()
    session.console.clear()
    session.responses.clear()
    session.failures.clear()
    server_errors = [f"{s.method} {s.path} -> {s.status}" for s in env.web.served()[served_before:] if s.status >= 500]
    assert not errors, f"browser console errors: {errors}"
    assert not failed, f"failed requests: {failed}"
    assert not server_errors, f"the stand-in answered with server errors: {server_errors}"


@pytest.fixture
def configuration(browser: Browser, ui_env: UiEnv) -> UccPage:
    return UccPage(browser, ui_env.web.page_url("configuration")).open()


@pytest.fixture
def inputs_page(browser: Browser, ui_env: UiEnv) -> UccPage:
    return UccPage(browser, ui_env.web.page_url("inputs")).open()


@pytest.fixture
def shot(browser: Browser):  # type: ignore[no-untyped-def]
    """Save a screenshot as <UI_SCREENSHOTS>/<name>.png (build.py screenshots copies some into docs/images)."""
    def save(name: str) -> str:
        path = os.path.join(SCREENSHOTS, f"{name}.png")
        browser.screenshot(path)
        return path
    return save
