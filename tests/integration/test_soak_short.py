"""The soak, short: ``bench/soak.py --minutes 1 --clients 8`` against a real server on PostgreSQL,
SIGKILLed twice and with its database crashed once, holds every invariant (and says so in its exit
code). The full ten-minute run and its figures: docs/BENCHMARKS.md."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SOAK_TIMEOUT_S = 1200  # one minute of load; the restarts, the drain and a loaded machine take the rest


def test_a_short_soak_loses_nothing_and_bills_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "soak.json"
    argv = [sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "1", "--clients", "8"]
    argv += ["--model-dir", str(tiny_model_dir), "--json", str(report_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=SOAK_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert [w["kind"] for w in report["windows"]] == ["kill", "postgres", "kill"]
    assert report["lost"] == [] and report["billed_twice"] == [] and report["receipt_mismatch"] == []
    assert report["billed_unfinished"] == []
    assert Decimal(report["ledger_total"]) == Decimal(report["receipts_total"]) > 0
    assert Decimal(report["quoted_total"]) == Decimal(report["ledger_of_quoted"]) > 0
    assert report["5xx_outside"] == 0 and report["transport_outside"] == 0
    assert report["transport_inside"] > 0  # the kills were felt by the clients
    outcomes = report["outcomes"]
    assert outcomes.get("budget 402", 0) > 0
    assert outcomes.get("hostile oversized 413", 0) > 0
    assert not any(o.startswith("hostile") and o.split()[-1].startswith("2") for o in outcomes)
    assert report["jobs"].get("succeeded", 0) > 0 and report["jobs"].get("cancelled", 0) > 0
    assert report["latency_ms"]["cache_hit"]["n"] > 0 and report["latency_ms"]["render"]["n"] > 0
    growth = [end - start for start, end in report["rss_mib"]]
    assert growth and max(growth) <= report["rss_growth_bound_mib"]
    assert outcomes.get("peek 404", 0) > 0 and not any(o.startswith("peek 2") for o in outcomes)
    assert "ok   jobs lost: 0" in done.stdout
