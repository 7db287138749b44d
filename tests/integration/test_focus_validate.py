"""The FinOps Foundation's FOCUS validator (focus-validator 2.2.1, FOCUS 1.2) on our export."""

from __future__ import annotations

import csv
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.governance.focus import write_focus
from rendercost.ledger.ledger import Ledger
from tests.unit.governance.test_focus import seed_month_edge

REPO_ROOT = Path(__file__).resolve().parents[2]
# shared/ sits beside the repository (in development and in CI); FOCUS_VALIDATE overrides it.
VALIDATOR = Path(os.environ.get("FOCUS_VALIDATE", REPO_ROOT.parent / "shared" / "tools" / "focus-validate"))
UNSATISFIABLE_LEAVES = {"InvoiceId-C-004-C"}


@pytest.mark.slow  # the validator takes 3-36 s per file
@pytest.mark.integration
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_focus_validator_passes(tmp_path: Path, suffix: str) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    migrate(engine)
    seed_month_edge(engine)
    out = tmp_path / f"focus{suffix}"
    result = write_focus(engine, out)
    assert result.billed_total == _billed_in_file(out) == Ledger(engine).total()
    engine.dispose()
    done = subprocess.run(
        [str(VALIDATOR), str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    failed = {line.split()[1].rstrip(":") for line in report.splitlines() if line.startswith("\u274c")}
    # InvoiceId's two nullability leaves exclude each other (null without an invoice, not null with a
    # provisional one); the validator counts the one not taken as failed even though their OR passes.
    assert failed <= UNSATISFIABLE_LEAVES, report
    assert "InvoiceId-C-003-C: PASS" in report, report
    assert f"Fail: {len(failed)} " in report, report


def _billed_in_file(path: Path) -> Decimal:
    """The exact sum of BilledCost as read back from the written file."""
    if path.suffix == ".csv":
        with path.open() as handle:
            return sum((Decimal(row["BilledCost"]) for row in csv.DictReader(handle)), Decimal(0))
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    return sum((Decimal(value) for value in pq.read_table(path).column("BilledCost").to_pylist()), Decimal(0))
