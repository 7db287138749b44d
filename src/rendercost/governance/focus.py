"""FOCUS 1.2 export of the ledger: one row per cost line (``focus_rows``), CSV or Parquet.

The rows are an *allocation of machine cost* (``x_AllocationOf = "machine cost"``): the cloud bill
already holds the machine, so these rows say who used it. Load them beside the bill for showback, never
add them to it. Every money column is a decimal string; ``BilledCost`` equals the ledger's ``cost``,
so the export's total equals ``Ledger.total`` over the same window to the cent (and beyond).

The lines are streamed from the database (read in batches of ``STREAM_BATCH``, money and tags as text)
and CSV is written as they come, so memory stays flat in the lines (the window's saving lines, far
fewer, are read first and joined to their cost lines by job, image and stage).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, Engine, Text, cast, func, select

from rendercost.governance.focus_rows import COLUMNS, LINE_FIELDS, csv_header, csv_line, focus_values
from rendercost.governance.reports import saving_rows
from rendercost.ledger.ledger import period_filters
from rendercost.ledger.tables import cost_lines

STREAM_BATCH = 5000  # lines fetched from the cursor at a time
_AS_TEXT = frozenset({"unit_price", "quantity", "cost", "cost_avoided", "tags"})  # exact, undecoded


@dataclass(frozen=True)
class FocusExport:
    """What ``write_focus`` wrote: the file, its row count and the exact sum of ``BilledCost``."""

    path: Path
    rows: int
    billed_total: Decimal


def _hour_text(conn: Connection) -> Any:
    """ "YYYY-MM-DD HH" of a line's UTC creation time, in SQL (SQLite keeps UTC text)."""
    if conn.dialect.name == "sqlite":
        return func.substr(cost_lines.c.created_at, 1, 13)
    return func.to_char(func.timezone("UTC", cost_lines.c.created_at), "YYYY-MM-DD HH24")


def iter_focus_values(
    engine: Engine, since: datetime | None = None, until: datetime | None = None, tenant: str | None = None
) -> Iterator[tuple[str, ...]]:
    """FOCUS rows (``COLUMNS`` order) for lines created in ``[since, until)`` (optionally one
    tenant's), oldest first, streamed from the cursor in batches."""
    with engine.connect() as conn:
        read = [
            _hour_text(conn).label(name)
            if name == "hour"
            else cast(cost_lines.c[name], Text).label(name)
            if name in _AS_TEXT
            else cost_lines.c[name]
            for name in LINE_FIELDS
        ]
        query = select(*read).where(*period_filters(since, until, tenant))
        query = query.order_by(cost_lines.c.created_at, cost_lines.c.id)
        savings = _savings_by_line(engine, since, until, tenant)
        lines = conn.execution_options(yield_per=STREAM_BATCH).execute(query)
        if not savings:
            for line in lines:
                yield focus_values(*line)
            return
        for line in lines:  # LINE_FIELDS starts with job_id, image_index, stage: the savings' key
            yield focus_values(*line, savings=savings.get(tuple(line[:3])))


def _savings_by_line(
    engine: Engine, since: datetime | None, until: datetime | None, tenant: str | None
) -> dict[tuple[str, int, str], dict[str, Decimal]]:
    """The window's saving lines, per (job, image, stage) of the cost line they were measured on."""
    found: dict[tuple[str, int, str], dict[str, Decimal]] = defaultdict(dict)
    for saved in saving_rows(engine, since, until, tenant):
        found[(saved["job_id"], saved["image_index"], saved["stage"])][str(saved["mechanism"])] = saved[
            "amount"
        ]
    return found


def iter_focus_rows(
    engine: Engine, since: datetime | None = None, until: datetime | None = None, tenant: str | None = None
) -> Iterator[dict[str, str]]:
    """The same rows as column -> text dicts."""
    for values in iter_focus_values(engine, since, until, tenant):
        yield dict(zip(COLUMNS, values, strict=True))


def write_csv_to(rows: Iterable[tuple[str, ...]], handle: TextIO) -> tuple[int, Decimal]:
    """CSV with a header row (empty strings are FOCUS nulls), written as the rows come; returns how
    many rows and the exact sum of their ``BilledCost``."""
    handle.write(csv_header())
    count, total, chunk = 0, Decimal(0), []
    for values in rows:
        chunk.append(csv_line(values))
        total += Decimal(values[0])  # BilledCost
        if len(chunk) == STREAM_BATCH:
            handle.writelines(chunk)
            count += len(chunk)
            chunk = []
    handle.writelines(chunk)
    return count + len(chunk), total


def iter_csv(rows: Iterable[tuple[str, ...]], *, rows_per_chunk: int = 1000) -> Iterator[str]:
    """The CSV of ``rows`` (header first) in chunks of ``rows_per_chunk`` rows: for a streamed HTTP
    answer, so the export never sits whole in memory."""
    chunk = [csv_header()]
    for values in rows:
        chunk.append(csv_line(values))
        if len(chunk) >= rows_per_chunk:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk)


def write_parquet(rows: Iterable[tuple[str, ...]], path: Path) -> tuple[int, Decimal]:
    """Parquet (pyarrow): money and quantities as exact decimal strings, empty strings as nulls."""
    import pyarrow as pa  # type: ignore[import-untyped]  # imported here: only Parquet needs it
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    listed = list(rows)
    table = pa.table({name: [row[i] or None for row in listed] for i, name in enumerate(COLUMNS)})
    pq.write_table(table, path)
    return len(listed), sum((Decimal(row[0]) for row in listed), Decimal(0))


def write_focus(
    engine: Engine,
    path: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tenant: str | None = None,
) -> FocusExport:
    """Write the export to ``path`` (``.csv`` or ``.parquet``); ``ValueError`` for another suffix.

    The file is written to a temporary sibling and renamed, so a failure leaves no half-written file.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"unknown export format {path.suffix!r}: use .csv or .parquet")
    rows = iter_focus_values(engine, since, until, tenant)
    partial = path.with_name(path.name + ".partial")
    try:
        if suffix == ".csv":
            with partial.open("w", newline="", encoding="utf-8") as handle:
                count, total = write_csv_to(rows, handle)
        else:
            count, total = write_parquet(rows, partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return FocusExport(path=path, rows=count, billed_total=total)
