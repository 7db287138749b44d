"""bench/planner.py runs end to end on small sizes and prints every path and the goal line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_planner_benchmark_prints_each_path_and_the_goal() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "planner.py"), "--sizes", "300,600"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = done.stdout.splitlines()
    for path in ("fixed fleet", "autoscale + spot", "whole scenario"):
        assert sum(line.startswith(path) for line in lines) == 3, done.stdout  # two sizes, the ratio
    assert "goal: 600 jobs in under 60 s (whole scenario): met" in done.stdout
