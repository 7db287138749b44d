"""Inserts that meet a unique key on both engines: ``INSERT ... ON CONFLICT (...) DO NOTHING / UPDATE``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflicts(conn: Connection, table: Table, index_elements: Sequence[str]) -> Insert:
    """An insert into ``table`` that skips rows clashing on the unique ``index_elements``.

    Add ``.returning(...)`` to learn which rows were new (``rowcount`` is not reliable on every driver).
    """
    return dialect_insert(conn, table).on_conflict_do_nothing(index_elements=list(index_elements))


def dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The engine's ``INSERT ... ON CONFLICT`` builder for ``table`` (both engines spell it alike)."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"no upsert for {name}: create_db_engine refuses such databases")
