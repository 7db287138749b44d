"""Building a worker from settings: the process it runs in hands the GIL back to the render loop within
``gil_switch_interval_ms``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.execution.worker.setup import build_worker
from rendercost.queue.sql_store import SqlJobStore
from rendercost.testing.runner import FakeRunner
from tests.unit.api.conftest import api_settings


@pytest.fixture
def switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_building_a_worker_sets_the_gil_switch_interval(tmp_path: Path, switch_interval: None) -> None:
    settings = api_settings(tmp_path, gil_switch_interval_ms=2.0)
    engine = create_db_engine(settings.resolved_database_url)
    try:
        migrate(engine)
        sys.setswitchinterval(0.005)  # Python's default
        build_worker(settings, SqlJobStore.from_settings(engine, settings), FakeRunner(), worker_id="w")
        assert sys.getswitchinterval() == pytest.approx(0.002)
    finally:
        engine.dispose()


@pytest.mark.parametrize("milliseconds", [0, -1, 101])
def test_a_switch_interval_out_of_range_is_refused(tmp_path: Path, milliseconds: float) -> None:
    with pytest.raises(ValidationError, match="gil_switch_interval_ms"):
        api_settings(tmp_path, gil_switch_interval_ms=milliseconds)
