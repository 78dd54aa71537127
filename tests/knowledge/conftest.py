"""Build small throwaway apps for the simulator's own tests."""

from __future__ import annotations

from typing import Callable

import pytest

from tests.knowledge.fixture_app import write_app

AppFactory = Callable[..., str]


@pytest.fixture
def make_app(tmp_path) -> AppFactory:
    counter = [0]

    def factory(**confs: object) -> str:
        counter[0] += 1
        return write_app(str(tmp_path / f"app{counter[0]}"), **confs)  # type: ignore[arg-type]

    return factory
