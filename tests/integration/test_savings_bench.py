"""bench/savings.py end to end on a short night: two real servers, every request settled, savings by
mechanism that add up to the naive cost once the machine's drift between the servers is taken out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTING_GAP = Decimal("0.06")  # savings + optimized against the re-timed naive (see the test)
MEASURED_GAP = Decimal("0.25")  # savings + optimized against the naive cost as measured


def test_a_short_night_replays_naive_and_optimized(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    command = [sys.executable, str(ROOT / "bench" / "savings.py"), "--requests", "20", "--calibration", "2"]
    command += ["--slices", "4", "--concurrency", "4", "--json", str(out), "--gpu-prices", "l4"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=1200, env={**os.environ}, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text(encoding="utf-8"))
    naive, optimized = figures["naive"], figures["optimized"]
    assert naive["states"] == {"succeeded": 20} and optimized["states"] == {"succeeded": 20}
    assert Decimal(optimized["cost_usd"]) < Decimal(naive["cost_usd"])
    saved = sum((Decimal(v) for v in optimized["savings_usd"].values()), Decimal(0))
    assert {"routing", "lifecycle", "format"} <= set(optimized["savings_usd"])
    # 20 requests measure the machine's drift between the two servers as much as the savings: the
    # measured gap reached 11% here (solo means of a few renders that scatter by 12-16%). Re-timing the
    # naive renders at the optimized server's solo means takes the drift out; what is left (-2.1% here,
    # +1.9% and +2.6% in 400-request runs) is what the ledger counts twice or not at all, and
    # double-counting any mechanism (batching, result cache, routing) opens 12-47% of the naive cost.
    # The 400-request run keeps 5% on the measured gap.
    naive_cost = Decimal(naive["cost_usd"])
    accounting = Decimal(figures["accounting_gap"])
    assert abs(accounting) <= ACCOUNTING_GAP, (accounting, figures)
    gap = abs(naive_cost - Decimal(optimized["cost_usd"]) - saved)
    assert gap <= MEASURED_GAP * naive_cost, (gap, figures)
    assert "re-priced at l4" in done.stdout and "accounting:" in done.stdout
