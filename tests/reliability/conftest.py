"""The ``reliability`` marker for every test in this folder (no root pytest.ini) and the summary-row fixture."""

from __future__ import annotations

import os
from typing import Callable, Dict, List

import pytest

from .support import record_summary_row

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: fault-injection scenario of issue 6 (python3 build.py test "
                                       "--reliability prints their summary table)")


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).startswith(HERE + os.sep):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def summary() -> Callable[[Dict[str, object]], None]:
    """``summary(row)`` appends a scenario row to $TA_RELIABILITY_SUMMARY (a no-op when it is not set)."""
    return record_summary_row
