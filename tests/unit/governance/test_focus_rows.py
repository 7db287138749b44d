"""The FOCUS CSV line is byte for byte what ``csv.writer`` writes, whatever text the ledger holds."""

from __future__ import annotations

import csv
import io
import random
from decimal import Decimal

from rendercost.governance.focus_rows import COLUMNS, LINE_FIELDS, csv_line, focus_values

AWKWARD = ["plain", "a,b", 'say "hi"', "two\nlines", "cr\rhere", "", " spaced ", "é-ü", ',"\n']


def test_csv_line_matches_the_csv_module() -> None:
    rng = random.Random(3)
    for _ in range(400):
        text = {name: rng.choice(AWKWARD) for name in ("job_id", "device_type", "pricing_model", "batch_id")}
        values = focus_values(
            job_id=text["job_id"],
            image_index=rng.randrange(-1, 4),
            stage=rng.choice(["denoise", "storage", "idle", "odd,stage"]),
            device_seconds=rng.random(),
            unit_price=Decimal("0.8000000000"),
            unit=rng.choice(["device-hour", "GB-month", 'u"nit']),
            quantity=str(Decimal(rng.randrange(10**6)).scaleb(-18)),
            cost=Decimal(rng.randrange(10**8)).scaleb(-10),
            cost_avoided="0.0000000000",
            device_type=text["device_type"],
            pricing_model=text["pricing_model"],
            batch_id=text["batch_id"],
            batch_size=rng.randrange(5),
            tenant=rng.choice(["acme", "a,b"]),
            model=rng.choice(AWKWARD),
            preset=rng.choice(AWKWARD),
            request_class=rng.choice([None, "interactive", 'x"y']),
            tags=rng.choice(['{"team": "ml"}', "{}", '{"k": "v,\\"w\\""}']),
            hour=rng.choice(["2026-12-31 23", "2026-01-01 00"]),
        )
        assert len(values) == len(COLUMNS)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        assert csv_line(values) == buffer.getvalue()


def test_line_fields_name_cost_line_columns() -> None:
    from rendercost.ledger.tables import cost_lines

    assert set(LINE_FIELDS) - {"hour"} <= set(cost_lines.c.keys())
