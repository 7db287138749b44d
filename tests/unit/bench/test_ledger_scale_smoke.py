"""bench/ledger_scale.py runs end to end at a tiny size (``--lines``) and prints its table and ratios."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "bench" / "ledger_scale.py"

pytestmark = pytest.mark.slow


def test_ledger_scale_runs_tiny() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "bench"), str(ROOT)])}
    args = [sys.executable, str(SCRIPT), "--lines", "300,900", "--admissions", "3", "--rounds", "1"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "seeded 300 lines" in out and "seeded 900 lines" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("300", "900"))]
    assert [row[0] for row in rows] == ["300", "900"] and all(len(row) == 9 for row in rows)
    assert "admission p99" in out and "FOCUS export of 900 lines" in out
