"""The monitoring dashboard: it loads, every tab dispatches its searches to the stand-in, the custom tab's panels
are there; no JavaScript error and no failed request (checked after every test by conftest)."""

from __future__ import annotations

import json
import os
import time
from typing import Dict, List

from selenium.webdriver.common.by import By

from .browser import Browser
from .conftest import UiEnv

# Tab title -> the UCC definition file of its panels (custom.json is this add-on's own tab).
TABS = {"Data ingestion": "data_ingestion_tab_definition.json", "Errors": "errors_tab_definition.json",
        "Resource consumption": "resources_tab_definition.json", "Shards and delivery": "custom.json"}


def definition(env: UiEnv, name: str) -> Dict:
    path = os.path.join(env.web.app_dir, "appserver", "static", "js", "build", "custom", name)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def fixed_queries(board: Dict) -> List[str]:
    """The board's search queries that contain no $token$ (those arrive verbatim)."""
    queries = [source["options"]["query"] for source in board.get("dataSources", {}).values()
               if source.get("type") == "ds.search"]
    return [query.strip() for query in queries if "$" not in query]


def arrived(env: UiEnv, query: str) -> bool:
    """Splunk prefixes a query that does not start with a command by ``search``."""
    return any(search.strip() in (query, f"search {query}") for search in env.web.search_jobs.searches())


def settle(browser: Browser) -> None:
    """Wait until the charts stop changing (the page's SVG markup is the same twice, half a second apart)."""
    last = {"markup": ""}

    def unchanged() -> bool:
        markup = browser.driver.execute_script(
            "return Array.from(document.querySelectorAll('svg')).map(s => s.outerHTML.length).join(',');")
        same = markup == last["markup"]
        last["markup"] = markup
        time.sleep(0.5)
        return same
    browser.wait(unchanged, 30, "the charts to settle")


def test_dashboard_and_each_tab_load_and_run_their_searches(browser: Browser, ui_env: UiEnv, shot) -> None:  # type: ignore[no-untyped-def]
    browser.open(ui_env.web.page_url("dashboard"))
    browser.wait(lambda: "Monitoring dashboard" in browser.text(), 60, "the dashboard")
    overview = fixed_queries(definition(ui_env, "overview_definition.json"))
    # License usage is found by sourcetype: the events' source is sls:<project>:<logstore>, not the input's name,
    # so UCC's default condition (s IN (<input>*)) would leave the volume panels empty.
    license_searches = [query for query in overview if "license_usage.log" in query]
    assert license_searches and all('st IN ("aliyun:sls","aliyun:actiontrail",' in query
                                    for query in license_searches), license_searches
    browser.wait(lambda: all(arrived(ui_env, query) for query in overview), 60, "the overview's searches")
    # Both overview panels have rendered their (empty) results before the picture.
    browser.wait(lambda: "4 Dec 2026 12:00AM" in browser.text(), 30, "the overview's time range label")
    settle(browser)
    shot("dashboard")
    for title, board_file in TABS.items():
        tab = browser.wait(lambda: [t for t in browser.visible("[role='tab']") if t.text == title], 20, title)[0]
        browser.click(tab)
        browser.wait(lambda: tab.get_attribute("aria-selected") == "true", 10, f"{title} selected")
        queries = fixed_queries(definition(ui_env, board_file))
        assert queries, board_file
        browser.wait(lambda: all(arrived(ui_env, query) for query in queries), 30, f"the searches of {title}")
    custom = definition(ui_env, "custom.json")
    titles = [viz["title"] for viz in custom["visualizations"].values() if viz.get("title")]
    browser.wait(lambda: all(t in browser.text() for t in titles), 20, f"the custom panels {titles}")
    first = browser.driver.find_element(By.XPATH, f"//*[text()={json.dumps(titles[0])}]")
    browser.driver.execute_script("arguments[0].scrollIntoView({block: 'start'}); window.scrollBy(0, -60);", first)
    settle(browser)
    shot("dashboard-custom")
