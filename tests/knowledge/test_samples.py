"""The BUILT app's knowledge objects against every requirement sample, one case per event, plus the lint.

The built app comes from ``python3 build.py test`` (``TA_ALIYUN_SLS_APP``); without it these tests skip, and fail
under ``REQUIRE_BUILT_APP=1`` (the build's own run).
"""

from __future__ import annotations

import os
from typing import List

import pytest

from tests.knowledge.cim import CimRules
from tests.knowledge.knowledge import App
from tests.knowledge.lint import lint_app
from tests.knowledge.samples import SampleEvent, read_samples
from tests.knowledge.simulate import judge

SAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")
# Issue 11: at least 30 events across every routed sourcetype.
SOURCETYPES = ("aliyun:actiontrail", "aliyun:oss:access", "aliyun:slb:access", "aliyun:waf", "aliyun:sas:alert",
               "aliyun:cloudfirewall")
MINIMUM_EVENTS = 30


def built_app_dir() -> str:
    app_dir = os.environ.get("TA_ALIYUN_SLS_APP", "")
    if app_dir and os.path.isdir(os.path.join(app_dir, "default")):
        return app_dir
    reason = f"no built app at TA_ALIYUN_SLS_APP={app_dir!r}; run `python3 build.py test`"
    if os.environ.get("REQUIRE_BUILT_APP") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def sample_events() -> List[SampleEvent]:
    return read_samples(SAMPLES_DIR) if os.path.isdir(SAMPLES_DIR) else []


EVENTS = sample_events()


@pytest.fixture(scope="module")
def app() -> App:
    return App(built_app_dir())


@pytest.fixture(scope="module")
def rules() -> CimRules:
    return CimRules()


@pytest.mark.parametrize("event", EVENTS, ids=[event.label for event in EVENTS])
def test_sample_event(app: App, rules: CimRules, event: SampleEvent) -> None:
    verdict = judge(app, rules, event)
    assert verdict.passed, verdict.line()


def test_samples_cover_every_sourcetype() -> None:
    counts = {sourcetype: sum(1 for event in EVENTS if event.sourcetype == sourcetype) for sourcetype in SOURCETYPES}
    assert len(EVENTS) >= MINIMUM_EVENTS, f"{len(EVENTS)} sample events, issue 11 asks for {MINIMUM_EVENTS}"
    assert all(counts.values()), f"sourcetypes without a sample: {[st for st, n in counts.items() if not n]}"


def test_built_app_lint() -> None:
    findings = lint_app(built_app_dir())
    assert findings == [], "\n".join(findings)
