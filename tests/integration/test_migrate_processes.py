"""Two processes starting at once on an empty database both migrate it safely (real processes)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import current_revision, head_revision

SCRIPT = "import sys; from rendercost.db.migrate import migrate; migrate(sys.argv[1])"


@pytest.mark.slow
def test_two_processes_migrate_one_empty_database(db_url: str) -> None:
    processes = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, db_url], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(process.communicate(timeout=120)[1], process.returncode) for process in processes]
    assert [code for _, code in results] == [0, 0], results
    engine = create_db_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
