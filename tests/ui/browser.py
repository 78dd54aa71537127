"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium, with what the page tests
check on every page: console errors and failed requests."""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional

from selenium import webdriver
from selenium.common.exceptions import (ElementClickInterceptedException, StaleElementReferenceException,
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVER_PATHS = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
WINDOW = (1440, 1000)


class BrowserUnavailable(RuntimeError):
    """Chromium or its driver is missing or does not start: a failure, never a skip."""


def _first(paths: tuple, name: str) -> str:
    for path in paths:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found:
        return found
    raise BrowserUnavailable(f"{name} not found (apt-get install chromium chromium-driver; build.py test does it)")


class Browser:
    """One headless Chromium session; collects console messages and network outcomes across pages."""

    def __init__(self) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = _first(CHROMIUM_PATHS, "chromium")
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         f"--window-size={WINDOW[0]},{WINDOW[1]}", "--no-first-run", "--lang=en-US"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        try:
            self.driver = webdriver.Chrome(service=Service(_first(DRIVER_PATHS, "chromedriver")), options=options)
        except WebDriverException as err:
            raise BrowserUnavailable(f"headless Chromium did not start: {err.msg}") from err
        self.driver.set_page_load_timeout(60)
        self.console: List[Dict[str, Any]] = []
        self.responses: Dict[str, Dict[str, Any]] = {}
        self.failures: List[Dict[str, Any]] = []

    def quit(self) -> None:
        self.driver.quit()

    # --------------------------------------------------------------------------------- logs
    def collect(self) -> None:
        """Move the browser's pending console and network logs into ``console``, ``responses``, ``failures``."""
        self.console.extend(self.driver.get_log("browser"))
        for record in self.driver.get_log("performance"):
            message = json.loads(record["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                self.responses[params["requestId"]] = {"url": params["request"]["url"],
                                                       "method": params["request"]["method"], "status": None}
            elif message["method"] == "Network.responseReceived":
                entry = self.responses.setdefault(params["requestId"], {"url": params["response"]["url"],
                                                                          "method": "?"})
                entry["status"] = params["response"]["status"]
            elif message["method"] == "Network.loadingFailed" and not params.get("canceled"):
                entry = self.responses.get(params["requestId"], {"url": "?", "method": "?"})
                self.failures.append(dict(entry, error=params.get("errorText")))

    def console_errors(self) -> List[str]:
        self.collect()
        return [entry["message"] for entry in self.console if entry["level"] == "SEVERE"]

    def failed_requests(self) -> List[str]:
        """Requests answered 4xx/5xx or not at all, except those listed in ``expected``."""
        self.collect()
        bad = [f"{r['method']} {r['url']} -> {r['status']}" for r in self.responses.values()
               if r.get("status") is not None and r["status"] >= 400]
        bad += [f"{r['method']} {r['url']} -> {r['error']}" for r in self.failures]
        return bad

    def forget(self, predicate: Callable[[str], bool]) -> None:
        """Drop console entries and responses an assertion has already accounted for (an expected 4xx)."""
        self.collect()
        self.console = [entry for entry in self.console if not predicate(entry["message"])]
        self.responses = {key: r for key, r in self.responses.items() if not predicate(f"{r['url']} {r['status']}")}

    # ------------------------------------------------------------------------------ helpers
    def open(self, url: str) -> None:
        self.driver.get(url)

    def wait(self, condition: Callable[[], Any], timeout: float = 20.0, what: str = "the page") -> Any:
        deadline = time.monotonic() + timeout
        last_error: Optional[Exception] = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except (StaleElementReferenceException, WebDriverException) as err:
                last_error = err
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                             + (f" (last error: {last_error})" if last_error else ""))

    def click(self, element: WebElement) -> None:
        """Click; when a toast lies over the element, click it the way the toast's owner would, by script."""
        try:
            element.click()
        except ElementClickInterceptedException:
            self.driver.execute_script("arguments[0].click();", element)

    def find(self, css: str) -> List[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def visible(self, css: str) -> List[WebElement]:
        return [element for element in self.find(css) if element.is_displayed()]

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def screenshot(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.driver.save_screenshot(path)
